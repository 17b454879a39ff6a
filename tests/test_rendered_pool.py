"""Rendered clips → training windows in the synthetic pool's layout, and mixing pools by weight.

The clip files here are fabricated with the rendered-clip layout (docs/rendered_observations.md)
from the synthesizer's observations of a small random motion; out/rendered is not needed."""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.data.capsule_body import capsule_body  # noqa: E402
from training.data.noise import load_noise_model  # noqa: E402
from training.data.synth import Synthesizer  # noqa: E402
from training.geometry import JointShapeModel, forward_kinematics  # noqa: E402
from training.temporal.dataset import MixedWindows, WindowSampler  # noqa: E402
from training.temporal.rendered_pool import build_rendered_pool, window_starts  # noqa: E402
from training.temporal.train import pool_windows, train  # noqa: E402
from training.temporal.window_pool import KEYS, PoolWindows, build_pool, pool_size  # noqa: E402
from random_motions import smooth_motion  # noqa: E402
from test_train_temporal import tiny_config  # noqa: E402

BODY = capsule_body()
LOST = slice(10, 17)        # frames where "MediaPipe found nobody"


def fake_clip(path, T=40, clip="01_01", seed=0):
    """A clip file with the rendered layout: the synthesizer's keypoints/world stand in for
    MediaPipe's; the truth is the posed motion and its cameras."""
    poses, trans, betas = smooth_motion(T, seed=seed)
    s = Synthesizer(BODY, noise=load_noise_model())(poses, trans, betas, np.random.default_rng(seed), render=False)
    kp, world, valid = s["keypoints"].copy(), s["world"].copy(), s["valid"].copy()
    kp[LOST], world[LOST], valid[LOST] = np.nan, np.nan, False
    np.savez(path, keypoints=kp, world=world, valid=valid, score=np.where(valid, 0.9, np.nan).astype(np.float32),
             joints=s["joints"], K=s["K"], extrinsics=s["extrinsics"], frame_size=s["frame_size"],
             camera_type=np.array(s["camera_type"]), poses=s["poses"], trans=s["trans"], betas=s["betas"],
             mirrored=np.array(False), fps=np.float32(30), clip=np.array(clip), seed=np.int64(seed))
    return path


def read_pool(path):
    return {k: np.load(path / f"{k}.npy") for k in KEYS}


def test_rendered_windows_have_the_synthetic_pool_layout(tmp_path):
    f = fake_clip(tmp_path / "01_01_0.npz")
    n, frames, clips = build_rendered_pool([f], tmp_path / "pool", window=16, stride=8, min_valid=0.5)
    starts = window_starts(np.load(f)["valid"], 16, 8, 0.5)
    assert n == len(starts) == pool_size(tmp_path / "pool") and clips == 1 and frames == 40
    synth = WindowSampler([("01_01", *smooth_motion(40, seed=1))], BODY, window=16, seq_len=24, views=1,
                          windows_per_view=1).sequence(np.random.default_rng(0))[0]
    w = next(iter(PoolWindows(tmp_path / "pool", seed=0)))
    assert set(w) == set(KEYS)
    for k in KEYS:
        assert w[k].shape == synth[k].shape and w[k].dtype == synth[k].dtype, k
        assert np.isfinite(w[k]).all(), k


def test_undetected_frames_are_invalid_with_zero_inputs(tmp_path):
    f = fake_clip(tmp_path / "01_01_0.npz")
    build_rendered_pool([f], tmp_path / "pool", window=16, stride=8, min_valid=0.5)
    p = read_pool(tmp_path / "pool")
    a = window_starts(np.load(f)["valid"], 16, 8, 0.5).index(8)      # frames 8..23 hold the gap
    lost = np.zeros(16, bool)
    lost[LOST.start - 8:LOST.stop - 8] = True
    assert (p["valid"][a] == ~lost).all()
    assert (p["keypoints99"][a][lost] == 0).all() and (p["features"][a][lost, :198] == 0).all()
    assert (p["joints2d_vis"][a][lost] == 0).all() and (p["joints2d_vis"][a][~lost] > 0).any()
    eye6 = np.tile([1.0, 0, 0, 0, 1, 0], 24)
    np.testing.assert_allclose(p["ik_prior"][a][lost], np.broadcast_to(eye6, (lost.sum(), 144)))
    assert np.abs(p["features"][a][~lost, :99]).sum() > 0


def test_truth_rotations_reproduce_the_camera_frame_joints(tmp_path):
    f = fake_clip(tmp_path / "01_01_0.npz", seed=3)
    build_rendered_pool([f], tmp_path / "pool", window=16, stride=8)
    p = read_pool(tmp_path / "pool")
    jm = JointShapeModel(BODY)
    j = forward_kinematics(torch.as_tensor(p["rotmats"]).double(), jm(torch.as_tensor(p["betas"])).double()).numpy()
    gt = p["joints_cam"].astype(np.float64)
    np.testing.assert_allclose(j - j[:, :, :1], gt - gt[:, :, :1], atol=1e-4)
    # the camera frame: the body is in front of the camera
    assert (gt[..., 2] > 0.5).all()


def test_focal_known_or_the_default_guess(tmp_path):
    f = fake_clip(tmp_path / "01_01_0.npz")
    z = np.load(f)
    side = float(max(z["frame_size"]))
    known = np.log(np.median(z["K"][:, 0, 0]) / side)
    build_rendered_pool([f], tmp_path / "known", window=16, focal_known_prob=1.0)
    build_rendered_pool([f], tmp_path / "guess", window=16, focal_known_prob=0.0)
    np.testing.assert_allclose(np.load(tmp_path / "known" / "features.npy")[..., 201], known, atol=0.05)
    np.testing.assert_allclose(np.load(tmp_path / "guess" / "features.npy")[..., 201], 0.0, atol=1e-6)


def test_windows_with_too_few_detections_are_left_out():
    valid = np.ones(40, bool)
    valid[:20] = False
    assert window_starts(valid, 16, 8, 0.5) == [16, 24]      # 4 of 16 detected from 8: out
    assert window_starts(valid, 16, 8, 1.0) == [24]
    assert window_starts(valid[:10], 16, 8) == []


def _tiny_pool(path, value, n=5):
    path.mkdir(parents=True)
    for k in KEYS:
        np.save(path / f"{k}.npy", np.full((n, 2), value, np.float32))
    return path


def test_pools_are_mixed_at_their_weights(tmp_path):
    a, b = _tiny_pool(tmp_path / "a", 0.0), _tiny_pool(tmp_path / "b", 1.0)
    ds = pool_windows({"pools": [{"path": str(a), "weight": 0.25}, {"path": str(b), "weight": 0.75}]}, seed=0)
    it = iter(ds)
    share_b = np.mean([next(it)["features"][0] for _ in range(4000)])
    assert abs(share_b - 0.75) < 0.03
    one = iter(pool_windows({"pool": str(a)}, seed=0))      # the single "pool" key as before
    assert isinstance(pool_windows({"pool": str(a)}, seed=0), PoolWindows) and next(one)["features"][0] == 0
    assert pool_windows({"data": {}}, seed=0) is None
    with pytest.raises(ValueError):
        MixedWindows([PoolWindows(a), PoolWindows(b)], [0.0, 0.0])


def test_training_on_a_synthetic_and_a_rendered_pool(tmp_path):
    cfg = tiny_config(tmp_path)
    build_pool(cfg["cache"], 2, cfg["data"], tmp_path / "synth", seed=1, workers=1)
    build_rendered_pool([fake_clip(tmp_path / "01_01_0.npz")], tmp_path / "rendered", window=8, stride=4)
    cfg["pools"] = [{"path": str(tmp_path / "synth"), "weight": 0.5}, {"path": str(tmp_path / "rendered"), "weight": 0.5}]
    assert train(cfg) == 3
    from training.loop import read_log
    log = read_log(tmp_path / "run")
    pools = [r for r in log if r["kind"] == "pool"]
    assert [r["weight"] for r in pools] == [0.5, 0.5] and pools[1]["windows"] == pool_size(tmp_path / "rendered")
    assert all(np.isfinite(r["loss"]) for r in log if r["kind"] == "train")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "training.temporal.rendered_pool",
                           "--config", "training/configs/temporal_cpu_aug2.json", *args],
                          capture_output=True, text=True)


def test_cli_bad_inputs_are_one_error_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _cli("--rendered", str(tmp_path / "empty"), "--out", str(tmp_path / "pool"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "val").mkdir()
    fake_clip(tmp_path / "val" / "13_01_0.npz", clip="13_01")      # subject 13 is the val split
    r = _cli("--rendered", str(tmp_path / "val"), "--out", str(tmp_path / "pool"))
    assert r.returncode == 2 and "train split" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "pool").exists()


def test_scoring_a_pool(tmp_path):
    from training.temporal.rendered_pool import score_pool
    build_rendered_pool([fake_clip(tmp_path / "01_01_0.npz")], tmp_path / "pool", window=16, stride=8)
    res = score_pool(tmp_path / "pool", {"ik": None}, n=10)
    m, pa = res["ik"]
    assert 0 < pa < m < 1000          # the IK prior is an estimate, not the truth
    r = _cli("--score", str(tmp_path / "nothing"))
    assert r.returncode == 2 and r.stderr.startswith("error: no pool") and len(r.stderr.strip().splitlines()) == 1
