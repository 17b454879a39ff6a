"""Remove foot skating: move the root so planted feet stay put, then pin them with leg IK.

Two steps, both on the valid frames of a motion whose floor is z = 0 (``engine.clean.contacts``):

1. **Root.** Monocular root translation is the noisiest part of the motion (depth along the
   camera ray), and it is what makes planted feet slide. ``root_offsets`` solves one small
   sparse least-squares problem per axis for a per-frame root offset o_t and one anchor a_k
   per contact (a point's run of contact frames): planted points should sit on their anchor
   (Σ |p_t + o_t − a_k|²), the offset should change slowly (λ Σ |o_{t+1} − o_t|²) and stay
   small (μ Σ |o_t|²). Vertically the anchors are the floor (the sole on z = 0), except for a
   run that stands clearly higher (a box, a step): its height is an anchor of its own. Between
   contacts the offset interpolates smoothly, so there is no pop at contact start or end, and
   the pose is untouched: joint positions relative to the pelvis do not change.
2. **Legs.** What the root cannot fix (both feet planted but the estimated pose disagrees
   with their anchors) is removed by two-bone IK of hip and knee: the ankle is moved by the
   planted points' mean residual (heel: ankle → its anchor; toe-only push-off: the whole foot
   is shifted so the toe stays on its anchor) and the foot keeps its world orientation. The
   correction fades in and out over ``blend_time`` outside each contact (smoothstep).
"""
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from ..body.kinematics import axis_angle_to_matrix, forward_kinematics, global_transforms, matrix_to_axis_angle
from ..body.skeleton import JOINT_INDEX as J, PARENTS
from .contacts import CONTACT_JOINTS, SOLE_OFFSET
from ..body.rotations import minimal_rotation, normalize, weighted_kabsch

LEGS = (("left", 0), ("right", 2))  # (side, heel column in the contacts array; toe = column + 1)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _runs(mask):
    """(start, end) index pairs of the True runs of a 1-D bool array."""
    s = np.r_[False, np.asarray(mask, bool), False].astype(int)
    return list(zip(np.flatnonzero(np.diff(s) == 1), np.flatnonzero(np.diff(s) == -1)))


ELEVATED = 0.15  # m: a contact run whose sole sits this far above the floor is on a raised support


def root_offsets(points, contacts, floor_z=None, smooth=0.02, shrink=1e-5, elevated=ELEVATED):
    """Per-frame root offsets (n,3) that keep planted points still (see the module docstring).

    points (n,P,3) contact points over consecutive frames, contacts (n,P) bool; ``floor_z``
    (P,) the height each point has when planted (None: vertical anchors are free too). A run
    whose median height is more than ``elevated`` above its floor height stands on something
    raised (a box, a step, the mound): its vertical anchor is free like the horizontal ones.
    ``smooth`` = λ, ``shrink`` = μ, both relative to the weight 1 of one planted point.
    Returns (offsets, anchors) with anchors a list of (column, start, end, anchor (3,)).
    """
    n, P = contacts.shape
    segs = [(c, a, b) for c in range(P) for a, b in _runs(contacts[:, c])]
    out = np.zeros((n, 3))
    if not segs or n < 2:
        return out, []
    K = len(segs)
    raised = [floor_z is None or float(np.median(points[a:b, c, 2])) - floor_z[c] > elevated
              for c, a, b in segs]
    anc = np.zeros((K, 3))
    for ax in range(3):
        free = [True] * K if ax < 2 else raised
        var = {}
        for k in range(K):
            if free[k]:
                var[k] = n + len(var)
        rows, cols, vals, rhs = [], [], [], []
        r = 0
        for k, (c, a, b) in enumerate(segs):
            for t in range(a, b):  # p + o_t − a_k = 0
                rows += [r]; cols += [t]; vals += [1.0]
                if free[k]:
                    rows += [r]; cols += [var[k]]; vals += [-1.0]
                    rhs.append(-points[t, c, ax])
                else:
                    rhs.append(floor_z[c] - points[t, c, ax])
                r += 1
        ls, lt = np.sqrt(smooth), np.sqrt(shrink)
        for t in range(n - 1):
            rows += [r, r]; cols += [t, t + 1]; vals += [-ls, ls]; rhs.append(0.0); r += 1
        for t in range(n):
            rows += [r]; cols += [t]; vals += [lt]; rhs.append(0.0); r += 1
        A = coo_matrix((vals, (rows, cols)), shape=(r, n + len(var))).tocsr()
        x = spsolve((A.T @ A).tocsc(), A.T @ np.asarray(rhs))
        out[:, ax] = x[:n]
        for k in range(K):
            anc[k, ax] = x[var[k]] if free[k] else floor_z[segs[k][0]]
    return out, [(c, a, b, anc[k]) for k, (c, a, b) in enumerate(segs)]


def lock_targets(ankle, contact, blend_frames=4):
    """Desired ankle positions (T,3) and blend weights (T,) for one foot's heel contacts."""
    T = len(ankle)
    desired = ankle.copy()
    weight = np.zeros(T)
    for a, b in _runs(contact):
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


def foot_shift(points, anchors, side_cols, n, blend_frames=4):
    """Ankle shift (n,3) and blend weight (n,) for one foot from its planted points' residuals.

    ``points`` (n,P,3); ``anchors`` from ``root_offsets``; ``side_cols`` the foot's (heel, toe)
    columns. In contact the shift is the mean residual anchor − point of the planted points; it
    fades out (smoothstep) over ``blend_frames`` on both sides, holding the edge's shift.
    """
    acc = np.zeros((n, 3)); cnt = np.zeros(n)
    for c, a, b, anc in anchors:
        if c in side_cols:
            acc[a:b] += anc - points[a:b, c]
            cnt[a:b] += 1
    on = cnt > 0
    shift = np.zeros((n, 3))
    shift[on] = acc[on] / cnt[on, None]
    weight = on.astype(float)
    out = shift.copy()
    for a, b in _runs(on):
        for k in range(1, blend_frames + 1):
            w = _smoothstep(1 - k / (blend_frames + 1))
            for t, edge in ((a - k, a), (b - 1 + k, b - 1)):
                if 0 <= t < n and w > weight[t]:
                    out[t] = shift[edge]
                    weight[t] = w
    return out, weight


def two_bone_ik(G, pos, hip, knee, ankle, target, max_reach=0.995):
    """New global rotations of hip and knee (T,3,3 each) bringing the ankle to ``target``.

    A target out of reach is clamped: the leg is not stretched beyond ``max_reach`` of its
    length (about 11° of knee flexion left) unless it already was — a locked foot never snaps
    the knee straight."""
    H, K, A = pos[:, hip], pos[:, knee], pos[:, ankle]
    l1 = np.linalg.norm(K - H, axis=-1)
    l2 = np.linalg.norm(A - K, axis=-1)
    to = target - H
    reach = np.minimum(np.maximum(np.linalg.norm(A - H, axis=-1), max_reach * (l1 + l2)), l1 + l2 - 1e-4)
    d = np.clip(np.linalg.norm(to, axis=-1), np.abs(l1 - l2) + 1e-4, reach)
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


def lock_feet(poses, trans, rest_joints, contacts, valid, fps, blend_time=0.2, root=True, legs=True,
              root_smooth=0.02, max_shift=None):
    """Return (poses, trans, joints) with planted feet held still (module docstring).

    poses (T,72) axis-angle, trans (T,3), contacts (T,4) (left heel, left toe, right heel,
    right toe), floor at z = 0. ``root``: move the root (step 1); ``legs``: leg IK (step 2).
    Corrections fade over ``blend_time`` seconds on each side of a contact."""
    blend_frames = max(1, int(round(blend_time * fps)))
    poses, trans = poses.copy(), trans.copy()
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return poses, trans, None
    rot = axis_angle_to_matrix(poses[idx].reshape(-1, 24, 3))
    g = global_transforms(rot, rest_joints)
    G, pos = g[..., :3, :3], g[..., :3, 3] + trans[idx, None, :]
    c = contacts[idx].astype(bool)
    floor_z = SOLE_OFFSET
    if root:
        off, anchors = root_offsets(pos[:, CONTACT_JOINTS], c, floor_z, smooth=root_smooth)
        trans[idx] += off
        pos = pos + off[:, None]
    else:
        _, anchors = root_offsets(pos[:, CONTACT_JOINTS], c, floor_z, smooth=1e6)
        anchors = [(k, a, b, np.r_[np.median(pos[a:b, CONTACT_JOINTS[k], :2], 0), anc[2]])
                   for k, a, b, anc in anchors]
    if legs:
        pts = pos[:, CONTACT_JOINTS]
        for side, col in LEGS:
            hip, knee, ankle = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"]
            shift, weight = foot_shift(pts, anchors, (col, col + 1), len(idx), blend_frames)
            if max_shift is not None:  # a larger residual means a doubtful contact: move less
                norm = np.linalg.norm(shift, axis=-1, keepdims=True)
                shift *= np.minimum(1.0, max_shift / np.maximum(norm, 1e-9))
            sel = weight > 0
            if not sel.any():
                continue
            target = pos[sel, ankle] + weight[sel, None] * shift[sel]
            G_hip, G_knee = two_bone_ik(G[sel], pos[sel], hip, knee, ankle, target)
            G_ankle = G[sel, ankle]
            rot[sel, hip] = np.swapaxes(G[sel, PARENTS[hip]], -1, -2) @ G_hip
            rot[sel, knee] = np.swapaxes(G_hip, -1, -2) @ G_knee
            rot[sel, ankle] = np.swapaxes(G_knee, -1, -2) @ G_ankle  # the foot keeps its orientation
    poses[idx] = matrix_to_axis_angle(rot).reshape(-1, 72)
    joints = np.full((len(poses), 24, 3), np.nan)
    joints[idx] = forward_kinematics(rot, rest_joints, trans[idx])
    return poses, trans, joints


def skating(joints, contacts, fps, points=None):
    """Mean horizontal speed (m/s) of contact points over frame pairs where both are in contact.

    ``contacts`` (T,4) for (left ankle, left foot, right ankle, right foot) — the heel and toe
    joints; with ``points`` (columns) only those are measured (e.g. (0, 2): the heels)."""
    cols = range(contacts.shape[1]) if points is None else points
    speeds = []
    for k in cols:
        p = joints[:, CONTACT_JOINTS[k], :2]
        v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
        c = contacts[1:, k] & contacts[:-1, k]
        speeds.append(v[c & np.isfinite(v)])
    s = np.concatenate(speeds)
    return float(s.mean()) if len(s) else 0.0
