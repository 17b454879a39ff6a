"""The user's data is never run, overwritten or lost: body-model loading, output paths, arguments."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.body.model import load_body_model
from engine.errors import EngineError
from engine.outputs import check_output_dir, check_output_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"


class _Payload:
    """Pickles as a call of ``os.system`` (the classic malicious-pickle payload)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"v_template": _Payload(marker)}, protocol=2))
    with pytest.raises(EngineError, match=r"not a SMPL body model \(it contains (posix|os|nt)\.system\)"):
        load_body_model(bad)
    assert not marker.exists()


def test_pickle_of_a_non_dict_is_refused(tmp_path):
    p = tmp_path / "list.pkl"
    p.write_bytes(pickle.dumps([np.zeros(3)]))
    with pytest.raises(EngineError, match="not a SMPL body model"):
        load_body_model(p)


def test_malicious_pickle_through_the_cli_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"f": _Payload(marker)}, protocol=2))
    r = _cli(str(DEMO), "-o", str(tmp_path / "m.npz"), "--body-model", str(bad))
    assert r.returncode == 2 and not marker.exists()
    assert _one_error_line(r.stderr, "not a SMPL body model")
    assert not (tmp_path / "m.npz").exists()


# --- output paths -------------------------------------------------------------------------------

def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"video")
    with pytest.raises(EngineError, match="is the input file"):
        check_output_file(src, inputs=[src])
    link = tmp_path / "link.mp4"
    os.link(src, link)  # same inode, another name
    with pytest.raises(EngineError, match="is the input file"):
        check_output_file(link, inputs=[src])
    assert src.read_bytes() == b"video"


def test_output_parent_created_directory_refused(tmp_path):
    out = check_output_file(tmp_path / "a" / "b" / "m.npz")
    assert out.parent.is_dir() and out.is_absolute()
    with pytest.raises(EngineError, match="is a folder"):
        check_output_file(tmp_path / "a")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EngineError, match="exists and is not a folder"):
        check_output_file(tmp_path / "file" / "m.npz")
    with pytest.raises(EngineError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "file")


def test_unwritable_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    # a read-only bind is not available unprivileged; /proc is read-only for everyone, root included
    with pytest.raises(EngineError, match="not writable|cannot create"):
        check_output_dir(Path("/proc/mocap-test-out"))
    with pytest.raises(EngineError, match="not writable|cannot create"):
        check_output_file(Path("/proc/mocap-test-out.npz"))


# --- the engine CLI -----------------------------------------------------------------------------

def _cli(*args, timeout=60):
    env = {**os.environ, "MOCAP_CACHE_DIR": os.environ.get("MOCAP_CACHE_DIR", "")}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={k: v for k, v in env.items() if v})


def _one_error_line(stderr, needle):
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0] \
        and "Traceback" not in stderr


def test_output_equal_to_input_leaves_the_video_untouched(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(DEMO.read_bytes()[:4096])
    before = clip.read_bytes()
    r = _cli(str(clip), "-o", str(clip))
    assert r.returncode == 2 and _one_error_line(r.stderr, "is the input file"), r.stderr
    assert clip.read_bytes() == before


@pytest.mark.parametrize("args,needle", [
    (["--focal", "-100"], "--focal"),
    (["--focal", "nan"], "--focal"),
    (["--stride", "0"], "--stride"),
    (["--start", "-5"], "--start"),
    (["--start", "10", "--end", "5"], "--end"),
    (["--num-poses", "0"], "--num-poses"),
    (["--max-side", "8"], "--max-side"),
    (["--subject", "tallest"], "--subject"),
    (["--subject", "point"], "--point"),
    (["--subject-frame", "-1"], "--subject-frame"),
])
def test_bad_argument_one_line_exit_2_fast(tmp_path, args, needle):
    import time
    t0 = time.perf_counter()
    r = _cli(str(DEMO), "-o", str(tmp_path / "m.npz"), *args)
    assert time.perf_counter() - t0 < 10  # a fresh interpreter; the check itself is instant
    assert r.returncode == 2
    assert _one_error_line(r.stderr, needle), r.stderr
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing.mp4", "not found"),
    (lambda d: d, "is a folder"),
])
def test_bad_input_one_line(tmp_path, make, needle):
    r = _cli(str(make(tmp_path)), "-o", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and _one_error_line(r.stderr, needle), r.stderr


def test_bad_output_one_line_before_any_work(tmp_path):
    (tmp_path / "f").write_text("x")
    for out, needle in ((tmp_path, "is a folder"), (tmp_path / "f" / "m.npz", "not a folder"),
                        (Path("/proc/x/m.npz"), "cannot create")):
        r = _cli(str(DEMO), "-o", str(out))
        assert r.returncode == 2 and _one_error_line(r.stderr, needle), (out, r.stderr)


# --- honest partial input, quiet runs -----------------------------------------------------------

@pytest.mark.slow
def test_truncated_clip_warns_with_both_counts(tmp_path):
    """The demo cut to 30 % of its bytes: the container still declares 230 frames."""
    from engine.motion import load_motion
    clip = tmp_path / "cut.mp4"
    data = DEMO.read_bytes()
    clip.write_bytes(data[: int(0.3 * len(data))])
    out = tmp_path / "cut.npz"
    r = _cli(str(clip), "-o", str(out), "--estimator", "baseline", "--end", "120", timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("warning: cut.mp4: decoded "), r.stderr
    m = load_motion(out)
    assert m.source["declared_frames"] == 120
    assert m.source["decoded_frames"] == m.num_frames < 100
    assert f"decoded {m.num_frames} of the 120 frames" in lines[0]
    assert m.source["warnings"] == [lines[0][len("warning: "):]]
    r = _cli(str(clip), "-o", str(out), "-q", "--estimator", "baseline", "--end", "120", timeout=300)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""  # -q: errors only


def test_decode_shortfall_rule():
    from engine.pipeline import decode_shortfall
    from engine.video.decode import VideoInfo
    info = VideoInfo("a.mp4", 640, 480, 30.0, 230)
    assert decode_shortfall(info, 230, 228) is None  # container counts are estimates
    assert decode_shortfall(info, None, 10) is None
    w = decode_shortfall(info, 230, 60)
    assert "decoded 60 of the 230 frames" in w and "2.0 s of 7.7 s" in w


def test_native_log_filter_keeps_errors_drops_chatter():
    from engine.native_log import is_noise
    assert is_noise(b"W0000 00:00:1796589102.707281    5505 inference_feedback_manager.cc:114] Feedback\n")
    assert is_noise(b"I0000 00:00:1796589102.651739    5500 task_runner.cc:85] GPU suport is not available\n")
    assert is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert not is_noise(b"E0000 00:00:1796589102.651739    5500 graph.cc:85] real failure\n")
    assert not is_noise(b"Traceback (most recent call last):\n")


def test_native_log_capture_overlapping_in_two_threads_restores_stderr(capfd):
    """Two landmarkers start side by side: A in, B in, A out, B out. fd 2 must end as it began
    (not left on a capture file, which would swallow every later warning) and what is not noise
    must still reach it."""
    import os
    import threading
    from engine.native_log import quiet_native_logs
    before = os.fstat(2).st_ino
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with quiet_native_logs():
            a_in.set()
            b_in.wait(5)
            os.write(2, b"W0000 00:00:1.0    1 a.cc:1] chatter from A\n")
            os.write(2, b"E0000 00:00:1.0    1 a.cc:1] real error from A\n")
        a_out.set()

    def b():
        a_in.wait(5)
        with quiet_native_logs():
            b_in.set()
            a_out.wait(5)
            os.write(2, b"I0000 00:00:1.0    1 b.cc:1] chatter from B\n")
    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert os.fstat(2).st_ino == before
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "real error from A" in err and "after" in err and "chatter" not in err, err


@pytest.mark.slow
def test_quiet_run_prints_nothing(tmp_path):
    """MediaPipe's native start-up lines are kept off the terminal; -q leaves stdout and stderr empty."""
    r = _cli(str(DEMO), "-o", str(tmp_path / "m.npz"), "-q", "--estimator", "baseline", "--end", "8",
             "--no-cache", timeout=300)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr


def test_pipeline_options_checked_for_every_caller():
    from engine.pipeline import PipelineOptions
    for bad, needle in ((dict(stride=0), "stride"), (dict(focal=-100.0), "focal"),
                        (dict(focal=float("nan")), "focal"), (dict(num_poses=0), "num_poses"),
                        (dict(frame_range=(-5, None)), "frame range"), (dict(frame_range=(10, 5)), "frame range"),
                        (dict(subject="tallest"), "unknown subject rule"), (dict(subject="point"), "needs a point"),
                        (dict(smoothing="heavy"), "smoothing"), (dict(max_side=8), "max_side")):
        with pytest.raises(EngineError, match=needle):
            PipelineOptions(**bad).check()
    PipelineOptions(subject="track:3", frame_range=(0, None), focal=np.float64(1200.0)).check()
