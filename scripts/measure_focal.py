"""Measure ``engine.estimate.focal.estimate_focal`` (the per-clip focal from perspective) → the tables of
docs/focal.md.

    .venv/bin/python scripts/measure_focal.py [--synthetic-only] [--seeds N]

R1 (Pose2Sim's Demo_SinglePerson, fetched once with
``scripts/measure_detector_noise_multiview.py --fetch`` into out/pose2sim_demo): each camera's
subject as the engine selects it (``engine.pipeline.detect``, cached, + ``track_and_select``),
against the calibration's focal in the video's pixels. The demo clip (unknown focal): what the
estimate is and whether it is the default. Synthetic: the open body posed and projected at a
known focal (``synthetic_observations``), with MediaPipe-like noise.
"""
import functools
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.argtypes import OneLineParser, int_at_least  # noqa: E402
from engine.estimate.focal import HIPS, estimate_focal  # noqa: E402

DATA = ROOT / "out" / "pose2sim_demo"
DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"


# --- synthetic observations -------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _landmark_model():
    from engine.body.landmarks import LandmarkModel
    from engine.body.model import load_body_model
    return LandmarkModel(load_body_model(), np.zeros(10))


def synthetic_observations(factor, distance, frames=60, size=(1920, 1080), pixel_noise=0.01,
                           world_noise=0.04, offset=(0.0, 0.0), world_scale=0.9, ray_aligned=True,
                           tilt_deg=0.0, seed=0):
    """Observations of the open body at a known focal (factor × max(size)) → (obs, focal_px).

    The body turns through ±60° about the vertical over the clip with a random pose swaying per
    joint; its hip centre sits ``distance`` metres in front of the camera, ``offset`` (fractions of
    the frame's width, height) from the image centre. Keypoints: the 33 landmarks projected, plus
    Gaussian noise of ``pixel_noise`` × the person's 2D height per axis. World landmarks:
    hip-centre-relative, scaled by ``world_scale`` (MediaPipe's are smaller than life), in the axes
    of the ray through the hip centre (as MediaPipe's are, docs/focal.md) unless ``ray_aligned`` is
    False, turned by ``tilt_deg`` about the camera's x axis (one orientation error for the whole
    clip), plus Gaussian noise of ``world_noise`` metres per axis.
    """
    from engine.body.rotations import minimal_rotation
    from engine.align.reprojection import person_height
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    w, h = size
    f = factor * max(size)
    T = frames
    sway = np.sin(np.linspace(0, 3 * np.pi, T))[:, None]
    poses = rng.normal(scale=0.2, size=(1, 72)) + 0.25 * sway * rng.normal(size=(1, 72))
    poses = poses + np.zeros((T, 1))
    yaw = np.radians(np.linspace(-60, 60, T))
    # canonical (Y up, facing +Z) → camera (y down, facing the camera), then the turn
    R = Rotation.from_rotvec(yaw[:, None] * [0.0, 1.0, 0.0]) * Rotation.from_rotvec([np.pi, 0.0, 0.0])
    poses[:, :3] = R.as_rotvec()
    X = _landmark_model()(poses)
    rel = X - X[:, HIPS].mean(1, keepdims=True)
    centre = np.array([offset[0] * w / f * distance, offset[1] * h / f * distance, distance])
    P = rel + centre
    uv = f * P[..., :2] / P[..., 2:3] + np.array([w / 2, h / 2])
    kp = np.concatenate([uv, np.ones(uv.shape[:2] + (1,))], -1)
    ht = person_height(kp)
    kp[..., :2] += rng.normal(size=uv.shape) * pixel_noise * ht[:, None, None]
    world = rel
    if ray_aligned:
        Rr = minimal_rotation(np.array([0.0, 0.0, 1.0]), np.broadcast_to(centre, (T, 3)))
        world = np.einsum("tji,tnj->tni", Rr, rel)             # Rrᵀ: camera → the ray's axes
    world = world @ Rotation.from_euler("x", tilt_deg, degrees=True).as_matrix().T
    world = world_scale * world + rng.normal(size=world.shape) * world_noise
    obs = SimpleNamespace(keypoints=kp.astype(np.float32), world=world.astype(np.float32),
                          valid=np.ones(T, bool), frame_size=(int(w), int(h)), fps=30.0)
    return obs, f


SYNTHETIC = [  # (label, factor, distance m, options)
    ("f 0.7×, 4 m", 0.7, 4.0, {}),
    ("f 1×, 5 m", 1.0, 5.0, {}),
    ("f 2×, 8 m", 2.0, 8.0, {}),
    ("f 0.7×, 4 m, off-centre", 0.7, 4.0, dict(offset=(0.25, 0.0))),
    ("f 2×, 8 m, off-centre", 2.0, 8.0, dict(offset=(0.25, 0.0))),
    ("f 0.7×, portrait 1080×1920, 3.5 m", 0.7, 3.5, dict(size=(1080, 1920))),
    ("f 1×, 5 m, depth noise 0.14 m (R1's)", 1.0, 5.0, dict(world_noise=0.14)),
    ("R1-like: f 0.875×, portrait, 3.5 m, hips 8 % above centre", 0.875, 3.5,
     dict(size=(1080, 1920), offset=(0.0, -0.08))),
    ("… and the world landmarks tilted 2°", 0.875, 3.5, dict(size=(1080, 1920), offset=(0.0, -0.08), tilt_deg=2.0)),
    ("… tilted −2°", 0.875, 3.5, dict(size=(1080, 1920), offset=(0.0, -0.08), tilt_deg=-2.0)),
    ("f 0.7×, 4 m, off-centre, tilted 2°", 0.7, 4.0, dict(offset=(0.25, 0.0), tilt_deg=2.0)),
    ("f 1×, far: 40 m", 1.0, 40.0, {}),
    ("f 3×, far: 60 m", 3.0, 60.0, {}),
]


def synthetic_table(seeds=5, log=print):
    """[(label, true factor, cost-minimum errors, returned errors, methods, spreads, rises)] per row."""
    rows = []
    for label, factor, dist, kw in SYNTHETIC:
        best, got, meth, spreads, rises = [], [], [], [], []
        for s in range(seeds):
            obs, f = synthetic_observations(factor, dist, seed=s, **kw)
            e = estimate_focal(obs)
            best.append(e.best_factor / factor - 1)
            got.append(e.focal_px / f - 1)
            meth.append(e.method)
            spreads.append(e.spread)
            rises.append(e.rise)
        rows.append((label, factor, np.array(best), np.array(got), meth, np.array(spreads), np.array(rises)))
        log(f"  {label}: cost-minimum error {', '.join(f'{100 * x:+.0f}' for x in best)} %; "
            f"{sum(m == 'default' for m in meth)}/{seeds} default")
    return rows


# --- real video -------------------------------------------------------------------------------

def observe(video):
    """The subject's Observations as the engine selects it (detections cached)."""
    from engine.pipeline import PipelineOptions, detect
    from engine.observe.track import track_and_select
    return track_and_select(detect(video, PipelineOptions())[0])


def r1_rows(data=DATA):
    """[(camera, true focal px, default px, FocalEstimate, seconds)] for R1's four cameras."""
    rows = []
    from training.eval.pose2sim_demo import load_calibration
    for cam in load_calibration(data):
        obs = observe(Path(data) / "videos" / f"{cam.name}.mp4")
        t0 = time.perf_counter()
        est = estimate_focal(obs)
        dt = time.perf_counter() - t0
        true = float(np.mean([cam.K[0, 0], cam.K[1, 1]]))
        rows.append((cam.name, obs, true, float(max(obs.frame_size)), est, dt))
    return rows


def reference_rows(rows, data=DATA):
    """The same search on R1 with the multi-view 3D in place of MediaPipe's world landmarks: each
    camera's leave-one-out triangulation of the other three (``training.bench.r1``), moved into
    its frame, hip-centre-relative; camera-aligned, so no ray rotation. → [(camera, estimate)]."""
    from training.bench import r1 as B
    from training.eval import pose2sim_demo as demo
    cams = demo.load_calibration(data)
    uv, vis, _ = B.observe_views(data, [c.name for c in cams])
    vis_ref = np.where(demo.lr_swaps(cams, uv, vis)[..., None], 0.0, vis)
    refined, _ = B.calibration_report(cams, uv, vis, vis_ref)
    refs = B.references(refined, uv, vis_ref)
    out = []
    for v, (name, obs, *_rest) in enumerate(rows):
        T = min(obs.num_frames, refs.shape[1])
        ref = refs[v, :T] - refs[v, :T][:, HIPS].mean(1, keepdims=True)
        o = SimpleNamespace(keypoints=obs.keypoints[:T], world=ref, valid=obs.valid[:T],
                            frame_size=obs.frame_size, fps=obs.fps)
        out.append((name, estimate_focal(o, ray=False)))
    return out


RAY_VARIANTS = {"camera's axes": None, "the ray's": 1.0, "the ray reversed": -1.0,
                "half the ray's angle": 0.5, "twice the ray's angle": 2.0}


def ray_rows(rows):
    """The clip cost (% of height) at the calibration's focal with MediaPipe's world landmarks
    taken in the camera's axes, in the ray's (as ``estimate_focal`` does) and in wrong rays' (the
    root's pixel offset scaled): the check that they are in the ray's axes.
    → [(camera, [cost per RAY_VARIANTS])]."""
    from engine.estimate.focal import _prepare, frame_costs, usable_frames
    out = []
    for name, obs, true, *_rest in rows:
        uv, w, W, h, root = _prepare(obs, np.flatnonzero(usable_frames(obs)), 0.5)
        c = [frame_costs(np.array([true]), uv, w, W, h, root * (k or 1.0), k is not None)[0].sum() / w.sum()
             for k in RAY_VARIANTS.values()]
        out.append((name, c))
    return out


def ablation_rows(rows):
    """R1's cost-minimum errors per camera for the ray rotation on/off × the used landmarks
    (``engine.estimate.focal.LANDMARKS``) or all 33. → [(label, [error per camera])]."""
    from engine.estimate.focal import LANDMARKS
    out = []
    for label, kw in (("ray, nose + shoulders down (shipped)", {}),
                      ("camera's axes, nose + shoulders down", dict(ray=False)),
                      ("ray, all 33 landmarks", dict(landmarks=np.arange(33))),
                      ("camera's axes, all 33 landmarks", dict(ray=False, landmarks=np.arange(33)))):
        kw.setdefault("landmarks", LANDMARKS)
        errs = [estimate_focal(obs, **kw).best_factor * dflt / true - 1 for _, obs, true, dflt, *_r in rows]
        out.append((label, errs))
    return out


def _pct(x):
    return f"{100 * x:+.1f} %"


def print_r1(rows):
    print("| camera | video | true focal px (× long side) | default px, error | estimate px (× long side), error | method | spread (1σ log f) | rise | frames | time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errs_def, errs_est, errs_best = [], [], []
    for name, obs, true, dflt, est, dt in rows:
        w, h = obs.frame_size
        errs_def.append(dflt / true - 1)
        errs_est.append(est.focal_px / true - 1)
        errs_best.append(est.best_factor * dflt / true - 1)
        best = "" if est.method == "perspective" else f" (cost minimum {est.best_factor * dflt:.0f} px, {_pct(errs_best[-1])})"
        print(f"| {name} | {w}×{h} | {true:.0f} ({true / dflt:.3f}) | {dflt:.0f}, {_pct(errs_def[-1])} | "
              f"{est.focal_px:.0f} ({est.factor:.3f}), {_pct(errs_est[-1])}{best} | {est.method} | "
              f"{est.spread:.3f} | {100 * est.rise:.1f} % | {est.frames_used} | {1000 * dt:.0f} ms |")
    print(f"\nmean |error|: default {100 * np.mean(np.abs(errs_def)):.1f} %, returned estimate "
          f"{100 * np.mean(np.abs(errs_est)):.1f} %, cost minimum {100 * np.mean(np.abs(errs_best)):.1f} %")


def main(argv=None):
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synthetic-only", action="store_true", help="skip R1 and the demo clip")
    ap.add_argument("--seeds", type=int_at_least(1), default=5, help="synthetic clips per row (default 5)")
    a = ap.parse_args(argv)
    if not a.synthetic_only:
        need = [DATA / "calibration" / "Calib.qca.txt"] + [DATA / "videos" / f"cam0{i}.mp4" for i in range(1, 5)]
        if not all(p.exists() for p in need):
            print(f"error: {DATA} has no calibration: run scripts/measure_detector_noise_multiview.py "
                  "--fetch first (or pass --synthetic-only)", file=sys.stderr)
            return 2
        print("## R1 (Pose2Sim Demo_SinglePerson)\n")
        rows = r1_rows()
        print_r1(rows)
        print("\nThe same search with the multi-view 3D (leave-one-out triangulation) as the world landmarks:\n")
        print("| camera | estimate px, error | method | cost minimum, error | spread |")
        print("|---|---|---|---|---|")
        for (name, obs, true, dflt, *_r), (_, est) in zip(rows, reference_rows(rows)):
            print(f"| {name} | {est.focal_px:.0f}, {_pct(est.focal_px / true - 1)} | {est.method} | "
                  f"{est.best_factor * dflt:.0f}, {_pct(est.best_factor * dflt / true - 1)} | {est.spread:.3f} |")
        print("\nVariants (cost-minimum error per camera):\n")
        print("| variant | " + " | ".join(r[0] for r in rows) + " | mean \\|error\\| |")
        print("|---|" + "---|" * (len(rows) + 1))
        for label, errs in ablation_rows(rows):
            print(f"| {label} | " + " | ".join(_pct(e) for e in errs) + f" | {100 * np.mean(np.abs(errs)):.1f} % |")
        print("\nMediaPipe's world landmarks in the camera's axes or a ray's: the cost (% of height) at the true focal\n")
        print("| camera | " + " | ".join(RAY_VARIANTS) + " |")
        print("|---|" + "---|" * len(RAY_VARIANTS))
        for name, costs in ray_rows(rows):
            print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in costs) + " |")
        print("\n## Demo clip (unknown focal)\n")
        obs = observe(DEMO)
        t0 = time.perf_counter()
        est = estimate_focal(obs)
        dt = time.perf_counter() - t0
        L = max(obs.frame_size)
        print(f"{DEMO.name} {obs.frame_size[0]}×{obs.frame_size[1]}: {est.method}, {est.focal_px:.0f} px "
              f"({est.factor:.3f} × long side); cost minimum {est.best_factor * L:.0f} px "
              f"({est.best_factor:.3f}), spread {est.spread:.3f}, {est.frames_used} frames, "
              f"rise {100 * est.rise:.1f} %, {1000 * dt:.0f} ms{'; ' + est.reason if est.reason else ''}")
    print(f"\n## Synthetic ({a.seeds} seeds per row)\n")
    rows = synthetic_table(a.seeds, log=lambda s: None)
    print("| clip | true factor | cost minimum: \\|error\\| median (max), mean signed | returned 'default' | "
          "returned focal: \\|error\\| median (max) | spread, median | rise, min – max |")
    print("|---|---|---|---|---|---|---|")
    for label, factor, best, got, meth, spreads, rises in rows:
        print(f"| {label} | {factor} | {100 * np.median(np.abs(best)):.1f} % ({100 * np.max(np.abs(best)):.1f} %), "
              f"{100 * np.mean(best):+.1f} % | {sum(m == 'default' for m in meth)}/{len(meth)} | "
              f"{100 * np.median(np.abs(got)):.1f} % ({100 * np.max(np.abs(got)):.1f} %) | {np.median(spreads):.3f} | "
              f"{100 * rises.min():.2f} – {100 * rises.max():.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
