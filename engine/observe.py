"""Per-frame observations from MediaPipe Pose 0.10.21 (models ship inside the wheel).

Each frame gives 33 image keypoints (pixels + visibility), 33 metric "world" landmarks
(MediaPipe's frame: origin between the hips, x right, y down, z away from the camera — the
pseudo-depth prior) and a person segmentation mask. A frame with no person is marked invalid.
Detectors sit behind ``PoseDetector`` so others (e.g. an ONNX ViTPose) can plug in.
"""
from dataclasses import dataclass

import cv2
import numpy as np

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


@dataclass
class FrameObservation:
    keypoints: np.ndarray  # (33,3) x_px, y_px, visibility
    world: np.ndarray      # (33,3) metres, MediaPipe world frame
    mask: np.ndarray       # (h,w) uint8 0..255, downsampled


@dataclass
class Observations:
    """Observations of a clip, stacked over T frames (invalid frames hold NaN / zeros)."""
    keypoints: np.ndarray   # (T,33,3)
    world: np.ndarray       # (T,33,3)
    masks: np.ndarray       # (T,h,w) uint8
    valid: np.ndarray       # (T,) bool
    timestamps: np.ndarray  # (T,) seconds
    frame_size: tuple       # (width, height)
    fps: float

    @property
    def num_frames(self):
        return len(self.valid)


def mask_size(width, height, max_side=MASK_MAX_SIDE):
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


class PoseDetector:
    """Interface: call with an RGB frame, get a FrameObservation or None (no person)."""

    def __call__(self, rgb):  # pragma: no cover - interface
        raise NotImplementedError

    def close(self):
        pass


class MediaPipePoseDetector(PoseDetector):
    """MediaPipe's pose solution in video mode (tracking between frames), segmentation on."""

    def __init__(self, model_complexity=1, min_detection_confidence=0.5):
        from mediapipe.python.solutions import pose as mp_pose  # heavy import, only when used
        self._pose = mp_pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                  smooth_landmarks=True, enable_segmentation=True,
                                  smooth_segmentation=True,
                                  min_detection_confidence=min_detection_confidence,
                                  min_tracking_confidence=0.5)

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        res = self._pose.process(rgb)
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        kp = np.array([(l.x * w, l.y * h, l.visibility) for l in res.pose_landmarks.landmark],
                      dtype=np.float32)
        world = np.array([(l.x, l.y, l.z) for l in res.pose_world_landmarks.landmark], dtype=np.float32)
        if res.segmentation_mask is not None:
            mask = cv2.resize(res.segmentation_mask, mask_size(w, h), interpolation=cv2.INTER_AREA)
            mask = (np.clip(mask, 0, 1) * 255).astype(np.uint8)
        else:
            mask = np.zeros(mask_size(w, h)[::-1], np.uint8)
        return FrameObservation(kp, world, mask)

    def close(self):
        self._pose.close()


def observe_frames(frames, frame_size, fps, detector=None, progress=None):
    """Run ``detector`` over an iterable of (index, timestamp, BGR frame) → Observations.

    ``progress(i)`` is called after each frame (it may raise to cancel).
    """
    own = detector is None
    detector = detector or MediaPipePoseDetector()
    w, h = frame_size
    mw, mh = mask_size(w, h)
    kps, worlds, masks, valid, stamps = [], [], [], [], []
    try:
        for i, ts, bgr in frames:
            ob = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            stamps.append(ts)
            valid.append(ob is not None)
            if ob is None:
                kps.append(np.full((NUM_LANDMARKS, 3), np.nan, np.float32))
                worlds.append(np.full((NUM_LANDMARKS, 3), np.nan, np.float32))
                masks.append(np.zeros((mh, mw), np.uint8))
            else:
                kps.append(ob.keypoints)
                worlds.append(ob.world)
                masks.append(ob.mask)
            if progress is not None:
                progress(len(valid))
    finally:
        if own:
            detector.close()
    T = len(valid)
    return Observations(
        keypoints=np.array(kps, np.float32).reshape(T, NUM_LANDMARKS, 3),
        world=np.array(worlds, np.float32).reshape(T, NUM_LANDMARKS, 3),
        masks=np.array(masks, np.uint8).reshape(T, mh, mw),
        valid=np.array(valid, bool), timestamps=np.array(stamps, np.float64),
        frame_size=(w, h), fps=fps)
