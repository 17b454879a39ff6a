"""Decode a video with opencv, streaming: frames, fps, size, timestamps, rotation, with clear errors.

Frames are yielded one at a time (a clip is never held whole), upright (the container's rotation
metadata is applied here, by us, not left to the opencv backend's default), optionally every
``stride``-th frame and downscaled so the longer side is at most ``max_side`` (4K input at a
processing resolution). Timestamps are the container's presentation times, so variable-frame-rate
clips keep their real timing.
"""
import os
from dataclasses import dataclass
from pathlib import Path

# FFmpeg's own messages ("partial file", "Invalid NAL unit…") are read by opencv from this variable
# when a capture opens; the engine reports what matters itself (a shortfall of decoded frames).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

import cv2  # noqa: E402
import numpy as np

from ..errors import EngineError

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass
class VideoInfo:
    path: str
    width: int       # upright (after rotation), full resolution
    height: int
    fps: float
    frame_count: int  # container's claim; the decoder may find fewer
    rotation: int = 0  # degrees clockwise applied to the coded frames to make them upright


def processing_scale(width, height, max_side=None):
    """Scale (≤ 1) that brings the longer side down to ``max_side``; 1 when None or already smaller."""
    if not max_side:
        return 1.0
    if max_side < 16:
        raise EngineError(f"max_side={max_side} is too small (use at least 16 pixels)")
    return min(1.0, float(max_side) / max(width, height))


def shrink(image, size):
    """``image`` resized down to ``size`` = (width, height): halved by pixel-area averaging while
    it is at least twice the size, then bilinear to the exact size (a factor above ½, where
    bilinear barely aliases). Close to one ``INTER_AREA`` resize (mean difference 1–3 grey
    levels) at a fraction of its cost: opencv's area resize is slow at non-integer factors
    (full 1768×994 → 640 px: 6.3 ms against 1.5; docs/performance.md)."""
    w, h = int(size[0]), int(size[1])
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def open_video(path):
    """Open a video for reading; EngineError if it is missing or not a decodable video.

    Returns (cv2.VideoCapture, VideoInfo). The capture yields coded (unrotated) frames; use
    ``iter_frames`` for upright ones.
    """
    p = Path(path)
    if not p.is_file():
        raise EngineError(f"video not found: {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise EngineError(f"cannot open {p.name} as a video (unknown or damaged format)")
    # Rotation is applied by us (cv2.rotate) so the result never depends on the backend's default.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    rot = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
    rot = rot if rot in _ROTATE else 0
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if w <= 0 or h <= 0:
        cap.release()
        raise EngineError(f"{p.name} has no video stream")
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0  # some containers carry no rate; 30 is the common default
    if rot in (90, 270):
        w, h = h, w
    return cap, VideoInfo(str(p), w, h, fps, max(n, 0), rot)


def iter_frames(path, frame_range=None, stride=1, max_side=None, only=None):
    """Yield (index, timestamp_s, BGR frame) over ``frame_range`` = (first, last_exclusive).

    ``stride`` keeps every n-th frame (skipped frames are grabbed, not decoded to BGR);
    ``only`` (a set of frame numbers) keeps just those, grabbing the rest; ``max_side``
    downscales each frame (``shrink``). Indices are the clip's frame numbers.
    """
    stride = 1 if stride is None else int(stride)
    if stride < 1:
        raise EngineError(f"stride must be ≥ 1 (got {stride})")
    cap, info = open_video(path)
    first, last = (frame_range or (0, None))
    first = int(first or 0)
    if first < 0 or (last is not None and last <= first):
        cap.release()
        raise EngineError(f"empty or invalid frame range {first}–{last}")
    s = processing_scale(info.width, info.height, max_side)
    size = (max(1, round(info.width * s)), max(1, round(info.height * s)))
    rot = _ROTATE.get(info.rotation)
    try:
        if first:
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        i, prev_ts = first, -1.0
        while last is None or i < last:
            if (i - first) % stride or (only is not None and i not in only):
                if not cap.grab():
                    break
                i += 1
                continue
            ok, frame = cap.read()
            if not ok:
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not np.isfinite(ts) or (ts <= 0 and i > 0) or ts <= prev_ts:
                ts = max(i / info.fps, prev_ts + 1e-6)  # no usable timestamp: nominal rate
            prev_ts = ts
            if rot is not None:
                frame = cv2.rotate(frame, rot)
            if s < 1.0:
                frame = shrink(frame, size)
            yield i, ts, frame
            i += 1
    finally:
        cap.release()


_END = object()


def prefetch(items, depth=4, prepare=None, timings=None, key="decode"):
    """Iterate ``items`` in a producer thread, at most ``depth`` items ahead: same items, same order.

    Decoding (and ``prepare(item)``, e.g. colour conversions) then overlaps with the consumer's
    work — opencv releases the GIL while it decodes and resizes, MediaPipe while it infers.
    Memory stays bounded (``depth`` frames in flight). An exception in the producer is re-raised
    in the consumer at the position it happened; when the consumer stops early (``break``, an
    exception, ``close()``) the producer is told to stop and the source is closed in its own
    thread (a generator must be closed by the thread that runs it). ``timings[key]`` (when a
    dict is given) accumulates the producer's busy seconds. ``depth`` ≤ 0: no thread, plain
    iteration (with ``prepare`` applied), for comparison and debugging.
    """
    import queue
    import threading
    import time

    if depth is None or depth <= 0:
        it = iter(items)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                out = item if prepare is None else prepare(item)
                if timings is not None:
                    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
                yield out
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    q = queue.Queue(maxsize=int(depth))
    stop = threading.Event()

    def put(x):
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        it = iter(items)
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                out = item if prepare is None else prepare(item)
                if timings is not None:
                    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
                if not put((True, out)):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))
            return
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        put((True, _END))

    th = threading.Thread(target=produce, name="frame-producer", daemon=True)
    th.start()
    try:
        while True:
            ok, out = q.get()
            if not ok:
                raise out
            if out is _END:
                break
            yield out
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        th.join()
