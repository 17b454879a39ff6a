"""Keep MediaPipe's native start-up chatter off the user's terminal, pass everything else through.

MediaPipe 0.10.21's C++ side logs through absl before ``absl::InitializeLog()`` is called, straight
to file descriptor 2: "GPU suport is not available…", "Created TensorFlow Lite XNNPACK delegate",
"Feedback manager requires…", one set per graph and per first inference. GLOG_minloglevel,
TF_CPP_MIN_LOG_LEVEL and absl's Python verbosity do not reach those lines (checked with 0.10.21),
so the calls that print them run with fd 2 captured; afterwards the captured lines that are not
this INFO/WARNING chatter (errors, anything from Python) are written back to stderr.
``MOCAP_NATIVE_LOGS=1`` turns the filter off (for debugging the detector).
"""
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager

_NOISE = re.compile(rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called"
                    rb"|WARNING: Logging before InitGoogle\(\) is written to STDERR"   # mediapipe 1.x
                    rb"|INFO: Created TensorFlow Lite"
                    rb"|[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\])")


def is_noise(line: bytes) -> bool:
    """True for MediaPipe/absl/TFLite INFO and WARNING lines (errors are never noise)."""
    return bool(_NOISE.match(line))


_LOCK = threading.Lock()
_CAPTURE = {"depth": 0, "saved": None, "file": None}


def _start_capture():
    """fd 2 into a temporary file, once for all the blocks in progress (False: no real fd 2)."""
    with _LOCK:
        if _CAPTURE["depth"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no real fd 2 (some embedded consoles)
                return False
            f = tempfile.TemporaryFile()
            os.dup2(f.fileno(), 2)
            _CAPTURE.update(saved=saved, file=f)
        _CAPTURE["depth"] += 1
        return True


def _end_capture():
    """The last block in progress out: fd 2 restored, the captured lines that are not noise
    written to it."""
    with _LOCK:
        _CAPTURE["depth"] -= 1
        if _CAPTURE["depth"] > 0:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        saved, f = _CAPTURE["saved"], _CAPTURE["file"]
        _CAPTURE.update(saved=None, file=None)
        os.dup2(saved, 2)
        os.close(saved)
        with f:
            f.seek(0)
            kept = b"".join(ln for ln in f if not is_noise(ln))
        if kept:
            os.write(2, kept)


@contextmanager
def quiet_native_logs():
    """Run the block with fd 2 captured; re-emit the captured lines that are not noise.

    fd 2 belongs to the process, so blocks running at the same time in several threads (two
    landmarkers starting side by side) share one capture: the first in redirects, the last out
    restores fd 2 and re-emits what was kept — never a block restoring another's redirect."""
    if os.environ.get("MOCAP_NATIVE_LOGS") or not _start_capture():
        yield
        return
    try:
        yield
    finally:
        _end_capture()
