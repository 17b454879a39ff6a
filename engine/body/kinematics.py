"""Forward kinematics and linear blend skinning in numpy (after smplx's ``lbs.py``).

All functions are batched over any leading axes and pure (no state). Rotations are
3×3 matrices here; use scipy.spatial.transform.Rotation to convert from axis-angle.
"""
import numpy as np
from scipy.spatial.transform import Rotation

from .skeleton import PARENTS


def axis_angle_to_matrix(aa):
    """(..., 3) axis-angle → (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, dtype=np.float64)
    shape = aa.shape[:-1]
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(shape + (3, 3))


def matrix_to_axis_angle(rot):
    """(..., 3, 3) rotation matrices → (..., 3) axis-angle."""
    rot = np.asarray(rot, dtype=np.float64)
    shape = rot.shape[:-2]
    return Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec().reshape(shape + (3,))


def global_transforms(rot_mats, rest_joints, parents=PARENTS):
    """Chain local rotations down the tree.

    rot_mats: (..., J, 3, 3) local rotations; rest_joints: (..., J, 3) rest joint positions.
    Returns (..., J, 4, 4) world transforms of each joint frame: rotation about the joint and
    its posed position in the translation column (root at its rest position).
    """
    rot_mats = np.asarray(rot_mats, dtype=np.float64)
    rest_joints = np.broadcast_to(np.asarray(rest_joints, dtype=np.float64), rot_mats.shape[:-1])
    J = rot_mats.shape[-3]
    rel = rest_joints.copy()
    rel[..., 1:, :] -= rest_joints[..., parents[1:], :]
    local = np.zeros(rot_mats.shape[:-2] + (4, 4))
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    out = np.empty_like(local)
    out[..., 0, :, :] = local[..., 0, :, :]
    for j in range(1, J):
        out[..., j, :, :] = out[..., parents[j], :, :] @ local[..., j, :, :]
    return out


def forward_kinematics(rot_mats, rest_joints, trans=None, parents=PARENTS):
    """Posed joint positions (..., J, 3); ``trans`` (..., 3) is added as in SMPL."""
    g = global_transforms(rot_mats, rest_joints, parents)
    joints = g[..., :3, 3]
    if trans is not None:
        joints = joints + np.asarray(trans)[..., None, :]
    return joints


def skinning_transforms(global_tf, rest_joints):
    """Transforms that move rest-pose vertices: G_j · T(−J_j)."""
    a = global_tf.copy()
    a[..., :3, 3] -= np.einsum("...ij,...j->...i", global_tf[..., :3, :3], rest_joints)
    return a


def pose_feature(rot_mats):
    """SMPL's pose-corrective input: (R_j − I) for the 23 non-root joints, flattened (..., 207)."""
    return (rot_mats[..., 1:, :, :] - np.eye(3)).reshape(rot_mats.shape[:-3] + (-1,))


def linear_blend_skinning(vertices, weights, transforms):
    """vertices (..., V, 3), weights (V, J), transforms (..., J, 4, 4) → posed (..., V, 3)."""
    t = np.einsum("vj,...jab->...vab", weights, transforms)
    return np.einsum("...vab,...vb->...va", t[..., :3, :3], vertices) + t[..., :3, 3]
