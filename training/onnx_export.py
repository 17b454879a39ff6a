"""ONNX export glue shared by the models' exporters: a wrapper that turns a model's output dict
into a tuple, ``torch.onnx.export`` (opset 17) plus metadata, and the torch ↔ onnxruntime parity."""
import numpy as np
import torch


class OutputTuple(torch.nn.Module):
    """``model(*inputs, **kwargs)``'s dict as the tuple of ``outputs`` (what ONNX export needs)."""

    def __init__(self, model, outputs, **kwargs):
        super().__init__()
        self.model, self.outputs, self.kwargs = model, tuple(outputs), kwargs

    def forward(self, *inputs):
        out = self.model(*inputs, **self.kwargs)
        return tuple(out[k] for k in self.outputs)


def export(module, inputs, path, input_names, output_names, dynamic_axes, metadata=None):
    """Write ``module`` (in eval mode) as ONNX at ``path`` with ``metadata`` as string properties."""
    import onnx
    torch.onnx.export(module.eval(), tuple(inputs), str(path), input_names=list(input_names),
                      output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    m = onnx.load(str(path))
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=str(k), value=str(v))
    onnx.save(m, str(path))


def parity(module, path, inputs, input_names, output_names):
    """Max |torch − onnxruntime| per output on the same inputs (inputs the graph dropped, e.g. an
    ablation's unused ones, are not fed)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = module.eval()(*inputs)
    have = {i.name for i in sess.get_inputs()}
    got = sess.run(list(output_names), {n: x.numpy() for n, x in zip(input_names, inputs) if n in have})
    return {n: float(np.abs(r.numpy() - g).max()) for n, r, g in zip(output_names, ref, got)}
