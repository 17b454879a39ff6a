"""Temporal-model training script: a few steps, checkpoint, resume (the step counter continues),
ablation configs, export of the checkpoint to ONNX."""
import json

import pytest

torch = pytest.importorskip("torch")

from training.prvipe.model import PrVIPE  # noqa: E402
from training.loop import load_checkpoint, load_config, read_log, save_checkpoint  # noqa: E402
from training.temporal.train import train  # noqa: E402
from random_motions import write_cache  # noqa: E402


def tiny_config(tmp_path, **over):
    cache = write_cache(tmp_path / "cache")
    prv = PrVIPE(width=32)
    save_checkpoint(tmp_path / "prvipe.pt", model=prv.state_dict(), model_args={"width": 32}, step=0, kappa=0.1)
    cfg = {"cache": str(cache), "out_dir": str(tmp_path / "run"), "prvipe": str(tmp_path / "prvipe.pt"),
           "seed": 0, "threads": 1, "workers": 0,
           "model": {"hidden": 16, "part_channels": 8},
           "data": {"window": 8, "seq_len": 12, "views": 1, "windows_per_view": 2, "shuffle": 2},
           "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "max_steps": 3,
           "log_every": 1, "ckpt_every": 3, "val_every": 3, "val_windows": 2}
    cfg.update(over)
    return cfg


def test_train_checkpoint_and_resume(tmp_path):
    cfg = tiny_config(tmp_path)
    assert train(cfg) == 3
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["step"] == 3 and "optimizer" in ck and ck["model_args"] == cfg["model"]
    assert (tmp_path / "run" / "best.pt").exists()
    cfg["max_steps"] = 5
    assert train(cfg, resume=True) == 5
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if r["kind"] == "resume"] == [3]
    steps = [r["step"] for r in log if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    assert all(r["loss"] == r["loss"] for r in log if r["kind"] == "train")   # finite
    vals = [r for r in log if r["kind"] == "val"]
    assert [r["step"] for r in vals] == [3, 5] and all(r["val_mpjpe_mm"] > 0 for r in vals)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 5


def test_training_from_a_shared_pool(tmp_path):
    """The pre-generated pool: windows stored once, read back whole, trained on with the run's
    own Pr-VIPE embedding computed per batch."""
    import numpy as np
    from training.temporal.window_pool import KEYS, PoolWindows, build_pool, pool_size
    cfg = tiny_config(tmp_path, pool=str(tmp_path / "pool"))
    n = build_pool(cfg["cache"], 2, cfg["data"], cfg["pool"], seed=1, workers=1)
    assert n == 4 and pool_size(cfg["pool"]) == 4
    w = next(iter(PoolWindows(cfg["pool"], seed=0)))
    assert set(w) == set(KEYS) and w["features"].shape == (8, 202) and w["ik_prior"].shape == (8, 144)
    assert np.isfinite(w["ik_prior"]).all()
    assert train(cfg) == 3
    log = read_log(tmp_path / "run")
    assert [r["windows"] for r in log if r["kind"] == "pool"] == [4]
    assert all(r["loss"] == r["loss"] for r in log if r["kind"] == "train")


def test_resume_without_checkpoint_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume"):
        train(tiny_config(tmp_path), resume=True)


@pytest.mark.parametrize("name,flag", [("no_prvipe", "use_prvipe"), ("no_dynamic", "use_dynamic"), ("no_parts", "use_parts")])
def test_ablation_configs_differ_from_the_base_only_in_their_switch(name, flag):
    base = load_config("training/configs/temporal_cpu.json")
    abl = load_config(f"training/configs/temporal_cpu_{name}.json")
    assert abl["model"][flag] is False and base["model"][flag] is True
    for k in ("data", "batch_size", "lr", "max_steps", "seed", "val_windows", "val_seed", "pool"):
        assert abl[k] == base[k], k
    assert abl["out_dir"] != base["out_dir"]


def test_export_of_a_trained_checkpoint(tmp_path):
    from training.temporal.export import export_checkpoints
    cfg = tiny_config(tmp_path, max_steps=1, ckpt_every=1, val_windows=0)
    train(cfg)
    rep = export_checkpoints(tmp_path / "run" / "last.pt", None, tmp_path / "onnx", note="test")
    assert max(rep["temporal"].values()) < 1e-4 and max(rep["prvipe"].values()) < 1e-4
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "onnx" / "temporal.onnx")).metadata_props}
    assert meta["window"] == "8" and json.loads(meta["model_args"]) == cfg["model"]
