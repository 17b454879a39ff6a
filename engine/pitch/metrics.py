"""Small pure functions: filtering, segment frames, joint angles, angular velocities.

Conventions (all after the analysis has put the motion in the *pitch frame*: +x toward home
plate, +y toward first base, +z up, and mirrored a left-hander so the throwing side is the
body's right; OBP does the same "righty/lefty symmetry"):

* Segment frames are 3x3 matrices whose columns are the segment's x, y, z axes in the world.
  Like OBP's frames, x points to the glove side (the body's left after mirroring), z along the
  segment toward its proximal end / up, y = z × x.
* Pelvis and torso angles are Cardan Z-Y-X angles of the segment relative to the lab (OBP's
  sequence): Z = axial rotation toward home (+), Y = lateral tilt, X = anterior tilt (+).
  Rotation 0 means the segment's lateral axis points at home plate (fully closed), 90 means
  square to home.
* Shoulder angles are Z-Y-Z Euler angles of the upper arm relative to the thorax (OBP's
  sequence): horizontal abduction, abduction (elevation), external rotation.
"""
import numpy as np
from scipy.signal import butter, filtfilt
from scipy.spatial.transform import Rotation

from ..body.rotations import normalize


def lowpass(x, fps, cutoff_hz, order=4):
    """Zero-lag Butterworth low-pass along axis 0 (scipy ``filtfilt``), like OBP's 20 Hz filter.

    Returns ``x`` unchanged when the cutoff is None/0, at or above Nyquist, or the signal is too
    short for the filter's padding.
    """
    x = np.asarray(x, dtype=np.float64)
    if not cutoff_hz or cutoff_hz >= 0.5 * fps:
        return x
    b, a = butter(order // 2 if order > 2 else order, cutoff_hz / (0.5 * fps))
    if x.shape[0] <= 3 * max(len(a), len(b)):
        return x
    return filtfilt(b, a, x, axis=0)


def fill_gaps(x, valid):
    """Linearly interpolate invalid frames of a (T,...) array (edges hold the nearest value)."""
    x = np.array(x, dtype=np.float64)
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return x
    t = np.arange(len(x))
    flat = x.reshape(len(x), -1)
    for j in range(flat.shape[1]):
        flat[~valid, j] = np.interp(t[~valid], t[valid], flat[valid, j])
    return flat.reshape(x.shape)


def derivative(x, fps):
    """Central-difference time derivative along axis 0 (per second)."""
    return np.gradient(np.asarray(x, dtype=np.float64), axis=0) * fps


def angle_between(a, b):
    """Angle in degrees between vectors ``a`` and ``b`` (broadcast over leading axes)."""
    c = np.sum(normalize(a) * normalize(b), axis=-1)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def flexion(proximal, joint, distal):
    """Flexion of a hinge from three joint centres: 0 = straight, 90 = right angle (degrees).

    Used for the elbow (shoulder, elbow, wrist) and the knee (hip, knee, ankle). OBP reports a
    Cardan X angle from marker-based frames; on joint centres the included angle is the
    well-defined equivalent (they differ by the joint's small out-of-plane motion).
    """
    return 180.0 - angle_between(np.asarray(proximal) - joint, np.asarray(distal) - joint)


def frame_from_axes(z, x_hint):
    """Right-handed frames (T,3,3) with z exact and x = ``x_hint`` made orthogonal to z."""
    z = normalize(z)
    x = normalize(x_hint - np.sum(x_hint * z, axis=-1, keepdims=True) * z)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def pelvis_frame(rear_hip, lead_hip):
    """Pelvis frame from the two hip centres: x = rear → lead hip (glove side), z = up.

    Two hip centres fix the pelvis's lateral axis but not its tilt about that axis, so the frame
    assumes no anterior tilt (z as vertical as the hip line allows). Only the pelvis rotation
    (the azimuth of x, which is exactly OBP's Z-Y-X Z angle) and the angular velocity about z are
    reported; pelvis anterior/lateral tilt are not (OBP measures them from ASIS/PSIS markers).
    """
    up = np.zeros_like(rear_hip)
    up[:, 2] = 1.0
    x = normalize(lead_hip - rear_hip)
    z = normalize(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def thorax_frame(prox, dist, right):
    """Thorax frame: z = thorax_dist → thorax_prox, x = toward the glove side (from the lateral
    thorax point), y = z × x (posterior)."""
    return frame_from_axes(prox - dist, prox - right)


def upper_arm_frame(shoulder, elbow, wrist):
    """Upper-arm frame from joint centres: z = elbow → shoulder, x = normal of the arm plane.

    OBP builds it from the elbow epicondyle markers; joint centres only give the plane of the
    upper arm and forearm, whose normal is the elbow's flexion axis — the same axis when the
    elbow is bent (it is ~90° at foot plant and MER), ill-defined when the elbow is straight.
    For the throwing (right) arm x = u × f points medially (toward the glove side), like the
    thorax's x, so a neutral arm gives zero rotation.
    """
    u = shoulder - elbow
    f = wrist - elbow
    return frame_from_axes(u, np.cross(u, f))


def cardan_zyx(R):
    """Segment-to-lab Z-Y-X Cardan angles in degrees, as (rotation Z, lateral Y, anterior X)."""
    return Rotation.from_matrix(R).as_euler("ZYX", degrees=True)


def joint_cardan_xyz(R_parent, R_child):
    """Joint angles (T,3) in degrees: X-Y-Z Cardan angles of ``R_child`` relative to ``R_parent``.

    Visual3D's default joint-angle sequence, which OBP uses for its ``torso_pelvis`` angle (the
    torso relative to the pelvis): the Z angle is the axial rotation of the torso relative to
    the pelvis after the relative flexion (X) and lateral bend (Y) are taken out.
    """
    rel = np.einsum("tji,tjk->tik", R_parent, R_child)
    return Rotation.from_matrix(rel).as_euler("XYZ", degrees=True)


def unwrap_deg(a):
    return np.degrees(np.unwrap(np.radians(a), axis=0))


def segment_angular_velocity(R, fps, body=True):
    """Angular velocity (T,3) in deg/s of frames R (T,3,3); in the segment's own axes if ``body``.

    Central difference of rotations: ω(t) = log(R(t-1)ᵀ R(t+1)) / 2Δt (body frame), which is exact
    for a constant-rate rotation. OBP's pelvis/torso "rotational velocity" is the z component in
    the segment's frame.
    """
    rot = Rotation.from_matrix(R)
    T = len(R)
    w = np.zeros((T, 3))
    if T < 2:
        return w
    idx0 = np.r_[0, np.arange(T - 2), T - 2]
    idx1 = np.r_[1, np.arange(2, T), T - 1]
    steps = np.r_[1, np.full(T - 2, 2), 1]
    a, b = rot[idx0], rot[idx1]
    rel = (a.inv() * b) if body else (b * a.inv())
    w = rel.as_rotvec() * fps / steps[:, None]
    return np.degrees(w)


def shoulder_angles(R_thorax, R_upper_arm):
    """Throwing-shoulder angles (T,3) in degrees: horizontal abduction, abduction, external rotation.

    Z-Y-Z Euler angles (a, b, c) of the upper arm relative to the thorax (OBP's sequence), with
    OBP's signs for a right arm: horizontal abduction = -a (+ = elbow behind the shoulders'
    line), abduction = b (the angle between the humerus and the thorax's long axis: 0 = arm at
    the side, 90 = arm horizontal), external rotation = -c (the humerus' axial rotation: about
    0 with the forearm pointing forward, 90 with it pointing up, ~160-180 at layback). Angles
    are unwrapped over time so layback past 180 stays continuous.
    """
    rel = np.einsum("tji,tjk->tik", R_thorax, R_upper_arm)
    e = Rotation.from_matrix(rel).as_euler("ZYZ", degrees=True)
    horiz = -unwrap_deg(e[:, 0])
    abd = e[:, 1]
    er = -unwrap_deg(e[:, 2])
    # unwrap starts from frame 0; bring the series to the branch nearest OBP's range (-180, 180].
    for a in (horiz, er):
        a -= 360.0 * np.round(np.nanmedian(a) / 360.0)
    return np.stack([horiz, abd, er], axis=1)
