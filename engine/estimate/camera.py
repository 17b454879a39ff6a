"""The pinhole camera shared by the estimators: intrinsics, projection, root depth from 2D–3D
correspondences, and a clip's camera model (level first frame, then the background's pan, tilt
and zoom: ``camera_model``)."""
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


def solve_translation_per_focal(points_rel, pixels, weights, K, focals):
    """``solve_translation`` with each frame's own focal length ``focals`` (T,) (a zooming
    camera): one solve per distinct focal, K's principal point kept."""
    t = np.zeros((len(points_rel), 3))
    for fval in np.unique(focals):
        sel = focals == fval
        Kf = np.array(K, np.float64)
        Kf[0, 0] = Kf[1, 1] = fval
        t[sel] = solve_translation(points_rel[sel], pixels[sel], weights[sel], Kf)
    return t


# MediaPipe world / camera axes (x right, y down, z away) → Z-up world (x right, y away, z up).
CAMERA_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def camera_model(obs, focal=None, compensate=True):
    """The camera of a clip: intrinsics K (3,3) of the first frame, per-frame world→camera
    rotations (T,3,3) and focal lengths (T,).

    Perspective with the focal length given (metadata, ``--focal``) or the default of
    ``default_intrinsics``. The first frame's camera is level (its axes are the world's,
    ``CAMERA_TO_WORLD``); with ``compensate`` and ``obs.homographies`` (background motion,
    ``engine.observe.camera_motion``) the camera then pans/tilts/rolls/zooms as they say, so a
    panning camera becomes a rotating camera in the extrinsics instead of the body sliding
    across the world. Without homographies the camera is static."""
    from ..observe.camera_motion import camera_rotations
    w, h = obs.frame_size
    K = default_intrinsics(w, h, focal)
    T = obs.num_frames
    R0 = CAMERA_TO_WORLD.T
    H = getattr(obs, "homographies", None)
    if compensate and H is not None and len(H) == T:
        R, f = camera_rotations(H, K, R0)
    else:
        R, f = np.repeat(R0[None], T, 0), np.full(T, K[0, 0])
    return K, R, f


def rotation_extrinsics(Rcam):
    """World→camera transforms (T,4,4) of cameras (T,3,3) at the world origin: the camera
    centre is where the estimators' world starts (the clean-up stage later moves the world
    onto its floor, and the extrinsics with it)."""
    ext = np.tile(np.eye(4), (len(Rcam), 1, 1))
    ext[:, :3, :3] = Rcam
    return ext
