"""Decoding in a producer thread (engine.video.decode.prefetch) overlapped with detection: the same
frames in the same order, errors and early stops handled, and detect_people's results
identical with and without the thread."""
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.observe import FrameObservation, detect_people
from engine.observe.detect import _Rows
from engine.video.decode import iter_frames, prefetch


def _producers():
    return [t for t in threading.enumerate() if t.name == "frame-producer" and t.is_alive()]


def _clip(path, n=40, size=(160, 96), fps=25):
    """A clip whose frames differ: a moving bright square over a textured, panning background."""
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (size[1] + 40, size[0] + 80, 3), np.uint8), (5, 5), 0)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n):
        f = bg[10:10 + size[1], i:i + size[0]].copy()
        x = 10 + 2 * i
        cv2.rectangle(f, (x, 30), (x + 20, 70), (255, 255, 255), -1)
        wr.write(f)
    wr.release()
    return path


def test_prefetch_same_items_same_order():
    items = [(i, np.full((4, 4), i)) for i in range(200)]
    got = list(prefetch(iter(items), depth=3))
    assert [g[0] for g in got] == list(range(200))
    assert all(g[1] is it[1] for g, it in zip(got, items))
    assert list(prefetch(iter(items), depth=3, prepare=lambda x: x[0] * 2)) == [2 * i for i in range(200)]
    assert list(prefetch(iter(items), depth=0, prepare=lambda x: x[0])) == list(range(200))


def test_prefetch_decoded_frames_identical(tmp_path):
    clip = _clip(tmp_path / "c.mp4")
    plain = list(iter_frames(clip, (3, 37), stride=2, max_side=120))
    timings = {}
    threaded = list(prefetch(iter_frames(clip, (3, 37), stride=2, max_side=120), depth=2, timings=timings))
    assert len(plain) == len(threaded) == 17
    for (i, ts, f), (j, us, g) in zip(plain, threaded):
        assert i == j and ts == us and f.dtype == g.dtype and np.array_equal(f, g)
    assert timings["decode"] > 0
    assert len({float(f.mean()) for _, _, f in plain}) > 10  # the frames really differ


def test_prefetch_reraises_the_producer_error_in_place():
    def gen():
        for i in range(5):
            yield i
        raise ValueError("bad frame 5")
    seen = []
    with pytest.raises(ValueError, match="bad frame 5"):
        for x in prefetch(gen(), depth=2):
            seen.append(x)
    assert seen == [0, 1, 2, 3, 4]
    assert not _producers()


def test_prefetch_early_stop_closes_the_source_and_the_thread():
    closed = threading.Event()

    def gen():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.set()
    it = prefetch(gen(), depth=2)
    for x in it:
        if x == 3:
            break
    it.close()
    assert closed.wait(2.0)
    time.sleep(0.05)
    assert not _producers()


class ContentDetector:
    """A deterministic stand-in for MediaPipe: one 'person' whose keypoints and mask follow the
    bright pixels of the frame; records what it was given, in order."""

    def __init__(self):
        self.seen = []

    def detect_all(self, rgb, ts):
        self.seen.append((ts, float(rgb.mean())))
        h, w = rgb.shape[:2]
        bright = rgb.min(axis=2) > 200
        ys, xs = np.nonzero(bright)
        if len(xs) < 4:
            return []
        rng = np.random.default_rng(int(rgb.sum()) % 2**32)
        kp = np.stack([rng.uniform(xs.min(), xs.max(), 33), rng.uniform(ys.min(), ys.max(), 33),
                       np.full(33, 0.9)], 1).astype(np.float32)
        world = rng.normal(0, 0.3, (33, 3)).astype(np.float32)
        mask = bright.astype(np.uint8) * 255
        return [FrameObservation(kp, world, mask, score=0.9)]


def test_detect_people_identical_with_and_without_the_producer_thread(tmp_path):
    clip = _clip(tmp_path / "c.mp4", n=40)
    size = (160, 96)
    runs = []
    for depth in (0, 4):
        det = ContentDetector()
        t = {}
        d = detect_people(iter_frames(clip, max_side=120), size, 25.0, detector=det, prefetch=depth, timings=t)
        runs.append((d, det.seen, t))
    (a, seen_a, _), (b, seen_b, tb) = runs
    assert seen_a == seen_b and len(seen_a) == 40      # same frames, same order
    assert a.num_frames == 40 and len(a.frame_of) > 30
    for k, v in a.arrays().items():
        w = getattr(b, k)
        if isinstance(v, np.ndarray):
            assert v.dtype == w.dtype and v.shape == w.shape, k
            assert np.array_equal(v, w, equal_nan=v.dtype.kind == "f"), k
        else:
            assert v == w, k
    assert {"decode", "detection", "masks_appearance", "flow_homographies"} <= set(tb)


def test_cancel_during_detection_stops_the_producer(tmp_path):
    clip = _clip(tmp_path / "c.mp4", n=40)

    def progress(n):
        if n == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        detect_people(iter_frames(clip), (160, 96), 25.0, detector=ContentDetector(), progress=progress)
    time.sleep(0.05)
    assert not _producers()


def test_rows_match_a_plain_stack():
    rng = np.random.default_rng(1)
    rows = [rng.integers(0, 255, (5, 7), np.uint8) for _ in range(23)]
    r = _Rows((5, 7), np.uint8, chunk=4)
    for x in rows:
        r.append(x)
    assert np.array_equal(r.finish(), np.array(rows))
    assert _Rows((3,), np.float32).finish().shape == (0, 3)


@pytest.mark.slow
def test_mediapipe_detections_identical_with_the_producer_thread():
    """The real detector on the demo's first frames: the thread changes nothing."""
    from engine.observe import default_detector
    from engine.video.decode import open_video
    cap, info = open_video(DEMO_VIDEO)
    cap.release()
    out = []
    for depth in (0, 4):
        out.append(detect_people(iter_frames(DEMO_VIDEO, (0, 12), max_side=480), (info.width, info.height),
                                 info.fps, detector=default_detector(2), prefetch=depth))
    a, b = out
    assert len(a.frame_of) > 0
    for k, v in a.arrays().items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, getattr(b, k), equal_nan=v.dtype.kind == "f"), k
