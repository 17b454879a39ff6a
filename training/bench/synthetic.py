"""Benchmarks H1 (held-out CMU subjects) and H2 (OBP pitches), one command each:

    .venv/bin/python -m training.bench h1            # prints a markdown table
    .venv/bin/python -m training.bench h2
    .venv/bin/python -m training.bench r1            # real video: training.bench.r1 (own options)
    options: --estimators baseline,mymodel  --seed 0  --plugin my.module (registers more)
             --estimators temporal@out/onnx_a,temporal@out/onnx_b   (several exported models)

Every estimator is run on the same synthetic observations (fixed seed) and scored in the
camera frame (as the papers do): MPJPE and PA-MPJPE on 14 LSP-style joints (hips, knees,
ankles, shoulders, elbows, wrists, neck, head; root = hip midpoint), PVE over all vertices
(root = pelvis; H1 only) and acceleration error (mm/frame² at 30 fps). H2 scores only the 12
limb joints OBP measures (no head, neck or toes in OBP). OBP is CC BY-NC-SA: evaluation only.

Registry: ``register(name, fn)`` with ``fn(observations, body) -> dict`` holding at least
``joints`` (T,24,3, world) and ``camera_extrinsics`` (T,4,4 world→camera, OpenCV axes) and
optionally ``poses``/``betas``/``trans`` (for PVE) and ``valid``.
"""
import argparse
import csv
import importlib
import sys
import time
from pathlib import Path

import numpy as np

from engine.body.skeleton import JOINT_INDEX as J
from training.eval.metrics import accel_error, mpjpe, pa_mpjpe, pve

ESTIMATORS = {}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
LSP14 = [J[n] for n in ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
                        "left_wrist", "neck", "head")]
HIPS = [J["left_hip"], J["right_hip"]]
OBP_JOINTS = [J[f"{s}_{n}"] for s in ("left", "right") for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]


def register(name, fn):
    ESTIMATORS[name] = fn


# estimators registered by a plugin module (loaded when named in --estimators)
PLUGINS = {"temporal": "training.temporal.bench", "temporal+light": "training.temporal.bench",
           "temporal+analysis": "training.temporal.bench", "temporal-alone": "training.temporal.bench",
           "temporal-alone+light": "training.temporal.bench", "temporal-alone+analysis": "training.temporal.bench",
           "temporal+d2a": "training.d2a.bench",
           "temporal+d2a+light": "training.d2a.bench", "temporal+d2a+analysis": "training.d2a.bench"}


def _baseline(obs, body):
    from engine.estimate.baseline import fit
    return fit(obs, body)


register("baseline", _baseline)

def once(fn):
    """``fn`` memoised on the last observations: the cleaned variants reuse the raw fit."""
    last = [None, None]

    def wrapped(obs, body):
        if last[0] is not obs:
            last[:] = [obs, fn(obs, body)]
        return last[1]
    return wrapped


_baseline_once = once(_baseline)


def cleaned(preset, lock=True, source=None):
    """An estimator: ``source``'s output (default the baseline's) through
    ``engine.clean.clean_motion(preset)`` — smoothing, ground plane, contacts, foot locking;
    world frame changes carried by the camera extrinsics, so camera-frame scores stay
    comparable with the raw estimate's."""
    source = source or _baseline_once

    def fn(obs, body):
        from engine.clean import clean_motion
        from engine.estimate.motion_fields import to_motion
        m = to_motion(source(obs, body), obs, body.name)
        c = clean_motion(m, body.rest_joints(m.betas), preset, lock=lock)
        return dict(joints=c.joints, camera_extrinsics=c.camera_extrinsics, poses=c.poses,
                    betas=c.betas, trans=c.trans, valid=c.valid, contacts=c.contacts)
    return fn


register("baseline+light", cleaned("light"))
register("baseline+analysis", cleaned("analysis"))


# ------------------------------------------------------------------ foot skating
GT_CONTACT_HEIGHT = 0.05   # m: sole above the floor
GT_CONTACT_SPEED = 0.2     # m/s: horizontal speed (central difference)


def gt_contacts(joints, fps=30.0):
    """Ground-truth contacts (T,4) of heel (ankle) and toe (foot joint), both feet, from the
    true joints (T,24,3): sole height (joint z − ``engine.clean.contacts.SOLE_OFFSET``) within
    5 cm of the floor and horizontal speed under 0.2 m/s. The floor is the 5th percentile of
    the lowest sole per frame (z = 0 on CMU; also right for the rescaled OBP bodies)."""
    from engine.clean.contacts import CONTACT_JOINTS, SOLE_OFFSET, point_speed
    p = np.asarray(joints, np.float64)[:, CONTACT_JOINTS]
    h = p[..., 2] - SOLE_OFFSET
    h = h - np.percentile(h.min(axis=1), 5)
    v = point_speed(np.concatenate([p[..., :2], np.zeros(p.shape[:2] + (1,))], -1), fps)
    return (h < GT_CONTACT_HEIGHT) & (v < GT_CONTACT_SPEED)


def gt_skate_line(samples):
    tot = [skating_sum(s["joints"], s["gt_contacts"], np.ones(len(s["joints"]), bool), float(s["fps"])) for s in samples]
    n = sum(c for _, c in tot)
    return (f"\nSkate = mean horizontal speed of heel and toe joints over ground-truth contact frames "
            f"({n} point-frame pairs), in the estimate's world; the ground truth's own: "
            f"{1000 * sum(a for a, _ in tot) / max(n, 1):.1f} mm/s")


def skating_sum(joints, contacts, valid, fps=30.0):
    """(sum of horizontal speeds, count) of contact points over frame pairs in ``contacts``
    where the estimate is valid: the foot-skating metric's parts (pooled over sequences)."""
    from engine.clean.contacts import CONTACT_JOINTS
    p = np.asarray(joints, np.float64)[:, CONTACT_JOINTS, :2]
    v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
    ok = contacts[1:] & contacts[:-1] & (valid[1:] & valid[:-1])[:, None] & np.isfinite(v)
    return float(v[ok].sum()), int(ok.sum())


def _to_cam(points, E):
    return np.einsum("tij,tnj->tni", E[:, :3, :3], points) + E[:, None, :3, 3]


def score(pred, sample, body, joints_eval, gt_joints_cam, with_pve=True, gt_verts_cam=None):
    valid = np.asarray(pred.get("valid", sample["valid"]), bool) & np.all(np.isfinite(pred["joints"]), axis=(1, 2))
    pj = _to_cam(np.nan_to_num(np.asarray(pred["joints"], np.float64)), np.asarray(pred["camera_extrinsics"], np.float64))
    r = dict(frames=int(valid.sum()), total=len(valid),
             mpjpe=mpjpe(pj[:, joints_eval], gt_joints_cam[:, joints_eval], root=[joints_eval.index(h) for h in HIPS], valid=valid),
             pa_mpjpe=pa_mpjpe(pj, gt_joints_cam, valid=valid, joints=joints_eval),
             accel=accel_error(pj[:, joints_eval], gt_joints_cam[:, joints_eval], root=[joints_eval.index(h) for h in HIPS], valid=valid))
    if "arm_gt" in sample:
        r["arm"] = arm_peaks(pred["joints"], float(sample["fps"]), valid)
    if "gt_contacts" in sample:  # foot skating in the estimate's own (Z-up) world
        tot, n = skating_sum(pred["joints"], sample["gt_contacts"], valid)
        if n:
            r["skate"], r["skate_n"] = tot / n, n
    if with_pve and gt_verts_cam is not None and "poses" in pred:
        ok = valid & np.all(np.isfinite(pred["poses"]), axis=1)
        if ok.any():
            pv = body.vertices(np.asarray(pred["poses"])[ok], pred.get("betas"), np.asarray(pred["trans"])[ok])
            pv = _to_cam(pv, np.asarray(pred["camera_extrinsics"], np.float64)[ok])
            r["pve"] = pve(pv, gt_verts_cam[ok], pj[ok, 0], gt_joints_cam[ok, 0])
    return r


def run_estimators(names, samples, body, joints_eval, with_pve, score_fn=None):
    """Every estimator on every sample → {name: [(sample, scores)]}; ``score_fn`` (default
    ``score``) may add scores of its own (``training.tune_smoothing``)."""
    from training.data.synth import to_observations
    score_fn = score_fn or score
    out = {n: [] for n in names}
    for s in samples:
        obs = to_observations(s)
        obs.homographies = s.get("homographies")   # the camera's motion, as observe.py gives it
        s.setdefault("gt_contacts", gt_contacts(s["joints"], float(s["fps"])))
        gt_v = None
        if with_pve:
            gt_v = _to_cam(body.vertices(s["poses"], s["betas"], s["trans"]), s["extrinsics"].astype(np.float64))
        for n in names:
            pred = ESTIMATORS[n](obs, body)
            out[n].append((s, score_fn(pred, s, body, joints_eval, s["gt_joints_cam"].astype(np.float64), with_pve, gt_v)))
    return out


def table(results, title, metrics):
    lines = [f"### {title}", "", "| estimator | sequences | frames scored | " + " | ".join(m[1] for m in metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    for n, rows in results.items():
        fr = sum(r["frames"] for _, r in rows)
        tot = sum(r["total"] for _, r in rows)
        cells = []
        for key, _ in metrics:
            vals = [(r[key], r.get(key + "_n", r["frames"])) for _, r in rows if key in r and np.isfinite(r[key])]
            v = np.average([a for a, _ in vals], weights=[w for _, w in vals]) if vals else float("nan")
            cells.append(f"{1000 * v:.1f}")
        lines.append(f"| {n} | {len(rows)} | {fr}/{tot} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_camera(results, metrics):
    lines = []
    for n, rows in results.items():
        kinds = sorted({s["camera_type"] for s, _ in rows})
        for k in kinds:
            sub = {f"{n} · {k}": [(s, r) for s, r in rows if s["camera_type"] == k]}
            lines.append(table(sub, "", metrics).splitlines()[-1])
    return "\n".join(lines)


# ------------------------------------------------------------------ throwing-arm angular velocity (H2)
def arm_angular_velocity(joints, fps, valid=None, side="right"):
    """Throwing-arm angular velocities (T,) in deg/s from SMPL joints (T,24,3), any world frame:
    ``upper_arm``: |ω| of the upper-arm frame (shoulder, elbow, wrist; ``engine.pitch.metrics``),
    ``internal_rotation``: −d/dt of the shoulder's external rotation relative to the thorax
    (neck, spine2, collar line — as ``engine.pitch.joints.from_motion`` builds it).
    Invalid frames are interpolated for the derivative and NaN in the result. No low-pass."""
    from engine.pitch import metrics as PM
    j = np.asarray(joints, np.float64)
    valid = np.all(np.isfinite(j), axis=(1, 2)) if valid is None else np.asarray(valid, bool) & np.all(np.isfinite(j), axis=(1, 2))
    if valid.sum() < 3:
        return {"upper_arm": np.full(len(j), np.nan), "internal_rotation": np.full(len(j), np.nan)}
    j = PM.fill_gaps(np.nan_to_num(j), valid)
    sh, el, wr = (j[:, J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
    Ru = PM.upper_arm_frame(sh, el, wr)
    lateral = PM.normalize(j[:, J["right_collar"]] - j[:, J["left_collar"]])
    Rt = PM.thorax_frame(j[:, J["neck"]], j[:, J["spine2"]], j[:, J["neck"]] + 0.10 * lateral)
    up = np.linalg.norm(PM.segment_angular_velocity(Ru, fps), axis=1)
    ir = -PM.derivative(PM.shoulder_angles(Rt, Ru)[:, 2], fps)
    return {"upper_arm": np.where(valid, up, np.nan), "internal_rotation": np.where(valid, ir, np.nan)}


def arm_peaks(joints, fps, valid=None):
    a = arm_angular_velocity(joints, fps, valid)
    return {k: float(np.nanmax(v)) if np.isfinite(v).any() else float("nan") for k, v in a.items()}


def arm_table(results, samples):
    """Peak throwing-arm angular velocities: estimators vs the ground-truth body (same 30 fps)."""
    gt = [s["arm_gt"] for s in samples]
    keys = (("upper_arm", "upper-arm ‖ω‖ peak"), ("internal_rotation", "shoulder IR velocity peak"))
    lines = ["### H2 throwing arm: peak angular velocity (deg/s, mean over sequences; ratio = mean of "
             "per-sequence estimate/truth, with its range)", "",
             "| estimator | " + " | ".join(f"{t} | ratio" for _, t in keys) + " |", "|---|" + "---|---|" * len(keys)]
    lines.append("| ground truth (rendered mocap body, 30 fps) | " + " | ".join(
        f"{np.mean([g[k] for g in gt]):.0f} | 1.00" for k, _ in keys) + " |")
    for n, rows in results.items():
        cells = []
        for k, _ in keys:
            est = np.array([r["arm"][k] for _, r in rows])
            tru = np.array([s["arm_gt"][k] for s, _ in rows])
            q = est / tru
            cells.append(f"{np.nanmean(est):.0f} | {np.nanmean(q):.2f} ({np.nanmin(q):.2f}–{np.nanmax(q):.2f})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ H1
def h1_samples(body, seed=0, windows_per_clip=2, length=64, cache=None, split="test"):
    """H1's sequences: windows of the ``split``'s CMU clips (``test`` for the reported numbers,
    ``val`` for tuning, e.g. ``training.tune_smoothing``) through synthetic observations."""
    from training.data.bvh import read_bvh
    from training.data.bvh_to_smpl import clip_table, retarget_bvh
    from training.data.splits import SEEN_SUBJECT_TEST_CLIPS, split_of
    from training.data.synth import CAMERA_TYPES, Synthesizer
    cmu = SHARED / "cmu"
    rows = [r for r in clip_table(cmu) if split_of(r["clip"]) == split]
    S = Synthesizer(body)
    rng = np.random.default_rng(seed)
    samples = []
    k = 0
    for r in sorted(rows, key=lambda r: r["clip"]):
        m = retarget_bvh(read_bvh(cmu / r["path"]), body)
        T = len(m["poses"])
        L = min(length, T)
        for w in range(windows_per_clip if T >= 2 * L else 1):
            a = int(rng.integers(0, T - L + 1))
            cam = CAMERA_TYPES[k % len(CAMERA_TYPES)]
            k += 1
            s = S(m["poses"][a:a + L], m["trans"][a:a + L], m["betas"], rng, camera=cam,
                  mirror=bool(rng.random() < 0.5))
            s["gt_joints_cam"] = s["joints_cam"]
            s["clip"] = r["clip"]
            s["seen_subject"] = r["clip"] in SEEN_SUBJECT_TEST_CLIPS
            samples.append(s)
    return samples


TRAINING_PITCH = "124_01"   # the training split's only baseball pitch (docs/data_splits.md)


def training_pitch(body, fps=30.0):
    """CMU 124_01 retargeted to ``body`` at ``fps`` (120 / an integer): a pitch for tuning and
    dev checks that leaves the OBP test pitches alone (``retarget_bvh``'s dict)."""
    from training.data.bvh import read_bvh
    from training.data.bvh_to_smpl import clip_table, retarget_bvh
    from training.data.splits import split_of
    row = next(r for r in clip_table(SHARED / "cmu") if r["clip"] == TRAINING_PITCH)
    assert split_of(row["clip"]) == "train"
    return retarget_bvh(read_bvh(SHARED / "cmu" / row["path"]), body, stride=int(round(120 / fps)))


# ------------------------------------------------------------------ H2 (OBP)
OBP_MAP_RHP = {"rear_hip": "right_hip", "rear_knee_jc": "right_knee", "rear_ankle_jc": "right_ankle",
               "lead_hip": "left_hip", "lead_knee_jc": "left_knee", "lead_ankle_jc": "left_ankle",
               "shoulder_jc": "right_shoulder", "elbow_jc": "right_elbow", "wrist_jc": "right_wrist",
               "hand_jc": "right_hand", "glove_shoulder_jc": "left_shoulder", "glove_elbow_jc": "left_elbow",
               "glove_wrist_jc": "left_wrist", "glove_hand_jc": "left_hand"}


def load_obp(root=None, fps=30.0):
    """{pitch: dict(points {name: (T,3)}, fps)} at ``fps`` (360 Hz subsampled), lab frame (m)."""
    root = Path(root or SHARED / "obp")
    by = {}
    with open(root / "landmarks_subset.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by.setdefault(row["session_pitch"], []).append(row)
    out = {}
    step = int(round(360 / fps))
    for pitch, rows in by.items():
        rows = sorted(rows, key=lambda r: float(r["time"]))[::step]
        names = sorted({k[:-2] for k in rows[0] if k.endswith(("_x", "_y", "_z")) and k[:-2] + "_z" in rows[0]})
        pts = {n: np.array([[float(r[n + "_x"]), float(r[n + "_y"]), float(r[n + "_z"])] for r in rows]) for n in names}
        out[pitch] = dict(points=pts, fps=fps, time=np.array([float(r["time"]) for r in rows]))
    return out


def obp_to_smpl_targets(pts):
    """OBP joint centres → 24 SMPL target points (T,24,3) + mask of joints OBP really has.

    Missing in OBP, filled for the fit only (never scored): pelvis = hip midpoint; spine joints
    on the hip-mid → thorax_prox line; neck = thorax_prox; collars halfway neck → shoulder;
    head = neck + 0.2 m along the trunk axis (thorax_dist → thorax_prox); feet (toes) = ankle +
    0.14 m along the pelvis's forward direction, 6 cm lower."""
    T = len(next(iter(pts.values())))
    tgt = np.zeros((T, 24, 3))
    has = np.zeros(24, bool)
    for k, v in OBP_MAP_RHP.items():
        tgt[:, J[v]] = pts[k]
        has[J[v]] = True
    pelvis = 0.5 * (tgt[:, J["left_hip"]] + tgt[:, J["right_hip"]])
    neck = pts["thorax_prox"]
    tgt[:, 0] = pelvis
    for n, f in (("spine1", .25), ("spine2", .5), ("spine3", .75)):
        tgt[:, J[n]] = pelvis + f * (neck - pelvis)
    tgt[:, J["neck"]] = neck
    axis = pts["thorax_prox"] - pts["thorax_dist"]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    tgt[:, J["head"]] = neck + 0.2 * axis
    left = tgt[:, J["left_hip"]] - tgt[:, J["right_hip"]]
    fwd = np.cross(left, [0, 0, 1.0])
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    for s in ("left", "right"):
        tgt[:, J[f"{s}_collar"]] = 0.5 * (neck + tgt[:, J[f"{s}_shoulder"]])
        tgt[:, J[f"{s}_foot"]] = tgt[:, J[f"{s}_ankle"]] + 0.14 * fwd - [0, 0, 0.06]
    return tgt, has


def h2_samples(body, seed=0, draws_per_pitch=4):
    from engine.estimate.ik import rotations_from_joint_positions
    from engine.body.kinematics import forward_kinematics, matrix_to_axis_angle
    from training.data.synth import Synthesizer
    rng = np.random.default_rng(seed)
    S = Synthesizer(body)
    samples = []
    rest = body.rest_joints(None)
    for pitch, d in sorted(load_obp().items()):
        tgt, has = obp_to_smpl_targets(d["points"])
        local = rotations_from_joint_positions(tgt, rest)
        # uniform body scale so the rendered limbs match the pitcher's (1.93 m) limb lengths
        fk = forward_kinematics(local, rest)
        leg = lambda p: np.linalg.norm(p[:, J["right_knee"]] - p[:, J["right_hip"]], axis=1).mean() + \
            np.linalg.norm(p[:, J["right_ankle"]] - p[:, J["right_knee"]], axis=1).mean()  # noqa: E731
        scale = leg(tgt) / leg(fk)
        poses = matrix_to_axis_angle(local).reshape(-1, 72)
        hip_mid_rest = 0.5 * (fk[:, J["left_hip"]] + fk[:, J["right_hip"]]) * scale
        trans = 0.5 * (tgt[:, J["left_hip"]] + tgt[:, J["right_hip"]]) - hip_mid_rest
        for k in range(draws_per_pitch):
            cam = "broadcast" if k % 4 < 3 else "broadcast_side"
            s = S(poses, trans, np.zeros(10), rng, camera=cam, facing=0.0, body_scale=scale)
            E = s["extrinsics"].astype(np.float64)
            # scored against the rendered body's joints (what the observations show); the
            # distance from those to OBP's joint centres (definitions, proportions) is printed
            # as the fit floor
            s["gt_joints_cam"] = s["joints_cam"]
            s["fit_residual"] = float(np.mean(np.linalg.norm((s["joints"] - tgt)[:, has], axis=-1)))
            s["clip"] = pitch
            s["arm_gt"] = arm_peaks(s["joints"], float(s["fps"]))
            samples.append(s)
    return samples


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.bench", description="H1/H2 benchmarks (r1: see training.bench.r1)")
    ap.add_argument("which", choices=["h1", "h2"])
    ap.add_argument("--estimators", default=None, help="comma list (default: all registered)")
    ap.add_argument("--plugin", action="append", default=[], help="module that calls training.bench.synthetic.register")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for mod in args.plugin:
        importlib.import_module(mod)
    for name in (args.estimators or "").split(","):   # estimators that live in plugins
        if name in PLUGINS and name not in ESTIMATORS:
            mod = importlib.import_module(PLUGINS[name])
            getattr(mod, "require", lambda: None)()    # e.g. its weights: fail before the work
        elif "@" in name and name not in ESTIMATORS:    # temporal@DIR: exported weights in DIR
            importlib.import_module("training.temporal.bench").register_weights(name)
    names = args.estimators.split(",") if args.estimators else list(ESTIMATORS)
    from training.data.bvh_to_smpl import default_body
    body = default_body()
    t0 = time.time()
    mm = "(mm; mm/frame² for accel)"
    if args.which == "h1":
        samples = h1_samples(body, args.seed)
        res = run_estimators(names, samples, body, LSP14, True)
        metrics = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("pve", "PVE"), ("accel", "Accel"),
                   ("skate", "Skate (mm/s)")]
        clean = {n: [(s, r) for s, r in rows if not s["seen_subject"]] for n, rows in res.items()}
        seen = {n: [(s, r) for s, r in rows if s["seen_subject"]] for n, rows in res.items()}
        print(table(clean, f"H1: CMU held-out subjects {sorted({s['clip'].split('_')[0] for s in samples if not s['seen_subject']})}, "
                           f"seed {args.seed}, body {body.name} {mm}", metrics))
        print(per_camera(clean, metrics))
        print(gt_skate_line([s for s in samples if not s["seen_subject"]]))
        print()
        print(table(seen, f"H1-pitch: 124_02 (baseball pitch; subject 124 also in train) {mm}", metrics))
    else:
        samples = h2_samples(body, args.seed)
        res = run_estimators(names, samples, body, OBP_JOINTS, False)
        metrics = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel")]
        print(table(res, f"H2: OBP pitches (5 pitches × 4 broadcast cameras, 12 limb joints), seed {args.seed} {mm}", metrics))
        print(per_camera(res, metrics))
        print()
        print(arm_table(res, samples))
        print(f"\nfit floor: rendered body joints vs OBP joint centres, mean "
              f"{1000 * np.mean([s['fit_residual'] for s in samples]):.1f} mm")
    print(f"\n({len(samples)} sequences, {time.time() - t0:.0f} s)", file=sys.stderr)
