"""Error statistics of MediaPipe on rendered clips against their truth, in the terms of
docs/detector_noise.md's multi-view section (so the two can be put side by side):

- 2D: residual = detection − the projected open-body landmark, in units of the true landmarks'
  box height in that frame, only where visibility > 0.5; bias = pooled median, σ = 1.4826·MAD
  around each clip's own median (the multi-view measurement removes each view's median the same
  way), outliers > 5σ; group value = median over the group's landmarks and x/y.
- depth: MediaPipe's hip-relative world z × one least-squares scale per clip against the true
  hip-relative camera-frame z of the landmarks; robust σ per landmark.
- left/right swaps: a frame whose detection, sides exchanged, lies closer to the truth by more
  than half (median over landmarks), as ``training.eval.pose2sim_demo.lr_swaps`` decides.
- dropout: frames where the body is in view (≥ 17 true landmarks inside the frame) and MediaPipe
  found nobody.
"""
import warnings

import numpy as np

from engine.body.landmarks import MIRROR
from engine.observe import LM
from training.eval.multiview import robust_sigma

VIS = 0.5
HIPS = [LM["left_hip"], LM["right_hip"]]


def _nanmedian(a, **kw):
    """np.nanmedian without the all-NaN-slice warning (unseen landmarks are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, **kw)


def clip_residuals(z, box_px=(0, np.inf)):
    """Per-clip arrays from one stored clip (dict-like): residual in box heights (T,33,2) with
    NaN where unused, swap flags (T,), in-view and detected flags (T,), depth error (T,33).
    Only frames whose true box height (px) lies in ``box_px`` count."""
    true = np.asarray(z["landmarks2d"], np.float64)
    box_h = true[..., 1].max(1) - true[..., 1].min(1)
    keep = (box_h >= box_px[0]) & (box_h < box_px[1])
    true, box_h = true[keep], box_h[keep]
    kp = np.asarray(z["keypoints"], np.float64)[keep]
    W, H = (int(x) for x in z["frame_size"])
    seen = kp[..., 2] > VIS
    r = (kp[..., :2] - true) / box_h[:, None, None]
    r = np.where(seen[..., None], r, np.nan)
    e = np.linalg.norm(kp[..., :2] - true, axis=-1)
    es = np.linalg.norm(kp[:, MIRROR, :2] - true, axis=-1)
    a = _nanmedian(np.where(seen, e, np.nan), axis=1)
    b = _nanmedian(np.where(seen[:, MIRROR], es, np.nan), axis=1)
    swap = (b < 0.5 * a) & np.isfinite(a)
    ins = (true[..., 0] >= 0) & (true[..., 0] < W) & (true[..., 1] >= 0) & (true[..., 1] < H)
    in_view = ins.sum(1) >= 17
    cam = np.asarray(z["landmarks_cam"], np.float64)[keep]
    d_true = cam[..., 2] - cam[:, HIPS, 2].mean(1, keepdims=True)
    wz = np.asarray(z["world"], np.float64)[keep][..., 2]
    d_mp = wz - wz[:, HIPS].mean(1, keepdims=True)
    ok = np.isfinite(d_mp) & np.isfinite(d_true)
    s = float(np.sum(d_true[ok] * d_mp[ok]) / max(np.sum(d_mp[ok] ** 2), 1e-12)) if ok.any() else np.nan
    return dict(r=r, swap=swap, in_view=in_view, detected=np.isfinite(kp[:, 0, 0]),
                depth_err=np.where(ok, s * d_mp - d_true, np.nan), depth_scale=s, box_h=box_h)


def detection_stats(clips, box_px=(0, np.inf)):
    """Pooled statistics over stored clips (iterable of dict-like): per-landmark arrays (33,…);
    ``box_px``: only frames with a true box height (px) in [lo, hi)."""
    rs, rc, sw, iv, det, de, scales, bh = [], [], [], [], [], [], [], []
    for z in clips:
        c = clip_residuals(z, box_px)
        rs.append(c["r"])
        rc.append(c["r"] - _nanmedian(c["r"], axis=0, keepdims=True))
        sw.append(c["swap"][c["detected"]])
        iv.append(c["in_view"])
        det.append(c["detected"])
        de.append(c["depth_err"])
        scales.append(c["depth_scale"])
        bh.append(c["box_h"][c["detected"]])
    r, cen = np.concatenate(rs), np.concatenate(rc)
    sig = robust_sigma(cen.reshape(-1, 33, 2))
    z = np.linalg.norm(cen / sig, axis=-1)
    with np.errstate(invalid="ignore"):
        outl = np.nanmean(np.where(np.isfinite(z), z > 5, np.nan), axis=0)
    iv, det = np.concatenate(iv), np.concatenate(det)
    de = np.concatenate(de)
    return dict(bias_bh=_nanmedian(r, axis=0), sigma_bh=sig, outlier_rate=outl,
                n=np.isfinite(z).sum(0), swap_rate=float(np.mean(np.concatenate(sw))) if det.any() else np.nan,
                dropout_rate=float(np.mean(~det[iv])) if iv.any() else np.nan,
                depth_sigma_m=robust_sigma(de), depth_bias_m=_nanmedian(de, axis=0),
                depth_scale_median=float(_nanmedian(scales)), frames=int(len(det)),
                detected=int(det.sum()), in_view=int(iv.sum()),
                box_h_px_median=float(np.median(np.concatenate(bh))) if det.any() else np.nan)


def group_values(per_landmark, groups, agg=_nanmedian):
    """{group: value}: ``agg`` over the group's landmarks (and x/y when the array has them);
    ``training.eval.noise_compare.group_values`` with the all-NaN warning silenced."""
    from training.eval.noise_compare import group_values as by_group
    return by_group(per_landmark, agg, groups)
