"""Pitch events through the pipeline on the training split's pitch — a dev set for event rules
that does not touch the OBP test pitches.

    .venv/bin/python scripts/pitch_events_dev.py [--estimator baseline] [--draws 12] [--fps 60]

CMU 124_01 (the only baseball pitch in the training split; docs/data_splits.md) retargeted to
the open body at ``--fps``, rendered through H2's camera mix (3 broadcast center-field : 1
side, the camera looking along the throw) with the detector noise model, run through the
engine (``validate_pitch_pipeline.run_pipeline``: estimate + ``analysis`` clean-up) and
``engine.pitch.analyze``. The reference is the same event rules on the rendered body's true
joints, so the numbers measure what video does to the events, not the rules' definitions
(Validation 1 does that). Prints every draw's event errors (ms) and bias / RMSE / median.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

EVENTS = ("pkh", "foot_contact", "foot_plant", "mer", "ball_release")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--estimator", default="baseline", choices=["baseline", "temporal", "temporal+d2a"])
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-foot-lock", action="store_true", help="clean without pinning planted feet")
    a = ap.parse_args(argv)
    from engine.pitch import analyze, from_motion, from_smpl_joints
    from training.bench.synthetic import training_pitch
    from training.data.bvh_to_smpl import default_body
    from training.data.synth import Synthesizer
    from validate_pitch_pipeline import run_pipeline
    body = default_body()
    m = training_pitch(body, a.fps)
    fps = float(m["fps"])
    home = analyze(from_smpl_joints(m["joints"], fps)).home_azimuth_deg
    S = Synthesizer(body)
    rng = np.random.default_rng(a.seed)
    errs = {e: [] for e in EVENTS}
    print(f"# CMU 124_01 (training split) at {fps:.0f} fps, {a.draws} draws, {a.estimator} + analysis"
          f"{' without foot locking' if a.no_foot_lock else ''}; "
          "event error (ms) = through the pipeline − the same rules on the true joints\n")
    for k in range(a.draws):
        cam = "broadcast" if k % 4 < 3 else "broadcast_side"
        s = S(m["poses"], m["trans"], m["betas"], rng, fps=fps, camera=cam, facing=np.radians(home))
        ref = analyze(from_smpl_joints(s["joints"], fps), check_delivery=False)
        res = analyze(from_motion(run_pipeline(s, body, "analysis", None, a.estimator, not a.no_foot_lock)), check_delivery=False)
        cells = []
        for e in EVENTS:
            f, g = res.clip_frame(e), ref.clip_frame(e)
            d = None if f is None or g is None else 1000.0 * (f - g) / fps
            errs[e].append(d)
            cells.append(f"{e} {'—' if d is None else f'{d:+.0f}'}")
        print(f"{k:2d} {cam:15s} {res.handedness}HP  " + "  ".join(cells))
    print("\n| event | found | bias (ms) | RMSE (ms) | median (ms) |\n|---|---|---|---|---|")
    for e, v in errs.items():
        x = np.array([d for d in v if d is not None])
        print(f"| {e} | {len(x)}/{len(v)} | {x.mean():+.1f} | {np.sqrt(np.mean(x ** 2)):.1f} | {np.median(x):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
