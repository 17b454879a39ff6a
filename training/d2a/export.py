"""ONNX export of the D2A-HMR refinement network (seed 0) and a torch ↔ onnxruntime parity check.

Only the refinement network is exported — never its training-time parts (the RLE flow, the
ImpHMR branch, the silhouette decoder, query masking): ``export_d2a`` takes the ``D2AHMR``
itself (pass ``D2ATraining.model``), in eval mode.

Inputs (batch axis dynamic): ``features`` (B,202), ``silhouette`` (B,S,S), ``init_rot6d``
(B,24,6), ``init_betas`` (B,10), ``init_cam`` (B,3) [, ``depth_map`` (B,S,S) when the model uses
a depth render]. Outputs: ``joints`` (B,24,3) metres relative to the temporal estimate's pelvis,
camera frame; ``sigma`` (B,24) metres; ``vertices`` (B,431,3) coarse vertices (upsample with
``training.d2a.coarse_mesh_file``); ``rot6d`` (B,24,6); ``betas`` (B,10); ``cam`` (B,3).

σ calibration (ours): the RLE σ is a scale the flow can absorb (the flow learns the density of
error/σ, so only σ's ranking is pinned down); on the val pool it is many times the
per-coordinate RMS error, with about the same factor at every joint (MODEL_CARD_d2a.md). The export
stores one factor ``sigma_scale`` = sqrt(Σ‖error‖² / (3 Σ σ²)) over the val pool's detected
joint-frames (``--calibration-pool``): scaled, σ is a per-coordinate standard deviation in
metres of the joint's position relative to the pelvis, the unit the engine's RTS smoothers take
as observation noise (``engine.estimate.refine.motion_sigma``; the pelvis keeps the temporal estimate's
root σ). The rotation fit keeps the network's raw σ (its weights are relative).

Shipped weights must be trained: never write an untrained export into ``engine/data``.
"""
import json

import numpy as np
import torch

from engine.estimate.network_inputs import NUM_FEATURES
from training.onnx_export import OutputTuple, export, parity

D2A_OUTPUTS = ("joints", "sigma", "vertices", "rot6d", "betas", "cam")


def _wrapped(model):
    return OutputTuple(model, D2A_OUTPUTS, return_silhouette=False)


def example_d2a_inputs(model, batch=2, seed=0):
    """Random but plausible inputs: features ~ N(0,1)·0.3, a blob silhouette, rotations near identity."""
    g = torch.Generator().manual_seed(seed)
    S = model.cfg["sil_size"]
    feats = torch.randn(batch, NUM_FEATURES, generator=g) * 0.3
    sil = (torch.rand(batch, S, S, generator=g) > 0.5).float()
    rot6d = torch.tensor([1.0, 0, 0, 0, 1, 0]) + 0.2 * torch.randn(batch, 24, 6, generator=g)
    ins = [feats, sil, rot6d, torch.randn(batch, model.cfg["num_betas"], generator=g) * 0.5,
           torch.tensor([1.0, 0.0, 0.0]) + 0.1 * torch.randn(batch, 3, generator=g)]
    if model.use_depth_map:
        ins.append(torch.randn(batch, S, S, generator=g) * 0.1)
    return tuple(ins)


def export_d2a(model, path, metadata=None):
    """Write the refinement network as ONNX (opset 17, batch axis dynamic)."""
    model = model.eval()
    names = list(model.input_names)
    meta = {"format": "mocap-d2a/1", "model_args": json.dumps(model.cfg), "num_coarse": model.num_coarse}
    meta.update(metadata or {})
    export(_wrapped(model), example_d2a_inputs(model), path, names, D2A_OUTPUTS,
           {n: {0: "batch"} for n in names + list(D2A_OUTPUTS)}, meta)


def d2a_torch_vs_onnx(model, path, inputs):
    """Max abs difference per output between torch and onnxruntime on the same inputs."""
    return parity(_wrapped(model), path, inputs, model.input_names, D2A_OUTPUTS)


def sigma_calibration(model, pool_path, batch_size=64):
    """``sigma_scale`` (see the module docstring) and the number of joint-frames it rests on,
    from the model's σ and joint errors on the detected frames of a ``training.d2a.data`` pool."""
    from training.d2a.data import load_pool
    from training.d2a.train import predict
    pool = load_pool(pool_path)
    idx = np.flatnonzero(np.asarray(pool["valid"], bool))
    with torch.no_grad():
        joints, sigma = predict(model, pool, idx, batch_size)
    err = np.linalg.norm(joints - np.asarray(pool["joints3d"], np.float64)[idx], axis=-1)
    return float(np.sqrt((err ** 2).sum() / (3 * (np.asarray(sigma, np.float64) ** 2).sum()))), int(err.size)


def export_checkpoint(ckpt, out_dir, note="", calibration_pool=None):
    """Export a ``training.d2a.train`` checkpoint into ``out_dir/d2a.onnx`` (next to the temporal model's
    files: ``engine.estimate.refine`` loads it from the same folder). ``sigma_scale`` comes from
    ``calibration_pool`` (1.0 without one). Returns the parity report (max |torch −
    onnxruntime| per output on example inputs) plus ``sigma_scale``."""
    from pathlib import Path
    from training.loop import load_checkpoint
    from training.d2a.train import model_from_checkpoint
    ck = load_checkpoint(ckpt)
    model = model_from_checkpoint(ck)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"step": int(ck.get("step", 0)), "val": json.dumps(ck.get("val")), "ablation": ck.get("ablation", "full"),
            "train_args": json.dumps(ck.get("train_args", {})), "note": note, "sigma_scale": 1.0}
    if calibration_pool:
        meta["sigma_scale"], n = sigma_calibration(model, calibration_pool)
        meta["sigma_calibration"] = f"{calibration_pool}: {n} joint-frames"
    export_d2a(model, out / "d2a.onnx", meta)
    rep = d2a_torch_vs_onnx(model, out / "d2a.onnx", example_d2a_inputs(model, batch=3, seed=7))
    return {**rep, "sigma_scale": float(meta["sigma_scale"])}


def main(argv=None):
    """python -m training.d2a.export --ckpt OUT/best.pt --out DIR"""
    import argparse
    ap = argparse.ArgumentParser(description="Export a trained D2A-HMR checkpoint to ONNX for engine.estimate.refine")
    ap.add_argument("--ckpt", required=True, help="training.d2a.train checkpoint (best.pt / last.pt)")
    ap.add_argument("--out", required=True, help="folder for d2a.onnx (the temporal model's weights folder)")
    ap.add_argument("--note", default="", help="free text stored in the ONNX metadata")
    ap.add_argument("--calibration-pool", default=None,
                    help="a training.d2a.data pool (the val split) to calibrate σ's scale on (sigma_scale; 1.0 without)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rep = export_checkpoint(a.ckpt, a.out, a.note, a.calibration_pool)
    scale = rep.pop("sigma_scale")
    print(f"wrote {a.out}/d2a.onnx; sigma_scale {scale:.4f}; parity max |torch − onnxruntime|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in rep.items()))


if __name__ == "__main__":
    main()
