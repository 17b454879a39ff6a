"""Multi-view geometry behind scripts/measure_detector_noise_multiview.py (training.eval.multiview)."""
import json
from pathlib import Path

import numpy as np
import pytest

from training.eval import multiview as mv

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "out" / "pose2sim_demo"


def _look_at(center, target=(0.0, 0.0, 1.0)):
    """World→camera R, t for a camera at ``center`` looking at ``target`` (z up in the world)."""
    c = np.asarray(center, float)
    z = np.asarray(target, float) - c
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ c


def _rig(dist=True):
    cams = []
    for i, ang in enumerate(np.radians([0, 80, 170, 260])):
        R, t = _look_at([3.5 * np.cos(ang), 3.5 * np.sin(ang), 1.5 + 0.1 * i])
        K = np.array([[1600.0, 0, 540 + 3 * i], [0, 1605.0, 960 - 2 * i], [0, 0, 1]])
        d = np.array([-0.2, 0.08, 0.001, -0.0008, 0.0]) if dist else np.zeros(5)
        cams.append(mv.Camera(f"cam{i}", K, d, R, t, (1088, 1920)))
    return cams


def _points(T=60, J=33, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([-0.4, -0.4, 0.1], [0.4, 0.4, 1.9], size=(T, J, 3))


def test_triangulation_with_distortion_recovers_points():
    cams, X = _rig(), _points()
    uv = np.stack([mv.project(c, X)[0] for c in cams])
    assert np.isfinite(uv).all()
    # distortion matters here: ignoring it would move the points by pixels
    flat = np.stack([mv.project(mv.Camera(c.name, c.K, np.zeros(5), c.R, c.t, c.size), X)[0] for c in cams])
    assert np.abs(flat - uv).max() > 5
    Xt = mv.triangulate(cams, uv, np.ones(uv.shape[:-1]))
    assert np.abs(Xt - X).max() < 1e-4                 # sub-mm
    re = np.stack([mv.project(c, Xt)[0] for c in cams])
    assert np.abs(re - uv).max() < 0.05               # sub-px
    # weights: a grossly wrong view with weight 0 is ignored; fewer than 2 views → NaN
    bad = uv.copy()
    bad[0] += 80.0
    w = np.ones(uv.shape[:-1])
    w[0] = 0.0
    assert np.abs(mv.triangulate(cams, bad, w) - X).max() < 1e-4
    w[1] = 0.0
    w[2, :, :5] = 0.0
    Xn = mv.triangulate(cams, uv, w)
    assert np.isnan(Xn[:, :5]).all() and np.isfinite(Xn[:, 5:]).all()


def test_leave_one_out_recovers_injected_noise():
    cams, X = _rig(), _points(T=200)
    rng = np.random.default_rng(1)
    sigma = 4.0
    clean = np.stack([mv.project(c, X)[0] for c in cams])
    uv = clean + rng.normal(0, sigma, clean.shape)
    vis = np.full(uv.shape[:-1], 0.9)
    ref = mv.leave_one_out(cams, uv, vis)
    r = (uv - ref).reshape(-1, 2)
    s = mv.robust_sigma(r)
    # the reference alone is closer to the clean projection than one detection …
    e_ref = mv.robust_sigma((ref - clean).reshape(-1, 2))
    assert np.all(e_ref < sigma), e_ref
    # … and the residual is the detection noise plus the reference's own error, in quadrature
    np.testing.assert_allclose(s, np.sqrt(sigma ** 2 + e_ref ** 2), rtol=0.08)
    assert np.all(s > sigma) and np.all(s < 1.5 * sigma), s
    # a view-wide bias shows up as the median of the residual in that view
    uv_b = uv.copy()
    uv_b[2, ..., 0] += 10.0
    ref_b = mv.leave_one_out(cams, uv_b, vis)
    assert abs(np.median(uv_b[2, ..., 0] - ref_b[2, ..., 0]) - 10.0) < 1.0


QCA = """<?xml version='1.0' encoding='ASCII'?>
<calibration type="regular">
  <cameras>
    <camera active="1" avg-residual="0.4" model="none" serial="camA" viewrotation="0">
      <fov_marker bottom="1919" left="0" right="1087" top="0"/>
      <fov_video bottom="1919" left="8" right="1087" top="0"/>
      <transform r11="0" r12="1" r13="0" r21="0" r22="0" r23="1" r31="1" r32="0" r33="0"
                 x="1000" y="-2000" z="1500"/>
      <intrinsic centerPointU="34560" centerPointV="61440" focalLengthU="102400" focalLengthV="102464"
                 radialDistortion1="-0.05" radialDistortion2="0.14" radialDistortion3="0"
                 tangentalDistortion1="0.0006" tangentalDistortion2="0.0007" skew="0"/>
    </camera>
  </cameras>
</calibration>"""


def test_qca_parser():
    (c,) = mv.read_qca(QCA)
    assert c.name == "camA"
    # 1/64 sub-pixels; principal point relative to the video window (left = 8)
    np.testing.assert_allclose(c.K, [[1600, 0, 540 - 8], [0, 1601, 960], [0, 0, 1]])
    np.testing.assert_allclose(c.dist, [-0.05, 0.14, 0.0006, 0.0007, 0.0])
    M = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], float)
    np.testing.assert_allclose(c.R, np.diag([1, -1, -1]) @ M)
    np.testing.assert_allclose(c.center, [1.0, -2.0, 1.5])     # mm → m, camera position
    np.testing.assert_allclose(c.t, -c.R @ [1.0, -2.0, 1.5])
    assert c.size == (1080, 1920)
    # a video narrower than the window: symmetric crop assumed
    (c2,) = mv.read_qca(QCA, video_sizes={"camA": (1072, 1920)})
    assert c2.K[0, 2] == pytest.approx(532 - 4) and c2.size == (1072, 1920)
    (c3,) = mv.read_qca(QCA, rotation="transpose", flip_yz=False)
    np.testing.assert_allclose(c3.R, M.T)


def test_procrustes_removes_similarity():
    rng = np.random.default_rng(2)
    Q = rng.normal(size=(5, 33, 3))
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R *= np.sign(np.linalg.det(R))
    P = 0.6 * Q @ R.T + 0.3
    assert np.nanmax(mv.procrustes_errors(P, Q)) < 1e-9
    P[:, 0] += 0.5
    e = mv.procrustes_errors(P, Q)
    assert np.nanmedian(e[:, 0]) > 0.1


@pytest.mark.skipif(not (DEMO / "calibration" / "Calib.qca.txt").exists(),
                    reason="Pose2Sim demo not fetched: run scripts/measure_detector_noise_multiview.py --fetch")
def test_demo_calibration_reprojects():
    from training.eval import pose2sim_demo as m
    cams = m.load_calibration(DEMO)
    obs = m.detect_views(DEMO)
    assert obs["frames"] == [100, 100, 100, 100]
    rep = m.reprojection_check(cams, obs["uv"], obs["vis"])
    # the file calibration reprojects MediaPipe's landmarks at ~16 px median (person ~800 px tall;
    # wrong conventions give > 150 px)
    assert rep["median_px"] < 25, rep["per_view_px"]
    refined, rot, tr = mv.refine_extrinsics(cams, obs["uv"], obs["vis"])
    assert m.reprojection_check(refined, obs["uv"], obs["vis"])["median_px"] < 12
    assert max(rot) < 3 and max(tr) < 0.2


def test_json_block_does_not_touch_existing_fields():
    doc = json.loads((ROOT / "training" / "data" / "detector_noise.json").read_text())
    assert doc["format"] == "detector_noise/1"
    assert len(doc["keypoints2d"]["sigma_per_box_height"]) == 33
    mvr = doc.get("multiview_reference")
    if mvr is None:
        pytest.skip("no multiview_reference block written yet")
    for k in ("sigma_per_box_height", "bias_px", "sigma_px", "outlier_rate"):
        assert len(mvr["keypoints2d"][k]) == 33
    assert len(mvr["depth"]["sigma_m"]) == 33
    assert len(mvr["self_consistency_comparison"]["sigma_ratio_reference_over_self"]) == 33
