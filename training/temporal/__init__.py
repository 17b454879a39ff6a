"""Seed 2, the part-based uncertainty-aware temporal model: ``model``, its ``losses``, training
windows (``dataset``, ``window_pool``), ``train``, ONNX ``export`` and the bench plugin (``bench``)."""
