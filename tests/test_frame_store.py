"""The frame store: the later passes get exactly the frames (index, timestamp, pixels) the decoder
would give them, from memory where it holds them and decoded where it does not."""
import cv2
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.errors import EngineError
from engine.video.decode import iter_frames
from engine.video.store import FrameStore, memory_budget


def _clip(path, n=12, w=160, h=96):
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    rng = np.random.default_rng(0)
    for i in range(n):
        f = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.putText(f, str(i), (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        wr.write(f)
    wr.release()
    return path


def _same(a, b):
    a, b = list(a), list(b)
    assert [(i, t) for i, t, _ in a] == [(i, t) for i, t, _ in b]
    assert all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, b))
    return len(a)


def _filled(clip, budget, last=None, stride=1, max_side=None):
    store = FrameStore(budget)
    for _ in store.keeping(iter_frames(clip, (0, last), stride, max_side), clip, max_side, 0, stride, last):
        pass
    return store


@pytest.mark.parametrize("request_", [((0, None), 1, None), ((3, 9), 1, None), ((2, None), 2, None),
                                      ((0, None), 1, {1, 5, 10, 11}), ((4, 40), 1, None)])
def test_stored_frames_are_the_decoders_with_or_without_room_for_all(tmp_path, request_):
    clip = _clip(tmp_path / "c.mp4")
    frame_range, stride, only = request_
    one = 160 * 96 * 3
    for budget, held in ((100 * one, 12), (6 * one, 6), (0, 0)):
        store = _filled(clip, budget)
        assert len(store) == held and store.nbytes == held * one
        n = _same(store.frames(clip, frame_range, stride, None, only),
                  iter_frames(clip, frame_range, stride, None, only))
        assert n > 0


def test_a_clip_whose_frames_do_not_all_fit_keeps_none(tmp_path):
    clip = _clip(tmp_path / "c.mp4")
    one = 160 * 96 * 3
    assert len(_filled(clip, 11 * one, last=12)) == 0
    assert len(_filled(clip, 12 * one, last=12)) == 12
    assert len(_filled(clip, 6 * one, last=12, stride=2)) == 6


def test_a_pass_with_a_stride_is_kept_at_its_stride_and_another_size_is_decoded(tmp_path):
    clip = _clip(tmp_path / "c.mp4")
    store = _filled(clip, 10 ** 8, stride=2)
    assert len(store) == 6 and store.holds(clip) and not store.holds(clip, max_side=80)
    _same(store.frames(clip, (4, None), 2), iter_frames(clip, (4, None), 2))
    _same(store.frames(clip, (3, None), 2), iter_frames(clip, (3, None), 2))  # off the grid: decoded
    _same(store.frames(clip, (0, None), 2, 80), iter_frames(clip, (0, None), 2, 80))


def test_a_clip_shorter_than_the_range_ends_where_the_decoder_ended(tmp_path):
    clip = _clip(tmp_path / "c.mp4", n=8)
    store = _filled(clip, 10 ** 8, last=50)     # a container that declares more than it holds
    assert len(store) == 8
    assert [i for i, _, _ in store.frames(clip, (5, 50))] == [5, 6, 7]


def test_only_one_filling_pass_and_frames_are_copies(tmp_path):
    clip = _clip(tmp_path / "c.mp4")
    store = _filled(clip, 10 ** 8)
    first = next(iter(store.frames(clip)))[2]
    for _, _, f in store.keeping(iter_frames(clip), clip):   # a second pass passes through
        f[:] = 0                                             # and writing into its frames
    assert len(store) == 12 and np.array_equal(next(iter(store.frames(clip)))[2], first)


def test_the_budget_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv("MOCAP_FRAME_MEMORY_MB", "2")
    assert memory_budget() == 2 * 2 ** 20
    monkeypatch.setenv("MOCAP_FRAME_MEMORY_MB", "0")
    assert memory_budget() == 0
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv("MOCAP_FRAME_MEMORY_MB", bad)
        with pytest.raises(EngineError, match="MOCAP_FRAME_MEMORY_MB"):
            memory_budget()
    monkeypatch.delenv("MOCAP_FRAME_MEMORY_MB")
    assert 0 < memory_budget() <= 1536 * 2 ** 20


class _RecordingDetector:
    """Finds nobody; keeps a digest of every crop it is shown."""

    def __init__(self):
        self.seen = []

    def __call__(self, rgb):
        self.seen.append((rgb.shape, hash(rgb.tobytes())))
        return None

    def close(self):
        pass


def test_gap_recovery_searches_the_same_crops_from_the_store(monkeypatch):
    from engine.observe import redetect
    from engine.observe.redetect import recover_gaps
    from test_recover import _gappy_observations
    valid = np.ones(60, bool)
    valid[10:14] = False
    valid[40:45] = False
    store = FrameStore(10 ** 10)
    for _ in store.keeping(iter_frames(DEMO_VIDEO, (0, 50)), DEMO_VIDEO, None, 0, 1, 50):
        pass
    seen = []
    for s in (None, store):
        if s is not None:  # every gap frame is stored: nothing may be decoded
            from engine.video import store as store_module
            for module in (redetect, store_module):
                monkeypatch.setattr(module, "iter_frames", lambda *a, **k: pytest.fail("decoded"))
        det = _RecordingDetector()
        assert recover_gaps(DEMO_VIDEO, _gappy_observations(valid), detector=det, store=s) == 0
        seen.append(det.seen)
    assert len(seen[0]) == 4 * 4 and seen[0] == seen[1]


@pytest.mark.slow
def test_following_from_the_store_gives_the_same_observations(monkeypatch):
    pytest.importorskip("mediapipe", reason="needs mediapipe (the detector)")
    from pathlib import Path
    from engine.observe.follow import observe_video
    clip = Path(__file__).parent / "data" / "composites" / "crossing.mp4"
    store = FrameStore(10 ** 10)
    a, *_ = observe_video(clip, (0, 75), use_cache=False, store=store)
    assert len(store) == 75
    monkeypatch.setenv("MOCAP_FRAME_MEMORY_MB", "0")
    b, *_ = observe_video(clip, (0, 75), use_cache=False)
    for key in ("keypoints", "world", "masks", "valid", "timestamps", "bbox", "homographies", "hidden"):
        assert np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True), key


@pytest.mark.slow
def test_the_frames_are_released_when_the_pass_is_done():
    """In a fresh interpreter (mediapipe's first import happens inside the pass): nothing keeps
    the store alive after the pass returns — mediapipe keeps a traceback from its own import,
    which held the importing pass's frames (and so the decoded frames) for the process's life."""
    pytest.importorskip("mediapipe", reason="needs mediapipe (the detector)")
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    code = """
import gc, weakref, sys
from engine.video.store import FrameStore
from engine.observe.follow import observe_video
store = FrameStore(10 ** 10)
alive = weakref.ref(store)
out = observe_video(sys.argv[1], (0, 75), use_cache=False, store=store)
assert len(store) == 75
del store, out
gc.collect()
print("alive" if alive() is not None else "released")
"""
    clip = root / "tests" / "data" / "composites" / "crossing.mp4"
    r = subprocess.run([sys.executable, "-c", code, str(clip)], cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "released", r.stdout
