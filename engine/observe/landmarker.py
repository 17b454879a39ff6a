"""MediaPipe Pose behind ``PoseDetector``: the single-person solution (mediapipe 0.10.x) and the
multi-person Tasks ``PoseLandmarker`` (0.10.x and 1.x), and the ``.task`` bundle it runs (built
from the wheel's models, or shipped beside the engine for mediapipe 1.x)."""
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import EngineError
from .types import FrameObservation, mask_size

class PoseDetector:
    """Interface: call with an RGB frame, get a FrameObservation or None (no person)."""

    cache_key = None  # a string identifying the detector and its settings enables the cache

    def __call__(self, rgb):  # pragma: no cover - interface
        raise NotImplementedError

    def detect_all(self, rgb, timestamp_s):
        """Every person in the frame (single-person detectors: at most one)."""
        ob = self(rgb)
        return [] if ob is None else [ob]

    def close(self):
        pass


def _mask_from(seg, w, h):
    if seg is None:
        return np.zeros(mask_size(w, h)[::-1], np.uint8)
    from ..video.decode import shrink
    m = shrink(np.asarray(seg, np.float32), mask_size(w, h))
    return (np.clip(m, 0, 1) * 255).astype(np.uint8)


class MediaPipePoseDetector(PoseDetector):
    """MediaPipe's pose solution in video mode (tracking between frames), segmentation on.

    Single person: MediaPipe keeps whoever it tracks and may jump to another person. Use
    ``MediaPipePoseLandmarker`` (the default) where several people can be in view.
    """

    def __init__(self, model_complexity=1, min_detection_confidence=0.5):
        try:
            import_mediapipe()
            from mediapipe.python.solutions import pose as mp_pose  # heavy import, only when used
        except ImportError as exc:  # mediapipe 1.x has the Tasks API only
            raise EngineError("MediaPipe's pose solution needs mediapipe 0.10.x; use "
                               "MediaPipePoseLandmarker (the default detector)") from exc
        from ..native_log import quiet_native_logs
        with quiet_native_logs():
            self._pose = mp_pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                      smooth_landmarks=True, enable_segmentation=True,
                                      smooth_segmentation=True,
                                      min_detection_confidence=min_detection_confidence,
                                      min_tracking_confidence=0.5)
        self._first = True
        self.cache_key = f"mediapipe-solution-c{model_complexity}-d{min_detection_confidence}"

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        if self._first:  # the first inference logs the graph's start-up lines
            from ..native_log import quiet_native_logs
            with quiet_native_logs():
                res = self._pose.process(rgb)
            self._first = False
        else:
            res = self._pose.process(rgb)
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        kp = np.array([(l.x * w, l.y * h, l.visibility) for l in res.pose_landmarks.landmark],
                      dtype=np.float32)
        world = np.array([(l.x, l.y, l.z) for l in res.pose_world_landmarks.landmark], dtype=np.float32)
        return FrameObservation(kp, world, _mask_from(res.segmentation_mask, w, h))

    def close(self):
        self._pose.close()


_BUNDLE = None
_BUNDLE_FILE = None
_IMPORTED = threading.Event()


def import_mediapipe():
    """``mediapipe`` (with its Tasks API), imported the first time in a thread of its own.

    Why: mediapipe keeps an exception from its own import (``audio_record.sd_error``, the optional
    ``sounddevice`` that is not installed) with its traceback, and a traceback's frames hold their
    callers' frames: imported from inside a pass, it would keep that pass's locals for the life of
    the process — the survey's decoded frames (``engine.video.store``), 1.2 GB on the demo, in a
    Blender session that imports clip after clip. From a fresh thread the callers are that
    thread's alone. An import error is raised here, as the import itself would."""
    if not _IMPORTED.is_set():
        box = {}

        def work():
            try:
                import mediapipe  # noqa: F401
                from mediapipe.tasks.python import vision  # noqa: F401
            except BaseException as exc:  # handed to the caller
                box["error"] = exc.with_traceback(None)

        th = threading.Thread(target=work, name="mediapipe-import", daemon=True)
        th.start()
        th.join()
        if "error" in box:
            raise box["error"]
        _IMPORTED.set()
    import mediapipe
    return mediapipe


_BUNDLE_LOCK = threading.Lock()  # the survey starts two landmarkers side by side: one build
BUNDLE_BUILDER_VERSION = 1       # bump when build_pose_landmarker_bundle changes its output
POSE_BUNDLE_NAME = "pose_landmarker_full.task"
# Where the extension zips for mediapipe 1.x (no models in its wheel) carry the bundle build_extension.py
# makes from mediapipe 0.10.21's Apache-2.0 models (their licence file beside it).
SHIPPED_POSE_BUNDLE = Path(__file__).resolve().parents[1] / "data" / "mediapipe" / POSE_BUNDLE_NAME
WHEEL_POSE_MODELS = ("modules/pose_detection/pose_detection.tflite",  # inside the mediapipe package
                     "modules/pose_landmark/pose_landmark_full.tflite")


def build_pose_landmarker_bundle(detector_tflite, landmarks_tflite):
    """The Tasks ``.task`` bundle (bytes) from the pose solution's two tflite models.

    Adds the input normalisation metadata the Tasks API requires: the detector takes RGB in
    [−1, 1] (mean 127.5, std 127.5), the landmark model RGB in [0, 1] (mean 0, std 255) — the
    ranges mediapipe 0.10.x's own solution graphs feed them. Needs mediapipe 0.10.x installed:
    1.x's metadata writer lacks its native part (``build_extension.py`` makes the bundle 1.x uses).
    """
    import io

    import_mediapipe()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer as mw
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils as mab

    w = mw.MetadataWriter.create(bytearray(detector_tflite)).add_general_info("pose_detector")
    det_md, _ = w.add_image_input([127.5], [127.5]).add_feature_output().add_feature_output().populate()
    w = mw.MetadataWriter.create(bytearray(landmarks_tflite)).add_general_info("pose_landmarks_detector")
    w = w.add_image_input([0.0], [255.0])
    for _ in range(5):
        w = w.add_feature_output()
    lmk_md, _ = w.populate()
    buf = io.BytesIO()
    mab.create_model_asset_bundle({"pose_detector.tflite": bytes(det_md),
                                   "pose_landmarks_detector.tflite": bytes(lmk_md)}, buf)
    return buf.getvalue()


def find_pose_bundle():
    """Path of a ready ``.task`` bundle (``MOCAP_POSE_BUNDLE``, else the one shipped beside the
    engine), or None when the installed mediapipe's own models are to be used."""
    import os
    env = os.environ.get("MOCAP_POSE_BUNDLE")
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"MOCAP_POSE_BUNDLE={env}: no such file")
        return Path(env)
    return SHIPPED_POSE_BUNDLE if SHIPPED_POSE_BUNDLE.is_file() else None


def _load_bundle():
    """Fill ``_BUNDLE`` (bytes) and ``_BUNDLE_FILE`` (where those bytes lie on disk, or None);
    the caller holds ``_BUNDLE_LOCK``."""
    global _BUNDLE, _BUNDLE_FILE
    if _BUNDLE is None:
        path = find_pose_bundle()
        if path is not None:
            _BUNDLE, _BUNDLE_FILE = path.read_bytes(), path
        else:
            _BUNDLE, _BUNDLE_FILE = built_pose_bundle()


def pose_landmarker_bundle():
    """The Tasks ``.task`` bundle (bytes): a shipped one (``find_pose_bundle``), else built from
    the pose models inside mediapipe 0.10.x's wheel (``built_pose_bundle``); mediapipe 1.x ships
    none, so there the bundle must come with the extension (``build_extension.py``). Made once
    per process, however many threads ask at the same time."""
    with _BUNDLE_LOCK:
        _load_bundle()
        return _BUNDLE


def pose_bundle_options():
    """MediaPipe ``BaseOptions`` for the bundle: its file when it has one (a landmarker made from
    the file takes about a third less CPU to start than one made from the bytes, and the engine
    starts several per clip: docs/performance.md), else the bytes."""
    import_mediapipe()
    from mediapipe.tasks.python import BaseOptions
    with _BUNDLE_LOCK:
        _load_bundle()
        if _BUNDLE_FILE is not None and Path(_BUNDLE_FILE).is_file():
            return BaseOptions(model_asset_path=str(_BUNDLE_FILE))
        return BaseOptions(model_asset_buffer=_BUNDLE)


def built_pose_bundle():
    """(bytes, file or None): the bundle built from mediapipe 0.10.x's own pose models, kept in
    the engine's cache folder (``engine.video.cache.save_file``) under the models' content hash:
    building it takes a few tenths of a second of CPU at every start, reading it back milliseconds. A cached file that
    is not a bundle of the two models, or a cache folder that cannot be written, only means
    building it again."""
    import hashlib
    import io
    import zipfile

    from ..video.cache import cache_dir, save_file
    mp = import_mediapipe()
    pkg = Path(mp.__file__).parent
    models = [pkg / m for m in WHEEL_POSE_MODELS]
    if not all(m.is_file() for m in models):
        raise EngineError(
            f"mediapipe {getattr(mp, '__version__', '?')} ships no pose models and no "
            f"{POSE_BUNDLE_NAME} was found at {SHIPPED_POSE_BUNDLE}: install the extension "
            "zip built for your Blender, or set MOCAP_POSE_BUNDLE (python build_extension.py --pose-bundle FILE)")
    data = [m.read_bytes() for m in models]
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)
                            + bytes([BUNDLE_BUILDER_VERSION])).hexdigest()[:16]
    name = f"pose_landmarker_{digest}.task"
    try:
        cached = (cache_dir() / name).read_bytes()
        with zipfile.ZipFile(io.BytesIO(cached)) as z:
            if sorted(z.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"] \
                    and z.testzip() is None:
                return cached, cache_dir() / name
    except (OSError, zipfile.BadZipFile):
        pass
    bundle = build_pose_landmarker_bundle(*data)
    return bundle, save_file(name, bundle)


class QuietStart:
    """Runs a landmarker's calls with MediaPipe's native start-up lines kept off the terminal
    until they stop: the graph logs them on its first inference, and (mediapipe 1.x) once more on
    the first call that finds or tracks a person, so calls are quiet until the one after the
    first with a person (a first call, or window, with nobody in it must not end the quiet)."""

    def __init__(self):
        self.calls = 0   # calls since the first one with a person, that one included

    def __call__(self, detect, *args):
        if self.calls >= 2:
            return detect(*args)
        from ..native_log import quiet_native_logs
        with quiet_native_logs():
            res = detect(*args)
        if self.calls or res.pose_landmarks:
            self.calls += 1
        return res


def mediapipe_version_tag():
    """'' for mediapipe 0.10.21 (the cache keys it always had), else '-mp<version>': another
    version detects slightly differently, so its detections are cached apart. Read from the
    installed package's metadata: importing mediapipe takes ~0.4 s, which a run whose detections
    all come from the cache would spend for this string alone."""
    from importlib import metadata
    try:
        v = metadata.version("mediapipe")
    except metadata.PackageNotFoundError:  # not installed as a distribution: ask the module
        v = getattr(import_mediapipe(), "__version__", "?")
    return "" if v == "0.10.21" else f"-mp{v}"


class MediaPipePoseLandmarker(PoseDetector):
    """Up to ``num_poses`` people per frame: MediaPipe Tasks PoseLandmarker in video mode.

    ``tracking=False``: IMAGE mode instead, every frame on its own (the person detector runs on
    each, no state between frames). In video mode with one pose MediaPipe tracks the pose
    region from the last frame's landmarks and smooths the landmarks in time (its graph turns
    smoothing on for a single pose only); both make crop landmarks lag and stick on real video
    (docs/benchmarks.md, R1), so the follow pass uses IMAGE mode, and the tracker only while
    another person is near the subject (``follow.TRACK_NEAR``)."""

    def __init__(self, num_poses=4, min_detection_confidence=0.5, min_presence_confidence=0.5,
                 min_tracking_confidence=0.5, tracking=True):
        # 0.5 as MediaPipe's default. On the backlit demo clip the detector's score hovers near it
        # and flips with the image scale; 0.3 finds people sooner but adds many spurious wide
        # poses (arms spread over the background) that fragment the subject's track.
        import_mediapipe()
        from mediapipe.tasks.python import vision
        self.stateless = not tracking
        opts = vision.PoseLandmarkerOptions(
            base_options=pose_bundle_options(),
            running_mode=vision.RunningMode.VIDEO if tracking else vision.RunningMode.IMAGE,
            num_poses=int(num_poses),
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence, output_segmentation_masks=True)
        from ..native_log import quiet_native_logs
        with quiet_native_logs():
            self._lm = vision.PoseLandmarker.create_from_options(opts)
        self._quiet = QuietStart()
        self._last_ms = -1
        self.cache_key = self.cache_name(num_poses, min_detection_confidence, min_presence_confidence,
                                         min_tracking_confidence) + ("" if tracking else "-image")

    @staticmethod
    def cache_name(num_poses=4, min_detection_confidence=0.5, min_presence_confidence=0.5,
                   min_tracking_confidence=0.5):
        """The detection cache's name for these settings (without building the landmarker)."""
        return (f"mediapipe-tasks-full-n{num_poses}-d{min_detection_confidence}"
                f"-p{min_presence_confidence}-t{min_tracking_confidence}{mediapipe_version_tag()}")

    def detect_all(self, rgb, timestamp_s):
        import mediapipe as mp
        h, w = rgb.shape[:2]
        ms = max(int(round(1000.0 * timestamp_s)), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.stateless:
            res = self._quiet(self._lm.detect, image)
        else:
            res = self._quiet(self._lm.detect_for_video, image, ms)
        segs = res.segmentation_masks or []
        out = []
        for i, (lms, wl) in enumerate(zip(res.pose_landmarks, res.pose_world_landmarks)):
            kp = np.array([(l.x * w, l.y * h, l.visibility) for l in lms], np.float32)
            world = np.array([(l.x, l.y, l.z) for l in wl], np.float32)
            pres = np.array([l.presence for l in lms], np.float32)
            seg = segs[i].numpy_view() if i < len(segs) else None
            out.append(FrameObservation(kp, world, _mask_from(seg, w, h),
                                        score=float(np.nanmean(pres))))
        return out

    def __call__(self, rgb):
        obs = self.detect_all(rgb, (self._last_ms + 34) / 1000.0)
        return max(obs, key=lambda o: np.nansum(o.keypoints[:, 2])) if obs else None

    def close(self):
        self._lm.close()


def default_detector(num_poses=4):
    return MediaPipePoseLandmarker(num_poses=num_poses)

