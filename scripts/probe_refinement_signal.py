"""How much a per-frame refinement can gain on the D2A pools: a plain MLP probe.

A 2-layer MLP (512 wide, GELU) maps one frame's inputs — the temporal model's features (202),
its estimate's joints (24×3, pelvis-relative) and 6D rotations (24×6), standardised — to the
residual true joints − estimated joints, trained with L1 on the train pool (batch 256, AdamW
1e-3) and scored every 1,000 steps on the val and test pools (MPJPE / PA-MPJPE on the 14 LSP
joints, as ``training.d2a.train.joint_scores``). Not a model we ship: a measurement of whether
the refinement's inputs carry information the temporal estimate leaves unused (see
training/MODEL_CARD_d2a.md).

    .venv/bin/python scripts/probe_refinement_signal.py [--pools out/d2a_pool] [--steps 6000]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.d2a.data import load_pool  # noqa: E402
from training.d2a.train import joint_scores  # noqa: E402


def arrays(path):
    p = load_pool(path)
    v = np.asarray(p["valid"], bool)
    n = int(v.sum())
    est = np.asarray(p["temporal_joints"])[v]
    x = np.concatenate([np.asarray(p["features"])[v], est.reshape(n, -1), np.asarray(p["init_rot6d"])[v].reshape(n, -1)], 1)
    y = (np.asarray(p["joints3d"])[v] - est).reshape(n, -1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), est, np.asarray(p["joints3d"])[v]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pools", default="out/d2a_pool", help="prefix of the _train/_val/_test pools")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    xt, yt, _, _ = arrays(f"{a.pools}_train")
    sets = {n: arrays(f"{a.pools}_{n}") for n in ("val", "test")}
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 512), torch.nn.GELU(), torch.nn.Linear(512, 512),
                              torch.nn.GELU(), torch.nn.Linear(512, yt.shape[1]))
    torch.nn.init.zeros_(net[-1].weight)
    torch.nn.init.zeros_(net[-1].bias)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)

    def scores():
        out = {}
        for n, (x, _, est, gt) in sets.items():
            with torch.no_grad():
                d = net((x - mu) / sd).numpy().reshape(-1, 24, 3)
            s = joint_scores(est + d, gt, np.ones(len(gt), bool))
            out[n] = f"{s['mpjpe_mm']:.1f} / {s['pa_mpjpe_mm']:.1f}"
        return out
    for n, (_, _, est, gt) in sets.items():
        s = joint_scores(est, gt, np.ones(len(gt), bool))
        print(f"temporal estimate, {n}: MPJPE / PA-MPJPE {s['mpjpe_mm']:.1f} / {s['pa_mpjpe_mm']:.1f} mm")
    t0 = time.time()
    for step in range(1, a.steps + 1):
        i = torch.randint(0, len(xt), (256,))
        loss = (net((xt[i] - mu) / sd) - yt[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 1000 == 0:
            print(f"step {step} ({time.time() - t0:.0f} s): " + ", ".join(f"{n} {v}" for n, v in scores().items()), flush=True)


if __name__ == "__main__":
    main()
