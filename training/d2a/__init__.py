"""Seed 0, the D2A-HMR per-frame refinement network (with seed 1, ImpHMR, as a training branch):
``model``, ``rle``, ``imphmr``, the coarse mesh (``coarse_mesh``, ``coarse_mesh_file``), its frame
pool (``data``), ``train``, ONNX ``export``, the ``ablation`` table and the bench plugin (``bench``)."""
