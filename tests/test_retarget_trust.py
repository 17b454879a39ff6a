"""Retargeting an animator can trust: the rig's transform read as Blender evaluates it (batch and
operator alike), nothing of the rig's own lost or changed, the result where the Graph Editor
looks, exports that re-import in place with Blender's default settings, key reduction bounded
in world space and the floor handled per contact segment.

Positions are checked in world space against the source Motion, in centimetres."""
import csv

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import rigs  # noqa: E402
import test_retarget_rigs as base  # noqa: E402  (walk motion, body, checks)

pytestmark = pytest.mark.blender

FRAMES = (0, 29, 71)  # 0-based clip frames checked
LIMBS = {"LeftFoot": "left_ankle", "RightFoot": "right_ankle", "LeftToeBase": "left_foot",
         "RightToeBase": "right_foot", "LeftHand": "left_wrist", "RightHand": "right_wrist"}


@pytest.fixture(scope="module")
def body():
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    from conftest import make_toy_body
    return load_body_model() if OPEN_BODY_PATH.is_file() else make_toy_body()


@pytest.fixture(scope="module")
def walk(body):
    return base.walk_motion(body)


@pytest.fixture(scope="module")
def rigify_blend(tmp_path_factory):
    """Rigify's human rig, generated once for the module and saved; tests reopen the file."""
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = rigs.rigify_rig()
    path = tmp_path_factory.mktemp("rigify") / "rigify.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    return path, rig.name


def _world_heads(ob, names, frames, start=1):
    scene = bpy.context.scene
    out = []
    for f in frames:
        scene.frame_set(start + int(f))
        Mw = np.array(ob.matrix_world)
        out.append([(Mw @ np.r_[np.array(ob.pose.bones[n].head), 1.0])[:3] for n in names])
    return np.array(out)


def _limb_errors_cm(ob, motion, scale, prefix="mixamorig:"):
    """Worst distance (cm) of the feet/toes and of the hands from the source joints, scaled
    about the source's floor (z = 0 here) by the rig's scale: {"feet": .., "hands": ..}."""
    from engine.body.skeleton import JOINT_INDEX
    names = [prefix + n for n in LIMBS]
    got = _world_heads(ob, names, FRAMES)
    src = np.array([[motion.joints[f, JOINT_INDEX[j]] for j in LIMBS.values()] for f in FRAMES]) * scale
    err = 100 * np.linalg.norm(got - src, axis=-1)
    return {"feet": float(err[:, :4].max()), "hands": float(err[:, 4:].max())}


# ------------------------------------------------------------------ the rig's transform
def test_batch_and_operator_agree_on_a_rotated_scaled_rig(blender_addon, walk, tmp_path):
    """A Mixamo FBX import (+90° X, scale 0.01) appended by the batch: the saved .blend has its
    feet and hands where the source's are (scaled by the leg ratio), and exactly where the
    operator puts them on the same rig."""
    from addon import batch
    bpy.ops.wm.read_homefile(use_empty=True)
    rigs.mixamo_rig("Hero")
    rig_blend = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_blend), check_existing=False)
    motion_path = tmp_path / "walk.npz"
    walk.save(motion_path)
    out = tmp_path / "out"
    assert batch.main([str(motion_path), "-o", str(out), "--no-mesh", "--rig", f"{rig_blend}:Hero"]) == 0
    row = next(csv.DictReader(open(out / "summary.csv")))
    assert row["status"] == "ok", row
    scale = float(row["rig_scale"])
    assert 0.9 < scale < 1.2, scale
    bpy.ops.wm.open_mainfile(filepath=row["blend"])
    hero = bpy.data.objects["Hero"]
    assert np.allclose(np.array(hero.matrix_world)[:3, :3], np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) * 0.01)
    batch_err = _limb_errors_cm(hero, walk, scale)
    batch_pos = _world_heads(hero, ["mixamorig:" + n for n in LIMBS], FRAMES)

    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    s = bpy.context.scene.mocap_retarget
    s.target, s.preset = ob, "mixamo"
    assert bpy.ops.mocap.retarget(filepath=str(motion_path)) == {"FINISHED"}
    assert abs(ob["mocap_retarget_scale"] - scale) < 1e-4
    op_pos = _world_heads(ob, ["mixamorig:" + n for n in LIMBS], FRAMES)
    assert 100 * np.abs(op_pos - batch_pos).max() < 0.1  # the same path: < 1 mm
    assert batch_err["feet"] < 6.0 and batch_err["hands"] < 10.0, batch_err  # proportions differ, not metres
    print(f"batch = operator; scale {scale:.4f}; feet {batch_err['feet']:.2f} cm, hands {batch_err['hands']:.2f} cm")


def test_appended_rig_reads_identity_until_updated(walk, tmp_path):
    """Why the update matters: an appended object's world matrix is identity until the view
    layer is evaluated; retarget_motion evaluates it first."""
    from addon.retarget import apply
    bpy.ops.wm.read_homefile(use_empty=True)
    rigs.mixamo_rig("Hero")
    path = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    bpy.ops.wm.read_homefile(use_empty=True)
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = ["Hero"]
    ob = dst.objects[0]
    bpy.context.scene.collection.objects.link(ob)
    stale = np.array(ob.matrix_world)
    assert np.allclose(stale, np.eye(4))
    res = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    assert np.isclose(np.linalg.det(np.array(ob.matrix_world)[:3, :3]), 1e-6)
    assert 0.9 < res.scale < 1.2, res.scale
    err = _limb_errors_cm(ob, walk, res.scale)
    assert err["feet"] < 6.0 and err["hands"] < 10.0, err


# ------------------------------------------------------------------ nothing of the rig's lost
def _user_action(ob, name="MyKeys"):
    pb = ob.pose.bones["mixamorig:LeftHand"]
    pb.rotation_quaternion = (0.9, 0.3, 0.0, 0.0)
    pb.keyframe_insert("rotation_quaternion", frame=1)
    pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
    pb.keyframe_insert("rotation_quaternion", frame=20)
    ob.animation_data.action.name = name
    return ob.animation_data.action


def test_users_action_survives_retarget_save_and_reload(walk, tmp_path):
    from addon import compat
    from addon.retarget import apply
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    mine = _user_action(ob)
    res = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    ad = ob.animation_data
    assert ad.action == res.action and res.action != mine  # the result is what plays / is edited
    assert res.stashed is not None and res.stashed.action == mine and mine.users >= 1
    tracks = [t for t in ad.nla_tracks if any(s.action == mine for s in t.strips)]
    assert len(tracks) == 1 and tracks[0].mute  # kept, muted: the result plays unchanged
    path = tmp_path / "kept.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    mine = bpy.data.actions.get("MyKeys")
    assert mine is not None and len(list(compat.iter_fcurves(mine))) == 4
    ob = bpy.data.objects["Hero"]
    assert ob.animation_data.action.name == f"{ob.name} walk"
    assert any(s.action == mine for t in ob.animation_data.nla_tracks for s in t.strips)


def test_second_retarget_gets_its_own_muted_track(walk):
    from addon.retarget import apply
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    first = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    second = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    ad = ob.animation_data
    assert ad.action == second.action and first.action.name != second.action.name
    assert second.stashed.action == first.action
    names = [t.name for t in ad.nla_tracks]
    assert len(names) == len(set(names)) == 1 and all(t.mute for t in ad.nla_tracks)
    third = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    names = [t.name for t in ad.nla_tracks]
    assert len(names) == len(set(names)) == 2 and all(t.mute for t in ad.nla_tracks)
    assert {s.action for t in ad.nla_tracks for s in t.strips} == {first.action, second.action}
    assert ad.action == third.action


def test_rigify_settings_keyed_not_changed_and_graph_editor(rigify_blend, walk):
    """Rigify (limbs in IK): the pole switches the retarget needs are keyed in its action (the
    rig's own value stays 0), the hidden FK controls of the IK limbs get no keys, confidence
    curves have their own group, and the result is the active action."""
    from addon import compat
    from addon.retarget import apply
    path, name = rigify_blend
    bpy.ops.wm.open_mainfile(filepath=str(path))
    ob = bpy.data.objects[name]
    parents = [f"{limb}_parent.{s}" for limb in ("upper_arm", "thigh") for s in "LR"]
    before = {(p, k): ob.pose.bones[p][k] for p in parents for k in ("pole_vector", "IK_Stretch")}
    assert {v for (p, k), v in before.items() if k == "pole_vector"} == {0}
    res = apply.retarget_motion(walk, ob, "rigify", apply.RetargetOptions(), name="walk")
    assert {(p, k): ob.pose.bones[p][k] for p, k in before} == before  # the rig's settings unchanged
    assert ob.pose.bones["thigh_ik.L"].ik_stretch == pytest.approx(0.1)
    assert ob.animation_data.action == res.action
    fcs = list(compat.iter_fcurves(res.action))
    switch = {c.data_path: c for c in fcs if c.data_path.endswith('["pole_vector"]')}
    assert set(switch) == {f'pose.bones["{p}"]["pole_vector"]' for p in parents}
    assert all(c.evaluate(40) == 1.0 for c in switch.values())
    bpy.context.scene.frame_set(40)
    assert all(ob.pose.bones[p]["pole_vector"] == 1 for p in parents)  # the action drives it while it plays
    keyed_bones = {c.data_path.split('"')[1] for c in fcs
                   if c.data_path.endswith(("rotation_quaternion", "rotation_euler", "location"))}
    assert not keyed_bones & {b for b in keyed_bones if "_fk." in b and b.split("_fk.")[0] != "spine"}
    assert {"hand_ik.L", "foot_ik.R", "upper_arm_ik_target.L", "torso"} <= keyed_bones
    stretch = {c.data_path: c.evaluate(40) for c in fcs if c.data_path.endswith(".ik_stretch")}
    assert len(stretch) == 8 and set(stretch.values()) == {0.0}  # keyed off in the action only
    conf = [c for c in fcs if c.data_path.endswith(f'["{apply.CONF_PROP}"]')]
    assert conf and {c.group.name for c in conf} == {apply.CONF_GROUP}
    print(f"rigify: {len(fcs)} F-curves ({len(conf)} confidence, {len(switch)} switches) on "
          f"{len(keyed_bones)} bones")


@pytest.mark.parametrize("reduce", [False, True])
def test_bone_rotation_modes_are_kept(walk, reduce):
    """Bones in axis-angle or Euler mode are keyed in their own mode (the rig's setting stays)
    and still point where the source bones point."""
    from addon import compat
    from addon.retarget import apply, presets
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    ob.pose.bones["mixamorig:LeftArm"].rotation_mode = "AXIS_ANGLE"
    ob.pose.bones["mixamorig:RightUpLeg"].rotation_mode = "YXZ"
    res = apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(reduce=reduce), name="walk")
    assert ob.pose.bones["mixamorig:LeftArm"].rotation_mode == "AXIS_ANGLE"
    assert ob.pose.bones["mixamorig:RightUpLeg"].rotation_mode == "YXZ"
    paths = {c.data_path for c in compat.iter_fcurves(res.action)}
    assert 'pose.bones["mixamorig:LeftArm"].rotation_axis_angle' in paths
    assert 'pose.bones["mixamorig:RightUpLeg"].rotation_euler' in paths
    d, _ = base.check_directions(ob, walk, res, presets.load_preset("mixamo"), tol=5.0)
    assert d < (2.0 if reduce else 0.1), d  # reduced: within 1 cm at the hand, ~1° on a 0.6 m arm


# ------------------------------------------------------------------ exports
def _import_and_compare(ob, names, imported, frames, start=1):
    """Worst distance (cm) between ``ob``'s bone heads and the re-imported armature's joints."""
    want = _world_heads(ob, names, frames, start)
    got = _world_heads(imported, names, frames, start)
    return float(100 * np.linalg.norm(got - want, axis=-1).max())


def _new_armature(before):
    return next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")


@pytest.mark.parametrize("fmt", ["bvh", "fbx"])
def test_mixamo_export_reimports_in_place(walk, tmp_path, fmt):
    from addon import compat
    from addon.retarget import apply, export
    import addon_utils
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    apply.retarget_motion(walk, ob, "mixamo", apply.RetargetOptions(), name="walk")
    path = export.export_armature(ob, tmp_path / f"walk.{fmt}", fmt)
    before = set(bpy.data.objects)
    addon_utils.enable("io_anim_bvh" if fmt == "bvh" else "io_scene_fbx", default_set=False)
    if fmt == "bvh":
        assert bpy.ops.import_anim.bvh(filepath=str(path)) == {"FINISHED"}
    else:
        assert bpy.ops.import_scene.fbx(filepath=str(path)) == {"FINISHED"}
    imp = _new_armature(before)
    names = [b.name for b in ob.data.bones]
    assert {b.name for b in imp.data.bones} == set(names)
    keys = [k.co[0] for c in compat.iter_fcurves(imp.animation_data.action) for k in c.keyframe_points]
    assert (min(keys), max(keys)) == (1.0, 90.0)  # frame range aligned
    err = _import_and_compare(ob, names, imp, (0, 44, 89))
    assert err < 1.0, err
    print(f"mixamo {fmt}: joints within {err:.4f} cm after re-import, {path.stat().st_size} bytes")


def test_rigify_bvh_is_the_deform_skeleton_and_reimports(rigify_blend, walk, tmp_path):
    from addon.retarget import apply, export
    import addon_utils
    path, name = rigify_blend
    bpy.ops.wm.open_mainfile(filepath=str(path))
    ob = bpy.data.objects[name]
    apply.retarget_motion(walk, ob, "rigify", apply.RetargetOptions(), name="walk")
    bvh = export.export_armature(ob, tmp_path / "walk.bvh", "bvh")
    joints = [n for n, _ in export.export_skeleton(ob)]
    deform = [b.name for b in ob.data.bones if b.use_deform]
    assert set(deform) <= set(joints) and len(joints) <= len(deform) + 1 < len(ob.data.bones) // 3
    text = bvh.read_text()
    assert text.count("JOINT ") + text.count("ROOT ") == len(joints) and "MCH-" not in text
    before = set(bpy.data.objects)
    addon_utils.enable("io_anim_bvh", default_set=False)
    assert bpy.ops.import_anim.bvh(filepath=str(bvh)) == {"FINISHED"}
    imp = _new_armature(before)
    body = [n for n in joints if n.startswith("DEF-") and any(k in n for k in ("thigh", "shin", "foot", "upper_arm",
                                                                                 "forearm", "hand", "spine"))]
    err = _import_and_compare(ob, body, imp, (0, 44, 89))
    assert err < 1.0, err
    all_bones = export.export_armature(ob, tmp_path / "all.bvh", "bvh", bones="all")
    text_all = all_bones.read_text()
    assert text_all.count("JOINT ") + text_all.count("ROOT ") == len(ob.data.bones)
    assert text.count("ROOT ") == 1  # one hierarchy: what game engines and other DCCs expect
    print(f"rigify bvh: {len(joints)} joints, {bvh.stat().st_size / 1e6:.2f} MB (all bones "
          f"{all_bones.stat().st_size / 1e6:.2f} MB), within {err:.4f} cm")


def test_rigify_fbx_reimports_in_place(rigify_blend, walk, tmp_path):
    """FBX of the Rigify result (deform bones): keys on the same frames, body joints in place
    (the IK limbs are keyed with ik_stretch off, so no bone carries a scale the round trip
    would have to reproduce)."""
    from addon import compat
    from addon.retarget import apply, export
    import addon_utils
    path, name = rigify_blend
    bpy.ops.wm.open_mainfile(filepath=str(path))
    ob = bpy.data.objects[name]
    apply.retarget_motion(walk, ob, "rigify", apply.RetargetOptions(), name="walk")
    fbx = export.export_armature(ob, tmp_path / "walk.fbx", "fbx")
    before = set(bpy.data.objects)
    addon_utils.enable("io_scene_fbx", default_set=False)
    assert bpy.ops.import_scene.fbx(filepath=str(fbx)) == {"FINISHED"}
    imp = _new_armature(before)
    assert len(imp.data.bones) < len(ob.data.bones) // 2  # deform bones (and the parents they need)
    keys = [k.co[0] for c in compat.iter_fcurves(imp.animation_data.action) for k in c.keyframe_points]
    assert (min(keys), max(keys)) == (1.0, 90.0)
    body = [b.name for b in imp.data.bones if b.name.startswith("DEF-") and any(
        k in b.name for k in ("thigh", "shin", "foot", "upper_arm", "forearm", "hand", "spine"))]
    err = _import_and_compare(ob, body, imp, (0, 44, 89))
    assert len(body) > 20 and err < 1.0, err
    print(f"rigify fbx: {len(imp.data.bones)} bones, {fbx.stat().st_size / 1e6:.2f} MB, within {err:.4f} cm")


def test_batch_rig_file_without_object_name(blender_addon, rigify_blend, walk, tmp_path):
    """``--rig rigify.blend`` (no ``:Object``): the generated rig is found, only it comes into the
    scene (not the metarig nor the widgets, which stay its bone shapes), and it is retargeted."""
    from addon import batch
    path, name = rigify_blend
    walk.save(tmp_path / "walk.npz")
    out = tmp_path / "out"
    assert batch.main([str(tmp_path / "walk.npz"), "-o", str(out), "--no-mesh", "--no-video", "--rig", str(path)]) == 0
    row = next(csv.DictReader(open(out / "summary.csv")))
    assert row["status"] == "ok" and row["rig"] == name and row["rig_preset"] == "rigify", row
    bpy.ops.wm.open_mainfile(filepath=row["blend"])
    rig = bpy.data.objects[name]
    in_scene = {o.name for o in bpy.context.scene.objects}
    assert not any(n.startswith(("metarig", "WGT")) for n in in_scene), in_scene
    assert rig.name in in_scene and not any(o.type == "ARMATURE" and o.name.startswith("metarig") for o in bpy.data.objects)
    assert rig.pose.bones["torso"].custom_shape is not None  # the controls keep their shapes
    assert rig.animation_data.action is not None


# ------------------------------------------------------------------ floor and height
def test_floor_correction_is_per_segment():
    from addon.retarget import solve as rm
    T = 120
    heights = np.zeros((T, 4))
    contacts = np.zeros((T, 4), bool)
    contacts[10:14, 0] = True
    heights[10:14, 0] = 0.5  # a few frames half a metre too high
    contacts[90:110, 2] = True
    heights[90:110, 2] = -0.02
    off = rm.floor_correction(heights, contacts, ramp=6)
    assert np.allclose(off[10:14], -0.5) and np.allclose(off[90:110], 0.02)
    assert np.all(off[:3] == 0) and np.all(off[21:83] == 0) and np.all(off[117:] == 0)  # no whole-clip shift
    assert 0 > off[16] > -0.5 and 0 > off[7] > -0.5  # fades in and out
    close = np.zeros((T, 4), bool)
    close[10:20, 0] = close[25:35, 0] = True
    h2 = np.where(close, 0.1, 0.0)
    off2 = rm.floor_correction(h2, close, ramp=6)
    assert np.allclose(off2[20:25], -0.1)  # short gaps bridged


@pytest.mark.parametrize("with_contacts", [True, False])
def test_scaled_rig_stands_on_a_raised_floor(walk, with_contacts):
    """The source walks on a box top 2 m up: the rig keeps its feet on that floor (heights are
    scaled about the source's feet, not about z = 0, which would lift it by (scale − 1) · 2 m).
    With the Motion's contacts even a forced scale of 1.3 stands on it (floor correction per
    contact segment); without them, at the rig's own scale, about the lowest sole point."""
    import copy
    from addon.retarget import apply
    raised = copy.deepcopy(walk)
    raised.trans = raised.trans + np.array([0, 0, 2.0], np.float32)
    raised.joints = raised.joints + np.array([0, 0, 2.0], np.float32)
    source = copy.deepcopy(raised)
    if not with_contacts:
        source.contacts = np.zeros_like(raised.contacts)
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig("Hero")
    scale = 1.3 if with_contacts else None
    res = apply.retarget_motion(source, ob, "mixamo", apply.RetargetOptions(scale=scale), name="walk")
    assert abs(res.scale - 1.3) < 1e-9 if with_contacts else 100 * (res.scale - 1) * 2.0 > 8.0
    # checked on the walk's true stance frames either way
    feet = base.check_feet(ob, raised, res, tol=0.02 if with_contacts else 0.03, floor_height=2.0)
    print(f"raised floor, scale {res.scale:.3f}, contacts {with_contacts}: feet within {100 * feet:.2f} cm "
          "of the box top")


# ------------------------------------------------------------------ batch options
def test_batch_reduce_option_and_bad_value(blender_addon, walk, tmp_path, capsys):
    from addon import batch
    bpy.ops.wm.read_homefile(use_empty=True)
    rigs.mixamo_rig("Hero")
    extra = bpy.data.objects.new("Stray", None)  # another object in the rig's file: not linked
    bpy.context.scene.collection.objects.link(extra)
    rig_blend = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_blend), check_existing=False)
    walk.save(tmp_path / "walk.npz")
    rows = {}
    for tag, extra_args in (("full", []), ("reduced", ["--reduce"]), ("coarse", ["--reduce", "3"])):
        out = tmp_path / tag
        assert batch.main([str(tmp_path / "walk.npz"), "-o", str(out), "--no-mesh", "--no-video",
                           "--rig", str(rig_blend), *extra_args]) == 0
        rows[tag] = next(csv.DictReader(open(out / "summary.csv")))
        assert rows[tag]["rig"] == "Hero", rows[tag]
    bpy.ops.wm.open_mainfile(filepath=rows["full"]["blend"])
    assert "Stray" not in bpy.data.objects  # --rig FILE without :Object: only the rig comes in
    keys = {k: int(r["rig_keys"]) for k, r in rows.items()}
    assert keys["coarse"] < keys["reduced"] < 0.5 * keys["full"], keys
    capsys.readouterr()
    code = batch.main([str(tmp_path / "walk.npz"), "-o", str(tmp_path / "bad"), "--rig", str(rig_blend),
                       "--reduce", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and not (tmp_path / "bad").exists(), err
    print("batch keys:", keys)
