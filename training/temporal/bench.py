"""Bench plugin: registers the seed-2 temporal estimator ("temporal") with ``training.bench``.

    MOCAP_TEMPORAL_WEIGHTS=out/temporal_onnx .venv/bin/python -m training.bench h1 \\
        --plugin training.temporal.bench --estimators baseline,temporal

(``--estimators temporal`` alone loads this plugin automatically.) The weights folder holds
``temporal.onnx`` + ``prvipe.onnx`` from ``python -m training.temporal.export``; ``temporal+light`` / ``temporal+analysis`` are its output
through the clean-motion presets, as ``baseline+light`` is for the baseline; ``temporal@DIR``
is the model exported in DIR (several side by side). Without weights the bench stops with the
engine's message before any work. ``MOCAP_DEVICE`` = auto | gpu | cpu (default auto,
``engine.estimate.onnx_runtime``).
"""
from engine.estimate import temporal
from training.bench.synthetic import cleaned, once, register


def require():
    """The default weights (shipped or $MOCAP_TEMPORAL_WEIGHTS), or the engine's error."""
    temporal.find_weights()


def register_weights(name):
    """Register ``temporal@DIR`` (optionally ``temporal+light@DIR``): the model exported in DIR
    (ablations side by side in one bench run)."""
    base, d = name.split("@", 1)
    temporal.find_weights(d)
    fn = once(lambda obs, body: temporal.fit(obs, body, weights=d))
    if base == "temporal":
        register(name, fn)
    elif base in ("temporal+light", "temporal+analysis"):
        register(name, cleaned(base.split("+")[1], source=fn))
    else:
        raise KeyError(f"unknown estimator {name!r}: temporal@DIR, temporal+light@DIR or temporal+analysis@DIR")


def _temporal(obs, body):
    return temporal.fit(obs, body)


_temporal_once = once(_temporal)
register("temporal", _temporal_once)
register("temporal+light", cleaned("light", source=_temporal_once))
register("temporal+analysis", cleaned("analysis", source=_temporal_once))

# the network alone: its rotations not blended toward its IK prior (what the blend changes)
_alone_once = once(lambda obs, body: temporal.fit(obs, body, prior_blend=0.0))
register("temporal-alone", _alone_once)
register("temporal-alone+light", cleaned("light", source=_alone_once))
register("temporal-alone+analysis", cleaned("analysis", source=_alone_once))
