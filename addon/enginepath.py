"""Find the engine package: the one place that touches ``sys.path``.

* Installed extension (the zips ``build_extension.py`` makes): ``lib/engine/`` and ``lib/presets/``
  inside the extension folder. Only ``lib/`` goes on sys.path, so the add-on's own modules
  (``compat``, ``scene``, ...) never become importable as top-level modules.
* Development checkout: ``engine/`` sits in the repository root, the parent of ``addon/``.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB = "lib"  # the extension's folder for the engine and its data (see build_extension.py)


def engine_root():
    """The folder that holds ``engine/`` (and ``presets/``), or None."""
    for folder in (HERE / LIB, HERE, HERE.parent):
        if (folder / "engine" / "__init__.py").is_file():
            return folder
    return None


def presets_dir():
    """``presets/`` beside the engine (rig maps, smoothing, pitch settings), or None."""
    root = engine_root()
    return root / "presets" if root is not None and (root / "presets").is_dir() else None


def ensure_engine():
    """Put the folder holding ``engine/`` on sys.path; return it (None when not found)."""
    root = engine_root()
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root
