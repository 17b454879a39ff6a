"""Training-only code (may import torch); never shipped in the Blender extension.

One package per learned model: ``training.temporal`` (seed 2), ``training.d2a`` (seed 0, with
seed 1 as its training branch), ``training.prvipe``. Shared: ``training.data`` (CMU BVH reader,
BVH → SMPL-24, subject splits, the synthetic observation generator and detector noise model),
``training.eval`` (metrics, multi-camera references, overlays), ``training.bench`` (the H1/H2/R1
accuracy benchmarks and the speed bench), ``training.geometry`` (torch 6D rotations and SMPL
kinematics), ``training.loop`` (configs, checkpoints, logging and the training loop's tail) and
``training.tune_smoothing``.
"""
