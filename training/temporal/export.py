"""Export trained models to ONNX with a dynamic sequence length, and check parity with onnxruntime."""
import torch

from engine.estimate.network_inputs import NUM_FEATURES, PRIOR_DIM
from training.onnx_export import OutputTuple, export, parity
from training.prvipe.model import IN_FEATURES, PrVIPE
from training.temporal.model import EMBED_DIM, HOMOGRAPHY_DIM, TemporalModel

TEMPORAL_INPUTS = ("features", "prvipe_mu", "prvipe_sigma", "homography", "ik_prior")
TEMPORAL_OUTPUTS = ("rot6d", "betas", "cam", "embed_mu", "embed_sigma")


def _wrapped(model):
    return OutputTuple(model, TEMPORAL_OUTPUTS)


def example_temporal_inputs(batch=2, frames=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, frames, NUM_FEATURES, generator=g),
            torch.randn(batch, frames, EMBED_DIM, generator=g),
            torch.rand(batch, frames, EMBED_DIM, generator=g) + 0.5,
            torch.randn(batch, frames, HOMOGRAPHY_DIM, generator=g) * 0.01,
            torch.randn(batch, frames, PRIOR_DIM, generator=g))


def export_temporal(model, path, metadata=None):
    """Write the temporal model as ONNX (batch and frame axes dynamic)."""
    dyn = {n: {0: "batch", 1: "frames"} for n in TEMPORAL_INPUTS}
    dyn.update({n: {0: "batch", 1: "frames"} for n in TEMPORAL_OUTPUTS if n != "betas"})
    dyn["betas"] = {0: "batch"}
    export(_wrapped(model.eval()), example_temporal_inputs(), path, TEMPORAL_INPUTS, TEMPORAL_OUTPUTS, dyn, metadata)


def torch_vs_onnx(model, path, inputs):
    """Max abs difference per output between torch and onnxruntime on the same inputs."""
    return parity(_wrapped(model), path, inputs, TEMPORAL_INPUTS, TEMPORAL_OUTPUTS)


def export_prvipe(model, path, metadata=None):
    """Write Pr-VIPE as ONNX: keypoints (N,99) → mu, sigma (N,dim); N dynamic."""
    x = torch.randn(4, IN_FEATURES, generator=torch.Generator().manual_seed(0))
    export(model, (x,), path, ["keypoints"], ["mu", "sigma"],
           {"keypoints": {0: "n"}, "mu": {0: "n"}, "sigma": {0: "n"}}, metadata)


def prvipe_torch_vs_onnx(model, path, n=37, seed=1):
    """Max abs difference of Pr-VIPE's mu and sigma between torch and onnxruntime."""
    x = torch.randn(n, IN_FEATURES, generator=torch.Generator().manual_seed(seed))
    return parity(model, path, (x,), ["keypoints"], ["mu", "sigma"])


def export_checkpoints(temporal_ckpt, prvipe_ckpt, out_dir, note=""):
    """Export a ``training.temporal.train`` checkpoint (and its frozen Pr-VIPE) into ``out_dir`` as the
    files ``engine.estimate.temporal`` loads: temporal.onnx (+ prvipe.onnx). Returns the parity report."""
    import json
    from pathlib import Path
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck = torch.load(temporal_ckpt, map_location="cpu", weights_only=True)
    model = TemporalModel(**ck["model_args"])
    model.load_state_dict(ck["model"])
    window = int(ck.get("window", 32))
    uses_prvipe = bool(ck["model_args"].get("use_prvipe", True))
    meta = {"format": "mocap-temporal/1", "window": window, "overlap": window // 2,
            "model_args": json.dumps(ck["model_args"]), "step": int(ck["step"]),
            "val": json.dumps(ck.get("val")), "uses_prvipe": int(uses_prvipe), "note": note}
    export_temporal(model, out / "temporal.onnx", meta)
    report = {"temporal": torch_vs_onnx(model, out / "temporal.onnx", example_temporal_inputs(2, window + 5, seed=7))}
    if uses_prvipe:
        if prvipe_ckpt is None:
            prvipe_ckpt = ck["config"].get("prvipe")
        pk = torch.load(prvipe_ckpt, map_location="cpu", weights_only=True)
        pm = PrVIPE(**pk["model_args"])
        pm.load_state_dict(pk["model"])
        export_prvipe(pm, out / "prvipe.onnx", {"format": "mocap-prvipe/1", "step": int(pk["step"]),
                                                "kappa": pk.get("kappa"), "note": note})
        report["prvipe"] = prvipe_torch_vs_onnx(pm, out / "prvipe.onnx")
    return report


def main(argv=None):
    """python -m training.temporal.export --temporal OUT/best.pt [--prvipe P.pt] --out DIR"""
    import argparse
    ap = argparse.ArgumentParser(description="Export trained seed-2 checkpoints to ONNX for engine.estimate.temporal")
    ap.add_argument("--temporal", required=True, help="training.temporal.train checkpoint (best.pt / last.pt)")
    ap.add_argument("--prvipe", help="training.prvipe.train checkpoint (default: the one in the temporal config)")
    ap.add_argument("--out", required=True, help="folder for temporal.onnx and prvipe.onnx")
    ap.add_argument("--note", default="", help="free text stored in the ONNX metadata (e.g. 'smoke run')")
    a = ap.parse_args(argv)
    rep = export_checkpoints(a.temporal, a.prvipe, a.out, a.note)
    for k, v in rep.items():
        print(f"{k}: max |torch − onnxruntime| per output: " + ", ".join(f"{n} {d:.2e}" for n, d in v.items()))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
