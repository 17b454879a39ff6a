"""Gap recovery on rotated crops: exact coordinate mapping, gap finding, and the demo's back-flip."""
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.observe.redetect import gaps, inward_order, search_region, unrotate_points, unrotate_vectors


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


def test_inward_order_walks_from_each_bounded_edge():
    assert inward_order(3, 7, True, True) == ([3, 4, 5, 6], [6, 5, 4, 3])
    assert inward_order(0, 3, False, True) == ([], [2, 1, 0])
    assert inward_order(5, 8, True, False) == ([5, 6, 7], [])


def _gappy_observations(valid, frame_size=(1768, 994)):
    from engine.observe.types import NUM_LANDMARKS, Observations, mask_size
    T = len(valid)
    mw, mh = mask_size(*frame_size)
    box = np.where(np.asarray(valid)[:, None], [[700.0, 600.0, 900.0, 950.0]], np.nan).astype(np.float32)
    return Observations(keypoints=np.full((T, NUM_LANDMARKS, 3), np.nan, np.float32),
                        world=np.full((T, NUM_LANDMARKS, 3), np.nan, np.float32),
                        masks=np.zeros((T, mh, mw), np.uint8), valid=np.asarray(valid, bool),
                        timestamps=np.arange(T) / 30.0, frame_size=frame_size, fps=30.0, bbox=box,
                        track_id=np.where(valid, 0, -1), frame_index=np.arange(T))


class _CountingDetector:
    """Finds a person (a fixed upright pose in the crop's middle) only in the crops numbered in
    ``hits`` (1 = the first crop searched), upright; counts its calls and the crops searched."""

    def __init__(self, hits=()):
        self.calls, self.crops, self.hits = 0, 0, set(hits)

    def __call__(self, rgb):
        from engine.observe.redetect import ANGLES
        if self.calls % len(ANGLES) == 0:   # each crop is tried at every turn unless found
            self.crops += 1
        self.calls += 1
        if self.crops not in self.hits:
            return None
        self.calls += len(ANGLES) - 1 - (self.calls - 1) % len(ANGLES)  # found: no more turns
        h, w = rgb.shape[:2]
        kp = np.zeros((33, 3), np.float32)
        kp[:, 0] = np.linspace(0.4, 0.6, 33) * w
        kp[:, 1] = np.linspace(0.3, 0.7, 33) * h
        kp[:, 2] = 1.0
        return kp, np.zeros((33, 3), np.float32), np.zeros((h, w), np.float32)

    def close(self):
        pass


def test_a_detection_whose_mask_covers_the_background_is_not_the_subject():
    from engine.observe.redetect import detect_in_crop

    def detector(mask_fraction):
        def find(rgb):
            h, w = rgb.shape[:2]
            kp = np.zeros((33, 3), np.float32)
            kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(0.4, 0.6, 33) * w, np.linspace(0.3, 0.7, 33) * h, 1.0
            seg = np.zeros((h, w), np.float32)
            seg[:int(mask_fraction * h)] = 1.0                   # that share of the crop's rows
            return kp, np.zeros((33, 3), np.float32), seg
        return find

    crop = np.zeros((200, 200, 3), np.uint8)                     # 40,000 px; the person 80 px tall
    assert detect_in_crop(crop, (0, 0), 80.0, detector(0.2), max_mask_px=10000) is not None  # 8,000 px
    assert detect_in_crop(crop, (0, 0), 80.0, detector(0.9), max_mask_px=10000) is None      # 36,000 px
    assert detect_in_crop(crop, (0, 0), 80.0, detector(0.9)) is not None                     # no bound


def test_recovery_stops_each_side_at_its_first_miss():
    from engine.observe.redetect import recover_gaps
    valid = np.ones(40, bool)
    valid[10:20] = False   # bounded on both sides
    valid[35:] = False     # bounded before only
    obs = _gappy_observations(valid)
    det = _CountingDetector()   # nobody is ever found
    assert recover_gaps(DEMO_VIDEO, obs, detector=det) == 0
    # one frame per bounded side, each tried at the four turns: 2 sides + 1 side
    assert det.calls == 3 * 4, det.calls
    # found on the first two crops of the first gap's forward walk (frames 10, 11), then a miss
    obs = _gappy_observations(valid)
    det = _CountingDetector(hits={1, 2})
    assert recover_gaps(DEMO_VIDEO, obs, detector=det) == 2
    assert obs.valid[10:12].all() and not obs.valid[12:20].any() and not obs.valid[35:].any()
    assert det.crops == 3 + 1 + 1   # forward 10, 11, 12 (miss); backward 19 (miss); 35 (miss)


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


def test_recovery_searches_a_gap_the_decoder_ends_inside():
    from engine.observe.redetect import recover_gaps
    valid = np.ones(240, bool)      # the demo has 230 frames: 230-238 are never decoded
    valid[225:239] = False
    obs = _gappy_observations(valid)
    det = _CountingDetector(hits={1})
    assert recover_gaps(DEMO_VIDEO, obs, detector=det) == 1
    assert obs.valid[225] and not obs.valid[226:239].any()
    assert det.crops == 2            # 225 (found), 226 (miss); the end side was never decoded


def test_a_gap_frame_the_seek_did_not_land_on_is_never_searched():
    from engine.observe.redetect import recover_gaps
    valid = np.ones(40, bool)
    valid[10:20] = False
    obs = _gappy_observations(valid)
    obs.timestamps[14:20] += 1.0   # as if the decoder's frames 14-19 were 30 frames later
    det = _CountingDetector(hits=range(1, 100))   # anyone searched is found
    assert recover_gaps(DEMO_VIDEO, obs, detector=det) == 4
    assert obs.valid[10:14].all() and not obs.valid[14:20].any()


def test_recovered_frames_come_back_from_the_cache(monkeypatch, tmp_path):
    """A second run over the same observations takes the recovered frames from the cache and
    detects nothing; other observations (one more frame lost) are searched again."""
    from engine.observe import redetect
    monkeypatch.setenv("MOCAP_CACHE_DIR", str(tmp_path))
    valid = np.ones(40, bool)
    valid[10:20] = False
    searched = []

    def fake_recover(video_path, obs, max_gap_s=1.0, progress=None, **_):
        searched.append(int((~obs.valid).sum()))
        obs.keypoints[10:12] = 7.0
        obs.world[10:12] = 0.5
        obs.bbox[10:12] = [1, 2, 3, 4]
        obs.masks[10:12] = 9
        obs.valid[10:12], obs.track_id[10:12] = True, 0
        return 2

    monkeypatch.setattr(redetect, "recover_gaps", fake_recover)
    first = _gappy_observations(valid.copy())
    assert redetect.recover_gaps_cached(DEMO_VIDEO, first) == 2 and searched == [10]
    again = _gappy_observations(valid.copy())
    assert redetect.recover_gaps_cached(DEMO_VIDEO, again) == 2 and searched == [10]  # from the cache
    for name in ("keypoints", "world", "bbox", "masks", "valid", "track_id"):
        assert np.array_equal(getattr(first, name), getattr(again, name), equal_nan=True), name
    other = valid.copy()
    other[25] = False
    assert redetect.recover_gaps_cached(DEMO_VIDEO, _gappy_observations(other)) == 2 and searched == [10, 11]
    renamed = _gappy_observations(valid.copy())
    renamed.track_id[renamed.valid] = 3  # another track: what is filled in differs
    assert redetect.recover_gaps_cached(DEMO_VIDEO, renamed) == 2 and searched == [10, 11, 10]
    off = _gappy_observations(valid.copy())
    assert redetect.recover_gaps_cached(DEMO_VIDEO, off, use_cache=False) == 2 and searched == [10, 11, 10, 10]


def test_the_mediapipe_version_is_read_without_importing_it():
    """The cache keys name the installed MediaPipe; reading that must not cost mediapipe's import
    (a run whose detections all come from the cache never needs it)."""
    import subprocess
    import sys
    code = ("import sys; from engine.observe.landmarker import mediapipe_version_tag; tag = mediapipe_version_tag(); "
            "assert 'mediapipe' not in sys.modules, 'imported'; import mediapipe as mp; "
            "assert tag == ('' if mp.__version__ == '0.10.21' else '-mp' + mp.__version__), tag")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[1]))


class _ContentDetector:
    """Finds a person (the fixed pose of ``_CountingDetector``) in about two crops of three, by
    the crop's pixels alone: the same crop gives the same answer whenever it is searched."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        import hashlib
        self.calls += 1
        if hashlib.sha1(rgb.tobytes()).digest()[0] % 3 == 0:
            return None
        h, w = rgb.shape[:2]
        kp = np.zeros((33, 3), np.float32)
        kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(0.4, 0.6, 33) * w, np.linspace(0.3, 0.7, 33) * h, 1.0
        return kp, np.zeros((33, 3), np.float32), np.zeros((h, w), np.float32)

    def close(self):
        pass


def test_gaps_searched_while_the_rest_is_followed_give_the_same_recovery():
    """``search_final_gaps`` on the first 30 frames searches only the gaps with a valid frame
    after them; ``recover_gaps(searched=…)`` then fills those from it and searches the rest:
    the same frames, keypoints, boxes and masks as one search afterwards."""
    from engine.observe.redetect import recover_gaps, search_final_gaps
    valid = np.ones(40, bool)
    valid[3:9] = False
    valid[14:17] = False
    valid[26:30] = False   # runs to the prefix's end: not final there
    valid[33:37] = False
    alone = _gappy_observations(valid.copy())
    n_alone = recover_gaps(DEMO_VIDEO, alone, detector=_ContentDetector())
    prefix = _gappy_observations(valid[:30].copy())
    early = search_final_gaps(DEMO_VIDEO, prefix, detector=_ContentDetector())
    assert sorted(early) == [(3, 9), (14, 17)]
    rest = _ContentDetector()
    obs = _gappy_observations(valid.copy())
    n = recover_gaps(DEMO_VIDEO, obs, detector=rest, searched=early)
    assert n == n_alone and n > sum(len(v) for v in early.values()) > 0
    for name in ("keypoints", "world", "bbox", "masks", "valid", "track_id"):
        assert np.array_equal(getattr(obs, name), getattr(alone, name), equal_nan=True), name
    again = _ContentDetector()
    recover_gaps(DEMO_VIDEO, _gappy_observations(valid.copy()), detector=again)
    assert 0 < rest.calls < again.calls   # the early gaps were not searched again
