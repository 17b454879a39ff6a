"""Blender data from a Motion: ``build_scene`` (armature, body mesh, bulk keys, camera, video
plane; bpy), ``convert`` (the rig convention and its math; numpy only), ``keyreduce`` (fewer
Bezier keys within a tolerance; numpy only), ``pitch`` (delivery events as timeline markers, the
analysis kept on the rig; bpy).

Nothing is imported here, so the numpy-only modules import without bpy.
"""
