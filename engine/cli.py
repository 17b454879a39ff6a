"""``python -m engine VIDEO -o motion.npz``: the engine alone, with a progress bar."""
import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__
from .argtypes import OneLineParser, focal_length, int_at_least, positive_float, subject_rule
from .errors import EngineError


def build_parser():
    p = OneLineParser(
        prog="python -m engine",
        description="Estimate the 3D body motion of the person in a video and write a Motion "
                    "file (.npz: SMPL-24 rotations, shape, root translation, per-joint confidence).")
    p.add_argument("video", help="input video file")
    p.add_argument("-o", "--output", help="Motion file to write (default: VIDEO's name + .motion.npz)")
    p.add_argument("--start", type=int_at_least(0), default=0, help="first frame (default 0)")
    p.add_argument("--end", type=int_at_least(1), default=None, help="stop before this frame (default: end of clip)")
    p.add_argument("--focal", type=focal_length, default=None,
                   help="focal length in pixels, or 'auto' to estimate it from perspective (docs/focal.md: "
                        "on the one real clip with a known focal it was less accurate than the default); "
                        "default: the longer image side")
    p.add_argument("--body-model", default=None,
                   help="your own SMPL model file (.pkl or .npz); default: the bundled open body")
    p.add_argument("--estimator", default="auto", choices=("auto", "temporal", "baseline"),
                   help="temporal (the learned temporal model, shipped in engine/data/temporal or "
                        "$MOCAP_TEMPORAL_WEIGHTS), baseline (analytic IK on MediaPipe's world "
                        "landmarks, no learned weights), or auto (default: temporal when its weights "
                        "are found, else baseline)")
    p.add_argument("--no-refine", action="store_true",
                   help="temporal estimator: skip the per-frame D2A refinement (used when its d2a.onnx "
                        "is in the weights folder)")
    p.add_argument("--device", default="auto", choices=("auto", "gpu", "cpu"))
    g = p.add_argument_group("clean-up")
    g.add_argument("--smoothing", default="light", choices=("none", "light", "animation", "analysis"),
                   help="smoothing preset (presets/smoothing; default light; 'analysis' keeps fast peaks)")
    g.add_argument("--no-foot-lock", action="store_true", help="do not pin planted feet")
    g = p.add_argument_group("subject (when several people are in view)")
    g.add_argument("--subject", default="largest", type=subject_rule,
                   help="largest (default: biggest over the clip), central, pitcher (the person who "
                        "looks like the pitcher: central, standing, throwing; not by size), point "
                        "(see --point), or a track id from --list-people")
    g.add_argument("--point", type=float, nargs=2, metavar=("X", "Y"), default=None,
                   help="the subject is the person under this pixel (full-resolution, upright) "
                        "on --subject-frame")
    g.add_argument("--subject-frame", type=int_at_least(0), default=0, help="frame number --point refers to (default 0)")
    g.add_argument("--list-people", action="store_true",
                   help="detect and track everyone, print the tracks (id, frames, box) and exit")
    g.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                   help="find everyone on every 6th frame and follow the subject on a crop around it "
                        "(default: faster, and it keeps to the subject where people overlap); "
                        "--no-follow detects and tracks everyone on every frame instead. Track ids "
                        "from --list-people belong to the mode they were listed with")
    g = p.add_argument_group("decoding")
    g.add_argument("--stride", type=int_at_least(1), default=1, help="process every n-th frame (default 1)")
    g.add_argument("--max-side", type=int_at_least(16), default=None,
                   help="processing resolution: downscale so the longer side is at most this "
                        "(e.g. 1280 for 4K input; default: full resolution)")
    g.add_argument("--num-poses", type=int_at_least(1), default=4, help="people detected per frame (default 4)")
    g.add_argument("--no-cache", action="store_true",
                   help="re-run detection even if this clip was processed with the same options "
                        "(cache: $MOCAP_CACHE_DIR or ~/.cache/mocap-engine)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only errors (no progress bar, warnings or summary; warnings are kept "
                        "in the Motion file's source)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _list_people(video, options):
    """The tracks the subject rules choose from: the survey's (the default, ``--follow``) or,
    with ``--no-follow``, those of every frame."""
    from .pipeline import detect, survey
    from .observe.track import track_people, track_summaries
    try:
        if options.follow:
            dets, tid = survey(video, options)
        else:
            dets, _ = detect(video, options)
            tid = track_people(dets)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tracks = track_summaries(dets, tid)
    if not tracks:
        print("no person found")
    for t in tracks:
        print(f"track {t['id']}: frames {t['first_frame']}–{t['last_frame']} ({t['frames']} seen), "
              f"mean box x0,y0,x1,y1 = {t['mean_box']}")
    return 0


def _check_args(p, args):
    """Checks that need more than one argument or the file system; all before any decoding."""
    if args.end is not None and args.end <= args.start:
        p.error(f"argument --end: must be after --start ({args.start}), got {args.end}")
    if args.subject == "point" and args.point is None:
        p.error("argument --subject point needs --point X Y")
    video = Path(args.video)
    if video.is_dir():
        p.error(f"input {video} is a folder, not a video file")
    if not video.is_file():
        p.error(f"input video not found: {video}")
    if args.list_people:
        return None
    out = Path(args.output) if args.output else video.with_suffix(".motion.npz")
    from .outputs import check_output_file
    inputs = [video] + ([args.body_model] if args.body_model else [])
    try:
        out = check_output_file(out, inputs=inputs, what="output")
    except EngineError as exc:
        p.error(str(exc))
    if out.suffix.lower() != ".npz":
        p.error(f"argument -o: a Motion file ends in .npz, got {out.name}")
    return out


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    out = _check_args(p, args)
    try:
        return _run(args, out)
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        return 130
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if os.environ.get("MOCAP_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (MOCAP_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


def _run(args, out):
    from .pipeline import PipelineOptions, run
    options = PipelineOptions(device=args.device, body_model_path=args.body_model,
                              frame_range=(args.start, args.end) if (args.start or args.end) else None,
                              focal=args.focal, estimator=args.estimator, refine=not args.no_refine,
                              subject=args.subject,
                              subject_point=tuple(args.point) if args.point else None,
                              subject_frame=args.subject_frame, stride=args.stride,
                              max_side=args.max_side, num_poses=args.num_poses,
                              use_cache=not args.no_cache, smoothing=args.smoothing,
                              foot_lock=not args.no_foot_lock, follow=args.follow).check()
    if args.list_people:
        return _list_people(args.video, options)
    if args.body_model:  # a bad body model fails now, in one line, not under the progress bar
        from .body.model import load_body_model
        load_body_model(args.body_model)
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
                   file=sys.stderr)

    def progress(fraction, message):
        if bar is not None:
            bar.n = int(1000 * fraction)
            bar.set_description_str(message.split(":")[0])
            bar.refresh()

    t0 = time.perf_counter()
    try:
        motion = run(args.video, options, progress=progress)
        motion.save(out)
    finally:
        if bar is not None:
            bar.close()
    if args.quiet:  # warnings stay in the Motion file's source["warnings"]
        return 0
    for w in motion.source.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    dt = time.perf_counter() - t0
    n, v = motion.num_frames, int(motion.valid.sum())
    print(f"{out}: {n} frames, {v} valid ({100.0 * v / max(n, 1):.0f}%), "
          f"{dt:.1f} s, {n / dt:.1f} frames/s")
    rep = motion.source.get("reprojection")
    if rep:
        print(f"reprojection: median {rep['median']:.1f} %, p90 {rep['p90']:.1f} % of the person's height "
              "(body landmarks through the camera vs the detected keypoints)")
    return 0
