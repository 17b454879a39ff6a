"""Decode a video with opencv: frames, fps, size and timestamps, with clear errors."""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import EngineError


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int  # container's claim; the decoder may find fewer


def open_video(path):
    """Open a video for reading; EngineError if it is missing or not a decodable video."""
    p = Path(path)
    if not p.is_file():
        raise EngineError(f"video not found: {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise EngineError(f"cannot open {p.name} as a video (unknown or damaged format)")
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if w <= 0 or h <= 0:
        cap.release()
        raise EngineError(f"{p.name} has no video stream")
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0  # some containers carry no rate; 30 is the common default
    return cap, VideoInfo(str(p), w, h, fps, n)


def iter_frames(path, frame_range=None):
    """Yield (index, timestamp_s, BGR frame) over ``frame_range`` = (first, last_exclusive)."""
    cap, info = open_video(path)
    first, last = (frame_range or (0, None))
    try:
        if first:
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        i = first
        while last is None or i < last:
            ok, frame = cap.read()
            if not ok:
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield i, (ts if ts > 0 or i == 0 else i / info.fps), frame
            i += 1
    finally:
        cap.release()
