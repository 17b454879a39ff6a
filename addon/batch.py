"""Headless batch: one .blend (and Motion file) per clip plus a summary CSV.

Entry points, all backed by ``batch()``:
* ``blender -b -c mocap VIDEO... -o OUT_DIR [--device cpu] [--smoothing light] ...``
  (``bpy.utils.register_cli_command``, registered with the add-on);
* ``blender -b -P scripts/blender_batch.py -- VIDEO... -o OUT_DIR ...``;
* ``from addon.batch import batch`` through the ``bpy`` module (tests).

Inputs may be videos (run through the engine) or Motion files (``.npz``, imported as they are).
A clip that fails is written to the summary with its error and the batch goes on.
"""
import argparse
import csv
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import bpy

from . import compat
from .enginepath import ensure_engine

CLI_COMMAND = "mocap"
SUMMARY_NAME = "summary.csv"
SUMMARY_FIELDS = ("clip", "status", "frames", "valid_frames", "fps", "blend", "motion", "seconds", "message")
_DEFAULTS = dict(device="auto", smoothing="light", body_model_path=None, frame_range=None,
                 with_mesh=True, video_reference=True)


def _options(options):
    if options is None:
        d = {}
    elif isinstance(options, dict):
        d = dict(options)
    else:
        d = {k: getattr(options, k) for k in _DEFAULTS if hasattr(options, k)}
    unknown = set(d) - set(_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown batch option(s): {', '.join(sorted(unknown))}")
    return SimpleNamespace(**{**_DEFAULTS, **d})


def _fresh_file():
    """An empty file for the next clip (the add-on stays registered)."""
    if not bpy.app.background:
        raise RuntimeError("the batch replaces the open file for every clip: run it headless "
                           "(blender -b -c mocap ... or blender -b -P scripts/blender_batch.py -- ...)")
    bpy.ops.wm.read_homefile(use_empty=True)


def _unique_stems(paths):
    seen, out = {}, []
    for p in paths:
        stem = Path(p).stem
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}_{n}")
    return out


def process_clip(path, stem, out_dir, opts, progress=None):
    """One clip → ``stem.npz`` + ``stem.blend`` in ``out_dir``; returns a summary row (dict)."""
    ensure_engine()
    from engine.motion import load_motion
    from . import build
    path = Path(path)
    body = build.load_body(opts.body_model_path)  # fail fast, before the engine runs
    if path.suffix.lower() == ".npz":
        motion = load_motion(path)
        video = (motion.source or {}).get("video")
        video = video if video and Path(video).is_file() else None
    else:
        from engine.pipeline import PipelineOptions, run
        popts = PipelineOptions(device=opts.device, smoothing=opts.smoothing,
                                body_model_path=opts.body_model_path,
                                frame_range=tuple(opts.frame_range) if opts.frame_range else None)
        motion = run(str(path), popts, progress=progress)
        video = str(path)
    _fresh_file()
    scene = bpy.context.scene
    scene.name = stem
    add_video = video is not None and opts.video_reference
    result = build.import_motion(motion, body, scene, name=stem, video_path=video if add_video else None,
                                 with_mesh=opts.with_mesh, with_camera=add_video)
    blend_path = out_dir / f"{stem}.blend"
    motion_path = out_dir / f"{stem}.npz"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path), check_existing=False, copy=True)
    if motion_path.resolve() != path.resolve():
        motion.save(motion_path)
    return {"frames": motion.num_frames, "valid_frames": result.keyed_frames, "fps": f"{motion.fps:g}",
            "blend": str(blend_path), "motion": str(motion_path)}


def batch(videos, out_dir, options=None, log=print):
    """Process every clip; write ``out_dir/summary.csv``; return the summary rows (dicts)."""
    opts = _options(options)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, stem in zip(videos, _unique_stems(videos)):
        t0 = time.perf_counter()
        row = dict.fromkeys(SUMMARY_FIELDS, "")
        row["clip"] = str(path)
        try:
            row.update(process_clip(path, stem, out_dir, opts))
            row["status"] = "ok"
        except Exception as exc:  # report and go on with the next clip
            ensure_engine()
            from engine.errors import EngineError
            row["status"] = "failed"
            row["message"] = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, EngineError) and log:
                log(traceback.format_exc())
        row["seconds"] = f"{time.perf_counter() - t0:.2f}"
        rows.append(row)
        if log:
            log(f"[mocap] {row['status']:6s} {path}" + (f": {row['message']}" if row["message"] else ""))
    with open(out_dir / SUMMARY_NAME, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(prog=f"blender -b -c {CLI_COMMAND}",
                                description="Video (or Motion .npz) → .blend per clip + summary.csv")
    p.add_argument("inputs", nargs="+", help="videos or Motion files (.npz)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    p.add_argument("--smoothing", choices=("none", "light", "animation", "analysis"), default="light")
    p.add_argument("--body-model", default=None, help="your SMPL .pkl/.npz (default: the open body)")
    p.add_argument("--frames", default=None, help="frame range FIRST:LAST (last exclusive)")
    p.add_argument("--no-mesh", action="store_true", help="armature only")
    p.add_argument("--no-video", action="store_true", help="no camera / video reference plane")
    return p.parse_args(argv)


def main(argv):
    """CLI body shared by ``-c mocap`` and scripts/blender_batch.py; returns the exit code."""
    try:
        a = parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    frames = tuple(int(v) for v in a.frames.split(":")) if a.frames else None
    rows = batch(a.inputs, a.out, dict(device=a.device, smoothing=a.smoothing, body_model_path=a.body_model,
                                       frame_range=frames, with_mesh=not a.no_mesh,
                                       video_reference=not a.no_video))
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"[mocap] {len(rows) - failed}/{len(rows)} clips ok; summary: {Path(a.out) / SUMMARY_NAME}")
    return 1 if failed else 0


def register_cli():
    return compat.register_cli_command(CLI_COMMAND, main)


def unregister_cli(handle):
    compat.unregister_cli_command(handle)
