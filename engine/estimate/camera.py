"""Pinhole camera helpers: intrinsics, projection, and root depth from 2D–3D correspondences."""
import numpy as np


def default_intrinsics(width, height, focal=None):
    """K (3,3). Without metadata the focal length defaults to max(width, height) pixels
    (about a 53° field of view across the long side: our choice, typical of phones and
    tripod cameras; pass ``focal`` when it is known)."""
    f = float(focal) if focal else float(max(width, height))
    return np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1.0]])


def project(points_cam, K):
    """Camera-frame points (...,3) in OpenCV axes → pixels (...,2)."""
    z = np.maximum(points_cam[..., 2:3], 1e-6)
    return (points_cam[..., :2] / z) * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]


def world_to_camera(points_world, extrinsics):
    """Apply (…,4,4) world→camera transforms to points (…,N,3)."""
    R, t = extrinsics[..., :3, :3], extrinsics[..., :3, 3]
    return np.einsum("...ij,...nj->...ni", R, points_world) + t[..., None, :]


def solve_translation(points_rel, pixels, weights, K):
    """Per-frame translation t (T,3) so that project(points_rel + t) ≈ pixels.

    Linear weighted least squares on the cross-multiplied projection equations
    f·(X+t)_x − (u−c_x)·(X+t)_z = 0 (and the same in y); points_rel (T,N,3) in camera axes.
    """
    f = np.array([K[0, 0], K[1, 1]])
    c = K[:2, 2]
    d = pixels - c                          # (T,N,2)
    T, N = points_rel.shape[:2]
    A = np.zeros((T, N, 2, 3))
    b = np.zeros((T, N, 2))
    for ax in range(2):
        A[:, :, ax, ax] = f[ax]
        A[:, :, ax, 2] = -d[..., ax]
        b[:, :, ax] = d[..., ax] * points_rel[..., 2] - f[ax] * points_rel[..., ax]
    w = np.sqrt(np.repeat(weights[..., None], 2, axis=-1))
    A = (A * w[..., None]).reshape(T, 2 * N, 3)
    b = (b * w).reshape(T, 2 * N)
    ata = np.einsum("tki,tkj->tij", A, A) + 1e-9 * np.eye(3)
    atb = np.einsum("tki,tk->ti", A, b)
    return np.linalg.solve(ata, atb[..., None])[..., 0]
