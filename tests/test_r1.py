"""R1 real-video benchmark (training.bench.r1) and the multi-view pieces it adds to training.eval.multiview."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.eval import multiview as mv
from test_detector_noise_multiview import DEMO, _points, _rig


def test_leave_one_out_points_are_exact_on_clean_views():
    cams, X = _rig(), _points(T=20)
    uv = np.stack([mv.project(c, X)[0] for c in cams])
    vis = np.full(uv.shape[:-1], 0.9)
    vis[0, :, :4] = 0.1                                   # view 0 does not see landmarks 0-3 …
    uv[0, :, :4] += 300.0                                 # … and what it reports there is wrong
    P = mv.leave_one_out_points(cams, uv, vis)
    assert P.shape == (4, 20, 33, 3)
    np.testing.assert_allclose(P, np.broadcast_to(X, P.shape), atol=1e-4)   # sub-mm everywhere
    # in a view's own frame: the other views' points, rigidly moved by that view's extrinsics
    Xc = mv.to_camera(cams[2], P[2])
    np.testing.assert_allclose(Xc, X @ cams[2].R.T + cams[2].t, atol=1e-4)
    # a point only one other view sees is unknown for that view
    vis2 = vis.copy()
    vis2[1:3, :, 5] = 0.0
    P2 = mv.leave_one_out_points(cams, uv, vis2)
    assert np.isnan(P2[3, :, 5]).all() and np.isnan(P2[0, :, 5]).all() and np.isfinite(P2[1, :, 5]).all()
    # the 2D leave-one-out reference is these points projected (unchanged behaviour)
    np.testing.assert_allclose(mv.leave_one_out(cams, uv, vis)[1], mv.project(cams[1], P[1])[0], atol=1e-9)


def _perturbed(cams, deg, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for c in cams:
        axis = rng.normal(size=3)
        dR = Rotation.from_rotvec(np.radians(deg) * axis / np.linalg.norm(axis)).as_matrix()
        R = dR @ c.R
        out.append(mv.Camera(c.name, c.K, c.dist, R, -R @ c.center, c.size))
    return out


def _angle_deg(Ra, Rb):
    return float(np.degrees(Rotation.from_matrix(Ra @ Rb.T).magnitude()))


def test_rotation_only_refinement_recovers_a_perturbed_rotation():
    cams, X = _rig(), _points(T=10)
    uv = np.stack([mv.project(c, X)[0] for c in cams])
    vis = np.full(uv.shape[:-1], 0.9)
    bad = _perturbed(cams, 0.6)
    before = np.nanmedian(np.linalg.norm(mv.leave_one_out(bad, uv, vis) - uv, axis=-1))
    assert before > 5                                      # 0.6° is several pixels at this focal length
    fixed, rot = mv.refine_rotations(bad, uv, vis, max_deg=1.0)
    for c, b, f, r in zip(cams, bad, fixed, rot):
        assert _angle_deg(f.R, c.R) < 0.05                 # back to the true orientation
        assert abs(r - _angle_deg(f.R, b.R)) < 1e-6        # the reported change is the applied one
        np.testing.assert_allclose(f.center, b.center, atol=1e-9)   # centres kept
        np.testing.assert_allclose(f.K, b.K)
    after = np.nanmedian(np.linalg.norm(mv.leave_one_out(fixed, uv, vis) - uv, axis=-1))
    assert after < 0.1 * before


def test_rotation_only_refinement_never_turns_a_camera_more_than_the_bound():
    cams, X = _rig(), _points(T=4)
    uv = np.stack([mv.project(c, X)[0] for c in cams])
    vis = np.full(uv.shape[:-1], 0.9)
    bad = _perturbed(cams, 2.5, seed=1)                  # further off than the bound allows
    fixed, rot = mv.refine_rotations(bad, uv, vis, max_deg=1.0)
    assert max(rot) <= 1.0 + 1e-9
    assert all(_angle_deg(f.R, b.R) <= 1.0 + 1e-6 for f, b in zip(fixed, bad))


def test_r1_bad_inputs_give_one_error_line(capsys, tmp_path):
    from training import bench
    assert bench.main(["r1", "--rows", "baseline,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown row 'nope' (choose from mediapipe, baseline, temporal, temporal+d2a, temporal+d2a+light, default, baseline+light, default+focal-auto, default+focal-calibrated, default+no-refine, default+no-follow, default+baseline, default+network-alone)"]
    assert bench.main(["r1", "--rows", "default", "--prior-blend", "1.5"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --prior-blend must be from 0 to 1, got 1.5"]
    assert bench.main(["r1", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no Pose2Sim demo in")


@pytest.mark.slow
@pytest.mark.skipif(not (DEMO / "calibration" / "Calib.qca.txt").exists(),
                    reason="Pose2Sim demo not fetched: run scripts/measure_detector_noise_multiview.py --fetch")
def test_r1_smoke_one_camera(capsys):
    from training import bench
    assert bench.main(["r1", "--cameras", "cam03", "--rows", "mediapipe,default", "--frames", "30"]) == 0
    out = capsys.readouterr().out
    assert "rotation-only refined" in out
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 6 and cells[1] == "cam03":
            rows.setdefault(cells[0], []).append(cells)
    assert set(rows) == {"MediaPipe world landmarks", "default (`python -m engine`)"}
    for name, tables in rows.items():
        assert len(tables) == 3                            # SMPL joints, limb landmarks, all 33 landmarks
        for cells in tables:
            assert cells[2] == "30/30"
            mpjpe, pa = float(cells[3]), float(cells[4])
            assert 20 < pa < mpjpe < 400, cells              # mm: a real person, not a degenerate fit
    est = rows["default (`python -m engine`)"][2]
    assert 0 < float(est[6]) < 25 and float(est[6]) <= float(est[7])   # reprojection median ≤ p90 (%)
    assert rows["MediaPipe world landmarks"][2][6] == "–"
    # MediaPipe's own landmarks are the same points in both limb tables; the body's are not
    mp, de = rows["MediaPipe world landmarks"], rows["default (`python -m engine`)"]
    assert mp[0][3:6] == mp[1][3:6] and de[0][3:6] != de[1][3:6]


@pytest.mark.slow
@pytest.mark.skipif(not (DEMO / "calibration" / "Calib.qca.txt").exists(),
                    reason="Pose2Sim demo not fetched: run scripts/measure_detector_noise_multiview.py --fetch")
def test_r1_default_faces_the_camera_where_the_face_is_seen_on_every_camera():
    """cam01/cam02 see the person's front, cam03/cam04 the back; cam02's detector mirrors him for
    25 frames. The default output never faces away while the face is seen from the front, and
    never turns the pelvis more than 30° in one frame outside a sustained turn."""
    from training.bench.r1 import evaluate
    res, _ = evaluate(["default"], ["cam01", "cam02", "cam03", "cam04"], log=lambda s: None)
    for cam, s in res["default"].items():
        assert s["facing"]["away"] == 0, (cam, s["facing"])
        assert s["facing"]["max_step"] < 30, (cam, s["facing"])
    assert res["default"]["cam02"]["relabelled"] >= 20          # the mirrored run is undone
