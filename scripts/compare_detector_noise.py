"""Real MediaPipe vs the training-data generator on the same poses and cameras (Pose2Sim demo).

    .venv/bin/python scripts/compare_detector_noise.py [--seeds 5] [--no-plots]

Runs the product's detector on the 4 views of Pose2Sim's Demo_SinglePerson (fetch it first:
``scripts/measure_detector_noise_multiview.py --fetch``), fits the open body to the 4-view
triangulation, lets ``training.data.synth`` observe that body through the same calibrated
cameras with each noise model (``self_consistency``, what the shipped models were trained
with, and ``multiview``), and prints the same statistics for all (``training.eval.noise_compare``)
as a Markdown table; writes ``docs/img/noise_compare_*.png`` and ``out/noise_compare/stats.json``.
See docs/detector_noise.md, "Real detector vs the generator".
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMG = ROOT / "docs" / "img"
OUT = ROOT / "out" / "noise_compare"
MODELS = ("self_consistency", "multiview")
FPS_TRAIN = 30.0           # the generator's frame rate in training (Synthesizer's default fps)


def real_views(data):
    from training.eval.pose2sim_demo import detect_views, load_calibration
    o = detect_views(data)
    return load_calibration(data), o["uv"], o["vis"], o["world"]


def reference_fit(cams, uv, vis, body):
    """The body fitted to the 4-view triangulation of the real detections (swaps left out)."""
    from training.eval import multiview as mv
    from training.eval import noise_compare as nc
    sw = nc.swap_flags(cams, uv, vis)
    vr = vis.copy()
    vr[sw] = 0.0
    w = np.where(vr > nc.VIS, vr, 0.0)
    X = mv.triangulate(cams, uv, w)
    with np.errstate(invalid="ignore"):
        vm = np.nan_to_num(np.nanmean(np.where(w > 0, vr, np.nan), axis=0))
    return nc.fit_body(X, vm, body), X


def summarise(runs):
    """Scalars and arrays of a list of ``statistics`` dicts (one per seed): mean over seeds."""
    def m(get):
        vals = [get(r) for r in runs]
        return np.mean(np.asarray(vals, np.float64), axis=0)
    from training.eval.noise_compare import GROUPS, HIPS, OFFSET_LANDMARKS
    nonhip = [j for j in range(33) if j not in HIPS]
    out = {
        "sigma_2d_group": {g: float(m(lambda r: r["sigma_2d_group"][g])) for g in GROUPS},
        "sigma_2d_median": float(m(lambda r: np.median(r["sigma_2d"]))),
        "sigma_by_vis": [None if any(r["sigma_by_vis"][i] is None for r in runs)
                         else float(np.mean([r["sigma_by_vis"][i] for r in runs])) for i in range(10)],
        "visibility_hist": m(lambda r: r["visibility_hist"]).tolist(),
        "residual_acf": m(lambda r: r["residual_acf"]).tolist(),
        "depth_sigma_group": {g: float(m(lambda r, g=g: np.nanmedian(r["depth_sigma"][GROUPS[g]]))) for g in GROUPS},
        "depth_sigma_median": float(m(lambda r: np.nanmedian(r["depth_sigma"][nonhip]))),
        "depth_scales": m(lambda r: r["depth_scales"]).tolist(),
        "depth_corr_mean": float(m(lambda r: r["depth_corr_mean"])),
        "depth_acf": m(lambda r: r["depth_acf"]).tolist(),
        "swap_rate": float(m(lambda r: r["swaps"].mean())),
        "swap_runs": np.concatenate([r["swap_runs"] for r in runs]).tolist(),
        "swap_run_count_per_seed": float(m(lambda r: len(r["swap_runs"]))),
        "offsets_cm": {f"{s}_{n}": (100 * m(lambda r, k=f"{s}_{n}": r["offsets"][k])).tolist()
                       for s in ("left", "right") for n in OFFSET_LANDMARKS},
        "offsets_sd_cm": {f"{s}_{n}": (100 * m(lambda r, k=f"{s}_{n}": r["offsets_sd"][k])).tolist()
                          for s in ("left", "right") for n in OFFSET_LANDMARKS},
        "limb_ratios": {k: float(m(lambda r, k=k: r["limb_ratios"][k])) for k in runs[0]["limb_ratios"]},
        "box_h_px": float(m(lambda r: r["box_h"])),
    }
    return out


def table(res, body_ratios):
    """Markdown table: one row per statistic, one column per set."""
    from training.eval.noise_compare import GROUPS
    cols = list(res)
    head = "| statistic | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols)
    rows = [head]

    def row(name, fmt, get):
        rows.append(f"| {name} | " + " | ".join(fmt(get(res[c])) for c in cols) + " |")
    f4, f2 = (lambda x: f"{x:.4f}"), (lambda x: f"{x:.2f}")
    for g in GROUPS:
        row(f"2D σ {g} (box h)", f4, lambda r, g=g: r["sigma_2d_group"][g])
    row("2D σ all, median (box h)", f4, lambda r: r["sigma_2d_median"])
    row("2D σ at visibility 0.5–0.6 / 0.9–1.0 (box h)", lambda x: x,
        lambda r: "/".join("–" if v is None else f"{v:.3f}" for v in (r["sigma_by_vis"][5], r["sigma_by_vis"][9])))
    row("share of visibilities > 0.9", f2, lambda r: r["visibility_hist"][9])
    row("2D residual autocorrelation lag 1 / 5 / 10", lambda x: x,
        lambda r: " / ".join(f"{r['residual_acf'][k]:.2f}" for k in (0, 4, 9)))
    for g in ("face", "shoulders", "elbows", "wrists", "knees", "ankles", "feet"):
        row(f"depth σ {g} (m)", lambda x: f"{x:.3f}", lambda r, g=g: r["depth_sigma_group"][g])
    row("depth σ all but hips, median (m)", lambda x: f"{x:.3f}", lambda r: r["depth_sigma_median"])
    row("depth: fitted scale per view", lambda x: x, lambda r: " ".join(f"{s:.2f}" for s in r["depth_scales"]))
    row("depth error: mean correlation between joints (same frame)", f2, lambda r: r["depth_corr_mean"])
    row("depth error autocorrelation lag 1 / 5 / 10 frames", lambda x: x,
        lambda r: " / ".join(f"{r['depth_acf'][k]:.2f}" for k in (0, 4, 9)))
    row("left/right-swapped view-frames", lambda x: f"{100 * x:.1f} %", lambda r: r["swap_rate"])
    row("swap runs per 400 view-frames; lengths (frames)", lambda x: x,
        lambda r: f"{r['swap_run_count_per_seed']:.1f}; " + (", ".join(str(n) for n in sorted(r["swap_runs"])[::-1][:8]) or "–"))
    for k in ("left_hip", "right_hip", "left_shoulder", "left_knee", "right_knee", "left_ankle", "right_ankle"):
        row(f"{k} landmark − joint (x left, y up, z fwd; cm)", lambda x: x,
            lambda r, k=k: ", ".join(f"{v:+.1f}" for v in r["offsets_cm"][k]))
    row(f"forearm/upper arm (body: {body_ratios['forearm_upper_arm']:.2f})", f2, lambda r: r["limb_ratios"]["forearm_upper_arm"])
    row(f"shank/thigh (body: {body_ratios['shank_thigh']:.2f})", f2, lambda r: r["limb_ratios"]["shank_thigh"])
    return "\n".join(rows)


def plots(real_runs, gen_runs, res, img=IMG):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from training.eval.noise_compare import GROUPS
    img.mkdir(parents=True, exist_ok=True)
    colors = {"real (MediaPipe)": "k", "generator: self_consistency": "tab:blue", "generator: multiview": "tab:orange"}
    sets = {"real (MediaPipe)": real_runs, **{f"generator: {k}": v for k, v in gen_runs.items()}}
    # 1. residual histograms per group
    fig, axs = plt.subplots(3, 3, figsize=(11, 8.5), sharex=True)
    bins = np.linspace(-0.12, 0.12, 61)
    for ax, g in zip(axs.ravel(), GROUPS):
        for name, runs in sets.items():
            x = np.concatenate([r["residual_group"][g] for r in runs])
            x = x[np.isfinite(x)]
            ax.hist(np.clip(x, bins[0], bins[-1]), bins, density=True, histtype="step", color=colors[name],
                    lw=1.4, label=name)
        ax.set_yscale("log")
        ax.set_title(g, fontsize=10)
    for ax in axs[-1]:
        ax.set_xlabel("residual (box heights; x and y)")
    axs[0, 0].legend(fontsize=7)
    fig.suptitle("2D residual against the leave-one-view-out reference, per landmark group: real MediaPipe vs the generator\n"
                 "(Pose2Sim demo, 4 views × 100 frames, visibility > 0.5; values beyond ±0.12 piled in the end bins)", fontsize=10)
    fig.tight_layout()
    fig.savefig(img / "noise_compare_residuals.png", dpi=90)
    plt.close(fig)
    # 2. temporal correlation: depth error and 2D residual, against time
    fig, axs = plt.subplots(1, 3, figsize=(13, 4))
    lag = np.arange(1, 11)
    for name in sets:
        r = res[name]
        dt = 1000 / 60.0 if name.startswith("real") else 1000 / FPS_TRAIN
        axs[0].plot(lag * dt, r["depth_acf"], "o-", color=colors[name], label=name)
        axs[1].plot(lag * dt, r["residual_acf"], "o-", color=colors[name], label=name)
    for ax, t in zip(axs[:2], ("depth error (hip-relative z)", "2D residual")):
        ax.set_xlabel("lag (ms)")
        ax.set_ylabel("autocorrelation")
        ax.set_title(t, fontsize=10)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_ylim(-0.2, 1)
    axs[0].legend(fontsize=7)
    fig.suptitle("lags in time: the real clip at 60 fps; the generator per frame at 30 fps, as in training", fontsize=10)
    names = list(sets)
    axs[2].bar(range(len(names)), [res[n]["depth_corr_mean"] for n in names], color=[colors[n] for n in names])
    axs[2].set_xticks(range(len(names)), ["real", "gen: self-cons.", "gen: multiview"], fontsize=8)
    axs[2].set_title("depth error: mean correlation between joints\nwithin a frame (hips left out)", fontsize=10)
    fig.tight_layout()
    fig.savefig(img / "noise_compare_temporal.png", dpi=90)
    plt.close(fig)
    # 3. swap runs
    fig, ax = plt.subplots(figsize=(7, 3.6))
    edges = np.arange(0.5, 31.5)
    for k, name in enumerate(sets):
        runs = np.asarray(res[name]["swap_runs"], float)
        n_seeds = len(sets[name])
        if len(runs):
            h, _ = np.histogram(np.clip(runs, 1, 30), edges)
            ax.bar(edges[:-1] + 0.5 + (k - 1) * 0.28, h / n_seeds, 0.28, color=colors[name], label=name)
    ax.set_xlabel("swap run length (frames; the real clip is 60 fps, 100 frames per view)")
    ax.set_ylabel("runs per 400 view-frames")
    ax.set_title("left/right swaps as runs of consecutive frames", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "noise_compare_swaps.png", dpi=90)
    plt.close(fig)
    # 4. landmark offsets
    keys = list(res["real (MediaPipe)"]["offsets_cm"])
    fig, axs = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for a, (ax, lab) in enumerate(zip(axs, ("x (left)", "y (up)", "z (forward)"))):
        for k, name in enumerate(sets):
            v = [res[name]["offsets_cm"][j][a] for j in keys]
            e = [res[name]["offsets_sd_cm"][j][a] for j in keys]
            ax.barh(np.arange(len(keys)) + (k - 1) * 0.27, v, 0.27, xerr=e, color=colors[name], label=name,
                    error_kw=dict(lw=0.6, ecolor="0.5"))
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_xlabel(f"{lab}, cm")
    axs[0].set_yticks(range(len(keys)), keys)
    axs[0].legend(fontsize=7)
    fig.suptitle("triangulated landmark minus the fitted open body's joint, in the body's frame (bar: median over frames; line: sd over frames)", fontsize=10)
    fig.tight_layout()
    fig.savefig(img / "noise_compare_offsets.png", dpi=90)
    plt.close(fig)
    # 5. σ by visibility
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    mid = np.arange(0.05, 1.0, 0.1)
    for name in sets:
        s = np.array([np.nan if v is None else v for v in res[name]["sigma_by_vis"]])
        ax.plot(mid, s, "o-", color=colors[name], label=name)
    ax.set_xlabel("visibility (decile)")
    ax.set_ylabel("2D residual scale (box heights)")
    ax.set_title("2D error by visibility: the real detector's confidence predicts its error", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "noise_compare_visibility.png", dpi=90)
    plt.close(fig)


def main(argv=None):
    from training.eval.pose2sim_demo import DATA
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA), help="the fetched Pose2Sim demo (default out/pose2sim_demo)")
    ap.add_argument("--seeds", type=int, default=5, help="generator draws per noise model (default 5)")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    data = Path(a.data)
    if not (data / "calibration" / "Calib.qca.txt").is_file():
        print(f"error: no Pose2Sim demo in {data}: run scripts/measure_detector_noise_multiview.py --fetch first",
              file=sys.stderr)
        return 2
    if a.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    import warnings
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    from engine.body.model import load_body_model
    from engine.body.skeleton import JOINT_INDEX
    from training.data.noise import load_noise_model
    from training.data.synth import Synthesizer
    from training.eval import noise_compare as nc
    cams, uv, vis, world = real_views(data)
    body = load_body_model()
    fit, _ = reference_fit(cams, uv, vis, body)
    print(f"body fit: scale {fit['scale']:.3f} (open body, shape 0)")
    real = [nc.statistics(cams, uv, vis, world, fit)]
    gen = {}
    pin = nc.pinhole(cams)
    for model in MODELS:
        synth = Synthesizer(body, load_noise_model(reference=model))
        gen[model] = []
        for seed in range(a.seeds):
            g = nc.generator_views(synth, fit, pin, np.random.default_rng(seed))
            gen[model].append(nc.statistics(pin, g["uv"], g["vis"], g["world"], fit))
    res = {"real (MediaPipe)": summarise(real), **{f"generator: {k}": summarise(v) for k, v in gen.items()}}
    body_ratios = nc.limb_ratios(fit["rest"][None], JOINT_INDEX)
    print(table(res, body_ratios))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "stats.json").write_text(json.dumps(dict(seeds=a.seeds, body_fit_scale=fit["scale"],
                                                    body_limb_ratios=body_ratios, sets=res), indent=1) + "\n")
    print(f"wrote {OUT / 'stats.json'}")
    if not a.no_plots:
        plots(real, gen, res)
        print(f"wrote {IMG}/noise_compare_{{residuals,temporal,swaps,offsets,visibility}}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
