"""Per-frame observations from MediaPipe Pose: 0.10.21 (its models ship inside the wheel) or 1.x
(Tasks API only, no models: the extension zips for Blender 5.1+ ship the ``.task`` bundle).

Each person in a frame gives 33 image keypoints (pixels + visibility), 33 metric "world"
landmarks (MediaPipe's frame: origin between the hips, x right, y down, z away from the camera —
the pseudo-depth prior), a person segmentation mask (downsampled) and a bounding box.

Two stages: ``detect_people`` runs a detector over streamed frames and keeps *every* person
(plus the background homographies of ``camera_motion``); ``track.track_and_select`` links them
over time and picks the subject; ``observe_frames`` does both and returns the subject's
``Observations``, frames where the subject is lost marked invalid (never another person).

``detect_people`` streams: a producer thread decodes (and colour-converts) a few frames ahead
while the detector works on the current one, and per-detection arrays are gathered in
fixed-size chunks — memory grows by the detections' own size (~15 KB per person per frame,
mostly the 160-pixel mask), never by whole frames.

Detectors sit behind ``PoseDetector`` so others (e.g. an ONNX ViTPose) can plug in: a
single-person detector implements ``__call__(rgb) -> FrameObservation | None``; a multi-person
one also implements ``detect_all(rgb, timestamp_s) -> list[FrameObservation]``.

Why the Tasks ``PoseLandmarker`` for several people: it runs the same two networks as the pose
solution (``pose_detection`` + ``pose_landmark_full``, from the wheel) but keeps up to
``num_poses`` people, re-using each person's landmarks as the next frame's region of interest
and running the person detector only when fewer than ``num_poses`` are tracked. On 2 CPU cores
that is ~45 ms/frame with one person and ~70 ms with two at 1768×994 — one landmark pass per
person — whereas the single-person solution on crops would need a separate multi-person
detector (the solution only returns its best detection) and one graph per crop. The ``.task``
bundle is built in memory from the wheel's models with MediaPipe's own metadata writer (the
wheel's models lack the input normalisation metadata the Tasks API requires); nothing is
downloaded.
"""
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import EngineError

NUM_LANDMARKS = 33
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
LM = {n: i for i, n in enumerate(LANDMARK_NAMES)}
MASK_MAX_SIDE = 160  # masks are kept downsampled: enough for silhouettes, small in memory
APPEARANCE_BINS = (8, 6)  # hue × saturation histogram of the person's pixels


@dataclass
class FrameObservation:
    keypoints: np.ndarray  # (33,3) x_px, y_px, visibility
    world: np.ndarray      # (33,3) metres, MediaPipe world frame
    mask: np.ndarray       # (h,w) uint8 0..255, downsampled
    bbox: np.ndarray | None = None  # (4,) x0, y0, x1, y1 px; None = from the keypoints
    score: float = float("nan")     # detector's confidence when it has one


@dataclass
class Observations:
    """Observations of one subject over T frames (invalid frames hold NaN / zeros)."""
    keypoints: np.ndarray   # (T,33,3) full-resolution upright pixels + visibility
    world: np.ndarray       # (T,33,3)
    masks: np.ndarray       # (T,h,w) uint8
    valid: np.ndarray       # (T,) bool
    timestamps: np.ndarray  # (T,) seconds (container's timestamps: variable frame rate kept)
    frame_size: tuple       # (width, height) of the upright full-resolution frame
    fps: float
    bbox: np.ndarray | None = None          # (T,4) x0,y0,x1,y1 px, NaN when invalid
    track_id: np.ndarray | None = None      # (T,) int, −1 when invalid
    frame_index: np.ndarray | None = None   # (T,) the clip's frame numbers (stride/range aware)
    homographies: np.ndarray | None = None  # (T,3,3) frame t−1 → t, see camera_motion
    tracks: list = field(default_factory=list)  # summary of every person track (for choosing)

    @property
    def num_frames(self):
        return len(self.valid)


def mask_size(width, height, max_side=MASK_MAX_SIDE):
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def keypoint_box(kp, min_visibility=0.3):
    """Box (x0,y0,x1,y1) around the visible keypoints (all of them if fewer than 4 are visible)."""
    xy = kp[:, :2]
    vis = kp[:, 2] >= min_visibility
    if vis.sum() >= 4:
        xy = xy[vis]
    xy = xy[np.isfinite(xy).all(1)]
    if not len(xy):
        return np.full(4, np.nan, np.float32)
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    pad = 0.05 * max(x1 - x0, y1 - y0)  # landmarks are joint centres: pad to the body's outline
    return np.array([x0 - pad, y0 - pad, x1 + pad, y1 + pad], np.float32)


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
    m = cv2.resize(np.asarray(seg, np.float32), mask_size(w, h), interpolation=cv2.INTER_AREA)
    return (np.clip(m, 0, 1) * 255).astype(np.uint8)


class MediaPipePoseDetector(PoseDetector):
    """MediaPipe's pose solution in video mode (tracking between frames), segmentation on.

    Single person: MediaPipe keeps whoever it tracks and may jump to another person. Use
    ``MediaPipePoseLandmarker`` (the default) where several people can be in view.
    """

    def __init__(self, model_complexity=1, min_detection_confidence=0.5):
        try:
            from mediapipe.python.solutions import pose as mp_pose  # heavy import, only when used
        except ImportError as exc:  # mediapipe 1.x has the Tasks API only
            raise EngineError("MediaPipe's pose solution needs mediapipe 0.10.x; use "
                               "MediaPipePoseLandmarker (the default detector)") from exc
        from .native_log import quiet_native_logs
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
            from .native_log import quiet_native_logs
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
POSE_BUNDLE_NAME = "pose_landmarker_full.task"
# Where the extension zips for mediapipe 1.x (no models in its wheel) carry the bundle build.py
# makes from mediapipe 0.10.21's Apache-2.0 models (their licence file beside it).
SHIPPED_POSE_BUNDLE = Path(__file__).resolve().parent / "data" / "mediapipe" / POSE_BUNDLE_NAME
WHEEL_POSE_MODELS = ("modules/pose_detection/pose_detection.tflite",  # inside the mediapipe package
                     "modules/pose_landmark/pose_landmark_full.tflite")


def build_pose_landmarker_bundle(detector_tflite, landmarks_tflite):
    """The Tasks ``.task`` bundle (bytes) from the pose solution's two tflite models.

    Adds the input normalisation metadata the Tasks API requires: the detector takes RGB in
    [−1, 1] (mean 127.5, std 127.5), the landmark model RGB in [0, 1] (mean 0, std 255) — the
    ranges mediapipe 0.10.x's own solution graphs feed them. Needs mediapipe 0.10.x installed:
    1.x's metadata writer lacks its native part (``build.py`` makes the bundle 1.x uses).
    """
    import io

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


def pose_landmarker_bundle():
    """The Tasks ``.task`` bundle (bytes): a shipped one (``find_pose_bundle``), else built from
    the pose models inside mediapipe 0.10.x's wheel; mediapipe 1.x ships none, so there the
    bundle must come with the extension (``build.py``)."""
    global _BUNDLE
    if _BUNDLE is None:
        path = find_pose_bundle()
        if path is not None:
            _BUNDLE = path.read_bytes()
        else:
            import mediapipe as mp
            pkg = Path(mp.__file__).parent
            models = [pkg / m for m in WHEEL_POSE_MODELS]
            if not all(m.is_file() for m in models):
                raise EngineError(
                    f"mediapipe {getattr(mp, '__version__', '?')} ships no pose models and no "
                    f"{POSE_BUNDLE_NAME} was found at {SHIPPED_POSE_BUNDLE}: install the extension "
                    "zip built for your Blender, or set MOCAP_POSE_BUNDLE (python build.py --pose-bundle FILE)")
            _BUNDLE = build_pose_landmarker_bundle(*(m.read_bytes() for m in models))
    return _BUNDLE


def _version_tag():
    """'' for mediapipe 0.10.21 (the cache keys it always had), else '-mp<version>': another
    version detects slightly differently, so its detections are cached apart."""
    import mediapipe as mp
    v = getattr(mp, "__version__", "?")
    return "" if v == "0.10.21" else f"-mp{v}"


class MediaPipePoseLandmarker(PoseDetector):
    """Up to ``num_poses`` people per frame: MediaPipe Tasks PoseLandmarker in video mode."""

    def __init__(self, num_poses=4, min_detection_confidence=0.5, min_presence_confidence=0.5,
                 min_tracking_confidence=0.5):
        # 0.5 as MediaPipe's default. On the backlit demo clip the detector's score hovers near it
        # and flips with the image scale; 0.3 finds people sooner but adds many spurious wide
        # poses (arms spread over the background) that fragment the subject's track.
        from mediapipe.tasks.python import BaseOptions, vision
        opts = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=pose_landmarker_bundle()),
            running_mode=vision.RunningMode.VIDEO, num_poses=int(num_poses),
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence, output_segmentation_masks=True)
        from .native_log import quiet_native_logs
        with quiet_native_logs():
            self._lm = vision.PoseLandmarker.create_from_options(opts)
        self._warm = 0
        self._last_ms = -1
        self.cache_key = (f"mediapipe-tasks-full-n{num_poses}-d{min_detection_confidence}"
                          f"-p{min_presence_confidence}-t{min_tracking_confidence}{_version_tag()}")

    def detect_all(self, rgb, timestamp_s):
        import mediapipe as mp
        h, w = rgb.shape[:2]
        ms = max(int(round(1000.0 * timestamp_s)), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._warm < 2:
            # the graph logs its start-up lines on the first inference, and (mediapipe 1.x) once
            # more when it first tracks a person: quiet until two calls after the first person
            from .native_log import quiet_native_logs
            with quiet_native_logs():
                res = self._lm.detect_for_video(image, ms)
            if self._warm or res.pose_landmarks:
                self._warm += 1
        else:
            res = self._lm.detect_for_video(image, ms)
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


@dataclass
class Detections:
    """Everyone the detector saw in T processed frames, flattened over N person-detections."""
    frame_index: np.ndarray   # (T,) the clip's frame numbers
    timestamps: np.ndarray    # (T,) s
    homographies: np.ndarray  # (T,3,3) frame t−1 → t, full-resolution pixels (NaN: unknown)
    frame_size: tuple         # (width, height) full-resolution upright
    fps: float
    frame_of: np.ndarray      # (N,) processed-frame ordinal 0..T−1 of each detection
    keypoints: np.ndarray     # (N,33,3) full-resolution pixels + visibility
    world: np.ndarray         # (N,33,3)
    masks: np.ndarray         # (N,h,w) uint8
    bbox: np.ndarray          # (N,4)
    score: np.ndarray         # (N,)
    appearance: np.ndarray    # (N,48) hue–saturation histogram of the person's pixels (sums to 1)

    @property
    def num_frames(self):
        return len(self.frame_index)

    def arrays(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _appearance(small_hsv, mask_small):
    m = (mask_small > 127).astype(np.uint8)
    if m.sum() < 8:
        return np.zeros(np.prod(APPEARANCE_BINS), np.float32)
    hist = cv2.calcHist([small_hsv], [0, 1], m, list(APPEARANCE_BINS), [0, 180, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


class _Rows:
    """Rows of one shape and dtype appended one at a time, stored in fixed-size chunks.

    Per-detection data (masks above all: 160×90 bytes each at 16:9) is never a list of many
    small arrays, and ``finish`` copies chunk by chunk, releasing each, so building the final
    array does not need twice the memory. Chunks are 64 MiB of address space by default: above
    glibc's largest mmap threshold (32 MiB), so a released chunk goes back to the system (a
    smaller one may stay in the heap — measured: the masks then counted twice at the end of a
    10-minute clip); untouched pages of the last chunk cost no memory.
    """

    CHUNK_BYTES = 64 << 20

    def __init__(self, shape, dtype, chunk=None):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        row = max(1, int(np.prod(self.shape)) * self.dtype.itemsize)
        self.chunk = int(chunk) if chunk else max(64, self.CHUNK_BYTES // row)
        self._chunks, self._k, self.n = [], self.chunk, 0

    def append(self, row):
        if self._k == self.chunk:
            self._chunks.append(np.empty((self.chunk,) + self.shape, self.dtype))
            self._k = 0
        self._chunks[-1][self._k] = row
        self._k += 1
        self.n += 1

    def finish(self):
        out = np.empty((self.n,) + self.shape, self.dtype)
        pos = 0
        while self._chunks:
            c = self._chunks.pop(0)
            take = min(len(c), self.n - pos)
            out[pos:pos + take] = c[:take]
            pos += take
            del c
        self._k, self.n = self.chunk, 0
        return out


def _prepare_frame(item):
    """(index, timestamp, BGR) → (index, timestamp, BGR, RGB, small HSV): the per-frame colour
    work, done in the decoding thread when ``detect_people`` prefetches."""
    i, ts, bgr = item
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ss = min(1.0, 320.0 / max(w, h))
    small_hsv = cv2.cvtColor(cv2.resize(bgr, (max(1, round(w * ss)), max(1, round(h * ss))),
                                        interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    return i, ts, bgr, rgb, small_hsv


def _add(timings, key, t0):
    import time
    now = time.perf_counter()
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + now - t0
    return now


def detect_people(frames, frame_size, fps, detector=None, progress=None, camera_motion=True,
                  prefetch=4, timings=None):
    """Run ``detector`` over an iterable of (index, timestamp, BGR frame) → Detections.

    Frames may be downscaled (processing resolution); keypoints and boxes are returned in the
    full-resolution ``frame_size`` = (width, height). ``progress(n)`` is called after each frame
    (it may raise to cancel). With ``camera_motion`` the background homographies (people's
    masks excluded) are estimated in the same pass.

    Decoding runs in a producer thread ``prefetch`` frames ahead (``engine.video.prefetch``;
    0 = in this thread), overlapped with detection; the results are the same either way.
    ``timings`` (a dict) accumulates seconds per stage: ``decode`` (the producer's busy time,
    colour conversions included), ``detection``, ``masks_appearance``, ``flow_homographies``.
    """
    import time

    from .camera_motion import HomographyEstimator
    from .video import prefetch as _prefetch

    own = detector is None
    detector = detector or default_detector()
    W, H = frame_size
    mw, mh = mask_size(W, H)
    est = HomographyEstimator() if camera_motion else None
    idx, stamps, frame_of, scores = [], [], [], []
    homs = _Rows((3, 3), np.float64)
    kps, worlds = _Rows((NUM_LANDMARKS, 3), np.float32), _Rows((NUM_LANDMARKS, 3), np.float32)
    masks, boxes = _Rows((mh, mw), np.uint8), _Rows((4,), np.float32)
    apps = _Rows((int(np.prod(APPEARANCE_BINS)),), np.float32)
    stream = _prefetch(frames, depth=prefetch, prepare=_prepare_frame, timings=timings)
    try:
        for n, (i, ts, bgr, rgb, small_hsv) in enumerate(stream):
            t0 = time.perf_counter()
            h, w = bgr.shape[:2]
            sx, sy = W / w, H / h
            if hasattr(detector, "detect_all"):
                people = detector.detect_all(rgb, ts)
            else:  # a bare callable: one person or None
                ob = detector(rgb)
                people = [] if ob is None else [ob]
            t0 = _add(timings, "detection", t0)
            union = np.zeros((mh, mw), np.uint8)
            for ob in people:
                kp = np.asarray(ob.keypoints, np.float32).copy()
                kp[:, 0] *= sx
                kp[:, 1] *= sy
                m = np.asarray(ob.mask, np.uint8)
                if m.shape != (mh, mw):
                    m = cv2.resize(m, (mw, mh), interpolation=cv2.INTER_AREA)
                if ob.bbox is not None:
                    box = np.asarray(ob.bbox, np.float32) * np.array([sx, sy, sx, sy], np.float32)
                else:
                    box = keypoint_box(kp)
                frame_of.append(n)
                kps.append(kp)
                worlds.append(np.asarray(ob.world, np.float32))
                masks.append(m)
                boxes.append(box)
                scores.append(ob.score)
                apps.append(_appearance(small_hsv, cv2.resize(m, small_hsv.shape[1::-1])))
                union = np.maximum(union, m)
            t0 = _add(timings, "masks_appearance", t0)
            if est is not None:
                Hp = est.update(bgr, cv2.resize(union, (w, h)) > 127)
                S = np.diag([sx, sy, 1.0])  # processed → full-resolution pixels
                homs.append(S @ Hp @ np.linalg.inv(S))
            else:
                homs.append(np.full((3, 3), np.nan))
            _add(timings, "flow_homographies", t0)
            idx.append(i)
            stamps.append(ts)
            del bgr, rgb, small_hsv, people
            if progress is not None:
                progress(len(idx))
    finally:
        stream.close()  # stops the producer now, even when an exception is on its way out
        if own:
            detector.close()
    return Detections(
        frame_index=np.array(idx, np.int64), timestamps=np.array(stamps, np.float64),
        homographies=homs.finish(), frame_size=(int(W), int(H)),
        fps=float(fps), frame_of=np.array(frame_of, np.int64),
        keypoints=kps.finish(), world=worlds.finish(), masks=masks.finish(),
        bbox=boxes.finish(), score=np.array(scores, np.float32), appearance=apps.finish())


def observe_frames(frames, frame_size, fps, detector=None, progress=None, subject="largest",
                   subject_point=None, subject_frame=0):
    """Run ``detector`` over (index, timestamp, BGR frame), track people, keep the subject.

    See ``track.select_subject`` for the rules. Returns the subject's Observations.
    """
    from .track import track_and_select
    dets = detect_people(frames, frame_size, fps, detector=detector, progress=progress)
    return track_and_select(dets, subject=subject, subject_point=subject_point,
                            subject_frame=subject_frame)
