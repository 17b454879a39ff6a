"""BLAS and OpenCV on one thread each while the engine works.

The engine spreads its work over the cores itself (a pass in two halves, a decoder thread beside
each landmarker), and the libraries' own thread pools only compete with it: OpenBLAS's threads
busy-wait with ``sched_yield`` after each small call (75×75 solves, 3×3 rotations), and OpenCV's
``parallel_for`` splits a mask resize or the 640-px optical flow over cores that both landmarkers
are using (``py-spy`` showed the follow pass's threads inside opencv's resizes). Measured on the
2-core machine on 2026-12-07 (docs/performance.md): BLAS's limit saved ~4 CPU-s of 26 on the
demo, OpenCV's about 0.6 CPU-s more; the demo's Motion is the same to the bit either way. Without
threadpoolctl the BLAS limit is skipped. OpenCV's setting is process-wide: it is set and restored
around the block, so a nested block leaves what the outer one set.
"""
import functools
from contextlib import ExitStack, contextmanager


@contextmanager
def one_library_thread():
    """A context manager: BLAS (OpenBLAS, MKL, …) and OpenCV limited to one thread inside the block."""
    import cv2
    with ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        before = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            yield
        finally:
            cv2.setNumThreads(before)


def on_one_library_thread(function):
    """``function`` run inside ``one_library_thread()``."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with one_library_thread():
            return function(*args, **kwargs)
    return wrapped
