"""onnxruntime sessions for the engine's networks: execution provider by preference, shared.

The preference is the add-on's *Device* setting and the CLI's ``--device``:

* ``auto`` — CUDA when this onnxruntime has the ``CUDAExecutionProvider`` (the
  ``onnxruntime-gpu`` wheel), else the CPU. If CUDA is listed but cannot start (no CUDA 12 /
  cuDNN 9 libraries found), onnxruntime falls back to the CPU by itself; ``auto`` accepts that.
* ``gpu`` — CUDA or a clear error, both when the provider is missing and when the session came
  up without it (the libraries failed to load): a user who asked for the GPU is not silently
  given the CPU.
* ``cpu`` — the CPU, even when a GPU is there.

``select_providers`` is the pure rule (unit-tested with made-up provider lists);
``create_session`` applies it and checks what onnxruntime actually did.

Both networks (the temporal model and the D2A refinement) load from one weights folder
(``weights_dir``: ``$MOCAP_TEMPORAL_WEIGHTS`` or the shipped ``engine/data/temporal/``), and
their runners are built once per folder and device (``cached_runner``).
"""
import os
from pathlib import Path

from ..errors import EngineError

DEVICES = ("auto", "gpu", "cpu")
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
_ALIASES = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "auto": "auto", "": "auto", None: "auto"}
DEVICE_ENV = "MOCAP_DEVICE"  # overrides the default preference ("auto") where none is passed


def normalise_device(device):
    """'auto' | 'gpu' | 'cpu' from a preference ('GPU', 'CUDA', None, … accepted)."""
    key = device.strip().lower() if isinstance(device, str) else device
    if key not in _ALIASES:
        raise EngineError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    return _ALIASES[key]


def available_providers():
    import onnxruntime as ort
    return list(ort.get_available_providers())


def select_providers(device="auto", available=None, cuda_options=None):
    """Execution providers to ask onnxruntime for, in order of preference.

    ``available``: the provider names this onnxruntime offers (default: asked from it).
    ``cuda_options``: a dict given to the CUDA provider (e.g. ``{"device_id": 1}``); then the
    CUDA entry is a (name, options) pair, as ``InferenceSession(providers=...)`` takes.
    Raises EngineError for ``gpu`` when CUDA is not available.
    """
    device = normalise_device(device)
    have = available_providers() if available is None else list(available)
    if device == "cpu":
        return [CPU]
    if CUDA in have:
        return [(CUDA, dict(cuda_options)) if cuda_options else CUDA, CPU]
    if device == "gpu":
        raise EngineError("device 'gpu': this onnxruntime has no CUDAExecutionProvider (install the "
                          "GPU build, onnxruntime-gpu, with CUDA 12 and cuDNN 9), or choose auto/cpu")
    return [CPU]


def _name(p):
    return p[0] if isinstance(p, tuple) else p


def check_session_providers(device, requested, used):
    """Raise when ``gpu`` was asked for but the session runs without CUDA; returns ``used``."""
    if normalise_device(device) == "gpu" and CUDA not in used:
        raise EngineError("device 'gpu': onnxruntime could not start CUDA (CUDA 12 runtime or cuDNN 9 "
                          "libraries not found on the library path); choose auto or cpu, or fix the "
                          "CUDA installation")
    return list(used)


def session_options(threads=None):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # no provider fallback chatter on the console
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def create_session(model, device=None, threads=None, available=None, cuda_options=None, factory=None):
    """An ``onnxruntime.InferenceSession`` for ``model`` (path or bytes) on ``device``.

    ``device`` None: ``$MOCAP_DEVICE`` or ``auto``. ``factory`` replaces
    ``onnxruntime.InferenceSession`` (tests). The session's ``get_providers()`` says which
    providers it really uses.
    """
    device = normalise_device(device if device is not None else os.environ.get(DEVICE_ENV, "auto"))
    providers = select_providers(device, available, cuda_options)
    if factory is None:
        import onnxruntime as ort
        factory = ort.InferenceSession
    model = str(model) if not isinstance(model, (bytes, bytearray)) else bytes(model)
    sess = factory(model, session_options(threads), providers=providers)
    check_session_providers(device, [_name(p) for p in providers], sess.get_providers())
    return sess


def describe(session):
    """'CUDA' or 'CPU' — where a session's first provider runs."""
    used = session.get_providers()
    return "CUDA" if used and used[0] == CUDA else "CPU"


WEIGHTS_ENV = "MOCAP_TEMPORAL_WEIGHTS"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "temporal"


def weights_dir(path=None):
    """The networks' weights folder: ``path``, else ``$MOCAP_TEMPORAL_WEIGHTS``, else the shipped one."""
    return Path(path or os.environ.get(WEIGHTS_ENV) or SHIPPED_DIR)


def weights_found(find, path=None):
    """Whether ``find(path)`` (a ``find_weights``: returns the folder or raises EngineError)
    locates its weights."""
    try:
        find(path)
        return True
    except EngineError:
        return False


_RUNNERS = {}


def cached_runner(runner_class, path=None, device=None):
    """``runner_class(path, device)``, built once per class, weights folder and device (its
    sessions are reused by every clip of a process)."""
    key = (runner_class, str(weights_dir(path).resolve()), device)
    if key not in _RUNNERS:
        _RUNNERS[key] = runner_class(path, device)
    return _RUNNERS[key]
