"""Small batched rotation helpers (numpy + scipy), the one copy used by the engine's fitters, the
add-on and the scripts.

Quaternions here are (w, x, y, z) (Blender's order) where a name says ``wxyz``; scipy's
``Rotation`` uses (x, y, z, w). ``continuous_quaternions`` works for either order.
"""
import numpy as np
from scipy.spatial.transform import Rotation


def normalize(v, eps=1e-9):
    """Unit vectors along the last axis (float64); a zero vector stays zero."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def weighted_kabsch(a, b, w):
    """Rotations R (..., 3, 3) minimising Σ w_k |R a_k − b_k|², a, b (..., K, 3), w (..., K)."""
    h = np.einsum("...k,...ki,...kj->...ij", w, a, b)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(h.shape[:-1])
    fix[..., 2] = d
    return np.swapaxes(vt, -1, -2) @ (fix[..., :, None] * np.swapaxes(u, -1, -2))


def minimal_rotation(u, v):
    """The smallest rotation (..., 3, 3) taking direction u onto direction v. Opposite directions
    turn by 180° about an axis perpendicular to u (u × X, or u × Y when u is near X)."""
    u, v = normalize(np.asarray(u, dtype=np.float64)), normalize(np.asarray(v, dtype=np.float64))
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(u * v, axis=-1)
    angle = np.arctan2(s, c)
    rotvec = normalize(axis) * angle[..., None]
    opposite = (s < 1e-9) & (c < 0)
    if np.any(opposite):
        helper = np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        rotvec = np.where(opposite[..., None], normalize(np.cross(u, helper)) * np.pi, rotvec)
    shape = rotvec.shape[:-1]
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(shape + (3, 3))


def frame_from_axes(x, y):
    """Right-handed orthonormal frame (columns x, y', z) with x exact and y' ⟂ x in the x–y plane."""
    x = normalize(x)
    y = normalize(y - np.sum(y * x, axis=-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def fractional_rotation(rot, fraction):
    """rot^fraction for rotation matrices (same axis, scaled angle)."""
    shape = rot.shape[:-2]
    rv = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec() * fraction
    return Rotation.from_rotvec(rv).as_matrix().reshape(shape + (3, 3))


def matrix_to_quat_wxyz(m):
    """(..., 3, 3) rotation matrices → (..., 4) unit quaternions (w, x, y, z) with w >= 0
    (Shepperd's method, vectorised: the largest of the four candidates per matrix)."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    t = np.stack([1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                  1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1)
    best = np.argmax(t, -1)
    s = 2.0 * np.sqrt(np.maximum(t[np.arange(len(m)), best], 1e-300))
    q = np.empty((len(m), 4))
    r = m
    cand = [
        np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s], -1),
        np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s], -1),
        np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s], -1),
        np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], -1),
    ]
    for k in range(4):
        sel = best == k
        q[sel] = cand[k][sel]
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(shape + (4,))


def continuous_quaternions(q, valid=None):
    """Signs flipped along axis 0 so consecutive (valid) quaternions lie in one hemisphere (a
    continuous path on S³, what smoothing and keyframe interpolation need).

    q: (T, ..., 4), either component order. Frames where ``valid`` is False are skipped and left
    untouched (they get no keys)."""
    q = np.array(q, dtype=np.float64)
    idx = np.arange(q.shape[0]) if valid is None else np.flatnonzero(valid)
    if len(idx) < 2:
        return q
    seq = q[idx]
    dots = np.sum(seq[1:] * seq[:-1], axis=-1)
    sign = np.concatenate([np.ones((1,) + dots.shape[1:]), np.cumprod(np.where(dots < 0, -1.0, 1.0), 0)])
    q[idx] = seq * sign[..., None]
    return q
