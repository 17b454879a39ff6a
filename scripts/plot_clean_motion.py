"""Before/after plots of the clean-motion stage (docs/img/clean_*.png, docs/clean_motion.md).

    .venv/bin/python scripts/plot_clean_motion.py [--clip 16_15] [--out docs/img]

On one H1 sequence (held-out CMU clip through the synthetic camera + detector noise, seed 0):
``clean_knee_angle.png`` (left knee flexion over time: truth, raw baseline, light, analysis),
``clean_feet.png`` (left heel height and horizontal speed, raw vs light-cleaned, with the
ground-truth and detected contact bands). On H2 (an OBP pitch, seed 0):
``clean_arm_velocity.png`` (throwing upper arm's angular speed: truth, raw, light, analysis).
"""
import argparse
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.body.skeleton import JOINT_INDEX as J  # noqa: E402
from engine.clean import clean_motion  # noqa: E402
from training.bench import synthetic as bench  # noqa: E402
from training.data.bvh_to_smpl import default_body  # noqa: E402
from training.data.synth import to_observations  # noqa: E402


def run(sample, body, presets=("light", "analysis")):
    from engine.estimate.baseline import fit
    from engine.estimate.motion_fields import to_motion
    obs = to_observations(sample)
    obs.homographies = sample["homographies"]
    raw = to_motion(fit(obs, body), obs, body.name)
    out = {"raw": raw}
    for p in presets:
        out[p] = clean_motion(raw, body.rest_joints(raw.betas), p)
    return out


def knee(j, side="left"):
    a, b, c = (j[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
    u, v = a - b, c - b
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return 180 - np.degrees(np.arccos(np.clip(cos, -1, 1)))


def bands(ax, t, mask, color, label, y0=0.0, y1=1.0):
    first = True
    for a, b in zip(*[np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]) == d) for d in (1, -1)]):
        ax.axvspan(t[a] - 0.5 / 30, t[b - 1] + 0.5 / 30, ymin=y0, ymax=y1, color=color, alpha=0.25,
                   lw=0, label=label if first else None)
        first = False


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="16_15")
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--pitch", type=int, default=0, help="H2 sequence index")
    ap.add_argument("--out", default="docs/img")
    a = ap.parse_args(argv)
    out = Path(a.out)
    body = default_body()
    samples = [s for s in bench.h1_samples(body, 0) if s["clip"] == a.clip]
    s = samples[a.window]
    res = run(s, body)
    fps = float(s["fps"])
    t = np.arange(len(s["valid"])) / fps
    colors = {"truth": "k", "raw": "tab:red", "light": "tab:blue", "analysis": "tab:green"}

    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(t, knee(s["joints"].astype(float)), color="k", lw=2.5, label="ground truth")
    for k, m in res.items():
        ax.plot(t, knee(m.joints.astype(float)), color=colors[k], lw=1.2, label=f"{'raw baseline' if k == 'raw' else k}")
    ax.set(xlabel="time (s)", ylabel="left knee flexion (°)",
           title=f"H1 {s['clip']} ({s['camera_type']} camera): one joint's angle before/after smoothing")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout(); fig.savefig(out / "clean_knee_angle.png", dpi=110); plt.close(fig)

    from engine.clean.contacts import CONTACT_JOINTS, SOLE_OFFSET
    gc = bench.gt_contacts(s["joints"], fps)
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.4), sharex=True)
    col = 0  # left heel
    for k, lw in (("raw", 1.0), ("light", 1.6)):
        m = res[k]
        p = m.joints[:, CONTACT_JOINTS[col]].astype(float)
        axes[0].plot(t, p[:, 2] - SOLE_OFFSET[col], color=colors[k], lw=lw, label=f"{'raw baseline' if k == 'raw' else 'cleaned (light)'}")
        sp = np.r_[np.nan, np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1) * fps]
        axes[1].plot(t, sp, color=colors[k], lw=lw)
    g = s["joints"][:, CONTACT_JOINTS[col]].astype(float)
    axes[0].plot(t, g[:, 2] - SOLE_OFFSET[col], color="k", lw=2, label="ground truth")
    axes[1].plot(t, np.r_[np.nan, np.linalg.norm(np.diff(g[:, :2], axis=0), axis=1) * fps], color="k", lw=2)
    for ax in axes:
        bands(ax, t, gc[:, col], "tab:orange", "ground-truth contact", 0.5, 1.0)
        bands(ax, t, res["light"].contacts[:, col].astype(bool), "tab:purple", "detected contact", 0.0, 0.5)
    axes[0].set(ylabel="left heel sole height (m)")
    axes[1].set(ylabel="horizontal speed (m/s)", xlabel="time (s)", ylim=(0, 3))
    axes[0].legend(ncol=5, fontsize=7, loc="upper right")
    axes[0].set_title(f"H1 {s['clip']}: left heel, foot locking (bands: top = truth, bottom = detected)")
    fig.tight_layout(); fig.savefig(out / "clean_feet.png", dpi=110); plt.close(fig)

    h2 = bench.h2_samples(body, 0)[a.pitch]
    for k in ("masks",):
        h2.setdefault(k, np.zeros((len(h2["valid"]), 1, 1), np.uint8))
    r2 = run(h2, body)
    t2 = np.arange(len(h2["valid"])) / float(h2["fps"])
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(t2, bench.arm_angular_velocity(h2["joints"], 30.0)["upper_arm"], color="k", lw=2.5, label="ground truth (30 fps)")
    for k, m in r2.items():
        ax.plot(t2, bench.arm_angular_velocity(m.joints, 30.0, m.valid)["upper_arm"], color=colors[k], lw=1.2,
                label=f"{'raw baseline' if k == 'raw' else k}")
    ax.set(xlabel="time (s)", ylabel="upper-arm angular speed (°/s)",
           title=f"H2 OBP pitch {h2['clip']} ({h2['camera_type']}): throwing arm, peak kept by 'analysis'")
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout(); fig.savefig(out / "clean_arm_velocity.png", dpi=110); plt.close(fig)
    print("wrote", *(out / n for n in ("clean_knee_angle.png", "clean_feet.png", "clean_arm_velocity.png")))


if __name__ == "__main__":
    main()
