"""Training-only code (may import torch); never shipped in the Blender extension.

``training.data``: CMU BVH reader, CMU → SMPL-24 retargeting, subject splits, the synthetic
observation generator. ``training.bench``: the H1/H2 benchmarks with an estimator registry.
"""
