"""``python -m engine.pitch MOTION.npz [MOTION.npz ...] -o OUTDIR [--handedness auto|R|L]``

Analyses each Motion file (one pitch per file), writes ``<name>.json``, ``<name>_metrics.csv``,
``<name>_series.csv`` and two PNG plots per clip, and ``summary.csv`` across all clips.
"""
import argparse
import sys
from pathlib import Path

from ..errors import EngineError
from ..motion import load_motion
from . import report
from .analysis import analyze
from .joints import from_motion


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m engine.pitch", description=__doc__.split("\n\n")[0])
    ap.add_argument("motions", nargs="+", help="Motion .npz files (one pitch each)")
    ap.add_argument("-o", "--out", required=True, help="output folder")
    ap.add_argument("--handedness", default="auto", choices=["auto", "R", "L"],
                    help="throwing arm (default: detected from the faster wrist)")
    ap.add_argument("--height", type=float, default=None,
                    help="body height in metres (default: estimated from segment lengths)")
    ap.add_argument("--cutoff-hz", default="auto",
                    help="low-pass cutoff for joint centres (default auto = min(20, 0.4*fps); 0 = off)")
    ap.add_argument("--home", default="auto",
                    help="direction of home plate: auto (estimated from the throw), camera (the "
                         "camera looks toward home: a center-field view) or an azimuth in degrees "
                         "from world +x toward +y")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    cutoff = a.cutoff_hz if a.cutoff_hz == "auto" else (float(a.cutoff_hz) or None)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], 0
    for path in a.motions:
        stem = Path(path).stem
        try:
            m = load_motion(path)
            res = analyze(from_motion(m), handedness=a.handedness, height=a.height, cutoff_hz=cutoff,
                          home_azimuth_deg=a.home)
        except (EngineError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        report.write_all(res, out, stem, plots=not a.no_plots)
        rows.append(report.summary_row(res, stem))
        for w in res.warnings:
            print(f"{path}: warning: {w}", file=sys.stderr)
        print(f"{stem}: {res.handedness}HP, release at {res.event_time('ball_release'):.3f} s, "
              f"max ER {res.metrics['max_shoulder_external_rotation'] or float('nan'):.0f} deg")
    if rows:
        report.write_summary(rows, out / "summary.csv")
    return 1 if failed and not rows else 0


if __name__ == "__main__":
    sys.exit(main())
