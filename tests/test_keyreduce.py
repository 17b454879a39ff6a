"""Key reduction: fewer Bezier keys that reproduce the motion within a tolerance."""
import numpy as np
import pytest

from conftest import make_motion, make_toy_body


def _quat_curves(T=300):
    from addon.scene import convert
    from engine.body.rotations import continuous_quaternions
    m = make_motion(make_toy_body(), T=T)
    q = convert.pose_quaternions(m.poses, np.tile([1.0, 0, 0, 0], (24, 1)))
    return continuous_quaternions(q)


def test_reduce_quaternions_pure():
    from addon.scene import keyreduce as kr
    q = _quat_curves()
    x = 1.0 + np.arange(len(q))
    tol = np.radians(1.0)
    total = worst = 0
    for j in range(24):
        keys, m = kr.reduce(x, q[:, j], tol, "quat")
        rec = kr.evaluate(x[keys], q[keys, j], m, x)
        worst = max(worst, kr.error(q[:, j], rec, "quat").max())
        total += len(keys)
    assert total <= 0.25 * 24 * len(q) and worst <= tol


def test_reduce_scalar_gaps_and_handles():
    from addon.scene import keyreduce as kr
    x = np.arange(100.0)
    y = np.sin(x / 7.0)
    y[40:45] = np.nan  # invalid frames: no keys, each run kept within tolerance
    keys, m = kr.reduce(x, y, 1e-3)
    assert not np.isin(keys, np.arange(40, 45)).any() and {0, 39, 45, 99} <= set(keys.tolist())
    for a, b in ((0, 40), (45, 100)):
        sel = keys[(keys >= a) & (keys < b)]
        ms = m[(keys >= a) & (keys < b)]
        rec = kr.evaluate(x[sel], y[sel], ms, x[a:b])
        assert np.abs(rec - y[a:b]).max() <= 1e-3
    left, right = kr.handles(x[keys], y[keys], m)
    assert np.all(left[:, 0] < x[keys]) and np.all(right[:, 0] > x[keys])
    # the handles have the key's slope on both sides (aligned)
    assert np.allclose((right[:, 1] - y[keys]) / (right[:, 0] - x[keys]), m)
    assert np.allclose((y[keys] - left[:, 1]) / (x[keys] - left[:, 0]), m)


@pytest.mark.blender
def test_reduced_retarget_in_blender_300_frames():
    """A 300-frame clip retargeted onto the SMPL armature with key reduction at 1 cm: far fewer
    keys, and in Blender's own evaluation every bone's head and tail stays within 1 cm of the
    same retarget without reduction (the world-space bound holds along the chains)."""
    bpy = pytest.importorskip("bpy")
    from addon import compat
    from addon.scene import build_scene as build, keyreduce
    from addon.retarget import apply
    body = make_toy_body()
    motion = make_motion(body, T=300)
    bpy.ops.wm.read_homefile(use_empty=True)
    arms = []
    for name in ("full", "reduced"):
        arms.append(build.import_motion(motion, body, bpy.context.scene, name=name, with_mesh=False).armature)
        arms[-1].animation_data.action = None
    kw = dict(confidence=False, floor=False)
    assert apply.RetargetOptions().tolerance_cm == keyreduce.DEFAULT_TOLERANCE_CM == 1.0
    full = apply.retarget_motion(motion, arms[0], "smpl", apply.RetargetOptions(**kw))
    res = apply.retarget_motion(motion, arms[1], "smpl", apply.RetargetOptions(reduce=True, **kw))
    assert full.keys == full.samples == 300 * (24 * 4 + 3)
    assert res.keys <= 0.4 * res.samples, (res.keys, res.samples)
    assert res.reduce_error_cm <= 1.0
    fcs = list(compat.iter_fcurves(res.action))
    assert all(k.interpolation == "BEZIER" and k.handle_left_type == "ALIGNED"
               for fc in fcs for k in fc.keyframe_points)
    scene = bpy.context.scene
    worst = 0.0
    for f in range(1, 301, 3):
        scene.frame_set(f)
        for name in res.bones:
            for attr in ("head", "tail"):
                a = arms[0].matrix_world @ getattr(arms[0].pose.bones[name], attr)
                b = arms[1].matrix_world @ getattr(arms[1].pose.bones[name], attr)
                worst = max(worst, (a - b).length)
    assert worst <= 0.0101, worst
    print(f"keys {res.keys}/{res.samples} = {100 * res.keys / res.samples:.1f} %, worst {100 * worst:.3f} cm "
          f"(bound reported {res.reduce_error_cm:.3f} cm)")
