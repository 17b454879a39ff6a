"""The clean-motion stage: smooth, level the ground, find contacts, lock planted feet.

The estimators leave the body where their camera model puts it; the floor and the contacts
are decided here, once. Order matters: a first level floor under the estimate's lowest foot
joints (``contacts.lowest_point``); smoothing (contacts need speeds without jitter); rough
contacts above that floor and the ground plane fitted to them (``contacts.ground_transform``);
contacts on the levelled motion (near the floor and slow in 3D, or standing still in the image
as the body's support: ``contacts.image_still_contacts``); foot locking (root offsets and leg
IK, ``engine.clean.footlock``).

Contacts are judged on a view of the motion whose root is smoothed much harder than the
output's (``contact_root_accel``): the root's monocular depth jitter would otherwise make a
planted foot look fast. The pose (feet relative to the pelvis) is used as estimated.
"""
import copy

import numpy as np

from ..body.kinematics import axis_angle_to_matrix, forward_kinematics, matrix_to_axis_angle
from .contacts import (CONTACT_JOINTS, ContactSettings, detect_contacts, ground_transform, image_still_contacts,
                       lowest_point)
from .footlock import lock_feet
from .smooth import SmoothingSettings, load_preset, rts_smooth_frames, smooth_motion, smooth_root

CONTACT_ROOT_ACCEL = 2.0   # m/s²: process noise of the root view used only to detect contacts
CONTACT_POINT_ACCEL = 5.0  # m/s²: ... and of the heel/toe trajectories in that view
MAX_LEG_SHIFT = 0.04       # m: leg IK moves a planted ankle at most this far (larger: doubtful)


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


def contact_view(motion, root_accel=CONTACT_ROOT_ACCEL, point_accel=CONTACT_POINT_ACCEL):
    """Joints (T,24,3) for contact detection only: the root smoothed hard (its depth jitter
    removed) and the heel/toe joints' world trajectories RTS-smoothed (noise = their σ)."""
    root = smooth_root(motion, root_accel)
    view = motion.joints.astype(np.float64) - motion.trans.astype(np.float64)[:, None] + root[:, None]
    idx = np.flatnonzero(motion.valid)
    if len(idx) >= 3 and point_accel:
        pts = view[idx][:, CONTACT_JOINTS]
        sig = np.nan_to_num(motion.joint_sigma[idx][:, CONTACT_JOINTS].astype(np.float64), nan=1.0)
        var = np.repeat(np.maximum(sig, 0.01)[..., None] ** 2, 3, axis=-1)
        view[np.ix_(idx, CONTACT_JOINTS)] = rts_smooth_frames(pts, var, idx, 1.0 / motion.fps, point_accel)
    return view


def clean_motion(motion, rest_joints, smoothing="light", lock=True, contact_settings=None,
                 root_lock=True, leg_lock=True, max_shift=MAX_LEG_SHIFT):
    """Return a cleaned copy of ``motion`` (smoothing: a preset name or SmoothingSettings;
    foot locking on/off).

    ``root_lock``: foot locking may move the root (default); ``leg_lock``: and bend the legs
    (two-bone IK), by at most ``max_shift`` metres per ankle."""
    cs = contact_settings or ContactSettings()
    settings = smoothing if isinstance(smoothing, SmoothingSettings) else load_preset(smoothing)
    # a first, level floor under the estimate's lowest foot joints (not soles: generous, so
    # planted feet whose sole sits a few cm off still count); rough contacts above it, their plane
    floor = lowest_point(motion.joints, motion.valid, offsets=0.0)
    m = smooth_motion(motion, rest_joints, settings)
    m = copy.deepcopy(m) if m is motion else m
    if not m.valid.any():
        return m
    view = contact_view(m)
    rough = detect_contacts(view - [0.0, 0.0, floor], m.fps, m.valid, cs)
    R, z = ground_transform(view, rough)
    m = apply_world_transform(m, R, z, rest_joints)
    view = contact_view(m)
    m.contacts = detect_contacts(view, m.fps, m.valid, cs) | image_still_contacts(
        m.keypoints2d, view, m.camera_intrinsics, m.camera_extrinsics, m.fps, m.valid)
    if lock and m.contacts.any():
        poses, trans, joints = lock_feet(m.poses.astype(np.float64), m.trans.astype(np.float64), rest_joints,
                                         m.contacts, m.valid.astype(bool), m.fps, root=root_lock,
                                         legs=leg_lock, max_shift=max_shift)
        m.poses, m.trans, m.joints = poses, trans, joints
    return m.astype_file()
