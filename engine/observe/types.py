"""What the detector gives and the stages after it pass on: the 33 MediaPipe landmark names,
one person in one frame (``FrameObservation``), everyone over a clip (``Detections``) and the
subject over a clip (``Observations``), with the box and mask-size helpers they share."""
from dataclasses import dataclass, field

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
MAX_MASK_GROWTH = 4.0  # a detection whose mask is this many times the subject's recent masks is not
# the subject: a pose made of glare or foliage comes with a mask over the background (our choice)
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
    hidden: np.ndarray | None = None        # (T,) bool: left out because the subject overlapped someone (follow)

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
