"""A fixed pool of synthetic training windows, generated once and shared by training runs.

The streaming generator (``training.temporal.dataset.SyntheticWindows``) spends most of its time posing
the body; on 2 CPU cores it cannot feed several runs at once. For runs that must share one
budget (the model and its ablations) the windows are generated once into a folder of ``.npy``
files, one per key, memory-mapped by the runs (the
same windows for every run, so the ablation rows differ only by the model) and sampled at
random from it. Pr-VIPE's embedding is not stored: it is computed per batch from
``keypoints99`` by the run's own frozen Pr-VIPE.

    .venv/bin/python -m training.temporal.window_pool --config training/configs/temporal_cpu.json --sequences 3000 --workers 2

Each sequence is one posed window seen by ``views`` cameras × ``windows_per_view`` crops (the
config's ``data``), i.e. 9 windows per sequence with the CPU config.
"""
import argparse
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

KEYS = ("features", "ik_prior", "keypoints99", "homography", "rotmats", "betas", "joints2d",
        "joints2d_vis", "joints_cam", "valid")


def _work(args):
    cache, n, seed, data_cfg = args
    from training.data.bvh_to_smpl import default_body
    from training.temporal.dataset import WindowSampler, load_clips
    torch.set_num_threads(1)
    sampler = WindowSampler(load_clips(cache, "train"), default_body(), None, **data_cfg)
    rng = np.random.default_rng(seed)
    out = {k: [] for k in KEYS}
    for _ in range(n):
        for w in sampler.sequence(rng):
            for k in KEYS:
                out[k].append(w[k])
    return {k: np.stack(v) for k, v in out.items()}


def build_pool(cache, sequences, data_cfg, path, seed=0, workers=1):
    """Generate ``sequences`` posed windows (train split) into the folder ``path``; returns the
    number of windows."""
    workers = max(int(workers), 1)
    per = [sequences // workers + (1 if i < sequences % workers else 0) for i in range(workers)]
    jobs = [(cache, n, [int(seed), 7, i], data_cfg) for i, n in enumerate(per) if n]
    if workers == 1:
        res = [_work(j) for j in jobs]
    else:
        with Pool(workers) as pool:
            res = pool.map(_work, jobs)
    arrays = {k: np.concatenate([r[k] for r in res]) for k in KEYS}
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for k, v in arrays.items():
        np.save(path / f"{k}.npy", v)
    return len(arrays["features"])


class PoolWindows(torch.utils.data.IterableDataset):
    """Endless random windows from a pool file (memory-mapped, so runs share the page cache)."""

    def __init__(self, path, seed=0):
        super().__init__()
        self.path, self.seed = str(path), seed

    def __iter__(self):
        arrays = {k: np.load(Path(self.path) / f"{k}.npy", mmap_mode="r") for k in KEYS}
        n = len(arrays["features"])
        rng = np.random.default_rng(self.seed)
        while True:
            i = int(rng.integers(n))
            yield {k: np.array(v[i]) for k, v in arrays.items()}


def pool_size(path):
    return len(np.load(Path(path) / "features.npy", mmap_mode="r"))


def main(argv=None):
    from training.loop import load_config
    ap = argparse.ArgumentParser(description="Generate a shared pool of training windows")
    ap.add_argument("--config", required=True, help="a temporal config (its cache, data and pool path)")
    ap.add_argument("--sequences", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cfg = load_config(a.config)
    t0 = time.time()
    n = build_pool(cfg["cache"], a.sequences, cfg["data"], cfg["pool"], a.seed, a.workers)
    print(f"{n} windows from {a.sequences} sequences in {(time.time() - t0) / 60:.1f} min → {cfg['pool']}")


if __name__ == "__main__":
    main()
