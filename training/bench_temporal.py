"""Bench plugin: registers the seed-2 temporal estimator ("temporal") with ``training.bench``.

    MOCAP_TEMPORAL_WEIGHTS=out/temporal_onnx .venv/bin/python -m training.bench h1 \\
        --plugin training.bench_temporal --estimators baseline,temporal

(``--estimators temporal`` alone loads this plugin automatically.) The weights folder holds
``temporal.onnx`` + ``prvipe.onnx`` from ``python -m training.models.export``; ``temporal+light`` / ``temporal+analysis`` are its output
through the clean-motion presets, as ``baseline+light`` is for the baseline. Without weights the
import fails with the engine's message. ``MOCAP_DEVICE`` = auto | gpu | cpu (default auto,
``engine.runtime``).
"""
from engine import temporal
from training.bench import cleaned, once, register

temporal.find_weights()


def _temporal(obs, body):
    return temporal.fit(obs, body)


_temporal_once = once(_temporal)
register("temporal", _temporal_once)
register("temporal+light", cleaned("light", source=_temporal_once))
register("temporal+analysis", cleaned("analysis", source=_temporal_once))
