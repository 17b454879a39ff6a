"""Pitch analysis UI: 'Analyse Pitch' operator, plot viewer, and a sidebar panel ('Mocap' tab)
with the events (click to jump), the metrics grouped with units, and the handedness override.

Registered by the add-on's ``register()`` through ``register()``/``unregister()`` below.
"""
import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..scene import pitch


def _rig(context):
    return pitch.motion_rig(context.active_object)


class MOCAP_OT_analyse_pitch(bpy.types.Operator):
    """Find the delivery events (timeline markers PKH, FC, FP, MER, BR, MIR) and compute the
    pitching metrics of the active imported rig; writes JSON/CSV/PNG reports next to its Motion file"""
    bl_idname = "mocap.analyse_pitch"
    bl_label = "Analyse Pitch"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _rig(context) is not None

    def execute(self, context):
        rig = _rig(context)
        try:
            res, stored = pitch.analyse_rig(rig, context.scene)
        except pitch.NotAPitch as exc:
            self.report({"ERROR"}, f"{rig.name}: not a pitch: {exc}")
            return {"CANCELLED"}
        except pitch.PitchError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for w in res.warnings:
            self.report({"WARNING"}, w)
        if res.flags:
            self.report({"WARNING"}, f"check: {len(res.flags)} value(s) outside the plausible range or "
                                     f"missing ({', '.join(res.flags)}); see the Pitch Analysis panel")
        br = stored["scene_frames"].get("ball_release")
        self.report({"INFO"}, f"{rig.name}: {res.handedness}HP ({res.handedness_source}), "
                              f"{len(stored['markers'])} events" + (f", release at frame {br}" if br else "")
                              + f"; report in {stored['report_dir']}")
        return {"FINISHED"}


class MOCAP_OT_pitch_show_plot(bpy.types.Operator):
    """Show a pitch report plot in an Image Editor"""
    bl_idname = "mocap.pitch_show_plot"
    bl_label = "Show Pitch Plot"

    index: IntProperty(default=0, min=0, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        r = pitch.result(_rig(context))
        return bool(r and r.get("plots"))

    def execute(self, context):
        plots = pitch.result(_rig(context))["plots"]
        path = plots[min(self.index, len(plots) - 1)]
        try:
            img = pitch.show_image(context, path)
        except RuntimeError as exc:
            self.report({"ERROR"}, f"cannot open {path}: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"image '{img.name}' loaded")
        return {"FINISHED"}


class MOCAP_OT_pitch_open_folder(bpy.types.Operator):
    """Open the folder with the pitch report (JSON, CSV, PNG)"""
    bl_idname = "mocap.pitch_open_folder"
    bl_label = "Open Report Folder"

    @classmethod
    def poll(cls, context):
        r = pitch.result(_rig(context))
        return bool(r and r.get("report_dir"))

    def execute(self, context):
        return bpy.ops.wm.path_open(filepath=pitch.result(_rig(context))["report_dir"])


class MOCAP_OT_pitch_goto(bpy.types.Operator):
    """Jump to this event's frame"""
    bl_idname = "mocap.pitch_goto"
    bl_label = "Go to Event"

    frame: IntProperty(options={"SKIP_SAVE"})
    label: StringProperty(options={"SKIP_SAVE", "HIDDEN"})

    def execute(self, context):
        context.scene.frame_set(self.frame)
        return {"FINISHED"}


class MOCAP_PT_pitch(bpy.types.Panel):
    bl_label = "Pitch Analysis"
    bl_idname = "MOCAP_PT_pitch"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"

    def draw(self, context):
        from engine.pitch.report import (CAVEAT_TEXT, EVENT_LABELS, EVENT_NAMES, METRIC_CAVEATS,
                                         METRIC_GROUPS, format_metric)
        labels = {**EVENT_NAMES, **{n: lab for _, items in METRIC_GROUPS for n, lab, _ in items}}
        layout = self.layout
        rig = _rig(context)
        if rig is None:
            layout.label(text="Select an imported rig", icon="INFO")
            return
        res = pitch.result(rig)
        col = layout.column(align=True)
        col.label(text=rig.name, icon="OUTLINER_OB_ARMATURE")
        col.operator(MOCAP_OT_analyse_pitch.bl_idname, icon="PLAY",
                     text="Re-analyse Pitch" if res else "Analyse Pitch")
        box = layout.box()
        row = box.row(align=True)
        if res and "handedness" in res:
            src = "detected" if res.get("handedness_source") == "auto" else "set by you"
            row.label(text=f"Throws: {'Right' if res['handedness'] == 'R' else 'Left'} ({src})",
                      icon="HAND")
        else:
            row.label(text="Throws: —", icon="HAND")
        box.prop(rig, "mocap_pitch_handedness", text="Handedness")
        box.prop(rig, "mocap_pitch_home", text="Home")
        box.prop(rig, "mocap_pitch_height", text="Height (0 = estimate)")
        if res and res.get("settings", {}).get("handedness") != rig.mocap_pitch_handedness \
                or res and res.get("settings", {}).get("home") != rig.mocap_pitch_home:
            box.operator(MOCAP_OT_analyse_pitch.bl_idname, text="Re-analyse with these settings", icon="FILE_REFRESH")
        if not res:
            return
        if res.get("status") == "not_a_pitch":
            box = layout.box()
            box.label(text="Not a pitch", icon="CANCEL")
            box.label(text=res.get("reason", ""))
            return
        flags = res.get("flags", {})
        layout.label(text=f"Status: {res.get('status', 'ok')}" + (f" ({len(flags)} flagged)" if flags else ""),
                     icon="ERROR" if flags else "CHECKMARK")
        for w in res.get("warnings", []):
            layout.label(text=w, icon="ERROR")
        box = layout.box()
        box.label(text="Events (frame, time)", icon="MARKER_HLT")
        frames = res.get("scene_frames", {})
        for key, label in EVENT_LABELS.items():
            f = frames.get(key)
            t = res["events"].get(key, {}).get("time_s")
            row = box.row(align=True)
            row.label(text=f"{label}  {EVENT_NAMES[key]}")
            if f is None:
                row.label(text="not found", icon="ERROR")
            else:
                op = row.operator(MOCAP_OT_pitch_goto.bl_idname, text=f"{f}  ({t:.3f} s)" if t is not None else str(f))
                op.frame, op.label = f, label
        metrics = res.get("metrics", {})
        h = res.get("height_m")
        for group, items in METRIC_GROUPS:
            box = layout.box()
            box.label(text=group)
            grid = box.grid_flow(row_major=True, columns=2, even_columns=False, align=True)
            for name, label, unit in items:
                icon = "ERROR" if name in flags else "INFO" if name in METRIC_CAVEATS else "NONE"
                grid.label(text=label, icon=icon)
                grid.label(text=format_metric(metrics.get(name), unit))
        if flags:   # implausible values and missing events (presets/pitch/ranges.json)
            box = layout.box()
            box.label(text="Check: outside the plausible range", icon="ERROR")
            for name, why in flags.items():
                box.label(text=f"{labels.get(name, name)}: {why}")
        shown = [k for k in CAVEAT_TEXT if any(METRIC_CAVEATS.get(n) == k for n in metrics)]
        if shown:   # why the marked metrics miss marker-based values (docs/pitch_validation.md)
            box = layout.box()
            box.label(text="Marked: beyond tolerance vs marker mocap", icon="INFO")
            for k in shown:
                box.label(text=CAVEAT_TEXT[k])
        if h:
            layout.label(text=f"Height {h:.2f} m ({res.get('height_source', '')})")
        col = layout.column(align=True)
        titles = ("Kinematic Sequence", "Angles")
        for i, _ in enumerate(res.get("plots", [])):
            op = col.operator(MOCAP_OT_pitch_show_plot.bl_idname, icon="IMAGE_DATA",
                              text=f"Show {titles[i] if i < len(titles) else f'Plot {i + 1}'}")
            op.index = i
        col.operator(MOCAP_OT_pitch_open_folder.bl_idname, icon="FILE_FOLDER")


CLASSES = (MOCAP_OT_analyse_pitch, MOCAP_OT_pitch_show_plot, MOCAP_OT_pitch_open_folder,
           MOCAP_OT_pitch_goto, MOCAP_PT_pitch)
_OBJECT_PROPS = {
    "mocap_pitch_handedness": EnumProperty(name="Handedness", items=pitch.HANDEDNESS_ITEMS, default="AUTO",
                                           description="Throwing arm for the pitch analysis"),
    "mocap_pitch_home": EnumProperty(name="Home Plate", items=pitch.HOME_ITEMS, default="AUTO",
                                     description="Direction of home plate in the scene"),
    "mocap_pitch_height": FloatProperty(name="Height", default=0.0, min=0.0, max=2.5, unit="LENGTH",
                                        description="Pitcher's height for stride length in % of height "
                                                    "(0: estimate from segment lengths)"),
}


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for name, prop in _OBJECT_PROPS.items():
        setattr(bpy.types.Object, name, prop)


def unregister():
    for name in _OBJECT_PROPS:
        if hasattr(bpy.types.Object, name):
            delattr(bpy.types.Object, name)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
