"""Shared fixtures. Data from ../shared is optional: tests that need it skip with a reason."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOCAP_SHARED", ROOT.parent / "shared"))
ARTIFACTS = ROOT / "tests" / "artifacts"
DEMO_VIDEO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"

# Blender must never write to the user's home from the tests.
_tmp = Path(tempfile.mkdtemp(prefix="mocap-tests-"))
os.environ.setdefault("BLENDER_USER_RESOURCES", str(_tmp / "blender"))
os.environ.setdefault("XDG_CACHE_HOME", str(_tmp / "cache"))
os.environ.setdefault("MOCAP_CACHE_DIR", str(_tmp / "mocap-cache"))
sys.path.insert(0, str(ROOT))


def shared_path(*parts):
    """A path under ../shared, or skip the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the project's shared data, absent in a fresh clone)")
    return p


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
