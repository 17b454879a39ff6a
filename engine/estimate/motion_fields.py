"""What every estimator returns: a dict of Motion fields, and the Motion made of it.

The estimators (``baseline.fit``, ``temporal.fit``, ``refine.refine``) take observations and
return ``MOTION_FIELDS`` in the camera model's world (``engine.estimate.camera``: level first
camera at the origin). They neither put the body on a floor nor decide foot contacts: the
clean-up stage (``engine.clean.clean_motion``) does both, once, for every estimator. The
temporal estimate carries one extra field, ``weak_camera``, the refinement's input.
"""
import numpy as np

MOTION_FIELDS = ("poses", "trans", "betas", "joints", "joint_sigma", "valid", "camera_intrinsics",
                 "camera_extrinsics")


def to_motion(fields, obs, body_model, **meta):
    """A Motion (file dtypes) of an estimate's ``MOTION_FIELDS`` and the Observations it came
    from (fps, keypoints, frame size); ``meta``: further Motion fields (estimator, source, ...).
    Its contacts are all False until clean-up decides them."""
    from ..motion import Motion
    T = len(fields["poses"])
    return Motion(fps=obs.fps, keypoints2d=obs.keypoints, frame_size=list(obs.frame_size),
                  body_model=body_model, contacts=np.zeros((T, 4), bool),
                  **{k: fields[k] for k in MOTION_FIELDS}, **meta).astype_file()
