"""One clip through the engine: decode → detect people → track/select subject → estimate →
clean (smooth, ground, contacts, foot lock) → Motion.

``run`` is the single entry point shared by the CLI, the Blender add-on and batch jobs.
Progress goes to ``progress(fraction, message)``; a callback returning False cancels the run
(``Cancelled`` is raised and nothing is written).
"""
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .threads import on_one_library_thread
from .body.model import load_body_model
from .errors import Cancelled, EngineError
from .observe import Detections, default_detector, detect_people
from .observe.track import track_and_select, track_people
from .video.decode import iter_frames, open_video, processing_scale

ESTIMATORS = ("auto", "temporal", "baseline")  # temporal: needs trained weights (engine.estimate.temporal)


def resolve_estimator(name):
    """``auto`` → ``temporal`` when its weights are found (shipped or $MOCAP_TEMPORAL_WEIGHTS),
    else ``baseline``; other names unchanged (checked)."""
    if name not in ESTIMATORS:
        raise EngineError(f"unknown estimator '{name}' (choose from {', '.join(ESTIMATORS)})")
    if name == "auto":
        from .estimate import temporal
        return "temporal" if temporal.available() else "baseline"
    return name


@dataclass
class PipelineOptions:
    device: str = "auto"              # auto | gpu | cpu (onnxruntime execution provider)
    smoothing: str = "light"          # none | light | animation | analysis (presets/smoothing)
    foot_lock: bool = True            # pin planted heels (engine.clean.footlock)
    body_model_path: str | None = None  # a user's SMPL .pkl/.npz; None = the open body
    frame_range: tuple | None = None  # (first, last_exclusive) frame indices
    focal: float | str | None = None  # focal length in pixels; None = default_intrinsics' guess; "auto" = engine.estimate.focal
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
    prior_blend: float = 0.5          # temporal estimator: its rotations moved this far toward its IK prior
    #                                   (= engine.estimate.temporal.PRIOR_BLEND); 0 = the network alone
    image_fit: bool = True            # final fit: landmarks reprojected onto the detections (engine.align.image_fit)
    follow: bool = True               # survey + follow the subject on a crop (engine.observe.follow); False = everyone, every frame

    def check(self):
        """Raise one clear EngineError for an option the engine cannot honour (before any work).

        Callers other than the CLI (the add-on, the batch, scripts) build options directly, so
        the ranges are checked here as well as in the CLI's argparse types."""
        import math
        from numbers import Integral, Real
        from .clean.smooth import PRESETS
        if self.device not in ("auto", "gpu", "cpu"):
            raise EngineError(f"unknown device '{self.device}' (choose from auto, gpu, cpu)")
        if self.smoothing not in PRESETS:
            raise EngineError(f"unknown smoothing preset '{self.smoothing}' (choose from {', '.join(PRESETS)})")
        if self.estimator not in ESTIMATORS:
            raise EngineError(f"unknown estimator '{self.estimator}' (choose from {', '.join(ESTIMATORS)})")
        if self.focal is not None and self.focal != "auto" and not (
                isinstance(self.focal, Real) and math.isfinite(self.focal) and self.focal > 0):
            raise EngineError(f"focal length must be a number of pixels > 0 or 'auto', got {self.focal}")
        for name, lo in (("stride", 1), ("num_poses", 1), ("subject_frame", 0)):
            v = getattr(self, name)
            if not isinstance(v, Integral) or isinstance(v, bool) or v < lo:
                raise EngineError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not isinstance(self.prior_blend, Real) or not 0 <= self.prior_blend <= 1:
            raise EngineError(f"prior_blend must be a number from 0 to 1, got {self.prior_blend!r}")
        if self.max_side is not None and (not isinstance(self.max_side, Integral) or self.max_side < 16):
            raise EngineError(f"max_side must be at least 16 pixels, got {self.max_side!r}")
        if self.frame_range is not None:
            first, last = self.frame_range
            first = 0 if first is None else first
            if not isinstance(first, Integral) or first < 0 or (last is not None and (not isinstance(last, Integral)
                                                                                   or last <= first)):
                raise EngineError(f"frame range must be FIRST >= 0 and LAST > FIRST, got {first}:{last}")
        from .observe.track import check_subject_rule
        check_subject_rule(self.subject, self.subject_point)
        return self


@contextmanager
def _stage(timings, key):
    """Add the block's wall time to ``timings[key]`` (when timings is a dict; training.bench.speed)."""
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


def frame_plan(info, options):
    """(first, last_exclusive or None, stride, expected frame count or None) of a clip's VideoInfo.

    ``expected`` is what the container declares for the range; the decoder may deliver fewer
    (a truncated file), which ``run`` reports as a shortfall."""
    first, last = options.frame_range or (0, None)
    first = int(first or 0)
    last = info.frame_count or None if last is None else int(last)
    if info.frame_count and first >= info.frame_count:
        raise EngineError(f"frame range starts at {first} but the clip has {info.frame_count} frames")
    stride = int(options.stride)
    processing_scale(info.width, info.height, options.max_side)  # validates max_side
    end = min(last, info.frame_count) if (last and info.frame_count) else last
    expected = -(-(end - first) // stride) if end else None
    return first, last, stride, expected


SHORTFALL_FRAMES = 3  # fewer decoded frames than declared by more than this is reported


def decode_shortfall(info, expected, decoded, stride=1):
    """A warning (str) when the decoder delivered clearly fewer frames than the container
    declares for the range, else None. A few frames' difference is normal (container counts
    are estimates for some formats)."""
    if not expected or expected - decoded <= SHORTFALL_FRAMES:
        return None
    fps = info.fps / max(int(stride), 1)
    return (f"{Path(info.path).name}: decoded {decoded} of the {expected} frames the container declares "
            f"({decoded / fps:.1f} s of {expected / fps:.1f} s); the file may be truncated or damaged — "
            "the Motion covers only the decoded frames")


@on_one_library_thread
def detect(video_path, options=None, progress=None, detector=None, timings=None):
    """Every person in the clip (cached) → (Detections, VideoInfo).

    ``progress(n, expected)`` after each frame. Cached under the clip's content hash and the
    options that change detections, when the detector names itself (``cache_key``).
    ``timings``: a dict that collects seconds per stage (see ``observe.detect_people``).
    """
    from .video import cache

    options = (options or PipelineOptions()).check()
    cap, info = open_video(video_path)
    cap.release()
    first, last, stride, expected = frame_plan(info, options)
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


@on_one_library_thread
def survey(video_path, options=None):
    """The survey pass of ``observe_followed`` (cached) → (Detections, track ids): the people
    ``--list-people`` shows and the subject rules choose from."""
    from .observe.follow import survey_video

    options = (options or PipelineOptions()).check()
    cap, info = open_video(video_path)
    cap.release()
    first, last, stride, _ = frame_plan(info, options)
    if last is None:
        dets, _ = detect(video_path, options)
        return dets, track_people(dets)
    dets, tid, _ = survey_video(video_path, (first, last), stride, options.max_side, options.num_poses,
                                use_cache=options.use_cache)
    return dets, tid


def observe_followed(video_path, options, progress=None, timings=None, store=None):
    """The subject's Observations by the survey + follow passes (``engine.observe.follow``) →
    (Observations, VideoInfo, the gaps searched during the follow pass for ``recover_gaps``);
    ``progress(fraction, message)``. One clear error when nothing could be decoded or nobody
    was found; (None, info, None) for a clip of undeclared length. ``store``: an
    ``engine.video.store.FrameStore`` to keep the decoded frames in."""
    from .observe.follow import observe_video

    options = (options or PipelineOptions()).check()
    cap, info = open_video(video_path)
    cap.release()
    first, last, stride, expected = frame_plan(info, options)
    if last is None:  # the container declares no length: survey frames cannot be planned
        return None, info, None
    name = Path(video_path).name
    obs, survey, _, stats = observe_video(
        video_path, (first, last), stride, options.max_side, options.subject, options.subject_point,
        options.subject_frame, options.num_poses, options.use_cache, progress, timings, store=store,
        gap_search_s=options.recover_gaps if stride == 1 else 0.0)
    if survey.num_frames == 0:
        raise EngineError(f"{name}: no frames could be decoded")
    if obs is None:
        raise EngineError(f"{name}: no person found in any of {survey.num_frames} surveyed frames")
    return obs, info, stats.get("searched_gaps")


def choose_focal(obs, focal):
    """(focal for the estimators: px or None = the default, dict for the Motion's source) from the
    option: a number is used as given, None is the default (the longer image side), "auto" the
    per-clip estimate of ``engine.estimate.focal`` (which falls back to the default where perspective says
    too little)."""
    default = float(max(obs.frame_size))
    if focal == "auto":
        from .estimate.focal import estimate_focal
        est = estimate_focal(obs)
        spread = float(est.spread)
        info = {"px": round(float(est.focal_px), 1), "method": est.method,
                "spread": round(spread, 3) if math.isfinite(spread) else None, "reason": est.reason}
        return (None if est.method == "default" else float(est.focal_px)), info
    if focal is None:
        return None, {"px": default, "method": "default"}
    return float(focal), {"px": float(focal), "method": "given"}


@on_one_library_thread
def run(video_path, options=None, progress=None, detector=None, timings=None):
    """Estimate the motion of the subject in ``video_path``; returns a Motion (not yet saved).

    ``timings``: a dict that collects seconds per stage (``python -m training.bench.speed``)."""
    options = (options or PipelineOptions()).check()
    estimator = resolve_estimator(options.estimator)
    if estimator == "temporal":
        from .estimate import temporal
        temporal.find_weights()  # no trained weights: a clear error before any detection work
    report = _reporter(progress)
    body = load_body_model(options.body_model_path)
    report(0.0, "detecting people")

    def on_frame(n, expected):
        report(0.9 * n / expected if expected else 0.0,
               f"detecting: frame {n}" + (f"/{expected}" if expected else ""))

    name = Path(video_path).name
    obs = searched = None
    store = None  # the frames decoded once, for the follow pass and gap recovery (engine.video.store)
    if options.follow and detector is None:
        from .video.store import FrameStore
        store = FrameStore()
        obs, info, searched = observe_followed(video_path, options, lambda f, m: report(0.9 * f, m), timings,
                                               store)
    if obs is not None:
        dets_frames = obs.num_frames
    else:
        dets, info = detect(video_path, options, on_frame, detector, timings)
        if dets.num_frames == 0:
            raise EngineError(f"{name}: no frames could be decoded")
        report(0.9, "tracking the subject")
        with _stage(timings, "tracking"):
            obs = track_and_select(dets, options.subject, options.subject_point, options.subject_frame)
        dets_frames = dets.num_frames
        del dets  # every person's masks: the subject's own are in obs
    expected = frame_plan(info, options)[-1]
    warnings = [w for w in [decode_shortfall(info, expected, dets_frames, options.stride)] if w]
    if not obs.valid.any():
        raise EngineError(f"{name}: no person found in any of {obs.num_frames} frames")
    recovered = 0
    if options.recover_gaps and int(options.stride or 1) == 1:
        from .observe.redetect import recover_gaps_cached
        report(0.91, "re-detecting the subject in short gaps")
        with _stage(timings, "gap_recovery"):
            recovered = recover_gaps_cached(video_path, obs, max_gap_s=options.recover_gaps,
                                            use_cache=options.use_cache, store=store, searched=searched)
    del store  # the frames are not needed past here
    from .observe.lr_swaps import fix_left_right_swaps
    relabelled = fix_left_right_swaps(obs)
    focal, focal_info = choose_focal(obs, options.focal)
    report(0.92, "fitting the body")
    t_fit = time.perf_counter()
    if estimator == "temporal":
        fields = temporal.fit(obs, body, focal=focal, device=options.device, prior_blend=options.prior_blend)
    else:
        from .estimate import baseline
        fields = baseline.fit(obs, body, focal=focal)
    _lap(timings, "fit", t_fit)
    if estimator == "temporal" and options.refine:
        from .estimate import refine
        if refine.available():
            report(0.94, "refining each frame")
            with _stage(timings, "refinement"):
                fields = refine.refine(obs, body, fields, device=options.device)
            estimator = "temporal+d2a"
    report(0.96, "cleaning the motion")
    from .estimate.motion_fields import to_motion
    first = int(obs.frame_index[0])
    motion = to_motion(fields, obs, body.name, estimator=estimator, engine_version=__version__,
                       source={"video": str(Path(video_path).resolve()),
                               "frame_range": [first, int(obs.frame_index[-1]) + 1],
                               "stride": int(options.stride or 1),
                               "frame_index": [int(i) for i in obs.frame_index],
                               "subject": {"rule": "point" if options.subject_point is not None and options.subject
                                           in (None, "largest", "point") else str(options.subject),
                                           "track_id": int(obs.track_id[obs.valid][0]),
                                           "point": None if options.subject_point is None else
                                           [float(v) for v in options.subject_point],
                                           "frame": int(options.subject_frame)},
                               "rotation": int(info.rotation),
                               "timestamps_s": [round(float(t), 6) for t in obs.timestamps],
                               "recovered_frames": int(recovered), "left_right_relabelled": relabelled,
                               "smoothing": options.smoothing, "foot_lock": bool(options.foot_lock),
                               "prior_blend": float(options.prior_blend) if estimator.startswith("temporal") else None,
                               "declared_frames": expected, "decoded_frames": int(dets_frames),
                               "focal": focal_info, "warnings": warnings})
    from .clean import clean_motion
    with _stage(timings, "smoothing"):
        motion = clean_motion(motion, body.rest_joints(motion.betas), options.smoothing, options.foot_lock)
    from .align import reprojection
    if options.image_fit:
        from .align.image_fit import align_motion
        report(0.98, "aligning the body with the image")
        before = reprojection.summary(reprojection.motion_reprojection(motion, body))
        with _stage(timings, "image_fit"):
            motion = align_motion(motion, body, smoothing=options.smoothing)
        motion.source["reprojection_before_fit"] = before
    motion.reprojection = reprojection.motion_reprojection(motion, body).astype("float32")
    motion.source["reprojection"] = reprojection.summary(motion.reprojection)
    motion.source["image_fit"] = bool(options.image_fit)
    report(1.0, "done")
    return motion
