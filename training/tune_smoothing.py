"""Tune a smoothing preset on the validation split (H1's protocol on the val subjects, never
the test subjects H1 reports; docs/data_splits.md):

    .venv/bin/python -m training.tune_smoothing --source temporal+d2a --base light \\
        --rotation-accel 150,200,300 --min-angle-sigma 0.02,0.03,0.05

Every setting is the ``--base`` preset with ``rotation_accel`` and ``min_angle_sigma``
replaced; the source runs once per sequence and each setting cleans its output with
``engine.clean.clean_motion`` (smoothing, ground, contacts, foot locking), as the bench's
``+light`` rows do. Prints H1's table (MPJPE, PA-MPJPE, PVE, accel, skate) for the raw source
and every setting, and how much of the motion's fast moments each keeps: the peak speed of the
wrists and ankles relative to the hips (99th percentile over frames) as a ratio to the ground
truth's, median (and 10th percentile) over sequences — noise lifts it above 1 in the raw
estimate, over-smoothing drops it below.

``--protocol pitch`` checks a pitching preset without the test data: CMU 124_01 (the training
split's baseball pitch; docs/data_splits.md) through H2's camera mix (3 broadcast center-field : 1
side) at 30 fps, several draws, scored like H2 (12 limb joints, MPJPE, PA-MPJPE, accel, and the
throwing arm's peak angular velocities against the rendered truth). ``--peak-gate`` varies the
base preset's manoeuvre gate (``0`` = keep_peaks off):

    .venv/bin/python -m training.tune_smoothing --protocol pitch --source baseline --base analysis \
        --rotation-accel 400 --peak-gate 0,1,2,4,16
"""
import argparse
import dataclasses
import importlib
import sys
import time

import numpy as np

from engine.clean.smooth import load_preset
from engine.body.skeleton import JOINT_INDEX as J
from training.bench import synthetic as bench

END_EFFECTORS = [J[n] for n in ("left_wrist", "right_wrist", "left_ankle", "right_ankle")]


def peak_limb_speed(joints, fps, valid=None):
    """99th percentile over frames of the wrists' and ankles' speed relative to the hip
    midpoint (m/s), from world joints (T,24,3); consecutive valid frames only."""
    j = np.asarray(joints, np.float64)
    rel = j[:, END_EFFECTORS] - j[:, bench.HIPS].mean(axis=1, keepdims=True)
    v = np.linalg.norm(np.diff(rel, axis=0), axis=-1) * fps
    ok = np.ones(len(j), bool) if valid is None else np.asarray(valid, bool)
    ok = ok[1:] & ok[:-1] & np.all(np.isfinite(v), axis=1)
    return float(np.percentile(v[ok], 99)) if ok.any() else float("nan")


def _score_with_peaks(score):
    def fn(pred, sample, *args, **kwargs):
        r = score(pred, sample, *args, **kwargs)
        fps = float(sample["fps"])
        valid = np.asarray(pred.get("valid", sample["valid"]), bool)
        r["peak_ratio"] = peak_limb_speed(pred["joints"], fps, valid) / peak_limb_speed(sample["joints"], fps)
        return r
    return fn


def setting_name(source, base, accel, floor, gate=None):
    extra = "" if gate is None else f",peak_gate={gate:g}"
    return f"{source}+{base}[rotation_accel={accel:g},min_angle_sigma={floor:g}{extra}]"


def pitch_dev_samples(body, seed=0, draws=8, window=48):
    """H2-like sequences from the training split's pitch (``bench.training_pitch``): the
    ``window`` frames (30 fps) around the throwing wrist's peak speed, through broadcast cameras
    (3 center-field : 1 side), each with its truth's throwing-arm peaks (``bench.arm_peaks``)."""
    from training.data.synth import Synthesizer
    m = bench.training_pitch(body)
    fps = float(m["fps"])
    j = m["joints"]
    speed = {s_: np.linalg.norm(np.diff(j[:, J[f"{s_}_wrist"]], axis=0), axis=1) for s_ in ("left", "right")}
    side = max(speed, key=lambda s_: np.nanmax(speed[s_]))
    peak = int(np.argmax(speed[side]))
    a = int(np.clip(peak - 2 * window // 3, 0, len(j) - window))
    S = Synthesizer(body)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(draws):
        cam = "broadcast" if k % 4 < 3 else "broadcast_side"
        s = S(m["poses"][a:a + window], m["trans"][a:a + window], m["betas"], rng, fps=fps, camera=cam,
              mirror=side == "left")          # a right-hander, as the arm metrics assume
        s.update(gt_joints_cam=s["joints_cam"], clip=bench.TRAINING_PITCH, seen_subject=False,
                 arm_gt=bench.arm_peaks(s["joints"], fps))
        out.append(s)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="temporal+d2a", help="a bench estimator (raw output)")
    ap.add_argument("--base", default="light", help="the preset whose other settings are kept")
    ap.add_argument("--rotation-accel", default="150,200,300", help="comma list (rad/s²)")
    ap.add_argument("--min-angle-sigma", default=None, help="comma list (rad; default: the base preset's)")
    ap.add_argument("--peak-gate", default=None, help="comma list (0 = keep_peaks off; default: the base's)")
    ap.add_argument("--split", default="val", choices=["val", "test"], help="H1 protocol: the CMU split")
    ap.add_argument("--protocol", default="h1", choices=["h1", "pitch"],
                    help="h1: H1's windows of the split; pitch: the training split's pitch, H2's cameras")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.source in bench.PLUGINS:
        importlib.import_module(bench.PLUGINS[a.source])
    if a.source not in bench.ESTIMATORS:
        ap.error(f"unknown source estimator {a.source}")
    base = load_preset(a.base)
    names = [a.source]
    for accel in [float(x) for x in a.rotation_accel.split(",")]:
        floors = [base.min_angle_sigma] if a.min_angle_sigma is None else a.min_angle_sigma.split(",")
        gates = [None] if a.peak_gate is None else [float(x) for x in a.peak_gate.split(",")]
        for floor in [float(x) for x in floors]:
            for gate in gates:
                s = dataclasses.replace(base, rotation_accel=accel, min_angle_sigma=floor)
                if gate is not None:
                    s = dataclasses.replace(s, keep_peaks=gate > 0, peak_gate=gate if gate > 0 else s.peak_gate)
                name = setting_name(a.source, a.base, accel, floor, gate)
                bench.register(name, bench.cleaned(s, source=bench.ESTIMATORS[a.source]))
                names.append(name)
    from training.data.bvh_to_smpl import default_body
    body = default_body()
    t0 = time.time()
    score_fn = _score_with_peaks(bench.score)
    if a.protocol == "pitch":
        samples = pitch_dev_samples(body, a.seed)
        res = bench.run_estimators(names, samples, body, bench.OBP_JOINTS, False, score_fn)
        print(bench.table(res, f"Pitch protocol: CMU {bench.TRAINING_PITCH} (training split) × H2's cameras, "
                               f"{len(samples)} draws, seed {a.seed}, base preset {a.base} (12 limb joints; "
                               "mm, mm/frame² for accel)",
                          [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel")]))
        print()
        print(bench.arm_table(res, samples).replace("### H2 throwing arm", "### Throwing arm"))
        print(f"\n({len(samples)} sequences, {time.time() - t0:.0f} s)", file=sys.stderr)
        return 0
    samples = bench.h1_samples(body, a.seed, split=a.split)
    res = bench.run_estimators(names, samples, body, bench.LSP14, True, score_fn)
    metrics = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("pve", "PVE"), ("accel", "Accel"),
               ("skate", "Skate (mm/s)")]
    print(bench.table(res, f"H1 protocol on the {a.split} split, seed {a.seed}, base preset {a.base} "
                           f"(mm; mm/frame² for accel)", metrics))
    print("\n| estimator | peak limb speed / truth: median | 10th percentile |\n|---|---|---|")
    for n, rows in res.items():
        p = np.array([r["peak_ratio"] for _, r in rows if np.isfinite(r["peak_ratio"])])
        print(f"| {n} | {np.median(p):.2f} | {np.percentile(p, 10):.2f} |")
    print(f"\n({len(samples)} sequences, {time.time() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
