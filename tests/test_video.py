"""Decoding: rotation metadata, variable frame rate, range/stride/processing size, clear errors.

Test clips are written with opencv (mp4v) and their metadata patched in the MP4 boxes with
plain Python (tkhd display matrix for rotation, stts for variable frame durations), so no
ffmpeg binary is needed.
"""
import struct

import cv2
import numpy as np
import pytest

from engine.errors import EngineError
from engine.video.decode import iter_frames, open_video


def write_clip(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


def _boxes(b, off, end, path=()):
    """Yield (path, offset, size) of MP4 boxes, descending into the track's containers."""
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", b[off:off + 8])
        if size < 8:
            return
        p = path + (typ.decode("latin1"),)
        yield p, off, size
        if typ in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            yield from _boxes(b, off + 8, off + size, p)
        off += size


def set_rotation(path, degrees):
    """Write a display matrix rotating the picture ``degrees`` clockwise into the track header."""
    b = bytearray(open(path, "rb").read())
    for p, off, size in _boxes(b, 0, len(b)):
        if p[-1] == "tkhd":
            ver = b[off + 8]
            m = off + 12 + (32 if ver == 1 else 20) + 8 + 8  # after times/ids, reserved, layer…
            one = 1 << 16
            a, bb, c, d = {90: (0, one, -one, 0), 180: (-one, 0, 0, -one), 270: (0, -one, one, 0)}[degrees]
            b[m:m + 36] = struct.pack(">9i", a, bb, 0, c, d, 0, 0, 0, 1 << 30)
    open(path, "wb").write(bytes(b))


def set_frame_durations(path, deltas):
    """Replace the sample durations (stts, in the track's timescale): a variable-rate clip.

    opencv's writer puts ``moov`` after ``mdat``, so growing it moves no sample data; only the
    sizes of the enclosing boxes change.
    """
    b = bytearray(open(path, "rb").read())
    boxes = list(_boxes(b, 0, len(b)))
    (p, off, size), = [x for x in boxes if x[0][-1] == "stts"]
    assert [x for x in boxes if x[0] == ("mdat",)][0][1] < off, "moov must follow mdat"
    new = struct.pack(">4sI", b"\0\0\0\0", len(deltas)) + b"".join(struct.pack(">II", 1, d) for d in deltas)
    new = struct.pack(">I4s", 8 + len(new), b"stts") + new
    grow = len(new) - size
    for q, o, s in boxes:
        if q[-1] in p[:-1] and q == p[:len(q)]:
            b[o:o + 4] = struct.pack(">I", s + grow)
    b[off:off + size] = new
    open(path, "wb").write(bytes(b))


def _pattern(w=320, h=240, n=6):
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 30, np.uint8)
        f[:60, :100] = (0, 0, 255)                  # red block top-left
        cv2.putText(f, str(i), (140, 150), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        out.append(f)
    return out


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_rotation_metadata_gives_upright_frames(tmp_path, deg):
    clip = write_clip(tmp_path / "r.mp4", _pattern())
    set_rotation(clip, deg)
    cap, info = open_video(clip)
    cap.release()
    assert info.rotation == deg
    assert (info.width, info.height) == ((240, 320) if deg in (90, 270) else (320, 240))
    _, _, f = next(iter_frames(clip))
    assert f.shape[:2] == (info.height, info.width)
    expect = cv2.rotate(_pattern()[0], {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
                                        270: cv2.ROTATE_90_COUNTERCLOCKWISE}[deg])
    assert np.abs(f.astype(int) - expect).mean() < 6


def test_variable_frame_rate_keeps_timestamps(tmp_path):
    clip = write_clip(tmp_path / "v.mp4", _pattern(n=6), fps=25)
    scale = None
    b = open(clip, "rb").read()
    for p, off, size in _boxes(b, 0, len(b)):
        if p[-1] == "mdhd":
            scale = struct.unpack(">I", b[off + 20:off + 24])[0]
    deltas = [int(scale * d) for d in (0.040, 0.040, 0.080, 0.020, 0.030, 0.030)]  # same total: the edit list stays valid
    set_frame_durations(clip, deltas)
    ts = np.array([t for _, t, _ in iter_frames(clip)])
    assert len(ts) == 6
    assert np.allclose(ts, np.r_[0, np.cumsum(deltas[:-1])] / scale, atol=2e-3), ts


def test_range_stride_and_processing_size(tmp_path):
    clip = write_clip(tmp_path / "s.mp4", _pattern(640, 360, n=10))
    got = [(i, round(t, 3), f.shape) for i, t, f in iter_frames(clip, (1, 9), stride=3, max_side=320)]
    assert [g[0] for g in got] == [1, 4, 7]
    assert [g[1] for g in got] == [0.04, 0.16, 0.28]
    assert all(g[2] == (180, 320, 3) for g in got)


def test_one_frame_clip(tmp_path):
    clip = write_clip(tmp_path / "one.mp4", _pattern(n=1))
    assert [i for i, _, _ in iter_frames(clip)] == [0]


def test_clear_errors(tmp_path):
    clip = write_clip(tmp_path / "e.mp4", _pattern(n=3))
    with pytest.raises(EngineError, match="frame range"):
        list(iter_frames(clip, (5, 2)))
    with pytest.raises(EngineError, match="stride"):
        list(iter_frames(clip, stride=0))
    with pytest.raises(EngineError, match="max_side"):
        list(iter_frames(clip, max_side=4))
    with pytest.raises(EngineError, match="not found"):
        open_video(tmp_path / "missing.mp4")
