"""Pr-VIPE training: NP-MPJPE matching, the pair bank, retrieval, a few steps and resume."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

torch = pytest.importorskip("torch")

from training.prvipe.model import PrVIPE  # noqa: E402
from training.loop import load_checkpoint, read_log  # noqa: E402
from training.prvipe.train import (build_bank, format_retrieval, normalize_poses, np_mpjpe,  # noqa: E402
                                   pairwise_np_mpjpe, retrieval, train)
from random_motions import write_cache  # noqa: E402


def test_np_mpjpe_ignores_rotation_scale_and_translation():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(5, 14, 3))
    R = Rotation.random(5, random_state=1).as_matrix()
    q = 2.5 * np.einsum("nij,nkj->nki", R, p) + 3.0
    d = np_mpjpe(normalize_poses(p), normalize_poses(q))
    assert np.abs(d).max() < 1e-9
    m = pairwise_np_mpjpe(normalize_poses(p))
    assert m.shape == (5, 5) and np.allclose(np.diag(m), 0, atol=1e-9) and (m[~np.eye(5, dtype=bool)] > 0.1).all()


def test_bank_and_retrieval_report(tmp_path):
    cache = write_cache(tmp_path / "cache")
    bank = build_bank(cache, "val", 3, frames=4, stride=3, seed=0)
    n = len(bank["a"])
    assert bank["a"].shape == (n, 99) and bank["b"].shape == (n, 99) and bank["pose"].shape == (n, 14, 3)
    assert not np.allclose(bank["a"], bank["b"])          # two different cameras
    r = retrieval(bank, 0.1, PrVIPE(width=32))
    assert 0 <= r["raw2d"][1] <= r["raw2d"][5] <= 1 and 0 <= r["prvipe"][1] <= 1
    assert "top-1" in format_retrieval(r, "val", 0.1)


def test_train_and_resume(tmp_path):
    cache = write_cache(tmp_path / "cache")
    small = {"sequences": 3, "frames": 6, "stride": 2}
    cfg = {"cache": str(cache), "out_dir": str(tmp_path / "run"), "seed": 0, "threads": 1, "workers": 1,
           "model": {"width": 32, "dim": 8, "blocks": 1}, "kappa": 0.1, "bank": small, "val_bank": small,
           "batch_size": 8, "lr": 1e-3, "max_steps": 3, "samples": 2, "hard_k": 3, "log_every": 1,
           "ckpt_every": 3, "eval_every": 3}
    assert train(cfg) == 3
    assert load_checkpoint(tmp_path / "run" / "best.pt")["kappa"] == 0.1
    cfg["max_steps"] = 4
    assert train(cfg, resume=True) == 4
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) for r in log if r["kind"] == "train")
