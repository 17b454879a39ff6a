"""Observation front end on real frames: rotation metadata, processing size, cache, 1-frame clips."""
import cv2
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.video import cache
from engine.observe import FrameObservation, PoseDetector
from engine.pipeline import PipelineOptions, detect, run
from engine.observe.track import track_and_select
from engine.video.decode import iter_frames
from test_video import set_rotation, write_clip

FRAMES = (100, 108)  # the walker on the grass (the jumper is detected only at full size)


@pytest.fixture(scope="module")
def demo_frames():
    return [f for _, _, f in iter_frames(DEMO_VIDEO, FRAMES)]


WALKER = (1025, 745)  # on the first frame, full-resolution pixels


def _subject(clip, **kw):
    dets, _ = detect(clip, PipelineOptions(**kw))
    return track_and_select(dets, "point", WALKER, 0)


@pytest.mark.slow
def test_rotated_clip_gives_upright_keypoints(tmp_path, demo_frames):
    upright = write_clip(tmp_path / "upright.mp4", demo_frames)
    # a phone clip: stored sideways, with metadata saying "rotate 90° clockwise to display"
    rotated = write_clip(tmp_path / "rotated.mp4",
                         [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in demo_frames])
    set_rotation(rotated, 90)
    a, b = _subject(upright), _subject(rotated)
    assert b.frame_size == a.frame_size == (1768, 994)
    both = a.valid & b.valid
    assert both.sum() >= 6
    nose, hips = b.keypoints[both, 0, 1], b.keypoints[both][:, [23, 24], 1].mean(1)
    assert np.all(nose < hips)                                        # head up
    d = np.linalg.norm(a.keypoints[both, :, :2] - b.keypoints[both, :, :2], axis=-1)
    vis = (a.keypoints[both, :, 2] > 0.5) & (b.keypoints[both, :, 2] > 0.5)
    assert np.median(d[vis]) < 12, np.median(d[vis])                  # the same person, same pose


@pytest.mark.slow
def test_processing_resolution_keeps_full_resolution_coordinates(tmp_path, demo_frames):
    clip = write_clip(tmp_path / "c.mp4", demo_frames)
    full, small = _subject(clip), _subject(clip, max_side=1280)
    both = full.valid & small.valid
    assert both.sum() >= 6 and small.frame_size == (1768, 994)
    vis = (full.keypoints[both, :, 2] > 0.5) & (small.keypoints[both, :, 2] > 0.5)
    d = np.linalg.norm(full.keypoints[both, :, :2] - small.keypoints[both, :, :2], axis=-1)
    h = np.nanmedian(full.bbox[both, 3] - full.bbox[both, 1])
    assert np.median(d[vis]) < 0.05 * h


@pytest.mark.slow
def test_one_frame_video_runs_end_to_end(tmp_path, demo_frames):
    clip = write_clip(tmp_path / "one.mp4", demo_frames[:1])
    m = run(clip)
    assert m.num_frames == 1 and bool(m.valid[0])
    assert np.isfinite(m.poses[0]).all()


class CountingDetector(PoseDetector):
    cache_key = "counting-test-detector"

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        h, w = rgb.shape[:2]
        kp = np.zeros((33, 3), np.float32)
        kp[:, 0] = np.linspace(0.4, 0.6, 33) * w
        kp[:, 1] = np.linspace(0.2, 0.8, 33) * h
        kp[:, 2] = 0.9
        return FrameObservation(kp, np.zeros((33, 3), np.float32), np.zeros((9, 16), np.uint8))


def test_cache_skips_detection_on_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("MOCAP_CACHE_DIR", str(tmp_path / "cache"))
    frames = [np.full((120, 160, 3), 60 + 10 * i, np.uint8) for i in range(5)]
    clip = write_clip(tmp_path / "c.mp4", frames)
    det = CountingDetector()
    a, _ = detect(clip, PipelineOptions(), detector=det)
    assert det.calls == 5 and len(list((tmp_path / "cache").glob("detections-*.npz"))) == 1
    b, _ = detect(clip, PipelineOptions(), detector=det)
    assert det.calls == 5                                            # a hit: no detector call
    assert np.array_equal(a.keypoints, b.keypoints) and b.frame_size == a.frame_size
    detect(clip, PipelineOptions(stride=2), detector=det)            # other options: a miss
    assert det.calls == 8
    detect(clip, PipelineOptions(use_cache=False), detector=det)
    assert det.calls == 13
    clip.write_bytes(clip.read_bytes() + b"\0")                      # other content: a miss
    detect(clip, PipelineOptions(), detector=det)
    assert det.calls == 18


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("MOCAP_CACHE_DIR", str(tmp_path / "x"))
    assert cache.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("MOCAP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "mocap-engine"
