"""Foot contacts (heel and toe, both feet) and the ground plane.

Contacts come from height above the floor and speed, with hysteresis: a point enters contact
below ``enter`` thresholds and leaves only above the looser ``exit`` ones, so noise does not
make contacts flicker. The ground plane is fitted to the foot points of contact frames; the
world is then rotated and shifted so that plane is z = 0 and the world stays Z-up.
"""
import warnings
from dataclasses import dataclass

import numpy as np

from ..body.skeleton import JOINT_INDEX as J
from ..body.rotations import minimal_rotation
from ..align.reprojection import person_height
from ..observe import LM

# Contact points: (joint, height of the sole below that joint in metres). SMPL's ankle joint
# sits ~8 cm above the sole, its foot (toe-base) joint ~3 cm: our estimates for an adult.
CONTACT_POINTS = (("left_ankle", 0.08), ("left_foot", 0.03), ("right_ankle", 0.08), ("right_foot", 0.03))
CONTACT_JOINTS = np.array([J[n] for n, _ in CONTACT_POINTS])
SOLE_OFFSET = np.array([o for _, o in CONTACT_POINTS])


@dataclass
class ContactSettings:
    """Thresholds, tuned on H1 (docs/clean_motion.md) for monocular estimates, whose planted
    feet keep some residual speed after smoothing (``clean.contact_view``): looser than for
    mocap, on purpose."""
    enter_height: float = 0.10   # m above the floor (sole)
    exit_height: float = 0.15
    enter_speed: float = 0.8     # m/s
    exit_speed: float = 1.2
    min_frames: int = 3          # shorter contacts are dropped


def point_speed(points, fps):
    """Per-frame speed (T,N) by central differences (m/s); NaN where undefined."""
    v = np.full(points.shape[:2], np.nan)
    if len(points) > 2:
        v[1:-1] = np.linalg.norm(points[2:] - points[:-2], axis=-1) * fps / 2
        v[0], v[-1] = v[1], v[-2]
    return v


def hysteresis(low_enter, high_exit):
    """Boolean state per column: on when ``low_enter``; stays on until ``high_exit``."""
    T, N = low_enter.shape
    state = np.zeros((T, N), bool)
    on = np.zeros(N, bool)
    for t in range(T):
        on = np.where(on, ~high_exit[t], low_enter[t])
        state[t] = on
    return state


def _drop_short(state, min_frames):
    out = state.copy()
    for n in range(state.shape[1]):
        s = np.r_[False, state[:, n], False].astype(int)
        starts, ends = np.flatnonzero(np.diff(s) == 1), np.flatnonzero(np.diff(s) == -1)
        for a, b in zip(starts, ends):
            if b - a < min_frames:
                out[a:b, n] = False
    return out


def detect_contacts(joints, fps, valid=None, settings=None):
    """(T,4) contacts for left heel, left toe, right heel, right toe (world z = 0 is the floor)."""
    s = settings or ContactSettings()
    pts = joints[:, CONTACT_JOINTS]
    height = pts[..., 2] - SOLE_OFFSET
    speed = point_speed(pts, fps)
    enter = (height < s.enter_height) & (speed < s.enter_speed)
    leave = ~((height < s.exit_height) & (speed < s.exit_speed))
    if valid is not None:
        enter &= valid[:, None]
        leave |= ~valid[:, None]
    return _drop_short(hysteresis(np.nan_to_num(enter), np.nan_to_num(leave, nan=True)), s.min_frames)


def fit_ground_plane(points):
    """Least-squares plane through points (N,3): (unit normal with +z, offset d) with n·p = d."""
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c)
    n = vt[-1] if vt[-1][2] >= 0 else -vt[-1]
    return n, float(n @ c)


def ground_transform(joints, contacts, min_points=20, max_tilt_deg=20.0):
    """World correction (R, shift) that maps the contact-point plane onto z = 0.

    Returns a rotation (3,3) and a z-shift; with too few contacts only the shift is estimated
    (``lowest_point``), and R is the identity; an implausible tilt keeps R the identity too.
    """
    pts = joints[:, CONTACT_JOINTS] - np.array([0, 0, 1.0]) * SOLE_OFFSET[:, None]
    sel = pts[contacts & np.isfinite(pts).all(-1)]
    R = np.eye(3)
    if len(sel) >= min_points:
        n, _ = fit_ground_plane(sel)
        if np.degrees(np.arccos(np.clip(n[2], -1, 1))) < max_tilt_deg:
            R = minimal_rotation(n, np.array([0, 0, 1.0]))
        sel = sel @ R.T
        return R, -float(np.median(sel[:, 2]))
    return R, -lowest_point(joints)


def lowest_point(joints, valid=None, offsets=SOLE_OFFSET, percentile=5.0):
    """The height (m) of a level floor under a motion without known contacts: the
    ``percentile`` of each frame's lowest contact point (contact joint z − ``offsets``: the
    soles by default) over the (valid) frames; 0 when none is finite. A percentile, so a few
    frames whose feet dip below do not decide it."""
    z = (np.asarray(joints, np.float64)[:, CONTACT_JOINTS, 2] - offsets).min(axis=1)
    if valid is not None:
        z = z[np.asarray(valid, bool)]
    z = z[np.isfinite(z)]
    return float(np.percentile(z, percentile)) if len(z) else 0.0


# the contact points' keypoints, in the order of Motion.contacts
CONTACT_KEYPOINTS = np.array([LM[n] for n in ("left_heel", "left_foot_index", "right_heel", "right_foot_index")])
STILL_SPEED = 0.15     # person heights per second in the image: slower is "standing still"
SUPPORT_BAND = 0.10    # m: a still point counts only this close to the frame's lowest contact point
MIN_STILL_S = 0.15     # shorter still runs are dropped


def image_still_contacts(keypoints, joints, intrinsics, extrinsics, fps, valid, min_visibility=0.5,
                         still_speed=STILL_SPEED, band=SUPPORT_BAND, min_still_s=MIN_STILL_S, span=2):
    """(T,4) contacts where a foot point stands still *in the image* and is the body's support.

    The 3D rule (``detect_contacts``) needs the floor's height and the monocular root's depth,
    which jitters by decimetres; in the image a planted foot barely moves. The keypoint's speed
    is measured over ±``span`` frames (above MediaPipe's own frame-to-frame jitter) after
    undoing the camera's rotation (the earlier pixel carried by K·R_b·R_aᵀ·K⁻¹, the rotating-camera
    model of the engine) and divided by the person's 2D height; a point counts when it is also
    within ``band`` of the lowest contact point of that frame (a foot held still in the air is
    not support). No floor height is assumed, so a foot on a box or a step is found too. Our
    choice of thresholds, checked on the demo clip's standing phase (docs/clean_motion.md)."""
    allkp = np.asarray(keypoints, np.float64)
    kp = allkp[:, CONTACT_KEYPOINTS]                                        # (T,4,3)
    T = len(kp)
    out = np.zeros((T, 4), bool)
    if T < 2 * span + 1:
        return out
    valid = np.asarray(valid, bool)
    K = np.asarray(intrinsics, np.float64)
    R = np.asarray(extrinsics, np.float64)[:, :3, :3]
    height = person_height(allkp, min_visibility)
    a, b = np.arange(T - 2 * span), np.arange(2 * span, T)                  # window ends
    H = K @ R[b] @ np.swapaxes(R[a], 1, 2) @ np.linalg.inv(K)
    early = np.concatenate([kp[a, :, :2], np.ones((len(a), 4, 1))], -1)
    carried = np.einsum("tij,tpj->tpi", H, early)
    carried = carried[..., :2] / carried[..., 2:3]
    hmid = np.nan_to_num(height[a + span])
    speed = np.linalg.norm(kp[b, :, :2] - carried, axis=-1) / np.maximum(hmid[:, None], 1.0) * fps / (2 * span)
    ok = (kp[a, :, 2] > min_visibility) & (kp[b, :, 2] > min_visibility) & (kp[a + span, :, 2] > min_visibility) \
        & (valid[a] & valid[b] & valid[a + span])[:, None] & (hmid[:, None] > 1)
    still = np.zeros((T, 4), bool)
    still[a + span] = ok & (speed < still_speed)
    sole = np.asarray(joints, np.float64)[:, CONTACT_JOINTS, 2] - SOLE_OFFSET
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        support = sole - np.nanmin(sole, axis=1, keepdims=True) < band
    return _drop_short(still & support, max(2, int(round(min_still_s * fps))))
