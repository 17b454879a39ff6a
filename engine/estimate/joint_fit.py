"""Refined joints → SMPL-24 rotations (numpy + scipy; no torch).

The per-frame refinement network (D2A-HMR, seed 0) predicts 3D joints and a per-joint σ (the
RLE scale, metres). The engine's output must stay an SMPL sequence, so each frame's rotations
are fitted to those joints by a short least-squares problem, started from (and gently held to)
the temporal model's rotations:

    minimise  Σ_j ‖FK(θ, τ)_j − y_j‖² / σ_j²  +  Σ_k ‖θ_k − θ⁰_k‖² / s²

over the 24 local axis-angle rotations θ (root = global orientation) and a translation τ, with
the body's rest joints fixed (the shape is not refitted). Confident joints pull hard, uncertain
ones (large σ) hardly at all; the prior (s = ``prior_sigma`` radians) decides what the joints
cannot — the twist of a bone about its own axis, the end joints' rotations (hands, feet, head,
which move no joint) — and keeps them at the temporal estimate.

``scipy.optimize.least_squares`` with an analytic Jacobian: perturbing joint k's local rotation
by R_k(θ_k + dθ) ≈ R_k(θ_k)·exp([J_r(θ_k) dθ]ₓ) moves every descendant i by
(G_k J_r dθ) × (p_i − p_k), where G_k is k's global rotation and J_r SO(3)'s right Jacobian.
"""
import warnings

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from ..body import kinematics as K
from ..body.skeleton import NUM_JOINTS, PARENTS

PRIOR_SIGMA = 1.0        # radians: one radian from the temporal estimate costs as much as one σ at one joint
SIGMA_FLOOR = 1e-3       # metres


def _descendants(parents=PARENTS):
    J = len(parents)
    d = np.zeros((J, J), bool)             # d[k, i]: i is a strict descendant of k
    for i in range(J):
        p = parents[i]
        while p >= 0:
            d[p, i] = True
            p = parents[p]
    return d


DESC = _descendants()


def _skew(v):
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def right_jacobian(rv):
    """SO(3) right Jacobian J_r(θ) (...,3,3): exp(θ + dθ) ≈ exp(θ)·exp(J_r(θ) dθ)."""
    t = np.linalg.norm(rv, axis=-1)[..., None, None]
    Km = _skew(rv)
    small = t < 1e-4
    ts = np.where(small, 1.0, t)
    a = np.where(small, 0.5 - t ** 2 / 24, (1 - np.cos(ts)) / ts ** 2)
    b = np.where(small, 1 / 6 - t ** 2 / 120, (ts - np.sin(ts)) / ts ** 3)
    return np.eye(3) - a * Km + b * (Km @ Km)


def _pose_batch(rv, rest, trans):
    """Global rotations (T,24,3,3) and joint positions (T,24,3) of rotvecs (T,24,3)."""
    g = K.global_transforms(K.axis_angle_to_matrix(rv), rest)
    return g[..., :3, :3], g[..., :3, 3] + np.asarray(trans)[:, None]


def _pose(rv, rest, trans):
    G, p = _pose_batch(np.asarray(rv)[None], rest, np.asarray(trans)[None])
    return G[0], p[0]


def fk_jacobian_batch(rv, rest, trans):
    """Joint positions (T,24,3) and their Jacobian (T,72,75) w.r.t. (θ (72), τ (3)) of every
    frame: rv (T,24,3), trans (T,3)."""
    G, p = _pose_batch(rv, rest, trans)
    M = G @ right_jacobian(rv)                                   # (T,24,3,3)
    diff = p[:, :, None, :] - p[:, None, :, :]                   # [t, i, k] = p_i − p_k
    blocks = -_skew(diff) @ M[:, None]                           # (T, i, k, 3, 3)
    blocks *= DESC.T[None, ..., None, None]                      # only k ancestors of i
    T = len(rv)
    J = np.zeros((T, NUM_JOINTS, 3, NUM_JOINTS + 1, 3))
    J[:, :, :, :NUM_JOINTS] = blocks.transpose(0, 1, 3, 2, 4)
    J[:, :, :, NUM_JOINTS] = np.eye(3)
    return p, J.reshape(T, 3 * NUM_JOINTS, 3 * NUM_JOINTS + 3)


def fk_jacobian(rv, rest, trans=np.zeros(3)):
    """Joint positions (24,3) and their Jacobian (72, 75) w.r.t. (θ (72), τ (3)) of one frame."""
    p, J = fk_jacobian_batch(np.asarray(rv)[None], rest, np.asarray(trans)[None])
    return p[0], J[0]


def fit_frame(target, sigma, init_rot, rest_joints, prior_sigma=PRIOR_SIGMA, sigma_floor=SIGMA_FLOOR,
              loss="linear", max_nfev=100, init_trans=None):
    """Fit one frame.

    target (24,3) joints; sigma (24,) metres (NaN/inf = ignore that joint); init_rot (24,3,3)
    rotation matrices or (24,3) axis-angle; rest_joints (24,3). Returns (rotvec (24,3),
    trans (3,), fitted joints (24,3), scipy result)."""
    target = np.asarray(target, np.float64)
    init_rot = np.asarray(init_rot, np.float64)
    rv0 = K.matrix_to_axis_angle(init_rot) if init_rot.shape[-2:] == (3, 3) else init_rot.reshape(NUM_JOINTS, 3)
    rest = np.asarray(rest_joints, np.float64)
    sig = np.asarray(sigma, np.float64)
    use = np.isfinite(sig) & np.isfinite(target).all(-1)
    w = np.where(use, 1.0 / np.maximum(np.where(use, sig, 1.0), sigma_floor), 0.0)     # (24,)
    y = np.where(use[:, None], target, 0.0)
    if init_trans is None:   # closed form for τ at θ⁰: the σ-weighted mean offset
        _, p0 = _pose(rv0, rest, np.zeros(3))
        ww = w ** 2
        init_trans = ((y - p0) * ww[:, None]).sum(0) / max(ww.sum(), 1e-12) if ww.sum() > 0 else np.zeros(3)
    x0 = np.concatenate([rv0.ravel(), np.asarray(init_trans, np.float64)])
    wr = np.repeat(w, 3)
    ps = 1.0 / prior_sigma

    def split(x):
        return x[:3 * NUM_JOINTS].reshape(NUM_JOINTS, 3), x[3 * NUM_JOINTS:]

    def fun(x):
        rv, tr = split(x)
        _, p = _pose(rv, rest, tr)
        return np.concatenate([((p - y).ravel()) * wr, ps * (x[:3 * NUM_JOINTS] - x0[:3 * NUM_JOINTS])])

    def jac(x):
        rv, tr = split(x)
        _, Jp = fk_jacobian(rv, rest, tr)
        Jp = Jp * wr[:, None]
        Jq = np.zeros((3 * NUM_JOINTS, 3 * NUM_JOINTS + 3))
        Jq[:, :3 * NUM_JOINTS] = ps * np.eye(3 * NUM_JOINTS)
        return np.concatenate([Jp, Jq], 0)

    method = "lm" if loss == "linear" else "trf"
    res = least_squares(fun, x0, jac=jac, method=method, loss=loss, max_nfev=max_nfev, x_scale=1.0)
    rv, tr = split(res.x)
    rv = Rotation.from_rotvec(rv).as_rotvec()         # canonical angles (≤ π)
    _, p = _pose(rv, rest, tr)
    return rv, tr, p, res


def fit_frames(target, sigma, init_rv, rest_joints, prior_sigma=PRIOR_SIGMA, sigma_floor=SIGMA_FLOOR,
               iterations=30, tol=1e-10):
    """``fit_frame``'s problem for T frames at once by a batched Levenberg–Marquardt (numpy;
    every frame keeps its own damping and stops improving on its own), so a clip costs a few
    vectorised solves instead of one scipy call per frame (our choice: the same minimum as
    ``fit_frame`` in the tests).

    target (T,24,3), sigma (T,24) (NaN/inf = ignore), init_rv (T,24,3) axis-angle, rest (24,3).
    Returns rotvec (T,24,3), trans (T,3), fitted joints (T,24,3), weighted joint residuals
    (T,72)."""
    target = np.asarray(target, np.float64)
    sig = np.asarray(sigma, np.float64)
    rv0 = np.asarray(init_rv, np.float64).reshape(-1, NUM_JOINTS, 3)
    rest = np.asarray(rest_joints, np.float64)
    T, n = len(rv0), 3 * NUM_JOINTS
    use = np.isfinite(sig) & np.isfinite(target).all(-1)
    w = np.where(use, 1.0 / np.maximum(np.where(use, sig, 1.0), sigma_floor), 0.0)      # (T,24)
    y = np.where(use[..., None], target, 0.0)
    wr2 = np.repeat(w ** 2, 3, axis=1)                                                     # (T,72)
    ps2 = 1.0 / prior_sigma ** 2
    _, p0 = _pose_batch(rv0, rest, np.zeros((T, 3)))
    ww = w ** 2
    tr0 = ((y - p0) * ww[..., None]).sum(1) / np.maximum(ww.sum(1), 1e-12)[:, None]
    x0 = np.concatenate([rv0.reshape(T, n), tr0], 1)
    prior_mask = np.r_[np.ones(n), np.zeros(3)]

    def cost(x):
        _, p = _pose_batch(x[:, :n].reshape(T, NUM_JOINTS, 3), rest, x[:, n:])
        r = (p - y).reshape(T, n)
        return (wr2 * r ** 2).sum(1) + ps2 * ((x[:, :n] - x0[:, :n]) ** 2).sum(1), r

    x = x0.copy()
    c, r = cost(x)
    lam = np.full(T, 1e-3)
    active = np.ones(T, bool)
    eye = np.eye(n + 3)
    for _ in range(iterations):
        if not active.any():
            break
        a = np.where(active)[0]
        _, Jp = fk_jacobian_batch(x[a, :n].reshape(-1, NUM_JOINTS, 3), rest, x[a, n:])
        JW = Jp * wr2[a, :, None]
        H = np.swapaxes(JW, 1, 2) @ Jp + ps2 * np.diag(prior_mask)
        g = (np.swapaxes(JW, 1, 2) @ r[a][..., None])[..., 0] + ps2 * prior_mask * (x[a] - x0[a])
        d = np.einsum("tii->ti", H)
        step = -np.linalg.solve(H + lam[a, None, None] * (d[:, :, None] * eye + 1e-9 * eye), g[..., None])[..., 0]
        xn = x[a] + step
        full = x.copy()
        full[a] = xn
        cn, rn = cost(full)
        better = cn[a] < c[a]
        idx = a[better]
        gain = c[idx] - cn[idx]
        x[idx], r[idx] = xn[better], rn[idx]
        lam[idx] = np.maximum(lam[idx] / 3, 1e-9)
        lam[a[~better]] *= 4
        done = np.zeros(T, bool)
        done[idx] = gain <= tol * np.maximum(c[idx], 1e-30)
        done[a[~better]] = lam[a[~better]] > 1e8
        c[idx] = cn[idx]
        active &= ~done
    rv = Rotation.from_rotvec(x[:, :n].reshape(-1, 3)).as_rotvec().reshape(T, NUM_JOINTS, 3)
    _, p = _pose_batch(rv, rest, x[:, n:])
    return rv, x[:, n:], p, (p - y).reshape(T, n) * np.sqrt(wr2)


def fit_sequence(joints, sigma, init_rot, rest_joints, valid=None, prior_sigma=PRIOR_SIGMA, loss="linear",
                 max_nfev=100, progress=None, chunk=256):
    """Fit every frame independently, each from its own temporal estimate (all frames at once
    by ``fit_frames``; a robust ``loss`` falls back to scipy per frame).

    joints (T,24,3), sigma (T,24), init_rot (T,24,3,3) or (T,24,3) axis-angle or (T,72),
    rest_joints (24,3) (``body.rest_joints(betas)``), valid (T,) bool — invalid frames keep
    their initial rotations and get NaN translation. Returns dict: ``poses`` (T,72) axis-angle,
    ``trans`` (T,3) (the translation that puts the FK joints on the refined ones), ``joints``
    (T,24,3) fitted, ``rms`` (T,) σ-weighted RMS residual of the joints."""
    joints = np.asarray(joints, np.float64)
    T = len(joints)
    init_rot = np.asarray(init_rot, np.float64)
    if init_rot.ndim == 2:
        init_rot = init_rot.reshape(T, NUM_JOINTS, 3)
    if valid is None:
        valid = np.isfinite(joints).all((-1, -2))
    poses = np.zeros((T, NUM_JOINTS, 3))
    trans = np.full((T, 3), np.nan)
    fitted = np.full((T, NUM_JOINTS, 3), np.nan)
    rms = np.full(T, np.nan)
    rv0 = init_rot if init_rot.shape[-1] == 3 and init_rot.ndim == 3 else K.matrix_to_axis_angle(init_rot)
    poses[:] = rv0
    ok = np.where(np.asarray(valid, bool))[0]
    if loss != "linear":           # a robust loss: scipy per frame
        for i, t in enumerate(ok):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rv, tr, p, res = fit_frame(joints[t], sigma[t], rv0[t], rest_joints, prior_sigma, loss=loss, max_nfev=max_nfev)
            poses[t], trans[t], fitted[t] = rv, tr, p
            n = max(int(np.isfinite(np.asarray(sigma[t])).sum()), 1)
            rms[t] = float(np.sqrt(np.sum(res.fun[:3 * NUM_JOINTS] ** 2) / (3 * n)))
            if progress:
                progress(i + 1, len(ok))
    else:
        for c in range(0, len(ok), chunk):
            idx = ok[c:c + chunk]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rv, tr, p, res = fit_frames(joints[idx], sigma[idx], rv0[idx], rest_joints, prior_sigma)
            poses[idx], trans[idx], fitted[idx] = rv, tr, p
            n = np.maximum(np.isfinite(np.asarray(sigma, np.float64)[idx]).sum(1), 1)
            rms[idx] = np.sqrt((res ** 2).sum(1) / (3 * n))
            if progress:
                progress(min(c + chunk, len(ok)), len(ok))
    return {"poses": poses.reshape(T, -1), "trans": trans, "joints": fitted, "rms": rms}
