"""Bench plugin: registers the seed-2 temporal estimate refined by the seed-0 network
("temporal+d2a") with ``training.bench``.

    MOCAP_TEMPORAL_WEIGHTS=out/temporal_onnx .venv/bin/python -m training.bench h1 \\
        --estimators temporal,temporal+d2a

(``--estimators temporal+d2a`` loads this plugin automatically.) The weights folder holds
``temporal.onnx`` + ``prvipe.onnx`` (``python -m training.temporal.export``) and ``d2a.onnx``
(``python -m training.d2a.export``); without them the import fails with the engine's
message (``require``, before any work). ``temporal+d2a+light`` / ``temporal+d2a+analysis``
are its output through the clean-motion presets (smoothing reads the refined σ).
``register_refinement(name, DIR)`` adds the refinement exported in DIR on top of the same
(memoised) temporal estimate: ``training.d2a.ablation --bench`` scores its rows that way.
"""
from engine.estimate import refine, temporal
from training.bench.synthetic import cleaned, once, register


def require():
    """The default temporal and refinement weights, or the engine's error."""
    temporal.find_weights()
    refine.find_weights()


def _temporal(obs, body):
    return temporal.fit(obs, body)


temporal_once = once(_temporal)


def register_refinement(name, weights=None, sink=None):
    """Register ``name``: the default temporal estimate refined by ``weights``/d2a.onnx (the
    default weights folder when None), memoised per sequence so cleaned variants reuse it;
    returns it. ``sink``: a list that receives each result (with its ``joint_sigma``), in the
    bench's sample order, for σ calibration."""

    def fn(obs, body):
        out = refine.refine(obs, body, temporal_once(obs, body), weights=weights)
        if sink is not None:
            sink.append(out)
        return out
    fn = once(fn)
    register(name, fn)
    return fn


_refined = register_refinement("temporal+d2a")
register("temporal+d2a+light", cleaned("light", source=_refined))
register("temporal+d2a+analysis", cleaned("analysis", source=_refined))
