"""Learned models (torch, training and ONNX export only; the engine runs the ONNX files)."""
