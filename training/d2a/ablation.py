"""The D2A-HMR ablation table on the held-out test pool, in one command.

    .venv/bin/python -m training.d2a.ablation --runs out/d2a_cpu --pool out/d2a_pool_test \\
        --plot out/d2a_reliability.png

Rows: "temporal only" (the seed-2 estimate stored in the pool) and every row of
``training.d2a.model.ABLATION_ROWS``, each from its own ``training.d2a.train`` run
(``training.d2a.train.row_out_dir(RUNS, row)``: ``best.pt``, else ``last.pt``; a row without
a checkpoint prints "not trained"). The pool is built from the test split (H1's held-out CMU
subjects) with ``python -m training.d2a.data --split test``; by default the seen-subject pitch
clip 124_02 is left out, as H1's main table does (``--include-seen`` keeps it).

Metrics, as ``training.bench`` / ``training.temporal.train.evaluate`` score them: MPJPE and PA-MPJPE on
the 14 LSP joints (root = hip midpoint) over detected frames, and the acceleration error
(mm/frame², second difference of the root-aligned LSP joints) over triplets of consecutive
detected frames of one window (the pool keeps each window's frames in order).

``--bench h1`` / ``--bench h2`` scores the same rows through the whole engine pipeline on the H1
or H2 benchmark instead (``training.bench``; each row exported to ONNX and run by
``engine.estimate.refine`` on the shipped temporal estimate, the σ-weighted rotation fit included):

    .venv/bin/python -m training.d2a.ablation --runs out/d2a_cpu_fast --bench h1 --plot PNG

σ calibration (the full model, "+imphmr"): the Spearman rank correlation between the predicted
σ and the actual error of every joint of every detected frame, and a reliability plot: frames ×
joints binned by predicted σ (equal-count bins), mean σ against the mean observed error, with
y = x. The error is the one the RLE loss models: ‖refined joint − true joint‖, both relative to
their pelvis. On the pool the network's raw σ is scored (only its ranking is meaningful). With
``--bench`` σ is the engine's: calibrated at export to a per-coordinate standard deviation
(``training.d2a.export``), so the plot's target is the mean 3D error of an isotropic
Gaussian, 2√(2/π)·σ ≈ 1.6σ (dotted); y = x is drawn for reference.
"""
import argparse
from pathlib import Path

import numpy as np

from training.loop import set_threads

CLEANED = "+ light smoothing"
ROW_LABELS = {"refine": "+ refinement, no depth, no RLE", "+depth": "+ depth", "+rle": "+ RLE",
              "+silhouette": "+ silhouette", "+masking": "+ masked modelling", "+imphmr": "+ ImpHMR (full)"}


def accel_by_window(pred, gt, window, frame, valid, joints, root):
    """Mean accel error over triplets (t−1, t, t+1) of consecutive valid frames of one window;
    the pool frames may come in any order."""
    o = np.lexsort((frame, window))
    p, g = np.asarray(pred, np.float64)[o][:, joints], np.asarray(gt, np.float64)[o][:, joints]
    p = p - p[:, root].mean(1, keepdims=True)
    g = g - g[:, root].mean(1, keepdims=True)
    w, f, v = np.asarray(window)[o], np.asarray(frame)[o], np.asarray(valid, bool)[o]
    ok = (w[:-2] == w[2:]) & (f[1:-1] == f[:-2] + 1) & (f[2:] == f[1:-1] + 1) & v[:-2] & v[1:-1] & v[2:]
    if not ok.any():
        return float("nan")
    ap = p[:-2] - 2 * p[1:-1] + p[2:]
    ag = g[:-2] - 2 * g[1:-1] + g[2:]
    return float(np.linalg.norm(ap[ok] - ag[ok], axis=-1).mean())


def scores(pred, gt, window, frame, valid):
    """MPJPE, PA-MPJPE, Accel (mm) of joints (N,24,3) against the truth."""
    from training.bench.synthetic import HIPS, LSP14
    from training.d2a.train import joint_scores
    s = joint_scores(pred, gt, valid)
    root = [LSP14.index(h) for h in HIPS]
    return dict(mpjpe=s["mpjpe_mm"], pa_mpjpe=s["pa_mpjpe_mm"],
                accel=1000 * accel_by_window(pred, gt, window, frame, valid, LSP14, root))


def spearman(sigma, err):
    from scipy.stats import spearmanr
    return float(spearmanr(np.ravel(sigma), np.ravel(err)).statistic)


def reliability(sigma, err, bins=10):
    """Equal-count bins of σ → (mean σ, mean error, count) per bin."""
    s, e = np.ravel(sigma), np.ravel(err)
    o = np.argsort(s)
    parts = np.array_split(o, min(bins, len(o)))
    return np.array([[s[p].mean(), e[p].mean(), len(p)] for p in parts if len(p)])


def reliability_plot(path, table, title):
    """PNG: binned mean predicted σ vs mean observed error (mm), with y = x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = 1000 * table[:, 0], 1000 * table[:, 1]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    hi = max(x.max(), y.max()) * 1.1
    ax.plot([0, hi], [0, hi], "--", color="grey", label="y = x")
    k = 2 * np.sqrt(2 / np.pi)   # mean 3D error of an isotropic Gaussian with per-coordinate std σ
    ax.plot([0, hi / k], [0, hi], ":", color="black", label="y = 1.6 x (per-coordinate σ, Gaussian)")
    ax.plot(x, y, "o-", label="binned joints")
    ax.set_xlabel("predicted σ (mm)")
    ax.set_ylabel("observed mean joint error (mm)")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def checkpoint_of(runs, row):
    from training.d2a.train import row_out_dir
    d = Path(row_out_dir(runs, row))
    for name in ("best.pt", "last.pt"):
        if (d / name).exists():
            return d / name
    return None


def frames_to_score(path, pool, include_seen=False, max_windows=None):
    """Pool frame indices: without the windows of seen-subject test clips (unless
    ``include_seen``), of the first ``max_windows`` windows left (all by default)."""
    import json
    from training.data.splits import SEEN_SUBJECT_TEST_CLIPS
    win = np.asarray(pool["window"])
    keep = np.ones(len(win), bool)
    meta = Path(path) / "meta.json"
    if not include_seen and meta.exists():
        wins = json.loads(meta.read_text()).get("windows", [])
        seen = np.array([w.get("clip") in SEEN_SUBJECT_TEST_CLIPS for w in wins] + [False])
        keep &= ~seen[np.minimum(win, len(seen) - 1)]
    if max_windows:
        keep &= np.isin(win, np.unique(win[keep])[:int(max_windows)])
    return np.flatnonzero(keep)


def run(runs, pool_path, plot=None, rows=None, include_seen=False, batch_size=16, body=None, out=print,
        max_windows=None):
    """Evaluate every row; prints the markdown table and returns {row: scores}."""
    from training.d2a.data import load_pool
    from training.d2a.model import ABLATION_ROWS
    from training.loop import load_checkpoint
    from training.d2a.train import model_from_checkpoint, predict
    pool = load_pool(pool_path)
    idx = frames_to_score(pool_path, pool, include_seen, max_windows)
    gt = np.asarray(pool["joints3d"][idx], np.float64)
    valid = np.asarray(pool["valid"][idx], bool)
    win, fr = np.asarray(pool["window"][idx]), np.asarray(pool["frame"][idx])
    res = {"temporal only": scores(pool["temporal_joints"][idx], gt, win, fr, valid)}
    labels = {"temporal only": "temporal only (seed 2)"}
    calib = None
    for name, _ in ABLATION_ROWS:
        if rows and name not in rows:
            continue
        labels[name] = ROW_LABELS.get(name, name)
        ck = checkpoint_of(runs, name)
        if ck is None:
            res[name] = None
            continue
        c = load_checkpoint(ck)
        model = model_from_checkpoint(c, body)
        joints, sigma = predict(model, pool, idx, batch_size)
        res[name] = {**scores(joints, gt, win, fr, valid), "step": int(c.get("step", 0)), "ckpt": str(ck)}
        if name == "+imphmr":
            err = np.linalg.norm(joints - gt, axis=-1)[valid]
            calib = (sigma[valid], err)
    nseq = len(np.unique(win))
    out(f"### D2A-HMR ablation: {pool_path}, {int(valid.sum())} detected frames of {len(idx)} in {nseq} windows "
        f"(mm; mm/frame² for accel; 14 LSP joints, root = hip midpoint)\n")
    out("| row | config | steps | MPJPE | PA-MPJPE | Accel |")
    out("|---|---|---|---|---|---|")
    for name, r in res.items():
        cfgname = "—" if name == "temporal only" else f"`{name}`"
        if r is None:
            out(f"| {labels[name]} | {cfgname} | not trained | | | |")
        else:
            out(f"| {labels[name]} | {cfgname} | {r.get('step', '—')} | {r['mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | {r['accel']:.1f} |")
    if calib is not None and calib[0].size:
        rho = spearman(*calib)
        res["spearman_sigma_error"] = rho
        out(f"\nσ vs actual joint error (full model, {calib[0].size} joint-frames): Spearman ρ = {rho:.3f}")
        if plot:
            tab = reliability(*calib)
            reliability_plot(plot, tab, f"D2A-HMR full model: σ reliability (Spearman ρ = {rho:.2f})")
            res["reliability"] = tab
            out(f"reliability plot → {plot}")
    elif plot:
        out("\nno full-model (+imphmr) checkpoint: no σ calibration or plot")
    return res


def export_rows(runs, rows, out_dir, calibration_pool=None):
    """Each trained row's checkpoint → ``out_dir/<row>/d2a.onnx`` (σ calibrated on
    ``calibration_pool``, as the shipped export) → {row: folder}."""
    from training.d2a.model import ABLATION_ROWS
    from training.d2a.export import export_checkpoint
    from training.d2a.train import row_slug
    dirs = {}
    for name, _ in ABLATION_ROWS:
        if rows and name not in rows:
            continue
        ck = checkpoint_of(runs, name)
        if ck is not None:
            d = Path(out_dir) / (row_slug(name) or "full")
            export_checkpoint(ck, d, f"ablation row {name}", calibration_pool)
            dirs[name] = d
    return dirs


def joint_errors_cam(pred, sample):
    """Per-joint error (frames, 24) of a bench estimate against the truth, both in the camera
    frame relative to their hip midpoint, over the estimate's valid frames; and those frames."""
    from training.bench.synthetic import HIPS, _to_cam
    E = np.asarray(pred["camera_extrinsics"], np.float64)
    pj = _to_cam(np.nan_to_num(np.asarray(pred["joints"], np.float64)), E)
    gt = np.asarray(sample["gt_joints_cam"], np.float64)
    pj = pj - pj[:, HIPS].mean(1, keepdims=True)
    gt = gt - gt[:, HIPS].mean(1, keepdims=True)
    ok = np.asarray(pred["valid"], bool) & np.isfinite(np.asarray(pred["joint_sigma"], np.float64)).all(1)
    return np.linalg.norm(pj - gt, axis=-1)[ok], ok


def run_bench(runs, which, rows=None, plot=None, out=print, seed=0, work_dir=None,
              calibration_pool="out/d2a_pool_val"):
    """The ablation table through the whole engine pipeline on H1 or H2 (``training.bench``):
    every trained row exported to ONNX (σ calibrated on ``calibration_pool``) and run as
    ``temporal+d2a`` on top of the same shipped temporal estimate (computed once per sequence),
    σ → rotations fit included; then "temporal only" and the full row once more through the
    default clean-up (``light`` preset, which reads σ), the output a user gets. The full row's
    σ (calibrated; the pelvis left out, its σ is the temporal root's) is scored against its
    per-joint error (Spearman, reliability plot)."""
    import tempfile
    from training.bench import synthetic as bench
    from training.d2a import bench as bench_d2a
    from training.data.bvh_to_smpl import default_body
    from training.d2a.model import ABLATION_ROWS
    bench.ESTIMATORS.clear()

    def temporal_only(obs, body):
        return bench_d2a.temporal_once(obs, body)
    bench.register("temporal only (seed 2)", temporal_only)
    tmp = tempfile.TemporaryDirectory(prefix="d2a_rows_") if work_dir is None else None
    dirs = export_rows(runs, rows, work_dir or tmp.name, calibration_pool)
    sink, full = [], None
    for name, d in dirs.items():
        fn = bench_d2a.register_refinement(f"{ROW_LABELS.get(name, name)} `{name}`", d,
                                           sink if name == "+imphmr" else None)
        if name == "+imphmr":
            full = fn                       # memoised: the cleaned row reuses its result
    if full is not None:    # what the user gets: both through the default clean-up (light smoothing)
        bench.register(f"temporal only (seed 2) {CLEANED}", bench.cleaned("light", source=temporal_only))
        bench.register(f"{ROW_LABELS['+imphmr']} `+imphmr` {CLEANED}", bench.cleaned("light", source=full))
    for name, _ in ABLATION_ROWS:
        if name not in dirs and (not rows or name in rows):
            out(f"(row {name}: not trained, left out)")
    body = default_body()
    names = list(bench.ESTIMATORS)
    if which == "h1":
        samples = bench.h1_samples(body, seed)
        res = bench.run_estimators(names, samples, body, bench.LSP14, True)
        clean = {n: [(s, r) for s, r in v if not s["seen_subject"]] for n, v in res.items()}
        metrics = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("pve", "PVE"), ("accel", "Accel")]
        out(bench.table(clean, f"D2A-HMR ablation on H1 (CMU held-out subjects, seed {seed}, body {body.name}; "
                               "the whole engine pipeline; mm, mm/frame² for accel)", metrics))
    else:
        samples = bench.h2_samples(body, seed)
        res = bench.run_estimators(names, samples, body, bench.OBP_JOINTS, False)
        clean = res
        metrics = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("accel", "Accel")]
        out(bench.table(res, f"D2A-HMR ablation on H2 (OBP pitches × broadcast cameras, 12 limb joints, seed {seed}; "
                             "mm, mm/frame² for accel)", metrics))
    result = {"table": clean}
    if sink:
        errs, sig = [], []
        for s, pred in zip(samples, sink):
            if which == "h1" and s["seen_subject"]:
                continue
            e, ok = joint_errors_cam(pred, s)
            errs.append(e[:, 1:])          # the pelvis's σ is the temporal root's (engine.estimate.refine.motion_sigma)
            sig.append(np.asarray(pred["joint_sigma"], np.float64)[ok][:, 1:])
        err, sigma = np.concatenate(errs), np.concatenate(sig)
        rho = spearman(sigma, err)
        result["spearman_sigma_error"] = rho
        out(f"\nσ vs actual per-joint error of the full pipeline (full row, {err.size} joint-frames, "
            f"the 23 joints but the pelvis, relative to the hip midpoint): Spearman ρ = {rho:.3f}")
        if plot:
            tab = reliability(sigma, err)
            reliability_plot(plot, tab, f"D2A-HMR full row on {which.upper()}: σ reliability (Spearman ρ = {rho:.2f})")
            result["reliability"] = tab
            out(f"reliability plot → {plot}")
    if tmp is not None:
        tmp.cleanup()
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description="D2A-HMR ablation table on the held-out test pool")
    ap.add_argument("--runs", default="out/d2a_cpu", help="the full model's out_dir; rows live in RUNS_<row>")
    ap.add_argument("--pool", default="out/d2a_pool_test", help="a training.d2a.data pool of the test split")
    ap.add_argument("--plot", help="PNG path for the σ reliability plot")
    ap.add_argument("--rows", help="comma list of rows (default: all)")
    ap.add_argument("--include-seen", action="store_true", help="keep the seen-subject clip 124_02")
    ap.add_argument("--max-windows", type=int, help="score only the first N windows (a quicker run)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--bench", choices=["h1", "h2"], help="score the rows through the whole engine pipeline on "
                    "H1 or H2 (training.bench) instead of the pool: each row exported to ONNX, σ → rotations fit "
                    "included")
    ap.add_argument("--seed", type=int, default=0, help="--bench: the benchmark's seed")
    ap.add_argument("--calibration-pool", default="out/d2a_pool_val",
                    help="--bench: the pool each row's σ is calibrated on at export (as the shipped export)")
    a = ap.parse_args(argv)
    set_threads(1)
    if a.bench:
        run_bench(a.runs, a.bench, a.rows.split(",") if a.rows else None, a.plot, seed=a.seed,
                  calibration_pool=a.calibration_pool)
        return
    run(a.runs, a.pool, a.plot, a.rows.split(",") if a.rows else None, a.include_seen, a.batch_size,
        max_windows=a.max_windows)


if __name__ == "__main__":
    main()
