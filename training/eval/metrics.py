"""Evaluation metrics as the HMR papers report them (numpy only).

- MPJPE: mean per-joint position error after aligning the roots (pelvis, or the hip midpoint
  when given two root joints), in the same units as the input (multiply metres by 1000 for mm).
- PA-MPJPE: MPJPE after a per-frame similarity Procrustes alignment (rotation, translation,
  uniform scale) of the prediction onto the ground truth.
- PVE: mean per-vertex error after root alignment (mesh vertices; pass the joints' root).
- Accel error: mean over joints and frames of |â − a|, a = second difference of the
  root-aligned joints (units per frame²), as HMMR/VIBE compute it.
Frames can be masked with ``valid`` (T,) bool; the accel error uses only frames whose two
neighbours are valid too. Joints can be selected with ``joints=[...]``.
"""
import numpy as np


def _root(x, root):
    r = np.atleast_1d(root)
    return x[..., r, :].mean(axis=-2, keepdims=True)


def _mask(pred, gt, valid):
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if valid is None:
        valid = np.all(np.isfinite(pred), axis=(-1, -2)) & np.all(np.isfinite(gt), axis=(-1, -2))
    return pred, gt, np.asarray(valid, bool)


def per_joint_errors(pred, gt, root=0, valid=None):
    """(N,J) root-aligned distances on valid frames."""
    pred, gt, valid = _mask(pred, gt, valid)
    p = pred[valid] - _root(pred[valid], root)
    g = gt[valid] - _root(gt[valid], root)
    return np.linalg.norm(p - g, axis=-1)


def mpjpe(pred, gt, root=0, valid=None, joints=None):
    e = per_joint_errors(pred, gt, root, valid)
    return float(np.mean(e if joints is None else e[:, joints])) if e.size else float("nan")


def procrustes_align(pred, gt):
    """Similarity-transform each frame of pred (N,J,3) onto gt (N,J,3) (Umeyama)."""
    mp, mg = pred.mean(-2, keepdims=True), gt.mean(-2, keepdims=True)
    p, g = pred - mp, gt - mg
    h = np.swapaxes(p, -1, -2) @ g                      # (N,3,3)
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones_like(s)
    fix[..., -1] = d
    R = (u * fix[..., None, :]) @ vt                    # p @ R ≈ g (row vectors)
    var = np.sum(p ** 2, axis=(-1, -2))
    scale = np.sum(s * fix, -1) / np.maximum(var, 1e-12)
    return scale[..., None, None] * (p @ R) + mg


def pa_mpjpe(pred, gt, valid=None, joints=None):
    pred, gt, valid = _mask(pred, gt, valid)
    if joints is not None:
        pred, gt = pred[..., joints, :], gt[..., joints, :]
    if not valid.any():
        return float("nan")
    al = procrustes_align(pred[valid], gt[valid])
    return float(np.mean(np.linalg.norm(al - gt[valid], axis=-1)))


def pve(pred_vertices, gt_vertices, pred_root, gt_root, valid=None):
    """Mean vertex error after subtracting each mesh's root joint position (T,3)."""
    pv = np.asarray(pred_vertices, np.float64) - np.asarray(pred_root)[:, None]
    gv = np.asarray(gt_vertices, np.float64) - np.asarray(gt_root)[:, None]
    if valid is None:
        valid = np.ones(len(pv), bool)
    return float(np.mean(np.linalg.norm(pv[valid] - gv[valid], axis=-1))) if valid.any() else float("nan")


def accel_error(pred, gt, root=0, valid=None, joints=None):
    pred, gt, valid = _mask(pred, gt, valid)
    p = pred - _root(pred, root)
    g = gt - _root(gt, root)
    if joints is not None:
        p, g = p[..., joints, :], g[..., joints, :]
    if len(p) < 3:
        return float("nan")
    ap = p[:-2] - 2 * p[1:-1] + p[2:]
    ag = g[:-2] - 2 * g[1:-1] + g[2:]
    ok = valid[:-2] & valid[1:-1] & valid[2:]
    if not ok.any():
        return float("nan")
    return float(np.mean(np.linalg.norm(ap[ok] - ag[ok], axis=-1)))
