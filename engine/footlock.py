"""Remove foot skating: pin each planted ankle in place with two-bone leg IK.

During a heel contact the ankle is held at the median of its positions over that contact; the
correction fades in and out over ``blend_time`` (0.2 s) outside the contact (smoothstep) so there is
no pop at contact start or end. The hip and knee rotations change, the bend plane follows the
target, and the foot keeps its world orientation. Toe-only contacts (push-off) are left
alone, and an unreachable target is clamped to the leg's reach — the root is not moved (our
choice: root motion stays what the camera measured).
"""
import numpy as np

from .body.kinematics import axis_angle_to_matrix, forward_kinematics, global_transforms, matrix_to_axis_angle
from .body.skeleton import JOINT_INDEX as J, PARENTS
from .geometry import minimal_rotation, normalize, weighted_kabsch

LEGS = (("left", 0), ("right", 2))  # (side, heel column in the contacts array)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def lock_targets(ankle, contact, blend_frames=4):
    """Desired ankle positions (T,3) and blend weights (T,) for one foot's heel contacts."""
    T = len(ankle)
    desired = ankle.copy()
    weight = np.zeros(T)
    s = np.r_[False, contact, False].astype(int)
    for a, b in zip(np.flatnonzero(np.diff(s) == 1), np.flatnonzero(np.diff(s) == -1)):
        target = np.median(ankle[a:b], axis=0)
        desired[a:b] = target
        weight[a:b] = 1.0
        for k in range(1, blend_frames + 1):  # fade the edge offsets out, before and after
            w = _smoothstep(1 - k / (blend_frames + 1))
            for t, edge in ((a - k, a), (b - 1 + k, b - 1)):
                if 0 <= t < T and w > weight[t]:
                    desired[t] = ankle[t] + (target - ankle[edge])
                    weight[t] = w
    return desired, weight


def two_bone_ik(G, pos, hip, knee, ankle, target):
    """New global rotations of hip and knee (T,3,3 each) bringing the ankle to ``target``."""
    H, K, A = pos[:, hip], pos[:, knee], pos[:, ankle]
    l1 = np.linalg.norm(K - H, axis=-1)
    l2 = np.linalg.norm(A - K, axis=-1)
    to = target - H
    d = np.clip(np.linalg.norm(to, axis=-1), np.abs(l1 - l2) + 1e-4, l1 + l2 - 1e-4)
    u = normalize(to)
    side = (K - H) - np.sum((K - H) * u, -1, keepdims=True) * u  # keep the knee on its side
    fallback = np.cross(u, np.einsum("tij,j->ti", G[:, hip], [1.0, 0, 0]))
    w = normalize(np.where(np.linalg.norm(side, axis=-1, keepdims=True) > 1e-6, side, fallback))
    cos_a = np.clip((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d), -1, 1)
    K2 = H + l1[:, None] * (cos_a[:, None] * u + np.sqrt(1 - cos_a ** 2)[:, None] * w)
    A2 = H + d[:, None] * u
    n_old = normalize(np.cross(K - H, A - H))
    n_new = normalize(np.cross(K2 - H, A2 - H))
    a = np.stack([normalize(K - H), n_old], 1)
    b = np.stack([normalize(K2 - H), n_new], 1)
    R_hip = weighted_kabsch(a, b, np.array([[4.0, 1.0]]).repeat(len(H), 0))
    R_hip = minimal_rotation(np.einsum("tij,tj->ti", R_hip, K - H), K2 - H) @ R_hip
    G_hip = R_hip @ G[:, hip]
    shank = np.einsum("tij,tj->ti", R_hip, A - K)
    G_knee = minimal_rotation(shank, A2 - K2) @ R_hip @ G[:, knee]
    return G_hip, G_knee


def lock_feet(poses, trans, rest_joints, contacts, valid, fps, blend_time=0.2):
    """Return (poses, joints) with planted heels pinned; poses (T,72) axis-angle, trans (T,3).

    Corrections fade over ``blend_time`` seconds on each side of a contact."""
    blend_frames = max(1, int(round(blend_time * fps)))
    poses = poses.copy()
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return poses, None
    rot = axis_angle_to_matrix(poses[idx].reshape(-1, 24, 3))
    g = global_transforms(rot, rest_joints)
    G, pos = g[..., :3, :3], g[..., :3, 3] + trans[idx, None, :]
    for side, col in LEGS:
        hip, knee, ankle = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"]
        desired, weight = lock_targets(pos[:, ankle], contacts[idx, col], blend_frames)
        sel = weight > 0
        if not sel.any():
            continue
        target = pos[sel, ankle] + weight[sel, None] * (desired[sel] - pos[sel, ankle])
        G_hip, G_knee = two_bone_ik(G[sel], pos[sel], hip, knee, ankle, target)
        G_ankle = G[sel, ankle]
        rot[sel, hip] = np.swapaxes(G[sel, PARENTS[hip]], -1, -2) @ G_hip
        rot[sel, knee] = np.swapaxes(G_hip, -1, -2) @ G_knee
        rot[sel, ankle] = np.swapaxes(G_knee, -1, -2) @ G_ankle  # the foot keeps its orientation
    poses[idx] = matrix_to_axis_angle(rot).reshape(-1, 72)
    joints = np.full((len(poses), 24, 3), np.nan)
    joints[idx] = forward_kinematics(rot, rest_joints, trans[idx])
    return poses, joints


def skating(joints, contacts, fps):
    """Mean horizontal speed (m/s) of the heel joints over their contact frames."""
    speeds = []
    for side, col in LEGS:
        p = joints[:, J[f"{side}_ankle"], :2]
        v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
        c = contacts[1:, col] & contacts[:-1, col]
        speeds.append(v[c & np.isfinite(v)])
    s = np.concatenate(speeds)
    return float(s.mean()) if len(s) else 0.0
