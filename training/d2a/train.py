"""Train the seed-0 refinement network (D2A-HMR, with the RLE flow and the seed-1 ImpHMR branch)
on a per-frame pool (``training.d2a.data``), or on several mixed by weight (``pools``: e.g. the
synthetic pool and one of rendered clips, ``training.d2a.rendered_pool``; ``data.PoolMix``).

    .venv/bin/python -m training.d2a.train --config training/configs/d2a_cpu.json
    ... --ablation ROW           # a row of training.d2a.model.ABLATION_ROWS (refine, +depth, +rle,
                                 # +silhouette, +masking, +imphmr = full) or a switch (no_depth, ...)
    ... --resume                 # continue from OUT/last.pt (the step counter continues)
    ... --max-steps N --max-minutes M --out DIR     # overrides (smoke runs)

Without ``--ablation`` (or with ``full`` / ``+imphmr``) the full model trains into the config's
``out_dir``; any other row into ``{out_dir}_{row}`` (``+`` dropped: ``out/d2a_cpu_depth``), so
every row has its own checkpoints and log. Every row reads the same memory-mapped pools, so the
rows differ only by their model and losses. Writes ``OUT/last.pt`` every ``ckpt_every`` steps
and at the end, ``OUT/best.pt`` (lowest validation joint MPJPE) and ``OUT/log.jsonl`` (train
losses every ``log_every`` steps; validation loss, MPJPE and PA-MPJPE in mm every ``val_every``
steps on ``val_frames`` fixed frames of the val pool, scored like ``training.temporal.train.evaluate``:
14 LSP joints, root = hip midpoint, detected frames only; the temporal estimate's own scores on
the same frames are logged once at the start). Batches are drawn from the detected frames only
(undetected frames carry zero loss weight; ours). Export with ``python -m training.d2a.export``.
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from training.loop import (Logger, StepBook, load_checkpoint, load_config, resume as resume_from, run_steps,
                           save_checkpoint, set_threads)


# ---------------------------------------------------------------- config and model
def row_slug(name):
    """Out-dir suffix of an ablation row; None for the full model."""
    if name in (None, "full", "+imphmr"):
        return None
    return name.lstrip("+")


def row_out_dir(base, name):
    s = row_slug(name)
    return str(base) if s is None else f"{base}_{s}"


def apply_ablation(cfg, name):
    """The config of one ablation row: its model/train overrides merged in, its own out dir."""
    from training.d2a.model import ablation
    from training.loop import _merge
    over = ablation(name)
    out = _merge(cfg, {"model": over.get("model", {}), "train": over.get("train", {})})
    out["out_dir"] = row_out_dir(cfg["out_dir"], name)
    out["ablation"] = name
    return out


def coarse_for(body, n=None):
    """The coarse mesh of ``body``; its first ``n`` vertices (``subset``) for tiny test models."""
    from training.d2a.coarse_mesh import load, subset
    cm = load(body=body)
    return subset(cm, body, int(n)) if n else cm


def build_model(model_args, body=None, coarse_vertices=None):
    from training.d2a.model import D2AHMR
    if body is None:
        from training.data.bvh_to_smpl import default_body
        body = default_body()
    return D2AHMR(body, coarse_for(body, coarse_vertices), **model_args)


def build_training(cfg, body=None):
    """``D2ATraining`` (network + RLE flow + ImpHMR branch) as the config's model/train say."""
    from training.d2a.model import D2ATraining
    tr = cfg.get("train", {})
    model = build_model(cfg.get("model", {}), body, cfg.get("coarse_vertices"))
    return D2ATraining(model, use_rle=tr.get("use_rle", True), use_imphmr=tr.get("use_imphmr", True),
                       weights=cfg.get("loss_weights"), imphmr_args=tr.get("imphmr_args"),
                       rle_mc_samples=int(tr.get("rle_mc_samples", 0)), imphmr_frames=tr.get("imphmr_frames"))


def model_from_checkpoint(ck, body=None):
    """The refinement network (eval mode) of a ``training.d2a.train`` checkpoint (dict or path)."""
    if not isinstance(ck, dict):
        ck = load_checkpoint(ck)
    m = build_model(ck["model_args"], body, ck.get("coarse_vertices"))
    m.load_state_dict(ck["model"])
    return m.eval()


# ---------------------------------------------------------------- evaluation
def val_indices(pool, n):
    """``n`` evenly spaced frames of a pool (deterministic)."""
    N = len(pool["features"])
    return np.unique(np.linspace(0, N - 1, min(int(n), N)).astype(np.int64))


@torch.no_grad()
def predict(model, pool, idx, batch_size=64):
    """Refined joints (N,24,3) and σ (N,24) (numpy) for pool frames ``idx`` (model in eval mode)."""
    from training.d2a.data import pool_batch
    model.eval()
    J, S = [], []
    for a in range(0, len(idx), batch_size):
        b = pool_batch(pool, idx[a:a + batch_size], model.num_coarse)
        out = model(b["features"], b["silhouette_in"], b["init_rot6d"], b["init_betas"], b["init_cam"],
                    b.get("depth_map"), return_silhouette=False)
        J.append(out["joints"].numpy())
        S.append(out["sigma"].numpy())
    return np.concatenate(J), np.concatenate(S)


def joint_scores(pred, gt, valid):
    """MPJPE / PA-MPJPE (mm) on the 14 LSP joints, root = hip midpoint (``training.bench``)."""
    from training.eval.metrics import mpjpe, pa_mpjpe
    from training.bench.synthetic import HIPS, LSP14
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    root = [LSP14.index(h) for h in HIPS]
    return dict(mpjpe_mm=1000 * mpjpe(p[:, LSP14], g[:, LSP14], root=root, valid=valid),
                pa_mpjpe_mm=1000 * pa_mpjpe(p, g, valid=valid, joints=LSP14))


@torch.no_grad()
def evaluate(training, pool, idx, batch_size=64):
    """Validation loss (fixed random draws) and joint scores on pool frames ``idx``."""
    from training.d2a.data import pool_batch
    training.eval()
    g = torch.Generator().manual_seed(0)
    losses = []
    for a in range(0, len(idx), batch_size):
        b = pool_batch(pool, idx[a:a + batch_size], training.model.num_coarse)
        losses.append(training(b, generator=g)[0].item())
    joints, _ = predict(training.model, pool, idx, batch_size)
    training.train()
    s = joint_scores(joints, pool["joints3d"][idx], np.asarray(pool["valid"][idx], bool))
    return dict(val_loss=float(np.mean(losses)), val_mpjpe_mm=s["mpjpe_mm"], val_pa_mpjpe_mm=s["pa_mpjpe_mm"])


# ---------------------------------------------------------------- training
def pool_sources(cfg):
    """[(path, weight)] of the training pools: ``"pools": [{"path": ..., "weight": ...}, ...]``
    (e.g. the synthetic pool and a ``training.d2a.rendered_pool`` one), else the single ``pool``."""
    pools = cfg.get("pools") or ([{"path": cfg["pool"], "weight": 1.0}] if cfg.get("pool") else [])
    if not pools:
        raise ValueError("the config names no training pool (pool or pools)")
    return [(str(p["path"]), float(p.get("weight", 1.0))) for p in pools]


def train(cfg, resume=False, log=None, body=None):
    """Run (or continue) training as ``cfg`` says; returns the final step."""
    from training.d2a.data import PoolMix, load_pool

    set_threads(cfg.get("threads", 1))
    out = Path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    log = log or Logger(out)
    torch.manual_seed(int(cfg.get("seed", 0)))
    training = build_training(cfg, body)
    opt = torch.optim.AdamW([p for p in training.parameters() if p.requires_grad], lr=float(cfg["lr"]),
                            weight_decay=float(cfg.get("weight_decay", 1e-4)))
    step, best = resume_from(out, training, opt, "training", log) if resume else (0, math.inf)
    sources = pool_sources(cfg)
    try:
        mix = PoolMix([load_pool(p) for p, _ in sources], [w for _, w in sources])
    except ValueError as e:
        raise ValueError(f"training pools {[p for p, _ in sources]}: {e}") from None
    val_pool = load_pool(cfg["val_pool"]) if cfg.get("val_pool") and cfg.get("val_frames") else None
    val_idx = val_indices(val_pool, cfg["val_frames"]) if val_pool is not None else None
    max_steps, bs = int(cfg["max_steps"]), int(cfg["batch_size"])
    n = training.model.num_coarse
    # a new data stream per (re)start so a resumed run does not replay the frames it saw
    rng = np.random.default_rng([int(cfg.get("seed", 0)), step])
    log("start", step=step, max_steps=max_steps, ablation=cfg.get("ablation", "full"),
        params=sum(p.numel() for p in training.model.parameters()),
        train_params=sum(p.numel() for p in training.parameters()), frames=int(sum(len(f) for f in mix.frames)),
        pools=[dict(path=p, weight=float(w), frames=int(len(f))) for (p, _), w, f in zip(sources, mix.weights, mix.frames)],
        out=str(out))
    if val_idx is not None and step == 0:
        v = np.asarray(val_pool["valid"][val_idx], bool)
        s = joint_scores(val_pool["temporal_joints"][val_idx], val_pool["joints3d"][val_idx], v)
        log("val_temporal", frames=int(v.sum()), val_mpjpe_mm=s["mpjpe_mm"], val_pa_mpjpe_mm=s["pa_mpjpe_mm"])

    def checkpoint(path, at, best_, val=None):
        save_checkpoint(path, model=training.model.state_dict(), training=training.state_dict(),
                        optimizer=opt.state_dict(), step=at, best=best_, config=cfg,
                        model_args=cfg.get("model", {}), train_args=cfg.get("train", {}),
                        coarse_vertices=cfg.get("coarse_vertices"), ablation=cfg.get("ablation", "full"), val=val)

    book = StepBook(cfg, log, out, checkpoint,
                    (lambda: evaluate(training, val_pool, val_idx, bs)) if val_idx is not None else None, best,
                    val_every=200)

    def next_loss():
        loss, parts, _ = training(mix.batch(rng, bs, n))
        return loss, parts

    return run_steps(training, opt, cfg, step, next_loss, book, log)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the seed-0 D2A-HMR refinement network")
    ap.add_argument("--config", required=True)
    ap.add_argument("--ablation", help="an ablation row (training.d2a.model.ABLATION_ROWS) or switch")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--out", help="override out_dir (before the row suffix)")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this wall time")
    a = ap.parse_args(argv)
    over = {k: v for k, v in (("out_dir", a.out), ("max_steps", a.max_steps), ("max_minutes", a.max_minutes))
            if v is not None}
    cfg = load_config(a.config, over)
    if a.ablation:
        cfg = apply_ablation(cfg, a.ablation)
    try:
        missing = [p for p, _ in pool_sources(cfg) if not (Path(p) / "features.npy").is_file()]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if missing:
        print(f"error: no training pool at {missing[0]} (make it with training.d2a.data or "
              f"training.d2a.rendered_pool)", file=sys.stderr)
        sys.exit(2)
    train(cfg, resume=a.resume)


if __name__ == "__main__":
    main()
