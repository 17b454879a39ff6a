"""Headless batch: one .blend (and Motion file) per clip plus a summary CSV.

Entry points, all backed by ``batch()``:
* ``blender -b -c mocap VIDEO... -o OUT_DIR [--device cpu] [--smoothing light] ...``
  (``bpy.utils.register_cli_command``, registered with the add-on);
* ``blender -b -P scripts/blender_batch.py -- VIDEO... -o OUT_DIR ...``;
* ``from addon.batch import batch`` through the ``bpy`` module (tests).

Inputs may be videos (run through the engine) or Motion files (``.npz``, imported as they are).
A clip that fails is written to the summary with its error and the batch goes on.

Safety: arguments and the output folder are checked before any clip runs (``prepare``; the CLI
gives one ``error:`` line and exit code 2). No output replaces an input: a clip whose
``<stem>.npz`` / ``.blend`` / exports would land on an input (or on another clip's files) is
written as ``<stem>_1``, ...; a Motion input already in the output folder under its own name
is imported as it is and not rewritten. summary.csv is merged by clip into an existing one (a
clip's new row replaces its old row; the others stay). Ctrl-C stops the running clip (and the
worker processes), writes the summary with ``interrupted`` for the clips not finished, and
the CLI exits 130. The .blend refers to its video by absolute path.

Parallel (``workers=N`` / ``--workers N``): the engine runs for N clips at a time in worker
processes (``engine.distributed``: spawned interpreters that import only the engine, never
``bpy``; each writes the clip's Motion file ``<stem>.npz``), and this Blender process builds the
.blend files from those Motion files, one after another, as results come in order. Building
is seconds per clip; the engine is minutes, so that is where the parallelism pays.
``backend="dask"`` / ``"ray"`` (``--backend``, with ``--address`` of a cluster) sends the same
per-clip jobs to many machines; those packages are optional and installed only when wanted.
Results are the same as one clip at a time (the engine is deterministic per clip).
With ``pitch=True`` (``--pitch``) every clip also gets a pitch analysis: timeline markers in its
.blend, a report folder ``<stem>_pitch/`` (JSON, CSV, PNG) and the event times and metrics as
extra summary columns. ``pitch_status``: ok; check (a metric outside its plausible range or an
event missing, listed in ``pitch_flags``); not_a_pitch (no delivery, reason in
``pitch_message``, no metrics); failed. The clip itself stays ok.
"""
import argparse
import csv
import os
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import bpy

from . import compat
from .enginepath import ensure_engine

CLI_COMMAND = "mocap"
SUMMARY_NAME = "summary.csv"
INTERRUPTED = "interrupted"
SUMMARY_FIELDS = ("clip", "status", "frames", "valid_frames", "fps", "reprojection_median", "reprojection_p90",
                  "blend", "motion", "seconds", "message")
_DEFAULTS = dict(device="auto", smoothing="light", body_model_path=None, frame_range=None, estimator="auto",
                 refine=True, follow=True, with_mesh=True, video_reference=True, pitch=False, pitch_handedness="AUTO",
                 pitch_home="AUTO", pitch_plots=True,
                 export=(), rig_blend=None, rig_object=None, rig_preset=None, root_motion="hips", reduce=None)


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


def _abs(path):
    return Path(os.path.expanduser(str(path))).resolve()


def clip_outputs(out_dir, stem, opts):
    """What one clip writes in ``out_dir``: Motion file, .blend, exports, pitch report folder."""
    paths = [out_dir / f"{stem}.npz", out_dir / f"{stem}.blend"]
    paths += [out_dir / f"{stem}.{fmt.lower()}" for fmt in opts.export or ()]
    if opts.pitch:
        paths.append(out_dir / f"{stem}_pitch")
    return paths


def _row_files(row):
    """The output paths a summary row names."""
    names = [row.get("blend"), row.get("motion"), row.get("pitch_report")] + (row.get("exports") or "").split(";")
    return {_abs(n) for n in names if n}


def plan_stems(inputs, out_dir, opts, previous=()):
    """One output stem per input (absolute paths) such that no output replaces an input or the
    output of another clip, of this batch or of an earlier one listed in ``previous`` (summary rows).

    A clip keeps the stem of its earlier row, else takes its file's stem, else ``stem_1``,
    ``stem_2``, ... A Motion input that already is its own Motion output (``out/clip.npz`` with
    ``-o out``) is allowed: it is imported as it is and not rewritten."""
    inputs = [Path(p) for p in inputs]
    input_set = set(inputs)
    prev = {_abs(r["clip"]): r for r in previous if r.get("clip")}
    taken = set()
    for clip, row in prev.items():
        if clip not in input_set:
            taken |= _row_files(row)
    stems = []
    for p in inputs:
        old = prev.get(p, {}).get("blend")
        names = ([Path(old).stem] if old else []) + [p.stem] + [f"{p.stem}_{n}" for n in range(1, 100000)]
        for stem in names:
            outs = {_abs(o) for o in clip_outputs(out_dir, stem, opts)}
            own = {p} if p.suffix.lower() == ".npz" else set()
            if not outs & taken and not (outs & input_set) - own:
                break
        stems.append(stem)
        taken |= outs
    return stems


def read_summary(path):
    """The rows and columns of an existing summary.csv (empty when there is none).

    EngineError when the file is there but is not a batch summary: it is the user's, and a
    re-run must not replace it."""
    ensure_engine()
    from engine.errors import EngineError
    path = Path(path)
    if not path.exists():
        return [], []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [{k: v for k, v in r.items() if k is not None} for r in reader]
            fields = list(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EngineError(f"{path} cannot be read as a batch summary ({exc}): move it or choose another "
                          "output folder") from None
    if not {"clip", "status"} <= set(fields):
        raise EngineError(f"{path} is not a batch summary (no clip and status columns): move it or "
                          "choose another output folder")
    return rows, fields


def merge_rows(old_rows, new_rows):
    """Earlier summary rows with this run's rows merged in by clip: a clip's new row replaces
    its old one in place, other old rows stay, new clips are appended."""
    new = {_abs(r["clip"]): r for r in new_rows}
    out, used = [], set()
    for r in old_rows:
        key = _abs(r["clip"]) if r.get("clip") else None
        if key in new:
            if key not in used:
                out.append(new[key])
                used.add(key)
        else:
            out.append(r)
    out += [r for r in new_rows if _abs(r["clip"]) not in used]
    return out


def write_summary(path, rows, fields=()):
    """Write ``rows`` to ``path`` atomically (a Ctrl-C mid-write leaves the old file whole).

    Columns: ``fields`` (the old file's order), then the fixed ones, then any others (pitch,
    retargeting) in first-seen order."""
    cols = list(fields) + [f for f in SUMMARY_FIELDS if f not in fields]
    for r in rows:
        cols += [k for k in r if k not in cols]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def prepare(videos, out_dir, options=None):
    """Everything checked before any clip runs: the output folder (``engine.outputs``), an
    existing summary.csv, and one stem per clip whose outputs replace no input.

    Returns a namespace: ``inputs`` (absolute, each once), ``out_dir`` (absolute), ``stems``,
    ``summary`` (its path), ``previous`` / ``fields`` (the existing summary's rows and columns).
    Raises EngineError with a message for the user."""
    ensure_engine()
    from engine.outputs import check_output_dir, check_output_file, check_output_names
    opts = _options(options)
    inputs = list(dict.fromkeys(_abs(v) for v in videos))  # a clip given twice runs once
    out = check_output_dir(out_dir, inputs=inputs)
    summary = check_output_file(out / SUMMARY_NAME, inputs=inputs, what="summary file")
    previous, fields = read_summary(summary)
    stems = plan_stems(inputs, out, opts, previous)
    files = [f for p, s in zip(inputs, stems) for f in clip_outputs(out, s, opts)
             if f != p and not f.name.endswith("_pitch")]
    check_output_names(files, inputs=inputs)
    return SimpleNamespace(inputs=inputs, out_dir=out, stems=stems, summary=summary, previous=previous,
                           fields=fields)


def _pipeline_options(opts):
    """The engine's options for a batch clip (a dict: it travels to worker processes).

    Pitch batches default to the baseline estimator: on H2 (OBP pitches) the learned temporal
    model smooths the throwing arm to about half its peak angular velocity (README, model card),
    the baseline keeps it; a named estimator is always used. Their subject is the pitcher
    (``engine.observe.track.pitcher_score``: central, standing, throwing), not the largest person
    (from centre field the batter can be larger)."""
    estimator = opts.estimator
    if opts.pitch and estimator == "auto":
        estimator = "baseline"
    return dict(device=opts.device, smoothing=opts.smoothing, body_model_path=opts.body_model_path,
                frame_range=tuple(opts.frame_range) if opts.frame_range else None, estimator=estimator,
                refine=bool(opts.refine), follow=bool(opts.follow), subject="pitcher" if opts.pitch else "largest")


def process_clip(path, stem, out_dir, opts, progress=None, engine_motion=None):
    """One clip → ``stem.npz`` + ``stem.blend`` in ``out_dir``; returns a summary row (dict).

    ``engine_motion``: the Motion file that one of the parallel batch's engine processes
    (``--workers``) already wrote for this video: it is imported instead of running the engine here."""
    ensure_engine()
    from engine.motion import load_motion
    from .scene import build_scene
    path = Path(path)
    body = build_scene.load_body(opts.body_model_path)  # fail fast, before the engine runs
    if engine_motion is not None:
        motion = load_motion(engine_motion)
        video = str(_abs(path))
    elif path.suffix.lower() == ".npz":
        motion = load_motion(path)
        video = (motion.source or {}).get("video")
        video = str(_abs(video)) if video and _abs(video).is_file() else None
    else:
        from engine.pipeline import PipelineOptions, run
        motion = run(str(path), PipelineOptions(**_pipeline_options(opts)), progress=progress)
        video = str(_abs(path))
    _fresh_file()
    scene = bpy.context.scene
    scene.name = stem
    add_video = video is not None and opts.video_reference
    blend_path = out_dir / f"{stem}.blend"
    motion_path = out_dir / f"{stem}.npz"
    result = build_scene.import_motion(motion, body, scene, name=stem, video_path=video if add_video else None,
                                       with_mesh=opts.with_mesh, with_camera=add_video, motion_path=motion_path)
    pitch_cols = pitch_columns(result.armature, scene, motion, out_dir / f"{stem}_pitch", opts) if opts.pitch else {}
    rig_cols = retarget_columns(result.armature, scene, motion, stem, out_dir, opts)
    # relative_remap=False: the video stays the absolute path it was loaded from (a remap turns a
    # path into a "//../.." one relative to the .blend, wrong when it was given relative to the cwd)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path), check_existing=False, copy=True, relative_remap=False)
    if motion_path.resolve() != path.resolve() and (engine_motion is None or
                                                    Path(engine_motion).resolve() != motion_path.resolve()):
        motion.save(motion_path)
    rep = (motion.source or {}).get("reprojection") or {}
    return {"frames": motion.num_frames, "valid_frames": result.keyed_frames, "fps": f"{motion.fps:g}",
            "reprojection_median": rep.get("median", ""), "reprojection_p90": rep.get("p90", ""),
            "blend": str(blend_path), "motion": str(motion_path), **pitch_cols, **rig_cols}


def retarget_columns(smpl_rig, scene, motion, stem, out_dir, opts):
    """``rig_blend``: append the target armature (and the objects it carries), retarget the clip
    onto it (``rig_preset``, detected when absent; ``reduce``: key reduction tolerance in cm);
    ``export``: write ``stem.bvh`` / ``stem.fbx`` of the retargeted rig (else of the SMPL
    armature). Returns summary columns."""
    from .retarget import apply, export
    cols = {}
    target = smpl_rig
    if opts.rig_blend:
        target, preset = load_rig(opts.rig_blend, opts.rig_object, opts.rig_preset, scene)
        ropts = apply.RetargetOptions(root_motion=opts.root_motion, reduce=opts.reduce is not None)
        if opts.reduce is not None:
            ropts.tolerance_cm = float(opts.reduce)
        res = apply.retarget_motion(motion, target, preset, ropts, scene, name=stem)
        cols.update(rig=target.name, rig_preset=str(preset), rig_scale=f"{res.scale:.4f}", rig_keys=str(res.keys))
    files = []
    for fmt in opts.export or ():
        files.append(str(export.export_armature(target, out_dir / f"{stem}.{fmt.lower()}", fmt, scene=scene)))
    if files:
        cols["exports"] = ";".join(files)
    return cols


def load_rig(blend, object_name, preset, scene):
    """Append the target armature from ``blend`` into ``scene``: the named object, else the
    armature a rig preset matches (most bones first). Only it and the objects it carries
    (children, meshes it deforms) are linked into the scene; its bone shapes (Rigify's widgets)
    stay in the file unlinked, the file's other objects (a metarig) are removed again.
    Returns (armature, preset)."""
    from .retarget import names
    with bpy.data.libraries.load(str(blend), link=False) as (src, dst):
        dst.objects = [n for n in src.objects if object_name in (None, n)]
    loaded = [o for o in dst.objects if o is not None]
    arms = [o for o in loaded if o.type == "ARMATURE"]
    if not arms:
        for o in loaded:
            bpy.data.objects.remove(o)
        raise ValueError(f"no armature {object_name or ''} in {blend}".replace("  ", " "))
    found = {o: preset or names.detect_preset(o) for o in arms}
    cands = sorted((o for o in arms if found[o]), key=lambda o: -len(o.data.bones)) or arms
    target = cands[0]
    if found[target] is None:
        for o in loaded:
            bpy.data.objects.remove(o)
        raise ValueError(f"no rig preset matches {target.name}; pass --rig-preset")
    keep = {target}
    for o in loaded:
        if o.parent == target or any(m.type == "ARMATURE" and m.object == target for m in o.modifiers):
            keep.add(o)
    shapes = {pb.custom_shape for pb in target.pose.bones if pb.custom_shape is not None}
    for o in [o for o in loaded if o not in keep and o not in shapes]:  # widgets stay, unlinked
        bpy.data.objects.remove(o)
    for o in keep:
        scene.collection.objects.link(o)
    return target, found[target]


def pitch_columns(rig, scene, motion, report_dir, opts):
    """Pitch analysis of one imported clip → summary columns (markers land in the .blend)."""
    from engine.pitch import report
    from .scene import pitch
    try:
        res, _ = pitch.analyse_rig(rig, scene, handedness=opts.pitch_handedness, home=opts.pitch_home,
                                   out_dir=report_dir, plots=opts.pitch_plots, motion=motion)
    except pitch.NotAPitch as exc:     # no delivery in the motion: no events, no metrics
        return {"pitch_status": "not_a_pitch", "pitch_message": str(exc)}
    except pitch.PitchError as exc:
        return {"pitch_status": "failed", "pitch_message": str(exc)}
    row = report.summary_row(res, rig.name)
    out = {"pitch_status": row.pop("status"), "pitch_flags": row.pop("flags"),
           "pitch_handedness": row.pop("handedness"),
           "pitch_height_m": row.pop("height_m"), "pitch_warnings": row.pop("warnings"),
           "pitch_report": str(report_dir)}
    for k in ("clip", "fps"):
        row.pop(k, None)
    out.update(row)
    return out


def run_engine_parallel(videos, stems, out_dir, opts, workers=2, backend="processes", address=None, log=print):
    """The engine for every video input (not ``.npz``) in parallel → {index: engine_job result}.

    Each job writes ``out_dir/<stem>.npz``; see ``engine.distributed``."""
    ensure_engine()
    from engine.distributed import run_jobs
    popts = _pipeline_options(opts)
    todo = [k for k, p in enumerate(videos) if Path(p).suffix.lower() != ".npz"]
    jobs = [{"video": str(Path(videos[k]).resolve()), "motion": str((out_dir / f"{stems[k]}.npz").resolve()),
             "options": popts} for k in todo]

    def done(res):
        if log:
            log(f"[mocap] engine {res['status']:6s} {res['video']} ({res['seconds']:.1f} s)")
            if res.get("traceback"):
                log(res["traceback"])
    results = run_jobs(jobs, workers=workers, backend=backend, address=address, on_done=done)
    return dict(zip(todo, results))


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the batch; ``rows`` are this run's rows (finished ones and "interrupted"),
    already written to ``summary``."""

    def __init__(self, rows, summary):
        super().__init__("batch interrupted")
        self.rows, self.summary = rows, summary


def _interrupted_row(path, old):
    """The row of a clip that did not finish; an earlier run's files (its row said ok) stay
    named, since they are still on disk."""
    row = dict.fromkeys(SUMMARY_FIELDS, "")
    row.update(clip=str(path), status=INTERRUPTED,
               message="the batch was interrupted (Ctrl-C) before this clip finished")
    if old and old.get("status") == "ok":
        row.update(blend=old.get("blend", ""), motion=old.get("motion", ""))
        row["message"] += "; the files named are from an earlier run"
    return row


def batch(videos, out_dir, options=None, log=print, workers=1, backend="processes", address=None):
    """Process every clip; write ``out_dir/summary.csv``; return this run's summary rows (dicts).

    Checked first (``prepare``, EngineError before any clip runs): the output folder can be
    written and is no input, no output of a clip replaces an input (a clip whose names would
    clash gets the next free stem, ``clip_1``). An existing summary.csv is merged by clip: a
    clip's new row replaces its old one, other rows are kept. Ctrl-C (KeyboardInterrupt) stops
    the running clip (and the worker processes), writes the summary with the finished rows and
    ``interrupted`` for the rest, then raises ``BatchInterrupted``.

    ``workers`` > 1 (or a ``dask`` / ``ray`` ``backend``): run the engine for several clips at
    once in worker processes, then build the .blend files here (see the module doc)."""
    opts = _options(options)
    plan = prepare(videos, out_dir, opts)
    out_dir, stems = plan.out_dir, plan.stems
    previous = {_abs(r["clip"]): r for r in plan.previous if r.get("clip")}
    rows = [_interrupted_row(p, previous.get(p)) for p in plan.inputs]
    interrupted = False
    try:
        engine = {}
        if int(workers or 1) > 1 or backend != "processes":
            engine = run_engine_parallel(plan.inputs, stems, out_dir, opts, workers, backend, address, log)
        for k, (path, stem) in enumerate(zip(plan.inputs, stems)):
            rows[k] = _run_clip(path, stem, out_dir, opts, engine.get(k), log)
    except KeyboardInterrupt:
        interrupted = True
    write_summary(plan.summary, merge_rows(plan.previous, rows), plan.fields)
    if interrupted:
        raise BatchInterrupted(rows, plan.summary)
    return rows


def _run_clip(path, stem, out_dir, opts, pre, log):
    """One clip's summary row; a failure is the row's message (KeyboardInterrupt goes through)."""
    t0 = time.perf_counter()
    row = dict.fromkeys(SUMMARY_FIELDS, "")
    row["clip"] = str(path)
    try:
        if pre is not None and pre["status"] != "ok":
            row["status"], row["message"] = "failed", pre["message"]
        else:
            row.update(process_clip(path, stem, out_dir, opts, engine_motion=None if pre is None else pre["motion"]))
            row["status"] = "ok"
    except Exception as exc:  # report and go on with the next clip
        ensure_engine()
        from engine.errors import EngineError
        row["status"] = "failed"
        row["message"] = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, EngineError) and log:
            log(traceback.format_exc())
    row["seconds"] = f"{time.perf_counter() - t0 + (pre or {}).get('seconds', 0.0):.2f}"
    if log:
        log(f"[mocap] {row['status']:6s} {path}" + (f": {row['message']}" if row["message"] else ""))
    return row


def _input_file(text):
    """argparse type: a file that exists (videos, Motion files, a body model)."""
    p = Path(os.path.expanduser(text))
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file" if p.exists() else f"{text} not found")
    return text


def _split_rig(text):
    """``FILE[.blend][:Object]`` → (the .blend path, the object name or None)."""
    rig_blend, _, rig_object = text.partition(".blend:")
    rig_blend = rig_blend if rig_blend.endswith(".blend") else rig_blend + ".blend"
    return rig_blend, rig_object or None


def _rig_file(text):
    """argparse type for ``--rig``: its .blend file exists."""
    _input_file(_split_rig(text)[0])
    return text


def parse_args(argv):
    """The batch's arguments, each checked by its argparse type; a bad one exits 2 with one line."""
    ensure_engine()
    from engine.argtypes import OneLineParser, frame_range, int_at_least, positive_float
    from .scene.keyreduce import DEFAULT_TOLERANCE_CM
    p = OneLineParser(prog=f"blender -b -c {CLI_COMMAND}",
                      description="Video (or Motion .npz) → .blend per clip + summary.csv (merged by "
                                  "clip into an existing one)")
    p.add_argument("inputs", nargs="+", type=_input_file, help="videos or Motion files (.npz)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    p.add_argument("--smoothing", choices=("none", "light", "animation", "analysis"), default=None,
                   help="smoothing preset (default light; analysis with --pitch, which keeps fast peaks)")
    p.add_argument("--estimator", choices=("auto", "temporal", "baseline"), default="auto",
                   help="temporal (learned), baseline (analytic IK) or auto (default: temporal when "
                        "its weights are installed)")
    p.add_argument("--no-refine", action="store_true",
                   help="learned estimator: skip the per-frame D2A refinement (a little faster)")
    p.add_argument("--no-follow", action="store_true",
                   help="detect and track everyone on every frame instead of following the subject "
                        "on a crop (slower; the engine's --no-follow)")
    p.add_argument("--body-model", default=None, type=_input_file,
                   help="your SMPL .pkl/.npz (default: the open body)")
    p.add_argument("--frames", default=None, type=frame_range,
                   help="frame range FIRST:LAST (last exclusive, may be empty: to the end)")
    p.add_argument("--no-mesh", action="store_true", help="armature only")
    p.add_argument("--no-video", action="store_true", help="no camera / video reference plane")
    p.add_argument("--pitch", action="store_true",
                   help="pitch analysis per clip: timeline markers, <clip>_pitch/ report, metrics in summary.csv")
    p.add_argument("--handedness", choices=("auto", "R", "L"), default="auto",
                   help="throwing arm for --pitch (default: detected)")
    p.add_argument("--home", choices=("auto", "camera"), default="auto",
                   help="home plate for --pitch: estimated, or along the camera's view (center field)")
    p.add_argument("--export", default="", help="also export each clip: bvh, fbx or bvh,fbx")
    p.add_argument("--rig", default=None, type=_rig_file,
                   help="retarget onto the armature in this .blend (FILE or FILE:Object)")
    p.add_argument("--rig-preset", default=None, help="rig preset id or JSON file (default: detected)")
    p.add_argument("--root-motion", choices=("hips", "root_bone", "object", "in_place"), default="hips")
    p.add_argument("--reduce", nargs="?", type=positive_float, const=DEFAULT_TOLERANCE_CM, default=None, metavar="CM",
                   help="key reduction of the retargeted rig: every bone within CM centimetres in world space "
                        f"(default {DEFAULT_TOLERANCE_CM:g}; off without --reduce)")
    p.add_argument("--workers", type=int_at_least(1), default=1,
                   help="clips whose engine runs at once, in worker processes (default 1)")
    p.add_argument("--backend", choices=("processes", "dask", "ray"), default="processes",
                   help="where the parallel engine jobs run: local processes (default), or a Dask / "
                        "Ray cluster (optional packages; see engine/distributed.py)")
    p.add_argument("--address", default=None, help="Dask scheduler or Ray cluster address")
    return p.parse_args(argv)


def _error(message):
    sys.stderr.write(f"error: {message}\n")
    return 2


def main(argv):
    """CLI body shared by ``-c mocap`` and scripts/blender_batch.py; returns the exit code:
    0 all clips ok, 1 some failed, 2 a bad argument (one ``error:`` line, nothing written),
    130 interrupted (Ctrl-C; the summary has the finished rows)."""
    try:
        try:
            a = parse_args(list(argv))
        except SystemExit as exc:  # argparse: --help (0) or one error line already printed (2)
            return exc.code if isinstance(exc.code, int) else 2
        from engine.errors import EngineError
        try:
            rig = _rig_options(a)
        except SystemExit as exc:
            return _error(str(exc.code).removeprefix("error: "))
        smoothing = a.smoothing or ("analysis" if a.pitch else "light")
        options = dict(device=a.device, smoothing=smoothing, body_model_path=a.body_model, estimator=a.estimator,
                       refine=not a.no_refine, follow=not a.no_follow, frame_range=a.frames, with_mesh=not a.no_mesh,
                       video_reference=not a.no_video, pitch=a.pitch, pitch_handedness=a.handedness.upper(),
                       pitch_home=a.home.upper(), **rig)
        try:
            rows = batch(a.inputs, a.out, options, workers=a.workers, backend=a.backend, address=a.address)
        except EngineError as exc:  # found by prepare() before any clip ran
            return _error(str(exc))
    except BatchInterrupted as exc:
        done = sum(r["status"] != INTERRUPTED for r in exc.rows)
        sys.stderr.write(f"[mocap] interrupted: {done}/{len(exc.rows)} clips finished; summary: {exc.summary}\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("[mocap] interrupted before any clip ran; nothing written\n")
        return 130
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"[mocap] {len(rows) - failed}/{len(rows)} clips ok; summary: {Path(a.out) / SUMMARY_NAME}")
    return 1 if failed else 0


def _rig_options(a):
    rig_blend, rig_object = None, None
    if a.rig:
        rig_blend, rig_object = _split_rig(a.rig)
    export = tuple(f for f in a.export.lower().split(",") if f)
    bad = set(export) - {"bvh", "fbx"}
    if bad:
        raise SystemExit(f"--export: unknown format(s) {', '.join(sorted(bad))}")
    return dict(export=export, rig_blend=rig_blend, rig_object=rig_object, rig_preset=a.rig_preset,
                root_motion=a.root_motion, reduce=a.reduce)


def register_cli():
    return compat.register_cli_command(CLI_COMMAND, main)


def unregister_cli(handle):
    compat.unregister_cli_command(handle)
