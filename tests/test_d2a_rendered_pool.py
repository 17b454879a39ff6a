"""Rendered clips → D2A per-frame samples in the synthetic pool's layout, and mixing pools by weight.

The clip file is fabricated with the rendered-clip layout (docs/rendered_observations.md) from
the synthesizer's observations of a small random motion of the open body (its keypoints, world
landmarks and mask stand in for MediaPipe's); out/rendered is not needed."""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.body import load_body_model  # noqa: E402
from engine.estimate.refine import silhouette_crops  # noqa: E402
from training.d2a import data as D  # noqa: E402
from training.d2a.rendered_pool import build_rendered_pool, pick_files  # noqa: E402
from training.d2a.train import train  # noqa: E402
from training.data.noise import load_noise_model  # noqa: E402
from training.data.synth import Synthesizer  # noqa: E402
from training.loop import read_log, save_checkpoint  # noqa: E402
from training.temporal.dataset import load_clips  # noqa: E402
from random_motions import smooth_motion, write_cache  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

T = 30
LOST = slice(10, 15)        # frames where "MediaPipe found nobody"
TINY = dict(d_model=32, heads=2, enc_layers=1, dec_layers=1, ffn_mult=2, dropout=0.0)


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, body):
    """A tiny temporal checkpoint (+ its Pr-VIPE), a fabricated rendered clip, its pool and a
    synthetic pool from the same checkpoint."""
    from training.d2a.coarse_mesh import load
    from training.prvipe.model import PrVIPE
    from training.temporal.model import TemporalModel
    d = tmp_path_factory.mktemp("d2a_rendered")
    save_checkpoint(d / "prvipe.pt", model=PrVIPE(width=32).state_dict(), model_args={"width": 32}, step=0)
    args = {"hidden": 16, "part_channels": 8}
    torch.manual_seed(0)
    save_checkpoint(d / "temporal.pt", model=TemporalModel(**args).state_dict(), model_args=args, step=0, window=8,
                    config={"prvipe": str(d / "prvipe.pt")})
    clip = fake_clip(d / "01_01_0.npz", body)
    n = build_rendered_pool([clip], d / "temporal.pt", d / "rendered", body=body)
    model, pv, window = D.load_temporal(d / "temporal.pt")
    sampler = D.D2ASampler(load_clips(write_cache(d / "cache"), "train"), body, model, pv, window,
                           load(body=body).indices, seq_len=12, views=1)
    D.save_pool(d / "synth", *D.generate(sampler, 2, seed=[3, 0]), {"split": "train"})
    return dict(dir=d, clip=clip, frames=n, temporal=d / "temporal.pt")


def fake_clip(path, body, masks=None):
    """A clip file with the rendered layout; ``masks`` replaces the observed segmentation."""
    poses, trans, betas = smooth_motion(T, seed=4)
    s = Synthesizer(body, noise=load_noise_model())(poses, trans, betas, np.random.default_rng(4), render=True)
    kp, world, valid = s["keypoints"].copy(), s["world"].copy(), s["valid"].copy()
    kp[LOST], world[LOST], valid[LOST] = np.nan, np.nan, False
    m = s["masks"].copy() if masks is None else masks
    m[LOST] = 0
    np.savez(path, keypoints=kp, world=world, valid=valid, masks=m, true_masks=s["masks"],
             joints=s["joints"], K=s["K"], extrinsics=s["extrinsics"], frame_size=s["frame_size"],
             camera_type=np.array(s["camera_type"]), poses=s["poses"], trans=s["trans"], betas=s["betas"],
             mirrored=np.array(False), fps=np.float32(30), clip=np.array("01_01"), seed=np.int64(0),
             start=np.int64(0))
    return path


def test_rendered_samples_have_the_synthetic_pool_layout(setup):
    r, s = D.load_pool(setup["dir"] / "rendered"), D.load_pool(setup["dir"] / "synth")
    assert setup["frames"] == T and set(r) == set(s) == set(D.KEYS)
    for k in D.KEYS:
        assert r[k].dtype == s[k].dtype == D.KEYS[k], k
        assert r[k].shape[1:] == s[k].shape[1:], k
    assert (r["window"] == 0).all() and (r["frame"] == np.arange(T)).all()
    v = np.asarray(r["valid"])
    assert np.abs(r["joints3d"][:, 0]).max() < 1e-6 and np.abs(r["temporal_joints"][v, 0]).max() < 1e-6
    assert np.isfinite(r["init_rot6d"]).all() and np.isfinite(r["features"]).all()
    # the truth is the stored motion: the targets' pelvis-relative joints are the stored joints'
    with np.load(setup["clip"]) as z:
        E = z["extrinsics"].astype(np.float64)
        j = np.einsum("tij,tnj->tni", E[:, :3, :3], z["joints"]) + E[:, None, :3, 3]
    np.testing.assert_allclose(r["joints3d"], j - j[:, :1], atol=2e-4)
    assert r["silhouette"][v].mean() > 0.05          # the true body re-rendered in the crop


def test_input_silhouette_is_the_stored_mediapipe_mask(setup, body, tmp_path):
    r = D.load_pool(setup["dir"] / "rendered")
    with np.load(setup["clip"]) as z:
        crop = silhouette_crops(z["masks"], tuple(z["frame_size"]), z["keypoints"])
        masks = z["masks"].copy()
    np.testing.assert_array_equal(r["silhouette_in"], np.round(crop * 255).astype(np.uint8))
    masks[:, :, : masks.shape[2] // 2] = 0            # MediaPipe loses the left half of the frame
    other = fake_clip(tmp_path / "01_01_0.npz", body, masks)
    build_rendered_pool([other], setup["temporal"], tmp_path / "pool", body=body)
    o = D.load_pool(tmp_path / "pool")
    v = np.asarray(r["valid"])
    assert (np.asarray(o["silhouette_in"], float).sum((1, 2)) < np.asarray(r["silhouette_in"], float).sum((1, 2)))[v].any()
    for k in ("silhouette", "joints3d", "features", "init_rot6d"):   # nothing else changes
        np.testing.assert_array_equal(o[k], r[k], err_msg=k)


def test_undetected_frames_are_invalid(setup):
    r = D.load_pool(setup["dir"] / "rendered")
    v = np.asarray(r["valid"])
    assert not v[LOST].any() and v.sum() >= T - 5 - 3
    assert (np.asarray(r["silhouette_in"])[LOST] == 0).all() and (np.asarray(r["joints2d_vis"])[LOST] == 0).all()


def marked_pool(value, n=40, valid=None):
    """An in-memory pool whose features carry ``value`` (which pool a frame came from)."""
    p = {k: np.zeros((n,) + shape, D.KEYS[k]) for k, shape in
         (("features", (202,)), ("silhouette_in", (56, 56)), ("valid", ()), ("frame", ()))}
    p["features"][:] = value
    p["frame"][:] = np.arange(n)
    p["valid"][:] = True if valid is None else valid
    return p


def test_pool_mixing_draws_from_both_by_weight():
    a, b = marked_pool(0.0), marked_pool(1.0, valid=np.arange(40) % 2 == 0)
    mix = D.PoolMix([a, b], [3.0, 1.0])
    rng = np.random.default_rng(0)
    batches = [mix.batch(rng, 16) for _ in range(200)]
    src = np.concatenate([x["features"][:, 0].numpy() for x in batches])
    assert 0.22 < src.mean() < 0.28                       # a quarter from the second pool
    first = np.concatenate([x["features"][:4, 0].numpy() for x in batches])
    assert 0.1 < first.mean() < 0.4                       # shuffled: the first frames too
    fr_b = np.concatenate([x["frame"][x["features"][:, 0] == 1].numpy() for x in batches])
    assert (fr_b % 2 == 0).all()                          # only detected frames
    # one pool draws exactly as the single-pool trainer always has
    one = D.PoolMix([b])
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    frames = np.flatnonzero(b["valid"])
    np.testing.assert_array_equal(one.batch(r1, 8)["frame"].numpy(),
                                  np.sort(r2.choice(frames, size=8, replace=False)))
    with pytest.raises(ValueError):
        D.PoolMix([a, marked_pool(1.0, valid=np.zeros(40, bool))])


def test_training_on_mixed_pools(setup, tmp_path, body):
    d = setup["dir"]
    cfg = {"pools": [{"path": str(d / "synth"), "weight": 0.5}, {"path": str(d / "rendered"), "weight": 0.5}],
           "val_pool": str(d / "synth"), "val_frames": 8, "out_dir": str(tmp_path / "run"), "seed": 0, "threads": 1,
           "coarse_vertices": 48, "model": dict(TINY), "train": {"use_imphmr": False}, "batch_size": 4, "lr": 1e-3,
           "warmup_steps": 1, "max_steps": 2, "log_every": 1, "ckpt_every": 2, "val_every": 2}
    assert train(cfg, body=body) == 2
    start = [r for r in read_log(tmp_path / "run") if r["kind"] == "start"][0]
    assert [p["path"] for p in start["pools"]] == [str(d / "synth"), str(d / "rendered")]
    assert start["pools"][1]["frames"] == int(np.asarray(D.load_pool(d / "rendered")["valid"]).sum())


def test_cli_errors(tmp_path, setup):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "training.d2a.rendered_pool", *args], capture_output=True, text=True)
    r = run("--temporal", str(setup["temporal"]), "--rendered", str(tmp_path), "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error: no rendered clips") and "Traceback" not in r.stderr
    r = run("--temporal", str(tmp_path / "none.pt"), "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and r.stderr.startswith("error: no temporal checkpoint")
    assert not (tmp_path / "p").exists()
    cfg = tmp_path / "c.json"
    cfg.write_text('{"pools": [{"path": "%s", "weight": 1}], "out_dir": "%s"}' % (tmp_path / "nopool", tmp_path / "o"))
    r = subprocess.run([sys.executable, "-m", "training.d2a.train", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no training pool at") and "Traceback" not in r.stderr
    files = [tmp_path / f"{i}.npz" for i in range(5)]
    assert pick_files(files, 2, 0) == pick_files(files, 2, 0) and len(pick_files(files, 2, 0)) == 2
    assert pick_files(files) == sorted(files)
