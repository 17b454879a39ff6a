"""Per-stage benchmark of the engine on one clip, against the decode + detection floor.

    python -m training.bench.speed VIDEO [--max-side 1280] [--frames N] [--estimator auto|temporal|baseline]
                                [--random-weights] [--device auto|gpu|cpu]
    python -m training.bench.speed --networks-only --random-weights [--device gpu]
    python -m training.bench.speed --make-clip /tmp/long.mp4 --seconds 600 --size 1920x1080 [VIDEO]
    python -m training.bench.speed /tmp/long.mp4 --detect-first 230      # memory run on a long clip

What one run prints (all measured in that run, on this machine):

1. **decode alone**: one pass of the decoder over the clip (same range, stride and processing
   size), nothing else — the floor no pipeline can beat.
2. **the pipeline end to end** (``engine.pipeline.run`` with the cache off, then writing the
   Motion file), with the seconds of each stage: detector set-up, detection (MediaPipe's own
   time), masks + appearance, flow / homographies, tracking, gap recovery, the temporal model
   (its networks, when the ``temporal`` estimator runs), refinement (seed 0, when ``d2a.onnx``
   is installed and ``--no-refine`` is not given: its network and its σ-weighted rotation
   fit, the network's share printed beside it), fit, smoothing (the clean-motion stage) and
   write; decoding runs in a producer thread overlapped with detection, so its busy time is
   printed but not part of the sum.
3. **end-to-end frames/s** and the ratio **end-to-end / (decode alone + detection)**; with
   ``--follow`` (the engine's default) the ratio's second term is a separate pass of one
   single-person landmarker over the subject's crops (``crop_landmarking_pass``, MediaPipe's
   video mode; the same crops in IMAGE mode, as the follow pass landmarks them where nobody is
   near, printed beside it), and the follow pass's wall clock is in the sum, its stages (which
   may run in two threads) printed inside it.
4. **networks alone** (when temporal weights are found, or ``--random-weights``): the
   temporal model's ONNX graph on batches of windows, Pr-VIPE on batches of frames and the D2A
   refinement network on batches of frames (when ``d2a.onnx`` is there), through
   ``engine.estimate.onnx_runtime`` sessions on ``--device``.
5. **peak RSS** of the process (``resource.getrusage``) and, along the run, the resident memory
   sampled against the frame count, with its growth per frame.

``--random-weights`` exports a randomly initialised temporal model and Pr-VIPE (sizes from
``training/configs/temporal_cpu.json``) to a temporary folder — speed only, the outputs mean
nothing; it needs torch (the development install), unlike the rest of the engine.

``--detect-first N`` runs MediaPipe on the first N frames, then replays those detections
forward and backward: a long clip synthesised by ``--make-clip`` (the demo played forward,
backward, forward …; N = the demo's 230 frames) then exercises the
whole pipeline's memory — streamed decoding, masks, appearance, flow, tracking, fit, clean-up —
in minutes instead of hours. Its timings are not the real pipeline's (detection is skipped).
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"
TEMPORAL_CONFIG = ROOT / "training" / "configs" / "temporal_cpu.json"
PRVIPE_CONFIG = ROOT / "training" / "configs" / "prvipe_cpu.json"

# (timings key, printed name); the order of the table
STAGES = (("setup", "detector set-up"), ("survey", "survey (--follow)"), ("detection", "detection"),
          ("follow_landmarks", "crop landmarking (--follow)"),
          ("masks_appearance", "masks + appearance"), ("flow_homographies", "flow / homographies"),
          ("gap_search_beside", "gap search beside it"),
          ("tracking", "tracking"), ("gap_recovery", "gap recovery"),
          ("temporal_model", "temporal model"), ("refinement", "refinement"), ("fit", "fit"),
          ("smoothing", "smoothing (clean)"), ("image_fit", "image-aligned fit"), ("write", "write"))


# ------------------------------------------------------------------------------- memory
def peak_rss_mb():
    """Peak resident set size of this process in MiB (``resource.getrusage``)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0  # bytes vs KiB


def rss_mb():
    """Current resident set size in MiB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return None


def growth_per_frame(samples, skip=0.2):
    """KiB per frame: least-squares slope of (frame, RSS MiB) samples after the first ``skip``."""
    s = np.asarray(samples, np.float64).reshape(-1, 2)
    s = s[int(len(s) * skip):]
    if len(s) < 3 or np.ptp(s[:, 0]) == 0:
        return float("nan")
    return float(np.polyfit(s[:, 0], s[:, 1], 1)[0] * 1024.0)


def machine():
    """(CPU cores this process may use, load averages)."""
    from engine.observe.halves import cores
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return cores(), load


# ------------------------------------------------------------------------------- decode
def decode_pass(video, frame_range=None, stride=1, max_side=None):
    """(frames, seconds, processing size) of decoding alone."""
    from engine.video.decode import iter_frames
    t0 = time.perf_counter()
    n, size = 0, None
    for _, _, f in iter_frames(video, frame_range, stride, max_side):
        n += 1
        size = f.shape[1::-1]
    return n, time.perf_counter() - t0, size


def crop_landmarking_pass(video, keypoints2d, valid, frame_range=None, max_side=None, tracking=True):
    """Seconds of one single-person MediaPipe landmarker (segmentation on) alone on the
    subject's crops — placed as ``--follow`` places them (``follow.crop_region`` around the
    subject's keypoint box, the last box held where the subject was not seen) — with decoding
    and cropping outside the timer. ``tracking``: VIDEO mode, MediaPipe's own tracking (no
    person detector once it holds the subject): the floor of any pipeline that landmarks the
    subject in every frame; False: IMAGE mode, the detector on every crop, as the follow pass
    runs it where nobody else is near (``follow.crop_landmarks``)."""
    import cv2

    from engine.observe.follow import crop_region
    from engine.observe.landmarker import MediaPipePoseLandmarker
    from engine.observe.types import keypoint_box
    from engine.video.decode import iter_frames, open_video
    cap, info = open_video(video)
    cap.release()
    boxes = [keypoint_box(k) if v else None for k, v in zip(keypoints2d, valid)]
    last = next((b for b in boxes if b is not None), None)
    if last is None:
        return float("nan")
    lm = MediaPipePoseLandmarker(num_poses=1, tracking=tracking)
    spent = 0.0
    try:
        for t, (_, ts, bgr) in enumerate(iter_frames(video, frame_range, 1, max_side)):
            if t >= len(boxes):
                break
            last = boxes[t] if boxes[t] is not None else last
            k = bgr.shape[1] / info.width
            x0, y0, x1, y1 = (int(v * k) for v in crop_region(last, info.width, info.height))
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB))
            t0 = time.perf_counter()
            lm.detect_all(rgb, ts)
            spent += time.perf_counter() - t0
    finally:
        lm.close()
    return spent


# ------------------------------------------------------------------------------- networks
def export_random_weights(folder, temporal_config=TEMPORAL_CONFIG, prvipe_config=PRVIPE_CONFIG, seed=0):
    """temporal.onnx + prvipe.onnx of randomly initialised models (speed only; needs torch)."""
    import torch  # development install only: the engine itself never needs torch

    from training.temporal.export import export_prvipe, export_temporal
    from training.prvipe.model import PrVIPE
    from training.temporal.model import TemporalModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tc = json.loads(Path(temporal_config).read_text())
    pc = json.loads(Path(prvipe_config).read_text())
    window = int(tc.get("data", {}).get("window", 32))
    torch.manual_seed(seed)
    m = TemporalModel(**tc["model"])
    meta = {"format": "mocap-temporal/1", "window": window, "overlap": window // 2,
            "model_args": json.dumps(tc["model"]), "uses_prvipe": int(tc["model"].get("use_prvipe", True)),
            "note": "RANDOM INITIALISATION (training.bench.speed --random-weights): speed only"}
    export_temporal(m, folder / "temporal.onnx", meta)
    export_prvipe(PrVIPE(**pc["model"]), folder / "prvipe.onnx", {"note": meta["note"]})
    return folder


def _time_runs(fn, min_seconds=2.0, min_runs=3, max_runs=200):
    fn()  # warm-up (graph optimisation, CUDA kernels)
    t0, runs = time.perf_counter(), 0
    while runs < min_runs or (time.perf_counter() - t0 < min_seconds and runs < max_runs):
        fn()
        runs += 1
    return (time.perf_counter() - t0) / runs


def bench_networks(folder, device="auto", batches=(1, 16, 64), seed=0, threads=None, d2a_batches=(1, 64, 256)):
    """Throughput of the exported networks alone on random inputs → dict of results.

    temporal: ``B`` windows of the model's window length per run → window frames/s and clip
    frames/s (each clip frame is covered by window/(window − overlap) windows in
    ``engine.estimate.temporal``'s sliding windows). prvipe: ``B × window`` frames per run. d2a (when
    ``d2a.onnx`` is in the folder): ``d2a_batches`` frames per run.
    """
    from engine.estimate.onnx_runtime import create_session, describe
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    sess = create_session(folder / "temporal.onnx", device, threads=threads)
    meta = sess.get_modelmeta().custom_metadata_map
    W = int(meta.get("window", 32))
    overlap = int(meta.get("overlap", W // 2))
    cover = W / max(W - overlap, 1)
    inputs = sess.get_inputs()
    out = {"device": describe(sess), "providers": sess.get_providers(), "window": W, "overlap": overlap,
           "temporal": [], "prvipe": []}
    for B in batches:
        feed = {}
        for i in inputs:
            dim = i.shape[-1] if isinstance(i.shape[-1], int) else 32
            x = rng.standard_normal((B, W, dim)).astype(np.float32)
            feed[i.name] = np.abs(x) + 0.5 if "sigma" in i.name else x
        dt = _time_runs(lambda: sess.run(None, feed))
        out["temporal"].append({"batch": B, "ms_per_run": 1000 * dt, "window_frames_per_s": B * W / dt,
                                "clip_frames_per_s": B * W / cover / dt})
    if (folder / "prvipe.onnx").is_file():
        ps = create_session(folder / "prvipe.onnx", device, threads=threads)
        dim = ps.get_inputs()[0].shape[-1]
        for B in batches:
            x = rng.standard_normal((B * W, dim if isinstance(dim, int) else 99)).astype(np.float32)
            dt = _time_runs(lambda: ps.run(None, {ps.get_inputs()[0].name: x}))
            out["prvipe"].append({"frames": B * W, "ms_per_run": 1000 * dt, "frames_per_s": B * W / dt})
    out["d2a"] = []
    if (folder / "d2a.onnx").is_file():
        ds = create_session(folder / "d2a.onnx", device, threads=threads)
        for B in d2a_batches:            # frames per run (the engine runs 64 at once: refine.MAX_BATCH)
            feed = {}
            for i in ds.get_inputs():
                shape = [B] + [d if isinstance(d, int) else 1 for d in i.shape[1:]]
                feed[i.name] = rng.random(shape).astype(np.float32)
            dt = _time_runs(lambda: ds.run(None, feed))
            out["d2a"].append({"frames": B, "ms_per_run": 1000 * dt, "frames_per_s": B / dt})
    return out


def print_networks(res, folder):
    print(f"networks alone ({folder}; onnxruntime on {res['device']}: {', '.join(res['providers'])}); "
          f"window {res['window']}, overlap {res['overlap']}")
    for r in res["temporal"]:
        print(f"  temporal model  {r['batch']:3d} windows/run  {r['ms_per_run']:8.2f} ms  "
              f"{r['window_frames_per_s']:9.0f} window frames/s  {r['clip_frames_per_s']:9.0f} clip frames/s")
    for r in res["prvipe"]:
        print(f"  Pr-VIPE       {r['frames']:5d} frames/run  {r['ms_per_run']:8.2f} ms  {r['frames_per_s']:9.0f} frames/s")
    for r in res.get("d2a", []):
        print(f"  D2A refinement {r['frames']:4d} frames/run  {r['ms_per_run']:8.2f} ms  {r['frames_per_s']:9.0f} frames/s")


# ------------------------------------------------------------------------------- long clips
def make_clip(out, seconds=600.0, size=(1920, 1080), source=DEMO, fps=None, fourcc="mp4v", log=print,
              pingpong=True, frames=None):
    """Write a clip of ``seconds`` by looping ``source``'s frames (resized to ``size``): for memory
    tests of long inputs. ``pingpong``: forward, backward, forward … so the motion stays
    continuous; else forward only (a cut at each loop; MediaPipe loses the demo's jumper for
    seconds in its backward-played stretches, so forward loops keep the subject in more frames).
    ``frames``: (start, stop) source frames to loop (default: all). The source is decoded once;
    its resized frames are kept JPEG-encoded (a few MB) for the later loops."""
    import cv2

    from engine.video.decode import iter_frames, open_video
    cap, info = open_video(source)
    cap.release()
    fps = float(fps or info.fps)
    total = int(round(seconds * fps))
    w, h = int(size[0]), int(size[1])
    wr = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not wr.isOpened():
        raise RuntimeError(f"cannot write {out} with fourcc {fourcc}")
    n, t0, stored = 0, time.perf_counter(), []

    def emit(f):
        nonlocal n
        wr.write(f)
        n += 1
        if log and n % 1800 == 0:
            log(f"  {n}/{total} frames written ({time.perf_counter() - t0:.0f} s)")
    try:
        for _, _, f in iter_frames(source, frame_range=frames):
            if n >= total:
                break
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            stored.append(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
            emit(f)
        loop = 1
        while n < total and stored:
            order = stored[::-1] if pingpong and loop % 2 == 1 else stored
            for buf in order:
                if n >= total:
                    break
                emit(cv2.imdecode(buf, cv2.IMREAD_COLOR))
            loop += 1
    finally:
        wr.release()
    return n


class ReplayDetector:
    """MediaPipe on the first ``n`` frames, then those frames' detections replayed (forward,
    backward, forward … as ``make_clip`` loops; ``pingpong=False``: cyclically). For memory runs
    on long clips made by looping a short one; see the module doc."""

    cache_key = None  # never cached

    def __init__(self, n, num_poses=4, pingpong=True):
        from engine.observe import default_detector
        self.n = int(n)
        self.pingpong = pingpong
        self._det = default_detector(num_poses)
        self._seen = []

    def detect_all(self, rgb, timestamp_s):
        k = len(self._seen)
        if k < self.n:
            people = self._det.detect_all(rgb, timestamp_s)
            self._seen.append(people)
            if len(self._seen) == self.n:
                self._det.close()
            return people
        self._seen.append(None)
        p = k % (2 * self.n) if self.pingpong else k % self.n
        return self._seen[p if p < self.n else 2 * self.n - 1 - p]

    def close(self):
        if len(self._seen) < self.n:
            self._det.close()


# ------------------------------------------------------------------------------- one clip
def _time_method(obj, name, timings, key):
    """Replace ``obj.name`` by a wrapper that adds its run time to ``timings[key]``."""
    fn = getattr(obj, name)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    setattr(obj, name, timed)


def bench_clip(video, max_side=None, frames=None, estimator="auto", device="auto", detect_first=0,
               num_poses=4, prefetch=4, log=print, refine=True, follow=True):
    """Run the decode pass and the pipeline; returns a dict of results (see ``print_clip``)."""
    from engine import pipeline
    from engine.observe import detect_people
    from engine.video.decode import open_video

    estimator = pipeline.resolve_estimator(estimator)
    follow = bool(follow) and not detect_first  # the memory run replays every-frame detection
    cap, info = open_video(video)
    cap.release()
    rng = (0, int(frames)) if frames else None
    res = {"video": str(video), "source_size": (info.width, info.height), "estimator": estimator,
           "cores_load_before": machine()}
    n_dec, t_dec, size = decode_pass(video, rng, 1, max_side)
    res.update(decode_frames=n_dec, decode_s=t_dec, size=size)
    log(f"decode alone: {n_dec} frames in {t_dec:.2f} s")

    timings, samples = {}, []
    rss0 = rss_mb()
    t0 = time.perf_counter()  # end to end from here: the temporal model's sessions count as set-up
    if estimator == "temporal":  # time the networks inside the runtime
        from engine.estimate import temporal
        t_setup = time.perf_counter()
        runner = temporal.get_runner(None, device)
        timings["setup"] = time.perf_counter() - t_setup
        for name in ("embed", "predict"):
            _time_method(runner, name, timings, "temporal_model")
        res["temporal_providers"] = list(runner.session.get_providers())
        from engine.estimate import refine as refine_stage
        res["refinement"] = ("off (--no-refine)" if not refine else
                             "on" if refine_stage.available() else "no d2a.onnx")
        if refine and refine_stage.available():   # its session is set-up too; time its network
            t_setup = time.perf_counter()
            d2a = refine_stage.get_runner(None, device)
            timings["setup"] += time.perf_counter() - t_setup
            _time_method(d2a, "predict", timings, "refinement_network")
    else:
        res["refinement"] = "baseline estimator"
    opts = pipeline.PipelineOptions(max_side=max_side, frame_range=rng, use_cache=False, estimator=estimator,
                                    device=device, num_poses=num_poses, refine=refine, follow=follow)
    res["follow"] = bool(follow)
    detector = ReplayDetector(detect_first, num_poses) if detect_first else None
    last = [0]

    stage_rss = []  # (stage that starts, RSS now, peak so far): where the memory goes

    def progress(fraction, message):
        per_frame = message.startswith(("detecting: frame ", "finding everyone: frame ",
                                        "following the subject: frame "))
        if not per_frame and not (stage_rss and stage_rss[-1][0] == message):
            stage_rss.append((message, rss_mb(), peak_rss_mb()))
        if message.startswith("detecting: frame "):
            n = int(message.split()[2].split("/")[0])
            if n - last[0] >= max(1, n_dec // 100):
                samples.append((n, rss_mb()))
                last[0] = n

    import unittest.mock as mock
    real = detect_people

    def detect_with_prefetch(*a, **k):
        k["prefetch"] = prefetch
        return real(*a, **k)

    with mock.patch.object(pipeline, "detect_people", detect_with_prefetch):
        try:
            motion = pipeline.run(str(video), opts, progress=progress, detector=detector, timings=timings)
        finally:
            if detector is not None:
                detector.close()
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        motion.save(Path(tmp) / "bench.npz")
        timings["write"] = time.perf_counter() - t1
    res["end_to_end_s"] = time.perf_counter() - t0
    if "temporal_model" in timings:
        timings["fit"] = timings.get("fit", 0.0) - timings["temporal_model"]
    res.update(timings=timings, frames=int(motion.num_frames), valid=int(motion.valid.sum()),
               rss_start_mb=rss0, rss_samples=samples, stage_rss=stage_rss, rss_end_mb=rss_mb(), peak_rss_mb=peak_rss_mb(),
               recovered=int(motion.source.get("recovered_frames", 0)), detect_first=int(detect_first),
               prefetch=prefetch, cores_load_after=machine())
    res["rss_growth_kib_per_frame"] = growth_per_frame(samples)
    if follow:
        res["crop_landmarking_alone_s"] = crop_landmarking_pass(video, motion.keypoints2d, motion.valid.astype(bool),
                                                                rng, max_side)
        res["crop_landmarking_image_mode_s"] = crop_landmarking_pass(
            video, motion.keypoints2d, motion.valid.astype(bool), rng, max_side, tracking=False)
    return res


def print_clip(res):
    t = res["timings"]
    T = res["frames"]
    cores, load = res["cores_load_before"]
    w, h = res["size"]
    print(f"{Path(res['video']).name}: {T} frames processed at {w}×{h} (source "
          f"{res['source_size'][0]}×{res['source_size'][1]}), {res['valid']} valid, "
          f"{res['recovered']} recovered in gaps; estimator {res['estimator']}")
    print(f"machine: {cores} CPU cores; load average before {load[0]:.2f}, after "
          f"{res['cores_load_after'][1][0]:.2f}; decode prefetch {res['prefetch']} frames")
    if res["detect_first"]:
        print(f"NOTE: MediaPipe ran on the first {res['detect_first']} frames only and was replayed after "
              f"(memory run): detection timings are not real")
    print(f"{'stage':32s} {'seconds':>9s} {'ms/frame':>9s} {'frames/s':>9s}")

    def row(name, sec, note=""):
        if sec is None:
            print(f"{name:32s} {'n/a':>9s} {'':>9s} {'':>9s}  {note}")
        else:
            fps = T / sec if sec > 0 else float("inf")
            print(f"{name:32s} {sec:9.2f} {1000 * sec / T:9.1f} {fps:9.1f}  {note}")

    row("decode alone", res["decode_s"], "(separate pass: the floor)")
    row("decode in the pipeline", t.get("decode", 0.0), "(producer thread, overlapped: not in the sum)"
        if res["prefetch"] else "(same thread)")
    staged = 0.0
    split = "follow_wall" in t  # the follow pass: its stages run in its own threads, its wall clock counts
    inside = ("follow_landmarks", "masks_appearance", "flow_homographies", "gap_search_beside")
    if split:
        row("follow pass, wall clock", t["follow_wall"], "(the rows marked * ran inside it, summed over "
                                                        "its threads)")
        staged += t["follow_wall"]
    for key, name in STAGES:
        if key == "refinement" and key not in t:
            row(name, None, res.get("refinement", ""))
            continue
        if key == "refinement":
            row(name, t[key], f"(its network {t.get('refinement_network', 0.0):.2f} s, the rest the σ-weighted "
                              "rotation fit and the silhouette crops)")
            staged += t[key]
            continue
        if key == "temporal_model" and key not in t:
            row(name, None, "baseline estimator (see networks alone)" if res["estimator"] == "baseline" else "")
            continue
        sec = t.get(key, 0.0)
        if split and key in inside:
            row("  * " + name, sec)
            continue
        staged += sec
        row(name, sec)
    if not res["prefetch"]:
        staged += t.get("decode", 0.0)
    row("other", max(res["end_to_end_s"] - staged, 0.0), "(body model, bookkeeping, waiting for frames)")
    e2e = res["end_to_end_s"]
    row("END TO END", e2e)
    if res.get("follow"):
        alone = res.get("crop_landmarking_alone_s", float("nan"))
        floor = res["decode_s"] + alone
        print(f"single-person landmarking alone on the subject's crops (separate pass, one landmarker): "
              f"{alone:.2f} s, {1000 * alone / T:.1f} ms/frame")
        print(f"decode alone + single-person landmarking alone = {floor:.2f} s; end-to-end / (decode + "
              f"single-person landmarking) = {e2e / floor:.2f}; end to end {T / e2e:.1f} frames/s")
        image = res.get("crop_landmarking_image_mode_s", float("nan"))
        print(f"the same crops in IMAGE mode (the person detector on each, as the follow pass runs them where "
              f"nobody is near): {image:.2f} s, {1000 * image / T:.1f} ms/frame; end-to-end / (decode + that) = "
              f"{e2e / (res['decode_s'] + image):.2f}")
    else:
        floor = res["decode_s"] + t.get("detection", 0.0)
        print(f"decode alone + detection = {floor:.2f} s; end-to-end / (decode + detection) = {e2e / floor:.2f}; "
              f"end to end {T / e2e:.1f} frames/s")
    s = res["rss_samples"]
    if s:
        print(f"resident memory: {s[0][1]:.0f} MiB at frame {s[0][0]}, {s[-1][1]:.0f} MiB at frame {s[-1][0]}, "
              f"{res['rss_end_mb']:.0f} MiB at the end; growth during detection "
              f"{res['rss_growth_kib_per_frame']:.1f} KiB/frame")
    if res.get("stage_rss"):
        print("memory at each stage's start (RSS / peak so far, MiB): " + "; ".join(
            f"{m.split(':')[0]} {r:.0f}/{p:.0f}" for m, r, p in res["stage_rss"] if r is not None))
    print(f"peak RSS: {res['peak_rss_mb']:.0f} MiB")


# ------------------------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.bench.speed",
                                 description="Per-stage benchmark of the engine against decode + detection")
    ap.add_argument("video", nargs="?", default=str(DEMO), help="clip (default: the demo clip)")
    ap.add_argument("--max-side", type=int, default=None,
                    help="processing resolution (longer side), e.g. 1280 for 720p; default: full")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--estimator", default="auto", choices=("auto", "temporal", "baseline"))
    ap.add_argument("--device", default="auto", choices=("auto", "gpu", "cpu"))
    ap.add_argument("--no-refine", action="store_true", help="temporal estimator without the D2A refinement")
    ap.add_argument("--num-poses", type=int, default=4)
    ap.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                    help="the engine's --follow (survey + crop landmarking, its default); --no-follow: "
                         "every frame detected")
    ap.add_argument("--compare", action="store_true",
                    help="run the clip twice, --no-follow and --follow, and print the speed-up")
    ap.add_argument("--prefetch", type=int, default=4, help="frames decoded ahead in a thread (0 = off)")
    ap.add_argument("--random-weights", action="store_true",
                    help="export randomly initialised temporal/Pr-VIPE models (needs torch): speed only")
    ap.add_argument("--weights", default=None, help="folder with temporal.onnx (+ prvipe.onnx)")
    ap.add_argument("--networks-only", action="store_true", help="only the networks-alone benchmark")
    ap.add_argument("--no-networks", action="store_true", help="skip the networks-alone benchmark")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all)")
    ap.add_argument("--detect-first", type=int, default=0, metavar="N",
                    help="memory run: MediaPipe on the first N frames, replayed after")
    ap.add_argument("--make-clip", default=None, metavar="OUT",
                    help="write a long clip by looping VIDEO (then exit); see --seconds, --size")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--clip-frames", default=None, metavar="A:B",
                    help="--make-clip: loop only source frames A..B-1 (e.g. 5:160, the demo's jumper in view)")
    ap.add_argument("--forward", action="store_true",
                    help="--make-clip: loop forward only (default: forward, backward, forward …)")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)

    if a.make_clip:
        w, h = (int(v) for v in a.size.lower().split("x"))
        t0 = time.perf_counter()
        frames = tuple(int(v) for v in a.clip_frames.split(":")) if a.clip_frames else None
        n = make_clip(a.make_clip, a.seconds, (w, h), a.video, pingpong=not a.forward, frames=frames)
        print(f"wrote {a.make_clip}: {n} frames at {w}×{h} in {time.perf_counter() - t0:.0f} s")
        return 0

    out = {}
    tmp = None
    if a.random_weights:
        tmp = tempfile.TemporaryDirectory(prefix="mocap-bench-weights-")
        folder = export_random_weights(tmp.name)
        os.environ["MOCAP_TEMPORAL_WEIGHTS"] = str(folder)
        print(f"random-initialised temporal model and Pr-VIPE exported to {folder} (speed only)")
    elif a.weights:
        os.environ["MOCAP_TEMPORAL_WEIGHTS"] = str(Path(a.weights).resolve())
    try:
        if not a.networks_only:
            runs = (False, True) if a.compare else (a.follow,)
            for follow in runs:
                res = bench_clip(a.video, a.max_side, a.frames, a.estimator, a.device, a.detect_first,
                                 a.num_poses, a.prefetch, log=lambda m: None, refine=not a.no_refine,
                                 follow=follow)
                print(f"--- {'--follow (default)' if follow else '--no-follow (every frame detected)'}")
                print_clip(res)
                out["clip_follow" if follow else "clip"] = res
            if a.compare:
                e, f = out["clip"]["end_to_end_s"], out["clip_follow"]["end_to_end_s"]
                print(f"--follow end to end: {e / f:.2f}× the every-frame run's speed (same run)")
        from engine.estimate import temporal
        if not a.no_networks and temporal.available():
            folder = temporal.find_weights()
            res = bench_networks(folder, a.device, threads=a.threads)
            print_networks(res, folder)
            out["networks"] = res
        elif a.networks_only:
            print("networks alone: no temporal weights (use --random-weights or --weights DIR)")
        print(f"peak RSS (whole run): {peak_rss_mb():.0f} MiB")
    finally:
        if tmp is not None:
            tmp.cleanup()
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
