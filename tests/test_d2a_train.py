"""Seed-0 refinement training: the per-frame pool (keys, shapes, the run-time silhouette crop),
train_d2a (checkpoint, resume, ablation rows), the ablation table with its σ reliability plot,
and the export CLI. Tiny models and a tiny cache; the open body (the coarse vertex set is
defined on its mesh)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.body import load_body_model  # noqa: E402
from engine.estimate.refine import crop_boxes, silhouette_crops  # noqa: E402
from training.d2a import data as D  # noqa: E402
from training.temporal.dataset import load_clips  # noqa: E402
from training.d2a.model import ABLATION_ROWS  # noqa: E402
from training.loop import load_checkpoint, read_log, save_checkpoint  # noqa: E402
from training.d2a.train import apply_ablation, build_training, row_out_dir, train  # noqa: E402
from random_motions import write_cache  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(d_model=32, heads=2, enc_layers=1, dec_layers=1, ffn_mult=2, dropout=0.0)
TINY_IMP = dict(feat_dim=8, hidden=16, render_size=8, samples=8)
COARSE = 48


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, body):
    """A tiny cache, a tiny temporal checkpoint (+ its Pr-VIPE) and train/test pools."""
    from training.d2a.coarse_mesh import load
    from training.prvipe.model import PrVIPE
    from training.temporal.model import TemporalModel
    d = tmp_path_factory.mktemp("d2a")
    cache = write_cache(d / "cache")
    save_checkpoint(d / "prvipe.pt", model=PrVIPE(width=32).state_dict(), model_args={"width": 32}, step=0)
    args = {"hidden": 16, "part_channels": 8}
    torch.manual_seed(0)
    save_checkpoint(d / "temporal.pt", model=TemporalModel(**args).state_dict(), model_args=args, step=0, window=8,
                    config={"prvipe": str(d / "prvipe.pt")})
    model, pv, window = D.load_temporal(d / "temporal.pt")
    idx = load(body=body).indices
    pools = {}
    for split in ("train", "test"):
        sampler = D.D2ASampler(load_clips(cache, split), body, model, pv, window, idx, seq_len=12, views=2)
        arrays, infos = D.generate(sampler, 2 if split == "train" else 1, seed=[3, len(pools)])
        D.save_pool(d / split, arrays, infos, {"split": split})
        pools[split] = d / split
    return dict(dir=d, cache=cache, temporal=d / "temporal.pt", sampler=sampler, pools=pools)


def tiny_config(setup, out, **over):
    cfg = {"pool": str(setup["pools"]["train"]), "val_pool": str(setup["pools"]["train"]), "val_frames": 8,
           "out_dir": str(out), "seed": 0, "threads": 1, "coarse_vertices": COARSE, "model": dict(TINY),
           "train": {"imphmr_args": dict(TINY_IMP)}, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1,
           "max_steps": 3, "log_every": 1, "ckpt_every": 3, "val_every": 3}
    cfg.update(over)
    return cfg


def test_pool_keys_shapes_and_order(setup):
    pool = D.load_pool(setup["pools"]["train"])
    N = len(pool["features"])
    assert set(pool) == set(D.KEYS) and N == 2 * 2 * 12          # sequences × views × frames
    shapes = {"features": (202,), "silhouette_in": (56, 56), "init_rot6d": (24, 6), "init_betas": (10,),
              "init_cam": (3,), "joints3d": (24, 3), "vertices_coarse": (431, 3), "rotmats": (24, 3, 3),
              "betas": (10,), "joints2d": (24, 2), "joints2d_vis": (24,), "silhouette": (56, 56), "valid": (),
              "temporal_joints": (24, 3), "window": (), "frame": ()}
    for k, s in shapes.items():
        assert pool[k].shape == (N,) + s, k
        assert pool[k].dtype == D.KEYS[k], k
    assert (pool["window"] == np.repeat(np.arange(4), 12)).all() and (pool["frame"] == np.tile(np.arange(12), 4)).all()
    assert np.abs(pool["joints3d"][:, 0]).max() < 1e-6 and np.abs(pool["temporal_joints"][:, 0]).max() < 1e-6
    v = pool["valid"]
    assert v.sum() >= N // 2 and np.isfinite(pool["init_rot6d"]).all() and np.isfinite(pool["features"]).all()
    # the coarse vertices lie on the body around the joints (metres, same frame and origin)
    d = np.linalg.norm(pool["vertices_coarse"][:, :, None] - pool["joints3d"][:, None], axis=-1).min(1)
    assert np.median(d) < 0.12
    assert len(json.loads((setup["pools"]["train"] / "meta.json").read_text())["windows"]) == 4
    b = D.pool_batch(pool, [0, 5], num_coarse=COARSE)
    assert b["vertices_coarse"].shape == (2, COARSE, 3) and b["silhouette_in"].dtype == torch.float32
    assert float(b["silhouette_in"].max()) <= 1.0


def test_speed_range_plays_motion_faster_with_the_same_frame_count(setup, body):
    """speed_range (as the temporal model's pool): about as many frames (the resampling margin
    may add one), more motion per frame."""
    from training.d2a.coarse_mesh import load
    model, pv, window = D.load_temporal(setup["temporal"])
    clips = load_clips(setup["cache"], "train")
    idx = load(body=body).indices

    def frames(speed):
        s = D.D2ASampler(clips, body, model, pv, window, idx, seq_len=12, views=1, speed_range=speed)
        fr, info = s.sequence(np.random.default_rng(5))[0]
        return fr, info

    slow, i_slow = frames((1.0, 1.0))
    fast, i_fast = frames((2.9, 3.0))
    assert len(slow["features"]) == 12 and 12 <= len(fast["features"]) <= 14
    assert i_slow["speed"] == 1.0 and 2.9 <= i_fast["speed"] <= 3.0
    step = lambda f: np.linalg.norm(np.diff(f["joints3d"], axis=0), axis=-1).mean()  # noqa: E731
    assert step(fast) > 1.5 * step(slow)


def test_silhouette_input_is_the_run_time_crop_of_the_observed_mask(setup):
    sampler = setup["sampler"]
    rng = np.random.default_rng(5)
    clip, poses, trans, betas = sampler.clips[0]
    s = sampler.synth(poses[:12], trans[:12], betas, rng, render=True)
    fr = sampler.view(s, rng)
    w, h = (int(x) for x in s["frame_size"])
    want = silhouette_crops(s["masks"], (w, h), s["keypoints"], 56)
    np.testing.assert_array_equal(fr["silhouette_in"], np.round(want * 255).astype(np.uint8))
    ok = fr["valid"] & np.isfinite(crop_boxes(s["keypoints"])).all(1)
    assert ok.sum() >= 6
    # the target is the true body re-rendered in that same box: it overlaps the observed mask
    a, b = fr["silhouette_in"][ok] > 127, fr["silhouette"][ok] > 0
    iou = (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)
    assert np.median(iou) > 0.6, iou
    # the temporal estimate's joints are the FK of the stored init
    tj = D.estimate_joints(sampler.joint_model, fr["init_rot6d"], fr["init_betas"][0])
    np.testing.assert_allclose(tj, fr["temporal_joints"], atol=1e-5)


def test_train_checkpoint_and_resume(setup, tmp_path):
    cfg = tiny_config(setup, tmp_path / "run")
    assert train(cfg) == 3
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["step"] == 3 and "optimizer" in ck and ck["model_args"] == cfg["model"]
    assert ck["coarse_vertices"] == COARSE and (tmp_path / "run" / "best.pt").exists()
    cfg["max_steps"] = 5
    assert train(cfg, resume=True) == 5
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if r["kind"] == "resume"] == [3]
    assert [r["step"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r["loss"]) for r in log if r["kind"] == "train")
    assert [r["step"] for r in log if r["kind"] == "val"] == [3, 5]
    assert len([r for r in log if r["kind"] == "val_temporal"]) == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 5


def test_resume_without_checkpoint_fails_clearly(setup, tmp_path):
    with pytest.raises(FileNotFoundError, match="resume"):
        train(tiny_config(setup, tmp_path / "none"), resume=True)


def test_ablation_rows_differ_in_model_and_out_dir(setup, body, tmp_path):
    base = tiny_config(setup, tmp_path / "d2a")
    cfgs = {name: apply_ablation(base, name) for name, _ in ABLATION_ROWS}
    assert len({c["out_dir"] for c in cfgs.values()}) == len(ABLATION_ROWS)
    assert cfgs["+imphmr"]["out_dir"] == base["out_dir"] and cfgs["+depth"]["out_dir"] == f"{base['out_dir']}_depth"
    seen = set()
    for name, c in cfgs.items():
        assert c["model"]["d_model"] == TINY["d_model"]             # the base is kept under the row's switches
        tr = build_training(c, body)
        m = tr.model
        key = (m.use_depth, m.use_sil_dec, m.mask_ratio > 0, tr.use_rle, tr.use_imphmr)
        seen.add(key)
    assert len(seen) == len(ABLATION_ROWS)                           # every row is a different model
    full = build_training(cfgs["+imphmr"], body)
    assert full.model.use_depth and full.model.use_sil_dec and full.use_rle and full.use_imphmr
    first = build_training(cfgs["refine"], body)
    assert not (first.model.use_depth or first.model.use_sil_dec or first.use_rle or first.use_imphmr)


def test_ablation_table_and_reliability_plot(setup, tmp_path):
    from training.d2a.ablation import run
    base = tiny_config(setup, tmp_path / "d2a", max_steps=1, val_frames=0, ckpt_every=1)
    for name, _ in ABLATION_ROWS:
        if name != "+masking":                                      # one row left untrained
            assert train(apply_ablation(base, name)) == 1
    assert (tmp_path / "d2a_depth" / "last.pt").exists() and (tmp_path / "d2a" / "last.pt").exists()
    lines = []
    res = run(base["out_dir"], setup["pools"]["test"], tmp_path / "rel.png", out=lines.append)
    text = "\n".join(lines)
    assert "| temporal only (seed 2) | — |" in text
    for name, _ in ABLATION_ROWS:
        assert f"`{name}`" in text
    assert "| + masked modelling | `+masking` | not trained |" in text
    for name in ("temporal only", "refine", "+imphmr"):
        r = res[name]
        assert np.isfinite([r["mpjpe"], r["pa_mpjpe"], r["accel"]]).all() and r["mpjpe"] > 0
    assert "Spearman" in text and -1 <= res["spearman_sigma_error"] <= 1
    assert (tmp_path / "rel.png").stat().st_size > 1000
    assert row_out_dir(base["out_dir"], "+rle") == base["out_dir"] + "_rle"


def test_accel_uses_consecutive_frames_of_one_window():
    from training.d2a.ablation import accel_by_window
    T = 6
    gt = np.zeros((2 * T, 24, 3))
    pred = gt.copy()
    pred[3, 3:, 0] = 0.01                         # a 1 cm spike in window 0, frame 3 (not the roots 1, 2)
    win, fr = np.repeat([0, 1], T), np.tile(np.arange(T), 2)
    o = np.random.default_rng(0).permutation(2 * T)          # any order
    a = accel_by_window(pred[o], gt[o], win[o], fr[o], np.ones(2 * T, bool), list(range(24)), [1, 2])
    # the spike enters 3 of the 8 triplets (4 per window): |1,−2,1| cm, at 21 of the 24 joints
    assert abs(a - 21 / 24 * (0.01 + 0.02 + 0.01) / 8) < 1e-9


def test_export_cli(setup, tmp_path, capsys):
    from engine.estimate.refine import D2ARunner
    from training.d2a.export import main
    cfg = tiny_config(setup, tmp_path / "run", max_steps=1, val_frames=0, ckpt_every=1)
    train(cfg)
    main(["--ckpt", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "onnx")])
    out = capsys.readouterr().out
    assert "parity" in out and (tmp_path / "onnx" / "d2a.onnx").exists()
    errs = [float(x.split()[-1]) for x in out.split("parity max |torch − onnxruntime|:")[1].split(",")]
    assert max(errs) < 1e-4
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "onnx" / "d2a.onnx")).metadata_props}
    assert json.loads(meta["model_args"])["d_model"] == TINY["d_model"] and meta["step"] == "1"
    assert D2ARunner(tmp_path / "onnx", device="cpu").size == 56
    assert float(meta["sigma_scale"]) == 1.0                          # no calibration pool given


def test_export_calibrates_sigma_on_a_pool(setup, tmp_path):
    """``--calibration-pool``: sigma_scale = sqrt(Σ‖error‖² / (3 Σ σ²)) over the pool's detected
    joint-frames, stored in the ONNX and read by the engine's runner."""
    from engine.estimate.refine import D2ARunner
    from training.d2a.export import export_checkpoint
    from training.loop import load_checkpoint
    from training.d2a.train import model_from_checkpoint, predict
    cfg = tiny_config(setup, tmp_path / "run", max_steps=2, val_frames=0, ckpt_every=2)
    train(cfg)
    pool_path = setup["pools"]["test"]
    rep = export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "onnx", calibration_pool=pool_path)
    pool = D.load_pool(pool_path)
    idx = np.flatnonzero(pool["valid"])
    with torch.no_grad():
        j, s = predict(model_from_checkpoint(load_checkpoint(tmp_path / "run" / "last.pt")), pool, idx)
    err = np.linalg.norm(j - pool["joints3d"][idx], axis=-1)
    want = np.sqrt((err ** 2).sum() / (3 * (s.astype(np.float64) ** 2).sum()))
    assert rep["sigma_scale"] == pytest.approx(want, rel=1e-4) and 0 < want != 1.0
    assert D2ARunner(tmp_path / "onnx", device="cpu").sigma_scale == pytest.approx(want, rel=1e-4)


def test_cpu_config_rows_write_to_their_own_folders():
    from training.loop import load_config
    cfg = load_config("training/configs/d2a_cpu.json")
    assert cfg["pool"] and cfg["val_pool"] and cfg["max_steps"] > 0 and cfg["batch_size"] > 0
    outs = [apply_ablation(cfg, name)["out_dir"] for name, _ in ABLATION_ROWS]
    assert outs[-1] == cfg["out_dir"] == "out/d2a_cpu" and len(set(outs)) == len(outs)
    assert all(o.startswith("out/d2a_cpu") for o in outs)


def test_ablation_bench_runs_rows_through_the_engine(setup, body, tmp_path, monkeypatch):
    """``d2a_ablation --bench``: each trained row is exported (σ calibrated) and run as a
    refinement on top of the same temporal estimate, the full row and temporal-only also
    through the `light` clean-up, and the full row's σ is ranked against its per-joint error.
    Two tiny synthetic sequences stand in for H1's (the real run needs ../shared)."""
    from training.bench import synthetic as bench
    from training.d2a import ablation as A
    from training.data.synth import Synthesizer
    base = tiny_config(setup, tmp_path / "d2a", max_steps=1, val_frames=0, ckpt_every=1)
    for name in ("refine", "+imphmr"):
        assert train(apply_ablation(base, name)) == 1

    def tiny_h1(body_, seed=0, **_):
        rng = np.random.default_rng(seed)
        S = Synthesizer(body_)
        out = []
        for i, (clip, poses, trans, betas) in enumerate(load_clips(setup["cache"], "test") * 2):
            s = S(poses[:16], trans[:16], betas, rng, camera=("tripod", "handheld")[i % 2])
            s.update(gt_joints_cam=s["joints_cam"], clip=clip, seen_subject=False)
            out.append(s)
        return out
    monkeypatch.setattr(bench, "h1_samples", tiny_h1)
    monkeypatch.setattr(bench, "ESTIMATORS", dict(bench.ESTIMATORS))   # run_bench clears the registry
    lines = []
    res = A.run_bench(base["out_dir"], "h1", rows=["refine", "+imphmr"], out=lines.append,
                      work_dir=tmp_path / "rows", calibration_pool=setup["pools"]["train"],
                      plot=tmp_path / "rel.png")
    text = "\n".join(lines)
    names = list(res["table"])
    assert names[0] == "temporal only (seed 2)" and len(names) == 5    # + 2 rows + 2 cleaned
    assert sum("`refine`" in n for n in names) == 1 and sum("`+imphmr`" in n for n in names) == 2
    for rows in res["table"].values():
        assert len(rows) == 2 and all(np.isfinite(r["mpjpe"]) and r["mpjpe"] > 0 for _, r in rows)
    assert (tmp_path / "rows" / "full" / "d2a.onnx").exists()
    assert -1 <= res["spearman_sigma_error"] <= 1 and "Spearman" in text
    assert (tmp_path / "rel.png").stat().st_size > 1000
