"""The tiled person search: window geometry, cut landmarks and the merge (fast, synthetic), and
on the composite clips (tests/data/composites) that the tiles find people the full frame misses."""
import json
from pathlib import Path

import numpy as np
import pytest

from engine.observe.tiles import (merge, place_mask, point_windows, tile_windows, to_frame, uncut,
                                  window_starts, windows_near)
from engine.observe.track import iou_matrix
from engine.observe.types import FrameObservation, keypoint_box, mask_size

COMPOSITES = Path(__file__).parent / "data" / "composites"
_TEMPLATE = np.random.default_rng(1).uniform([-0.2, -0.5], [0.2, 0.5], (33, 2))


def _cover(windows, W, H):
    hit = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in windows:
        hit[y0:y1, x0:x1] = True
    return hit.all()


def test_windows_cover_the_frame_and_overlap():
    W, H = 1768, 994
    wins = tile_windows(W, H, scales=(1, 2), overlap=0.25)
    for s in (1, 2):
        side = round(H / s)
        level = [w for w in wins if w[2] - w[0] == side]
        assert level and all(w[3] - w[1] == side for w in level)  # square
        assert _cover(level, W, H)
        xs = sorted({w[0] for w in level})
        assert all(b - a <= 0.75 * side + 1 for a, b in zip(xs, xs[1:]))  # overlap ≥ 25 %
    assert (0, 0, W, H) not in wins


def test_a_wide_strip_is_cut_into_tiles_of_its_height():
    wins = tile_windows(1768, 496, scales=(1,))
    assert len(wins) >= 4 and all(w[1] == 0 and w[3] == 496 and w[2] - w[0] == 496 for w in wins)
    assert window_starts(100, 200, 0.25) == [0]
    assert tile_windows(200, 100, scales=(4,)) == []  # below the smallest tile


def test_only_inner_tile_edges_cut():
    W, H = 1000, 500
    win = (0, 0, 500, 500)  # left, top and bottom edges on the frame border; the right one inside
    xy = np.array([[2, 2], [499, 250], [480, 250], [510, 250], [250, 499]], float)
    np.testing.assert_array_equal(uncut(xy, win, (W, H)), [True, False, True, False, True])


def test_place_mask_puts_the_tile_into_the_frame_mask():
    W, H = 1600, 800
    seg = np.ones((400, 400), np.float32)
    m = place_mask(seg, (800, 400, 1200, 800), (W, H))
    mw, mh = mask_size(W, H)
    assert m.shape == (mh, mw)
    ys, xs = np.nonzero(m > 127)
    assert xs.min() == 80 and xs.max() == 119 and ys.min() == 40 and ys.max() == 79


def _found(cx, cy, h, window, vis=0.9):
    """A detector's tuple for a person at (cx, cy) px in the frame, as ``window`` would see it."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, :2] = np.array([cx, cy]) + _TEMPLATE * h - window[:2]
    kp[:, 2] = vis
    return kp, np.zeros((33, 3), np.float32), np.zeros((8, 8), np.float32), 0.9


def test_a_half_body_cut_by_a_tile_edge_gives_way_to_the_whole_one():
    W, H = 1200, 600
    whole = to_frame(_found(500, 300, 400, (200, 0, 800, 600)), (200, 0, 800, 600), (W, H))
    # the same person seen by a tile whose bottom edge (y = 350) cuts the legs; its landmarks
    # are even a little more confident there
    tile = (300, 50, 600, 350)
    half = to_frame(_found(500, 300, 400, tile, vis=0.99), tile, (W, H))
    assert whole[1] == 0 and half[1] > 5
    assert half[0].bbox[3] <= 350
    other = to_frame(_found(1000, 300, 380, (600, 0, 1200, 600)), (600, 0, 1200, 600), (W, H))
    kept = merge([half, whole, other])
    assert len(kept) == 2
    assert any(ob is whole[0] for ob in kept) and all(ob is not half[0] for ob in kept)


def test_merge_keeps_two_people_side_by_side_and_drops_slivers():
    W, H = 1200, 600
    full = (0, 0, W, H)
    a = to_frame(_found(400, 300, 400, full), full, (W, H))
    b = to_frame(_found(700, 300, 400, full), full, (W, H))
    sliver = to_frame(_found(400, 300, 400, full, vis=0.2), full, (W, H))
    assert len(merge([a, b, sliver])) == 2


def _person(box):
    return FrameObservation(np.zeros((33, 3), np.float32), np.zeros((33, 3), np.float32), None,
                            bbox=np.asarray(box, np.float64))


def test_windows_near_keep_the_tiles_that_hold_the_person():
    W, H = 1768, 994
    wins = tile_windows(W, H)
    near = windows_near([_person((575, 79, 726, 485))], wins)
    assert 0 < len(near) < len(wins) / 2
    for x0, y0, x1, y1 in near:  # each holds at least half of the (grown) box
        assert x0 < 650 < x1 and y0 < 282 < y1
    assert windows_near([], wins) == []
    # two people far apart: the tiles of each
    both = windows_near([_person((575, 79, 726, 485)), _person((1500, 600, 1560, 760))], wins)
    assert set(near) < set(both) and any(x1 == W for _, _, x1, _ in both)


class _CountingTiles:
    """A MultiPoseImageDetector stand-in: records each window it is given and "finds" the person
    painted white into the frame when the whole patch lies inside that window."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        ys, xs = np.nonzero(rgb[..., 0])
        H, W = rgb.shape[:2]
        if not len(xs) or xs.min() == 0 or ys.min() == 0 or xs.max() == W - 1 or ys.max() == H - 1:
            return []
        kp = np.zeros((33, 3), np.float32)
        kp[:, 0] = np.linspace(xs.min(), xs.max(), 33)
        kp[:, 1] = np.linspace(ys.min(), ys.max(), 33)
        kp[:, 2] = 0.9
        return [(kp, np.zeros((33, 3), np.float32), np.zeros((H, W), np.float32), 0.9)]

    def close(self):
        pass


def test_the_tiled_survey_searches_all_tiles_only_every_few_frames():
    from engine.observe.follow import TiledSearch
    search = TiledSearch.__new__(TiledSearch)  # without MediaPipe: the counting stand-in
    search._tiles, search.full_every, search._seen, search._near = _CountingTiles(), 3, 0, None
    per_frame = []
    for t in range(7):
        rgb = np.zeros((994, 1768, 3), np.uint8)
        rgb[300:700, 200 + 5 * t:300 + 5 * t] = 255  # a person walking slowly to the right
        before = search._tiles.calls
        found = search.detect_all(rgb, t / 30)
        per_frame.append(search._tiles.calls - before)
        assert len(found) == 1 and abs(found[0].bbox[[0, 2]].mean() - (250 + 5 * t)) < 2  # found on every frame
    every = 1 + len(tile_windows(1768, 994))
    assert per_frame[0] == per_frame[3] == per_frame[6] == every
    assert all(1 < per_frame[t] < every / 2 for t in (1, 2, 4, 5))


def test_point_windows_stay_inside_the_frame():
    wins = point_windows((10, 590), 1200, 600, sizes=(0.5, 1.0))
    assert wins == [(0, 300, 300, 600), (0, 0, 600, 600)]


# ---------------------------------------------------------------- on the composite clips
def _clip(name, t):
    import cv2

    from engine.video.decode import iter_frames
    path = COMPOSITES / f"{name}.mp4"
    if not path.is_file():
        pytest.skip(f"needs {path} (made by scripts/make_composites.py)")
    meta = json.loads((COMPOSITES / f"{name}.json").read_text())
    (_, _, bgr), = list(iter_frames(path, (t, t + 1)))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), meta["per_frame"][t]["people"]


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("mediapipe", reason="the tiled search runs MediaPipe's PoseLandmarker")
    from engine.observe.tiles import MultiPoseImageDetector
    d = MultiPoseImageDetector()
    yield d
    d.close()


def _full_frame_count(rgb, frames=3):
    """People the product's full-frame landmarker (VIDEO mode, 4 poses) finds, most over a few calls."""
    from engine.observe.landmarker import MediaPipePoseLandmarker
    lm = MediaPipePoseLandmarker(num_poses=4)
    try:
        return max(len(lm.detect_all(rgb, k / 30.0)) for k in range(frames))
    finally:
        lm.close()


def _matched(found, truth, min_iou=0.5):
    """Per ground-truth person: the found observation with the best IoU ≥ ``min_iou``, or None."""
    if not found:
        return [None] * len(truth)
    ious = iou_matrix(np.array([p["visible_box"] for p in truth], float), np.stack([o.bbox for o in found]))
    return [found[int(np.argmax(r))] if r.max() >= min_iou else None for r in ious]


def _inside(kp, box, grow=0.1):
    x0, y0, x1, y1 = box
    g = grow * (y1 - y0)
    vis = kp[:, 2] > 0.5
    xy = kp[vis, :2]
    return np.mean((xy[:, 0] >= x0 - g) & (xy[:, 0] <= x1 + g) & (xy[:, 1] >= y0 - g) & (xy[:, 1] <= y1 + g))


@pytest.mark.parametrize("name,t,n", [("pair_side_by_side", 30, 2), ("strip4", 30, 4)])
def test_find_people_finds_everyone_the_full_frame_misses(detector, name, t, n):
    from engine.observe.tiles import find_people
    rgb, truth = _clip(name, t)
    assert len(truth) == n
    found = find_people(rgb, detector)
    match = _matched(found, truth)
    assert all(m is not None for m in match), ([p["visible_box"] for p in truth], [o.bbox for o in found])
    assert len({id(m) for m in match}) == n  # one detection per person
    for m, p in zip(match, truth):
        assert _inside(m.keypoints, p["visible_box"]) >= 0.9  # each on its own person
        assert m.mask.shape == mask_size(rgb.shape[1], rgb.shape[0])[::-1]
    assert _full_frame_count(rgb) < n  # the tiles are what finds them


def test_find_near_point_returns_the_person_at_the_point(detector):
    from engine.observe.tiles import find_near_point
    rgb, truth = _clip("strip4", 10)
    for p in (truth[1], truth[2]):
        x0, y0, x1, y1 = p["visible_box"]
        ob = find_near_point(rgb, ((x0 + x1) / 2, y0 + 0.4 * (y1 - y0)), detector)
        assert ob is not None
        assert iou_matrix(ob.bbox, p["visible_box"])[0, 0] >= 0.5
        assert _inside(ob.keypoints, p["visible_box"]) >= 0.9
    assert find_near_point(rgb, (5.0, 5.0), detector) is None  # the sky corner: nobody
    with pytest.raises(ValueError):
        find_near_point(rgb, (-1.0, 5.0), detector)


def test_a_first_window_with_nobody_leaves_the_next_calls_start_up_lines_off_the_terminal(capfd):
    """mediapipe 1.x logs a landmark-projection warning on the first call that finds a person;
    when the first window holds nobody, that is the second call, which must be quiet too."""
    pytest.importorskip("mediapipe", reason="the tiled search runs MediaPipe's PoseLandmarker")
    import cv2
    from conftest import DEMO_VIDEO
    from engine.observe.tiles import MultiPoseImageDetector
    from engine.video.decode import iter_frames
    frame = next(iter(iter_frames(DEMO_VIDEO, (0, 1))))[2]
    person = np.ascontiguousarray(cv2.cvtColor(frame[0:994, 387:1381], cv2.COLOR_BGR2RGB))
    d = MultiPoseImageDetector()   # a fresh graph: its first calls are the ones that log
    try:
        capfd.readouterr()
        assert d(np.zeros((400, 400, 3), np.uint8)) == []
        assert len(d(person)) == 1 and len(d(person)) == 1
    finally:
        d.close()
    err = capfd.readouterr().err
    assert not [ln for ln in err.splitlines() if ln.strip()], err
