"""Front or back: which way the person faces the camera, from the face in the image.

A monocular body has a front/back ambiguity that the limbs alone do not settle (a mirrored
labelling of a frontal person looks like a person seen from behind). The face settles it where
it is seen clearly: with the detector's (continuity-checked) labels, the triangle left eye → right
eye → mouth turns one way in the image when the face is seen from the front and the other way
when it is seen from behind (mirror images), whatever the head's roll. We call the face toward
the camera when that triangle is frontal and the eyes are clearly apart (their span at least
``MIN_EYE_RATIO`` of the eyes-to-mouth distance: the face turned less than about 60° from the
camera; in near-profile the two eyes overlap and the sign is noise), in at least ``MIN_RUN``
consecutive frames (a single frame's face flipping inside a run of profile frames is a detector
glitch: the whole detection is garbled there). Thresholds are our choice.
"""
import numpy as np

from ..observe import LM

MIN_VISIBILITY = 0.5
MIN_CHIRALITY = 0.5   # sine of the angle between the eye line and the eyes→mouth line
MIN_EYE_RATIO = 0.5   # eye span / eyes-to-mouth distance
MIN_RUN = 3           # frames
FACE_POINTS = [LM[n] for n in ("nose", "left_eye", "right_eye", "mouth_left", "mouth_right")]


def runs_at_least(flags, n):
    """(T,) bool: the True frames of ``flags`` that lie in a run of at least n consecutive Trues."""
    f = np.asarray(flags, bool)
    edges = np.diff(np.r_[0, f.astype(np.int8), 0])
    out = np.zeros_like(f)
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if b - a >= n:
            out[a:b] = True
    return out


def face_toward_camera(keypoints, min_visibility=MIN_VISIBILITY):
    """(T,) bool from keypoints (T,33,3) (pixels, visibility; consecutive frames): the face is
    clearly seen from the front in that frame (False where unseen, in near-profile, seen from
    behind, or front-facing for fewer than ``MIN_RUN`` frames in a row)."""
    kp = np.asarray(keypoints, np.float64)
    le, re = kp[:, LM["left_eye"], :2], kp[:, LM["right_eye"], :2]
    mouth = 0.5 * (kp[:, LM["mouth_left"], :2] + kp[:, LM["mouth_right"], :2])
    a, b = le - re, mouth - 0.5 * (le + re)        # image y points down: frontal → a × b > 0
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(all="ignore"):
        chirality = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) / (na * nb)
        ratio = na / nb
        seen = np.nan_to_num(kp[:, FACE_POINTS, 2]).min(1) > min_visibility
        front = seen & (np.nan_to_num(chirality) > MIN_CHIRALITY) & (np.nan_to_num(ratio) > MIN_EYE_RATIO)
    return runs_at_least(front, MIN_RUN)


def forward_in_camera(global_rotations, extrinsics=None, joints=(0, 15)):
    """(T,len(joints),3) unit forward (+z) axes of the joints' global rotations (T,24,3,3), in the
    camera frame when world→camera ``extrinsics`` (T,4,4) are given. Pelvis 0 and head 15 by
    default; a negative z component faces the camera."""
    f = np.asarray(global_rotations, np.float64)[:, list(joints)][..., :, 2]
    if extrinsics is not None:
        f = np.einsum("tij,tnj->tni", np.asarray(extrinsics, np.float64)[:, :3, :3], f)
    return f


def motion_forward_in_camera(motion, body, joints=(0, 15)):
    """(T,len(joints),3) forward axes of a Motion's joints in its camera frame (NaN where invalid)."""
    from ..body import kinematics as K
    T = motion.num_frames
    rv = np.nan_to_num(np.asarray(motion.poses, np.float64)).reshape(T, -1, 3)
    g = K.global_transforms(K.axis_angle_to_matrix(rv), body.rest_joints(motion.betas))
    f = forward_in_camera(g[..., :3, :3], motion.camera_extrinsics, joints)
    return np.where(np.asarray(motion.valid, bool)[:, None, None], f, np.nan)


def facing_disagreements(motion, body):
    """(T,) bool: frames where the face is toward the camera in the image but the body's pelvis
    or head faces away (forward axis pointing away from the camera)."""
    f = motion_forward_in_camera(motion, body)
    with np.errstate(invalid="ignore"):
        away = (f[..., 2] > 0).any(1)
    return face_toward_camera(motion.keypoints2d) & np.asarray(motion.valid, bool) & away


MIN_LEVEL = 0.5   # the forward axis' horizontal part below this (over 60° from level): no heading


def yaw_in_camera(forward):
    """(T,) degrees: heading of forward axes (T,3) about the camera's vertical, 0 = facing the
    camera, ±90 = profile, ±180 = the back to the camera; NaN where the axis is NaN or points
    mostly up or down (mid-flip, lying on the back), where a heading means nothing."""
    f = np.asarray(forward, np.float64)
    with np.errstate(invalid="ignore"):
        level = np.hypot(f[:, 0], f[:, 2]) >= MIN_LEVEL
    return np.where(level, np.degrees(np.arctan2(f[:, 0], -f[:, 2])), np.nan)


def yaw_steps(yaw):
    """(T,) degrees turned since the previous frame, wrapped to [0, 180] (NaN at the first frame
    and next to a missing one)."""
    d = np.diff(np.asarray(yaw, np.float64))
    return np.r_[np.nan, np.abs((d + 180.0) % 360.0 - 180.0)]


SPIN_STEP = 5.0   # degrees per frame, turned the same way in the steps before and after


def in_spin(yaw, min_step=SPIN_STEP):
    """(T,) bool: the step into frame t is part of a sustained turn (the steps before and after
    turn the same way by at least ``min_step`` each) rather than a one-frame jump."""
    d = np.diff(np.asarray(yaw, np.float64))
    d = (d + 180.0) % 360.0 - 180.0                       # signed step into frame t+1
    s = np.r_[np.nan, d]                                  # s[t]: step into frame t
    prev, nxt = np.r_[np.nan, s[:-1]], np.r_[s[1:], np.nan]
    with np.errstate(invalid="ignore"):
        return (np.sign(prev) == np.sign(s)) & (np.sign(nxt) == np.sign(s)) \
            & (np.abs(prev) >= min_step) & (np.abs(nxt) >= min_step)
