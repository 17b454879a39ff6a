"""The walking-skeleton estimator: SMPL-24 rotations fitted to MediaPipe's world landmarks.

No learned weights of ours: per frame, the analytic inverse kinematics of
``engine.estimate.ik`` on the body model's rest skeleton, the root placed by the camera model
(``engine.estimate.camera``). It is the baseline every learned model must beat.
"""
import numpy as np

from ..body.kinematics import forward_kinematics, matrix_to_axis_angle
from ..body.skeleton import JOINT_INDEX as J, NUM_JOINTS
from .camera import camera_model, rotation_extrinsics, solve_translation_per_focal
from .ik import landmark_rotations, visibility_sigma


def fit(obs, body, betas=None, focal=None, min_visibility=0.5, compensate_camera=True):
    """Observations → dict of Motion fields: poses, trans, betas, joints, joint_sigma, valid,
    camera_intrinsics, camera_extrinsics (the floor and the foot contacts are decided in
    clean-up, ``engine.clean.clean_motion``).

    Root translation comes from the camera model (``camera_model``): the hip midpoint's
    camera-frame position from 2D–3D least squares with each frame's focal length, carried
    into the world by that frame's camera rotation."""
    T = obs.num_frames
    valid = obs.valid.copy()
    betas = np.zeros(10) if betas is None else np.asarray(betas, np.float64)
    rest = body.rest_joints(betas)
    K, Rcam, focals = camera_model(obs, focal, compensate_camera)

    poses = np.full((T, 72), np.nan)
    trans = np.full((T, 3), np.nan)
    joints = np.full((T, NUM_JOINTS, 3), np.nan)
    sigma = np.full((T, NUM_JOINTS), np.nan)
    idx = np.flatnonzero(valid)
    if len(idx):
        lm_cam = obs.world[idx].astype(np.float64)
        vis = obs.keypoints[idx, :, 2].astype(np.float64)
        Rw = Rcam[idx]                               # world → camera per frame
        lm = np.einsum("tnj,tjk->tnk", lm_cam, Rw)   # camera → world: Rᵀ·x
        local, conf = landmark_rotations(lm, vis, rest)
        poses[idx] = matrix_to_axis_angle(local).reshape(-1, 72)
        # Hip midpoint in camera coordinates from the 2D keypoints (MediaPipe's world origin).
        wts = np.where(vis > min_visibility, vis, 0.0)
        kp = obs.keypoints[idx, :, :2].astype(np.float64)
        t_cam = solve_translation_per_focal(lm_cam, kp, wts, K, focals[idx])
        hip_mid_world = np.einsum("tj,tjk->tk", t_cam, Rw)
        rel = forward_kinematics(local, rest)
        fitted_hip_mid = 0.5 * (rel[:, J["left_hip"]] + rel[:, J["right_hip"]])
        trans[idx] = hip_mid_world - fitted_hip_mid
        joints[idx] = rel + trans[idx, None, :]
        sigma[idx] = visibility_sigma(conf)
    return dict(poses=poses, trans=trans, betas=betas, joints=joints, joint_sigma=sigma,
                valid=valid, camera_intrinsics=K, camera_extrinsics=rotation_extrinsics(Rcam))
