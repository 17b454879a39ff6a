"""Run the engine in a background thread (no bpy here: the thread never touches Blender data)."""
import threading

from .enginepath import ensure_engine


class EngineJob:
    """One engine run. Poll ``fraction``/``message``/``done`` from the UI; ``cancel()`` stops it
    at the engine's next progress report. ``motion`` or ``error`` is set when done."""

    def __init__(self, video_path, options):
        self.video_path = str(video_path)
        self.options = options
        self.fraction = 0.0
        self.message = "starting"
        self.motion = None
        self.error = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._thread = None

    def _progress(self, fraction, message):
        self.fraction, self.message = float(fraction), str(message)
        return not self._cancel.is_set()

    def _target(self):
        ensure_engine()
        from engine.errors import Cancelled
        try:
            from engine.pipeline import run
            self.motion = run(self.video_path, self.options, progress=self._progress)
            if self._cancel.is_set():
                raise Cancelled("cancelled")
        except Cancelled:
            self.cancelled = True
        except BaseException as exc:  # reported to the user, never raised in the UI thread
            self.error = exc

    def start(self):
        self._thread = threading.Thread(target=self._target, name="mocap-engine", daemon=True)
        self._thread.start()
        return self

    def run_blocking(self):
        self._target()
        return self

    def cancel(self):
        self._cancel.set()

    @property
    def done(self):
        return self._thread is not None and not self._thread.is_alive()

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)


def pipeline_options(prefs, **overrides):
    """engine.pipeline.PipelineOptions from the add-on preferences (plus overrides)."""
    ensure_engine()
    from engine.pipeline import PipelineOptions
    kw = dict(device=prefs.device, smoothing=prefs.smoothing, body_model_path=prefs.smpl_path or None,
              estimator=getattr(prefs, "estimator", "auto"), refine=bool(getattr(prefs, "refine", True)),
              follow=bool(getattr(prefs, "follow", True)))
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineOptions(**kw)


def error_message(exc):
    """A message for the user: EngineError text as is, anything else with its type."""
    ensure_engine()
    from engine.errors import EngineError
    if isinstance(exc, EngineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
