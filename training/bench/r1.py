"""Benchmark R1: real video, a calibrated 4-camera lab clip (Pose2Sim ``Demo_SinglePerson``).

    .venv/bin/python scripts/measure_detector_noise_multiview.py --fetch   # once: → out/pose2sim_demo
    .venv/bin/python -m training.bench r1 [--cameras cam01,cam03] [--rows baseline,default] [--frames N]

Each camera in turn is the monocular input: its video goes through the full engine
(``engine.pipeline.run`` with the row's options). Its reference is the leave-one-out
triangulation of the *other three* cameras' MediaPipe 2D detections (visibility > 0.5,
left/right-swapped detections not used), moved into that camera's frame. Scores in the camera
frame: MPJPE (root = hip midpoint), PA-MPJPE, accel error (mm/frame² at the clip's 60 fps) on
the 12 limb joints; and the reprojection figure (``engine.align.reprojection``) of the body's 33
MediaPipe-convention landmarks through the Motion's own camera.

The reference is MediaPipe landmarks, so three tables: "SMPL joints" scores the body's SMPL
joints against the reference landmarks of the same names (MediaPipe's hip is not the SMPL hip
joint, so this includes the definitions' offset); "limb landmarks" scores the body's 12 limb
landmarks in MediaPipe's convention (``engine.body.landmarks``, the learned one) against the
same 12 reference landmarks, like against like; "MediaPipe landmarks" does so for all 33. The
reprojection figure is ``engine.align.reprojection.reprojection_error`` of those 33 landmarks.

Row ``mediapipe``: the camera's own MediaPipe world landmarks, taken as camera-frame points
(their axes are the camera's: x right, y down, z away) with the origin at their hip midpoint,
as every row is root-aligned; no rotation is fitted (PA-MPJPE fits one). It has no camera, so
no reprojection figure.

The demo's calibration is checked (4-view reprojection) with the file's extrinsics and after a
rotation-only refinement (``training.eval.multiview.refine_rotations``: centres and intrinsics kept,
≤ 1° per camera, fitted to all four views' detections); ``--extrinsics`` picks which one
builds the references (default: refined). The data is BSD-3 and not shipped.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from training.eval import multiview as mv
from training.eval.pose2sim_demo import DATA, VIS
from training.eval import pose2sim_demo as demo
from engine.body.skeleton import JOINT_INDEX as J
from engine.observe import LM

LIMBS = [f"{s}_{n}" for s in ("left", "right") for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
LIMB_SMPL = [J[n] for n in LIMBS]
LIMB_LM = [LM[n] for n in LIMBS]
HIP_LM = [LM["left_hip"], LM["right_hip"]]
GROUPS = ("hip", "shoulder", "elbow", "wrist", "knee", "ankle")

# row → engine.pipeline.PipelineOptions fields (None: MediaPipe's world landmarks, no engine).
# Every row but ``default`` turns the final image-aligned fit off, so each stage shows on its own.
RAW = dict(smoothing="none", foot_lock=False, image_fit=False)
ROWS = {
    "mediapipe": None,
    "baseline": dict(estimator="baseline", **RAW),
    "temporal": dict(estimator="temporal", refine=False, **RAW),
    "temporal+d2a": dict(estimator="temporal", refine=True, **RAW),
    "temporal+d2a+light": dict(estimator="temporal", refine=True, smoothing="light", foot_lock=True, image_fit=False),
    "default": dict(),   # PipelineOptions() exactly as `python -m engine` runs it
    "baseline+light": dict(estimator="baseline", smoothing="light", foot_lock=True, image_fit=False),
    "default+focal-auto": dict(focal="auto"),            # the per-clip focal estimate (engine.estimate.focal)
    "default+focal-calibrated": dict(focal="calibrated"),  # the camera's calibrated focal: what knowing it is worth
    "default+no-refine": dict(refine=False),               # the default without the D2A refinement: what it earns
    "default+no-follow": dict(follow=False),               # every frame detected and tracked instead of survey + crop
    "default+baseline": dict(estimator="baseline"),        # the default's clean-up and image fit on the analytic IK: what the networks earn
    "default+network-alone": dict(prior_blend=0.0),        # the temporal model's rotations not blended toward its IK prior
}
LABELS = {"mediapipe": "MediaPipe world landmarks", "temporal+d2a+light": "temporal+d2a+light (foot lock)",
          "default": "default (`python -m engine`)", "default+focal-auto": "default, `--focal auto`",
          "default+focal-calibrated": "default, the calibrated focal", "default+no-refine": "default, `--no-refine`",
          "default+no-follow": "default, `--no-follow` (every frame detected)",
          "default+baseline": "default, `--estimator baseline`",
          "default+network-alone": "default, the network alone (no blend toward its IK prior)"}


# ------------------------------------------------------------------ reference
def observe_views(data, cams, frames=None):
    """Each camera's subject as the engine selects it (``detect`` cached + ``track_and_select``)
    → uv (V,T,33,2) NaN where unseen, vis (V,T,33), world (V,T,33,3)."""
    from engine.pipeline import PipelineOptions, detect
    from engine.observe.track import track_and_select
    opts = PipelineOptions(frame_range=None if frames is None else (0, int(frames)))
    obs = [track_and_select(detect(Path(data) / "videos" / f"{c}.mp4", opts)[0]) for c in cams]
    T = min(o.num_frames for o in obs)
    kp = np.stack([o.keypoints[:T].astype(np.float64) for o in obs])
    ok = np.stack([o.valid[:T] for o in obs])[..., None]
    uv = np.where(ok[..., None], kp[..., :2], np.nan)
    vis = np.where(ok, np.nan_to_num(kp[..., 2]), 0.0)
    world = np.where(ok[..., None], np.stack([o.world[:T].astype(np.float64) for o in obs]), np.nan)
    return uv, vis, world


def calibration_report(cams, uv, vis, vis_ref, max_deg=1.0):
    """4-view reprojection (px) with the file's extrinsics and after ``refine_rotations``
    → (refined cams, dict of numbers)."""
    refined, rot = mv.refine_rotations(cams, uv, vis_ref, VIS, max_deg=max_deg)
    out = dict(rotation_deg=rot, max_deg=max_deg)
    for key, cc in (("file", cams), ("refined", refined)):
        a, b = demo.reprojection_check(cc, uv, vis), demo.reprojection_check(cc, uv, vis_ref)
        out[key] = dict(median=a["median_px"], p90=a["p90_px"], per_view=a["per_view_px"],
                        median_no_swaps=b["median_px"], p90_no_swaps=b["p90_px"], per_view_no_swaps=b["per_view_px"])
    return refined, out


def references(cams, uv, vis_ref):
    """(V,T,33,3): for each camera, the other cameras' triangulation in that camera's frame."""
    X = mv.leave_one_out_points(cams, uv, vis_ref, VIS)
    return np.stack([mv.to_camera(c, X[v]) for v, c in enumerate(cams)])


# ------------------------------------------------------------------ scores (NaN-aware)
def root_aligned(P, root):
    return P - np.mean(P[:, root], axis=1, keepdims=True)


def score(pred, ref, root):
    """pred, ref (T,N,3) camera frame, metres, NaN = missing (a whole invalid frame or a
    reference point fewer than 2 other views saw) → per-point errors and the three metrics."""
    p, g = root_aligned(pred, root), root_aligned(ref, root)
    d = p - g
    e = np.linalg.norm(d, axis=-1)                            # (T,N) NaN where either is missing
    pa = mv.procrustes_errors(pred, ref)
    acc = np.linalg.norm((p[:-2] - 2 * p[1:-1] + p[2:]) - (g[:-2] - 2 * g[1:-1] + g[2:]), axis=-1)
    frames = int(np.isfinite(e).any(1).sum())
    with np.errstate(all="ignore"):
        return dict(frames=frames, total=len(e), errors=e, image_plane=np.linalg.norm(d[..., :2], axis=-1),
                    depth=np.abs(d[..., 2]), mpjpe=float(np.nanmean(e)),
                    pa_mpjpe=float(np.nanmean(pa)), accel=float(np.nanmean(acc)) if np.isfinite(acc).any() else np.nan)


def run_row(row, video, frames, world_cam, body, focal_px=None, prior_blend=None):
    """One row on one camera → dict(smpl (T,12,3), landmarks (T,33,3) camera frame, reproj (T,),
    estimator). ``prior_blend``: the temporal model's blend toward its IK prior for every row
    that does not set its own (None: the engine's default)."""
    if ROWS[row] is None:
        return dict(smpl=world_cam[:, LIMB_LM], landmarks=world_cam, reproj=None, estimator="mediapipe",
                    relabelled=None, facing=None)
    from engine.body.landmarks import LandmarkModel
    from engine.estimate.camera import world_to_camera
    from engine.pipeline import PipelineOptions, run
    from engine.align.reprojection import reprojection_error
    kw = dict(ROWS[row])
    if prior_blend is not None:
        kw.setdefault("prior_blend", float(prior_blend))
    if kw.get("focal") == "calibrated":
        kw["focal"] = float(focal_px)
    opts = PipelineOptions(frame_range=None if frames is None else (0, int(frames)), **kw)
    m = run(video, opts)
    from engine.align.facing import facing_disagreements, in_spin, motion_forward_in_camera, yaw_in_camera, yaw_steps
    yaw = yaw_in_camera(motion_forward_in_camera(m, body)[:, 0])
    steps = np.where(in_spin(yaw), np.nan, yaw_steps(yaw))
    facing = dict(away=int(facing_disagreements(m, body).sum()),
                  max_step=float(np.nanmax(steps)) if np.isfinite(steps).any() else np.nan)
    E = m.camera_extrinsics.astype(np.float64)
    miss = np.where(m.valid.astype(bool), 0.0, np.nan)[:, None, None]
    lm = LandmarkModel(body, m.betas)(m.poses, m.trans) + miss          # (T,33,3) world, NaN if invalid
    return dict(smpl=world_to_camera(np.nan_to_num(m.joints.astype(np.float64)), E)[:, LIMB_SMPL] + miss,
                landmarks=world_to_camera(np.nan_to_num(lm), E) + miss,
                reproj=reprojection_error(lm, m.camera_intrinsics, E, m.keypoints2d, VIS), estimator=m.estimator,
                relabelled=m.source.get("left_right_relabelled"), facing=facing, focal=m.source.get("focal"))


def evaluate(rows, cameras, data=DATA, frames=None, extrinsics="refined", log=print, max_deg=1.0, prior_blend=None):
    """Every row on every chosen camera → (results {row: {cam: scores}}, calibration numbers).
    Each camera's scores against the other extrinsics' references are kept too (``other``)."""
    from engine.body.model import load_body_model
    all_cams = demo.load_calibration(data)
    names = [c.name for c in all_cams]
    uv, vis, world = observe_views(data, names, frames)
    swaps = demo.lr_swaps(all_cams, uv, vis)
    vis_ref = np.where(swaps[..., None], 0.0, vis)
    refined, calib = calibration_report(all_cams, uv, vis, vis_ref, max_deg)
    calib["swaps"] = swaps.sum(1).tolist()
    calib["swapped_frames"] = [np.flatnonzero(s).tolist() for s in swaps]
    calib["used"] = extrinsics
    refs = references(refined if extrinsics == "refined" else all_cams, uv, vis_ref)
    q = root_aligned(refs[:, :, LIMB_LM], [LIMBS.index("left_hip"), LIMBS.index("right_hip")])
    calib["reference_accel"] = float(np.nanmean(np.linalg.norm(q[:, :-2] - 2 * q[:, 1:-1] + q[:, 2:], axis=-1)))
    alt = references(all_cams if extrinsics == "refined" else refined, uv, vis_ref)
    body = load_body_model(None)   # the engine's own body (the open body unless SMPL is given)
    res = {r: {} for r in rows}
    for c in cameras:
        v = names.index(c)
        video = Path(data) / "videos" / f"{c}.mp4"
        T = uv.shape[1]
        hips = [LIMBS.index("left_hip"), LIMBS.index("right_hip")]
        for r in rows:
            t0 = time.time()
            out = run_row(r, video, frames, world[v], body, focal_px=all_cams[v].K[0, 0], prior_blend=prior_blend)
            sm, lm = out["smpl"][:T], out["landmarks"][:T]
            scores = {key: dict(smpl=score(sm, ref[v][:, LIMB_LM], hips), limbs=score(lm[:, LIMB_LM], ref[v][:, LIMB_LM], hips),
                                landmarks=score(lm, ref[v], HIP_LM))
                      for key, ref in (("main", refs), ("other", alt))}
            res[r][c] = dict(scores["main"], other=scores["other"], swapped=swaps[v], relabelled=out["relabelled"],
                             facing=out["facing"], focal=out.get("focal"), focal_true=float(all_cams[v].K[0, 0]))
            res[r][c]["landmarks"]["reproj"] = None if out["reproj"] is None else out["reproj"][:T]
            sm = res[r][c]["smpl"]
            log(f"  {c} {r} ({out['estimator']}): MPJPE {1000 * sm['mpjpe']:.1f} PA {1000 * sm['pa_mpjpe']:.1f} "
                f"({time.time() - t0:.0f} s)")
    return res, calib


# ------------------------------------------------------------------ tables
def _mm(x):
    return f"{1000 * x:.1f}" if np.isfinite(x) else "–"


def _pct(x):
    return f"{x:.2f}" if x is not None and np.isfinite(x) else "–"


def table(res, kind, title, reproj=False):
    head = "| row | camera | frames | MPJPE | PA-MPJPE | Accel |" + (" reproj. median % | reproj. p90 % |" if reproj else "")
    lines = [f"### {title}", "", head, "|---|---|---|---|---|---|" + ("---|---|" if reproj else "")]
    for r, per in res.items():
        label = LABELS.get(r, r)
        cams = list(per)
        for c in cams + (["mean"] if len(cams) > 1 else []):
            sc = [per[k][kind] for k in (cams if c == "mean" else [c])]
            cells = [f"{sum(s['frames'] for s in sc)}/{sum(s['total'] for s in sc)}"]
            cells += [_mm(np.mean([s[k] for s in sc])) for k in ("mpjpe", "pa_mpjpe", "accel")]
            if reproj:
                rp = [s["reproj"] for s in sc if s.get("reproj") is not None]
                pooled = np.concatenate(rp) if rp else np.array([np.nan])
                ok = np.isfinite(pooled).any()
                cells += [_pct(np.nanmedian(pooled) if ok else None), _pct(np.nanpercentile(pooled, 90) if ok else None)]
            name = f"**{label}**" if c == "mean" else label
            lines.append(f"| {name} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_table(res):
    """Mean root-aligned error (mm) per joint pair, SMPL joints, all chosen cameras pooled."""
    lines = ["### R1 per joint (SMPL joints vs reference landmarks, root-aligned error, mm, cameras pooled; "
             "the last two columns split all 12 joints' error into the input camera's image plane (x, y) and depth (z))", "",
             "| row | " + " | ".join(GROUPS) + " | image plane | depth |", "|---|" + "---|" * (len(GROUPS) + 2)]
    for r, per in res.items():
        e = np.concatenate([s["smpl"]["errors"] for s in per.values()])
        cells = [_mm(np.nanmean(e[:, [LIMBS.index(f"{s}_{g}") for s in ("left", "right")]])) for g in GROUPS]
        cells += [_mm(np.nanmean(np.concatenate([s["smpl"][k] for s in per.values()]))) for k in ("image_plane", "depth")]
        lines.append(f"| {LABELS.get(r, r)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def swap_table(res):
    """SMPL-joint MPJPE on the frames whose input detections are left/right swapped (found by
    the multi-view check) and on the others, cameras pooled: how much of the error the swaps make."""
    lines = ["### R1 left/right-swapped input frames (SMPL joints, MPJPE mm, cameras pooled; "
             "relabelled: frames the engine's own left/right check relabelled, source['left_right_relabelled'])", "",
             "| row | swapped frames | MPJPE there | other frames | MPJPE there | relabelled |", "|---|---|---|---|---|---|"]
    for r, per in res.items():
        e = np.concatenate([np.nanmean(s["smpl"]["errors"], axis=1) for s in per.values()])
        sw = np.concatenate([s["swapped"][:len(s["smpl"]["errors"])] for s in per.values()])
        a, b = e[sw & np.isfinite(e)], e[~sw & np.isfinite(e)]
        rel = [s["relabelled"] for s in per.values()]
        rel = "–" if any(x is None for x in rel) else " / ".join(str(x) for x in rel)
        lines.append(f"| {LABELS.get(r, r)} | {len(a)} | {_mm(a.mean()) if len(a) else '–'} | {len(b)} | "
                     f"{_mm(b.mean()) if len(b) else '–'} | {rel} |")
    return "\n".join(lines)


def facing_table(res):
    """Per row and camera: frames where the face is seen from the front but the pelvis or head
    faces away (engine.align.facing), and the largest per-frame pelvis-yaw step outside sustained turns."""
    rows = [(r, per) for r, per in res.items() if all(s["facing"] is not None for s in per.values())]
    cams = list(rows[0][1]) if rows else []
    lines = ["### R1 facing (frames facing away while the face is seen from the front / largest pelvis-yaw "
             "step in one frame outside a sustained turn, degrees)", "",
             "| row | " + " | ".join(cams) + " |", "|---|" + "---|" * len(cams)]
    for r, per in rows:
        lines.append(f"| {LABELS.get(r, r)} | " + " | ".join(
            f"{per[c]['facing']['away']} / {per[c]['facing']['max_step']:.1f}" for c in cams) + " |")
    return "\n".join(lines)


def focal_table(res):
    """The focal each row used per camera against the calibrated one (px, relative error)."""
    rows = [(r, per) for r, per in res.items() if all(s.get("focal") for s in per.values())]
    cams = list(rows[0][1]) if rows else []
    lines = ["### R1 focal length used (px; error against the camera's calibrated focal)", "",
             "| row | " + " | ".join(cams) + " | mean abs. error |", "|---|" + "---|" * (len(cams) + 1)]
    for r, per in rows:
        err = [per[c]["focal"]["px"] / per[c]["focal_true"] - 1 for c in cams]
        lines.append(f"| {LABELS.get(r, r)} | " + " | ".join(
            f"{per[c]['focal']['px']:.0f} ({100 * e:+.1f} %, {per[c]['focal']['method']})" for c, e in zip(cams, err))
            + f" | {100 * np.mean(np.abs(err)):.1f} % |")
    return "\n".join(lines)


def sensitivity_table(res, used):
    """Mean MPJPE / PA-MPJPE per row against the references of the *other* extrinsics."""
    other = "file (.qca)" if used == "refined" else "rotation-only refined"
    lines = [f"### R1 sensitivity: the same estimates against references built with the {other} extrinsics "
             "(mm, mean over cameras)", "",
             "| row | SMPL joints MPJPE | PA-MPJPE | landmarks MPJPE | PA-MPJPE |", "|---|---|---|---|---|"]
    for r, per in res.items():
        cells = [_mm(np.mean([s["other"][kind][k] for s in per.values()]))
                 for kind in ("smpl", "landmarks") for k in ("mpjpe", "pa_mpjpe")]
        lines.append(f"| {LABELS.get(r, r)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_lines(cal):
    f, r = cal["file"], cal["refined"]
    pv = lambda a: " / ".join(f"{x:.1f}" for x in a)  # noqa: E731
    return "\n".join([
        "### R1 calibration check (4-view reprojection of the triangulated MediaPipe landmarks, visibility > 0.5, px)", "",
        "| extrinsics | median | p90 | per view | median without L/R swaps | p90 without swaps | per view without swaps |",
        "|---|---|---|---|---|---|---|",
        f"| file (.qca) | {f['median']:.1f} | {f['p90']:.1f} | {pv(f['per_view'])} | {f['median_no_swaps']:.1f} | {f['p90_no_swaps']:.1f} | {pv(f['per_view_no_swaps'])} |",
        f"| rotation-only refined (≤ {cal['max_deg']:g}°; changes {pv(cal['rotation_deg'])}°) | {r['median']:.1f} | {r['p90']:.1f} | {pv(r['per_view'])} | {r['median_no_swaps']:.1f} | {r['p90_no_swaps']:.1f} | {pv(r['per_view_no_swaps'])} |",
        "", f"left/right-swapped detections per camera (not used in references): {cal['swaps']} "
            f"(frames {[s for s in cal['swapped_frames'] if s]}); references built with the {cal['used']} extrinsics; "
            f"the reference's own acceleration (root-aligned 12 limb joints, mean |second difference|): "
            f"{1000 * cal['reference_accel']:.1f} mm/frame²"])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.bench r1", description="R1: real-video benchmark (Pose2Sim 4-camera demo)")
    ap.add_argument("--cameras", default="cam01,cam02,cam03,cam04", help="comma list of the input cameras")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma list from {', '.join(ROWS)}")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames (default: all)")
    ap.add_argument("--extrinsics", choices=("refined", "file"), default="refined")
    ap.add_argument("--max-deg", type=float, default=1.0, help="bound on each camera's rotation change (default 1)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--prior-blend", type=float, default=None, metavar="W",
                    help="the temporal model's blend toward its IK prior, 0-1, for the rows that do not set it "
                         "(default: the engine's)")
    a = ap.parse_args(argv)
    data = Path(a.data)
    rows = [r for r in a.rows.split(",") if r]
    cameras = [c for c in a.cameras.split(",") if c]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        print(f"error: unknown row '{bad[0]}' (choose from {', '.join(ROWS)})", file=sys.stderr)
        return 2
    if a.prior_blend is not None and not 0 <= a.prior_blend <= 1:
        print(f"error: --prior-blend must be from 0 to 1, got {a.prior_blend}", file=sys.stderr)
        return 2
    if not (data / "calibration" / "Calib.qca.txt").is_file():
        print(f"error: no Pose2Sim demo in {data}: run scripts/measure_detector_noise_multiview.py --fetch first",
              file=sys.stderr)
        return 2
    known = [p.stem for p in sorted((data / "videos").glob("cam*.mp4"))]
    bad = [c for c in cameras if c not in known]
    if bad:
        print(f"error: unknown camera '{bad[0]}' (choose from {', '.join(known)})", file=sys.stderr)
        return 2
    if not 0 < a.max_deg <= 10:
        print("error: --max-deg must be in (0, 10]", file=sys.stderr)
        return 2
    if a.frames is not None and a.frames < 3:
        print("error: --frames must be at least 3", file=sys.stderr)
        return 2
    t0 = time.time()
    res, cal = evaluate(rows, cameras, data, a.frames, a.extrinsics, log=lambda s: print(s, file=sys.stderr),
                        max_deg=a.max_deg, prior_blend=a.prior_blend)
    span = "all frames" if a.frames is None else f"frames 0–{a.frames - 1}"
    mm = "mm; accel mm/frame² at 60 fps; mean = mean over cameras, reprojection pooled over their frames"
    print(calibration_lines(cal))
    print()
    print(table(res, "smpl", f"R1: SMPL joints (12 limb joints) vs leave-one-out reference, {span} ({mm})"))
    print()
    print(table(res, "limbs", f"R1: the body's MediaPipe-convention limb landmarks (the same 12) vs leave-one-out "
                              f"reference, {span} ({mm})"))
    print()
    print(table(res, "landmarks", f"R1: MediaPipe-convention landmarks (all 33) vs leave-one-out reference, {span} "
                                  f"({mm}; reprojection: 33 landmarks through the Motion's camera, % of the 2D box height)",
                reproj=True))
    print()
    print(group_table(res))
    print()
    print(swap_table(res))
    print()
    print(facing_table(res))
    print()
    print(focal_table(res))
    print()
    print(sensitivity_table(res, cal["used"]))
    print(f"\n({len(cameras)} cameras × {len(rows)} rows, {time.time() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
