"""The engine's one error type: a message a user can act on, no traceback needed."""


class EngineError(Exception):
    """A failure with a clear, user-facing message (bad input, nothing found, cancelled)."""


class Cancelled(EngineError):
    """The caller asked the work to stop (progress callback returned False)."""
