"""Rendered observations: CMU training motions rendered as short clips (``scene.ClipRenderer``),
run through the shipped MediaPipe PoseLandmarker in video mode, and stored per clip with the
truth as ``<out>/<clip>_<seed>.npz`` (resumable: a file on disk is skipped) plus a manifest.

Only the training split's clips (``training.data.splits``) are ever read: ``train_clips`` refuses
val/test subjects, and ``render_one`` checks again. Each job is seeded from (base seed, clip,
seed), so a file can be made again bit for bit (same library versions).
"""
import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from training.data.splits import split_of

CLIP_FRAMES = (60, 121)    # 2–4 s at 30 fps (upper bound exclusive)
MIN_FRAMES = 30


def train_clips(cache_dir):
    """Clip ids of the retargeted cache (``training.data.bvh_to_smpl --cache``) in the training split."""
    out = []
    for p in sorted(Path(cache_dir).glob("*.npz")):
        try:
            if split_of(p.stem) == "train":
                out.append(p.stem)
        except KeyError:
            continue
    return out


def job_list(cache_dir, clips, passes=1):
    """[(clip, seed)]: per pass, enough windows to cover each clip about once; ordered seed-major
    so a partial run spans every clip."""
    per = {}
    for c in clips:
        with np.load(Path(cache_dir) / f"{c}.npz") as z:
            n = len(z["poses"])
        per[c] = 0 if n < MIN_FRAMES else max(1, int(round(n / np.mean(CLIP_FRAMES))))
    jobs = []
    for p in range(passes):
        k = 0
        while True:
            row = [(c, p * 1000 + k) for c in clips if k < per[c]]
            if not row:
                break
            jobs.extend(row)
            k += 1
    return jobs


def job_rng(base_seed, clip, seed):
    return np.random.default_rng([int(base_seed), zlib.crc32(clip.encode()), int(seed)])


def output_path(out_dir, clip, seed):
    return Path(out_dir) / f"{clip}_{seed}.npz"


def detect_clip(frames, fps, detector=None):
    """MediaPipe on a clip's frames in video mode (a fresh landmarker, as for a new video).

    Per frame, the largest detected person (keypoint box), as the product's default choice:
    keypoints (T,33,3), world (T,33,3), score (T,), people (T,), masks (T,h,w)."""
    from engine.observe.landmarker import MediaPipePoseLandmarker
    from engine.observe.types import keypoint_box, mask_size
    det = detector or MediaPipePoseLandmarker()
    T = len(frames)
    h, w = frames[0].shape[:2]
    mw, mh = mask_size(w, h)
    kp = np.full((T, 33, 3), np.nan, np.float32)
    world = np.full((T, 33, 3), np.nan, np.float32)
    score = np.full(T, np.nan, np.float32)
    people = np.zeros(T, np.int16)
    masks = np.zeros((T, mh, mw), np.uint8)
    try:
        for t, f in enumerate(frames):
            obs = det.detect_all(f, t / float(fps))
            people[t] = len(obs)
            if not obs:
                continue

            def area(o):
                x0, y0, x1, y1 = keypoint_box(o.keypoints)
                return (x1 - x0) * (y1 - y0)
            o = max(obs, key=area)
            kp[t], world[t], masks[t], score[t] = o.keypoints, o.world, o.mask, o.score
    finally:
        if detector is None:
            det.close()
    return dict(keypoints=kp, world=world, score=score, people=people, masks=masks,
                valid=np.isfinite(kp[:, 0, 0]))


def render_one(renderer, cache_dir, clip, seed, base_seed=0, detector=None):
    """Render and detect one job: (arrays to store (dict), the rendered frames)."""
    if split_of(clip) != "train":
        raise ValueError(f"clip {clip} is in the {split_of(clip)} split: only training clips are rendered")
    rng = job_rng(base_seed, clip, seed)
    with np.load(Path(cache_dir) / f"{clip}.npz") as z:
        poses, trans, betas = z["poses"], z["trans"], z["betas"]
        fps = float(z["fps"]) if "fps" in z.files else 30.0
    n = int(rng.integers(*CLIP_FRAMES))
    n = min(n, len(poses))
    start = int(rng.integers(0, len(poses) - n + 1))
    frames, truth = renderer.render(poses[start:start + n], trans[start:start + n], betas, rng, fps=fps)
    det = detect_clip(frames, fps, detector)
    deg = truth.pop("degradation")
    return dict(**det, **truth, clip=np.array(clip), seed=np.int64(seed), base_seed=np.int64(base_seed),
                start=np.int64(start), degradation=np.array(json.dumps(deg)),
                mediapipe=np.array(_mediapipe_version())), frames


def _mediapipe_version():
    import mediapipe as mp
    return getattr(mp, "__version__", "?")


def save_atomic(path, arrays):
    """np.savez_compressed to ``path`` through a temporary ``.part.npz`` (no half-written file)."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def summarise(path):
    """Manifest entry of one stored clip: frames, detected frames, camera."""
    with np.load(path) as z:
        return dict(frames=int(len(z["valid"])), detected=int(z["valid"].sum()),
                    camera=str(z["camera_type"]), clip=str(z["clip"]), seed=int(z["seed"]))


def write_manifest(out_dir, extra=None):
    """``manifest.json``: every stored clip and the totals (rebuilt from the files on disk)."""
    out_dir = Path(out_dir)
    entries = {}
    old = out_dir / "manifest.json"
    if old.exists():
        try:
            entries = json.loads(old.read_text()).get("clips", {})
        except (OSError, ValueError):
            entries = {}
    files = sorted(p for p in out_dir.glob("*.npz") if not p.name.endswith(".part.npz"))
    entries = {p.name: entries.get(p.name) or summarise(p) for p in files}
    tot = dict(clips=len(entries), frames=sum(e["frames"] for e in entries.values()),
               detected=sum(e["detected"] for e in entries.values()))
    data = dict(totals=tot, clips=entries, **(extra or {}))
    tmp = out_dir / "manifest.json.part"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out_dir / "manifest.json")
    return tot


def run(cache_dir, out_dir, jobs, renderer, base_seed=0, max_frames=None, progress=print):
    """Render every job not yet on disk (until ``max_frames`` new frames); updates the manifest
    after each clip. Returns (new clips, new frames, seconds)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, done, frames = time.time(), 0, 0
    for i, (clip, seed) in enumerate(jobs):
        dst = output_path(out_dir, clip, seed)
        if dst.exists():
            continue
        arrays, _ = render_one(renderer, cache_dir, clip, seed, base_seed)
        save_atomic(dst, arrays)
        done += 1
        frames += len(arrays["valid"])
        tot = write_manifest(out_dir, dict(base_seed=base_seed))
        dt = time.time() - t0
        progress(f"[{i + 1}/{len(jobs)}] {dst.name}: {len(arrays['valid'])} frames, "
                 f"{int(arrays['valid'].sum())} detected; {frames / dt:.2f} frames/s; "
                 f"total {tot['frames']} frames")
        if max_frames is not None and frames >= max_frames:
            break
    return done, frames, time.time() - t0
