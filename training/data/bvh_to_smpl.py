"""CMU BVH → SMPL-24 rotations on a SMPL-layout body (the ``bvh/`` layout, 31 joints, and the
``bvh_daz/`` layout, a 43-joint Daz template skeleton; never mixed as one skeleton).

Method (``method="refine"``, the default):
1. FK of the BVH gives each source joint's global rotation Gc_j(t) and position. Units: CMU's
   ``bvh/`` unit is 1/0.45 inch = 0.056444 m; the Daz layout's is the centimetre. World: Y-up →
   Z-up by C = [[1,0,0],[0,0,-1],[0,1,0]] (the subject at rest faces −Y in the Z-up world).
2. Shape (``fit_betas``): the body's 10 shape coefficients fitted to the subject's T-pose
   (frame 0) thigh, shank, upper-arm and forearm lengths, shoulder and hip width and trunk height
   (hip-joint midpoint → shoulder-joint midpoint), with a weak N(0,1) prior (so |β| stays ≲ 2:
   the PCA space cannot stretch every CMU proportion — see docs/retargeting.md). The Daz layout
   carries a template skeleton, not the subject's: its clips take the subject's betas from a
   ``bvh/`` clip of the same subject when there is one, else zeros.
3. Scale r = SMPL leg length / source leg length; the source joints are scaled by r (so strides
   and the floor fit the SMPL legs).
4. Rest-pose alignment: frame 0 of every file is a synthetic T-pose facing +Z with the subject's
   left at +X — SMPL's canonical rest frame. Limb bones start from the smallest rotation turning
   the SMPL rest bone onto the source bone; the trunk and clavicles start at SMPL's own rest
   (their joints are defined differently: CMU's clavicle runs from the thorax *up* to the
   shoulder, SMPL's collar sits at shoulder height near the neck). These rest rotations A_j are
   then fitted (regularised least squares, below) so that the SMPL joints land on the scaled
   source joints in the T-pose (hips, knees, ankles, toes, shoulders, elbows, wrists): this
   leans the SMPL spine back to CMU's shoulders (which sit ~6 cm behind the hip joints) without
   bending it (strong spine regulariser).
5. Transfer: each SMPL joint takes the global rotation of one source joint (``rotation_map``)
   composed with its rest offset: Gs_j(t) = C·Gc_j(t)·Gc_j(0)ᵀ·A_j; the SMPL hip midpoint follows
   the scaled source hip midpoint.
6. Per-frame position refinement: a few batched Gauss–Newton steps on
   Σ_k w_k |x_k − r·p_k|² + Σ_j λ_j² |log(G_j Gs_jᵀ)|² over all global rotations G_j and the
   root translation (``refine_globals``), i.e. the smallest rotation changes (λ: pelvis and spine
   stiff, limbs softer) that bring the SMPL joints onto the scaled source joints. Bones stay
   within a few degrees of the source bones (``dev_deg``, reported).
Frame 0 (the T-pose) is dropped; 120 fps is resampled to 30 fps by taking every 4th frame
(``resample_rotations`` slerps for other rates). ``method="direction"`` is the first pass
(bone directions only; kept for comparison: its upper body is 13–17 cm off).
"""
import argparse
import csv
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation, Slerp

from engine.body.kinematics import forward_kinematics, matrix_to_axis_angle
from engine.body.skeleton import JOINT_INDEX as J, JOINT_NAMES, NUM_JOINTS, PARENTS
from engine.body.rotations import minimal_rotation

from training.data.bvh import read_bvh

CMU_UNIT_M = 0.0254 / 0.45         # 0.056444 m
DAZ_UNIT_M = 0.01
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
SIDES = (("left", "Left"), ("right", "Right"))

# CMU captured no fingers: their channels are ignored (the hand bone follows the Hand joint).
FINGER_JOINTS = ("LeftFingerBase", "LeftHandIndex1", "LThumb", "RightFingerBase", "RightHandIndex1", "RThumb")

# ---------------------------------------------------------------- the bvh/ (CMU) layout
# SMPL joint → CMU joint whose global rotation it takes (spine3 follows the thorax, Spine1).
CMU_MAP = {
    "pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1",
    "neck": "Neck1", "head": "Head",
}
for _s, _c in SIDES:
    CMU_MAP.update({f"{_s}_hip": f"{_c}UpLeg", f"{_s}_knee": f"{_c}Leg", f"{_s}_ankle": f"{_c}Foot",
                    f"{_s}_foot": f"{_c}ToeBase", f"{_s}_collar": f"{_c}Shoulder",
                    f"{_s}_shoulder": f"{_c}Arm", f"{_s}_elbow": f"{_c}ForeArm",
                    f"{_s}_wrist": f"{_c}Hand", f"{_s}_hand": f"{_c}Hand"})
# The first pass (method="direction") took spine3 from the lower neck.
CMU_MAP_DIRECTION = dict(CMU_MAP, spine3="Neck")

# CMU bone (from, to) that each SMPL bone (joint → child) is aligned with at rest.
CMU_BONE = {"spine1": ("LowerBack", "Spine"), "spine2": ("Spine", "Spine1"),
            "spine3": ("Neck", "Neck1"), "neck": ("Neck1", "Head"), "head": ("Head", "Head_end")}
SMPL_CHILD = {"spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head"}
for _s, _c in SIDES:
    CMU_BONE.update({f"{_s}_hip": (f"{_c}UpLeg", f"{_c}Leg"), f"{_s}_knee": (f"{_c}Leg", f"{_c}Foot"),
                     f"{_s}_ankle": (f"{_c}Foot", f"{_c}ToeBase"),
                     f"{_s}_collar": (f"{_c}Shoulder", f"{_c}Arm"),
                     f"{_s}_shoulder": (f"{_c}Arm", f"{_c}ForeArm"),
                     f"{_s}_elbow": (f"{_c}ForeArm", f"{_c}Hand"),
                     f"{_s}_wrist": (f"{_c}Hand", f"{_c}HandIndex1_end")})
    SMPL_CHILD.update({f"{_s}_hip": f"{_s}_knee", f"{_s}_knee": f"{_s}_ankle",
                       f"{_s}_ankle": f"{_s}_foot", f"{_s}_collar": f"{_s}_shoulder",
                       f"{_s}_shoulder": f"{_s}_elbow", f"{_s}_elbow": f"{_s}_wrist",
                       f"{_s}_wrist": f"{_s}_hand"})

# SMPL joint ↔ CMU joint position, for validation and as refinement targets. pelvis, neck and
# head are defined differently on the two skeletons (CMU's Hips is 10 cm above the hip joints,
# SMPL's pelvis 4.6 cm; SMPL's neck is ~10 cm above the shoulder joints, CMU's Neck1 ~3 cm):
# they are reported, never targets.
CMU_POSITION = {"pelvis": ("Hips",), "neck": ("Neck1",), "head": ("Head",)}
for _s, _c in SIDES:
    CMU_POSITION.update({f"{_s}_hip": (f"{_c}UpLeg",), f"{_s}_knee": (f"{_c}Leg",),
                         f"{_s}_ankle": (f"{_c}Foot",), f"{_s}_foot": (f"{_c}ToeBase",),
                         f"{_s}_shoulder": (f"{_c}Arm",), f"{_s}_elbow": (f"{_c}ForeArm",),
                         f"{_s}_wrist": (f"{_c}Hand",)})
MAJOR_JOINTS = tuple(f"{s}_{n}" for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
                     for s in ("left", "right"))
UPPER_BODY = tuple(n for n in MAJOR_JOINTS if n.endswith(("shoulder", "elbow", "wrist")))
# Bones whose lengths fit the shape (SMPL joint pair ↔ CMU joint pair); the trunk is handled
# by the hip-mid → shoulder-mid distance in fit_betas.
LENGTH_BONES = [((f"{s}_{a}", f"{s}_{b}"), (CMU_POSITION[f"{s}_{a}"][0], CMU_POSITION[f"{s}_{b}"][0]))
                for s in ("left", "right")
                for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]
LENGTH_BONES += [(("left_hip", "right_hip"), ("LeftUpLeg", "RightUpLeg")),
                 (("left_shoulder", "right_shoulder"), ("LeftArm", "RightArm"))]


@dataclass(frozen=True)
class SourceSkeleton:
    """How one BVH layout maps onto SMPL-24."""
    name: str
    unit_m: float
    rotation_map: dict          # SMPL joint → source joint whose global rotation it takes
    bones: dict                 # SMPL joint → (from, to) source bone its rest bone is aligned with
    positions: dict             # SMPL joint → source joints (mean) it corresponds to
    ignore: tuple = ()          # source joints whose channels are ignored (fingers)
    real_proportions: bool = True   # limb lengths are the subject's (else a template)
    direction_map: dict = field(default=None)   # rotation map of method="direction"

    def side(self, smpl_name):
        return self.positions[smpl_name][0]


CMU_SKELETON = SourceSkeleton("cmu_bvh", CMU_UNIT_M, CMU_MAP, CMU_BONE, CMU_POSITION, FINGER_JOINTS,
                              True, CMU_MAP_DIRECTION)

# ---------------------------------------------------------------- the bvh_daz/ (Daz template) layout
# hip → abdomen → chest → {neck → head → eyes; l/rCollar → Shldr → ForeArm → Hand → fingers};
# hip → l/rButtock → Thigh → Shin → Foot. Channels Z X Y. No toe joint: the foot follows Foot.
DAZ_MAP = {"pelvis": "hip", "spine1": "abdomen", "spine2": "chest", "spine3": "chest",
           "neck": "neck", "head": "head"}
DAZ_BONE = {"neck": ("neck", "head")}
DAZ_POSITION = {"pelvis": ("hip",), "neck": ("neck",), "head": ("head",)}
DAZ_FINGERS = []
for _s, _c in (("left", "l"), ("right", "r")):
    DAZ_MAP.update({f"{_s}_hip": f"{_c}Thigh", f"{_s}_knee": f"{_c}Shin", f"{_s}_ankle": f"{_c}Foot",
                    f"{_s}_foot": f"{_c}Foot", f"{_s}_collar": f"{_c}Collar",
                    f"{_s}_shoulder": f"{_c}Shldr", f"{_s}_elbow": f"{_c}ForeArm",
                    f"{_s}_wrist": f"{_c}Hand", f"{_s}_hand": f"{_c}Hand"})
    DAZ_BONE.update({f"{_s}_hip": (f"{_c}Thigh", f"{_c}Shin"), f"{_s}_knee": (f"{_c}Shin", f"{_c}Foot"),
                     f"{_s}_ankle": (f"{_c}Foot", f"{_c}Foot_end"),
                     f"{_s}_collar": (f"{_c}Collar", f"{_c}Shldr"),
                     f"{_s}_shoulder": (f"{_c}Shldr", f"{_c}ForeArm"),
                     f"{_s}_elbow": (f"{_c}ForeArm", f"{_c}Hand"),
                     f"{_s}_wrist": (f"{_c}Hand", f"{_c}Mid1")})
    DAZ_POSITION.update({f"{_s}_hip": (f"{_c}Thigh",), f"{_s}_knee": (f"{_c}Shin",),
                         f"{_s}_ankle": (f"{_c}Foot",), f"{_s}_foot": (f"{_c}Foot_end",),
                         f"{_s}_shoulder": (f"{_c}Shldr",), f"{_s}_elbow": (f"{_c}ForeArm",),
                         f"{_s}_wrist": (f"{_c}Hand",)})
    DAZ_FINGERS += [f"{_c}{f}{k}" for f in ("Thumb", "Index", "Mid", "Ring", "Pinky") for k in (1, 2)]
DAZ_SKELETON = SourceSkeleton("cmu_bvh_daz", DAZ_UNIT_M, DAZ_MAP, DAZ_BONE, DAZ_POSITION,
                              tuple(DAZ_FINGERS) + ("leftEye", "rightEye"), False, DAZ_MAP)


def skeleton_of(bvh):
    """The layout of a parsed BVH: CMU ``bvh/`` (Hips/LowerBack/…) or Daz (hip/abdomen/…)."""
    if "Hips" in bvh.names and "LowerBack" in bvh.names:
        return CMU_SKELETON
    if "hip" in bvh.names and "abdomen" in bvh.names:
        return DAZ_SKELETON
    raise ValueError(f"unknown BVH layout (root {bvh.names[0]!r})")


def cmu_positions_m(P, unit_m=CMU_UNIT_M):
    """Source positions (…,3) in file units, Y up → metres, Z up."""
    return (P * unit_m) @ Y_UP_TO_Z_UP.T


def _pos(bvh_names, P, names):
    return np.mean([P[..., bvh_names.index(n), :] for n in names], axis=0)


# ---------------------------------------------------------------- shape
def _shape_features(x, pairs, hips, shoulders):
    """Bone lengths for ``pairs`` + trunk height (hip-joint midpoint → shoulder-joint midpoint)."""
    L = [np.linalg.norm(x[a] - x[b]) for a, b in pairs]
    trunk = np.linalg.norm(0.5 * (x[shoulders[0]] + x[shoulders[1]]) - 0.5 * (x[hips[0]] + x[hips[1]]))
    return np.array(L + [trunk])


def fit_betas(body, tpose_pos, names, prior=0.02, skeleton=CMU_SKELETON, return_residual=False):
    """Shape coefficients whose rest proportions match the subject's T-pose (least squares).

    Targets: thigh, shank, upper arm, forearm (both sides), hip and shoulder width (hip width at
    0.3 weight: the open body's hip joints are 22.5 cm apart by definition, CMU's ~16 cm) and the
    trunk height; ``prior`` (metres per unit β) is a weak N(0,1) prior."""
    if not np.any(body.shapedirs):
        return (np.zeros(body.num_betas), None) if return_residual else np.zeros(body.num_betas)
    pos = skeleton.positions
    smpl_pairs, src_pairs = [], []
    for s in ("left", "right"):
        for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist")):
            smpl_pairs.append((J[f"{s}_{a}"], J[f"{s}_{b}"]))
            src_pairs.append((names.index(pos[f"{s}_{a}"][0]), names.index(pos[f"{s}_{b}"][0])))
    for n in ("hip", "shoulder"):
        smpl_pairs.append((J[f"left_{n}"], J[f"right_{n}"]))
        src_pairs.append((names.index(pos[f"left_{n}"][0]), names.index(pos[f"right_{n}"][0])))
    sh, sr = (J["left_hip"], J["right_hip"]), (J["left_shoulder"], J["right_shoulder"])
    ch = tuple(names.index(pos[f"{s}_hip"][0]) for s in ("left", "right"))
    cs = tuple(names.index(pos[f"{s}_shoulder"][0]) for s in ("left", "right"))
    target = _shape_features(tpose_pos, src_pairs, ch, cs)
    w = np.ones(len(target))
    w[8] = 0.3
    jdirs = np.einsum("jv,vck->jck", body.J_regressor, body.shapedirs)
    j0 = body.J_regressor @ body.v_template

    def res(b):
        return np.concatenate([w * (_shape_features(j0 + jdirs @ b, smpl_pairs, sh, sr) - target), prior * b])

    b = least_squares(res, np.zeros(body.num_betas)).x
    if return_residual:
        return b, _shape_features(j0 + jdirs @ b, smpl_pairs, sh, sr) - target
    return b


# ---------------------------------------------------------------- position refinement
def _path_child():
    """via[a, k] = the child of joint a on the path down to joint k (−1 if k is not below a)."""
    via = -np.ones((NUM_JOINTS, NUM_JOINTS), int)
    for k in range(NUM_JOINTS):
        c, a = k, PARENTS[k]
        while a >= 0:
            via[a, k] = c
            c, a = a, PARENTS[a]
    return via


_VIA = _path_child()


def _skew(v):
    o = np.zeros(v.shape[:-1] + (3, 3))
    o[..., 0, 1], o[..., 0, 2], o[..., 1, 0] = -v[..., 2], v[..., 1], v[..., 2]
    o[..., 1, 2], o[..., 2, 0], o[..., 2, 1] = -v[..., 0], -v[..., 1], v[..., 0]
    return o


def joints_from_globals(G, rest, trans):
    """SMPL joint positions (T,24,3) from global rotations (T,24,3,3), rest joints and trans."""
    x = np.empty(G.shape[:-2] + (3,))
    x[:, 0] = rest[0] + trans
    for k in range(1, NUM_JOINTS):
        p = PARENTS[k]
        x[:, k] = x[:, p] + G[:, p] @ (rest[k] - rest[p])
    return x


# Refinement weights (targets) and stiffness λ_j (per joint; cost λ² |rotation change (rad)|²,
# so λ = 0.1 trades 10° of one bone for ~1.7 cm of joint error).
TARGET_WEIGHT = {**{f"{s}_{n}": 1.0 for s in ("left", "right") for n in ("knee", "ankle", "shoulder", "elbow", "wrist")},
                 "left_hip": 2.0, "right_hip": 2.0, "left_foot": 0.5, "right_foot": 0.5}


def _stiffness(pelvis, spine, collar, limb):
    lam = np.full(NUM_JOINTS, limb)
    lam[J["pelvis"]] = pelvis
    lam[[J["spine1"], J["spine2"], J["spine3"], J["neck"], J["head"]]] = spine
    lam[[J["left_collar"], J["right_collar"]]] = collar
    return lam


STIFF_TPOSE = _stiffness(1.0, 0.3, 0.2, 0.05)
STIFF_FRAME = _stiffness(0.5, 0.3, 0.2, 0.1)


def refine_globals(G0, trans0, rest, target, weight, stiffness, iters=4, chunk=1024):
    """Minimise Σ_k w_k |x_k − target_k|² + Σ_j λ_j² |log(G_j G0_jᵀ)|² over the global rotations
    G (T,24,3,3) and the root translation (T,3), by batched Gauss–Newton (world-frame rotation
    increments; each increment moves only the joints below that joint).

    target (T,24,3) (ignored where weight is 0), weight (24,), stiffness λ (24,)."""
    if len(G0) > chunk:
        parts = [refine_globals(G0[i:i + chunk], trans0[i:i + chunk], rest, target[i:i + chunk], weight,
                                stiffness, iters, chunk) for i in range(0, len(G0), chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    T = len(G0)
    G, trans = G0.copy(), np.array(trans0, dtype=np.float64)
    ks = np.where(weight > 0)[0]
    sw = np.sqrt(weight[ks])
    nu = 3 * NUM_JOINTS + 3
    lam2 = np.repeat(np.asarray(stiffness, np.float64) ** 2, 3)
    diag = np.arange(3 * NUM_JOINTS)
    for _ in range(iters):
        x = joints_from_globals(G, rest, trans)
        r = ((x[:, ks] - target[:, ks]) * sw[None, :, None]).reshape(T, -1)
        Jm = np.zeros((T, len(ks), 3, nu))
        for i, k in enumerate(ks):
            for a in range(NUM_JOINTS):
                c = _VIA[a, k]
                if c >= 0:
                    Jm[:, i, :, 3 * a:3 * a + 3] = -_skew(G[:, a] @ (rest[c] - rest[a])) * sw[i]
            Jm[:, i, :, -3:] = np.eye(3) * sw[i]
        Jm = Jm.reshape(T, -1, nu)
        phi = Rotation.from_matrix((G @ np.swapaxes(G0, -1, -2)).reshape(-1, 3, 3)).as_rotvec().reshape(T, -1)
        A = np.swapaxes(Jm, 1, 2) @ Jm
        A[:, diag, diag] += lam2
        A[:, -3:, -3:] += 1e-6 * np.eye(3)
        b = -(np.swapaxes(Jm, 1, 2) @ r[..., None])[..., 0]
        b[:, :3 * NUM_JOINTS] -= lam2 * phi
        d = np.linalg.solve(A, b[..., None])[..., 0]
        dR = Rotation.from_rotvec(d[:, :3 * NUM_JOINTS].reshape(-1, 3)).as_matrix().reshape(T, NUM_JOINTS, 3, 3)
        G = dR @ G
        trans = trans + d[:, -3:]
    return G, trans


def _rotation_angle_deg(Ra, Rb):
    rel = Ra @ np.swapaxes(Rb, -1, -2)
    c = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    return np.degrees(np.arccos(c))


# ---------------------------------------------------------------- retargeting
def retarget_bvh(bvh, body, betas=None, stride=4, fit_shape=True, method="refine", skeleton=None):
    """Retarget a CMU clip (``bvh/`` or ``bvh_daz/`` layout) → dict(poses (T,72), trans (T,3),
    betas, fps, joints (T,24,3) SMPL joints, cmu_joints (T,24,3) the corresponding source points
    scaled by ``scale`` (NaN where no correspondence), scale, bone_angle_deg (T,24) angle between
    each SMPL limb bone and its source bone, dev_deg (T,24) rotation change of the refinement,
    skeleton). Frame 0 (T-pose) is dropped. ``method``: "refine" (default) or "direction" (first
    pass: bone directions only)."""
    sk = skeleton or skeleton_of(bvh)
    names = bvh.names
    G, P = bvh.forward(identity_joints=sk.ignore)
    P = cmu_positions_m(P, sk.unit_m)
    C = Y_UP_TO_Z_UP
    G = C @ G
    if betas is None:
        if fit_shape and sk.real_proportions:
            betas = (fit_betas(body, P[0], names, skeleton=sk) if method == "refine"
                     else _fit_betas_direction(body, P[0], names))
        else:
            betas = np.zeros(body.num_betas)
    betas = np.asarray(betas, np.float64)
    rest = body.rest_joints(betas)
    direction = method == "direction"
    rmap = sk.direction_map if direction else sk.rotation_map
    # Rest offsets A_j (canonical frame): limb bones onto the source bones; the trunk and the
    # clavicles at SMPL's rest (method "direction": every bone onto its source bone).
    A = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
    for j_name, (a, b) in sk.bones.items():
        if not direction and (j_name.startswith("spine") or j_name.endswith("collar")):
            continue
        d_src = C.T @ (P[0, names.index(b)] - P[0, names.index(a)])
        child = SMPL_CHILD.get(j_name)
        d_smpl = rest[J[child]] - rest[J[j_name]] if child else np.array([0.0, 1.0, 0.0])  # head: up
        A[J[j_name]] = minimal_rotation(d_smpl, d_src)
    for s in ("left", "right"):
        A[J[f"{s}_hand"]] = A[J[f"{s}_wrist"]]
        A[J[f"{s}_foot"]] = A[J[f"{s}_ankle"]]
    leg = lambda p, h, k, a: np.linalg.norm(p[k] - p[h]) + np.linalg.norm(p[a] - p[k])  # noqa: E731
    src_leg = 0.5 * sum(leg(P[0], *(names.index(sk.positions[f"{s}_{n}"][0]) for n in ("hip", "knee", "ankle")))
                        for s in ("left", "right"))
    smpl_leg = 0.5 * sum(leg(rest, J[f"{s}_hip"], J[f"{s}_knee"], J[f"{s}_ankle"]) for s in ("left", "right"))
    scale = smpl_leg / src_leg
    hips_src = (sk.positions["left_hip"][0], sk.positions["right_hip"][0])
    hip_rest = 0.5 * (rest[J["left_hip"]] + rest[J["right_hip"]]) - rest[0]
    weight = np.zeros(NUM_JOINTS)
    for n, w in TARGET_WEIGHT.items():
        weight[J[n]] = w

    def targets(fr):
        t = np.zeros((len(fr), NUM_JOINTS, 3))
        for n in TARGET_WEIGHT:
            t[:, J[n]] = scale * _pos(names, P[fr], sk.positions[n])
        return t

    if not direction:   # T-pose fit of the rest offsets
        G0 = (C @ A)[None]
        tr0 = scale * _pos(names, P[[0]], hips_src) - rest[0] - G0[:, 0] @ hip_rest
        A = C.T @ refine_globals(G0, tr0, rest, targets(np.array([0])), weight, STIFF_TPOSE, iters=6)[0][0]
    frames = np.arange(1, bvh.num_frames, stride)
    Gs = np.empty((len(frames), NUM_JOINTS, 3, 3))
    for j, name in enumerate(JOINT_NAMES):
        c = names.index(rmap[name])
        Gs[:, j] = G[frames, c] @ G[0, c].T @ C @ A[j]
    # Root translation: SMPL hip midpoint follows the scaled source hip midpoint.
    trans = scale * _pos(names, P[frames], hips_src) - rest[0] - np.einsum("tij,j->ti", Gs[:, 0], hip_rest)
    G_transfer = Gs
    if not direction:
        Gs, trans = refine_globals(Gs, trans, rest, targets(frames), weight, STIFF_FRAME)
    local = Gs.copy()
    local[:, 1:] = np.swapaxes(Gs[:, PARENTS[1:]], -1, -2) @ Gs[:, 1:]
    joints = forward_kinematics(local, rest, trans)
    cmu_joints = np.full_like(joints, np.nan)
    for name, src in sk.positions.items():
        cmu_joints[:, J[name]] = scale * _pos(names, P[frames], src)
    if not sk.real_proportions:
        # A template skeleton's legs are not the subject's, so the root height does not put the
        # feet on the floor: shift the clip so the lowest foot joint's 5th percentile sits at the
        # body's rest foot-joint height above its sole (what bvh/ clips give: 1–4 cm).
        sole = rest[J["left_foot"], 1] - body.shaped_vertices(betas)[:, 1].min()
        dz = sole - np.percentile(joints[:, [J["left_foot"], J["right_foot"]], 2].min(axis=1), 5)
        trans[:, 2] += dz
        joints[..., 2] += dz
        cmu_joints[..., 2] += dz
    # Bone direction error (deg) per SMPL bone j → child, against the source bone it follows
    # (trunk and clavicle bones only for method "direction": their joints differ by definition).
    bone_err = np.full((len(frames), NUM_JOINTS), np.nan)
    for j_name, (a, b) in sk.bones.items():
        child = SMPL_CHILD.get(j_name)
        if not child or (not direction and (j_name.startswith("spine") or j_name.endswith("collar"))):
            continue
        u = joints[:, J[child]] - joints[:, J[j_name]]
        v = P[frames, names.index(b)] - P[frames, names.index(a)]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.maximum(np.linalg.norm(v, axis=-1), 1e-9)
        bone_err[:, J[j_name]] = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return dict(poses=matrix_to_axis_angle(local).reshape(-1, 72), trans=trans, betas=betas,
                fps=bvh.fps / stride, joints=joints, cmu_joints=cmu_joints, scale=scale,
                bone_angle_deg=bone_err, dev_deg=_rotation_angle_deg(Gs, G_transfer), skeleton=sk.name)


def _fit_betas_direction(body, tpose_pos, names, prior=0.05):
    """The first pass's shape fit (method "direction"): CMU bone lengths incl. pelvis → Neck1."""
    if not np.any(body.shapedirs):
        return np.zeros(body.num_betas)
    pairs = [(J[a], J[b], names.index(c), names.index(d)) for (a, b), (c, d) in
             LENGTH_BONES + [(("pelvis", "neck"), ("LeftUpLeg", "Neck1"))]]
    target = np.array([np.linalg.norm(tpose_pos[c] - tpose_pos[d]) for _, _, c, d in pairs])
    jdirs = np.einsum("jv,vck->jck", body.J_regressor, body.shapedirs)
    j0 = body.J_regressor @ body.v_template

    def res(b):
        jt = j0 + jdirs @ b
        L = np.array([np.linalg.norm(jt[a] - jt[bb]) for a, bb, _, _ in pairs])
        return np.concatenate([L - target, prior * b])

    return least_squares(res, np.zeros(body.num_betas)).x


def resample_rotations(poses, trans, fps_in, fps_out):
    """Slerp poses (T,72) and lerp trans (T,3) from fps_in to fps_out."""
    T = len(poses)
    t_in = np.arange(T) / fps_in
    t_out = np.arange(0, t_in[-1] + 1e-9, 1.0 / fps_out)
    out = np.empty((len(t_out), NUM_JOINTS, 3))
    rv = poses.reshape(T, NUM_JOINTS, 3)
    for j in range(NUM_JOINTS):
        out[:, j] = Slerp(t_in, Rotation.from_rotvec(rv[:, j]))(t_out).as_rotvec()
    tr = np.stack([np.interp(t_out, t_in, trans[:, k]) for k in range(3)], axis=1)
    return out.reshape(len(t_out), 72), tr


def clip_table(root, layout="bvh"):
    """Rows of clips.csv (dicts) of one layout: "bvh" (default), "bvh_daz" or "all"."""
    with open(Path(root) / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if layout == "all":
        return rows
    return [r for r in rows if r["path"].startswith(layout + "/")]


def default_body():
    """The open body when baked, else the capsule stand-in (with a warning)."""
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    if OPEN_BODY_PATH.exists():
        return load_body_model()
    print("warning: engine/data/open_body.npz not found; using the capsule stand-in body",
          file=sys.stderr)
    from training.data.capsule_body import capsule_body
    return capsule_body()


def subject_betas(cmu_root, body, subjects=None):
    """{subject: betas} fitted on the T-pose of each subject's first ``bvh/`` clip (the Daz
    layout's template skeleton has no subject proportions; its clips borrow these)."""
    out = {}
    for r in clip_table(cmu_root):
        s = r["subject"]
        if s in out or (subjects is not None and s not in subjects):
            continue
        b = read_bvh(Path(cmu_root) / r["path"])
        _, P = b.forward([0], identity_joints=FINGER_JOINTS)
        out[s] = fit_betas(body, cmu_positions_m(P)[0], b.names)
    return out


RETARGET_VERSION = 2   # 1: bone directions only (first pass); 2: T-pose fit + position refinement


def build_cache(cmu_root, out_dir, body=None, clips=None, progress=True, layouts=("bvh", "bvh_daz")):
    """Write one npz per clip (poses, trans, betas, fps=30, joints, scale, subject, category,
    clip, layout, body_model) for both layouts (never mixed: each clip names its ``layout``)."""
    body = body or default_body()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r for lay in layouts for r in clip_table(cmu_root, lay)]
    if clips:
        rows = [r for r in rows if r["clip"] in set(clips)]
    daz_subjects = {r["subject"] for r in rows if r["path"].startswith("bvh_daz/")}
    shapes = subject_betas(cmu_root, body, daz_subjects) if daz_subjects else {}
    t0 = time.time()
    for i, r in enumerate(rows):
        dst = out_dir / f"{r['clip']}.npz"
        if dst.exists():
            with np.load(dst) as z:
                if "retarget_version" in z.files and int(z["retarget_version"]) == RETARGET_VERSION:
                    continue   # up to date (files of an older retargeter are rebuilt)
        layout = r["path"].split("/")[0]
        betas = shapes.get(r["subject"], np.zeros(body.num_betas)) if layout == "bvh_daz" else None
        res = retarget_bvh(read_bvh(Path(cmu_root) / r["path"]), body, betas=betas)
        np.savez_compressed(dst, poses=res["poses"].astype(np.float32), trans=res["trans"].astype(np.float32),
                            betas=res["betas"].astype(np.float32), fps=np.float64(res["fps"]),
                            joints=res["joints"].astype(np.float32), scale=np.float64(res["scale"]),
                            subject=np.array(r["subject"]), category=np.array(r["category"]),
                            clip=np.array(r["clip"]), layout=np.array(layout), body_model=np.array(body.name),
                            retarget_version=np.int64(RETARGET_VERSION))
        if progress:
            print(f"[{i + 1}/{len(rows)}] {r['clip']} ({layout}) {len(res['poses'])} frames "
                  f"({time.time() - t0:.0f}s)", file=sys.stderr)
    return out_dir


def clip_errors(res):
    """Per-joint mean distance (m, (24,), NaN where no correspondence) and the limb-relative
    error of each major joint (dict) for one retarget result."""
    d = np.linalg.norm(res["joints"] - res["cmu_joints"], axis=-1)
    rel = {}
    for n in MAJOR_JOINTS:
        side, part = n.split("_")
        root = J[f"{side}_shoulder"] if part in ("elbow", "wrist") else J[f"{side}_hip"]
        if part in ("shoulder", "hip"):
            root = J["neck"] if part == "shoulder" else J["pelvis"]
        a = res["joints"][:, J[n]] - res["joints"][:, root]
        b = res["cmu_joints"][:, J[n]] - res["cmu_joints"][:, root]
        rel[n] = float(np.mean(np.linalg.norm(a - b, axis=-1)))
    with warnings.catch_warnings():   # joints without a correspondence are all-NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(d, axis=0), rel


def retarget_report(cmu_root, clips, body=None, methods=("direction", "refine")):
    """{method: {clip: dict(per_joint (24,) m, limb_rel, bone angles, dev, scale, frames, ...)}}."""
    body = body or default_body()
    rows = {r["clip"]: r for r in clip_table(cmu_root, "all")}
    shapes = {}
    out = {m: {} for m in methods}
    for c in clips:
        r = rows[c]
        bvh = read_bvh(Path(cmu_root) / r["path"])
        betas = None
        if r["path"].startswith("bvh_daz/"):
            if r["subject"] not in shapes:
                shapes.update(subject_betas(cmu_root, body, {r["subject"]}))
            betas = shapes.get(r["subject"], np.zeros(body.num_betas))
        for m in methods:
            res = retarget_bvh(bvh, body, betas=betas, method=m)
            pj, rel = clip_errors(res)
            limbs = [J[n] for n in MAJOR_JOINTS if n.endswith(("hip", "knee", "shoulder", "elbow"))]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[m][c] = dict(per_joint=pj, limb_rel=rel, scale=res["scale"], frames=len(res["joints"]),
                                 category=r["category"], layout=r["path"].split("/")[0],
                                 bone_angle_max=float(np.nanmax(res["bone_angle_deg"])),
                                 bone_angle_mean=float(np.nanmean(res["bone_angle_deg"][:, limbs])),
                                 bone_angle_p95=float(np.nanpercentile(res["bone_angle_deg"][:, limbs], 95)),
                                 dev_spine=float(res["dev_deg"][:, [J["spine1"], J["spine2"], J["spine3"]]].mean()),
                                 dev_max=float(res["dev_deg"].max()), betas=res["betas"])
    return out


REPORT_CLIPS = ["124_01", "124_02", "124_03", "06_14", "06_15", "01_01", "02_05", "05_02",
                "13_19", "16_15", "16_35", "49_02", "55_01", "64_01", "105_02", "118_10",
                "127_07", "131_05", "135_02", "17_10"]
REPORT_CLIPS_DAZ = ["02_01", "08_01", "09_01", "12_01", "13_11", "14_07"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmu", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "cmu"))
    ap.add_argument("--cache", help="build the retargeted cache into this folder (e.g. cache/cmu_smpl)")
    ap.add_argument("--layouts", default="bvh,bvh_daz", help="layouts to cache (bvh, bvh_daz)")
    ap.add_argument("--report", action="store_true", help="print the retargeting report (markdown)")
    args = ap.parse_args(argv)
    if args.cache:
        build_cache(args.cmu, args.cache, layouts=tuple(args.layouts.split(",")))
    if args.report:
        have = {r["clip"] for r in clip_table(args.cmu, "all")}
        print(format_report(retarget_report(args.cmu, [c for c in REPORT_CLIPS if c in have])))
        print()
        print("Daz layout (`bvh_daz/`, template skeleton; betas from the subject's `bvh/` clips):")
        print()
        print(format_report(retarget_report(args.cmu, [c for c in REPORT_CLIPS_DAZ if c in have],
                                            methods=("refine",)), before=False))


def _mm(v):
    return f"{1000 * v:.0f}"


def format_report(report, before=True):
    after = report["refine"]
    cols = [n for n in JOINT_NAMES if n in CMU_POSITION]
    lines = ["| clip | category | frames (30 fps) | scale | " + " | ".join(cols)
             + " | major mean | upper-body mean | limb bone angle mean / p95 / max (°) | spine change (°) |",
             "|---|---|---|---|" + "---|" * len(cols) + "---|---|---|---|"]
    allv = []
    for c, r in after.items():
        v = r["per_joint"]
        allv.append(v)
        major = np.mean([v[J[n]] for n in MAJOR_JOINTS])
        upper = np.mean([v[J[n]] for n in UPPER_BODY])
        lines.append(f"| {c} | {r['category']} | {r['frames']} | {r['scale']:.3f} | "
                     + " | ".join(_mm(v[J[n]]) for n in cols) + f" | {1000 * major:.1f} | {1000 * upper:.1f} | "
                     f"{r['bone_angle_mean']:.1f} / {r['bone_angle_p95']:.1f} / {r['bone_angle_max']:.0f} | {r['dev_spine']:.1f} |")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(allv, axis=0)
        b = np.nanmean([r["per_joint"] for r in report.get("direction", after).values()], axis=0)
    lines.append("| **mean** | | | | " + " | ".join(f"**{_mm(m[J[n]])}**" for n in cols)
                 + f" | **{1000 * np.mean([m[J[n]] for n in MAJOR_JOINTS]):.1f}** | "
                 f"**{1000 * np.mean([m[J[n]] for n in UPPER_BODY]):.1f}** | "
                 f"**{np.mean([r['bone_angle_mean'] for r in after.values()]):.1f}** | "
                 f"**{np.mean([r['dev_spine'] for r in after.values()]):.1f}** |")
    if before and "direction" in report:
        lines += ["", "Before (first pass, bone directions only) → after, mean over the clips (mm):", "",
                  "| | " + " | ".join(cols) + " | major mean | upper-body mean |",
                  "|---|" + "---|" * (len(cols) + 2)]
        for lab, v in (("before", b), ("after", m)):
            lines.append(f"| {lab} | " + " | ".join(_mm(v[J[n]]) for n in cols)
                         + f" | {1000 * np.mean([v[J[n]] for n in MAJOR_JOINTS]):.1f}"
                         f" | {1000 * np.mean([v[J[n]] for n in UPPER_BODY]):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
