"""A D2A per-frame pool from rendered clips: what the real MediaPipe saw, with the known truth.

A rendered clip (``training.render``, ``docs/rendered_observations.md``) holds the real
PoseLandmarker's output on a render of a CMU training-split motion — 2D keypoints with
visibility, world landmarks, its own person segmentation (``masks``, the full frame at
``engine.observe.mask_size``) — beside the truth (poses, trans, betas, per-frame K and
extrinsics). Every frame becomes one sample with exactly the keys, dtypes and meaning of the
synthetic pool (``training.d2a.data``, its docstring table), through the same calls:

- the clip as a sequence: ``training.temporal.rendered_pool.clip_sequence`` (undetected frames
  invalid, no inputs) plus MediaPipe's ``masks``;
- inputs and targets: ``training.temporal.dataset.sequence_arrays`` (focal known with
  ``focal_known_prob``, else the run-time default guess), with the frozen Pr-VIPE;
- the temporal estimate over the whole clip: ``training.d2a.data.temporal_estimate``;
- the samples: ``training.d2a.data.frame_samples`` — ``silhouette_in`` is MediaPipe's
  segmentation cropped by the run-time crop of its detected keypoints
  (``engine.estimate.refine.silhouette_crops``), the target silhouette the true mesh (posed by
  ``training.data.synth.Poser`` from the stored poses/trans/betas, as the renderer posed it)
  re-rendered in that box.

No mirror augmentation (flipping MediaPipe's output is not its output on the flipped image; the
renders already show half of the motions mirrored). One window per clip: ``window`` is the clip
index, ``frame`` the frame inside it.

    .venv/bin/python -m training.d2a.rendered_pool --temporal out/temporal_cpu_rendered/best.pt \\
        --rendered out/rendered --out out/d2a_rendered
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from engine.estimate.refine import SIL_SIZE

from training.d2a.data import DEFAULTS, frame_samples, generate, load_temporal, save_pool, temporal_estimate


def clip_view(z):
    """A rendered clip (opened ``.npz`` or a dict with its layout) → the synthesized-view dict
    ``frame_samples`` and ``sequence_arrays`` read (MediaPipe's masks as ``masks``)."""
    from training.temporal.rendered_pool import clip_sequence
    s = clip_sequence(z)
    s["masks"] = np.asarray(z["masks"], np.uint8)
    s["trans"] = np.asarray(z["trans"], np.float32)
    return s


class RenderedSampler:
    """Turns rendered clip files, one per ``sequence`` call and in order, into per-frame samples
    (the interface ``training.d2a.data.generate`` draws from)."""

    def __init__(self, files, body, temporal, prvipe, window, coarse_indices,
                 focal_known_prob=DEFAULTS["focal_known_prob"], sil_size=SIL_SIZE):
        from training.geometry import JointShapeModel
        self.files = list(files)
        self.body, self.temporal, self.prvipe, self.window = body, temporal, prvipe, window
        self.coarse = np.asarray(coarse_indices, np.int64)
        self.focal_known_prob, self.sil_size = float(focal_known_prob), int(sil_size)
        self.joint_model = JointShapeModel(body)
        self._next = 0

    def view(self, s, rng):
        """One clip view ``s`` (``clip_view``) → per-frame dict (``KEYS`` but window/frame)."""
        from training.data.synth import Poser
        from training.temporal.dataset import sequence_arrays
        verts = Poser(self.body, s["betas"])(s["poses"].astype(np.float64), s["trans"].astype(np.float64))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            arr = sequence_arrays(s, rng, self.prvipe, self.focal_known_prob)
        est = temporal_estimate(self.temporal, arr, self.window)
        return frame_samples(s, arr, verts, est, self.joint_model, self.coarse, self.sil_size, self.body.faces)

    def sequence(self, rng):
        """The next clip file → [(per-frame dict, clip info)]."""
        f = Path(self.files[self._next])
        self._next += 1
        with np.load(f) as z:
            s = clip_view(z)
            info = dict(clip=str(z["clip"]), file=f.name, start=int(z["start"]) if "start" in z.files else 0,
                        camera=str(z["camera_type"]), mirror=bool(z["mirrored"]), speed=1.0)
        return [(self.view(s, rng), info)]


def pick_files(files, max_clips=None, seed=0):
    """All clip files, or a seeded random ``max_clips`` of them (kept in name order)."""
    files = sorted(files)
    if max_clips is None or max_clips >= len(files):
        return files
    keep = np.sort(np.random.default_rng([int(seed), 29]).choice(len(files), int(max_clips), replace=False))
    return [files[i] for i in keep]


def build_rendered_pool(files, temporal_path, path, seed=0, prvipe=None, focal_known_prob=DEFAULTS["focal_known_prob"],
                        body=None):
    """Every frame of the rendered clips ``files`` into the pool folder ``path`` (``save_pool``'s
    format); returns the number of frames."""
    from training.d2a.coarse_mesh import load
    if body is None:
        from training.data.bvh_to_smpl import default_body
        body = default_body()
    model, pv, window = load_temporal(temporal_path, prvipe)
    sampler = RenderedSampler(files, body, model, pv, window, load(body=body).indices, focal_known_prob)
    arrays, infos = generate(sampler, len(sampler.files), [int(seed), 31])
    meta = {"source": "rendered", "split": "train", "temporal": str(temporal_path), "clips": len(sampler.files),
            "seed": seed, "config": {"focal_known_prob": focal_known_prob}}
    return save_pool(path, arrays, infos, meta)


def main(argv=None):
    from training.temporal.rendered_pool import clip_split
    ap = argparse.ArgumentParser(description="A D2A per-frame pool from rendered clips (real MediaPipe on renders)")
    ap.add_argument("--temporal", required=True, help="training.temporal.train checkpoint (best.pt)")
    ap.add_argument("--prvipe", help="Pr-VIPE checkpoint (default: the one in the temporal checkpoint's config)")
    ap.add_argument("--rendered", default="out/rendered", help="folder of rendered clips (*.npz)")
    ap.add_argument("--out", required=True, help="pool folder to write")
    ap.add_argument("--max-clips", type=int, help="a seeded random subset of this many clips (default: all)")
    ap.add_argument("--focal-known-prob", type=float, default=DEFAULTS["focal_known_prob"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not Path(a.temporal).is_file():
        print(f"error: no temporal checkpoint at {a.temporal}", file=sys.stderr)
        sys.exit(2)
    if (a.max_clips is not None and a.max_clips < 1) or not 0.0 <= a.focal_known_prob <= 1.0:
        print("error: --max-clips must be ≥ 1 and --focal-known-prob within [0, 1]", file=sys.stderr)
        sys.exit(2)
    files = [f for f in Path(a.rendered).glob("*.npz") if not f.name.endswith(".part.npz")]
    if not files:
        print(f"error: no rendered clips (*.npz) in {a.rendered}", file=sys.stderr)
        sys.exit(2)
    files = pick_files(files, a.max_clips, a.seed)
    other = [f.name for f in files if clip_split(f) != "train"]
    if other:
        print(f"error: {len(other)} rendered clips are not of the train split (e.g. {other[0]})", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(1)
    t0 = time.time()
    n = build_rendered_pool(files, a.temporal, a.out, a.seed, a.prvipe, a.focal_known_prob)
    print(f"{n} frames from {len(files)} rendered clips in {(time.time() - t0) / 60:.1f} min → {a.out}")


if __name__ == "__main__":
    main()
