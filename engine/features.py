"""Per-frame input features for the learned models, computed the same way at run time (from
real Observations) and in training (from synthetic ones), so the two cannot drift apart.

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

MIN_VIS = 0.3
NUM_FEATURES = 202
L_HIP, R_HIP, L_SH, R_SH = 23, 24, 11, 12


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
