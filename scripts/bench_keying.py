"""Benchmark: key 10,000 frames × 24 bones (quaternions on all bones + root location) in bulk.

    .venv/bin/python scripts/bench_keying.py [--frames 10000]
    blender -b -P scripts/bench_keying.py -- --frames 10000

Prints the time of the conversion math and of writing the F-curves (target: < 1 s in all).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="mocap-bench-")
os.environ.setdefault("BLENDER_USER_RESOURCES", os.path.join(_tmp, "blender"))
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(_tmp, "cache"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from addon import compat  # noqa: E402
from addon.scene import build_scene as build, convert  # noqa: E402
from engine.body.rotations import continuous_quaternions  # noqa: E402
from engine.body.skeleton import JOINT_NAMES, PARENTS  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=10000)
    a = p.parse_args(argv)
    T, J = a.frames, len(PARENTS)
    rng = np.random.default_rng(0)
    rest = np.zeros((J, 3))
    for j in range(1, J):
        rest[j] = rest[PARENTS[j]] + rng.normal(0, 0.1, 3) + np.array([0, 0.15, 0])
    poses = rng.normal(0, 0.4, (T, J * 3))
    trans = rng.normal(0, 1, (T, 3))
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    rig = convert.rig_rest(rest, PARENTS)
    tx = build.Transaction(scene)
    arm = build.build_armature(tx, scene.collection, "bench", rig, bpy.context.view_layer)

    t0 = time.perf_counter()
    quats = continuous_quaternions(convert.pose_quaternions(poses, rig["D_quat"]))
    loc = convert.root_locations(trans, rest[0], rig["rest_rot"][0])
    t1 = time.perf_counter()
    channels = compat.new_action_for(arm, "bench Motion")
    frames = 1 + np.arange(T, dtype=np.float64)
    curves = [(build.LOC_PATH.format("pelvis"), i, "pelvis", loc[:, i]) for i in range(3)]
    curves += [(build.ROT_PATH.format(name), i, name, quats[:, j, i])
               for j, name in enumerate(JOINT_NAMES) for i in range(4)]
    build.key_channels(channels, frames, curves)
    t2 = time.perf_counter()
    nkeys = sum(len(fc.keyframe_points) for fc in compat.iter_fcurves(channels.action))
    print(f"bench_keying: {T} frames x {J} bones = {nkeys} keys on {len(curves)} F-curves "
          f"(Blender {bpy.app.version_string})")
    print(f"  conversion math {t1 - t0:.3f} s, keying {t2 - t1:.3f} s, total {t2 - t0:.3f} s")
    return 0


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(argv))
