"""A per-frame pool for the seed-0 refinement network (D2A-HMR), generated once.

For random windows of the retargeted CMU cache (one split: train for training, val for
validation, test for the ablation table) the synthetic generator renders observations
(``training.data.synth``, ``render=True``: keypoints with the detector noise, world landmarks,
the full-frame person mask), the frozen, trained temporal model (a ``training.temporal.train``
checkpoint) is run over the window exactly as ``engine.estimate.temporal`` runs it at run time (same
inputs, sliding windows with half overlap, triangular stitching, mean shape), and every frame
becomes one sample with the keys ``D2ATraining.forward`` consumes:

| key | shape, stored dtype | what |
|---|---|---|
| features | (202,) f32 | ``engine.estimate.network_inputs.frame_features`` (the temporal model's own input) |
| silhouette_in | (56,56) u8 0..255 | the OBSERVED full-frame mask, ``engine.estimate.refine.silhouette_crops`` (the run-time crop) |
| init_rot6d / init_betas / init_cam | (24,6) / (10,) / (3,) f32 | the temporal estimate (6D re-orthonormalised, as the engine feeds it) |
| joints3d | (24,3) f32 | true joints, camera frame, minus the true pelvis |
| vertices_coarse | (n,3) f32 | true posed mesh at the coarse indices, camera frame, minus the true pelvis |
| rotmats / betas | (24,3,3) / (10,) f32 | true local rotations (root in the camera frame), shape |
| joints2d / joints2d_vis | (24,2) / (24,) f32 | as ``training.temporal.dataset`` |
| silhouette | (56,56) u8 {0,1} | the true body re-rendered in the same run-time crop |
| valid | () bool | the detector found the person |
| temporal_joints | (24,3) f32 | the temporal estimate's joints minus its pelvis ("temporal only" row) |
| window / frame | () i32 | window id and frame index inside it (accel error needs the order) |

Crops: synth's own silhouette crop is centred on the TRUE landmarks' box; at run time only the
detected (noisy) keypoints exist. So both the input and the target use the run-time crop
(``engine.estimate.refine.crop_boxes`` of the detected keypoints): the input is the observed
full-frame mask (longer side 160) cropped by the shared function, the target is the true mesh
re-rendered at 56×56 in that box (``render_silhouettes``, the same point-splat z-buffer as
synth). The input mask is not degraded beyond synth's own rendering and the 160-px downsampling
(ours; MediaPipe's segmentation noise is not modelled).

    .venv/bin/python -m training.d2a.data --temporal out/temporal_cpu/best.pt --sequences 300 \\
        --split train --out out/d2a_pool_train --workers 1

Each sequence is one posed window of ``seq_len`` frames seen by ``views`` cameras: views ×
seq_len frames (96 with the defaults). Files: one ``.npy`` per key (memory-mapped when read)
and ``meta.json`` (clip, camera type, mirror per window; the temporal checkpoint).
"""
import argparse
import json
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from engine.estimate.refine import SIL_SIZE, crop_boxes, silhouette_crops

from training.temporal.dataset import ViewSynthesizer, draw_body_variation, draw_speed, load_clips, sequence_arrays

DEFAULTS = dict(seq_len=48, views=2, mirror_prob=0.5, focal_known_prob=0.5, sil_size=SIL_SIZE)
KEYS = {"features": np.float32, "silhouette_in": np.uint8, "init_rot6d": np.float32, "init_betas": np.float32,
        "init_cam": np.float32, "joints3d": np.float32, "vertices_coarse": np.float32, "rotmats": np.float32,
        "betas": np.float32, "joints2d": np.float32, "joints2d_vis": np.float32, "silhouette": np.uint8,
        "valid": bool, "temporal_joints": np.float32, "window": np.int32, "frame": np.int32}


# ---------------------------------------------------------------- the temporal model
def load_temporal(path, prvipe=None):
    """(model, frozen Pr-VIPE or None, window) from a ``training.temporal.train`` checkpoint; the
    Pr-VIPE is the checkpoint config's unless ``prvipe`` (a path) is given."""
    from training.loop import load_checkpoint
    from training.temporal.train import build_model, load_prvipe
    ck = load_checkpoint(path)
    model = build_model({"model": ck["model_args"]})
    model.load_state_dict(ck["model"])
    model.eval()
    pv = None
    if ck["model_args"].get("use_prvipe", True):
        src = prvipe or (ck.get("config") or {}).get("prvipe")
        pv = load_prvipe(src) if src else None
    return model, pv, int(ck.get("window", 32))


def stitch_windows(T, window):
    """(starts, triangular weights) exactly as ``engine.estimate.temporal.TemporalRunner.predict``."""
    from engine.estimate.temporal import window_starts
    W = min(window, T)
    starts = window_starts(T, W, min(window // 2, W - 1))
    return starts, np.minimum(np.arange(W) + 1, W - np.arange(W)).astype(np.float64)


@torch.no_grad()
def temporal_estimate(model, arr, window):
    """The temporal model over one sequence's arrays (``training.temporal.dataset.sequence_arrays``) as
    the engine runs it: rot6d (T,24,6) (stitched, then re-orthonormalised), cam (T,3), betas
    (10,) (mean over windows)."""
    from training.geometry import matrix_to_rot6d, rot6d_to_matrix
    T = len(arr["features"])
    starts, wt = stitch_windows(T, window)
    W = len(wt)
    names = ("features", "prvipe_mu", "prvipe_sigma", "homography", "ik_prior")
    x = [torch.as_tensor(np.stack([arr[n][s:s + W] for s in starts])) for n in names]
    out = model(*x)
    rot = np.zeros((T, 24, 6))
    cam = np.zeros((T, 3))
    norm = np.zeros(T)
    for i, s in enumerate(starts):
        rot[s:s + W] += wt[:, None, None] * out["rot6d"][i].numpy()
        cam[s:s + W] += wt[:, None] * out["cam"][i].numpy()
        norm[s:s + W] += wt
    rot /= norm[:, None, None]
    rot = matrix_to_rot6d(rot6d_to_matrix(torch.as_tensor(rot, dtype=torch.float32))).numpy()
    return rot, (cam / norm[:, None]).astype(np.float32), out["betas"].mean(0).numpy().astype(np.float32)


@torch.no_grad()
def estimate_joints(joint_model, rot6d, betas):
    """Joints (T,24,3) of an estimate, camera frame, minus its pelvis."""
    from training.geometry import forward_kinematics, rot6d_to_matrix
    R = rot6d_to_matrix(torch.as_tensor(rot6d, dtype=torch.float32))[None]
    j = forward_kinematics(R, joint_model(torch.as_tensor(betas, dtype=torch.float32)[None]))[0]
    return (j - j[:, :1]).numpy()


# ---------------------------------------------------------------- rendering the target
def render_silhouettes(verts_cam, Ks, boxes, size, faces=None):
    """True silhouettes (T,size,size) uint8 {0,1} of camera-frame vertices (T,V,3) in square
    pixel boxes (T,4) — synth's point-splat z-buffer (vertices, plus face centroids for a
    sparse mesh; 3×3 hole filling). NaN boxes give empty silhouettes."""
    from training.data.synth import _fill_holes
    pts = np.asarray(verts_cam, np.float32)
    if faces is not None and pts.shape[1] <= 5000:
        f = np.asarray(faces)
        pts = np.concatenate([pts, (pts[:, f[:, 0]] + pts[:, f[:, 1]] + pts[:, f[:, 2]]) / 3], 1)
    T = len(pts)
    ok_box = np.isfinite(boxes).all(1)
    b = np.where(ok_box[:, None], boxes, 0.0)
    z = np.maximum(pts[..., 2], 1e-3)
    u = Ks[:, None, 0, 0] * pts[..., 0] / z + Ks[:, None, 0, 2]
    v = Ks[:, None, 1, 1] * pts[..., 1] / z + Ks[:, None, 1, 2]
    bw = np.maximum(b[:, 2] - b[:, 0], 1e-6)[:, None]
    px = np.floor((u - b[:, :1]) / bw * size).astype(np.int64)
    py = np.floor((v - b[:, 1:2]) / bw * size).astype(np.int64)
    ok = (px >= 0) & (px < size) & (py >= 0) & (py < size) & (pts[..., 2] > 1e-3) & ok_box[:, None]
    occ = np.zeros(T * size * size, bool)
    occ[(np.arange(T)[:, None] * size * size + py * size + px)[ok]] = True
    return _fill_holes(occ.reshape(T, size, size)).astype(np.uint8)


# ---------------------------------------------------------------- samples
class _Recorder:
    """Wraps a Poser: remembers its last output (the posed true mesh)."""

    def __init__(self, P):
        self.P, self.last = P, None

    def __getattr__(self, k):
        return getattr(self.P, k)

    def __call__(self, poses, trans):
        self.last = self.P(poses, trans)
        return self.last


class RecordingSynthesizer(ViewSynthesizer):
    """ViewSynthesizer (extra views skip the skinning) that keeps the last posed mesh."""

    def poser(self, betas):
        P = super().poser(betas)
        if self.__dict__.get("_rec_of") is not P:
            self._rec_of, self._rec = P, _Recorder(P)
        return self._rec


def frame_samples(s, arr, verts_world, est, joint_model, coarse_indices, size=SIL_SIZE, faces=None):
    """One synthesized view → dict of per-frame arrays (``KEYS`` but window/frame)."""
    T = len(s["valid"])
    w, h = (int(v) for v in s["frame_size"])
    E = s["extrinsics"].astype(np.float64)
    vc = np.einsum("tij,tvj->tvi", E[:, :3, :3], verts_world) + E[:, None, :3, 3]
    pelvis = arr["joints_cam"][:, :1].astype(np.float64)
    boxes = crop_boxes(s["keypoints"])
    rot6d, cam, betas = est
    sil_in = silhouette_crops(s["masks"], (w, h), s["keypoints"], size)
    return dict(
        features=arr["features"], silhouette_in=np.round(sil_in * 255).astype(np.uint8),
        init_rot6d=rot6d.astype(np.float32), init_betas=np.repeat(betas[None], T, 0), init_cam=cam,
        joints3d=(arr["joints_cam"] - pelvis).astype(np.float32),
        vertices_coarse=(vc[:, coarse_indices] - pelvis).astype(np.float32),
        rotmats=arr["rotmats"], betas=np.repeat(np.asarray(s["betas"], np.float32)[None], T, 0),
        joints2d=arr["joints2d"], joints2d_vis=arr["joints2d_vis"],
        silhouette=render_silhouettes(vc, s["K"].astype(np.float64), boxes, size, faces),
        valid=arr["valid"].astype(bool), temporal_joints=estimate_joints(joint_model, rot6d, betas).astype(np.float32))


class D2ASampler:
    """Draws sequences from one split's clips and turns them into per-frame samples."""

    def __init__(self, clips, body, temporal, prvipe, window, coarse_indices, **cfg):
        from training.geometry import JointShapeModel
        self.cfg = {**DEFAULTS, **cfg}
        L = self.cfg["seq_len"]
        self.clips = [c for c in clips if len(c[1]) >= min(L, window)]
        if not self.clips:
            raise ValueError("no clip is long enough")
        lens = np.array([len(c[1]) for c in self.clips], np.float64)
        self.p = lens / lens.sum()                    # uniform over frames
        self.body, self.temporal, self.prvipe, self.window = body, temporal, prvipe, window
        self.coarse = np.asarray(coarse_indices, np.int64)
        self.synth = RecordingSynthesizer(body)
        self.joint_model = JointShapeModel(body)

    def view(self, s, rng):
        """One synthesized view ``s`` (the mesh just posed by ``self.synth``) → per-frame dict."""
        verts = self.synth._rec.last[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            arr = sequence_arrays(s, rng, self.prvipe, self.cfg["focal_known_prob"])
        est = temporal_estimate(self.temporal, arr, self.window)
        return frame_samples(s, arr, verts, est, self.joint_model, self.coarse, self.cfg["sil_size"], self.body.faces)

    def sequence(self, rng):
        """One posed window → [(per-frame dict, window info)] for each view."""
        c = self.cfg
        clip, poses, trans, betas = self.clips[rng.choice(len(self.clips), p=self.p)]
        speed, L = draw_speed(rng, len(poses), c["seq_len"], min(c["seq_len"], self.window), c.get("speed_range"))
        if speed == 1.0:                          # recorded speed: exactly seq_len frames
            L = min(c["seq_len"], len(poses))
        a = int(rng.integers(0, len(poses) - L + 1))
        mirror = bool(rng.random() < c["mirror_prob"])
        # joint-angle augmentation only (pose_aug_prob / pose_aug_scale): a body scale would
        # not reach the recorded mesh that the vertex targets come from
        _, seq = draw_body_variation(rng, poses[a:a + L], {k: c[k] for k in ("pose_aug_prob", "pose_aug_scale") if k in c})
        out = []
        for _ in range(c["views"]):
            s = self.synth(seq, trans[a:a + L], betas, rng, mirror=mirror, render=True, speed=speed)
            out.append((self.view(s, rng), dict(clip=clip, start=a, camera=s["camera_type"], mirror=mirror,
                                                speed=round(speed, 4))))
        return out


# ---------------------------------------------------------------- the pool
def _work(args):
    cache, split, temporal_path, prvipe_path, n, seed, cfg = args
    from training.data.bvh_to_smpl import default_body
    from training.d2a.coarse_mesh import load
    torch.set_num_threads(1)
    body = default_body()
    model, pv, window = load_temporal(temporal_path, prvipe_path)
    sampler = D2ASampler(load_clips(cache, split), body, model, pv, window, load(body=body).indices, **cfg)
    return generate(sampler, n, seed)


def generate(sampler, n, seed):
    """``n`` sequences → (dict of stacked per-frame arrays with window/frame, window infos)."""
    rng = np.random.default_rng(seed)
    out = {k: [] for k in KEYS}
    infos = []
    for _ in range(n):
        for fr, info in sampler.sequence(rng):
            T = len(fr["features"])
            fr["window"] = np.full(T, len(infos), np.int32)
            fr["frame"] = np.arange(T, dtype=np.int32)
            infos.append(info)
            for k in KEYS:
                out[k].append(fr[k])
    return {k: np.concatenate(v).astype(KEYS[k]) for k, v in out.items()}, infos


def save_pool(path, arrays, infos, meta=None):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for k in KEYS:
        np.save(path / f"{k}.npy", arrays[k])
    (path / "meta.json").write_text(json.dumps({**(meta or {}), "windows": infos}, indent=1))
    return len(arrays["features"])


def build_pool(cache, split, temporal_path, sequences, path, seed=0, workers=1, prvipe=None, **cfg):
    """Generate ``sequences`` sequences of ``split`` into the folder ``path``; returns the number of frames."""
    workers = max(int(workers), 1)
    per = [sequences // workers + (1 if i < sequences % workers else 0) for i in range(workers)]
    jobs = [(cache, split, str(temporal_path), prvipe, n, [int(seed), 11, i], cfg) for i, n in enumerate(per) if n]
    if workers == 1:
        res = [_work(j) for j in jobs]
    else:
        with Pool(workers) as pool:
            res = pool.map(_work, jobs)
    arrays, infos = {k: [] for k in KEYS}, []
    for arr, inf in res:          # window ids continue across workers
        for k in KEYS:
            arrays[k].append(arr[k] + len(infos) if k == "window" else arr[k])
        infos += inf
    arrays = {k: np.concatenate(v) for k, v in arrays.items()}
    meta = {"split": split, "temporal": str(temporal_path), "sequences": sequences, "seed": seed, "config": cfg}
    return save_pool(path, arrays, infos, meta)


# ---------------------------------------------------------------- reading
def load_pool(path):
    """Dict of memory-mapped arrays (``KEYS``)."""
    return {k: np.load(Path(path) / f"{k}.npy", mmap_mode="r") for k in KEYS}


def pool_size(path):
    return len(np.load(Path(path) / "features.npy", mmap_mode="r"))


def pool_batch(pool, idx, num_coarse=None):
    """Frames ``idx`` of a loaded pool → dict of tensors for ``D2ATraining`` (silhouettes as
    float [0,1]; the coarse vertices cut to the model's first ``num_coarse``: a
    ``training.d2a.coarse_mesh.subset`` keeps the leading farthest-point vertices)."""
    idx = np.asarray(idx)
    out = {}
    for k, v in pool.items():
        a = np.asarray(v[idx])
        if k in ("silhouette_in",):
            a = a.astype(np.float32) / 255.0
        elif k == "silhouette":
            a = a.astype(np.float32)
        elif k == "vertices_coarse" and num_coarse is not None:
            a = a[:, :num_coarse]
        elif k == "valid":
            a = a.astype(np.float32)
        out[k] = torch.as_tensor(a)
    return out


class PoolMix:
    """Training batches from one or several loaded pools, detected frames only: each batch takes
    a multinomial share of its frames from each pool by ``weights`` (shuffled together, so a
    batch's first frames — ImpHMR's — come from every pool). One pool draws exactly as a
    single-pool run always has."""

    def __init__(self, pools, weights=None):
        self.pools = list(pools)
        w = np.ones(len(self.pools)) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(self.pools) or not len(w) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("pool weights must be non-negative, one per pool, and not all zero")
        self.weights = w / w.sum()
        self.frames = [np.flatnonzero(np.asarray(p["valid"], bool)) for p in self.pools]
        empty = [i for i, f in enumerate(self.frames) if not len(f) and self.weights[i] > 0]
        if empty:
            raise ValueError(f"pool {empty[0]} has no detected frames")

    def batch(self, rng, bs, num_coarse=None):
        """One batch of ``bs`` frames (``pool_batch``'s dict) drawn with ``rng``."""
        if len(self.pools) == 1:
            f = self.frames[0]
            return pool_batch(self.pools[0], np.sort(rng.choice(f, size=bs, replace=len(f) < bs)), num_coarse)
        counts = rng.multinomial(bs, self.weights)
        parts = [pool_batch(p, np.sort(rng.choice(f, size=c, replace=len(f) < c)), num_coarse)
                 for p, f, c in zip(self.pools, self.frames, counts) if c]
        perm = torch.as_tensor(rng.permutation(bs))
        return {k: torch.cat([b[k] for b in parts])[perm] for k in parts[0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate a per-frame pool for the D2A refinement network")
    ap.add_argument("--temporal", required=True, help="training.temporal.train checkpoint (best.pt)")
    ap.add_argument("--prvipe", help="Pr-VIPE checkpoint (default: the one in the temporal checkpoint's config)")
    ap.add_argument("--cache", default="cache/cmu_smpl")
    ap.add_argument("--split", default="train", choices=["train", "val", "test"])
    ap.add_argument("--sequences", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views", type=int, default=DEFAULTS["views"])
    ap.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"])
    ap.add_argument("--speed-range", type=float, nargs=2, metavar=("LO", "HI"),
                    help="play motions faster/slower by a log-uniform factor in [LO, HI] (as training.temporal.dataset)")
    ap.add_argument("--pose-aug", type=float, nargs=2, metavar=("PROB", "SCALE"),
                    help="joint-angle augmentation (training.data.synth.perturb_pose) in a share PROB of the "
                         "sequences, spreads x SCALE: the temporal model's errors on poses it was not fitted to")
    a = ap.parse_args(argv)
    t0 = time.time()
    n = build_pool(a.cache, a.split, a.temporal, a.sequences, a.out, a.seed, a.workers, a.prvipe,
                   views=a.views, seq_len=a.seq_len, **({"speed_range": tuple(a.speed_range)} if a.speed_range else {}),
                   **({"pose_aug_prob": a.pose_aug[0], "pose_aug_scale": a.pose_aug[1]} if a.pose_aug else {}))
    print(f"{n} frames ({a.split}) from {a.sequences} sequences in {(time.time() - t0) / 60:.1f} min → {a.out}")


if __name__ == "__main__":
    main()
