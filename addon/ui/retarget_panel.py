"""Retarget UI (thin): settings on the scene, a bone-map list, operators, and a sidebar panel.

The bone map is editable: load a preset into it, or let it be suggested from the bone names,
fix rows (target bone → SMPL joint, alignment rule), save it as a preset of your own.
"""
from pathlib import Path

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)
from bpy_extras.io_utils import ExportHelper

from engine.body.skeleton import JOINT_NAMES

from ..scene.keyreduce import DEFAULT_TOLERANCE_CM
from ..retarget.apply import RetargetOptions

JOINT_ITEMS = tuple((j, j, "") for j in JOINT_NAMES)
RULE_ITEMS = (("AUTO", "Auto", "none for the pelvis, parent for leaves, swing otherwise"),
              ("swing", "Swing", "Point the bone where the source bone points (rest alignment)"),
              ("parent", "Parent", "Keep the rest shape relative to the parent (leaf bones)"),
              ("none", "None", "Only the facing is aligned (hips, identical rest poses)"))
CUSTOM = "CUSTOM"


def _preset_items(self, context):
    from ..retarget import presets
    items = [(pid, name, desc) for pid, (name, desc, _) in presets.list_presets().items()]
    items.append((CUSTOM, "Custom (bone map below)", "The bone map in the list below"))
    _preset_items.cache = items  # Blender needs the strings kept alive
    return items


def _is_armature(self, ob):
    return ob.type == "ARMATURE"


class MOCAP_PG_bone_map_item(bpy.types.PropertyGroup):
    target: StringProperty(name="Bone", description="Bone of the target armature")
    joint: EnumProperty(name="SMPL Joint", items=JOINT_ITEMS, default="pelvis")
    rule: EnumProperty(name="Alignment", items=RULE_ITEMS, default="AUTO")


class MOCAP_PG_retarget(bpy.types.PropertyGroup):
    motion_path: StringProperty(name="Motion", subtype="FILE_PATH",
                                description="Motion file (.npz); empty: the active SMPL armature's file")
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_armature,
                            description="The armature to animate")
    preset: EnumProperty(name="Preset", items=_preset_items, description="Bone map of the target rig")
    root_motion: EnumProperty(name="Root Motion", items=tuple(
        (k, n, d) for k, n, d in (("hips", "Hips Bone", "The hips bone carries all translation"),
                                  ("root_bone", "Root Bone", "Ground projection on the rig's root bone"),
                                  ("object", "Object", "Ground projection on the armature object"),
                                  ("in_place", "In Place", "No horizontal translation"))), default="hips")
    floor: BoolProperty(name="Feet on Floor", default=True,
                        description="Move the hips so the feet meet the floor during foot contacts")
    reduce: BoolProperty(name="Reduce Keys", default=RetargetOptions.reduce,
                         description="Fewer Bezier keys, every bone within the tolerance in world space")
    tolerance: FloatProperty(name="Tolerance (cm)", default=DEFAULT_TOLERANCE_CM, min=0.01, max=20.0,
                             description="Largest world-space deviation of any bone (head or tail) "
                                         "that the reduced keys may cause (centimetres)")
    confidence: BoolProperty(name="Confidence", default=True,
                             description="Animated custom property mocap_confidence per mapped bone")
    bone_colors: BoolProperty(name="Bone Colours", default=False,
                              description="Colour mapped bones by mean confidence (red: weak, green: sure)")
    ik: BoolProperty(name="IK Controls", default=True,
                     description="Key IK controls and poles of limbs that are in IK (Rigify)")
    root_bone: StringProperty(name="Root Bone", description="Custom map: bone for root-bone root motion")
    bone_map: CollectionProperty(type=MOCAP_PG_bone_map_item)
    bone_map_index: IntProperty()
    export_format: EnumProperty(name="Format", items=(("BVH", "BVH", ""), ("FBX", "FBX", "")), default="FBX")


def settings(context):
    return context.scene.mocap_retarget


def custom_preset(s):
    bones = {it.target: it.joint for it in s.bone_map if it.target}
    rules = {it.target: it.rule for it in s.bone_map if it.target and it.rule != "AUTO"}
    d = {"name": "Custom", "bones": bones}
    if rules:
        d["rules"] = rules
    if s.root_bone:
        d["root_bone"] = s.root_bone
    return d


def _fill_map(s, bones, rules=None):
    s.bone_map.clear()
    for b, j in bones.items():
        it = s.bone_map.add()
        it.target, it.joint = b, j
        it.rule = (rules or {}).get(b, "AUTO")
    s.bone_map_index = 0


def _target(context):
    s = settings(context)
    ob = s.target
    if ob is None and context.active_object is not None and context.active_object.type == "ARMATURE":
        ob = context.active_object
    return ob


class MOCAP_OT_rig_map_suggest(bpy.types.Operator):
    """Suggest a bone map from the target's bone names"""
    bl_idname = "mocap.rig_map_suggest"
    bl_label = "Suggest from Names"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..retarget import names
        ob = _target(context)
        if ob is None:
            self.report({"ERROR"}, "choose a target armature")
            return {"CANCELLED"}
        s = settings(context)
        _fill_map(s, names.suggest_mapping(ob))
        s.preset = CUSTOM
        self.report({"INFO"}, f"{len(s.bone_map)} bones suggested; check and edit the map")
        return {"FINISHED"}


class MOCAP_OT_rig_map_from_preset(bpy.types.Operator):
    """Copy the chosen preset into the editable bone map"""
    bl_idname = "mocap.rig_map_from_preset"
    bl_label = "Edit Preset as Custom Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..retarget import names, presets
        s = settings(context)
        if s.preset == CUSTOM:
            return {"CANCELLED"}
        p = presets.load_preset(s.preset)
        ob = _target(context)
        bones, rules = p["bones"], p.get("rules", {})
        if ob is not None:
            bones, rules, root, _ = names.resolve_preset(p, ob)
            s.root_bone = root or ""
        _fill_map(s, bones, rules)
        s.preset = CUSTOM
        return {"FINISHED"}


class MOCAP_OT_rig_map_add(bpy.types.Operator):
    """Add a row to the bone map"""
    bl_idname = "mocap.rig_map_add"
    bl_label = "Add Bone"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = settings(context)
        s.bone_map.add()
        s.bone_map_index = len(s.bone_map) - 1
        return {"FINISHED"}


class MOCAP_OT_rig_map_remove(bpy.types.Operator):
    """Remove the selected row of the bone map"""
    bl_idname = "mocap.rig_map_remove"
    bl_label = "Remove Bone"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = settings(context)
        if 0 <= s.bone_map_index < len(s.bone_map):
            s.bone_map.remove(s.bone_map_index)
            s.bone_map_index = max(0, s.bone_map_index - 1)
        return {"FINISHED"}


class MOCAP_OT_rig_preset_save(bpy.types.Operator):
    """Save the bone map as a rig preset of your own"""
    bl_idname = "mocap.rig_preset_save"
    bl_label = "Save Map as Preset"

    name: StringProperty(name="Name", default="My Rig")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        from ..retarget import presets
        s = settings(context)
        d = custom_preset(s)
        if not d["bones"]:
            self.report({"ERROR"}, "the bone map is empty")
            return {"CANCELLED"}
        stem = bpy.path.clean_name(self.name).lower() or "rig"
        path = presets.user_preset_dir(create=True) / f"{stem}.json"
        presets.save_preset(path, self.name, d["bones"], d.get("rules"), d.get("root_bone"))
        s.preset = stem
        self.report({"INFO"}, f"saved {path}")
        return {"FINISHED"}


def _motion_path(context, s):
    if s.motion_path:
        return bpy.path.abspath(s.motion_path)
    ob = context.active_object
    for cand in (ob, *(o for o in context.scene.objects if o.type == "ARMATURE")):
        if cand is not None and cand.get("mocap_motion_path"):
            return bpy.path.abspath(cand["mocap_motion_path"])
    return None


class MOCAP_OT_retarget(bpy.types.Operator):
    """Retarget a Motion onto the target armature with the chosen preset or bone map"""
    bl_idname = "mocap.retarget"
    bl_label = "Retarget Motion"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"},
                             description="Motion file; default: the panel's, else the SMPL armature's")

    def execute(self, context):
        from engine.errors import EngineError
        from engine.motion import load_motion
        from ..retarget import apply
        s = settings(context)
        ob = _target(context)
        if ob is None:
            self.report({"ERROR"}, "choose a target armature")
            return {"CANCELLED"}
        path = bpy.path.abspath(self.filepath) if self.filepath else _motion_path(context, s)
        if not path or not Path(path).is_file():
            self.report({"ERROR"}, "choose a Motion file (.npz)")
            return {"CANCELLED"}
        preset = custom_preset(s) if s.preset == CUSTOM else s.preset
        opts = apply.RetargetOptions(root_motion=s.root_motion, floor=s.floor, reduce=s.reduce,
                                        tolerance_cm=s.tolerance, confidence=s.confidence,
                                        bone_colors=s.bone_colors, ik=s.ik)
        try:
            motion = load_motion(path)
            stem = Path(path).stem
            stem = stem[: -len(".motion")] if stem.endswith(".motion") else stem
            res = apply.retarget_motion(motion, ob, preset, opts, context.scene, name=stem)
        except (EngineError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        msg = f"Retargeted {stem} onto {ob.name}: {len(res.bones)} bones, scale {res.scale:.3f}, {res.keys} keys"
        if res.missing:
            msg += f"; not in the rig: {', '.join(res.missing[:5])}" + ("…" if len(res.missing) > 5 else "")
        self.report({"WARNING"} if res.missing else {"INFO"}, msg)
        return {"FINISHED"}


class MOCAP_OT_export_anim(bpy.types.Operator, ExportHelper):
    """Export the target armature's animation as BVH or FBX (re-imports in place with default settings)"""
    bl_idname = "mocap.export_anim"
    bl_label = "Export Animation"

    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx;*.bvh", options={"HIDDEN"})
    format: EnumProperty(name="Format", items=(("BVH", "BVH", ""), ("FBX", "FBX", "")), default="FBX")
    deform_only: BoolProperty(name="Deform Bones Only", default=True,
                              description="The deform skeleton (what a game engine or another program "
                                          "expects); off: every bone of the rig")

    def invoke(self, context, event):
        self.format = settings(context).export_format
        self.filename_ext = "." + self.format.lower()
        return super().invoke(context, event)

    def execute(self, context):
        from ..retarget import export
        ob = _target(context)
        if ob is None:
            self.report({"ERROR"}, "choose a target armature")
            return {"CANCELLED"}
        from ..enginepath import ensure_engine
        ensure_engine()
        from engine.errors import EngineError
        from engine.outputs import check_output_file
        path = Path(bpy.path.abspath(self.filepath)).with_suffix("." + self.format.lower())
        inputs = [bpy.data.filepath or None] + [str(v) for k, v in ob.items() if k == "mocap_motion_path" and v]
        try:  # never over the open .blend or a Motion file; a folder or unwritable place: one line
            path = check_output_file(path, inputs=inputs, what="export")
            export.export_armature(ob, path, self.format, bones="deform" if self.deform_only else "all")
        except (EngineError, OSError, RuntimeError, ValueError) as exc:
            self.report({"ERROR"}, f"export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"exported {path}")
        return {"FINISHED"}


class MOCAP_UL_bone_map(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        ob = _target(context)
        row = layout.row(align=True)
        if ob is not None:
            row.prop_search(item, "target", ob.data, "bones", text="")
        else:
            row.prop(item, "target", text="")
        row.prop(item, "joint", text="")
        row.prop(item, "rule", text="")


class MOCAP_PT_retarget(bpy.types.Panel):
    bl_label = "Retarget"
    bl_idname = "MOCAP_PT_retarget"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = settings(context)
        layout = self.layout
        col = layout.column()
        col.prop(s, "motion_path")
        col.prop(s, "target")
        col.prop(s, "preset")
        if s.preset == CUSTOM:
            row = layout.row()
            row.template_list("MOCAP_UL_bone_map", "", s, "bone_map", s, "bone_map_index", rows=6)
            sub = row.column(align=True)
            sub.operator("mocap.rig_map_add", icon="ADD", text="")
            sub.operator("mocap.rig_map_remove", icon="REMOVE", text="")
            row = layout.row(align=True)
            row.operator("mocap.rig_map_suggest", icon="VIEWZOOM")
            row.operator("mocap.rig_preset_save", icon="FILE_TICK")
            ob = _target(context)
            if ob is not None:
                layout.prop_search(s, "root_bone", ob.data, "bones")
        else:
            layout.operator("mocap.rig_map_from_preset", icon="GREASEPENCIL")
        col = layout.column(align=True)
        col.prop(s, "root_motion")
        col.prop(s, "floor")
        col.prop(s, "ik")
        row = col.row(align=True)
        row.prop(s, "reduce")
        sub = row.row(align=True)
        sub.active = s.reduce
        sub.prop(s, "tolerance")
        row = col.row(align=True)
        row.prop(s, "confidence")
        row.prop(s, "bone_colors")
        layout.operator("mocap.retarget", icon="ARMATURE_DATA")
        row = layout.row(align=True)
        row.prop(s, "export_format", text="")
        row.operator("mocap.export_anim", icon="EXPORT")


CLASSES = (MOCAP_PG_bone_map_item, MOCAP_PG_retarget, MOCAP_OT_rig_map_suggest, MOCAP_OT_rig_map_from_preset,
           MOCAP_OT_rig_map_add, MOCAP_OT_rig_map_remove, MOCAP_OT_rig_preset_save, MOCAP_OT_retarget,
           MOCAP_OT_export_anim, MOCAP_UL_bone_map, MOCAP_PT_retarget)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mocap_retarget = PointerProperty(type=MOCAP_PG_retarget)


def unregister():
    if hasattr(bpy.types.Scene, "mocap_retarget"):
        del bpy.types.Scene.mocap_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
