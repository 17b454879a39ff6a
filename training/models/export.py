"""Export trained models to ONNX with a dynamic sequence length, and check parity with onnxruntime."""
import numpy as np
import torch

from .temporal import EMBED_DIM, HOMOGRAPHY_DIM
from engine.features import NUM_FEATURES

TEMPORAL_INPUTS = ("features", "prvipe_mu", "prvipe_sigma", "homography")
TEMPORAL_OUTPUTS = ("rot6d", "betas", "cam", "embed_mu", "embed_sigma")


class _TemporalWrapper(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features, prvipe_mu, prvipe_sigma, homography):
        out = self.model(features, prvipe_mu, prvipe_sigma, homography)
        return tuple(out[k] for k in TEMPORAL_OUTPUTS)


def example_temporal_inputs(batch=2, frames=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, frames, NUM_FEATURES, generator=g),
            torch.randn(batch, frames, EMBED_DIM, generator=g),
            torch.rand(batch, frames, EMBED_DIM, generator=g) + 0.5,
            torch.randn(batch, frames, HOMOGRAPHY_DIM, generator=g) * 0.01)


def export_temporal(model, path, metadata=None):
    """Write the temporal model as ONNX (batch and frame axes dynamic)."""
    import onnx
    model = model.eval()
    dyn = {n: {0: "batch", 1: "frames"} for n in TEMPORAL_INPUTS}
    dyn.update({n: {0: "batch", 1: "frames"} for n in TEMPORAL_OUTPUTS if n != "betas"})
    dyn["betas"] = {0: "batch"}
    torch.onnx.export(_TemporalWrapper(model), example_temporal_inputs(), str(path), input_names=list(TEMPORAL_INPUTS),
                      output_names=list(TEMPORAL_OUTPUTS), dynamic_axes=dyn, opset_version=17, dynamo=False)
    m = onnx.load(str(path))
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=str(k), value=str(v))
    onnx.save(m, str(path))


def torch_vs_onnx(model, path, inputs):
    """Max abs difference per output between torch and onnxruntime on the same inputs."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = _TemporalWrapper(model.eval())(*inputs)
    got = sess.run(list(TEMPORAL_OUTPUTS), {n: x.numpy() for n, x in zip(TEMPORAL_INPUTS, inputs)})
    return {n: float(np.abs(r.numpy() - g).max()) for n, r, g in zip(TEMPORAL_OUTPUTS, ref, got)}
