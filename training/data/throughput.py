"""Measure the generator: ``python -m training.data.throughput --n 400 --workers 2``.

Draws sequences of 16–64 frames (30 fps) from the retarget cache (``cache/cmu_smpl``, built by
``python -m training.data.bvh_to_smpl --cache cache/cmu_smpl``), train split, mirrored half the
time, random camera; reports sequences/s and the projected time for 10,000.
"""
import argparse
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np


def _load(cache):
    from training.data.splits import split_of
    clips = []
    for f in sorted(Path(cache).glob("*.npz")):
        if split_of(f.stem) == "train":
            z = np.load(f)
            clips.append((z["poses"], z["trans"], z["betas"]))
    return clips


def _work(args):
    cache, n, seed = args
    from training.data.bvh_to_smpl import default_body
    from training.data.synth import Synthesizer
    clips = _load(cache)
    S = Synthesizer(default_body())
    rng = np.random.default_rng(seed)
    frames = 0
    t0 = time.time()
    for _ in range(n):
        poses, trans, betas = clips[rng.integers(len(clips))]
        L = int(rng.integers(16, 65))
        L = min(L, len(poses))
        a = int(rng.integers(0, len(poses) - L + 1))
        s = S(poses[a:a + L], trans[a:a + L], betas, rng, mirror=bool(rng.random() < 0.5))
        frames += len(s["valid"])
    return n, frames, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="cache/cmu_smpl")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    t0 = time.time()
    with Pool(a.workers) as pool:
        res = pool.map(_work, [(a.cache, a.n // a.workers, 1000 + k) for k in range(a.workers)])
    wall = time.time() - t0
    n = sum(r[0] for r in res)
    fr = sum(r[1] for r in res)
    print(f"{n} sequences ({fr} frames, mean {fr / n:.1f}) in {wall:.1f} s on {a.workers} workers: "
          f"{n / wall:.2f} seq/s, {fr / wall:.0f} frames/s → 10,000 sequences in {10000 / (n / wall) / 60:.1f} min")


if __name__ == "__main__":
    main()
