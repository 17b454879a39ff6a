"""Rendered observations (training.render): the open body rendered so that the real MediaPipe
finds it, the stored arrays and their truth, the CMU split, resuming and the script's errors."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from random_motions import smooth_motion, write_cache


@pytest.fixture(scope="module")
def renderer():
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    if not OPEN_BODY_PATH.exists():
        pytest.skip("the open body (engine/data/open_body.npz) is not baked")
    from training.render.scene import ClipRenderer
    return ClipRenderer(load_body_model(), long_side=640)


def _calm_motion(T=12, seed=0):
    poses, trans, betas = smooth_motion(T, seed)
    poses[:, 3:] *= 0.3          # everyday joint angles: a standing, gesturing person
    return poses, trans, betas


def test_render_is_seeded_and_shows_the_body(renderer):
    poses, trans, betas = _calm_motion(6)
    f1, t1 = renderer.render(poses, trans, betas, np.random.default_rng(3), camera="tripod")
    f2, _ = renderer.render(poses, trans, betas, np.random.default_rng(3), camera="tripod")
    f3, _ = renderer.render(poses, trans, betas, np.random.default_rng(4), camera="tripod")
    assert all(np.array_equal(a, b) for a, b in zip(f1, f2))
    assert not np.array_equal(f1[0], f3[0])
    W, H = t1["frame_size"]
    assert max(W, H) == 640 and f1[0].shape == (H, W, 3) and f1[0].dtype == np.uint8
    assert (t1["silhouette_px"] > 500).all()
    # the body's pixels differ from the background around them
    m = t1["true_masks"][0] > 127
    assert m.any() and (~m).any()


def test_mediapipe_finds_the_rendered_person(renderer):
    pytest.importorskip("mediapipe")
    from training.render.dataset import detect_clip
    poses, trans, betas = _calm_motion(10)
    frames, truth = renderer.render(poses, trans, betas, np.random.default_rng(1), camera="tripod")
    det = detect_clip(frames, 30.0)
    assert det["valid"].sum() >= 8, det["valid"]
    t = np.flatnonzero(det["valid"])
    kp, true = det["keypoints"][t, :, :2], truth["landmarks2d"][t]
    box_h = true[..., 1].max(1) - true[..., 1].min(1)
    err = np.linalg.norm(kp - true, axis=-1) / box_h[:, None]
    body = [11, 12, 23, 24, 25, 26]            # shoulders, hips, knees
    assert np.median(err[:, body]) < 0.08
    # MediaPipe's person mask lies on the rendered silhouette
    a, b = det["masks"][t] > 127, truth["true_masks"][t] > 127
    iou = (a & b).sum() / max((a | b).sum(), 1)
    assert iou > 0.5


def test_stored_clip_shapes_and_truth_on_the_silhouette(renderer, tmp_path):
    pytest.importorskip("mediapipe")
    from engine.observe import mask_size
    from training.render import dataset as D
    cache = write_cache(tmp_path / "cache", clips=(("01_01", 14), ("13_01", 14)))
    arrays, frames = D.render_one(renderer, cache, "01_01", 0, base_seed=5)
    T = len(frames)
    assert T == 14
    W, H = (int(x) for x in arrays["frame_size"])
    mw, mh = mask_size(W, H)
    shapes = dict(keypoints=(T, 33, 3), world=(T, 33, 3), score=(T,), valid=(T,), masks=(T, mh, mw),
                  true_masks=(T, mh, mw), joints=(T, 24, 3), landmarks3d=(T, 33, 3), landmarks2d=(T, 33, 2),
                  landmarks_cam=(T, 33, 3), occluded=(T, 33), K=(T, 3, 3), extrinsics=(T, 4, 4),
                  poses=(T, 72), trans=(T, 3), betas=(10,))
    for k, s in shapes.items():
        assert arrays[k].shape == s, k
    # the truth is consistent: camera-frame landmarks = extrinsics · world landmarks, projected by K
    E, K = arrays["extrinsics"].astype(np.float64), arrays["K"].astype(np.float64)
    cam = np.einsum("tij,tnj->tni", E[:, :3, :3], arrays["landmarks3d"]) + E[:, None, :3, 3]
    assert np.allclose(cam, arrays["landmarks_cam"], atol=1e-3)
    uv = cam[..., :2] / cam[..., 2:] * K[:, None, [0, 1], [0, 1]] + K[:, None, :2, 2]
    assert np.allclose(uv, arrays["landmarks2d"], atol=0.05)
    # ... and lands on the rendered silhouette (visible landmarks, mask resolution, 1 cell slack)
    import cv2
    sx, sy = mw / W, mh / H
    on = []
    for t in range(T):
        m = cv2.dilate((arrays["true_masks"][t] > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
        q = np.clip((arrays["landmarks2d"][t] * [sx, sy]).astype(int), 0, [mw - 1, mh - 1])
        vis = ~arrays["occluded"][t]
        on.append(m[q[vis, 1], q[vis, 0]].mean())
    assert np.mean(on) > 0.95
    # saved and resumed: a clip on disk is skipped
    dst = D.output_path(tmp_path / "out", "01_01", 0)
    dst.parent.mkdir()
    D.save_atomic(dst, arrays)
    done, n, _ = D.run(cache, tmp_path / "out", [("01_01", 0)], renderer, base_seed=5, progress=lambda m: None)
    assert (done, n) == (0, 0)
    tot = D.write_manifest(tmp_path / "out")
    assert tot == dict(clips=1, frames=T, detected=int(arrays["valid"].sum()))


def test_only_training_clips_are_rendered(tmp_path, renderer):
    from training.data.splits import split_of
    from training.render import dataset as D
    cache = write_cache(tmp_path / "cache", clips=(("01_01", 60), ("02_01", 200), ("13_01", 60), ("16_01", 60),
                                                    ("124_01", 60), ("124_02", 60), ("124_03", 60)))
    clips = D.train_clips(cache)
    assert clips == ["01_01", "02_01", "124_01"]
    jobs = D.job_list(cache, clips, passes=2)
    assert {split_of(c) for c, _ in jobs} == {"train"}
    assert len({(c, s) for c, s in jobs}) == len(jobs)
    assert sum(c == "02_01" for c, _ in jobs) == 2 * 2      # a longer clip gets more windows
    for bad in ("13_01", "16_01", "124_02"):
        with pytest.raises(ValueError, match="only training clips"):
            D.render_one(renderer, cache, bad, 0)


def test_script_refuses_bad_input_in_one_line(tmp_path):
    script = str(ROOT / "scripts" / "render_observations.py")
    for args in (["run", "--cache", str(tmp_path / "none")], ["run", "--clips", "16_15", "--cache",
                 str(write_cache(tmp_path / "c"))], ["compare", "--out", str(tmp_path)],
                 ["run", "--passes", "0"], ["run", "--passes", "x"], ["bogus"]):
        out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr


def test_detection_stats_recover_known_noise_and_swaps():
    """Detections = truth + N(0, (0.01 box h)²), every 10th frame left/right swapped, 10 % of the
    frames missed: the statistics give back σ, the swap rate, the dropout and the depth error."""
    from engine.body.landmarks import MIRROR
    from training.render.stats import detection_stats
    rng = np.random.default_rng(0)
    clips = []
    for c in range(4):
        T = 200
        base = rng.uniform([300, 100], [500, 300], (33, 2))
        base[:, 1] = np.linspace(100, 500, 33)                 # box height 400 px
        true = base[None] + rng.normal(0, 5, (T, 1, 2))
        kp = true + rng.normal(0, 4.0, true.shape)              # σ = 0.01 box heights
        kp[::10] = kp[::10][:, MIRROR]
        vis = np.full((T, 33, 1), 0.9)
        keypoints = np.concatenate([kp, vis], -1)
        keypoints[5::10] = np.nan
        cam = np.concatenate([rng.normal(0, 0.3, (T, 33, 2)), 5 + rng.normal(0, 0.2, (T, 33, 1))], -1)
        world = cam.copy()
        world[..., 2] += rng.normal(0, 0.05, (T, 33))
        world[5::10] = np.nan
        clips.append(dict(keypoints=keypoints, landmarks2d=true, frame_size=np.array([960, 540]),
                          landmarks_cam=cam, world=world))
    s = detection_stats(clips)
    lr = [i for i in range(33) if MIRROR[i] != i]
    centre = [i for i in range(33) if MIRROR[i] == i]
    assert np.allclose(s["sigma_bh"][centre], 0.01, rtol=0.15)
    assert abs(s["swap_rate"] - 20 / 180) < 0.01
    assert abs(s["dropout_rate"] - 0.1) < 1e-9
    # hip-relative depth: noise of both hips' mean is removed; landmark error ≈ 0.05 m
    assert 0.035 < np.nanmedian(s["depth_sigma_m"]) < 0.07
    assert s["sigma_bh"][lr].min() > 0.005


def test_compare_plot_draws_both_sides(tmp_path):
    """The compare plot is written, with one bar pair per landmark group in each panel."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import cv2
    import render_observations as R
    groups = ("face", "hips", "knees")
    rs, rr = dict(zip(groups, (0.006, 0.009, 0.008))), dict(zip(groups, (0.012, 0.008, 0.012)))
    ds, dr = dict(zip(groups, (0.08, 0.03, 0.11))), dict(zip(groups, (0.14, 0.03, 0.10)))
    out = tmp_path / "img" / "cmp.png"
    R.plot_compare(out, rs, rr, ds, dr, (300.0, float("inf")))
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 600
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10      # drawn, not blank
