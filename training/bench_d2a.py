"""Bench plugin: registers the seed-2 temporal estimate refined by the seed-0 network
("temporal+d2a") with ``training.bench``.

    MOCAP_TEMPORAL_WEIGHTS=out/temporal_onnx .venv/bin/python -m training.bench h1 \\
        --estimators temporal,temporal+d2a

(``--estimators temporal+d2a`` loads this plugin automatically.) The weights folder holds
``temporal.onnx`` + ``prvipe.onnx`` (``python -m training.models.export``) and ``d2a.onnx``
(``python -m training.models.d2a_export``); without them the import fails with the engine's
message.
"""
from engine import refine, temporal
from training.bench import register

temporal.find_weights()
refine.find_weights()


def _temporal_d2a(obs, body):
    return refine.refine(obs, body, temporal.fit(obs, body))


register("temporal+d2a", _temporal_d2a)
