"""Passes run as two halves side by side (engine.observe.halves) and what uses them: the follow
pass split at a frame where the subject stands alone (engine.observe.follow.split_frame,
follow_video), gap recovery in two groups (the same frames recovered), and the cheap
downscale the per-frame work uses (engine.video.decode.shrink)."""
import threading
import time

import cv2
import numpy as np
import pytest

from engine.observe.follow import SubjectPrior, split_frame
from engine.observe.halves import parallel_halves, run_beside
from engine.video.decode import shrink
from test_follow import DEMO, _mediapipe, _survey


# ------------------------------------------------------------------ run_beside
def _counting(n, fail_at=None, delay=0.002, seen=None):
    def work(report):
        for k in range(1, n + 1):
            time.sleep(delay)
            if seen is not None:
                seen.append(k)
            if k == fail_at:
                raise ValueError(f"failed at {k}")
            report(k)
        return n
    return work


def test_both_halves_run_and_progress_is_reported_from_the_calling_thread_only():
    calls = []
    main = threading.get_ident()

    def progress(n):
        calls.append((n, threading.get_ident()))
    a, b = run_beside(_counting(20), _counting(30, delay=0.004), progress=progress)
    assert (a, b) == (20, 30)
    assert all(t == main for _, t in calls)
    assert calls[-1][0] == 50 and all(x <= y for (x, _), (y, _) in zip(calls, calls[1:]))


def test_an_error_in_the_second_half_is_raised_here_and_stops_the_first():
    seen = []
    with pytest.raises(ValueError, match="failed at 3"):
        run_beside(_counting(2000, seen=seen, delay=0.001), _counting(100, fail_at=3))
    assert len(seen) < 2000  # the first half stopped at its next report


def test_cancelling_in_progress_stops_the_second_half():
    seen = []

    def progress(n):
        if n > 10:
            raise KeyboardInterrupt  # what a cancelled UI callback raises
    with pytest.raises(KeyboardInterrupt):
        run_beside(_counting(2000, delay=0.001), _counting(2000, seen=seen, delay=0.001), progress=progress)
    n = len(seen)
    time.sleep(0.05)
    assert n < 2000 and len(seen) == n  # stopped, and stays stopped


def test_split_only_with_two_cores_and_long_enough_halves(monkeypatch):
    import engine.observe.halves as halves
    monkeypatch.setattr(halves, "cores", lambda: 2)
    assert parallel_halves(230, 30) and not parallel_halves(100, 30)
    monkeypatch.setattr(halves, "cores", lambda: 1)
    assert not parallel_halves(10000, 30)


# ------------------------------------------------------------------ where the follow pass splits
def test_split_frame_is_a_sighting_near_the_middle_with_nobody_near_and_sightings_either_side():
    frames = range(0, 240, 6)
    me = {f: [100 + f, 100, 200 + f, 400] for f in frames if f not in (114, 126)}  # unseen on 114, 126
    # someone else: far off, but beside me on 132-144 (and so the survey has frames 114 and 126)
    other = {f: [110 + f, 120, 210 + f, 420] if 132 <= f <= 144 else [800, 100, 900, 400] for f in frames}
    prior = SubjectPrior(*_survey({0: me, 1: other}), 0)
    # 120 and 108 have a survey frame I am unseen on beside them, on 132-144 someone is beside me:
    # the frame nearest the middle (119.5) that qualifies is 102
    assert split_frame(prior, np.arange(240), 30) == 102
    assert split_frame(prior, np.arange(90), 30) is None  # halves under 2 s
    crowded = SubjectPrior(*_survey({0: me, 1: {f: b for f, b in me.items()}}), 0)
    assert split_frame(crowded, np.arange(240), 30) is None  # never alone


# ------------------------------------------------------------------ on the demo clip
@pytest.mark.slow
def test_the_demo_followed_in_halves_matches_one_pass():
    _mediapipe()
    from engine.observe.follow import SubjectPrior as Prior, follow_video, survey_video
    from engine.observe.track import select_subject
    survey, tid, _ = survey_video(DEMO, (0, 230))
    prior = Prior(survey, tid, select_subject(survey, tid, "largest", None, 0))
    one, s1 = follow_video(DEMO, (0, 230), 1, None, survey.frame_size, survey.fps, prior, halves=False)
    t = {}
    two, s2 = follow_video(DEMO, (0, 230), 1, None, survey.frame_size, survey.fps, prior, halves=True, timings=t)
    b = s2["halves"]
    assert s1["halves"] is None and b is not None and 60 <= b <= 170
    assert np.array_equal(two.frame_index, np.arange(230)) and two.masks.shape == one.masks.shape
    assert t["follow_wall"] > 0 and t["follow_landmarks"] > 0
    # the prior is not changed by either half (each adopts on its own copy)
    assert prior.adopted == [] and set(prior.boxes) == set(Prior(survey, tid, prior.subject).boxes)
    # before the boundary: the same pass, to the bit
    assert np.array_equal(one.keypoints[:b], two.keypoints[:b], equal_nan=True)
    assert np.array_equal(one.valid[:b], two.valid[:b])
    # after it: a fresh landmarker on the same person — nearly every frame agrees, none is far off
    both = one.valid & two.valid
    assert two.valid.sum() >= one.valid.sum() - 8, (two.valid.sum(), one.valid.sum())
    h = one.bbox[both, 3] - one.bbox[both, 1]
    d = np.median(np.linalg.norm(one.keypoints[both, :, :2] - two.keypoints[both, :, :2], axis=2), 1) / h
    assert np.median(d) < 0.005 and (d < 0.1).mean() > 0.95, (np.median(d), (d < 0.1).mean())
    # the boundary frame's background motion is measured from the frame before it, as in one pass
    corners = np.array([[0, 0, 1], [1768, 0, 1], [0, 994, 1], [1768, 994, 1]], float).T
    p1, p2 = one.homographies[b] @ corners, two.homographies[b] @ corners
    assert np.abs(p1[:2] / p1[2] - p2[:2] / p2[2]).max() < 1.0


class _Nobody:
    def detect_all(self, rgb, timestamp_s):
        return []

    def close(self):
        pass


def test_a_half_primed_on_the_frame_before_measures_its_first_frames_motion():
    from engine.observe.follow import _follow_rows
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (700, 1200, 3), np.uint8), (0, 0), 2)

    def frames(start):
        for i in range(start, 6):  # the camera pans 6 px right per frame: the scene moves left
            yield i, i / 30.0, np.ascontiguousarray(texture[50:650, 6 * i + 50:6 * i + 1050])
    prior = SubjectPrior(*_survey({0: {0: [400, 100, 500, 400]}}), 0)
    size = (1000, 600)
    one, _ = _follow_rows(frames(0), size, 30.0, prior, make_landmarker=_Nobody)
    warm, _ = _follow_rows(frames(2), size, 30.0, prior, make_landmarker=_Nobody, warm=1)
    cold, _ = _follow_rows(frames(3), size, 30.0, prior, make_landmarker=_Nobody)
    assert warm["idx"] == [3, 4, 5] and len(warm["hom"]) == 3
    assert abs(one["hom"][3][0, 2] + 6) < 0.5          # frame 3's motion: 6 px left
    assert np.allclose(warm["hom"][0], one["hom"][3], atol=0.05)
    assert np.allclose(cold["hom"][0], np.eye(3))      # unprimed, a first frame has no motion


@pytest.mark.slow
def test_gap_recovery_in_two_groups_recovers_exactly_what_one_does():
    _mediapipe()
    import copy
    from engine.observe.follow import observe_video
    from engine.observe.redetect import gaps, recover_gaps
    obs, *_ = observe_video(DEMO, (0, 230), halves=False)
    assert len(gaps(obs.valid, 30)) >= 2
    a, b = copy.deepcopy(obs), copy.deepcopy(obs)
    n1, n2 = recover_gaps(DEMO, a, halves=False), recover_gaps(DEMO, b, halves=True)
    assert n1 == n2 > 0
    for k in ("keypoints", "world", "masks", "valid", "bbox", "track_id"):
        assert np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True), k


# ------------------------------------------------------------------ shrink
def test_shrink_is_close_to_an_area_resize_at_any_factor():
    _, _, frame = next(__import__("engine.video.decode", fromlist=["iter_frames"]).iter_frames(DEMO, (100, 101)))
    for size in ((640, 360), (320, 180), (1280, 720), (1767, 993), (97, 55)):
        got = shrink(frame, size)
        ref = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        assert got.shape == ref.shape and got.dtype == frame.dtype
        assert np.abs(got.astype(float) - ref).mean() < 4.0, size
    assert shrink(frame, frame.shape[1::-1]) is frame
    mask = np.random.default_rng(0).random((300, 300)).astype(np.float32)
    assert shrink(mask, (160, 160)).shape == (160, 160)


@pytest.mark.parametrize("seek_lands", [True, False])
def test_a_seek_that_misses_its_frame_falls_back_to_one_pass(monkeypatch, seek_lands):
    import engine.video.decode as decode
    from engine.observe.follow import follow_video
    img = np.full((600, 1000, 3), 127, np.uint8)
    opened = []

    def fake_iter_frames(path, frame_range=None, stride=1, max_side=None, only=None):
        a, b = frame_range
        opened.append(a)
        for i in range(a, b):  # a container that seeks 30 frames too far: later timestamps
            yield i, (i + (0 if seek_lands or a == 0 else 30)) / 30.0, img
    monkeypatch.setattr(decode, "iter_frames", fake_iter_frames)
    prior = SubjectPrior(*_survey({0: {f: [400, 100, 500, 400] for f in range(0, 240, 6)}}), 0)
    obs, stats = follow_video("clip.mp4", (0, 240), 1, None, (1000, 600), 30.0, prior, halves=True,
                              make_landmarker=_Nobody)
    assert np.array_equal(obs.frame_index, np.arange(240))
    if seek_lands:
        assert stats["halves"] is not None and sorted(opened) == [0, stats["halves"] - 1]  # either first
    else:
        assert stats["halves"] is None and opened[-1] == 0 and len(opened) == 3
        assert np.allclose(np.diff(obs.timestamps), 1 / 30.0)
