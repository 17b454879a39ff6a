"""Training windows from rendered clips, in the window-pool format (``training.temporal.window_pool``).

A rendered clip (``training.render``, ``docs/rendered_observations.md``) holds what the real
MediaPipe PoseLandmarker saw on a render of a CMU training-split motion — its 2D keypoints
with visibility, world landmarks, the frames where it found nobody — beside the truth (poses,
betas, per-frame K and extrinsics, joints). This module turns each clip into windows with
exactly the keys and meaning of the synthetic pool (``window_pool.KEYS``), through the same
call the synthetic path makes (``training.temporal.dataset.sequence_arrays``: the engine's
``network_inputs`` functions, the run-time default focal guess unless the focal is "known"
with the config's ``focal_known_prob``, undetected frames invalid with zero inputs). The
camera-motion feature is computed from the clip's true cameras as in the synthetic path.

No mirror augmentation: flipping MediaPipe's output is not MediaPipe's output on the flipped
image (its left/right behaviour is not symmetric), and the renders already show half of the
motions mirrored (``mirrored`` per clip).

    .venv/bin/python -m training.temporal.rendered_pool --config training/configs/temporal_cpu_aug2.json \\
        --rendered out/rendered --out out/pool_rendered --stride 8

Windows are ``window`` frames (the config's) every ``stride`` frames of each clip; a window
where MediaPipe found the person in fewer than ``min_valid`` of the frames is left out.

``--score POOL --weights DIR,...`` scores exported models (and the IK prior they start from)
on a pool's windows, e.g. rendered clips of subjects a model was not trained on.
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from training.temporal.window_pool import KEYS, pool_size

PER_FRAME = ("keypoints", "world", "valid", "K", "extrinsics", "poses", "joints_cam", "camera_motion")


def clip_sequence(z):
    """A rendered clip (an opened ``.npz`` or a dict with its layout) → the per-frame arrays
    ``sequence_arrays`` reads, named as the synthesizer names them."""
    from training.data.synth import camera_motion_feature, homographies
    K = np.asarray(z["K"], np.float64)
    E = np.asarray(z["extrinsics"], np.float64)
    size = tuple(int(v) for v in z["frame_size"])
    joints = np.asarray(z["joints"], np.float64)
    j_cam = np.einsum("tij,tnj->tni", E[:, :3, :3], joints) + E[:, None, :3, 3]
    kp = np.array(z["keypoints"], np.float32)
    world = np.array(z["world"], np.float32)
    valid = np.asarray(z["valid"], bool) & np.isfinite(kp[..., :2]).all((-1, -2))
    kp[~valid], world[~valid] = np.nan, np.nan     # nobody found: no inputs, as the synthetic path
    return dict(keypoints=kp, world=world, valid=valid,
                K=K.astype(np.float32), extrinsics=E.astype(np.float32),
                poses=np.asarray(z["poses"], np.float32), joints_cam=j_cam.astype(np.float32),
                camera_motion=camera_motion_feature(homographies(K, E), size),
                frame_size=np.array(size, np.int32), betas=np.asarray(z["betas"], np.float32))


def window_starts(valid, window, stride, min_valid=0.5):
    """First frames of the windows kept from a clip with per-frame detections ``valid``."""
    valid = np.asarray(valid, bool)
    starts = range(0, len(valid) - window + 1, max(int(stride), 1))
    return [a for a in starts if valid[a:a + window].mean() >= min_valid]


def clip_windows(seq, starts, window, rng, focal_known_prob=0.5):
    """Pool windows (dicts of ``KEYS``) of one clip sequence (``clip_sequence``) at ``starts``;
    each window draws its own known-or-guessed focal."""
    from training.temporal.dataset import sequence_arrays
    out = []
    for a in starts:
        s = {k: (v[a:a + window] if k in PER_FRAME else v) for k, v in seq.items()}
        arr = sequence_arrays(s, rng, None, focal_known_prob)
        w = {k: arr[k] for k in KEYS if k in arr}
        w["betas"] = np.asarray(seq["betas"], np.float32)
        out.append(w)
    return out


def clip_split(path):
    """The data split of a rendered clip (by its ``clip`` field; ``training.data.splits``)."""
    from training.data.splits import split_of
    with np.load(path) as z:
        clip = str(z["clip"])
    try:
        return split_of(clip)
    except KeyError:
        return None


def build_rendered_pool(files, path, window, stride=8, focal_known_prob=0.5, min_valid=0.5, seed=0):
    """Windows of the rendered clips ``files`` into the pool folder ``path`` (one ``.npy`` per
    key, as ``window_pool``). Returns (windows, frames covered by them, clips used)."""
    plan = []
    for f in files:
        with np.load(f) as z:
            starts = window_starts(z["valid"], window, stride, min_valid)
        if starts:
            plan.append((f, starts))
    n = sum(len(s) for _, s in plan)
    if not n:
        raise ValueError(f"no clip gives a {window}-frame window with ≥ {min_valid:.0%} detected frames")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 23])
    arrays, i, frames = None, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for f, starts in plan:
            with np.load(f) as z:
                seq = clip_sequence(z)
            ws = clip_windows(seq, starts, window, rng, focal_known_prob)
            if arrays is None:
                arrays = {k: np.lib.format.open_memmap(path / f"{k}.npy", mode="w+", dtype=v.dtype,
                                                       shape=(n,) + v.shape) for k, v in ws[0].items()}
            for w in ws:
                for k, v in w.items():
                    arrays[k][i] = v
                i += 1
            covered = np.zeros(len(seq["valid"]), bool)
            for a in starts:
                covered[a:a + window] = True
            frames += int(covered.sum())
    for v in arrays.values():
        v.flush()
    return n, frames, len(plan)


def score_pool(pool, weights, n=600, seed=0):
    """MPJPE / PA-MPJPE (mm; camera frame, 14 LSP joints, root = hip midpoint, detected frames,
    as the trainer's validation) of exported models on ``n`` random windows of a pool.

    ``weights``: {name: folder with temporal.onnx and prvipe.onnx (the embedding), or None for
    the IK prior the model starts from}. Returns {name: (mpjpe, pa_mpjpe)}."""
    import onnxruntime as ort
    import torch
    from training.bench.synthetic import HIPS, LSP14
    from training.data.bvh_to_smpl import default_body
    from training.eval.metrics import mpjpe, pa_mpjpe
    from training.geometry import JointShapeModel, forward_kinematics, rot6d_to_matrix
    arrays = {k: np.load(Path(pool) / f"{k}.npy", mmap_mode="r") for k in KEYS}
    N = len(arrays["features"])
    idx = np.sort(np.random.default_rng(seed).choice(N, min(n, N), replace=False))
    b = {k: np.array(v[idx]) for k, v in arrays.items()}
    B, T = b["features"].shape[:2]
    jm = JointShapeModel(default_body())
    g = b["joints_cam"].reshape(-1, 24, 3).astype(np.float64)
    valid = b["valid"].reshape(-1)
    root = [LSP14.index(h) for h in HIPS]
    out = {}
    for name, d in weights.items():
        if d is None:
            r6, betas = b["ik_prior"].reshape(B, T, 24, 6), np.zeros((B, 10), np.float32)
        else:
            kp = b["keypoints99"].reshape(B * T, -1)
            mu, sig = ort.InferenceSession(str(Path(d) / "prvipe.onnx")).run(None, {"keypoints": kp})[:2]
            feeds = dict(features=b["features"], prvipe_mu=mu.reshape(B, T, -1), prvipe_sigma=sig.reshape(B, T, -1),
                         homography=b["homography"], ik_prior=b["ik_prior"])
            r6, betas = ort.InferenceSession(str(Path(d) / "temporal.onnx")).run(["rot6d", "betas"], feeds)
        rot = rot6d_to_matrix(torch.as_tensor(np.asarray(r6, np.float32)).reshape(B, T, 24, 6))
        j = forward_kinematics(rot, jm(torch.as_tensor(betas))).reshape(-1, 24, 3).numpy()
        out[name] = (1000 * mpjpe(j[:, LSP14], g[:, LSP14], root=root, valid=valid),
                     1000 * pa_mpjpe(j, g, valid=valid, joints=LSP14))
    return out


def main(argv=None):
    from training.loop import load_config
    ap = argparse.ArgumentParser(description="Windows of rendered clips (real MediaPipe) as a training pool")
    ap.add_argument("--config", help="a temporal config (its data: window, focal_known_prob)")
    ap.add_argument("--rendered", default="out/rendered", help="folder of rendered clips (*.npz)")
    ap.add_argument("--out", default="out/pool_rendered", help="pool folder to write")
    ap.add_argument("--stride", type=int, default=8, help="frames between window starts")
    ap.add_argument("--min-valid", type=float, default=0.5, help="least fraction of detected frames in a window")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score", metavar="POOL", help="instead: score the IK prior and the --weights folders on POOL's windows")
    ap.add_argument("--weights", default="engine/data/temporal", help="with --score: comma list of exported model folders")
    ap.add_argument("--windows", type=int, default=600, help="with --score: how many random windows")
    a = ap.parse_args(argv)
    if a.score:
        return score_main(a)
    if not a.config:
        print("error: --config is required to build a pool", file=sys.stderr)
        sys.exit(2)
    try:
        cfg = load_config(a.config)
    except (OSError, ValueError) as e:
        print(f"error: cannot read the config {a.config}: {e}", file=sys.stderr)
        sys.exit(2)
    files = sorted(Path(a.rendered).glob("*.npz"))
    files = [f for f in files if not f.name.endswith(".part.npz")]
    if not files:
        print(f"error: no rendered clips (*.npz) in {a.rendered}", file=sys.stderr)
        sys.exit(2)
    if a.stride < 1 or not 0.0 <= a.min_valid <= 1.0:
        print("error: --stride must be ≥ 1 and --min-valid within [0, 1]", file=sys.stderr)
        sys.exit(2)
    other = [f.name for f in files if clip_split(f) != "train"]
    if other:
        print(f"error: {len(other)} rendered clips are not of the train split (e.g. {other[0]})", file=sys.stderr)
        sys.exit(2)
    data = cfg["data"]
    t0 = time.time()
    try:
        n, frames, clips = build_rendered_pool(files, a.out, int(data["window"]), a.stride,
                                               float(data.get("focal_known_prob", 0.5)), a.min_valid, a.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{n} windows ({frames} distinct frames) from {clips} of {len(files)} rendered clips "
          f"in {(time.time() - t0) / 60:.1f} min → {a.out}")


def score_main(a):
    """``--score``: one table row per model on a pool's windows."""
    dirs = [d for d in a.weights.split(",") if d]
    bad = [d for d in dirs if not (Path(d) / "temporal.onnx").is_file() or not (Path(d) / "prvipe.onnx").is_file()]
    if not (Path(a.score) / "features.npy").is_file() or bad:
        what = f"no pool in {a.score}" if not (Path(a.score) / "features.npy").is_file() else f"no temporal.onnx + prvipe.onnx in {bad[0]}"
        print(f"error: {what}", file=sys.stderr)
        sys.exit(2)
    res = score_pool(a.score, {"IK prior (the model's input)": None, **{d: d for d in dirs}}, a.windows, a.seed)
    print(f"{a.score}: {min(a.windows, pool_size(a.score))} windows, 14 LSP joints, camera frame, detected frames (mm)")
    print("| model | MPJPE | PA-MPJPE |\n|---|---|---|")
    for name, (m, pa) in res.items():
        print(f"| {name} | {m:.1f} | {pa:.1f} |")


if __name__ == "__main__":
    main()
