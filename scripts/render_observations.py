"""Render CMU training motions on the open body, run the shipped MediaPipe PoseLandmarker on the
renders, and store its detections with the known truth (see docs/rendered_observations.md).

    .venv/bin/python scripts/render_observations.py run [--passes 2] [--max-frames N]   # → out/rendered/
    .venv/bin/python scripts/render_observations.py speed      # frames/s: render, MediaPipe, both
    .venv/bin/python scripts/render_observations.py sheet      # → docs/img/render_sheet.png
    .venv/bin/python scripts/render_observations.py compare    # rendered vs real error statistics

``run`` is resumable (a clip already on disk is skipped) and deterministic for a ``--seed``.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from training.render import dataset as D  # noqa: E402

CACHE = ROOT / "cache" / "cmu_smpl"
OUT = ROOT / "out" / "rendered"
NOISE_JSON = ROOT / "training" / "data" / "detector_noise.json"


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse with one ``error:`` line (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def _renderer(long_side):
    from engine.body.model import load_body_model
    from training.render.scene import ClipRenderer
    return ClipRenderer(load_body_model(), long_side=long_side)


def _jobs(args):
    if not Path(args.cache).is_dir() or not any(Path(args.cache).glob("*.npz")):
        raise UsageError(f"{args.cache}: no retargeted CMU clips (build them with "
                         "`.venv/bin/python -m training.data.bvh_to_smpl --cache cache/cmu_smpl`)")
    clips = D.train_clips(args.cache)
    if args.clips:
        want = args.clips.split(",")
        bad = [c for c in want if c not in clips]
        if bad:
            raise UsageError(f"--clips {','.join(bad)}: not training clips of {args.cache} "
                             "(val/test subjects are never rendered)")
        clips = want
    return D.job_list(args.cache, clips, args.passes)


def cmd_run(args):
    jobs = _jobs(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror}")
    R = _renderer(args.long_side)
    have = sum(D.output_path(out, c, s).exists() for c, s in jobs)
    print(f"{len(jobs)} jobs, {have} already on disk", flush=True)
    done, frames, dt = D.run(args.cache, out, jobs, R, base_seed=args.seed, max_frames=args.max_frames,
                             progress=lambda m: print(m, flush=True))
    print(f"done: {done} clips, {frames} frames in {dt:.0f} s ({frames / max(dt, 1e-9):.2f} frames/s)")


def cmd_speed(args):
    """Frames/s of rendering alone, MediaPipe alone (on the same frames), and both."""
    jobs = _jobs(args)[: args.n]
    R = _renderer(args.long_side)
    t_render = t_det = n = 0
    for clip, seed in jobs:
        rng = D.job_rng(args.seed, clip, seed)
        with np.load(Path(args.cache) / f"{clip}.npz") as z:
            poses, trans, betas, fps = z["poses"], z["trans"], z["betas"], float(z["fps"])
        k = min(int(rng.integers(*D.CLIP_FRAMES)), len(poses))
        a = int(rng.integers(0, len(poses) - k + 1))
        t0 = time.perf_counter()
        frames, truth = R.render(poses[a:a + k], trans[a:a + k], betas, rng, fps=fps)
        t1 = time.perf_counter()
        D.detect_clip(frames, fps)
        t2 = time.perf_counter()
        t_render += t1 - t0
        t_det += t2 - t1
        n += len(frames)
        print(f"{clip}_{seed}: {len(frames)} frames {tuple(truth['frame_size'])} {truth['camera_type']}: "
              f"render {len(frames) / (t1 - t0):.1f} frames/s, MediaPipe {len(frames) / (t2 - t1):.1f} frames/s",
              flush=True)
    print(f"all {n} frames: render {n / t_render:.2f} frames/s ({1000 * t_render / n:.0f} ms), "
          f"MediaPipe {n / t_det:.2f} frames/s ({1000 * t_det / n:.0f} ms), "
          f"together {n / (t_render + t_det):.2f} frames/s")


def cmd_sheet(args):
    """A grid of renders (middle frame of the first jobs) with MediaPipe's keypoints (green,
    limbs) and the true landmarks (red dots)."""
    import cv2
    jobs = _jobs(args)
    step = max(1, len(jobs) // args.n)
    R = _renderer(args.long_side)
    tiles = []
    for clip, seed in jobs[::step][: args.n]:
        arrays, frames = D.render_one(R, args.cache, clip, seed, args.seed)
        t = len(frames) // 2
        img = cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR)
        true = arrays["landmarks2d"][t]
        kp = arrays["keypoints"][t]
        lo, hi = true.min(0), true.max(0)
        c, half = (lo + hi) / 2, 0.65 * max(hi[1] - lo[1], 40)
        if np.isfinite(kp[0, 0]):
            from training.eval.overlay import draw_landmarks
            draw_landmarks(img, kp, (0, 255, 0), min_vis=-np.inf, thickness=1, radius=2)
        for q in true:
            cv2.circle(img, (int(round(q[0])), int(round(q[1]))), 1, (0, 0, 255), -1)
        x0, y0 = int(c[0] - half * 0.75), int(c[1] - half)
        crop = cv2.copyMakeBorder(img, 2000, 2000, 2000, 2000, cv2.BORDER_CONSTANT)[
            y0 + 2000:y0 + 2000 + int(2 * half), x0 + 2000:x0 + 2000 + int(1.5 * half)]
        tile = cv2.resize(crop, (240, 320), interpolation=cv2.INTER_AREA)
        label = f"{clip} {arrays['camera_type']} {'found' if np.isfinite(kp[0, 0]) else 'missed'}"
        cv2.putText(tile, label, (4, 314), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
        print(f"{clip}_{seed}: frame {t}, {label}", flush=True)
    cols = min(len(tiles), 4)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), np.vstack(rows))
    print(f"wrote {args.output}")


def cmd_compare(args):
    """Markdown tables: rendered detections' statistics next to the multi-view reference's."""
    from measure_detector_noise_multiview import GROUPS
    from training.render.stats import detection_stats, group_values
    files = sorted(p for p in Path(args.out).glob("*.npz") if not p.name.endswith(".part.npz"))
    if not files:
        raise UsageError(f"{args.out}: no rendered clips (run `render_observations.py run` first)")

    def load():
        for p in files:
            with np.load(p) as z:
                yield {k: z[k] for k in ("keypoints", "landmarks2d", "frame_size", "landmarks_cam", "world")}
    s = detection_stats(load(), (args.min_box_px, args.max_box_px))
    if not s["frames"]:
        raise UsageError(f"no frame with a box height in [{args.min_box_px}, {args.max_box_px}) px")
    ref = json.loads(NOISE_JSON.read_text())["multiview_reference"]
    k2, dp = ref["keypoints2d"], ref["depth"]
    rs, rr, rd = (group_values(np.asarray(x).mean(-1) if np.ndim(x) == 2 else x, GROUPS) for x in
                  (s["sigma_bh"], k2["sigma_per_box_height_detector_estimate"], k2["sigma_per_box_height"]))
    bias = group_values(np.abs(s["bias_bh"]).mean(-1), GROUPS)
    ds, dr = group_values(s["depth_sigma_m"], GROUPS), group_values(dp["sigma_m"], GROUPS)
    ol = group_values(s["outlier_rate"], GROUPS)
    print(f"{len(files)} clips, {s['frames']} frames, {s['in_view']} with the body in view, "
          f"{s['detected']} detected; box height median {s['box_h_px_median']:.0f} px; "
          f"MediaPipe depth scale median {s['depth_scale_median']:.2f}\n")
    print("| group | rendered σ / box h | real σ / box h (detector estimate) | real σ / box h (raw) | "
          "ratio rendered / real | rendered abs bias / box h | rendered outliers > 5σ | "
          "rendered depth σ m | real depth σ m |")
    print("|---|---|---|---|---|---|---|---|---|")
    for g in GROUPS:
        print(f"| {g} | {rs[g]:.4f} | {rr[g]:.4f} | {rd[g]:.4f} | {rs[g] / rr[g]:.2f} | {bias[g]:.4f} | "
              f"{100 * ol[g]:.1f} % | {ds[g]:.3f} | {dr[g]:.3f} |")
    print(f"\nall landmarks: rendered σ median {np.nanmedian(s['sigma_bh']):.4f} box heights "
          f"(real, detector estimate: {k2['sigma_per_box_height_detector_estimate_median']:.4f}; "
          f"raw {k2['sigma_per_box_height_median']:.4f}); depth σ median {np.nanmedian(s['depth_sigma_m']):.3f} m "
          f"(real {dp['sigma_m_median']:.3f} m); left/right swaps {100 * s['swap_rate']:.1f} % of detected "
          f"frames (real {100 * k2['left_right_swap_rate']:.1f} %); dropout {100 * s['dropout_rate']:.1f} % "
          f"of in-view frames (real {100 * k2['person_dropout_rate']:.1f} %)")
    if args.plot:
        plot_compare(args.plot, rs, rr, ds, dr, (args.min_box_px, args.max_box_px))
        print(f"\nwrote {args.plot}")
    by_cam = {}
    for p in files:
        e = D.summarise(p)
        n, d = by_cam.get(e["camera"], (0, 0))
        by_cam[e["camera"]] = (n + e["frames"], d + e["detected"])
    print("\ndetected frames by camera: " + ", ".join(
        f"{c} {100 * d / n:.1f} % of {n}" for c, (n, d) in sorted(by_cam.items())))


def plot_compare(path, rs, rr, ds, dr, box_px):
    """Bars per landmark group: 2D σ and depth σ, rendered next to real."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = list(rs)
    x = np.arange(len(groups))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, (a, b, unit) in zip(axes, ((rs, rr, "2D σ, box heights"), (ds, dr, "depth σ, m"))):
        ax.bar(x - 0.2, [a[g] for g in groups], 0.4, label="rendered (MediaPipe on our renders)")
        ax.bar(x + 0.2, [b[g] for g in groups], 0.4, label="real (R1, multi-view reference)")
        ax.set_xticks(x, groups, rotation=30)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    lo, hi = box_px
    span = f"true box {lo:g}-{hi:g} px" if np.isfinite(hi) else f"true box ≥ {lo:g} px"
    fig.suptitle(f"MediaPipe's error on rendered clips vs on real video, by landmark group ({span})")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main(argv=None):
    ap = Parser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "speed", "sheet", "compare"):
        p = sub.add_parser(name)
        p.add_argument("--cache", default=str(CACHE), help="retargeted CMU clips (default cache/cmu_smpl)")
        p.add_argument("--out", default=str(OUT), help="rendered clips folder (default out/rendered)")
        p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
        p.add_argument("--passes", type=int, default=2, help="views of each motion window (default 2)")
        p.add_argument("--clips", help="comma-separated training clip ids (default: all training clips)")
        p.add_argument("--long-side", type=int, default=960, help="rendered frames' longer side in px (default 960)")
    sub.choices["run"].add_argument("--max-frames", type=int, help="stop after this many new frames")
    sub.choices["compare"].add_argument("--min-box-px", type=float, default=0.0,
                                        help="only frames whose true box is at least this tall (px)")
    sub.choices["compare"].add_argument("--max-box-px", type=float, default=float("inf"),
                                        help="only frames whose true box is less tall than this (px)")
    sub.choices["compare"].add_argument("--plot", help="also draw the comparison into this PNG")
    sub.choices["speed"].add_argument("--n", type=int, default=4, help="clips to time (default 4)")
    sub.choices["sheet"].add_argument("--n", type=int, default=8, help="tiles (default 8)")
    sub.choices["sheet"].add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "render_sheet.png"))
    args = ap.parse_args(argv)
    for k in ("passes", "long_side") + (("n",) if hasattr(args, "n") else ()) + \
            (("max_frames",) if getattr(args, "max_frames", None) is not None else ()):
        if getattr(args, k) < 1:
            ap.exit(2, f"error: --{k.replace('_', '-')} must be at least 1\n")
    try:
        {"run": cmd_run, "speed": cmd_speed, "sheet": cmd_sheet, "compare": cmd_compare}[args.cmd](args)
    except UsageError as exc:
        ap.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
