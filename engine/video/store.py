"""Decoded frames kept in memory between the passes over one clip.

The survey decodes every frame of the clip (a compressed stream cannot skip a frame's decoding,
only its colour conversion); the follow pass used to decode the clip again, in two halves (the
second from a seek, which decodes from the key frame before it), and gap recovery a third time
around each gap. A ``FrameStore`` keeps what the survey decoded, up to a memory budget, and
hands the same arrays to the later passes, so their results are the same as when they decode.
Frames past the budget are decoded again as before. Consumers must not write into the frames
they are given (the passes crop and convert copies).

The budget (our choice): ``MOCAP_FRAME_MEMORY_MB`` when set (0 turns the store off), else an
eighth of the machine's memory, at most 1.5 GiB — the demo clip at its full 1768×994 is
1.2 GiB of frames. A clip whose frames do not all fit keeps none (its passes decode as before).
A batch's local worker processes each get an equal share of it (``engine.distributed``).
"""
import mmap
import os
import threading

import numpy as np

from ..errors import EngineError
from .decode import iter_frames, open_video, processing_scale

MAX_BUDGET_MB = 1536


def memory_budget():
    """Bytes the store may hold (see the module doc)."""
    env = os.environ.get("MOCAP_FRAME_MEMORY_MB")
    if env not in (None, ""):
        try:
            mb = float(env)
        except ValueError:
            mb = -1.0
        if not mb >= 0:
            raise EngineError(f"MOCAP_FRAME_MEMORY_MB must be a number of megabytes ≥ 0 (got {env!r})")
        return int(mb * 2 ** 20)
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): a laptop's eighth
        physical = 8 * 2 ** 30
    return int(min(MAX_BUDGET_MB * 2 ** 20, physical / 8))


def _wanted(first, last, stride, only):
    return lambda i: (i - first) % stride == 0 and (last is None or i < last) and (only is None or i in only)


class FrameStore:
    """The frames one pass decoded (``keeping``), handed again to later passes (``frames``).

    Frames are kept from the first one on while they fit the budget; once one does not (a clip
    longer than it declared), no later frame is kept: what is stored is one run from the start
    of the filling pass."""

    def __init__(self, budget_bytes=None):
        self.budget = memory_budget() if budget_bytes is None else int(budget_bytes)
        self.nbytes = 0
        self._frames = {}
        self._lock = threading.Lock()
        self._spec = None    # (video path, processed size, first, stride) of the filling pass
        self._full = False   # a frame did not fit: nothing after it is kept
        self._end = None     # the filling pass's decoder ran out here: no frame at or past it

    def __len__(self):
        return len(self._frames)

    def keeping(self, items, video_path, max_side=None, first=0, stride=1, last=None):
        """Iterate ``items`` ((index, timestamp, BGR) from ``iter_frames(video_path, (first,
        last), stride, max_side)``, every frame of it) unchanged, keeping each frame that fits.
        When the range's frames would not all fit (``last`` given), none is kept: a long clip
        would keep only its first seconds, which the later passes gain little from, for the
        whole budget. Only one filling pass: a store already filled passes ``items`` through."""
        if self.budget <= 0 or self._spec is not None:
            yield from items
            return
        w, h = _size(_info(video_path), max_side)
        expected = None if last is None else len(range(int(first), int(last), max(1, int(stride))))
        if expected is not None and expected * w * h * 3 > self.budget:
            yield from items
            return
        self._spec = (os.path.realpath(video_path), (w, h), int(first), max(1, int(stride)))
        prev, slab, used = None, None, 0
        for item in items:
            i, ts, bgr = item
            if not self._full and self.nbytes + bgr.nbytes <= self.budget:
                if slab is None or used + bgr.nbytes > len(slab):
                    frames = SLAB_FRAMES if expected is None else max(1, min(SLAB_FRAMES, expected - len(self._frames)))
                    slab = _slab(min(frames * bgr.nbytes, self.budget - self.nbytes))
                    used = 0
                kept = slab[used:used + bgr.nbytes].reshape(bgr.shape)
                np.copyto(kept, bgr)
                used += bgr.nbytes
                with self._lock:
                    self._frames[int(i)] = (ts, kept)
                    self.nbytes += bgr.nbytes
            else:
                self._full = True
            prev = int(i)
            yield item
        if prev is not None and (last is None or prev + self._spec[3] < int(last)):
            self._end = prev + 1  # the decoder stopped before the range's end: the clip ends here

    def holds(self, video_path, max_side=None):
        """True when the stored frames are this clip's at this processing size."""
        if self._spec is None or not self._frames:
            return False
        info = _info(video_path)
        return self._spec[:2] == (os.path.realpath(video_path), _size(info, max_side))

    def frames(self, video_path, frame_range=None, stride=1, max_side=None, only=None):
        """``iter_frames(video_path, frame_range, stride, max_side, only)``'s frames: the stored
        ones from memory, the decoder started at the first one that is not stored."""
        first, last = frame_range or (0, None)
        first, stride = int(first or 0), max(1, int(stride or 1))
        if not self.holds(video_path, max_side) or (stride % self._spec[3]) or \
                (first - self._spec[2]) % self._spec[3]:
            yield from iter_frames(video_path, frame_range, stride, max_side, only)
            return
        want = _wanted(first, last, stride, only)
        i = first
        while last is None or i < last:
            if self._end is not None and i >= self._end:
                return
            got = self._frames.get(i)
            if got is None:
                break
            if want(i):
                yield (i, got[0], got[1])
            i += stride
        else:
            return
        if self._end is not None and i >= self._end:
            return
        yield from iter_frames(video_path, (i, last), stride, max_side, only)


SLAB_FRAMES = 32  # frames per block of memory


def _slab(nbytes):
    """``nbytes`` of anonymous memory as a uint8 array, outside numpy's allocator: numpy asks
    the kernel for huge pages on large arrays, and where the kernel then defragments memory at
    page faults, filling the store through numpy arrays took about three times the system time
    (measured on the 2-core Linux machine; our choice of blocks of ``SLAB_FRAMES`` frames).
    On Linux the block's pages are made at once (``MAP_POPULATE``), cheaper than a page fault
    per 4 KiB as the frames are written; blocks are sized to the frames still expected."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS if hasattr(mmap, "MAP_ANONYMOUS") else None
    if flags is None:  # Windows
        return np.frombuffer(mmap.mmap(-1, max(1, int(nbytes))), np.uint8)
    return np.frombuffer(mmap.mmap(-1, max(1, int(nbytes)), flags=flags | getattr(mmap, "MAP_POPULATE", 0)),
                         np.uint8)


_INFOS = {}


def _info(video_path):
    """A clip's VideoInfo, read once per path, size and modification time in a process."""
    st = os.stat(video_path)
    key = (os.path.realpath(video_path), st.st_size, st.st_mtime_ns)
    if key not in _INFOS:
        cap, info = open_video(video_path)
        cap.release()
        _INFOS[key] = info
    return _INFOS[key]


def _size(info, max_side):
    s = processing_scale(info.width, info.height, max_side)
    return max(1, round(info.width * s)), max(1, round(info.height * s))
