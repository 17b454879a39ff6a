"""Every person in every frame of a clip: ``detect_people`` streams frames through a detector,
keeps every detection (keypoints, world landmarks, mask, box, appearance) and the background
homographies; ``observe_frames`` adds tracking and returns the subject's Observations."""
import cv2
import numpy as np

from .types import APPEARANCE_BINS, NUM_LANDMARKS, Detections, keypoint_box, mask_size

def appearance_histogram(small_hsv, mask_small):
    """Normalised hue × saturation histogram of the masked pixels (zeros when too few)."""
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
    smaller one may stay in the heap, and the masks then count twice: docs/performance.md,
    memory); untouched pages of the last chunk cost no memory.
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
    from ..video.decode import shrink
    i, ts, bgr = item
    h, w = bgr.shape[:2]
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ss = min(1.0, 320.0 / max(w, h))
    small_hsv = cv2.cvtColor(shrink(bgr, (max(1, round(w * ss)), max(1, round(h * ss)))), cv2.COLOR_BGR2HSV)
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

    Decoding runs in a producer thread ``prefetch`` frames ahead (``engine.video.decode.prefetch``;
    0 = in this thread), overlapped with detection; the results are the same either way.
    ``timings`` (a dict) accumulates seconds per stage: ``decode`` (the producer's busy time,
    colour conversions included), ``detection``, ``masks_appearance``, ``flow_homographies``.
    """
    import time

    from .camera_motion import HomographyEstimator
    from .landmarker import default_detector
    from ..video.decode import prefetch as _prefetch

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
                apps.append(appearance_histogram(small_hsv, cv2.resize(m, small_hsv.shape[1::-1])))
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

