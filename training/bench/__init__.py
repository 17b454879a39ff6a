"""The accuracy benchmarks, one command: ``python -m training.bench r1|h1|h2`` (``main``).

``synthetic``: H1 (held-out CMU subjects) and H2 (OBP pitches) with the estimator registry;
``r1``: real video, the calibrated 4-camera lab clip; ``speed``: the engine's per-stage timing
(``python -m training.bench.speed``).
"""
import sys


def main(argv=None):
    """Run R1 (``r1 ...``, its own options) or H1/H2 (``h1|h2 ...``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["r1"]:
        from training.bench.r1 import main as r1
        return r1(argv[1:])
    from training.bench.synthetic import main as synthetic
    return synthetic(argv)
