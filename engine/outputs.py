"""Output paths checked before any work: never an input, parent made or a clear error, writable.

Every command that writes (the engine's ``-o``, the batch's ``-o``, the pitch report's ``-o``, the
add-on's save and export paths) calls one of these before it decodes a frame, so a mistake costs
a second, not the whole run, and never overwrites a user's video or Motion file.
"""
import os
import tempfile
from pathlib import Path

from .errors import EngineError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _resolved(path) -> Path:
    return Path(os.path.expanduser(str(path))).resolve()


def _check_not_input(out: Path, inputs, what: str):
    for src in inputs or ():
        if src is None:
            continue
        src = _resolved(src)
        if out == src or _same_file(out, src):
            raise EngineError(f"{what} {out} is the input file {src}: choose another output path")


def _writable_dir(folder: Path, what: str):
    """Create ``folder`` (and parents) if missing; raise unless files can be created in it."""
    if folder.exists() and not folder.is_dir():
        raise EngineError(f"{what}: {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"{what}: cannot create folder {folder} ({exc.strerror or exc})") from None
    try:  # a real probe: os.access says yes to root even on a read-only mount
        fd, probe = tempfile.mkstemp(prefix=".mocap-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise EngineError(f"{what}: folder {folder} is not writable ({exc.strerror or exc})") from None


def check_output_file(path, inputs=(), what="output file") -> Path:
    """The absolute path of a file to be written, after checking it can be written safely.

    Refused: the same path or inode as any of ``inputs``; an existing directory; an existing
    file that cannot be replaced; a parent that cannot be created or written. The parent is
    created when missing (that is the only side effect)."""
    out = _resolved(path)
    _check_not_input(out, inputs, what)
    if out.is_dir():
        raise EngineError(f"{what} {out} is a folder: give a file name")
    if out.exists() and not os.access(out, os.W_OK):
        raise EngineError(f"{what} {out} exists and is not writable")
    _writable_dir(out.parent, what)
    return out


def check_output_dir(path, inputs=(), what="output folder") -> Path:
    """The absolute path of a folder to write into, created if missing and checked writable.

    Refused: an existing file at that path (inputs included), a folder that cannot be created or
    written. A folder that holds an input is fine: outputs get their own names there."""
    out = _resolved(path)
    for src in inputs or ():
        if src is not None and (out == _resolved(src) or _same_file(out, _resolved(src))):
            raise EngineError(f"{what} {out} is the input {src}: choose another folder")
    _writable_dir(out, what)
    return out


def check_output_names(paths, inputs=(), what="output file"):
    """Check several output files at once (as ``check_output_file``); returns their absolute paths.

    Also refuses two outputs that would land on the same file."""
    outs = [check_output_file(p, inputs, what) for p in paths]
    seen = {}
    for o in outs:
        if o in seen:
            raise EngineError(f"two outputs would be written to the same file {o}")
        seen[o] = True
    return outs
