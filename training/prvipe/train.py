"""Train Pr-VIPE (Sun et al., ECCV 2020) on synthetic views of CMU poses, and measure retrieval.

    .venv/bin/python -m training.prvipe.train --config training/configs/prvipe_cpu.json
    ... --resume                          # continue from OUT/last.pt
    ... --eval [--ckpt OUT/best.pt] [--split test]   # print view-invariant retrieval accuracy

Data: a pair bank. Each entry is one 3D pose (a frame of a train-split clip, mirrored half the
time) seen by two independent random cameras through the synthetic generator with the
detector noise model (``training.data.synth``: keypoint noise, outliers, swaps, occlusion-aware
visibility); the input is ``engine.estimate.network_inputs.normalized_keypoints`` (99 values), the same as at
run time. Frames are taken every ``stride`` frames of a window so that one posing gives several
distinct poses. The bank is built once (``workers`` processes) and cached as OUT/bank_*.npz.

Matching: two 2D poses match when the normalised Procrustes-aligned MPJPE (NP-MPJPE) of their
3D poses is below κ: the 14 LSP joints are centred and scaled to unit RMS radius, similarity-
aligned, and the mean joint distance is taken (so it is in units of the pose's RMS radius, about
0.45 m for an adult; κ = 0.1 ≈ 4–5 cm after alignment). κ = 0.1 is Pr-VIPE's value; on our bank
it makes a random pair of different poses match rarely (the measured rate is printed by
``--kappa-stats`` and recorded in the model card) while frames 1/30 s apart of one motion still
match — "the same pose" in the sense that matters for view-invariant retrieval.

Triplets: anchor = view A of pose i, positive = view B of pose i, negative = view B of another
pose j in the batch with NP-MPJPE(i, j) > κ, drawn at random among the ``hard_k`` nearest such
candidates in the current embedding (hard-ish negative mining; the hardest alone is noisy
because near-threshold poses look almost the same).

Retrieval (``--eval``): queries are view A of every held-out pose, the database is view B of all
of them; top-1 is a hit when the retrieved pose matches the query's 3D pose (NP-MPJPE < κ).
Compared with the raw-2D baseline: nearest neighbour on the normalised 2D keypoints (x, y).
"""
import argparse
import math
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

from training.loop import Logger, accumulate, cosine_lr, load_checkpoint, load_config, optimizer_step, save_checkpoint, set_threads

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


# ------------------------------------------------------------------ NP-MPJPE
def normalize_poses(p):
    """(N,J,3) → centred, unit-RMS-radius poses."""
    p = np.asarray(p, np.float64)
    p = p - p.mean(-2, keepdims=True)
    return p / np.sqrt((p ** 2).sum((-1, -2), keepdims=True) / p.shape[-2]).clip(1e-9)


def np_mpjpe(a, b):
    """NP-MPJPE between normalised poses a (...,J,3) and b (...,J,3) (broadcasting): similarity
    Procrustes of a onto b, mean joint distance. Torch-vectorised for big pair sets."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    a, b = torch.broadcast_tensors(a, b)
    h = a.transpose(-1, -2) @ b
    u, s, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.ones_like(s)
    fix[..., -1] = d
    R = (u * fix[..., None, :]) @ vt
    scale = (s * fix).sum(-1) / (a ** 2).sum((-1, -2)).clamp(min=1e-12)
    al = scale[..., None, None] * (a @ R)
    return torch.linalg.norm(al - b, dim=-1).mean(-1).numpy()


def pairwise_np_mpjpe(p, q=None, chunk=256):
    """(N,M) NP-MPJPE matrix between normalised pose sets."""
    q = p if q is None else q
    rows = [np_mpjpe(p[i:i + chunk, None], q[None]) for i in range(0, len(p), chunk)]
    return np.concatenate(rows, 0)


# ------------------------------------------------------------------ pair bank
def _bank_work(args):
    cache, split, n_seq, frames, stride, seed = args
    from engine.estimate.network_inputs import normalized_keypoints
    from training.data.bvh_to_smpl import default_body
    from training.bench.synthetic import LSP14
    from training.temporal.dataset import ViewSynthesizer, load_clips
    torch.set_num_threads(1)
    clips = [c for c in load_clips(cache, split) if len(c[1]) >= 2]
    lens = np.array([len(c[1]) for c in clips], np.float64)
    S = ViewSynthesizer(default_body())
    rng = np.random.default_rng(seed)
    A, B, P, C = [], [], [], []
    for _ in range(n_seq):
        k = rng.choice(len(clips), p=lens / lens.sum())
        clip, poses, trans, betas = clips[k]
        span = min(stride * (frames - 1) + 1, len(poses))
        a = int(rng.integers(0, len(poses) - span + 1))
        idx = np.arange(a, a + span, stride)
        mirror = bool(rng.random() < 0.5)
        views = [S(poses[idx], trans[idx], betas, rng, mirror=mirror, render=False) for _ in range(2)]
        ok = views[0]["valid"] & views[1]["valid"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            nk = [normalized_keypoints(v["keypoints"].astype(np.float64)).reshape(len(idx), -1) for v in views]
        A.append(nk[0][ok])
        B.append(nk[1][ok])
        P.append(views[0]["joints"][ok][:, LSP14])
        C.append(np.full(ok.sum(), k))
    return (np.concatenate(A).astype(np.float32), np.concatenate(B).astype(np.float32),
            np.concatenate(P).astype(np.float32), np.concatenate(C))


def build_bank(cache, split, sequences, frames=8, stride=4, seed=0, workers=1):
    """dict(a, b (N,99) the two views' keypoints, pose (N,14,3) normalised 3D, clip (N,))."""
    workers = max(int(workers), 1)
    per = [sequences // workers + (1 if i < sequences % workers else 0) for i in range(workers)]
    jobs = [(cache, split, n, frames, stride, seed * 7919 + 104729 * SPLIT_SEEDS[split] + i) for i, n in enumerate(per) if n]
    if workers == 1:
        res = [_bank_work(j) for j in jobs]
    else:
        with Pool(workers) as pool:
            res = pool.map(_bank_work, jobs)
    a, b, p, c = (np.concatenate(x) for x in zip(*res))
    return dict(a=a, b=b, pose=normalize_poses(p).astype(np.float32), clip=c)


def cached_bank(out_dir, name, cfg_bank, cache, split, seed, workers):
    key = f"bank_{name}_{cfg_bank['sequences']}_{cfg_bank['frames']}_{cfg_bank['stride']}_{seed}.npz"
    path = Path(out_dir) / key
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    bank = build_bank(cache, split, cfg_bank["sequences"], cfg_bank["frames"], cfg_bank["stride"], seed, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **bank)
    return bank


# ------------------------------------------------------------------ retrieval
@torch.no_grad()
def embed(model, kp, batch=4096):
    model.eval()
    mus, sigs = [], []
    for i in range(0, len(kp), batch):
        mu, sig = model(torch.as_tensor(kp[i:i + batch]))
        mus.append(mu.numpy())
        sigs.append(sig.numpy())
    return np.concatenate(mus), np.concatenate(sigs)


def _xy(kp):
    return kp.reshape(len(kp), 33, 3)[..., :2].reshape(len(kp), -1)


def retrieval(bank, kappa, model=None, ks=(1, 5), seed=0):
    """Hit@k of view-invariant retrieval (queries: view a; database: view b of every pose).

    Returns {"prvipe": {k: acc}, "raw2d": {k: acc}, "n": N, "chance": match rate of random
    pairs}. NP-MPJPE is computed only for the retrieved items (and a sample for the chance)."""
    poses = bank["pose"]
    N = len(poses)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, N, 20000), rng.integers(0, N, 20000)
    out = {"n": int(N), "chance": float((np_mpjpe(poses[i], poses[j]) < kappa).mean())}
    spaces = {"raw2d": (_xy(bank["a"]), _xy(bank["b"]))}
    if model is not None:
        spaces["prvipe"] = (embed(model, bank["a"])[0], embed(model, bank["b"])[0])
    for name, (q, db) in spaces.items():
        order = np.zeros((N, max(ks)), np.int64)
        for c in range(0, N, 2048):
            d = (q[c:c + 2048] ** 2).sum(1)[:, None] - 2 * q[c:c + 2048] @ db.T + (db ** 2).sum(1)[None]
            part = np.argpartition(d, max(ks), axis=1)[:, :max(ks)]
            order[c:c + 2048] = np.take_along_axis(part, np.take_along_axis(d, part, 1).argsort(1), 1)
        hit = np_mpjpe(poses[:, None], poses[order]) < kappa
        out[name] = {k: float(hit[:, :k].any(1).mean()) for k in ks}
    return out


def format_retrieval(r, split, kappa):
    lines = [f"View-invariant retrieval on the {split} split ({r['n']} poses, 2 random cameras each; "
             f"hit = NP-MPJPE < κ = {kappa}; a random pose matches with p = {r['chance']:.4f})", "",
             "| method | top-1 | top-5 |", "|---|---|---|"]
    for name, label in (("raw2d", "raw 2D keypoints (normalised x, y; nearest neighbour)"), ("prvipe", "Pr-VIPE μ (nearest neighbour)")):
        if name in r:
            lines.append(f"| {label} | {100 * r[name][1]:.1f} % | {100 * r[name][5]:.1f} % |")
    return "\n".join(lines)


# ------------------------------------------------------------------ training
def mine_negatives(anchor_mu, cand_mu, poses, kappa, hard_k, rng, pool=4):
    """For each anchor i, a negative index j ≠ i with NP-MPJPE(i, j) > κ, drawn at random among
    the ``hard_k`` nearest such candidates in embedding space (NP-MPJPE is computed only for
    the ``pool``·``hard_k`` nearest candidates; when none of them qualifies, a random one)."""
    d = torch.cdist(anchor_mu, cand_mu).numpy()
    B = len(d)
    np.fill_diagonal(d, np.inf)
    m = min(hard_k * pool, B - 1)
    near = np.argpartition(d, m - 1, axis=1)[:, :m]
    near = np.take_along_axis(near, np.take_along_axis(d, near, 1).argsort(1), 1)
    ok = np_mpjpe(poses[:, None], poses[near]) > kappa
    ok &= np.cumsum(ok, 1) <= hard_k
    score = np.where(ok, rng.random(ok.shape), -1.0)
    pick = near[np.arange(B), score.argmax(1)]
    none = ~ok.any(1)
    if none.any():
        pick[none] = (np.flatnonzero(none) + rng.integers(1, B, none.sum())) % B
    return pick


def train(cfg, resume=False, log=None):
    from training.prvipe.model import PrVIPE, prvipe_loss
    set_threads(cfg.get("threads", 1))
    out = Path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    log = log or Logger(out)
    seed = int(cfg.get("seed", 0))
    torch.manual_seed(seed)
    kappa = float(cfg["kappa"])
    t0 = time.time()
    bank = cached_bank(out, "train", cfg["bank"], cfg["cache"], "train", seed, cfg.get("workers", 1))
    val = cached_bank(out, "val", cfg["val_bank"], cfg["cache"], "val", seed, cfg.get("workers", 1))
    log("bank", train_pairs=len(bank["a"]), val_pairs=len(val["a"]), minutes=(time.time() - t0) / 60)
    model = PrVIPE(**cfg["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 1e-4)))
    step, best = 0, -1.0
    last = out / "last.pt"
    if resume:
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best = int(ck["step"]), float(ck.get("best", -1.0))
        log("resume", step=step, best_val_top1=best)
    rng = np.random.default_rng([seed, step])
    N, bs = len(bank["a"]), int(cfg["batch_size"])
    max_steps = int(cfg["max_steps"])
    deadline = time.time() + 60 * float(cfg["max_minutes"]) if cfg.get("max_minutes") else math.inf

    def checkpoint(path, metrics=None):
        save_checkpoint(path, model=model.state_dict(), optimizer=opt.state_dict(), step=step, best=best,
                        config=cfg, model_args=cfg["model"], kappa=kappa, metrics=metrics)

    def validate():
        r = retrieval(val, kappa, model)
        model.train()
        return {"val_top1": r["prvipe"][1], "val_top5": r["prvipe"][5], "val_raw2d_top1": r["raw2d"][1]}

    model.train()
    acc, n_acc, t_log, t_start = {}, 0, time.time(), time.time()
    while step < max_steps and time.time() < deadline:
        idx = rng.choice(N, bs, replace=False)
        swap = rng.random(bs) < 0.5                    # either view can be the anchor
        A = np.where(swap[:, None], bank["b"][idx], bank["a"][idx])
        P = np.where(swap[:, None], bank["a"][idx], bank["b"][idx])
        with torch.no_grad():
            model.eval()
            mu_a = model(torch.as_tensor(A))[0]
            mu_p = model(torch.as_tensor(P))[0]
            model.train()
        neg = mine_negatives(mu_a, mu_p, bank["pose"][idx], kappa, int(cfg.get("hard_k", 8)), rng)
        lr = cosine_lr(step, float(cfg["lr"]), int(cfg.get("warmup_steps", 0)), max_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, parts = prvipe_loss(model, torch.as_tensor(A), torch.as_tensor(P), torch.as_tensor(P[neg]),
                                  samples=int(cfg.get("samples", 8)), kl_weight=float(cfg.get("kl_weight", 1e-3)))
        if not optimizer_step(model, opt, loss, cfg.get("grad_clip", 5.0)):
            log("warning", step=step, message="non-finite loss; batch skipped")
            continue
        step += 1
        n_acc += 1
        accumulate(acc, loss.item(), parts)
        if step % int(cfg.get("log_every", 50)) == 0:
            log("train", step=step, lr=lr, steps_per_s=n_acc / (time.time() - t_log),
                elapsed_min=(time.time() - t_start) / 60, **{k: v / n_acc for k, v in acc.items()})
            acc, n_acc, t_log = {}, 0, time.time()
        if step % int(cfg.get("eval_every", 500)) == 0 or step == max_steps:
            m = validate()
            log("val", step=step, **m)
            if m["val_top1"] > best:
                best = m["val_top1"]
                checkpoint(out / "best.pt", m)
        if step % int(cfg.get("ckpt_every", 500)) == 0:
            checkpoint(last)
    if step % int(cfg.get("eval_every", 500)) != 0 and step != max_steps:
        m = validate()
        log("val", step=step, **m)
        if m["val_top1"] > best:
            best = m["val_top1"]
            checkpoint(out / "best.pt", m)
    checkpoint(last)
    log("end", step=step, best_val_top1=best, minutes=(time.time() - t_start) / 60)
    return step


def load_model(path):
    from training.prvipe.model import PrVIPE
    ck = load_checkpoint(path)
    m = PrVIPE(**ck["model_args"])
    m.load_state_dict(ck["model"])
    return m.eval(), ck


def checkpoint_from_onnx(onnx_path, out_path, width=256, dim=32, blocks=2):
    """Recover a frozen Pr-VIPE checkpoint from an exported ``prvipe.onnx`` (its initializers
    keep the module's names), so a new temporal model can be trained against the very Pr-VIPE
    that ships without re-training it. The match-probability scalars (a, b: training only) are
    not in the ONNX and stay at their initial values. Returns the max |torch − onnxruntime| on
    random inputs."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from training.prvipe.model import IN_FEATURES, PrVIPE
    m = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in m.metadata_props}
    state = {i.name.removeprefix("model."): torch.as_tensor(numpy_helper.to_array(i).copy())
             for i in m.graph.initializer if i.name.startswith("model.")}
    args = dict(width=width, dim=dim, blocks=blocks, dropout=0.0)
    model = PrVIPE(**args)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"a", "b"} - {k for k in missing if k.endswith("num_batches_tracked")}:
        raise ValueError(f"{onnx_path} does not match PrVIPE({args}): missing {missing}, unexpected {unexpected}")
    model.eval()
    x = torch.randn(64, IN_FEATURES, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x)
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(["mu", "sigma"], {"keypoints": x.numpy()})
    diff = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(ref, got))
    save_checkpoint(out_path, model=model.state_dict(), step=int(meta.get("step", 0)), best=-1.0,
                    config={"from_onnx": str(onnx_path)}, model_args=args,
                    kappa=float(meta.get("kappa", 0.1)), metrics=None)
    return diff


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train / evaluate Pr-VIPE")
    ap.add_argument("--config", default="training/configs/prvipe_cpu.json")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", help="override out_dir")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--max-minutes", type=float)
    ap.add_argument("--eval", action="store_true", help="print retrieval accuracy of --ckpt on --split")
    ap.add_argument("--kappa-stats", action="store_true", help="print the NP-MPJPE distribution of the train bank")
    ap.add_argument("--ckpt", help="checkpoint for --eval (default OUT/best.pt)")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--from-onnx", metavar="ONNX", help="write OUT/best.pt from an exported prvipe.onnx (no training)")
    a = ap.parse_args(argv)
    over = {k: v for k, v in (("out_dir", a.out), ("max_steps", a.max_steps), ("max_minutes", a.max_minutes)) if v is not None}
    cfg = load_config(a.config, over)
    set_threads(cfg.get("threads", 1))
    if a.kappa_stats:
        bank = cached_bank(cfg["out_dir"], "train", cfg["bank"], cfg["cache"], "train", int(cfg.get("seed", 0)), cfg.get("workers", 1))
        rng = np.random.default_rng(0)
        i, j = rng.integers(0, len(bank["pose"]), (2, 20000))
        m = np_mpjpe(bank["pose"][i[i != j]], bank["pose"][j[i != j]])
        succ = np_mpjpe(bank["pose"][:-1], bank["pose"][1:])       # neighbours in the bank:
        same_clip = bank["clip"][:-1] == bank["clip"][1:]          # frames `stride` apart
        print(f"random pairs: NP-MPJPE percentiles 1/5/50 % = {np.percentile(m, [1, 5, 50]).round(3)}")
        for k in (0.05, 0.1, 0.15, 0.2):
            print(f"κ = {k}: random pairs match {100 * (m < k).mean():.2f} %, "
                  f"frames {cfg['bank']['stride']} apart match {100 * (succ[same_clip] < k).mean():.1f} %")
        return
    if a.from_onnx:
        path = Path(cfg["out_dir"]) / "best.pt"
        diff = checkpoint_from_onnx(a.from_onnx, path)
        print(f"wrote {path} from {a.from_onnx}: max |torch − onnxruntime| {diff:.2e}")
        return
    if a.eval:
        model, ck = load_model(a.ckpt or Path(cfg["out_dir"]) / "best.pt")
        kappa = float(ck.get("kappa", cfg["kappa"]))
        bank = cached_bank(cfg["out_dir"], a.split, cfg["eval_bank"], cfg["cache"], a.split, 1000, cfg.get("workers", 1))
        print(format_retrieval(retrieval(bank, kappa, model), a.split, kappa))
        print(f"\n(checkpoint {a.ckpt or Path(cfg['out_dir']) / 'best.pt'}, step {ck['step']})")
        return
    train(cfg, resume=a.resume)


if __name__ == "__main__":
    main()
