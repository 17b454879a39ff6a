"""Per-frame input features for the learned models, computed the same way at run time (from
real Observations) and in training (from synthetic ones), so the two cannot drift apart; and
the networks' 6D rotation encoding.

Layout of ``frame_features`` (T, 202):
  [0:99]    2D keypoints: (x, y) centred on the hip midpoint and divided by the person's scale
            (the larger of shoulder-to-hip distance ×3 and the keypoint box height), then the
            visibility; keypoints under ``MIN_VIS`` visibility are zeroed (x, y and vis).
  [99:198]  world landmarks (metres, hip-centred, MediaPipe's camera-aligned axes) — the
            pseudo-depth prior.
  [198:202] the person's box in the image: centre x, y in [-1, 1] of the longer side, scale
            (person size / longer side), and log of focal/longer-side (camera zoom cue).
"""
import numpy as np

from ..observe import LM

MIN_VIS = 0.3
NUM_FEATURES = 202
L_HIP, R_HIP, L_SH, R_SH = LM["left_hip"], LM["right_hip"], LM["left_shoulder"], LM["right_shoulder"]


def person_scale(kp):
    """Scale (T,) of the person in pixels from 2D keypoints (T,33,3)."""
    hip = 0.5 * (kp[:, L_HIP, :2] + kp[:, R_HIP, :2])
    sh = 0.5 * (kp[:, L_SH, :2] + kp[:, R_SH, :2])
    torso = 3.0 * np.linalg.norm(sh - hip, axis=-1)
    seen = kp[..., 2] > MIN_VIS
    ys = np.where(seen, kp[..., 1], np.nan)
    with np.errstate(all="ignore"):
        height = np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)
    return np.maximum(np.nan_to_num(np.fmax(torso, height), nan=1.0), 1.0)


def normalized_keypoints(kp):
    """(T,33,3): hip-centred, scale-normalised x, y and visibility (unseen points zeroed)."""
    hip = 0.5 * (kp[:, L_HIP, :2] + kp[:, R_HIP, :2])
    s = person_scale(kp)
    xy = (kp[..., :2] - hip[:, None]) / s[:, None, None]
    vis = np.clip(kp[..., 2:3], 0, 1)
    out = np.concatenate([xy, vis], axis=-1)
    out[kp[..., 2] <= MIN_VIS] = 0.0
    return np.nan_to_num(out)


def frame_features(keypoints, world, frame_size, focal):
    """(T,202) float32 features from keypoints (T,33,3) px+vis and world landmarks (T,33,3)."""
    kp = np.asarray(keypoints, np.float64)
    w, h = frame_size
    side = float(max(w, h))
    hip = 0.5 * (kp[:, L_HIP, :2] + kp[:, R_HIP, :2])
    box = np.stack([(hip[:, 0] - w / 2) / (side / 2), (hip[:, 1] - h / 2) / (side / 2),
                    person_scale(kp) / side, np.full(len(kp), np.log(focal / side))], axis=-1)
    feats = np.concatenate([normalized_keypoints(kp).reshape(len(kp), -1),
                            np.nan_to_num(np.asarray(world, np.float64)).reshape(len(kp), -1),
                            np.nan_to_num(box)], axis=-1)
    return feats.astype(np.float32)


PRIOR_DIM = 24 * 6


def ik_prior_rest():
    """The rest skeleton (24,3) the IK prior is computed on: the shipped open body at mean
    shape, whatever body the user fits, so the prior means at run time what it meant in
    training."""
    from ..body.model import load_body_model
    global _PRIOR_REST
    if _PRIOR_REST is None:
        _PRIOR_REST = load_body_model().rest_joints(np.zeros(10))
    return _PRIOR_REST


_PRIOR_REST = None


def ik_prior(world, visibility, rest=None):
    """(T,144) float32: the analytic IK rotations (``engine.estimate.ik``) of the world
    landmarks, as 6D (``matrix_to_rot6d``, 24 joints), root orientation in the camera frame
    (MediaPipe's axes). Frames without landmarks get the identity.

    The temporal model takes it as an input and predicts a correction on top of it (our
    choice: seed 2 uses image features from a CNN we cannot train here; the keypoint model
    starts from what the landmarks already say instead of from the rest pose)."""
    from .camera import CAMERA_TO_WORLD
    from .ik import landmark_rotations
    rest = ik_prior_rest() if rest is None else np.asarray(rest, np.float64)
    lm_cam = np.asarray(world, np.float64)
    vis = np.nan_to_num(np.asarray(visibility, np.float64))
    T = len(lm_cam)
    R = np.tile(np.eye(3), (T, 24, 1, 1))
    ok = np.isfinite(lm_cam).all((-1, -2))
    if ok.any():
        lm = lm_cam[ok] @ CAMERA_TO_WORLD.T            # camera axes → Z-up world
        with np.errstate(all="ignore"):
            local, _ = landmark_rotations(lm, vis[ok], rest)
        local[:, 0] = CAMERA_TO_WORLD.T @ local[:, 0]  # root back into the camera frame
        bad = ~np.isfinite(local).all((-1, -2))
        local[bad] = np.eye(3)
        R[ok] = local
    return matrix_to_rot6d(R).reshape(T, PRIOR_DIM).astype(np.float32)


def matrix_to_rot6d(R):
    """Rotation matrices (..., 3, 3) → the networks' 6D encoding (..., 6): the first two columns."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], -1)


def rot6d_to_matrix(x):
    """(..., 6) → (..., 3, 3), Gram–Schmidt on the two columns (as training.geometry)."""
    x = np.asarray(x, np.float64)
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-1)
