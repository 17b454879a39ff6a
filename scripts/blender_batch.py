"""Headless batch through a Blender binary's script entry:

    blender -b -P scripts/blender_batch.py -- VIDEO_OR_NPZ... -o OUT_DIR [--device cpu]
            [--smoothing light] [--body-model SMPL.pkl] [--frames 0:120] [--no-mesh] [--no-video]

Same as ``blender -b -c mocap ...`` (the extension's CLI command) and ``addon.batch.batch()``:
one .blend and one Motion file per clip in OUT_DIR, plus OUT_DIR/summary.csv (merged by clip
into an existing one); a clip that fails is reported there and the batch goes on. A bad
argument is one ``error:`` line and exit code 2 before any work; Ctrl-C writes the summary
(finished rows, ``interrupted`` for the rest) and exits 130. Also runs with a plain Python
that has the ``bpy`` module: ``python scripts/blender_batch.py VIDEO... -o OUT_DIR``.
"""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if "bpy" not in sys.modules:
    # Blender as a Python module: keep its user config and caches out of the user's home (the
    # engine's detection cache goes to the repo's ignored cache/ folder so re-runs are fast).
    _tmp = tempfile.mkdtemp(prefix="mocap-batch-")
    os.environ.setdefault("BLENDER_USER_RESOURCES", os.path.join(_tmp, "blender"))
    os.environ.setdefault("XDG_CACHE_HOME", os.path.join(_tmp, "cache"))
    os.environ.setdefault("MOCAP_CACHE_DIR", str(ROOT / "cache" / "detections"))


def _argv():
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


if __name__ == "__main__":
    try:
        from addon.batch import main
    except KeyboardInterrupt:  # Ctrl-C while Blender loads: nothing ran yet
        sys.stderr.write("[mocap] interrupted before any clip ran; nothing written\n")
        sys.exit(130)
    sys.exit(main(_argv()))
