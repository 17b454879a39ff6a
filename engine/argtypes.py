"""Command-line arguments checked before any work, each mistake reported in one line.

Shared by ``python -m engine``, ``python -m engine.pitch`` and the Blender batch: an argparse
parser whose errors are a single ``error: ...`` line (argparse's default prints the usage block
first), and ``type=`` converters for the ranges the engine accepts.
"""
import argparse
import math
import sys


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _number(kind, text):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_float(text):
    """A finite number > 0 (focal lengths, heights)."""
    v = _number(float, text)
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return v


def focal_length(text):
    """A focal length in pixels (a number > 0) or ``auto`` (estimated per clip, engine.estimate.focal)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number of pixels > 0 or 'auto', got {text}") from None


def int_at_least(lo):
    """A converter for integers ``>= lo``."""
    def convert(text):
        v = _number(int, text)
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text}")
        return v
    convert.__name__ = f"integer >= {lo}"
    return convert


def frame_range(text):
    """``FIRST:LAST`` (LAST exclusive; either may be empty) → ``(first, last or None)``."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"frame range must be FIRST:LAST, e.g. 0:120, got {text!r}")
    try:
        first = int(parts[0]) if parts[0].strip() else 0
        last = int(parts[1]) if parts[1].strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame range must be FIRST:LAST in whole frames, got {text!r}") from None
    if first < 0:
        raise argparse.ArgumentTypeError(f"frame range must start at 0 or later, got {text!r}")
    if last is not None and last <= first:
        raise argparse.ArgumentTypeError(f"frame range is empty: LAST must be after FIRST, got {text!r}")
    return first, last


SUBJECT_RULES = ("largest", "central", "pitcher", "point")


def subject_rule(text):
    """A subject rule name or a track id (a whole number from ``--list-people``)."""
    if text in SUBJECT_RULES:
        return text
    try:
        if int(text) >= 0:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"unknown subject rule {text!r}: use {', '.join(SUBJECT_RULES)} or a track id from --list-people")
