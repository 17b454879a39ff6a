"""Per-clip focal length from perspective, before any estimator runs (numpy only).

Without metadata the engine assumes a focal of max(width, height) pixels
(``engine.estimate.camera.default_intrinsics``). ``estimate_focal`` tests candidate focals instead: for
each candidate f, every usable frame's root translation t is solved so that the detector's own
metric world landmarks X_i (root-relative, camera-aligned axes) project onto its 2D keypoints,

    u_i = f · (R_ray X_i + t)_xy / (R_ray X_i + t)_z + c,

by iteratively reweighted least squares (the cross-multiplied projection equations weighted back
to pixels, a Huber weight per keypoint, visibility-weighted). The clip's cost at f is the pooled
robust residual in % of the person's 2D height (``engine.align.reprojection.person_height``). A wrong f
leaves the world landmarks' own depth spread at the wrong ratio to their distance (too much or too
little perspective), so the cost has its minimum near the true f when the body's depth spread is a
noticeable fraction of its distance; for a far, small person it is flat.

R_ray (our choice, ``ray=True``): the smallest rotation taking the optical axis onto the ray
through the detected hip midpoint at that f. The pose network sees only a crop around the
person, so its world landmarks come in the axes of the crop's viewing direction, not the
camera's (docs/focal.md shows it on R1: at the calibrated focal the cost is lower with R_ray
than in the camera's axes, and higher with R_ray reversed). The angle of that ray depends on f, a second cue,
strong for an off-centre person, weak near the image centre. No free per-frame rotation is
fitted: it would absorb the ray cue entirely (R_ray is one such rotation) and make each frame's
solve nonlinear; the detector's own orientation error stays in the residual, and it is what limits
the estimate on real video (docs/focal.md).

Used landmarks: the nose and everything from the shoulders down (``LANDMARKS``). Frames: the
valid ones with at least ``MIN_POINTS`` keypoints seen, strided evenly down to ``MAX_FRAMES``.

Search: a log-spaced grid of factors of max(w, h) in [lo, hi], then a finer grid around the best
point and a parabola in log f through the lowest three. Spread: a moving-block bootstrap over
frames (blocks of about half a second: the detector's errors last several frames) of the same
per-frame costs, as the standard deviation of log f (≈ relative error, 1σ; it measures how well
the frames agree, not the detector's systematic 3D error). The estimate falls back to the default
focal (``method="default"``, with ``reason``) when the minimum is not bracketed inside [lo, hi],
when the cost rises by less than ``min_rise`` within ×/÷``RISE_FACTOR`` of it (flat: a far, small
person), when the spread exceeds ``max_spread``, or with fewer than ``min_frames`` usable frames —
never a value at the edge of the search.
"""
from dataclasses import dataclass, field

import numpy as np

from ..body.rotations import minimal_rotation
from ..align.reprojection import person_height
from ..observe import LM, NUM_LANDMARKS

MIN_VISIBILITY = 0.5
MIN_POINTS = 8          # visible keypoints with finite world landmarks for a frame to count
MIN_FRAMES = 10
HUBER = 2.0             # % of height: beyond it a keypoint's pull stops growing
CAP = 10.0              # % of height: a keypoint's cost stops growing (mislabelled, swapped)
COARSE = 13             # log-spaced candidates over [lo, hi]
FINE = 6                # candidates across the two coarse steps around the best one
IRLS = 2                # reweighting rounds per candidate
MAX_FRAMES = 120        # longer clips are strided evenly: neighbouring frames add little
BOOTSTRAP = 200
BLOCK_S = 0.5
MAX_SPREAD = 0.2        # 1σ of log f: beyond it (about ×/÷ 1.22) the default is returned
RISE_FACTOR = 1.5       # the cost is compared at the minimum and at ×/÷ this factor …
MIN_RISE = 0.0025       # … and must rise by at least this fraction on both sides
HIPS = (LM["left_hip"], LM["right_hip"])
# The nose and everything from the shoulders down. The other ten face landmarks sit within a few
# centimetres of it: they add almost no depth spread, would weigh the head as much as the limbs,
# and their world depth is the detector's least reliable (docs/detector_noise.md).
LANDMARKS = np.r_[LM["nose"], LM["left_shoulder"]:NUM_LANDMARKS]


@dataclass
class FocalEstimate:
    focal_px: float         # the focal to use (the default when method == "default")
    spread: float           # 1σ of log(focal) from the block bootstrap (≈ relative error); inf if unknown
    frames_used: int
    method: str             # "perspective" or "default"
    factor: float = float("nan")        # focal_px / max(w, h)
    best_factor: float = float("nan")   # the cost's minimum even when not used (diagnostics)
    rise: float = float("nan")          # the cost's relative rise at ×/÷ RISE_FACTOR (the smaller side)
    reason: str = ""                    # why the default was returned
    curve: dict = field(default_factory=dict)  # {"factor": (F,), "cost": (F,) % of height}


def _seen(obs, min_visibility):
    """(T,33) keypoints that are visible, finite and have a finite world landmark."""
    kp = np.asarray(obs.keypoints, np.float64)
    return (np.nan_to_num(kp[..., 2]) > min_visibility) & np.isfinite(kp[..., :2]).all(-1) \
        & np.isfinite(np.asarray(obs.world, np.float64)).all(-1)


def usable_frames(obs, min_visibility=MIN_VISIBILITY, min_points=MIN_POINTS, landmarks=LANDMARKS):
    """(T,) bool: valid frames with a positive 2D height and at least ``min_points`` of the used
    ``landmarks`` seen (``_seen``)."""
    seen = _seen(obs, min_visibility)[:, landmarks]
    h = person_height(obs.keypoints, min_visibility)
    return np.asarray(obs.valid, bool) & (seen.sum(-1) >= min_points) & (np.nan_to_num(h) > 0)


def _prepare(obs, frames, min_visibility, landmarks=LANDMARKS):
    """The used landmarks of ``frames`` → uv (T,N,2) minus the image centre, weights w (T,N),
    world (T,N,3), person height (T,) px and the root's pixel (T,2) minus the image centre."""
    kp = np.asarray(obs.keypoints, np.float64)[frames]
    seen = _seen(obs, min_visibility)[frames]
    w = np.where(seen, np.nan_to_num(kp[..., 2]), 0.0)
    c = np.array(obs.frame_size, np.float64) / 2.0
    uv = np.nan_to_num(kp[..., :2]) - c
    # the root's pixel: the hip midpoint, else the weighted mean of the used keypoints
    both = seen[:, HIPS].all(1)
    wl = w[:, landmarks]
    mean = (wl[..., None] * uv[:, landmarks]).sum(1) / wl.sum(1)[:, None]
    root = np.where(both[:, None], uv[:, HIPS].mean(1), mean)
    W = np.nan_to_num(np.asarray(obs.world, np.float64)[frames][:, landmarks])
    return uv[:, landmarks], wl, W, person_height(kp, min_visibility), root


def frame_costs(focals, uv, w, world, height, root, ray=True, huber=HUBER, cap=CAP, iterations=IRLS):
    """Per-frame robust cost at each candidate focal.

    focals (F,) px; uv (T,N,2) keypoints minus the principal point; w (T,N) weights (0 = unused);
    world (T,N,3) root-relative metric landmarks; height (T,) px; root (T,2) the root's pixel
    minus the principal point. → (cost (F,T): Σ_i w_i ρ(r_i) with r_i in % of height and ρ a
    Huber loss capped at ``cap``, translations (F,T,3)).
    """
    f = np.asarray(focals, np.float64)[:, None, None]                     # (F,1,1)
    F, (T, N) = len(f), w.shape
    if ray:
        d = np.concatenate([root[None] / f, np.ones((F, T, 1))], axis=-1)  # (F,T,3)
        R = minimal_rotation(np.array([0.0, 0.0, 1.0]), d)
        X = np.einsum("ftij,tnj->ftni", R, world)
    else:
        X = np.broadcast_to(world, (F, T, N, 3))
    du, dv = uv[..., 0], uv[..., 1]                                         # (T,N)
    bx = du * X[..., 2] - f * X[..., 0]                                     # (F,T,N)
    by = dv * X[..., 2] - f * X[..., 1]
    scale = 100.0 / height[None, :, None]                                   # px → % of height
    om = np.broadcast_to(w, (F, T, N))
    for it in range(iterations + 1):
        s0 = om.sum(-1)
        su, sv = (om * du).sum(-1), (om * dv).sum(-1)
        A = np.zeros((F, T, 3, 3))
        A[..., 0, 0] = A[..., 1, 1] = f[..., 0] ** 2 * s0
        A[..., 0, 2] = A[..., 2, 0] = -f[..., 0] * su
        A[..., 1, 2] = A[..., 2, 1] = -f[..., 0] * sv
        A[..., 2, 2] = (om * (du ** 2 + dv ** 2)).sum(-1)
        b = np.stack([f[..., 0] * (om * bx).sum(-1), f[..., 0] * (om * by).sum(-1),
                      -(om * (du * bx + dv * by)).sum(-1)], axis=-1)
        A += (1e-9 * np.trace(A, axis1=-2, axis2=-1) + 1e-12)[..., None, None] * np.eye(3)
        t = np.linalg.solve(A, b[..., None])[..., 0]                        # (F,T,3)
        P = X + t[:, :, None, :]
        z = P[..., 2]
        front = z > 1e-6
        zs = np.where(front, z, 1.0)
        ex, ey = f * P[..., 0] / zs - du, f * P[..., 1] / zs - dv
        r = np.sqrt(ex * ex + ey * ey) * scale
        r = np.where(front, r, cap)
        if it == iterations:
            break
        # Huber weights, and 1/z² so the algebraic residual (z × pixel residual) weighs as pixels
        om = w * np.minimum(1.0, huber / np.maximum(r, 1e-12)) / np.where(front, zs, np.inf) ** 2
        top = om.max(-1, keepdims=True)
        om = np.where(top > 0, om / np.where(top > 0, top, 1.0), w)
    rho = np.where(r < huber, 0.5 * r ** 2 / huber, r - 0.5 * huber)
    return (w * np.minimum(rho, cap)).sum(-1), t


def _parabola_min(x, y, i):
    """Vertex of the parabola through (x, y)[i−1:i+2] (x need not be uniform); x[i] at an end."""
    if i == 0 or i == len(x) - 1:
        return x[i]
    (x0, x1, x2), (y0, y1, y2) = x[i - 1:i + 2], y[i - 1:i + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    bb = (x2 ** 2 * (y0 - y1) + x1 ** 2 * (y2 - y0) + x0 ** 2 * (y1 - y2)) / den
    if not a > 0:
        return x[i]
    return float(np.clip(-bb / (2 * a), x0, x2))


def _block_bootstrap(costs, weights, logf, fps, n=BOOTSTRAP, block_s=BLOCK_S, seed=0):
    """(n,) argmin of log f over moving-block resamples of the frames' costs (F,T)."""
    T = costs.shape[1]
    L = int(np.clip(round(block_s * (fps or 30.0)), 1, max(1, T // 4)))
    starts = np.arange(T - L + 1)
    rng = np.random.default_rng(seed)
    k = int(np.ceil(T / L))
    counts = np.zeros((n, T))
    picks = rng.choice(starts, size=(n, k))
    for j in range(L):
        np.add.at(counts, (np.arange(n)[:, None], picks + j), 1.0)
    curves = (counts @ costs.T) / (counts @ weights)[:, None]               # (n,F)
    best = np.argmin(curves, axis=1)
    return np.array([_parabola_min(logf, c, i) for c, i in zip(curves, best)])


def estimate_focal(obs, lo=0.5, hi=4.0, ray=True, max_spread=MAX_SPREAD, min_rise=MIN_RISE,
                   min_frames=MIN_FRAMES, min_visibility=MIN_VISIBILITY, landmarks=LANDMARKS):
    """The clip's focal length in pixels from perspective → FocalEstimate.

    ``obs`` an ``engine.observe.Observations``; candidates are factors in [lo, hi] of max(w, h);
    ``landmarks`` the MediaPipe landmark indices fitted (the root's ray is the hips' either way).
    Returns the default max(w, h) with method "default" when the focal is not identifiable
    (see the module docstring).
    """
    if not 0 < lo < 1 < hi:
        raise ValueError(f"the search range must hold the default factor 1: got [{lo}, {hi}]")
    L = float(max(obs.frame_size))
    frames = np.flatnonzero(usable_frames(obs, min_visibility, landmarks=landmarks))
    stride = max(1, int(np.ceil(len(frames) / MAX_FRAMES)))

    def default(reason, **kw):
        return FocalEstimate(L, float("inf"), len(frames), "default", 1.0, reason=reason, **kw)

    if len(frames) < min_frames:
        return default(f"{len(frames)} usable frames (fewer than {min_frames})")
    uv, w, W, h, root = _prepare(obs, frames[::stride], min_visibility, landmarks)
    wsum = w.sum(-1)
    coarse = np.geomspace(lo, hi, COARSE)
    c_cost, _ = frame_costs(coarse * L, uv, w, W, h, root, ray)
    i = int(np.argmin(c_cost.sum(1)))
    a, b = coarse[max(i - 1, 0)], coarse[min(i + 1, COARSE - 1)]
    fine = np.geomspace(a, b, FINE + 2)[1:-1]
    f_cost, _ = frame_costs(fine * L, uv, w, W, h, root, ray)
    factors = np.concatenate([coarse, fine])
    order = np.argsort(factors)
    factors, costs = factors[order], np.concatenate([c_cost, f_cost])[order]
    logf = np.log(factors)
    curve = costs.sum(1) / wsum.sum()
    j = int(np.argmin(curve))
    x = _parabola_min(logf, curve, j)
    best = float(np.exp(x))
    at = lambda v: np.interp(np.clip(v, logf[0], logf[-1]), logf, curve)  # noqa: E731
    rise = float(min(at(x - np.log(RISE_FACTOR)), at(x + np.log(RISE_FACTOR))) / at(x) - 1.0)
    boot = _block_bootstrap(costs, wsum, logf, (getattr(obs, "fps", None) or 30.0) / stride)
    spread = float(np.std(boot))
    info = dict(best_factor=best, rise=rise, curve={"factor": factors, "cost": curve})
    fallback = lambda why: FocalEstimate(L, spread, len(frames), "default", 1.0, reason=why, **info)  # noqa: E731
    if j in (0, len(factors) - 1):
        return fallback(f"the cost has no minimum inside [{lo}, {hi}]")
    if not rise >= min_rise:
        return fallback(f"the cost is flat: it rises {100 * rise:.2f} % within ×/÷{RISE_FACTOR} "
                        f"(needs {100 * min_rise:.2f} %)")
    if not spread <= max_spread:
        return fallback(f"spread {spread:.2f} over {max_spread}")
    return FocalEstimate(best * L, spread, len(frames), "perspective", best, **info)
