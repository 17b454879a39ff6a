"""The reprojection figure: how far an estimate's landmarks, seen through its own camera, land
from the detector's 2D keypoints (numpy only).

Per frame: the estimate's 3D landmarks (world) are moved into the camera by that frame's
extrinsics and projected with the intrinsics (``engine.estimate.camera``); the figure is the median
distance to the detected keypoints whose visibility exceeds ``min_visibility``, in percent of
the person's 2D height (max − min image y of those same keypoints). A monocular estimate can
be wrong in depth and still reproject well, so this checks image alignment, not 3D accuracy;
it needs no reference, so it can be measured on every clip.
"""
import numpy as np

from ..estimate.camera import project, world_to_camera


def person_height(keypoints, min_visibility=0.5):
    """(...,) the detected person's 2D height in pixels: the extent in image y of the keypoints
    (...,K,3) whose visibility exceeds ``min_visibility``; NaN with fewer than two of them."""
    kp = np.asarray(keypoints, np.float64)
    seen = (np.nan_to_num(kp[..., 2]) > min_visibility) & np.isfinite(kp[..., :2]).all(-1)
    y = kp[..., 1]
    h = np.where(seen, y, -np.inf).max(-1) - np.where(seen, y, np.inf).min(-1)
    return np.where(seen.sum(-1) >= 2, h, np.nan)


def reprojection_error(landmarks_world, intrinsics, extrinsics, keypoints, min_visibility=0.5):
    """Per-frame reprojection figure (T,) in % of the detected person's height.

    landmarks_world (T,K,3) metres, NaN where unknown; intrinsics (3,3); extrinsics (T,4,4)
    world → camera (OpenCV axes); keypoints (T,K,3) pixels x, y and visibility, landmark k
    matching keypoint k. NaN for frames with fewer than 2 visible keypoints, a zero height,
    or no visible keypoint with a finite landmark in front of the camera.
    """
    X = np.asarray(landmarks_world, np.float64)
    kp = np.asarray(keypoints, np.float64)
    E = np.asarray(extrinsics, np.float64)
    cam = world_to_camera(np.nan_to_num(X), E)
    px = project(cam, np.asarray(intrinsics, np.float64))
    seen = np.nan_to_num(kp[..., 2]) > min_visibility
    seen &= np.isfinite(kp[..., :2]).all(-1)
    height = person_height(kp, min_visibility)
    used = seen & np.isfinite(X).all(-1) & (cam[..., 2] > 0)
    d = np.where(used, np.linalg.norm(px - np.nan_to_num(kp[..., :2]), axis=-1), np.nan)
    ok = (seen.sum(1) >= 2) & (height > 0) & used.any(1)
    out = np.full(len(X), np.nan)
    if ok.any():
        out[ok] = 100.0 * np.nanmedian(d[ok], axis=1) / height[ok]
    return out


def motion_reprojection(motion, body):
    """The figure (T,) of a Motion: its body's MediaPipe-convention landmarks (``body`` posed by
    the Motion's poses, betas and trans) through its own camera, against its keypoints2d."""
    from ..body.landmarks import LandmarkModel
    X = LandmarkModel(body, motion.betas)(motion.poses, motion.trans)
    X[~np.asarray(motion.valid, bool)] = np.nan
    return reprojection_error(X, motion.camera_intrinsics, motion.camera_extrinsics, motion.keypoints2d)


def summary(figure):
    """{"median", "p90", "frames"} of a per-frame figure (NaN frames left out); None when empty."""
    f = np.asarray(figure, np.float64)
    f = f[np.isfinite(f)]
    if not len(f):
        return None
    return {"median": round(float(np.median(f)), 3), "p90": round(float(np.percentile(f, 90)), 3),
            "frames": int(len(f)), "unit": "% of the person's 2D height"}
