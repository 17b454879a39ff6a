"""Gap recovery on rotated crops: exact coordinate mapping, gap finding, and the demo's back-flip."""
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.observe.redetect import gaps, search_region, unrotate_points, unrotate_vectors


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_unrotate_points_inverts_rot90(k):
    h, w = 40, 60
    img = np.zeros((h, w), np.uint8)
    img[7, 11] = 255  # pixel centre (11.5, 7.5) in continuous coordinates
    rot = np.rot90(img, k)
    y, x = np.argwhere(rot == 255)[0]
    back = unrotate_points(np.array([[x + 0.5, y + 0.5]]), k, w, h)
    np.testing.assert_allclose(back[0], [11.5, 7.5])


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_unrotate_vectors_matches_the_point_map(k):
    h, w = 40, 60
    a, b = np.array([10.0, 5.0]), np.array([30.0, 25.0])
    # the same two points seen in the rotated image, as the detector would report them
    def fwd(p):
        x, y = p
        return {0: (x, y), 1: (y, w - x), 2: (w - x, h - y), 3: (h - y, x)}[k]
    d_rot = np.subtract(fwd(b), fwd(a))
    v = unrotate_vectors(np.array([d_rot[0], d_rot[1], 0.7]), k)
    np.testing.assert_allclose(v[:2], b - a, atol=1e-9)
    assert v[2] == 0.7


def test_gaps_are_short_and_bounded():
    v = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0], bool)
    assert gaps(v, 3) == [(0, 2), (4, 7), (14, 15)]
    assert gaps(np.zeros(5, bool), 3) == []


def test_search_region_is_square_and_clipped():
    r = search_region(np.array([100, 100, 200, 300.0]), None, 1000, 320, expand=0.5)
    assert r == (0, 0, 350, 320)  # a 400 px square around (150, 200), clipped to the frame


@pytest.mark.slow
def test_demo_back_flip_frames_recovered_without_switching_person():
    from engine.pipeline import PipelineOptions, detect
    from engine.observe.redetect import recover_gaps
    from engine.observe.track import track_and_select, track_people
    dets, _ = detect(DEMO_VIDEO, PipelineOptions())
    obs = track_and_select(dets)
    before = obs.valid.copy()
    n = recover_gaps(DEMO_VIDEO, obs)
    assert n >= 10 and obs.valid.sum() == before.sum() + n
    assert obs.valid.mean() >= 0.9, obs.valid.mean()
    # a recovered box never lands on the other person (the walker's own detections)
    tid = track_people(dets)
    other = [t for t in np.unique(tid) if t >= 0 and t != obs.track_id[before][0]]
    new = np.flatnonzero(obs.valid & ~before)
    for t in new:
        d = np.flatnonzero((dets.frame_of == t) & np.isin(tid, other))
        for i in d:
            a, b = obs.bbox[t], dets.bbox[i]
            iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            assert inter / union < 0.2, (t, a, b)
