"""The clean-motion stage: smooth, level the ground, find contacts, lock planted feet.

Order matters: smoothing first (contacts need speeds without jitter), then the ground plane
from the smoothed feet, then contacts on the levelled motion, then foot locking.
"""
import copy

import numpy as np

from .body.kinematics import axis_angle_to_matrix, forward_kinematics, matrix_to_axis_angle
from .contacts import detect_contacts, ground_transform
from .footlock import lock_feet
from .smooth import load_preset, smooth_motion


def apply_world_transform(motion, R, z_shift, rest_joints):
    """Rotate the world by R (3,3) and lift it by z_shift; poses, trans, joints and camera follow.

    A world rotation composes onto the global orientation; the root translation transforms
    so the pelvis (rest joint 0 + trans) lands where R·pelvis + shift says.
    """
    m = copy.deepcopy(motion)
    v = m.valid.astype(bool)
    shift = np.array([0.0, 0.0, z_shift])
    if v.any():
        rot = axis_angle_to_matrix(m.poses[v].reshape(-1, 24, 3).astype(np.float64))
        rot[:, 0] = R @ rot[:, 0]
        j0 = rest_joints[0]
        m.trans[v] = (m.trans[v] + j0) @ R.T + shift - j0
        m.poses[v] = matrix_to_axis_angle(rot).reshape(-1, 72)
        m.joints[v] = forward_kinematics(rot, rest_joints, m.trans[v].astype(np.float64))
    # world→camera: x_cam = E·x_world_old = E·Rᵀ(x_world_new − shift)
    inv = np.eye(4)
    inv[:3, :3] = R.T
    inv[:3, 3] = -R.T @ shift
    m.camera_extrinsics = (m.camera_extrinsics.astype(np.float64) @ inv).astype(np.float32)
    return m.astype_file()


def clean_motion(motion, rest_joints, smoothing="light", lock=True):
    """Return a cleaned copy of ``motion`` (smoothing preset name, foot locking on/off)."""
    m = smooth_motion(motion, rest_joints, load_preset(smoothing))
    m = copy.deepcopy(m) if m is motion else m
    if not m.valid.any():
        return m
    joints = m.joints.astype(np.float64)
    rough = detect_contacts(joints, m.fps, m.valid)
    R, z = ground_transform(joints, rough)
    m = apply_world_transform(m, R, z, rest_joints)
    m.contacts = detect_contacts(m.joints.astype(np.float64), m.fps, m.valid)
    if lock and m.contacts.any():
        poses, joints = lock_feet(m.poses.astype(np.float64), m.trans.astype(np.float64), rest_joints,
                                  m.contacts, m.valid.astype(bool), m.fps)
        m.poses, m.joints = poses, joints
    return m.astype_file()
