"""Batch scale-out: the engine in parallel worker processes gives the same Motion files as one
clip at a time; the optional Dask/Ray backends fail with a clear message when not installed."""
import sys

import cv2
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.distributed import BACKENDS, run_jobs
from engine.errors import EngineError


def _short_clip(path, first, n=14, size=(640, 360)):
    from engine.video.decode import iter_frames
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for _, _, f in iter_frames(DEMO_VIDEO, (first, first + n)):
        wr.write(cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    wr.release()
    return path


@pytest.mark.slow
def test_workers_give_the_same_motion_files(blender_addon, tmp_path, monkeypatch):
    from addon import batch
    from engine.motion import load_motion
    clips = [str(_short_clip(tmp_path / "a.mp4", 0)), str(_short_clip(tmp_path / "b.mp4", 70)),
             str(tmp_path / "missing.mp4")]
    opts = {"device": "cpu", "with_mesh": False, "video_reference": False}
    rows = {}
    for workers in (1, 2):
        # a cache per run, so the second run really runs the detector (workers inherit the env)
        monkeypatch.setenv("MOCAP_CACHE_DIR", str(tmp_path / f"cache{workers}"))
        rows[workers] = batch.batch(clips, tmp_path / f"w{workers}", opts, log=None, workers=workers)
    for workers in (1, 2):
        assert [r["status"] for r in rows[workers]] == ["ok", "ok", "failed"]
        assert "video not found" in rows[workers][2]["message"]
        assert all((tmp_path / f"w{workers}" / f"{s}.blend").is_file() for s in ("a", "b"))
    assert rows[1][2]["message"] == rows[2][2]["message"]
    for stem in ("a", "b"):
        m1 = load_motion(tmp_path / "w1" / f"{stem}.npz")
        m2 = load_motion(tmp_path / "w2" / f"{stem}.npz")
        assert m1.valid.sum() > 5
        with np.load(tmp_path / "w1" / f"{stem}.npz") as z1, np.load(tmp_path / "w2" / f"{stem}.npz") as z2:
            assert sorted(z1.files) == sorted(z2.files)
            for k in z1.files:
                a, b = z1[k], z2[k]
                if a.dtype.kind in "fc":
                    assert np.array_equal(a, b, equal_nan=True), (stem, k)
                else:
                    assert np.array_equal(a, b), (stem, k)
    # the two clips are different clips
    assert not np.array_equal(load_motion(tmp_path / "w1" / "a.npz").keypoints2d,
                              load_motion(tmp_path / "w1" / "b.npz").keypoints2d)


def test_run_jobs_reports_failures_in_order(tmp_path):
    jobs = [{"video": str(tmp_path / f"nope{k}.mp4"), "motion": str(tmp_path / f"{k}.npz"), "options": {}}
            for k in range(3)]
    res = run_jobs(jobs, workers=1)
    assert [r["status"] for r in res] == ["failed"] * 3
    assert [r["video"] for r in res] == [j["video"] for j in jobs]
    assert "video not found" in res[1]["message"]
    assert run_jobs([], workers=4) == []


@pytest.mark.parametrize("backend, module", [("dask", "dask"), ("ray", "ray")])
def test_optional_backend_missing_is_a_clear_error(backend, module, monkeypatch, tmp_path):
    for name in [m for m in list(sys.modules) if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    jobs = [{"video": str(tmp_path / "x.mp4"), "motion": str(tmp_path / "x.npz"), "options": {}}]
    with pytest.raises(EngineError, match=rf"'{backend}' backend needs .*pip install"):
        run_jobs(jobs, workers=2, backend=backend)


def test_bad_backend_and_workers(tmp_path):
    jobs = [{"video": "x.mp4", "motion": str(tmp_path / "x.npz"), "options": {}}]
    assert BACKENDS == ("processes", "dask", "ray")
    with pytest.raises(EngineError, match="unknown backend"):
        run_jobs(jobs, backend="spark")
    with pytest.raises(EngineError, match="workers"):
        run_jobs(jobs, workers=0)


def test_batch_cli_has_workers_option():
    pytest.importorskip("bpy")
    from addon.batch import parse_args
    a = parse_args([str(DEMO_VIDEO), "-o", "out", "--workers", "3", "--backend", "dask", "--address", "tcp://h:8786"])
    assert (a.workers, a.backend, a.address) == (3, "dask", "tcp://h:8786")
    assert parse_args([str(DEMO_VIDEO), "-o", "out"]).workers == 1


def test_pitch_batches_default_to_the_baseline(blender_addon):
    from addon import batch
    opts = lambda **k: batch._pipeline_options(batch._options(k))  # noqa: E731
    assert opts()["estimator"] == "auto"
    assert opts(pitch=True)["estimator"] == "baseline"
    assert opts(pitch=True, estimator="temporal")["estimator"] == "temporal"
    # and their subject is the pitcher, not the largest person
    assert opts()["subject"] == "largest" and opts(pitch=True)["subject"] == "pitcher"


def test_refinement_switch_reaches_the_engine(blender_addon):
    """The per-frame refinement is on by default and off with --no-refine / refine=False, in the
    batch and through the add-on preferences (addon.jobs.pipeline_options)."""
    from types import SimpleNamespace
    from addon import batch, jobs
    assert batch._pipeline_options(batch._options({}))["refine"] is True
    assert batch._pipeline_options(batch._options({"refine": False}))["refine"] is False
    assert batch.parse_args([str(DEMO_VIDEO), "-o", "o", "--no-refine"]).no_refine
    prefs = SimpleNamespace(device="cpu", smoothing="light", smpl_path="", estimator="temporal", refine=False)
    assert jobs.pipeline_options(prefs).refine is False
    assert jobs.pipeline_options(SimpleNamespace(**{**vars(prefs), "refine": True})).refine is True


def test_follow_switch_reaches_the_engine(blender_addon):
    """Following the subject on a crop is the default in the batch and the add-on preferences;
    --no-follow / follow=False / the preference off detect every frame instead."""
    from types import SimpleNamespace
    from addon import batch, jobs, preferences
    assert batch._pipeline_options(batch._options({}))["follow"] is True
    assert batch._pipeline_options(batch._options({"follow": False}))["follow"] is False
    assert batch.parse_args([str(DEMO_VIDEO), "-o", "o", "--no-follow"]).no_follow
    assert not batch.parse_args([str(DEMO_VIDEO), "-o", "o"]).no_follow
    assert jobs.pipeline_options(preferences.DEFAULTS).follow is True
    prefs = SimpleNamespace(**{**vars(preferences.DEFAULTS), "follow": False})
    assert jobs.pipeline_options(prefs).follow is False


def test_local_worker_processes_share_the_frame_store_budget(monkeypatch, tmp_path):
    from engine import distributed
    from engine.video.store import memory_budget
    monkeypatch.setenv("MOCAP_FRAME_MEMORY_MB", "1200")
    assert distributed.worker_frame_memory_mb(4) == pytest.approx(300.0)
    seen = []

    def fake_job(job):   # what each worker would run: the engine reads its share from the job
        seen.append(job.get("frame_memory_mb"))
        return {"status": "ok"}
    monkeypatch.setattr(distributed, "_run_dask", lambda jobs, *a: [fake_job(j) for j in jobs])
    jobs = [{"video": tmp_path / f"{k}.mp4", "motion": tmp_path / f"{k}.npz"} for k in range(3)]
    distributed.run_jobs(jobs, workers=4, backend="dask")               # a local cluster
    distributed.run_jobs(jobs, workers=4, backend="dask", address="tcp://x:1")  # another machine's
    assert seen == [400.0] * 3 + [None] * 3 and "frame_memory_mb" not in jobs[0]
    monkeypatch.delenv("MOCAP_FRAME_MEMORY_MB")
    assert distributed.worker_frame_memory_mb(2) == pytest.approx(memory_budget() / 2 / 2 ** 20)
    out = distributed.engine_job({"video": tmp_path / "missing.mp4", "motion": tmp_path / "m.npz",
                                  "frame_memory_mb": 250.0})
    assert out["status"] == "failed"
    import os
    assert os.environ.pop("MOCAP_FRAME_MEMORY_MB") == "250.0"
