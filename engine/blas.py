"""BLAS on one thread while the engine works.

The engine's linear algebra is small (75×75 solves, 3×3 rotations, a few thousand rows), where
OpenBLAS's extra threads cost more than they give: after each call they busy-wait with
``sched_yield`` for work that rarely comes, and on a 2-core machine that spinning takes a core
the landmarkers and the decoder need (measured with ``perf`` on 2026-12-07, the 2-core machine:
docs/performance.md). Limiting
BLAS to one thread leaves the results unchanged to the bit on the demo clip. Without
threadpoolctl the block runs as it is.
"""
import functools
from contextlib import nullcontext


def one_blas_thread():
    """A context manager: BLAS (OpenBLAS, MKL, …) limited to one thread inside the block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def on_one_blas_thread(function):
    """``function`` run inside ``one_blas_thread()``."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with one_blas_thread():
            return function(*args, **kwargs)
    return wrapped
