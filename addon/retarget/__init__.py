"""A Motion onto the user's own armature.

Without bpy (numpy and files only): ``solve`` (the per-bone world-space math), ``presets`` (the
JSON bone maps) and ``names`` (bone-name matching and the suggested map). With bpy: ``apply``
(the rest skeleton read from Blender, IK controls, refinement, F-curves, bone colours, NLA) and
``export`` (BVH/FBX).

Nothing is imported here, so the modules without bpy import on their own.
"""
