"""Video → SMPL-style 3D body motion. Pure Python; never imports bpy.

Run it alone with ``python -m engine VIDEO -o motion.npz``.
"""
__version__ = "0.1.0"
