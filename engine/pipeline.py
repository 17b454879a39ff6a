"""One clip through the engine: decode → detect people → track/select subject → estimate →
clean (smooth, ground, contacts, foot lock) → Motion.

``run`` is the single entry point shared by the CLI, the Blender add-on and batch jobs.
Progress goes to ``progress(fraction, message)``; a callback returning False cancels the run
(``Cancelled`` is raised and nothing is written).
"""
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .body.model import load_body_model
from .errors import Cancelled, EngineError
from .motion import Motion
from .observe import Detections, default_detector, detect_people
from .track import track_and_select
from .video import iter_frames, open_video, processing_scale

ESTIMATORS = ("auto", "temporal", "baseline")  # temporal: needs trained weights (engine.temporal)


def resolve_estimator(name):
    """``auto`` → ``temporal`` when its weights are found (shipped or $MOCAP_TEMPORAL_WEIGHTS),
    else ``baseline``; other names unchanged (checked)."""
    if name not in ESTIMATORS:
        raise EngineError(f"unknown estimator '{name}' (choose from {', '.join(ESTIMATORS)})")
    if name == "auto":
        from . import temporal
        return "temporal" if temporal.available() else "baseline"
    return name


@dataclass
class PipelineOptions:
    device: str = "auto"              # auto | gpu | cpu (onnxruntime execution provider)
    smoothing: str = "light"          # none | light | animation | analysis (presets/smoothing)
    foot_lock: bool = True            # pin planted heels (engine.footlock)
    body_model_path: str | None = None  # a user's SMPL .pkl/.npz; None = the open body
    frame_range: tuple | None = None  # (first, last_exclusive) frame indices
    focal: float | None = None        # focal length in pixels; None = default_intrinsics' guess
    estimator: str = "auto"           # auto (temporal when its weights are found) | temporal | baseline
    subject: str = "largest"          # largest | central | point | a track id ("track:N" or N)
    subject_point: tuple | None = None  # (x, y) full-resolution pixels on subject_frame → "point"
    subject_frame: int = 0            # clip frame number the point refers to
    stride: int = 1                   # process every n-th frame
    max_side: int | None = None       # processing resolution: longer side in pixels (None = full)
    num_poses: int = 4                # people detected per frame (the subject is chosen among them)
    use_cache: bool = True            # reuse detections of the same clip + options ($MOCAP_CACHE_DIR)
    recover_gaps: float = 1.0         # re-detect the subject on rotated crops in gaps up to this (s); 0 = off
    refine: bool = True               # temporal estimator: apply the D2A refinement when d2a.onnx is present


@contextmanager
def _stage(timings, key):
    """Add the block's wall time to ``timings[key]`` (when timings is a dict; engine.bench)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _lap(timings, key, t0):
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _reporter(progress):
    def report(fraction, message):
        if progress is not None and progress(float(min(max(fraction, 0.0), 1.0)), message) is False:
            raise Cancelled("cancelled")
    return report


def detect(video_path, options=None, progress=None, detector=None, timings=None):
    """Every person in the clip (cached) → (Detections, VideoInfo).

    ``progress(n, expected)`` after each frame. Cached under the clip's content hash and the
    options that change detections, when the detector names itself (``cache_key``).
    ``timings``: a dict that collects seconds per stage (see ``observe.detect_people``).
    """
    from . import cache

    options = options or PipelineOptions()
    cap, info = open_video(video_path)
    cap.release()
    first, last = options.frame_range or (0, None)
    first = int(first or 0)
    last = info.frame_count or None if last is None else int(last)
    if first < 0 or (last is not None and last <= first):
        raise EngineError(f"empty frame range {first}–{last}")
    if info.frame_count and first >= info.frame_count:
        raise EngineError(f"frame range starts at {first} but the clip has {info.frame_count} frames")
    stride = int(options.stride or 1)
    if stride < 1:
        raise EngineError(f"stride must be ≥ 1 (got {options.stride})")
    processing_scale(info.width, info.height, options.max_side)  # validates max_side
    expected = -(-(last - first) // stride) if last else None
    own = detector is None
    if own:
        with _stage(timings, "setup"):
            detector = default_detector(options.num_poses)
    name = getattr(detector, "cache_key", None)
    key = None
    if options.use_cache and name:
        key = cache.cache_key(video_path, {"detector": name, "first": first, "last": last,
                                           "stride": stride, "max_side": options.max_side})
        hit = cache.load(key)
        if hit is not None:
            if own:
                detector.close()
            hit["frame_size"] = tuple(int(v) for v in hit["frame_size"])
            hit["fps"] = float(hit["fps"])
            if progress is not None:
                progress(len(hit["frame_index"]), len(hit["frame_index"]))
            return Detections(**hit), info
    try:
        dets = detect_people(iter_frames(video_path, (first, last), stride, options.max_side),
                             (info.width, info.height), info.fps / stride, detector=detector,
                             progress=None if progress is None else (lambda n: progress(n, expected)),
                             timings=timings)
    finally:
        if own:
            detector.close()
    if key is not None and dets.num_frames:
        cache.save(key, dets.arrays())
    return dets, info


def run(video_path, options=None, progress=None, detector=None, timings=None):
    """Estimate the motion of the subject in ``video_path``; returns a Motion (not yet saved).

    ``timings``: a dict that collects seconds per stage (``python -m engine.bench``)."""
    options = options or PipelineOptions()
    estimator = resolve_estimator(options.estimator)
    if estimator == "temporal":
        from . import temporal
        temporal.find_weights()  # no trained weights: a clear error before any detection work
    report = _reporter(progress)
    body = load_body_model(options.body_model_path)
    report(0.0, "detecting people")

    def on_frame(n, expected):
        report(0.9 * n / expected if expected else 0.0,
               f"detecting: frame {n}" + (f"/{expected}" if expected else ""))

    dets, info = detect(video_path, options, on_frame, detector, timings)
    name = Path(video_path).name
    if dets.num_frames == 0:
        raise EngineError(f"{name}: no frames could be decoded")
    report(0.9, "tracking the subject")
    with _stage(timings, "tracking"):
        obs = track_and_select(dets, options.subject, options.subject_point, options.subject_frame)
    del dets  # every person's masks: the subject's own are in obs
    if not obs.valid.any():
        raise EngineError(f"{name}: no person found in any of {obs.num_frames} frames")
    recovered = 0
    if options.recover_gaps and int(options.stride or 1) == 1:
        from .recover import recover_gaps
        report(0.91, "re-detecting the subject in short gaps")
        with _stage(timings, "gap_recovery"):
            recovered = recover_gaps(video_path, obs, max_gap_s=options.recover_gaps)
    report(0.92, "fitting the body")
    t_fit = time.perf_counter()
    pred = {}
    if estimator == "temporal":
        fields = temporal.fit(obs, body, focal=options.focal, device=options.device, prediction_out=pred)
    else:
        from . import baseline
        fields = baseline.fit(obs, body, focal=options.focal)
    _lap(timings, "fit", t_fit)
    if estimator == "temporal" and options.refine:
        from . import refine
        if refine.available():
            report(0.94, "refining each frame")
            with _stage(timings, "refinement"):
                fields = refine.refine(obs, body, fields, device=options.device, prediction=pred)
            estimator = "temporal+d2a"
    report(0.96, "cleaning the motion")
    first = int(obs.frame_index[0])
    motion = Motion(fps=obs.fps, keypoints2d=obs.keypoints,
                  frame_size=list(obs.frame_size),
                  body_model=body.name, estimator=estimator, engine_version=__version__,
                  source={"video": str(Path(video_path).resolve()),
                          "frame_range": [first, int(obs.frame_index[-1]) + 1],
                          "stride": int(options.stride or 1),
                          "frame_index": [int(i) for i in obs.frame_index],
                          "subject": {"rule": "point" if options.subject_point is not None and options.subject
                                      in (None, "largest", "point") else str(options.subject), "track_id": int(obs.track_id[obs.valid][0]),
                                      "point": None if options.subject_point is None else
                                      [float(v) for v in options.subject_point],
                                      "frame": int(options.subject_frame)},
                          "rotation": int(info.rotation),
                          "timestamps_s": [round(float(t), 6) for t in obs.timestamps],
                          "recovered_frames": int(recovered), "smoothing": options.smoothing, "foot_lock": bool(options.foot_lock)},
                  **fields).astype_file()
    from .clean import clean_motion
    with _stage(timings, "smoothing"):
        motion = clean_motion(motion, body.rest_joints(motion.betas), options.smoothing, options.foot_lock)
    report(1.0, "done")
    return motion
