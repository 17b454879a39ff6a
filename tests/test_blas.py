"""BLAS on one thread while the engine works (engine.blas): OpenBLAS's idle workers spin on
sched_yield after each small call and take a core the landmarkers need."""
import cv2
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from engine import pipeline
from engine.blas import on_one_blas_thread, one_blas_thread
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


def test_one_blas_thread_inside_the_block_and_restored_after(two_blas_threads):
    with one_blas_thread():
        assert _blas_threads() == [1]
    assert 2 in _blas_threads()

    @on_one_blas_thread
    def seen():
        return _blas_threads()

    assert seen() == [1] and 2 in _blas_threads()


class _RecordingDetector:
    """One 'person' on every frame; records the BLAS thread counts it ran under."""
    cache_key = None

    def __init__(self):
        self.threads = []

    def detect_all(self, rgb, ts):
        self.threads.append(_blas_threads())
        h, w = rgb.shape[:2]
        kp = np.stack([np.linspace(0.3 * w, 0.7 * w, 33), np.linspace(0.2 * h, 0.9 * h, 33),
                       np.full(33, 0.9)], 1).astype(np.float32)
        return [FrameObservation(kp, np.zeros((33, 3), np.float32), np.zeros((h, w), np.uint8), score=0.9)]


def test_the_pipelines_detection_runs_on_one_blas_thread(tmp_path, two_blas_threads):
    clip = tmp_path / "c.mp4"
    wr = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (96, 64))
    for i in range(6):
        wr.write(np.full((64, 96, 3), 40 * i, np.uint8))
    wr.release()
    det = _RecordingDetector()
    dets, _ = pipeline.detect(clip, pipeline.PipelineOptions(use_cache=False), detector=det)
    assert dets.num_frames == 6 and det.threads == [[1]] * 6
    assert 2 in _blas_threads()
