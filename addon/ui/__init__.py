"""The add-on's panels: their operators, properties and draw code (bpy).

``import_panel`` (the main sidebar panel), ``pitch_panel`` (pitch analysis), ``retarget_panel``
(bone map, retarget, export). Each module with its own classes has ``register``/``unregister``.
"""
