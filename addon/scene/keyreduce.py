"""Key reduction: fewer keys with Bezier handles that reproduce a sampled curve within a tolerance.

Pure numpy (no bpy); ``retarget.apply`` writes the result with ``keyframe_points.add`` +
``foreach_set``.

Method
------
Blender evaluates a Bezier segment between keys (x0, y0) and (x1, y1) with handles at one third
of the segment's length, ``x0 + (x1−x0)/3`` and ``x1 − (x1−x0)/3``, as a cubic whose x is linear
in the curve parameter — so y(x) is exactly the cubic Hermite interpolant with end slopes m0, m1
(the handles' slopes). We give every kept key the slope of the sampled curve there (central
differences) and select keys Douglas–Peucker style: a segment whose Hermite curve misses a
sample by more than the tolerance is split at its worst sample, recursively. Channels that form
one quantity (a quaternion's 4 components, a location's 3) are reduced together with one
error measure (angle, distance), so they share their key frames.

The left/right handles of a key have the same slope (``ALIGNED``), and different lengths (a
third of each neighbouring segment): animators get smooth curves they can edit.
"""
import numpy as np

METRICS = ("abs", "dist", "quat")
DEFAULT_TOLERANCE_CM = 1.0  # retarget key reduction: worst world deviation of any bone point (API, panel, batch)


def slopes(x, y):
    """dy/dx (N,C) by central differences (second order at the ends when N >= 3)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return np.zeros_like(y)
    return np.gradient(y, x, axis=0, edge_order=2 if len(x) >= 3 else 1)


def hermite(x0, x1, y0, y1, m0, m1, xq):
    """Cubic Hermite (n,C) through (x0,y0),(x1,y1) with slopes m0, m1, at xq (n,)."""
    h = x1 - x0
    t = ((np.asarray(xq, dtype=np.float64) - x0) / h)[:, None]
    t2, t3 = t * t, t * t * t
    return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * m0
            + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * m1)


def error(ref, rec, metric="abs"):
    """Per-sample error (n,) of a reconstruction: max |Δ| (abs), ‖Δ‖ (dist), or the rotation
    angle in radians between normalised quaternions (quat)."""
    if metric == "abs":
        return np.max(np.abs(rec - ref), axis=-1)
    if metric == "dist":
        return np.linalg.norm(rec - ref, axis=-1)
    if metric == "quat":
        a = ref / np.linalg.norm(ref, axis=-1, keepdims=True)
        b = rec / np.linalg.norm(rec, axis=-1, keepdims=True)
        return 2.0 * np.arccos(np.clip(np.abs(np.sum(a * b, -1)), 0.0, 1.0))
    raise ValueError(f"unknown metric {metric!r}")


def runs(ok):
    """[start, stop) index ranges of consecutive True values."""
    d = np.diff(np.r_[0, ok.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def reduce(x, y, tol, metric="abs"):
    """Choose keys. x (N,) frames, y (N,C) or (N,) samples (NaN rows: no data, no keys).

    Returns (keys, m): sorted sample indices of the kept keys and their slopes (K,C). Every
    sample of every run of finite rows is reproduced within ``tol`` by ``evaluate``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    ok = np.isfinite(y2).all(1)
    keys, ms = [], []
    for a, b in runs(ok):
        xs, ys = x[a:b], y2[a:b]
        m = slopes(xs, ys)
        keep = {0, len(xs) - 1}
        stack = [(0, len(xs) - 1)]
        while stack:
            i, j = stack.pop()
            if j - i < 2:
                continue
            rec = hermite(xs[i], xs[j], ys[i], ys[j], m[i], m[j], xs[i + 1:j])
            e = error(ys[i + 1:j], rec, metric)
            k = int(np.argmax(e))
            if e[k] > tol:
                s = i + 1 + k
                keep.add(s)
                stack += [(i, s), (s, j)]
        idx = np.array(sorted(keep))
        keys.append(a + idx)
        ms.append(m[idx])
    if not keys:
        return np.zeros(0, int), np.zeros((0, y2.shape[1]))
    keys, ms = np.concatenate(keys), np.concatenate(ms)
    return keys, (ms[:, 0] if squeeze else ms)


def evaluate(xk, yk, mk, xq):
    """Piecewise Hermite through keys (xk (K,), yk (K,C), mk (K,C)) at xq (n,); held constant
    outside the keys (Blender's constant extrapolation)."""
    xk = np.asarray(xk, dtype=np.float64)
    yk = np.asarray(yk, dtype=np.float64)
    mk = np.asarray(mk, dtype=np.float64)
    squeeze = yk.ndim == 1
    if squeeze:
        yk, mk = yk[:, None], mk[:, None]
    xq = np.asarray(xq, dtype=np.float64)
    out = np.empty((len(xq), yk.shape[1]))
    seg = np.clip(np.searchsorted(xk, xq, side="right") - 1, 0, max(len(xk) - 2, 0))
    if len(xk) == 1:
        out[:] = yk[0]
    else:
        for s in np.unique(seg):
            sel = seg == s
            out[sel] = hermite(xk[s], xk[s + 1], yk[s], yk[s + 1], mk[s], mk[s + 1], xq[sel])
    out[xq <= xk[0]] = yk[0]
    out[xq >= xk[-1]] = yk[-1]
    return out[:, 0] if squeeze else out


def handles(xk, yk, mk):
    """Bezier handles for keys of one channel: (left (K,2), right (K,2)) as (frame, value).

    Each handle reaches a third of the way to the neighbouring key along the key's slope; the
    end keys mirror their one neighbour's spacing.
    """
    xk = np.asarray(xk, dtype=np.float64)
    yk = np.asarray(yk, dtype=np.float64)
    mk = np.asarray(mk, dtype=np.float64)
    K = len(xk)
    gap = np.diff(xk) / 3.0 if K > 1 else np.ones(0)
    left_dx = np.r_[gap[:1] if K > 1 else [1.0 / 3.0], gap]
    right_dx = np.r_[gap, gap[-1:] if K > 1 else [1.0 / 3.0]]
    left = np.stack([xk - left_dx, yk - mk * left_dx], -1)
    right = np.stack([xk + right_dx, yk + mk * right_dx], -1)
    return left, right
