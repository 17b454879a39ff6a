"""Training windows for the seed-2 temporal model, streamed from the synthetic generator.

``SyntheticWindows`` (a torch ``IterableDataset``) draws motion windows from the retargeted CMU
cache (``python -m training.data.bvh_to_smpl --cache cache/cmu_smpl``; train split for training,
val split for validation, ``training.data.splits``), observes each through random cameras with
the detector noise model (``training.data.synth.Synthesizer``; mirrored — left/right swapped —
with probability ``mirror_prob``) and yields the dict that ``training.temporal.losses.temporal_loss``
and ``TemporalModel`` consume, one window (T frames) at a time:

| key | shape | what |
|---|---|---|
| ``features`` | (T,202) | ``engine.estimate.network_inputs.frame_features`` of the noisy keypoints and world landmarks |
| ``homography`` | (T,135) | the dynamic feature (``engine.observe.camera_motion.homography_feature``) |
| ``ik_prior`` | (T,144) | the analytic IK rotations of the noisy world landmarks, 6D (``engine.estimate.network_inputs.ik_prior``) |
| ``keypoints99`` | (T,99) | ``engine.estimate.network_inputs.normalized_keypoints`` (Pr-VIPE's input) |
| ``prvipe_mu`` / ``prvipe_sigma`` | (T,32) | the frozen Pr-VIPE's embedding of the normalised 2D keypoints (0 / 1 without one) |
| ``rotmats`` | (T,24,3,3) | ground-truth local rotations; the root's is the global orientation in the camera frame |
| ``betas`` | (10,) | ground-truth shape |
| ``joints2d`` / ``joints2d_vis`` | (T,24,2) / (T,24) | true SMPL joints projected and normalised like ``engine.estimate.network_inputs.normalized_keypoints`` (same hip centre and scale as the input keypoints); visibility = frame detected and joint inside the image |
| ``joints_cam`` | (T,24,3) | true camera-frame joints (metres; for validation) |
| ``valid`` | (T,) | detector found the person (invalid frames have all-zero features) |

Cost: posing the body (13k-vertex skinning) dominates the generator, so one posed window is
observed through ``views`` cameras (each with its own noise) and each view gives
``windows_per_view`` crops of ``window`` frames from the ``seq_len`` synthesized frames; a
shuffle buffer mixes them. The focal length fed to the features is the true one with
probability ``focal_known_prob`` and otherwise the run-time default guess (the longer image
side, ``engine.estimate.camera.default_intrinsics``), so the model works with and without ``--focal``.
"""
import warnings
from pathlib import Path

import numpy as np
import torch

from engine.body import kinematics as K
from engine.estimate.network_inputs import L_HIP, R_HIP, frame_features, ik_prior, normalized_keypoints, person_scale

from training.data.noise import load_noise_model
from training.data.splits import split_of
from training.data.synth import Synthesizer, perturb_pose
from training.temporal.model import EMBED_DIM

DEFAULTS = dict(window=32, seq_len=48, views=2, windows_per_view=2, shuffle=64, mirror_prob=0.5,
                focal_known_prob=0.5, speed_range=(1.0, 1.0), noise_reference="self_consistency",
                body_scale_range=(1.0, 1.0), pose_aug_prob=0.0, pose_aug_scale=1.0, landmark_convention=None)


def load_clips(cache, split):
    """[(clip, poses (T,72), trans (T,3), betas (10,))] of one split from a retarget cache.

    Refuses clips cached by another version of the retargeter (their joints would not be the
    ones H1/H2 score against): rebuild with ``python -m training.data.bvh_to_smpl --cache``."""
    from training.data.bvh_to_smpl import RETARGET_VERSION
    out = []
    for f in sorted(Path(cache).glob("*.npz")):
        try:
            s = split_of(f.stem)
        except KeyError:
            continue
        if s == split:
            z = np.load(f)
            v = int(z["retarget_version"]) if "retarget_version" in z.files else None
            if v != RETARGET_VERSION:
                raise ValueError(f"{f} was retargeted by version {v}, not the current {RETARGET_VERSION}: "
                                 f"rebuild the cache (python -m training.data.bvh_to_smpl --cache {cache})")
            out.append((f.stem, z["poses"].astype(np.float64), z["trans"].astype(np.float64),
                        z["betas"].astype(np.float64)))
    if not out:
        raise FileNotFoundError(f"no {split} clips in {cache} (build it: python -m training.data.bvh_to_smpl --cache {cache})")
    return out


class _MemoPoser:
    """Wraps a Poser: the same (poses, trans) twice in a row is posed once."""

    def __init__(self, P):
        self.P, self.key, self.val = P, None, None

    def __getattr__(self, k):
        return getattr(self.P, k)

    def __call__(self, poses, trans):
        key = (poses.shape, hash(poses.tobytes()), hash(trans.tobytes()))
        if key != self.key:
            self.key, self.val = key, self.P(poses, trans)
        return self.val


class ViewSynthesizer(Synthesizer):
    """A Synthesizer that remembers the last posed window, so extra camera views of the same
    motion skip the skinning (the expensive part)."""

    def poser(self, betas):
        P = super().poser(betas)
        memo = self.__dict__.setdefault("_memo", {})
        if memo.get("P") is not P:
            memo["P"], memo["M"] = P, _MemoPoser(P)
        return memo["M"]


def camera_frame_rotations(poses, extrinsics):
    """Local rotations (T,24,3,3) with the root's expressed in the camera frame."""
    T = len(poses)
    rot = K.axis_angle_to_matrix(np.asarray(poses, np.float64).reshape(T, 24, 3))
    rot[:, 0] = np.asarray(extrinsics, np.float64)[:, :3, :3] @ rot[:, 0]
    return rot


def normalized_joints2d(joints_cam, Ks, keypoints, frame_size):
    """True joints (T,24,3, camera frame) → pixels → the input keypoints' normalisation.

    Returns joints2d (T,24,2) and visibility (T,24) (0 where the person was not detected, the
    joint is behind the camera or outside the image)."""
    z = np.maximum(joints_cam[..., 2:3], 1e-3)
    f = np.stack([Ks[:, 0, 0], Ks[:, 1, 1]], -1)[:, None]
    uv = joints_cam[..., :2] / z * f + Ks[:, None, :2, 2]
    kp = np.asarray(keypoints, np.float64)
    hip = 0.5 * (kp[:, L_HIP, :2] + kp[:, R_HIP, :2])
    s = person_scale(kp)
    j2d = (uv - hip[:, None]) / s[:, None, None]
    w, h = frame_size
    ok = np.isfinite(j2d).all(-1) & np.isfinite(kp[..., :2]).all((-1, -2))[:, None]
    ok &= (joints_cam[..., 2] > 1e-2) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    return np.nan_to_num(j2d).astype(np.float32), ok.astype(np.float32)


@torch.no_grad()
def prvipe_embed(prvipe, nk):
    """Frozen Pr-VIPE on normalised keypoints (T,33,3) → mu, sigma (T,32) float32 numpy."""
    T = len(nk)
    if prvipe is None:
        return np.zeros((T, EMBED_DIM), np.float32), np.ones((T, EMBED_DIM), np.float32)
    mu, sig = prvipe(torch.as_tensor(nk.reshape(T, -1), dtype=torch.float32))
    return mu.numpy().astype(np.float32), sig.numpy().astype(np.float32)


def sequence_arrays(s, rng, prvipe=None, focal_known_prob=0.5):
    """Model inputs and targets (dict of per-frame arrays) for one synthesized sequence ``s``."""
    w, h = (int(v) for v in s["frame_size"])
    focal = float(np.median(s["K"][:, 0, 0])) if rng.random() < focal_known_prob else float(max(w, h))
    kp = s["keypoints"]
    with warnings.catch_warnings():   # undetected frames are all-NaN: features are zeros there
        warnings.simplefilter("ignore", RuntimeWarning)
        nk = normalized_keypoints(kp.astype(np.float64))
        j_cam = s["joints_cam"].astype(np.float64)
        j2d, vis = normalized_joints2d(j_cam, s["K"].astype(np.float64), kp, (w, h))
        feats = frame_features(kp, s["world"], (w, h), focal)
        prior = ik_prior(s["world"], kp[..., 2])
    mu, sig = prvipe_embed(prvipe, nk)
    return dict(features=feats, ik_prior=prior, keypoints99=nk.reshape(len(nk), -1).astype(np.float32),
                homography=s["camera_motion"].astype(np.float32),
                prvipe_mu=mu, prvipe_sigma=sig,
                rotmats=camera_frame_rotations(s["poses"], s["extrinsics"]).astype(np.float32),
                joints2d=j2d, joints2d_vis=vis, joints_cam=j_cam.astype(np.float32),
                valid=s["valid"].astype(bool))


def crop(arrays, betas, a, n):
    out = {k: v[a:a + n] for k, v in arrays.items()}
    out["betas"] = np.asarray(betas, np.float32)
    return out


def draw_speed(rng, n_frames, seq_len, min_len, speed_range=None):
    """(speed, source frames) of one training sequence: a speed factor drawn log-uniformly in
    ``speed_range`` (lo, hi) and the number of source frames that, played at that speed, give
    ``seq_len`` frames (+ a margin for resampling); a clip too short for the speed (fewer than
    ``min_len`` frames after resampling) is played as is."""
    lo, hi = speed_range or (1.0, 1.0)
    speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)
    L = min(int(np.ceil(seq_len * speed)) + int(np.ceil(speed)), n_frames)
    if round(L / speed) < min_len:
        speed, L = 1.0, min(seq_len, n_frames)
    return speed, L


def draw_body_variation(rng, poses, cfg):
    """(body_scale, poses) of one training sequence: a uniform body scale drawn log-uniformly in
    ``body_scale_range`` (taller/shorter people than CMU's: the world landmarks grow with them)
    and, with probability ``pose_aug_prob``, the joint-angle augmentation ``perturb_pose``
    (spreads × ``pose_aug_scale``). With the defaults nothing changes and no random number is
    drawn, so pools made before these options are reproduced exactly."""
    lo, hi = cfg.get("body_scale_range") or (1.0, 1.0)
    scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)
    p = float(cfg.get("pose_aug_prob") or 0.0)
    if p > 0 and rng.random() < p:
        poses = perturb_pose(poses, rng, float(cfg.get("pose_aug_scale", 1.0)))
    return scale, poses


class WindowSampler:
    """Draws windows (dicts of numpy arrays) from clips with a seeded generator."""

    def __init__(self, clips, body, prvipe=None, synth=None, **cfg):
        self.cfg = {**DEFAULTS, **cfg}
        W = self.cfg["window"]
        self.clips = [c for c in clips if len(c[1]) >= W]
        if not self.clips:
            raise ValueError(f"no clip has ≥ {W} frames")
        lens = np.array([len(c[1]) for c in self.clips], np.float64)
        self.p = lens / lens.sum()           # uniform over frames
        # the data config's "noise_reference" (default: the self-consistency model the shipped
        # models were trained with; "multiview": training.data.noise.load_noise_model)
        # "landmark_convention": "learned" (the default) or "rules" (engine.body.landmarks)
        self.synth = synth or ViewSynthesizer(body, noise=load_noise_model(reference=self.cfg["noise_reference"]),
                                              convention=self.cfg["landmark_convention"])
        self.prvipe = prvipe

    def sequence(self, rng):
        """One posed window → list of windows (views × windows_per_view).

        With ``speed_range`` (lo, hi) the motion is first played faster or slower by a factor
        drawn log-uniformly in it (``synth.change_speed``; all views share it), so the model
        sees fast limbs that are real and not detector noise to smooth away."""
        c = self.cfg
        clip, poses, trans, betas = self.clips[rng.choice(len(self.clips), p=self.p)]
        speed, L = draw_speed(rng, len(poses), c["seq_len"], c["window"], c.get("speed_range"))
        a = int(rng.integers(0, len(poses) - L + 1))
        mirror = bool(rng.random() < c["mirror_prob"])
        body_scale, seq = draw_body_variation(rng, poses[a:a + L], c)
        out = []
        for _ in range(c["views"]):
            s = self.synth(seq, trans[a:a + L], betas, rng, mirror=mirror, render=False, speed=speed,
                           body_scale=body_scale)
            arr = sequence_arrays(s, rng, self.prvipe, c["focal_known_prob"])
            n = len(arr["features"])
            if n < c["window"]:                  # resampling rounded below a window: skip it
                continue
            for _ in range(c["windows_per_view"]):
                b = int(rng.integers(0, n - c["window"] + 1))
                w = crop(arr, betas, b, c["window"])
                w["camera_type"] = s["camera_type"]
                out.append(w)
        return out


class SyntheticWindows(torch.utils.data.IterableDataset):
    """Endless stream of training windows (see the module docstring). Each DataLoader worker
    draws its own stream from ``seed`` (pass a new seed on resume so data is not replayed)."""

    def __init__(self, clips, body, prvipe=None, seed=0, **cfg):
        super().__init__()
        self.clips, self.body, self.prvipe, self.seed, self.cfg = clips, body, prvipe, seed, cfg

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = 0 if info is None else info.id
        if info is not None:
            torch.set_num_threads(1)
        rng = np.random.default_rng([int(self.seed), wid])
        sampler = WindowSampler(self.clips, self.body, self.prvipe, **self.cfg)
        buf = []
        size = max(int(sampler.cfg["shuffle"]), 1)
        while True:
            while len(buf) < size:
                buf.extend(sampler.sequence(rng))
            i = int(rng.integers(len(buf)))
            buf[i], buf[-1] = buf[-1], buf[i]
            w = buf.pop()
            w.pop("camera_type", None)
            yield w


class MixedWindows(torch.utils.data.IterableDataset):
    """Endless windows from several window streams (e.g. a synthetic and a rendered pool):
    each window comes from stream i with probability weights[i] / sum(weights)."""

    def __init__(self, sources, weights, seed=0):
        super().__init__()
        w = np.asarray(weights, np.float64)
        if len(sources) != len(w) or not len(w) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("MixedWindows needs one non-negative weight per source, not all zero")
        self.sources, self.p, self.seed = list(sources), w / w.sum(), seed

    def __iter__(self):
        its = [iter(s) for s in self.sources]
        rng = np.random.default_rng([int(self.seed), 29])
        while True:
            yield next(its[int(rng.choice(len(its), p=self.p))])


def fixed_windows(clips, body, n, seed=0, prvipe=None, **cfg):
    """A deterministic list of ``n`` windows (validation): one view, one window per draw, motions
    at their recorded speed and poses, bodies at their own size (so runs with and without the
    augmentations are compared alike)."""
    cfg = {**cfg, "views": 1, "windows_per_view": 1, "speed_range": (1.0, 1.0),
           "body_scale_range": (1.0, 1.0), "pose_aug_prob": 0.0}
    sampler = WindowSampler(clips, body, prvipe, **cfg)
    rng = np.random.default_rng(seed)
    return [sampler.sequence(rng)[0] for _ in range(n)]


def collate(windows):
    """List of window dicts → dict of stacked tensors (strings dropped)."""
    out = {}
    for k, v in windows[0].items():
        if isinstance(v, str):
            continue
        out[k] = torch.as_tensor(np.stack([w[k] for w in windows]))
    return out
