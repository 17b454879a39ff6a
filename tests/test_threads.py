"""BLAS and OpenCV on one thread each while the engine works (engine.threads): OpenBLAS's idle
threads spin on sched_yield after each small call, and OpenCV's pool splits small images over
the cores that the engine's own threads use."""
import cv2
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from engine import pipeline
from engine.threads import on_one_library_thread, one_library_thread
from engine.observe import FrameObservation


def _blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


@pytest.fixture
def two_blas_threads():
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):
        if 2 not in _blas_threads():
            pytest.skip("no BLAS here can be set to two threads")
        yield


@pytest.fixture
def two_opencv_threads():
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    yield
    cv2.setNumThreads(before)


def test_one_thread_inside_the_block_and_restored_after(two_blas_threads, two_opencv_threads):
    with one_library_thread():
        assert _blas_threads() == [1] and cv2.getNumThreads() == 1
        with one_library_thread():  # nested: the outer block's setting comes back
            pass
        assert cv2.getNumThreads() == 1
    assert 2 in _blas_threads() and cv2.getNumThreads() == 2

    @on_one_library_thread
    def seen():
        return _blas_threads(), cv2.getNumThreads()

    assert seen() == ([1], 1) and 2 in _blas_threads() and cv2.getNumThreads() == 2


def test_opencv_restored_when_the_block_raises(two_opencv_threads):
    with pytest.raises(RuntimeError):
        with one_library_thread():
            raise RuntimeError("stop")
    assert cv2.getNumThreads() == 2


class _RecordingDetector:
    """One 'person' on every frame; records the BLAS and OpenCV thread counts it ran under."""
    cache_key = None

    def __init__(self):
        self.threads = []

    def detect_all(self, rgb, ts):
        self.threads.append((_blas_threads(), cv2.getNumThreads()))
        h, w = rgb.shape[:2]
        kp = np.stack([np.linspace(0.3 * w, 0.7 * w, 33), np.linspace(0.2 * h, 0.9 * h, 33),
                       np.full(33, 0.9)], 1).astype(np.float32)
        return [FrameObservation(kp, np.zeros((33, 3), np.float32), np.zeros((h, w), np.uint8), score=0.9)]


def test_the_pipelines_detection_runs_on_one_library_thread(tmp_path, two_blas_threads, two_opencv_threads):
    clip = tmp_path / "c.mp4"
    wr = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (96, 64))
    for i in range(6):
        wr.write(np.full((64, 96, 3), 40 * i, np.uint8))
    wr.release()
    det = _RecordingDetector()
    dets, _ = pipeline.detect(clip, pipeline.PipelineOptions(use_cache=False), detector=det)
    assert dets.num_frames == 6 and det.threads == [([1], 1)] * 6
    assert 2 in _blas_threads() and cv2.getNumThreads() == 2
