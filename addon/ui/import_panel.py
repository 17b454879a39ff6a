"""Sidebar panel in the 3D viewport (N panel, 'Mocap' tab)."""
import bpy

from ..preferences import get_prefs


class MOCAP_PT_main(bpy.types.Panel):
    bl_label = "Video Mocap"
    bl_idname = "MOCAP_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"

    def draw(self, context):
        layout = self.layout
        wm = context.window_manager
        col = layout.column(align=True)
        col.operator("mocap.import_video", icon="FILE_MOVIE")
        col.operator("mocap.import_motion", icon="ARMATURE_DATA")
        if wm.mocap_running:
            box = layout.box()
            box.label(text=wm.mocap_message or "working…", icon="TIME")
            box.prop(wm, "mocap_progress", text="Progress", slider=True)
            box.operator("mocap.cancel", icon="CANCEL")
        prefs = get_prefs(context)
        sub = layout.column(align=True)
        sub.label(text=f"Device: {prefs.device} · Smoothing: {prefs.smoothing}")
        sub.label(text="Body: " + (bpy.path.basename(prefs.smpl_path) if prefs.smpl_path else "open body"))
        ob = context.active_object
        if ob is not None and "mocap_source" in ob:
            layout.label(text=f"Clip: {bpy.path.basename(ob['mocap_source']) or ob.name}", icon="OUTLINER_OB_ARMATURE")
            if "mocap_reprojection_median" in ob:
                med, p90 = ob["mocap_reprojection_median"], ob["mocap_reprojection_p90"]
                box = layout.box()
                box.label(text=f"On the image: median {med:.1f} %, p90 {p90:.1f} % of height",
                          icon="CHECKMARK" if p90 <= 4.0 else "ERROR")
                box.label(text="Per frame: the armature's 'mocap_reprojection' curve")


CLASSES = (MOCAP_PT_main,)
