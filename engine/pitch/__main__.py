"""``python -m engine.pitch MOTION.npz [MOTION.npz ...] -o OUTDIR [--handedness auto|R|L]``

Analyses each Motion file (one pitch per file), writes ``<name>.json``, ``<name>_metrics.csv``,
``<name>_series.csv`` and two PNG plots per clip, and ``summary.csv`` across all clips.

A file that is not a pitch (no delivery pattern) gets one line ``<file>: not a pitch: <reason>``
and no report; a file that cannot be read gets one ``error:`` line. A pitch whose metrics fall
outside their plausible ranges is reported with status "check" and one ``<file>: check: ...``
line. Exit code: 0 when every file was analysed, 1 when some were and others were not (not a
pitch or unreadable: the reports of the others are written), 2 when none was or the arguments
are wrong (``-o`` is checked before any work).
"""
import sys
from pathlib import Path

from ..argtypes import OneLineParser, positive_float
from ..errors import EngineError
from ..motion import load_motion
from ..outputs import check_output_dir
from . import report
from .analysis import analyze
from .joints import from_motion
from .plausibility import NotAPitch


def _cutoff(text):
    """``auto``, 0 (off) or a cutoff in Hz > 0."""
    if text == "auto":
        return "auto"
    if text.strip() in ("0", "0.0"):
        return None
    return positive_float(text)


def _home(text):
    """``auto``, ``camera`` or an azimuth in degrees."""
    if text in ("auto", "camera"):
        return text
    try:
        return float(text)
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"use auto, camera or an azimuth in degrees, got {text!r}") from None


def analyse_file(path, a):
    """One Motion file → PitchAnalysis (raises NotAPitch, EngineError or ValueError)."""
    m = load_motion(path)
    return analyze(from_motion(m), handedness=a.handedness, height=a.height, cutoff_hz=a.cutoff_hz,
                   home_azimuth_deg=a.home)


def main(argv=None):
    ap = OneLineParser(prog="python -m engine.pitch", description=__doc__.split("\n\n")[0])
    ap.add_argument("motions", nargs="+", help="Motion .npz files (one pitch each)")
    ap.add_argument("-o", "--out", required=True, help="output folder")
    ap.add_argument("--handedness", default="auto", choices=["auto", "R", "L"],
                    help="throwing arm (default: detected from the faster wrist)")
    ap.add_argument("--height", type=positive_float, default=None,
                    help="body height in metres (default: estimated from segment lengths)")
    ap.add_argument("--cutoff-hz", type=_cutoff, default="auto",
                    help="low-pass cutoff for joint centres (default auto = min(20, 0.4*fps); 0 = off)")
    ap.add_argument("--home", type=_home, default="auto",
                    help="direction of home plate: auto (estimated from the throw), camera (the "
                         "camera looks toward home: a center-field view) or an azimuth in degrees "
                         "from world +x toward +y")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    try:
        out = check_output_dir(a.out, inputs=a.motions)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows, failed = [], 0
    for path in a.motions:
        stem = Path(path).stem
        try:
            res = analyse_file(path, a)
            report.write_all(res, out, stem, plots=not a.no_plots)
        except NotAPitch as exc:
            print(f"{path}: not a pitch: {exc.reason}", file=sys.stderr)
            failed += 1
            continue
        except (EngineError, ValueError, OSError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # noqa: BLE001 -- a bug must still be one line, never a traceback
            print(f"error: {path}: analysis failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            failed += 1
            continue
        rows.append(report.summary_row(res, stem))
        for w in res.warnings:
            print(f"{path}: warning: {w}", file=sys.stderr)
        if res.flags:
            print(f"{path}: check: " + "; ".join(f"{k} {v}" for k, v in res.flags.items()), file=sys.stderr)
        print(f"{stem}: {res.handedness}HP, release at {res.event_time('ball_release'):.3f} s, "
              f"max ER {res.metrics['max_shoulder_external_rotation'] or float('nan'):.0f} deg, "
              f"status {res.status}")
    if rows:
        try:
            report.write_summary(rows, out / "summary.csv")
        except OSError as exc:
            print(f"error: cannot write {out / 'summary.csv'}: {exc}", file=sys.stderr)
            return 2
    if not rows:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
