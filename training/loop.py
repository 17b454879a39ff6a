"""Shared pieces of the training scripts: configs with inheritance, checkpoints, logging, LR."""
import json
import math
import os
import time
from pathlib import Path

import torch


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path, overrides=None):
    """A JSON config; ``"base": "other.json"`` (relative to this file) is loaded first and
    deep-merged under it, so ablations differ from their base only where they say so."""
    path = Path(path)
    cfg = json.loads(path.read_text())
    base = cfg.pop("base", None)
    if base:
        cfg = _merge(load_config(path.parent / base), cfg)
    return _merge(cfg, overrides or {})


def set_threads(n):
    n = int(n or 1)
    torch.set_num_threads(n)
    os.environ.setdefault("OMP_NUM_THREADS", str(n))


def cosine_lr(step, base, warmup, total, floor=0.05):
    """Linear warm-up, then cosine decay to ``floor``·base at ``total`` (a pure function of the
    step, so resuming needs no scheduler state)."""
    if step < warmup:
        return base * (step + 1) / max(warmup, 1)
    p = min((step - warmup) / max(total - warmup, 1), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def optimizer_step(model, opt, loss, grad_clip):
    """Backward, clip and step; False (nothing applied) when the loss is not finite."""
    if not torch.isfinite(loss):
        return False
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), float(grad_clip))
    opt.step()
    return True


def accumulate(acc, loss, parts):
    """Add a step's total loss and its parts to the running sums in ``acc``."""
    acc["loss"] = acc.get("loss", 0.0) + float(loss)
    for k, v in parts.items():
        acc[k] = acc.get(k, 0.0) + v


def save_checkpoint(path, **state):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)          # never leave a half-written checkpoint behind


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


class Logger:
    """Prints one line per record and appends it as JSON to ``out_dir/log.jsonl``."""

    def __init__(self, out_dir, quiet=False):
        self.path = Path(out_dir) / "log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.quiet = quiet
        self.t0 = time.time()

    def __call__(self, kind, **rec):
        rec = {"kind": kind, "time": round(time.time(), 1), **rec}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if not self.quiet:
            body = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                            if k not in ("kind", "time"))
            print(f"[{kind}] {body}", flush=True)


def read_log(out_dir, kind=None):
    p = Path(out_dir) / "log.jsonl"
    if not p.exists():
        return []
    recs = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return [r for r in recs if kind is None or r["kind"] == kind]


class StepBook:
    """The bookkeeping after each optimiser step, shared by the training scripts: running means
    logged every ``log_every`` steps, validation every ``val_every`` steps (``best.pt`` on a new
    lowest ``val_mpjpe_mm``), ``last.pt`` every ``ckpt_every`` steps; ``finish`` validates once
    more when the clock stopped the run between validations and writes ``last.pt``.

    ``validate()`` → dict with ``val_mpjpe_mm`` (None: no validation configured);
    ``checkpoint(path, step, best, val)`` writes a checkpoint."""

    def __init__(self, cfg, log, out_dir, checkpoint, validate=None, best=math.inf, log_every=20, val_every=200,
                 ckpt_every=200):
        self.log, self.out, self.save, self.validate_fn = log, Path(out_dir), checkpoint, validate
        self.best = best
        self.log_every = int(cfg.get("log_every", log_every))
        self.val_every = int(cfg.get("val_every", val_every))
        self.ckpt_every = int(cfg.get("ckpt_every", ckpt_every))
        self.max_steps = int(cfg["max_steps"])
        self.t_start = self.t_log = time.time()
        self.n_log, self.acc = 0, {}

    def validate(self, step):
        val = self.validate_fn()
        self.log("val", step=step, **val)
        if val["val_mpjpe_mm"] < self.best:
            self.best = val["val_mpjpe_mm"]
            self.save(self.out / "best.pt", step, self.best, val)
        return val

    def after_step(self, step, lr, loss, parts):
        self.n_log += 1
        accumulate(self.acc, loss, parts)
        if step % self.log_every == 0 or step == self.max_steps:
            dt = time.time() - self.t_log
            self.log("train", step=step, lr=lr, steps_per_s=self.n_log / max(dt, 1e-9),
                     elapsed_min=(time.time() - self.t_start) / 60,
                     **{k: v / self.n_log for k, v in self.acc.items()})
            self.t_log, self.n_log, self.acc = time.time(), 0, {}
        val = None
        if self.validate_fn and (step % self.val_every == 0 or step == self.max_steps):
            val = self.validate(step)
        if step % self.ckpt_every == 0:
            self.save(self.out / "last.pt", step, self.best, val)

    def finish(self, step):
        if self.validate_fn and step % self.val_every != 0 and step != self.max_steps:
            self.validate(step)                               # stopped by the clock
        self.save(self.out / "last.pt", step, self.best, None)
        self.log("end", step=step, best_val_mpjpe_mm=self.best, minutes=(time.time() - self.t_start) / 60)


def resume(out_dir, module, opt, key, log):
    """Continue from ``out_dir/last.pt``: ``module`` loads the checkpoint's ``key`` state, ``opt``
    its optimizer state → (step, best val MPJPE)."""
    last = Path(out_dir) / "last.pt"
    if not last.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    ck = load_checkpoint(last)
    module.load_state_dict(ck[key])
    opt.load_state_dict(ck["optimizer"])
    step, best = int(ck["step"]), float(ck.get("best", math.inf))
    log("resume", step=step, best_val_mpjpe_mm=best)
    return step, best


def run_steps(module, opt, cfg, step, next_loss, book, log):
    """The training loop both trainers share: from ``step`` until ``max_steps`` or ``max_minutes``,
    set the cosine learning rate, take ``next_loss()`` → (loss, parts) and one optimiser step (a
    non-finite loss skips the batch with a warning), hand the step to ``book`` (a ``StepBook``);
    ``book.finish`` at the end. Returns the final step."""
    max_steps = int(cfg["max_steps"])
    deadline = time.time() + 60 * float(cfg["max_minutes"]) if cfg.get("max_minutes") else math.inf
    module.train()
    while step < max_steps and time.time() < deadline:
        lr = cosine_lr(step, float(cfg["lr"]), int(cfg.get("warmup_steps", 0)), max_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, parts = next_loss()
        if not optimizer_step(module, opt, loss, cfg.get("grad_clip", 1.0)):
            log("warning", step=step, message="non-finite loss; batch skipped")
            continue
        step += 1
        book.after_step(step, lr, loss.item(), parts)
    book.finish(step)
    return step
