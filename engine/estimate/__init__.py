"""The estimation stage: observations in, SMPL-24 motion fields out.

Three estimators, each behind the same contract (``motion_fields``: a dict of Motion fields,
no floor and no contacts, which clean-up decides): the analytic ``baseline``, the ``temporal``
model and the per-frame D2A refinement (``refine``, which takes the temporal estimate). They
import only the shared pieces, never each other: the camera model (``camera``), the
landmark-to-rotation IK (``ik``), the networks' inputs (``network_inputs``), the onnxruntime
sessions and weights folder (``onnx_runtime``), the joint-to-rotation fit (``joint_fit``), and
the per-clip focal estimate (``focal``)."""
