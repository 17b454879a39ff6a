"""Batch safety: Ctrl-C keeps the finished rows, re-runs merge the summary, bad arguments are one
line before any work, no output replaces an input, and the .blend finds its video when reopened."""
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEMO_VIDEO, ROOT, make_motion, make_toy_body

bpy = pytest.importorskip("bpy")
SCRIPT = ROOT / "scripts" / "blender_batch.py"


def _summary(out):
    with open(Path(out) / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _clips(tmp_path, names, T=12):
    body = make_toy_body()
    body.save(tmp_path / "toy.npz")
    paths = []
    for k, name in enumerate(names):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        make_motion(body, T=T + k, seed=k + 1).save(p)
        paths.append(str(p))
    return paths, str(tmp_path / "toy.npz")


def _env(tmp_path):
    return {**os.environ, "PYTHONUNBUFFERED": "1", "MOCAP_CACHE_DIR": str(tmp_path / "cache"),
            "BLENDER_USER_RESOURCES": str(tmp_path / "blender"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def _interrupt_second_clip(monkeypatch):
    """Ctrl-C while the batch builds its second clip (as a KeyboardInterrupt from that step)."""
    from addon.scene import build_scene as build
    real, calls = build.import_motion, []

    def import_motion(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(build, "import_motion", import_motion)


# ------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_keeps_finished_rows_and_exits_130(blender_addon, tmp_path, monkeypatch, capsys):
    from addon import batch
    clips, body = _clips(tmp_path, ["a.npz", "b.npz", "c.npz"])
    _interrupt_second_clip(monkeypatch)
    code = batch.main([*clips, "-o", str(tmp_path / "out"), "--body-model", body])
    assert code == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    summary = tmp_path / "out" / "summary.csv"
    assert err.strip().splitlines() == [f"[mocap] interrupted: 1/3 clips finished; summary: {summary}"]
    rows = _summary(tmp_path / "out")
    assert [Path(r["clip"]).name for r in rows] == ["a.npz", "b.npz", "c.npz"]
    assert [r["status"] for r in rows] == ["ok", "interrupted", "interrupted"]
    assert "interrupted (Ctrl-C)" in rows[1]["message"] and rows[1]["blend"] == ""
    assert (tmp_path / "out" / "a.blend").is_file() and not (tmp_path / "out" / "b.blend").exists()
    assert not list((tmp_path / "out").glob(".*part*"))


def test_interrupted_clip_keeps_the_earlier_runs_files(blender_addon, tmp_path, monkeypatch):
    from addon import batch
    clips, body = _clips(tmp_path, ["a.npz", "b.npz"])
    out = tmp_path / "out"
    batch.batch(clips, out, {"body_model_path": body}, log=None)
    _interrupt_second_clip(monkeypatch)
    with pytest.raises(batch.BatchInterrupted) as info:
        batch.batch(clips, out, {"body_model_path": body}, log=None)
    assert [r["status"] for r in info.value.rows] == ["ok", "interrupted"]
    rows = _summary(out)
    assert [r["status"] for r in rows] == ["ok", "interrupted"]
    assert rows[1]["blend"] == str(out / "b.blend") and (out / "b.blend").is_file()
    assert "from an earlier run" in rows[1]["message"]


def _children(pid):
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _as_from_a_terminal():
    """Run in the child before exec: Ctrl-C at its default. A process started in the background
    of a non-interactive shell (``pytest … &``) ignores SIGINT, its children inherit that, and
    Python then installs no KeyboardInterrupt handler — the batch would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_sigint_during_the_engine_stops_the_clip(tmp_path):
    """A real Ctrl-C (SIGINT to the process group, as a terminal sends it) while the engine runs
    on the demo: the finished clip's row, 'interrupted' for the rest, exit 130, no traceback."""
    clips, body = _clips(tmp_path, ["a.npz"])
    proc = subprocess.Popen([sys.executable, str(SCRIPT), clips[0], str(DEMO_VIDEO), "-o", str(tmp_path / "out"),
                             "--body-model", body, "--device", "cpu", "--estimator", "baseline"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
                            start_new_session=True, preexec_fn=_as_from_a_terminal)
    try:
        line = next((ln for ln in proc.stdout if ln.startswith("[mocap]")), "")  # the first clip's line
        assert line.startswith("[mocap] ok"), line
        time.sleep(2.0)  # the engine is now decoding and detecting (the demo takes far longer)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("[mocap] interrupted: 1/2 clips finished")
    assert [r["status"] for r in _summary(tmp_path / "out")] == ["ok", "interrupted"]


@pytest.mark.slow
def test_sigint_with_workers_stops_the_worker_processes(tmp_path):
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for c in clips:
        shutil.copyfile(DEMO_VIDEO, c)
    body = tmp_path / "toy.npz"
    make_toy_body().save(body)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, clips), "-o", str(tmp_path / "out"),
                             "--body-model", str(body), "--device", "cpu", "--estimator", "baseline",
                             "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
                            start_new_session=True, preexec_fn=_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 60
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = [k for k in _children(proc.pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]
        assert len(workers) == 2, "the worker processes did not start"
        time.sleep(4.0)  # the workers are running the engine (the demo takes far longer)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("[mocap] interrupted: 0/2 clips finished")
    time.sleep(0.5)
    assert not [k for k in workers if _alive(k)], "worker processes still running"
    assert [r["status"] for r in _summary(tmp_path / "out")] == ["interrupted", "interrupted"]


# ------------------------------------------------------------------ summary merge
def test_rerun_merges_rows_by_clip(blender_addon, tmp_path, monkeypatch):
    from addon import batch
    clips, body = _clips(tmp_path, ["a.npz", "b.npz", "bad.npz"])
    Path(clips[2]).write_bytes(b"broken")
    out = tmp_path / "out"
    batch.batch(clips[:2], out, {"body_model_path": body}, log=None)
    first = _summary(out)
    batch.batch([clips[2], clips[0]], out, {"body_model_path": body, "with_mesh": False}, log=None)
    rows = _summary(out)
    assert [Path(r["clip"]).name for r in rows] == ["a.npz", "b.npz", "bad.npz"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[1] == first[1]  # kept as it was
    # the same clip given relative to the cwd is the same row
    monkeypatch.chdir(tmp_path)
    batch.batch(["b.npz"], out, {"body_model_path": body}, log=None)
    assert [Path(r["clip"]).name for r in _summary(out)] == ["a.npz", "b.npz", "bad.npz"]


def test_a_file_named_summary_csv_that_is_not_a_summary_is_kept(blender_addon, tmp_path):
    from addon import batch
    from engine.errors import EngineError
    clips, body = _clips(tmp_path, ["a.npz"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("my notes\n")
    with pytest.raises(EngineError, match="not a batch summary"):
        batch.batch(clips, out, {"body_model_path": body}, log=None)
    assert (out / "summary.csv").read_text() == "my notes\n" and not (out / "a.blend").exists()


# ------------------------------------------------------------------ outputs vs inputs
def test_a_motion_input_in_the_output_folder_is_not_rewritten(blender_addon, tmp_path):
    from addon import batch
    clips, body = _clips(tmp_path, ["out/clip.npz"])
    before = Path(clips[0]).read_bytes()
    rows = batch.batch(clips, tmp_path / "out", {"body_model_path": body}, log=None)
    assert rows[0]["status"] == "ok" and rows[0]["motion"] == clips[0]
    assert Path(clips[0]).read_bytes() == before and (tmp_path / "out" / "clip.blend").is_file()


def test_an_output_that_would_replace_another_input_gets_the_next_name(blender_addon, tmp_path):
    from addon import batch
    clips, body = _clips(tmp_path, ["src/clip.npz", "out/clip.npz"])
    before = [Path(c).read_bytes() for c in clips]
    rows = batch.batch(clips, tmp_path / "out", {"body_model_path": body}, log=None)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [Path(r["blend"]).name for r in rows] == ["clip_1.blend", "clip.blend"]
    assert [Path(r["motion"]).name for r in rows] == ["clip_1.npz", "clip.npz"]
    assert [Path(c).read_bytes() for c in clips] == before


def test_a_clip_keeps_its_stem_across_runs(blender_addon, tmp_path):
    """Two clips of the same name get clip / clip_1; re-running the second alone writes clip_1
    again, not over the first one's files."""
    from addon import batch
    clips, body = _clips(tmp_path, ["a/clip.npz", "b/clip.npz"])
    out = tmp_path / "out"
    batch.batch(clips, out, {"body_model_path": body}, log=None)
    first = (out / "clip.blend").read_bytes()
    rows = batch.batch(clips[1:], out, {"body_model_path": body}, log=None)
    assert Path(rows[0]["blend"]).name == "clip_1.blend"
    assert (out / "clip.blend").read_bytes() == first
    assert [Path(r["blend"]).name for r in _summary(out)] == ["clip.blend", "clip_1.blend"]


# ------------------------------------------------------------------ bad arguments
def _bad_cases(tmp_path):
    clip = str(tmp_path / "clip.npz")
    out = str(tmp_path / "out")
    return {
        "frames not numbers": [clip, "-o", out, "--frames", "abc"],
        "frames empty range": [clip, "-o", out, "--frames", "5:3"],
        "frames negative": [clip, "-o", out, "--frames=-2:10"],
        "frames three parts": [clip, "-o", out, "--frames", "1:2:3"],
        "workers zero": [clip, "-o", out, "--workers", "0"],
        "workers word": [clip, "-o", out, "--workers", "two"],
        "missing input": [clip, str(tmp_path / "nope.mp4"), "-o", out],
        "missing rig": [clip, "-o", out, "--rig", str(tmp_path / "rig.blend:Armature")],
        "missing body": [clip, "-o", out, "--body-model", str(tmp_path / "SMPL.pkl")],
        "out is the input": [clip, "-o", clip],
        "out under a file": [clip, "-o", str(tmp_path / "clip.npz" / "sub")],
        "unknown export": [clip, "-o", out, "--export", "obj"],
    }


def _child_cpu():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@pytest.mark.parametrize("case", list(_bad_cases(Path("/x"))))
def test_bad_argument_is_one_error_line_exit_2_before_any_work(tmp_path, case):
    clips, _ = _clips(tmp_path, ["clip.npz"])
    before = Path(clips[0]).read_bytes()
    cpu0, t0 = _child_cpu(), time.perf_counter()
    r = subprocess.run([sys.executable, str(SCRIPT), *_bad_cases(tmp_path)[case]], capture_output=True,
                       text=True, env=_env(tmp_path), timeout=60)
    seconds, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "out").exists() and Path(clips[0]).read_bytes() == before
    # 2 s of work (about 1.1 s on a quiet machine, nearly all of it loading Blender); the wall
    # clock only guards against a hang, since other jobs may share the CPU
    assert cpu < 2.0 and seconds < 10.0, f"{cpu:.2f} s CPU, {seconds:.2f} s wall"


# ------------------------------------------------------------------ the video plane after reopening
_REOPEN = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
plane = [o for o in bpy.data.objects if o.name.endswith(" Video")][0]
img = [n for n in plane.active_material.node_tree.nodes if n.type == "TEX_IMAGE"][0].image
px = img.pixels[:]
rgb = [sum(px[i::4]) / (len(px) // 4) for i in range(3)]
print("IMAGE", img.filepath, img.size[0], img.size[1], len(px), *("%.4f" % v for v in rgb))
"""


def test_blend_from_a_relative_video_path_shows_the_video_when_reopened(blender_addon, tmp_path, monkeypatch):
    """The README's first command gives the video relative to the cwd: the saved .blend must
    still find it (a fresh process, other cwd) with the movie's pixels, not the pink placeholder."""
    import engine.pipeline
    from addon import batch
    body = make_toy_body()
    body.save(tmp_path / "toy.npz")
    rel = os.path.relpath(DEMO_VIDEO, ROOT)
    monkeypatch.setattr(engine.pipeline, "run", lambda video, options, progress=None:
                        make_motion(body, T=30, video=video, frame_size=(1768, 994)))
    monkeypatch.chdir(ROOT)
    rows = batch.batch([rel], tmp_path / "out" / "demo", {"body_model_path": str(tmp_path / "toy.npz")}, log=None)
    assert rows[0]["status"] == "ok", rows
    r = subprocess.run([sys.executable, "-c", _REOPEN, rows[0]["blend"]], capture_output=True, text=True,
                       cwd=tmp_path, env=_env(tmp_path), timeout=120)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("IMAGE ")]
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    _, path, w, h, n, *rgb = line[0].split()
    assert path == str(DEMO_VIDEO)  # absolute, not "//../.."
    assert (int(w), int(h), int(n)) == (1768, 994, 1768 * 994 * 4)
    rgb = [float(v) for v in rgb]
    assert 0.05 < min(rgb) and max(rgb) < 0.95  # real frame content, not the pink (1, 0, 1) placeholder
