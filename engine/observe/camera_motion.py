"""Camera motion between successive frames: background homographies from dense optical flow.

The dynamic feature of the temporal model (seed 2): for frame t, the 15 homographies between
successive frames in [t−15, t], normalised and stacked to 15 × 9 = 135 values.

Conventions (shared with the synthetic-data generator, which calls ``homography_feature``):
* ``H[t]`` maps pixel coordinates of frame t−1 to frame t (x_t ~ H[t] · x_{t−1}), in the
  upright full-resolution frame of size (width, height). ``H[0]`` is the identity.
* Pixel coordinates as opencv's (``cv2.warpPerspective``): x right, y down, pixel centres at
  integers.
"""
import cv2
import numpy as np
from ..video.decode import shrink

FEATURE_WINDOW = 15          # homographies per frame
FEATURE_DIM = 9 * FEATURE_WINDOW


def normalise_homography(H, frame_size):
    """Express a pixel homography in normalised image coordinates, minus the identity.

    u = 2x/W − 1, v = 2y/H − 1 (both axes in [−1, 1], the frame's aspect not preserved),
    Hn = N · H · N⁻¹ with N the pixel → normalised map, divided by Hn[2,2], minus I.
    A static camera gives 9 zeros; a pan by d pixels gives 2d/W in entry 2 (and 2d/H in entry 5);
    a zoom by s about the centre gives s−1 in entries 0 and 4. Entry 8 is always 0.
    """
    W, Hh = frame_size
    N = np.array([[2.0 / W, 0, -1.0], [0, 2.0 / Hh, -1.0], [0, 0, 1.0]])
    Ni = np.array([[W / 2.0, 0, W / 2.0], [0, Hh / 2.0, Hh / 2.0], [0, 0, 1.0]])
    Hn = N @ np.asarray(H, np.float64) @ Ni
    if not np.isfinite(Hn).all() or abs(Hn[2, 2]) < 1e-9:
        return np.zeros((3, 3))
    return Hn / Hn[2, 2] - np.eye(3)


def homography_feature(H_list, frame_size, window=FEATURE_WINDOW):
    """The (T, 9·window) dynamic feature from per-frame homographies ``H_list`` (T,3,3).

    Row t stacks the normalised homographies (``normalise_homography``) of the pairs
    (t−window → t−window+1), …, (t−1 → t), oldest first, each flattened row-major to 9 values.
    Padding: pairs before the clip's start (t−k < 1) are the identity, i.e. 9 zeros; so are
    non-finite homographies (flow failed). ``H_list[0]`` (no predecessor) is ignored.
    """
    H = np.asarray(H_list, np.float64).reshape(-1, 3, 3)
    T = len(H)
    per = np.zeros((T, 9))            # per[0] stays 0: frame 0 has no predecessor
    for t in range(1, T):
        per[t] = normalise_homography(H[t], frame_size).ravel()
    out = np.zeros((T, window, 9))
    for k in range(window):           # slot k holds the pair ending at frame t − (window−1−k)
        lag = window - 1 - k
        if lag < T:
            out[lag:, k] = per[:T - lag]
    return out.reshape(T, window * 9).astype(np.float32)


class HomographyEstimator:
    """Frame-to-frame background homography from DIS optical flow, person pixels excluded.

    Feed frames in order with ``update(bgr, person_mask=None)``; each call returns H mapping the
    previous frame to this one in this frame's pixel coordinates (identity for the first frame,
    NaNs when too little background could be tracked). Flow runs on a grey copy whose longer side
    is at most ``flow_max_side``; H is rescaled to the input's pixels.
    """

    def __init__(self, flow_max_side=640, step=8, border=0.04, ransac_px=1.0, min_points=40,
                 preset=cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST):
        # ULTRAFAST: a small share of the pose detector's time, accurate enough for the
        # homographies; MEDIUM is more accurate but costs about as much as the detector
        # (docs/performance.md).
        self.flow_max_side = flow_max_side
        self.step = step
        self.border = border
        self.ransac_px = ransac_px
        self.min_points = min_points
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._prev = None
        self._prev_mask = None

    def update(self, bgr, person_mask=None):
        h, w = bgr.shape[:2]
        s = min(1.0, self.flow_max_side / max(w, h))
        sw, sh = max(8, round(w * s)), max(8, round(h * s))
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        if (sw, sh) != (w, h):
            grey = shrink(grey, (sw, sh))
        keep = np.ones((sh, sw), bool)
        if person_mask is not None and person_mask.size:
            m = cv2.resize(person_mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_LINEAR) > 0
            k = max(3, 2 * (max(sw, sh) // 60) + 1)  # dilate: masks are coarse at the edges
            keep = ~cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        prev, prev_keep = self._prev, self._prev_mask
        self._prev, self._prev_mask = grey, keep
        if prev is None or prev.shape != grey.shape:
            return np.eye(3)
        flow = self._dis.calc(prev, grey, None)
        b = int(round(self.border * max(sw, sh)))
        ys, xs = np.mgrid[b:sh - b:self.step, b:sw - b:self.step]
        ys, xs = ys.ravel(), xs.ravel()
        sel = prev_keep[ys, xs]
        xs, ys = xs[sel], ys[sel]
        if len(xs) < self.min_points:
            return np.full((3, 3), np.nan)
        src = np.stack([xs, ys], 1).astype(np.float32)
        dst = src + flow[ys, xs]
        inside = (dst[:, 0] >= 0) & (dst[:, 0] <= sw - 1) & (dst[:, 1] >= 0) & (dst[:, 1] <= sh - 1)
        dst_keep = keep[np.clip(np.round(dst[:, 1]).astype(int), 0, sh - 1),
                        np.clip(np.round(dst[:, 0]).astype(int), 0, sw - 1)]
        src, dst = src[inside & dst_keep], dst[inside & dst_keep]
        if len(src) < self.min_points:
            return np.full((3, 3), np.nan)
        Hs, inl = cv2.findHomography(src, dst, cv2.RANSAC, self.ransac_px, maxIters=2000, confidence=0.995)
        if Hs is None or inl is None or inl.sum() < self.min_points:
            return np.full((3, 3), np.nan)
        inl = inl.ravel().astype(bool)
        Hs, _ = cv2.findHomography(src[inl], dst[inl], 0)  # least squares on the inliers
        if Hs is None:
            return np.full((3, 3), np.nan)
        S = np.diag([sw / w, sh / h, 1.0])                 # full-res pixels → flow pixels
        H = np.linalg.inv(S) @ Hs @ S
        return H / H[2, 2]


# ---------------------------------------------------------------- camera motion compensation
def _polar_rotation(M):
    """The rotation nearest to M (3,3) (orthogonal polar factor, det +1)."""
    u, _, vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def camera_rotations(homographies, K0, R0=None, zoom=True, max_zoom_step=0.1):
    """World→camera rotations (T,3,3) and focal lengths (T,) of a camera that pans, tilts, rolls
    and zooms about a fixed centre, from the frame-to-frame homographies (``H[t]``: frame t−1
    → t, the module's convention).

    A rotating camera's background homography is H = K_t R K_{t−1}⁻¹ (R the rotation from
    camera t−1 to camera t), so with the principal point moved to the origin,
    diag(1/f_{t−1}, 1/f_{t−1}, 1)·H·diag(f_{t−1}, f_{t−1}, 1) = λ·diag(s, s, 1)·R with
    s = f_t/f_{t−1} the zoom step: s is the ratio of the first two rows' norms to the third's
    (clamped to 1 ± ``max_zoom_step``; 1 with ``zoom=False``) and R the nearest rotation.
    ``K0`` (3,3) the first frame's intrinsics (a wrong focal scales the recovered angles);
    ``R0`` the first frame's world→camera rotation (identity by default). Frames whose H is
    missing or non-finite are taken as no motion. Rotations accumulate along the clip.
    """
    H = np.asarray(homographies, np.float64).reshape(-1, 3, 3)
    T = len(H)
    cx, cy = K0[0, 2], K0[1, 2]
    C = np.array([[1.0, 0, cx], [0, 1, cy], [0, 0, 1]])
    Ci = np.array([[1.0, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    R = np.zeros((T, 3, 3))
    R[0] = np.eye(3) if R0 is None else R0
    f = np.full(T, float(K0[0, 0]))
    for t in range(1, T):
        f[t] = f[t - 1]
        Rrel = np.eye(3)
        if np.isfinite(H[t]).all() and abs(np.linalg.det(H[t])) > 1e-12:
            D, Di = np.diag([f[t - 1], f[t - 1], 1.0]), np.diag([1 / f[t - 1], 1 / f[t - 1], 1.0])
            B = Di @ Ci @ H[t] @ C @ D
            n = np.linalg.norm(B, axis=1)
            s = 1.0
            if zoom and n[2] > 1e-12:
                s = float(np.clip(0.5 * (n[0] + n[1]) / n[2], 1 - max_zoom_step, 1 + max_zoom_step))
            Rrel = _polar_rotation(np.diag([1 / s, 1 / s, 1.0]) @ B)
            f[t] = s * f[t - 1]
        R[t] = Rrel @ R[t - 1]
    return R, f
