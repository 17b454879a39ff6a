"""A per-frame pass over a clip run as two halves in two threads, one per core.

A MediaPipe landmarker uses about one core's worth of time, so on a 2-core laptop a single pass
leaves part of the second core idle; two halves, each with its own decoder, landmarker and
state, use it (docs/performance.md: what that gains where the machine is already busy). Each
half starts as a pass starts on its first frame, so results near the boundary differ from one
pass by what a fresh landmarker does differently there; the callers choose a boundary where
that is harmless.
"""
import os
import threading


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parallel_halves(frames, fps, min_half_s=2.0):
    """True when a pass over ``frames`` frames is worth splitting: two cores or more and halves
    of at least ``min_half_s`` (a second landmarker's set-up must pay for itself)."""
    return cores() >= 2 and frames >= 2 * min_half_s * max(float(fps), 1.0)


class _Stopped(Exception):
    """Raised in the second half's thread when the first half has failed or was cancelled."""


def run_beside(first, second, progress=None, poll_s=0.1):
    """Run ``first(report)`` in this thread and ``second(report)`` in a new one → (first's
    result, second's).

    Each half calls its ``report(n)`` with the frames it has done. The caller's ``progress(n)``
    (frames done by both) is only ever called from this thread — it may be a UI callback, and it
    may raise to cancel: then the second half is stopped at its next frame and the exception
    propagates here. An exception in the second half stops the first at its next frame and is
    raised here.
    """
    done = [0, 0]
    stop = threading.Event()
    box = {}

    def report_first(n):
        done[0] = int(n)
        if "error" in box:
            raise box["error"]
        if progress is not None:
            progress(done[0] + done[1])

    def report_second(n):
        done[1] = int(n)
        if stop.is_set():
            raise _Stopped()

    def work():
        try:
            box["result"] = second(report_second)
        except BaseException as exc:  # handed to this thread
            box["error"] = exc

    th = threading.Thread(target=work, name="second-half", daemon=True)
    th.start()
    try:
        a = first(report_first)
        while th.is_alive():
            th.join(poll_s)
            if progress is not None and th.is_alive():
                progress(done[0] + done[1])
    except BaseException:
        stop.set()
        th.join()
        raise
    if "error" in box:
        raise box["error"]
    if progress is not None:
        progress(done[0] + done[1])
    return a, box["result"]
