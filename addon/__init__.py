"""Video Mocap: turn a video into an animated SMPL-24 armature (Blender 4.2+ extension).

Blender side only (bpy, mathutils); the engine (pure Python, never bpy) is found by
``enginepath.ensure_engine`` and called in-process. Version differences live in ``compat``.
"""
from .enginepath import ensure_engine

ensure_engine()

import bpy  # noqa: E402
from bpy.props import BoolProperty, FloatProperty, StringProperty  # noqa: E402

from . import batch, operators, panel, preferences  # noqa: E402
from . import pitch_ui  # noqa: E402
from . import ui_retarget  # noqa: E402

_CLASSES = (preferences.MOCAP_AP_preferences,) + operators.CLASSES + panel.CLASSES
_WM_PROPS = {
    "mocap_running": BoolProperty(default=False, options={"SKIP_SAVE"}),
    "mocap_cancel_requested": BoolProperty(default=False, options={"SKIP_SAVE"}),
    "mocap_progress": FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0,
                                    options={"SKIP_SAVE"}),
    "mocap_message": StringProperty(default="", options={"SKIP_SAVE"}),
}
_cli_handle = None


def register():
    global _cli_handle
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    for name, prop in _WM_PROPS.items():
        setattr(bpy.types.WindowManager, name, prop)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    pitch_ui.register()
    ui_retarget.register()
    _cli_handle = batch.register_cli()


def unregister():
    global _cli_handle
    batch.unregister_cli(_cli_handle)
    _cli_handle = None
    pitch_ui.unregister()
    ui_retarget.unregister()
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    for name in _WM_PROPS:
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
