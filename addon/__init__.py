"""Video Mocap: turn a video into an animated SMPL-24 armature (Blender 4.2+ extension).

Blender side only (bpy, mathutils); the engine (pure Python, never bpy) is found by
``enginepath.ensure_engine`` and called in-process. Version differences live in ``compat``.

Layout, by job:

* ``ui/``: panels, their operators and draw code (import, pitch, retarget).
* ``scene/``: building Blender data from a Motion (armature, body, keys, camera, video plane),
  the pure conversion math (``convert``) and key reduction (``keyreduce``), pitch events on the
  timeline (``pitch``).
* ``retarget/``: a Motion onto the user's rig; ``solve``, ``presets`` and ``names`` are numpy
  and file work without bpy, ``apply`` writes the keys, ``export`` writes BVH/FBX.
* At the top: what several of those share or what Blender calls by the add-on's own name:
  ``operators`` (File > Import), ``batch`` (the headless command), ``jobs`` (the engine thread),
  ``compat``, ``enginepath`` and ``preferences`` (Blender keys add-on preferences by the
  package name).

Importing the package needs no bpy (the pure modules import on their own, e.g. in tests);
``register`` imports the Blender side.
"""
from .enginepath import ensure_engine

ensure_engine()

_cli_handle = None


def _wm_props():
    from bpy.props import BoolProperty, FloatProperty, StringProperty
    return {
        "mocap_running": BoolProperty(default=False, options={"SKIP_SAVE"}),
        "mocap_cancel_requested": BoolProperty(default=False, options={"SKIP_SAVE"}),
        "mocap_progress": FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0,
                                        options={"SKIP_SAVE"}),
        "mocap_message": StringProperty(default="", options={"SKIP_SAVE"}),
    }


def _classes():
    from . import operators, preferences
    from .ui import import_panel
    return (preferences.MOCAP_AP_preferences,) + operators.CLASSES + import_panel.CLASSES


def register():
    global _cli_handle
    import bpy
    from . import batch, operators
    from .ui import pitch_panel, retarget_panel
    for cls in _classes():
        bpy.utils.register_class(cls)
    for name, prop in _wm_props().items():
        setattr(bpy.types.WindowManager, name, prop)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    pitch_panel.register()
    retarget_panel.register()
    _cli_handle = batch.register_cli()


def unregister():
    global _cli_handle
    import bpy
    from . import batch, operators
    from .ui import pitch_panel, retarget_panel
    batch.unregister_cli(_cli_handle)
    _cli_handle = None
    pitch_panel.unregister()
    retarget_panel.unregister()
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    for name in _wm_props():
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
