"""On-disk cache of per-clip detections, so re-running on the same clip skips the detector.

Keyed by the video file's content hash (SHA-256) plus the options that change detections
(detector settings, frame range, stride, processing size, engine cache format). Stored as one
compressed ``.npz`` per key under ``$MOCAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mocap-engine``,
else ``~/.cache/mocap-engine``. Writes are atomic; an unreadable entry is ignored (recomputed).
Delete the folder to clear it.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = 1  # bump when the stored arrays change meaning


def cache_dir():
    env = os.environ.get("MOCAP_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mocap-engine"


_HASHES = {}


def file_hash(path, chunk=1 << 20):
    """SHA-256 of the file's content (memoised per path, size and mtime within a process)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while True:
                b = f.read(chunk)
                if not b:
                    break
                h.update(b)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def cache_key(video_path, options):
    """Key string from the clip's content and a JSON-able dict of options."""
    blob = json.dumps({"format": FORMAT, "video": file_hash(video_path), "options": options},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def code_version(*files):
    """12 hex digits of the files' contents: put in a cache key, the entry follows that code."""
    h = hashlib.sha1()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:12]


def _path(key, kind):
    return cache_dir() / f"{kind}-{key}.npz"


def load(key, kind="detections"):
    """Dict of arrays stored under ``key``, or None."""
    p = _path(key, kind)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # a truncated or foreign file: recompute
        return None


def _write_atomic(path, write, suffix):
    """``write(tmp)`` to a temporary file beside ``path``, then renamed onto it → ``path``, or
    None when the folder cannot be made or written (read-only disk…; nothing is left behind)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix)
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return path


def save(key, arrays, kind="detections"):
    """Store a dict of arrays atomically; failures (read-only disk…) are ignored."""
    return _write_atomic(_path(key, kind), lambda tmp: np.savez_compressed(tmp, **arrays), ".tmp.npz")


def save_file(name, data):
    """Store ``data`` (bytes) as ``name`` in the cache folder atomically → its path, or None
    when the folder cannot be written."""
    return _write_atomic(cache_dir() / name, lambda tmp: Path(tmp).write_bytes(data), ".part")
