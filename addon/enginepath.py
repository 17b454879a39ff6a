"""Find the engine package: the one place that touches ``sys.path``.

* Installed extension (zip): ``engine/`` is copied inside the extension folder, next to this file.
* Development checkout: ``engine/`` sits in the repository root, the parent of ``addon/``.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def engine_root():
    for folder in (HERE, HERE.parent):
        if (folder / "engine" / "__init__.py").is_file():
            return folder
    return None


def ensure_engine():
    """Put the folder holding ``engine/`` on sys.path; return it (None when not found)."""
    root = engine_root()
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root
