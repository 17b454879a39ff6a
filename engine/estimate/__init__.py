"""The estimation stage: observations in, SMPL-24 motion fields out — the camera model, the
analytic baseline, the temporal model and the per-frame D2A refinement (run with onnxruntime),
their network inputs, the joint-to-rotation fit, and the per-clip focal estimate."""
