"""Train the seed-2 temporal model on synthetic observations of the CMU train split.

    .venv/bin/python -m training.temporal.train --config training/configs/temporal_cpu.json
    ... --resume                 # continue from OUT/last.pt (the step counter continues)
    ... --max-steps N --max-minutes M --out DIR     # overrides (smoke runs)

Needs the retarget cache (``python -m training.data.bvh_to_smpl --cache cache/cmu_smpl``) and,
unless the config's model has ``use_prvipe: false``, a trained Pr-VIPE checkpoint
(``python -m training.prvipe.train``), which stays frozen. Writes ``OUT/last.pt`` every
``ckpt_every`` steps and at the end, ``OUT/best.pt`` (lowest validation MPJPE) and
``OUT/log.jsonl`` (train losses every ``log_every`` steps; validation MPJPE / PA-MPJPE in mm
on ``val_windows`` fixed windows of the val split every ``val_every`` steps, scored like
``training.bench``: camera frame, 14 LSP joints, root = hip midpoint, detected frames only).
Export the result with ``python -m training.temporal.export``. With ``pool`` in the config the
windows come from a pre-generated pool (``python -m training.temporal.window_pool``) instead of the streaming
generator, so the model and its ablations train on the same windows at a fraction of the cost;
``pools`` (paths with weights) mixes several, e.g. the synthetic pool and the rendered
observations' (``python -m training.temporal.rendered_pool``). Validation stays on synthetic
val-split windows either way.
"""
import argparse
import math
from pathlib import Path

import numpy as np
import torch

from training.loop import (Logger, StepBook, load_checkpoint, load_config, resume as resume_from, run_steps,
                           save_checkpoint, set_threads)


def load_prvipe(path):
    """A frozen Pr-VIPE from a ``training.prvipe.train`` checkpoint."""
    from training.prvipe.model import PrVIPE
    ck = load_checkpoint(path)
    m = PrVIPE(**ck["model_args"])
    m.load_state_dict(ck["model"])
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


@torch.no_grad()
def embed_batch(prvipe, kp99):
    """Pr-VIPE (μ, σ) (B,T,32) of normalised keypoints (B,T,99); 0 / 1 without a Pr-VIPE."""
    from training.temporal.model import EMBED_DIM
    B, T = kp99.shape[:2]
    if prvipe is None:
        return torch.zeros(B, T, EMBED_DIM), torch.ones(B, T, EMBED_DIM)
    mu, sig = prvipe(kp99.reshape(B * T, -1).float())
    return mu.reshape(B, T, -1), sig.reshape(B, T, -1)


def build_model(cfg):
    from training.temporal.model import TemporalModel
    return TemporalModel(**cfg["model"])


def loss_weights(cfg):
    from training.temporal.losses import WEIGHTS
    w = {**WEIGHTS, **cfg.get("loss_weights", {})}
    if not cfg["model"].get("use_prvipe", True) or not cfg.get("prvipe"):
        w["uncertainty"] = 0.0     # no Pr-VIPE: nothing to match
    return w


@torch.no_grad()
def evaluate(model, batches, joint_model, weights):
    """Validation loss and MPJPE / PA-MPJPE (mm) over fixed windows."""
    from training.eval.metrics import mpjpe, pa_mpjpe
    from training.bench.synthetic import HIPS, LSP14
    from training.geometry import forward_kinematics, rot6d_to_matrix
    from training.temporal.losses import temporal_loss
    model.eval()
    preds, gts, valids, losses = [], [], [], []
    for b in batches:
        out = model(b["features"], b["prvipe_mu"], b["prvipe_sigma"], b["homography"], b["ik_prior"])
        losses.append(temporal_loss(out, b, joint_model, weights)[0].item())
        j = forward_kinematics(rot6d_to_matrix(out["rot6d"]), joint_model(out["betas"]))
        preds.append(j.reshape(-1, 24, 3).numpy())
        gts.append(b["joints_cam"].reshape(-1, 24, 3).numpy())
        valids.append(b["valid"].reshape(-1).numpy())
    model.train()
    p, g, v = np.concatenate(preds), np.concatenate(gts).astype(np.float64), np.concatenate(valids)
    root = [LSP14.index(h) for h in HIPS]
    return dict(val_loss=float(np.mean(losses)),
                val_mpjpe_mm=1000 * mpjpe(p[:, LSP14], g[:, LSP14], root=root, valid=v),
                val_pa_mpjpe_mm=1000 * pa_mpjpe(p, g, valid=v, joints=LSP14))


def make_val_batches(cfg, clips, body, prvipe, batch_size):
    from training.temporal.dataset import collate, fixed_windows
    ws = fixed_windows(clips, body, int(cfg["val_windows"]), seed=int(cfg.get("val_seed", 12345)),
                       prvipe=prvipe, **cfg["data"])
    return [collate(ws[i:i + batch_size]) for i in range(0, len(ws), batch_size)]


def pool_windows(cfg, seed, log=None):
    """The training windows from pre-generated pools, or None (stream from the generator).

    ``"pools": [{"path": ..., "weight": ...}, ...]`` mixes several pools (e.g. the synthetic
    pool and the rendered one, ``training.temporal.rendered_pool``), each window drawn from a
    pool with probability proportional to its weight; otherwise ``"pool": path`` is the one pool
    (``training.temporal.window_pool``)."""
    from training.temporal.dataset import MixedWindows
    from training.temporal.window_pool import PoolWindows, pool_size
    pools = cfg.get("pools") or ([{"path": cfg["pool"], "weight": 1.0}] if cfg.get("pool") else [])
    if not pools:
        return None
    for p in pools:
        if log:
            log("pool", path=str(p["path"]), weight=float(p["weight"]), windows=pool_size(p["path"]))
    if len(pools) == 1:
        return PoolWindows(pools[0]["path"], seed=seed)
    return MixedWindows([PoolWindows(p["path"], seed=seed + 7919 * i) for i, p in enumerate(pools)],
                        [float(p["weight"]) for p in pools], seed=seed)


def train(cfg, resume=False, log=None):
    """Run (or continue) training as ``cfg`` says; returns the final step."""
    from training.data.bvh_to_smpl import default_body
    from training.temporal.dataset import SyntheticWindows, collate, load_clips
    from training.geometry import JointShapeModel
    from training.temporal.losses import temporal_loss

    set_threads(cfg.get("threads", 1))
    out = Path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    log = log or Logger(out)
    torch.manual_seed(int(cfg.get("seed", 0)))
    body = default_body()
    joint_model = JointShapeModel(body)
    use_prvipe = cfg["model"].get("use_prvipe", True)
    prvipe = load_prvipe(cfg["prvipe"]) if use_prvipe and cfg.get("prvipe") else None
    if use_prvipe and prvipe is None:
        log("warning", message="use_prvipe is on but no Pr-VIPE checkpoint is configured: inputs are 0/1")
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 1e-4)))
    step, best = resume_from(out, model, opt, "model", log) if resume else (0, math.inf)
    weights = loss_weights(cfg)
    max_steps = int(cfg["max_steps"])
    bs = int(cfg["batch_size"])
    train_clips = load_clips(cfg["cache"], "train")
    val_clips = load_clips(cfg["cache"], "val")
    val_batches = make_val_batches(cfg, val_clips, body, prvipe, bs) if cfg.get("val_windows") else []
    # a new data stream per (re)start so a resumed run does not replay the windows it saw
    data_seed = int(cfg.get("seed", 0)) * 1_000_003 + step
    ds = pool_windows(cfg, data_seed, log)
    if ds is not None:
        workers = 0
    else:
        ds = SyntheticWindows(train_clips, body, prvipe, seed=data_seed, **cfg["data"])
        workers = int(cfg.get("workers", 1))
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, collate_fn=collate, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    nparams = sum(p.numel() for p in model.parameters())
    log("start", step=step, max_steps=max_steps, params=nparams, train_clips=len(train_clips),
        val_clips=len(val_clips), out=str(out))

    def checkpoint(path, at, best_, val=None):
        save_checkpoint(path, model=model.state_dict(), optimizer=opt.state_dict(), step=at, best=best_,
                        config=cfg, model_args=cfg["model"], val=val, window=int(cfg["data"]["window"]))

    book = StepBook(cfg, log, out, checkpoint,
                    (lambda: evaluate(model, val_batches, joint_model, weights)) if val_batches else None, best)
    it = iter(loader)

    def next_loss():
        batch = next(it)
        if "prvipe_mu" not in batch:     # pool windows: embed with this run's frozen Pr-VIPE
            batch["prvipe_mu"], batch["prvipe_sigma"] = embed_batch(prvipe, batch["keypoints99"])
        out_ = model(batch["features"], batch["prvipe_mu"], batch["prvipe_sigma"], batch["homography"], batch["ik_prior"])
        return temporal_loss(out_, batch, joint_model, weights)

    return run_steps(model, opt, cfg, step, next_loss, book, log)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the seed-2 temporal model")
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--out", help="override out_dir")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this wall time")
    ap.add_argument("--prvipe", help="override the Pr-VIPE checkpoint")
    a = ap.parse_args(argv)
    over = {k: v for k, v in (("out_dir", a.out), ("max_steps", a.max_steps), ("max_minutes", a.max_minutes),
                               ("prvipe", a.prvipe)) if v is not None}
    cfg = load_config(a.config, over)
    train(cfg, resume=a.resume)


if __name__ == "__main__":
    main()
