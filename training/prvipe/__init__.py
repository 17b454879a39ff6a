"""Pr-VIPE, the probabilistic view-invariant pose embedding the temporal model takes as its
static feature: ``model`` and ``train`` (its ONNX export is ``training.temporal.export``)."""
