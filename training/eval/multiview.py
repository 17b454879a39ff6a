"""Calibrated multi-camera geometry: Qualisys .qca calibration, DLT triangulation, reprojection,
leave-one-view-out references and robust statistics (numpy + OpenCV only; no bpy, no torch).

Used by ``scripts/measure_detector_noise_multiview.py`` to measure the detector's 2D and depth
error against a reference built from the other views (docs/detector_noise.md), and by the R1
benchmark (``training.bench.r1``) for each camera's 3D reference.

Conventions (all checked numerically on the Pose2Sim demo by the reprojection error):
  * ``Camera.R, Camera.t``: world → camera, x_cam = R @ X + t, metres; OpenCV camera axes
    (x right, y down, z forward); ``K`` and ``dist`` (OpenCV k1, k2, p1, p2[, k3]) in *video* pixels.
  * Qualisys ``.qca``: ``transform`` holds the camera centre (x, y, z in mm) and a matrix M
    (read row-major r11, r12, …) that maps world → a camera frame looking along −z with y up;
    so R = diag(1, −1, −1) @ M and t = −R @ centre (``QCA_CONVENTION``; of the 8 combinations
    of M/Mᵀ, flip/no flip, distortion as stored or /64, only this one reprojects plausibly on
    the demo: docs/detector_noise.md). Focal length and principal point are in 1/64 sub-pixels of the
    sensor; the principal point is shifted by the ``fov_video`` window's left/top, and by half
    of any further difference between the window and the actual video size (symmetric crop).
"""
from dataclasses import dataclass
import xml.etree.ElementTree as ET

import cv2
import numpy as np


@dataclass
class Camera:
    name: str
    K: np.ndarray        # (3,3) video pixels
    dist: np.ndarray     # (4,) or (5,) OpenCV distortion; zeros = none
    R: np.ndarray        # (3,3) world → camera
    t: np.ndarray        # (3,) metres
    size: tuple          # (width, height) of the calibrated video window, pixels

    @property
    def P(self):
        """3×4 projection of *undistorted* pixels."""
        return self.K @ np.c_[self.R, self.t]

    @property
    def center(self):
        return -self.R.T @ self.t


# How the .qca fields map to the Camera above. Keys are the options of ``read_qca``; the values
# are the ones the reprojection check on the Pose2Sim demo selected (see the script's --explore).
QCA_CONVENTION = dict(rotation="as_is", flip_yz=True, dist_scale=1.0, subpixel=64.0)


def read_qca(text, rotation="as_is", flip_yz=True, dist_scale=1.0, subpixel=64.0,
             binning=1.0, video_sizes=None):
    """Parse a Qualisys calibration (.qca XML text) → list of Camera.

    rotation: "transpose" → R_world→cam = Mᵀ, "as_is" → R = M, where M = [[r11 r12 r13], …].
    flip_yz: turn the camera frame by π about x (Qualisys cameras look along −z, y up).
    dist_scale: factor on the .qca distortion coefficients (1 = use them as stored).
    subpixel: the .qca's sub-pixel unit of focal length and principal point (64).
    binning: pixel binning of the video relative to the sensor (1 = none).
    video_sizes: optional {name: (w, h)} of the actual videos: when a video is narrower/shorter
    than the calibrated window, the crop is assumed symmetric (principal point shifted by half
    the difference) — checked by the reprojection error, see the script.
    """
    root = ET.fromstring(text.encode() if isinstance(text, str) else text)
    cams = []
    for tag in root.findall("cameras/camera"):
        name = tag.get("serial")
        fov = tag.find("fov_video")
        left, top = float(fov.get("left")), float(fov.get("top"))
        w = (float(fov.get("right")) - left + 1) / binning
        h = (float(fov.get("bottom")) - top + 1) / binning
        it = tag.find("intrinsic")
        g = lambda k: float(it.get(k))
        fu, fv = g("focalLengthU") / subpixel / binning, g("focalLengthV") / subpixel / binning
        cu = g("centerPointU") / subpixel / binning - left / binning
        cv_ = g("centerPointV") / subpixel / binning - top / binning
        if video_sizes and name in video_sizes:
            vw, vh = video_sizes[name]
            cu -= (w - vw) / 2.0
            cv_ -= (h - vh) / 2.0
            w, h = vw, vh
        K = np.array([[fu, 0.0, cu], [0.0, fv, cv_], [0.0, 0.0, 1.0]])
        dist = dist_scale * np.array([g("radialDistortion1"), g("radialDistortion2"),
                                      g("tangentalDistortion1"), g("tangentalDistortion2"),
                                      g("radialDistortion3")])
        tr = tag.find("transform")
        M = np.array([[float(tr.get(f"r{i}{j}")) for j in (1, 2, 3)] for i in (1, 2, 3)])
        pos = np.array([float(tr.get(k)) for k in "xyz"]) / 1000.0   # mm → m, camera centre
        R = M.T if rotation == "transpose" else M
        if flip_yz:
            R = np.diag([1.0, -1.0, -1.0]) @ R
        t = -R @ pos
        cams.append(Camera(name, K, dist, R, t, (int(round(w)), int(round(h)))))
    return cams


# --- projection -------------------------------------------------------------------------------

def project(cam, X):
    """World points (...,3) → distorted video pixels (...,2) and camera-frame depth (...)."""
    X = np.asarray(X, np.float64)
    shp = X.shape[:-1]
    Xf = X.reshape(-1, 3)
    Xc = Xf @ cam.R.T + cam.t
    ok = np.isfinite(Xf).all(1)
    uv = np.full((len(Xf), 2), np.nan)
    if ok.any():
        rvec = cv2.Rodrigues(cam.R)[0]
        p, _ = cv2.projectPoints(Xf[ok].reshape(-1, 1, 3), rvec, cam.t.reshape(3, 1), cam.K,
                                 np.asarray(cam.dist, np.float64))
        uv[ok] = p.reshape(-1, 2)
    uv[Xc[:, 2] <= 0] = np.nan
    return uv.reshape(shp + (2,)), Xc[:, 2].reshape(shp)


def undistort(cam, uv):
    """Distorted pixels (...,2) → undistorted pixels (same K), NaN kept."""
    uv = np.asarray(uv, np.float64)
    shp = uv.shape
    f = uv.reshape(-1, 2)
    out = np.full_like(f, np.nan)
    ok = np.isfinite(f).all(1)
    if ok.any():
        if np.any(np.asarray(cam.dist) != 0):
            out[ok] = cv2.undistortPoints(f[ok].reshape(-1, 1, 2), cam.K, np.asarray(cam.dist, np.float64),
                                          P=cam.K).reshape(-1, 2)
        else:
            out[ok] = f[ok]
    return out.reshape(shp)


def triangulate(cams, uv, w, min_views=2, undistorted=False):
    """Weighted DLT. uv (V,...,2) distorted pixels, w (V,...) weights (0 = unused; NaN uv → 0).

    Returns X (...,3) world points (NaN where fewer than ``min_views`` weights are > 0).
    Each view contributes its two DLT rows scaled by its weight (rows normalised first, so the
    weight is a per-view confidence, independent of the point's depth)."""
    uv = np.asarray(uv, np.float64)
    w = np.asarray(w, np.float64).copy()
    V = len(cams)
    shp = uv.shape[1:-1]
    U = uv.reshape(V, -1, 2)
    W = w.reshape(V, -1)
    if not undistorted:
        U = np.stack([undistort(c, U[v]) for v, c in enumerate(cams)])
    W[~np.isfinite(U).all(-1)] = 0.0
    W[~np.isfinite(W)] = 0.0
    n = U.shape[1]
    A = np.zeros((n, 2 * V, 4))
    for v, c in enumerate(cams):
        P = c.P
        u = np.nan_to_num(U[v])
        r1 = u[:, :1] * P[2] - P[0]
        r2 = u[:, 1:] * P[2] - P[1]
        r1 /= np.linalg.norm(r1, axis=1, keepdims=True) + 1e-12
        r2 /= np.linalg.norm(r2, axis=1, keepdims=True) + 1e-12
        A[:, 2 * v] = r1 * W[v][:, None]
        A[:, 2 * v + 1] = r2 * W[v][:, None]
    X = np.full((n, 3), np.nan)
    enough = (W > 0).sum(0) >= min_views
    if enough.any():
        _, _, Vt = np.linalg.svd(A[enough])
        h = Vt[:, -1]
        X[enough] = h[:, :3] / h[:, 3:4]
    return X.reshape(shp + (3,))


def leave_one_out_points(cams, uv, vis, thr=0.5, min_views=2):
    """For each view v: the world points (V,T,J,3) triangulated from the *other* views (those
    with vis > thr, weight = vis; NaN where fewer than ``min_views``). uv (V,T,J,2) distorted
    pixels, vis (V,T,J)."""
    V = len(cams)
    und = np.stack([undistort(c, uv[v]) for v, c in enumerate(cams)])
    X = np.full(uv.shape[:-1] + (3,), np.nan)
    for v in range(V):
        others = [o for o in range(V) if o != v]
        w = np.where(vis[others] > thr, vis[others], 0.0)
        X[v] = triangulate([cams[o] for o in others], und[others], w, min_views, undistorted=True)
    return X


def leave_one_out(cams, uv, vis, thr=0.5, min_views=2):
    """For each view v: triangulate from the other views (those with vis > thr, weight = vis),
    reproject into v. uv (V,T,J,2), vis (V,T,J) → ref (V,T,J,2) distorted pixels (NaN: < min_views)."""
    X = leave_one_out_points(cams, uv, vis, thr, min_views)
    return np.stack([project(c, X[v])[0] for v, c in enumerate(cams)])


def to_camera(cam, X):
    """World points (...,3) → ``cam``'s frame (OpenCV axes, metres)."""
    return np.asarray(X, np.float64) @ cam.R.T + cam.t



# --- statistics -------------------------------------------------------------------------------

def robust_sigma(r, axis=0):
    """1.4826 · MAD (NaN ignored)."""
    r = np.asarray(r, np.float64)
    med = np.nanmedian(r, axis=axis, keepdims=True)
    return 1.4826 * np.nanmedian(np.abs(r - med), axis=axis)


def procrustes_errors(P, Q):
    """Per-frame similarity alignment of P onto Q (both (T,J,3), NaN rows ignored per frame;
    ``training.eval.metrics.procrustes_align``). Returns the per-point distance after alignment (T,J)
    (NaN where not used)."""
    from training.eval.metrics import procrustes_align
    T, J, _ = P.shape
    out = np.full((T, J), np.nan)
    for i in range(T):
        ok = np.isfinite(P[i]).all(1) & np.isfinite(Q[i]).all(1)
        if ok.sum() < 4:
            continue
        out[i, ok] = np.linalg.norm(procrustes_align(P[i, ok][None], Q[i, ok][None])[0] - Q[i, ok], axis=1)
    return out


def refine_extrinsics(cams, uv, vis, thr=0.5, iters=2, f_scale=10.0):
    """Sensitivity check only: robustly re-fit each camera's pose (6 dof) to the detections
    (alternating with triangulation). Returns (new cams, per-camera rotation change in degrees,
    translation change in metres). Absorbs view-dependent detector biases too — not a calibration."""
    import copy

    from scipy.optimize import least_squares

    w = np.where(vis > thr, vis, 0.0)
    ok = w > 0

    def apply(p):
        out = copy.deepcopy(cams)
        for v, c in enumerate(out):
            dR = cv2.Rodrigues(p[6 * v:6 * v + 3])[0]
            c.R, c.t = dR @ c.R, dR @ c.t + p[6 * v + 3:6 * v + 6]
        return out

    def res(p, X):
        r = []
        for v, c in enumerate(apply(p)):
            e = project(c, X)[0] - uv[v]
            e[~ok[v]] = 0.0
            r.append(np.nan_to_num(e).ravel())
        return np.concatenate(r)

    p = np.zeros(6 * len(cams))
    X = triangulate(cams, uv, w)
    for _ in range(iters):
        p = least_squares(res, p, args=(X,), loss="soft_l1", f_scale=f_scale, x_scale=0.01).x
        X = triangulate(apply(p), uv, w)
    rot = [float(np.degrees(np.linalg.norm(p[6 * v:6 * v + 3]))) for v in range(len(cams))]
    tr = [float(np.linalg.norm(p[6 * v + 3:6 * v + 6])) for v in range(len(cams))]
    return apply(p), rot, tr


def refine_rotations(cams, uv, vis, thr=0.5, max_deg=1.0, f_scale=10.0):
    """Re-fit only each camera's orientation to the detections: centres and intrinsics stay
    as calibrated, each rotation changes by at most ``max_deg``. One ``scipy.optimize.
    least_squares`` over the rotation vectors, whose residual re-triangulates the points from
    all views (weights = visibility > thr) and reprojects them into every view; robust
    (soft-L1 with ``f_scale`` px, folded into the residuals so that the bound — a stiff
    quadratic penalty beyond ``max_deg``, then an exact clip — is not robustified). A small
    orientation error (a camera knocked after calibration, a mount that settled) moves every
    landmark of a view by nearly the same amount, which is what a per-view constant residual
    looks like. Returns (new cams, per-camera rotation change in degrees)."""
    import copy

    from scipy.optimize import least_squares

    w = np.where(vis > thr, vis, 0.0)
    ok = w > 0
    und = np.stack([undistort(c, uv[v]) for v, c in enumerate(cams)])
    lim = np.radians(max_deg)

    def apply(p):   # p: rotation vectors in units of the bound, (3V,)
        out = copy.deepcopy(cams)
        for c, r in zip(out, lim * p.reshape(-1, 3)):
            centre = c.center
            c.R = cv2.Rodrigues(r)[0] @ c.R
            c.t = -c.R @ centre
        return out

    def res(p):
        cc = apply(p)
        X = triangulate(cc, und, w, undistorted=True)
        r = []
        for v, c in enumerate(cc):
            e = project(c, X)[0] - uv[v]
            e[~ok[v]] = 0.0
            r.append(np.nan_to_num(e).ravel())
        r = np.concatenate(r)
        r = r * np.sqrt(2.0 / (np.sqrt(1.0 + (r / f_scale) ** 2) + 1.0))   # r² = soft-L1 loss
        excess = np.maximum(np.linalg.norm(p.reshape(-1, 3), axis=1) - 1.0, 0.0)
        return np.concatenate([r, 1e4 * excess])

    p = least_squares(res, np.zeros(3 * len(cams))).x.reshape(-1, 3)
    p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1.0)       # exactly within the bound
    return apply(p.ravel()), [float(np.degrees(lim * np.linalg.norm(q))) for q in p]
