"""Small batched rotation helpers (numpy) used by the fitters."""
import numpy as np
from scipy.spatial.transform import Rotation


def normalize(v, eps=1e-9):
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
    """The smallest rotation (..., 3, 3) taking direction u onto direction v."""
    u, v = normalize(u), normalize(v)
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(u * v, axis=-1)
    angle = np.arctan2(s, c)
    rotvec = normalize(axis) * angle[..., None]
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
