"""Tracking and subject selection: synthetic people (fast) and the real two-person demo clip."""
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.errors import EngineError
from engine.observe import Detections, keypoint_box
from engine.observe.track import select_subject, track_and_select, track_people

W, H = 1280, 720
_TEMPLATE = np.random.default_rng(0).uniform([-0.25, -0.5], [0.25, 0.5], (33, 2))


def _person(cx, cy, h):
    kp = np.zeros((33, 3), np.float32)
    kp[:, :2] = np.array([cx, cy]) + _TEMPLATE * h
    kp[:, 2] = 0.9
    return kp


def make_detections(T, people, fps=30.0):
    """people: list of (appearance vector, fn(t) → (cx, cy, h) or None)."""
    rows = []
    for t in range(T):
        for app, path in people:
            p = path(t)
            if p is not None:
                rows.append((t, _person(*p), app))
    N = len(rows)
    kp = np.array([r[1] for r in rows], np.float32).reshape(N, 33, 3)
    return Detections(
        frame_index=np.arange(T), timestamps=np.arange(T) / fps,
        homographies=np.repeat(np.eye(3)[None], T, 0), frame_size=(W, H), fps=fps,
        frame_of=np.array([r[0] for r in rows], np.int64), keypoints=kp,
        world=np.zeros((N, 33, 3), np.float32), masks=np.zeros((N, 9, 16), np.uint8),
        bbox=np.array([keypoint_box(k) for k in kp], np.float32).reshape(N, 4),
        score=np.ones(N, np.float32), appearance=np.array([r[2] for r in rows], np.float32).reshape(N, -1))


RED, GREEN = np.eye(48)[3], np.eye(48)[20]


def test_subject_leaving_the_frame_is_invalid_not_the_other_person():
    walker = (RED, lambda t: (300 + 20 * t, 400, 300) if t < 15 else None)
    other = (RED, lambda t: (1000, 420, 280))   # same colours, in view the whole time
    obs = track_and_select(make_detections(30, [walker, other]), "point", (300, 400), 0)
    assert obs.valid[:15].all() and not obs.valid[15:].any()
    assert np.nanmax(obs.bbox[:, 2]) < 800


def test_reappearing_subject_is_stitched_only_when_plausible():
    gap = lambda t: (300 + 5 * t, 400, 300) if not 10 <= t < 16 else None
    same = make_detections(30, [(RED, gap)])
    assert track_and_select(same).valid.sum() == 24             # bridged the occlusion
    # someone else (other colours) appears where the subject vanished: a new track, not the subject
    a = (RED, lambda t: (300, 400, 300) if t < 10 else None)
    b = (GREEN, lambda t: (320, 400, 300) if t >= 14 else None)
    obs = track_and_select(make_detections(30, [a, b]), "point", (300, 400), 0)
    assert obs.valid[:10].all() and not obs.valid[10:].any()
    # and a far-away person of the same colours does not continue the subject either
    c = (RED, lambda t: (1150, 400, 300) if t >= 12 else None)
    obs = track_and_select(make_detections(30, [a, c]), "point", (300, 400), 0)
    assert not obs.valid[10:].any()


def test_a_running_subject_is_stitched_across_a_one_second_gap():
    """Behind an occluder for 1 s while running ~3.5 m/s (2 body heights/s): still the subject."""
    run = (RED, lambda t: (80 + 20 * t, 450, 300) if not 10 <= t < 40 else None)
    other = (GREEN, lambda t: (640, 150, 200))
    obs = track_and_select(make_detections(60, [run, other]), "point", (80, 450), 0)
    assert obs.valid.sum() == 30
    assert np.nanmin(0.5 * (obs.bbox[:, 1] + obs.bbox[:, 3])) > 400    # never the other person


def test_a_box_that_changes_size_links_the_same_both_ways_in_time():
    """A stretched mid-air box (700 px) then, 7 frames later, the crouched landing (150 px):
    one track whether the clip plays forward or backward (a looped clip plays it both ways)."""
    landing = lambda t: (600, 420, 700) if t < 10 else None if t < 17 else (600, 700, 150)
    for path in (landing, lambda t: landing(26 - t)):
        tid = track_people(make_detections(27, [(RED, path)]))
        assert tid.tolist() == [0] * 20, tid


def _pingpong(dets, loops):
    """The clip's detections played forward, backward, forward … (a long clip, as
    ``training.bench.speed --make-clip`` writes)."""
    order = np.concatenate([np.arange(dets.num_frames)[::(-1) ** k] for k in range(loops)])
    rows, frame_of = [], []
    for k, f in enumerate(order):
        idx = np.flatnonzero(dets.frame_of == f)
        rows.extend(idx)
        frame_of.extend([k] * len(idx))
    rows, n = np.array(rows), len(order)
    arr = {k: v[rows] for k, v in dets.arrays().items() if k in ("keypoints", "world", "masks", "bbox", "score", "appearance")}
    return Detections(frame_index=np.arange(n), timestamps=np.arange(n) / dets.fps,
                      homographies=np.repeat(np.eye(3)[None], n, 0), frame_size=dets.frame_size, fps=dets.fps,
                      frame_of=np.array(frame_of, np.int64), **arr)


def test_crossing_people_keep_their_identity():
    a = (RED, lambda t: (200 + 30 * t, 400, 300))
    b = (GREEN, lambda t: (1100 - 30 * t, 380, 280))
    obs = track_and_select(make_detections(30, [a, b]), "point", (200, 400), 0)
    c = np.nanmean(obs.bbox[:, [0, 2]], 1)
    assert obs.valid.all() and np.all(np.diff(c) > 0)           # always the one moving right


def test_selection_rules_and_duplicates():
    big = (RED, lambda t: (300, 400, 420))
    central = (GREEN, lambda t: (640, 360, 250))
    dets = make_detections(10, [big, central, big])             # `big` detected twice per frame
    tid = track_people(dets)
    assert len(set(tid[tid >= 0])) == 2                         # the duplicate is suppressed
    x = lambda s, **kw: np.nanmean(track_and_select(dets, s, **kw).bbox[:, 0] + 0)
    assert x("largest") < 300 and x("central") > 400
    assert x("point", subject_point=(640, 360), subject_frame=5) > 400
    t_central = select_subject(dets, tid, "central")
    assert select_subject(dets, tid, f"track:{t_central}") == t_central == select_subject(dets, tid, t_central)
    with pytest.raises(EngineError, match="no person at"):
        select_subject(dets, tid, "point", (1200, 50), 3)
    with pytest.raises(EngineError, match="unknown subject rule"):
        select_subject(dets, tid, "tallest")
    with pytest.raises(EngineError, match="no track 9"):
        select_subject(dets, tid, 9)


def test_one_frame():
    obs = track_and_select(make_detections(1, [(RED, lambda t: (300, 400, 300))]))
    assert obs.valid.tolist() == [True]


# --- the real clip: a jumper on a box and a walker on the grass (~170: MediaPipe's single-person
# solution jumps from one to the other). The detections are cached for the session.

MAX_JUMP = 0.15  # of the frame's longer side, between consecutive valid frames
GAP_SPEED = 0.5  # extra allowance across a detection gap: frame widths per second (a sprint)


@pytest.fixture(scope="module")
def demo_detections():
    from engine.pipeline import detect
    return detect(DEMO_VIDEO)[0]


def _jumps(obs):
    """Box-centre jump between consecutive valid frames as a share of its allowance (< 1 is ok):
    MAX_JUMP for adjacent frames, plus GAP_SPEED × the missing time across a gap."""
    v = np.flatnonzero(obs.valid)
    c = 0.5 * (obs.bbox[v, :2] + obs.bbox[v, 2:])
    jump = np.linalg.norm(np.diff(c, axis=0), axis=1) / max(obs.frame_size)
    missing_s = (np.diff(obs.frame_index[v]) - 1) / obs.fps
    return jump / (MAX_JUMP + GAP_SPEED * missing_s)


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["largest", "point"])
def test_demo_subject_keeps_one_identity(demo_detections, rule):
    # "point": the walker, clicked on frame 120 (she is at about (830, 745) px)
    obs = track_and_select(demo_detections, rule, (830, 745) if rule == "point" else None, 120)
    assert len(set(obs.track_id[obs.valid])) == 1
    assert obs.valid.sum() >= 120, obs.valid.sum()
    assert _jumps(obs).max() < 1.0, _jumps(obs).max()
    c = 0.5 * (obs.bbox[obs.valid, :2] + obs.bbox[obs.valid, 2:]) / obs.frame_size
    f = obs.frame_index[obs.valid]
    if rule == "largest":   # the jumper: on the box (upper part of the frame) until his back-flip
        assert np.all(c[f < 165, 1] < 0.55)
        # lost mid-flip (~169–185), he lands on the grass right of the box and is re-linked;
        # the walker is at the far left by then, so a switch would show here
        assert (f > 185).sum() >= 20 and np.all(c[f > 185, 0] > 0.5)
    else:                   # the walker stays on the grass and leaves on the left (~frame 200):
        assert np.all(c[:, 1] > 0.55)           # never the jumper, before or after
        last = obs.frame_index[obs.valid][-1]
        assert 190 <= last <= 210 and not obs.valid[obs.frame_index > last].any()


@pytest.mark.slow
def test_long_looped_demo_keeps_the_subject(demo_detections):
    """Played forward/backward 6 times, the jumper is kept in every pass (each reversal
    re-enters his back-flip gap from the other side), not only in the longest piece."""
    one = track_and_select(demo_detections, "largest").valid.sum()
    obs = track_and_select(_pingpong(demo_detections, 6), "largest")
    assert obs.valid.sum() >= 0.95 * 6 * one, (obs.valid.sum(), one)
    assert _jumps(obs).max() < 1.0
