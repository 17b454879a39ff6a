"""Many clips at once: the per-clip engine job, and the backends that run it in parallel.

``engine_job(job)`` is the whole engine for one clip — video in, Motion file out — with no
Blender and no shared state, so any process on any machine that has the engine can run it.
``run_jobs(jobs, workers, backend)`` runs a list of them and returns their results in order:

* ``processes`` (the default): ``workers`` worker processes on this machine
  (``concurrent.futures.ProcessPoolExecutor`` with the *spawn* start method: a fresh
  interpreter per worker, safe inside Blender and with MediaPipe's threads; ``workers=1`` runs
  in this process). Each worker loads its own detector (~0.3 GB): on a machine with C cores,
  C/2 to C workers is the useful range (MediaPipe uses more than one thread per worker).
* ``dask``: the jobs go to a Dask cluster — ``address`` of a running scheduler
  (``dask scheduler`` + ``dask worker ADDRESS`` on each machine), or a local cluster of
  ``workers`` processes when no address is given.
* ``ray``: the jobs become Ray tasks — ``address`` of a running cluster (``ray start --head`` /
  ``ray start --address=...``; ``"auto"`` joins the local one), else a local Ray with
  ``workers`` CPUs.

Dask and Ray are **not** dependencies: they are imported only when asked for, and a missing
package is one clear error (``pip install "dask[distributed]"`` / ``pip install ray``). For
several machines every worker needs the engine importable (this repository or the extension's
folder on ``PYTHONPATH``, with requirements.txt installed) and the same paths: videos and the
output folder on storage all machines see (NFS, a shared volume).
"""
import time
import traceback
from pathlib import Path

from .errors import EngineError

BACKENDS = ("processes", "dask", "ray")


def engine_job(job):
    """One clip through the engine. ``job``: dict with ``video``, ``motion`` (the Motion file to
    write), ``options`` (``PipelineOptions`` fields as a dict) and optionally ``frame_memory_mb``
    (this process's frame-store budget, set by ``run_jobs`` for local workers). Returns a dict:
    ``status`` (``ok`` / ``failed``), ``motion``, ``frames``, ``valid_frames``, ``seconds``,
    ``message``. Never raises for a bad clip: the error is the result (as the batch reports it)."""
    import os

    from .pipeline import PipelineOptions, run

    if job.get("frame_memory_mb") is not None:
        os.environ["MOCAP_FRAME_MEMORY_MB"] = f"{float(job['frame_memory_mb']):.1f}"
    t0 = time.perf_counter()
    out = {"video": str(job["video"]), "motion": str(job["motion"]), "status": "failed", "message": ""}
    try:
        opts = dict(job.get("options") or {})
        if opts.get("frame_range") is not None:
            opts["frame_range"] = tuple(opts["frame_range"])
        motion = run(str(job["video"]), PipelineOptions(**opts))
        Path(job["motion"]).parent.mkdir(parents=True, exist_ok=True)
        motion.save(job["motion"])
        out.update(status="ok", frames=int(motion.num_frames), valid_frames=int(motion.valid.sum()))
    except EngineError as exc:
        out["message"] = str(exc)
    except Exception as exc:  # reported like the batch does, with the traceback for the log
        out["message"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc()
    out["seconds"] = time.perf_counter() - t0
    return out


def run_jobs(jobs, workers=1, backend="processes", address=None, on_done=None):
    """Run ``engine_job`` over ``jobs``; results in the jobs' order. ``on_done(result)`` is
    called as each finishes (in completion order). On Ctrl-C (KeyboardInterrupt) the local
    worker processes are terminated and the KeyboardInterrupt goes on to the caller."""
    jobs = list(jobs)
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    workers = 1 if workers is None else int(workers)
    if workers < 1:
        raise EngineError(f"workers must be ≥ 1 (got {workers})")
    if not jobs:
        return []
    local = min(workers, len(jobs)) if address is None else 1
    if local > 1:  # several clips at once on this machine: each its share of the frame store
        share = worker_frame_memory_mb(local)
        jobs = [dict(j, frame_memory_mb=share) for j in jobs]
    if backend == "dask":
        return _run_dask(jobs, workers, address, on_done)
    if backend == "ray":
        return _run_ray(jobs, workers, address, on_done)
    if workers == 1 or len(jobs) == 1:
        results = []
        for j in jobs:
            results.append(engine_job(j))
            if on_done:
                on_done(results[-1])
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results = [None] * len(jobs)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_ignore_sigint)
    try:
        futs = {pool.submit(engine_job, j): k for k, j in enumerate(jobs)}
        for f in as_completed(futs):
            k = futs[f]
            try:
                results[k] = f.result()
            except Exception as exc:  # the worker process died (out of memory, a crash)
                results[k] = {"video": str(jobs[k]["video"]), "motion": str(jobs[k]["motion"]),
                              "status": "failed", "message": f"worker process failed: {type(exc).__name__}: {exc}",
                              "seconds": 0.0}
            if on_done:
                on_done(results[k])
    except BaseException:  # Ctrl-C (KeyboardInterrupt) or a failing on_done: stop the workers now
        _stop_pool(pool)
        raise
    pool.shutdown()
    return results


def worker_frame_memory_mb(workers):
    """Each of ``workers`` local processes' share of the frame store's budget
    (``engine.video.store``), in MB: this machine's budget (or ``MOCAP_FRAME_MEMORY_MB``)
    divided among them, so that N clips at once keep no more decoded frames than one would."""
    from .video.store import memory_budget
    return memory_budget() / max(1, int(workers)) / 2 ** 20


def _ignore_sigint():
    """Worker initializer: Ctrl-C in a terminal reaches the whole process group; the parent
    alone handles it (it stops the workers), so no worker prints its own traceback."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool):
    """Cancel the queued jobs and terminate the running worker processes (``shutdown`` alone
    would wait for each running clip to finish; the executor has no public terminate)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)


def _missing(backend, pip):
    return EngineError(f"the '{backend}' backend needs the {backend} package, which is not installed "
                       f"(it is optional and not in requirements.txt): pip install {pip} — on every "
                       f"machine that runs workers — or use the default 'processes' backend")


def _run_dask(jobs, workers, address, on_done):
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:
        raise _missing("dask", '"dask[distributed]"') from exc
    client = Client(address) if address else Client(n_workers=workers, threads_per_worker=1, processes=True)
    try:
        futs = client.map(engine_job, jobs, pure=False)
        index = {f.key: k for k, f in enumerate(futs)}
        results = [None] * len(jobs)
        for f in as_completed(futs):
            results[index[f.key]] = f.result()
            if on_done:
                on_done(results[index[f.key]])
        return results
    finally:
        client.close()


def _run_ray(jobs, workers, address, on_done):
    try:
        import ray
    except ImportError as exc:
        raise _missing("ray", "ray") from exc
    started = not ray.is_initialized()
    if started:
        ray.init(address=address) if address else ray.init(num_cpus=workers)
    try:
        task = ray.remote(num_cpus=1)(engine_job)
        refs = [task.remote(j) for j in jobs]
        index = {r: k for k, r in enumerate(refs)}
        results = [None] * len(jobs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            k = index[done[0]]
            results[k] = ray.get(done[0])
            if on_done:
                on_done(results[k])
        return results
    finally:
        if started:
            ray.shutdown()
