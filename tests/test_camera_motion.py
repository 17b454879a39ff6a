"""Background homographies from optical flow match a known synthetic camera pan/zoom."""
import cv2
import numpy as np

from engine.observe.camera_motion import (FEATURE_DIM, HomographyEstimator, homography_feature,
                                  normalise_homography)

W, H = 640, 360


def _texture(rng, size=(1400, 800)):
    """A cluttered, multi-scale background (like foliage/buildings), no repeating pattern."""
    tex = np.zeros((size[1], size[0]), np.float32)
    for k in (3, 9, 27):
        n = rng.random((size[1] // k + 2, size[0] // k + 2)).astype(np.float32)
        tex += cv2.resize(n, size, interpolation=cv2.INTER_CUBIC)[:size[1], :size[0]] / k ** 0.3
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    for _ in range(60):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = (int(rng.integers(0, size[0])), int(rng.integers(0, size[1])))
        cv2.rectangle(tex, p, (p[0] + int(rng.integers(10, 80)), p[1] + int(rng.integers(10, 80))), c[0], -1)
    return cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR)


def _camera(t):
    """Texture → frame homography at frame t: a pan with a slow zoom and a slight roll."""
    s = 1.0 + 0.012 * t
    a = np.deg2rad(0.15 * t)
    cx, cy = 700 + 6.0 * t, 400 + 2.5 * t          # texture point at the frame centre
    R = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    return np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]]) @ R @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])


def _corner_error(Ha, Hb):
    c = np.array([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], np.float64).reshape(-1, 1, 2)
    return np.linalg.norm(cv2.perspectiveTransform(c, Ha) - cv2.perspectiveTransform(c, Hb), axis=-1).mean()


def test_recovered_homographies_match_synthetic_pan_zoom():
    rng = np.random.default_rng(3)
    tex = _texture(rng)
    est = HomographyEstimator()
    errs, Hs_est, Hs_true = [], [], []
    for t in range(12):
        frame = cv2.warpPerspective(tex, _camera(t), (W, H), flags=cv2.INTER_LINEAR)
        # a "person" moving against the camera motion, excluded by its mask
        mask = np.zeros((H, W), np.uint8)
        cv2.ellipse(mask, (200 + 15 * t, 200), (40, 110), 0, 0, 360, 255, -1)
        frame[mask > 0] = rng.integers(0, 255, (int((mask > 0).sum()), 3), dtype=np.uint8)
        He = est.update(frame, mask)
        if t == 0:
            assert np.allclose(He, np.eye(3))
            continue
        Ht = _camera(t) @ np.linalg.inv(_camera(t - 1))
        errs.append(_corner_error(He, Ht))
        Hs_est.append(He)
        Hs_true.append(Ht)
    assert np.mean(errs) < 1.0, errs
    assert np.max(errs) < 2.0, errs
    # the normalised feature agrees too
    fe = homography_feature([np.eye(3)] + Hs_est, (W, H))
    ft = homography_feature([np.eye(3)] + Hs_true, (W, H))
    assert fe.shape == (12, FEATURE_DIM)
    assert np.abs(fe - ft).max() < 0.01


def test_feature_normalisation_and_padding():
    pan = np.array([[1, 0, 32.0], [0, 1, -18.0], [0, 0, 1]])
    zoom = np.array([[1.1, 0, -0.05 * W], [0, 1.1, -0.05 * H], [0, 0, 1]])  # 1.1× about the centre
    n = normalise_homography(pan, (W, H))
    assert np.allclose(n.ravel(), [0, 0, 0.1, 0, 0, -0.1, 0, 0, 0])
    assert np.allclose(normalise_homography(zoom, (W, H)).ravel(), [0.1, 0, 0, 0, 0.1, 0, 0, 0, 0])
    assert np.allclose(normalise_homography(2.0 * pan, (W, H)), n)   # scale-free
    T = 20
    Hs = [np.eye(3)] + [pan] * (T - 1)
    f = homography_feature(Hs, (W, H)).reshape(T, 15, 9)
    assert np.all(f[0] == 0)                          # clip start: all padding
    for t in range(T):                                # slot k is real iff t−14+k ≥ 1
        real = np.arange(15) >= 15 - t
        assert np.allclose(f[t, real], n.ravel()) and np.all(f[t, ~real] == 0)
    bad = list(Hs)
    bad[5] = np.full((3, 3), np.nan)                  # failed flow → identity (zeros)
    assert np.all(homography_feature(bad, (W, H)).reshape(T, 15, 9)[5, -1] == 0)
    assert homography_feature(np.eye(3)[None], (W, H)).shape == (1, 135)
