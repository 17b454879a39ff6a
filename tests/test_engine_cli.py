"""``python -m engine``: help, and bad input exits non-zero with one clear message, no file."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _error_line(proc):
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_help():
    p = run_cli("--help")
    assert p.returncode == 0 and "Motion file" in p.stdout and "--focal" in p.stdout


def test_follow_is_the_default_and_no_follow_detects_every_frame():
    from engine.cli import build_parser
    from engine.pipeline import PipelineOptions
    p = build_parser()
    assert p.parse_args(["v.mp4"]).follow is True and PipelineOptions().follow is True
    assert p.parse_args(["v.mp4", "--follow"]).follow is True
    assert p.parse_args(["v.mp4", "--no-follow"]).follow is False


def _write_video(path, frames):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for f in frames:
        w.write(f)
    w.release()


@pytest.mark.parametrize("case", ["missing", "not_video", "zero_frames", "no_person"])
def test_bad_input(tmp_path, case):
    video = tmp_path / "clip.mp4"
    if case == "not_video":
        video.write_text("this is not a video\n" * 100)
    elif case == "zero_frames":
        _write_video(video, [])
    elif case == "no_person":
        rng = np.random.default_rng(0)
        _write_video(video, [np.full((240, 320, 3), 40 + 4 * i, np.uint8) +
                             rng.integers(0, 20, (240, 320, 3), dtype=np.uint8) for i in range(12)])
    out = tmp_path / "out.npz"
    p = run_cli(video, "-o", out, "-q")
    assert p.returncode != 0
    msg = _error_line(p)
    expected = {"missing": "not found", "not_video": "cannot open", "zero_frames": "frames",
                "no_person": "no person"}[case]
    if case == "zero_frames":  # an empty container may not even open: either message is clear
        assert "no frames" in msg or "cannot open" in msg or "no video stream" in msg, msg
    else:
        assert expected in msg, msg
    assert "Traceback" not in p.stderr
    assert list(tmp_path.glob("out*")) == []
