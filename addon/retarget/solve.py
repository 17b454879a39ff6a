"""Retargeting math: SMPL-24 motion onto any armature, per bone in world space (numpy only).

No bpy here: ``apply.py`` extracts the target skeleton from Blender and writes the keys.

Method
------
Source: the Motion's per-joint global rotations ``F_j(t)`` (SMPL canonical → Z-up world, from
``poses`` by forward kinematics) and world joint positions ``x_j(t)``. In the upright SMPL rest
pose every ``F_j = A`` (``convert.A``, +90° about X).

Target: an armature whose rest bones have world rotations ``R_b`` (bone axes, Y head→tail) and
world heads ``h_b``. Each mapped bone ``b`` follows one SMPL joint ``j``:

    W_b(t) = F_j(t) · Aᵀ · Q_b · R_b            (world rotation of the posed bone)

``Q_b`` is the *rest alignment*: the rotation that brings the target's rest bone onto the
source's rest pose, so that an A-posed target (or different bone rolls) does not distort the
motion. ``Q_b = S_b · G`` where ``G`` turns the whole target about world Z to face the source's
rest facing (subject's left = +X) and ``S_b`` depends on the bone's rule:

* ``swing``  — the smallest rotation taking the bone's rest direction (after ``G``) onto the
  source bone's rest direction (joint → its main child): the bone then points exactly where the
  source bone points, at every frame; its roll keeps the rest relation.
* ``parent`` — the ``S`` of the nearest mapped ancestor (leaf bones: head, hands, toes, whose
  source joint has no child to point at): the bone keeps its rest shape relative to its parent.
* ``none``   — ``S = I`` (the hips/root: only the facing is aligned).

So ``target_world_rot = source_world_rot · offset`` with the constant ``offset = Aᵀ Q_b R_b``.
Unmapped bones follow their parent rigidly (their pose is left at rest). Pose-bone (basis)
rotations follow from Blender's parenting: ``basis_b = (R_bᵀ R_p) (W_pᵀ W_b)``.

Translation: the target hips are placed so that the midpoint of its thigh heads follows the
source hip-joint midpoint scaled by ``s`` = target leg length / source leg length. An optional
floor correction moves the hips vertically so that, during foot contacts (``Motion.contacts``),
the target's own heel/toe points sit at their rest height above the floor (linear in between).
"""
import numpy as np

from engine.body.rotations import minimal_rotation, normalize
from engine.body.skeleton import JOINT_INDEX, PARENTS

from ..scene.convert import A, MAIN_CHILD, axis_angle_to_quat, quat_to_matrix

LEAVES = frozenset(j for j in range(24) if j not in PARENTS[1:])  # head, feet, hands
ALIGN_RULES = ("swing", "parent", "none")
ROOT_MOTION = ("hips", "in_place", "root_bone", "object")
# Contact points of Motion.contacts (left heel, left toe, right heel, right toe) → SMPL joints.
CONTACT_JOINTS = (JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"],
                  JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"])


# --------------------------------------------------------------------------- small helpers
def rotvec_to_matrix(rv):
    return quat_to_matrix(axis_angle_to_quat(rv))


def yaw_rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_angle(R):
    """Angle (radians) of rotation matrices (..., 3, 3); accurate near zero (atan2 form)."""
    R = np.asarray(R, dtype=np.float64)
    c = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    v = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1) / 2.0
    return np.arctan2(np.linalg.norm(v, axis=-1), c)


# --------------------------------------------------------------------------- the source
def smpl_world_rotations(poses):
    """Global rotations F (T,24,3,3) from file ``poses`` (T,72); NaN rows stay NaN."""
    poses = np.asarray(poses, dtype=np.float64)
    T = poses.shape[0]
    local = rotvec_to_matrix(np.nan_to_num(poses.reshape(T, 24, 3)))
    F = np.empty_like(local)
    F[:, 0] = local[:, 0]
    for j in range(1, 24):
        F[:, j] = F[:, PARENTS[j]] @ local[:, j]
    F[~np.isfinite(poses).all(1)] = np.nan
    return F


def smpl_rest_offsets(F, joints):
    """Canonical rest offsets (24,3) of each joint from its parent (row 0: zeros), recovered
    from the motion itself: x_j − x_p = F_p · (J_j − J_p) at every frame (median over frames)."""
    F = np.asarray(F, dtype=np.float64)
    x = np.asarray(joints, dtype=np.float64)
    ok = np.isfinite(F).all((1, 2, 3)) & np.isfinite(x).all((1, 2))
    if not ok.any():
        raise ValueError("the motion has no valid frame")
    off = np.zeros((24, 3))
    for j in range(1, 24):
        p = PARENTS[j]
        d = np.einsum("tba,tb->ta", F[ok, p], x[ok, j] - x[ok, p])
        off[j] = np.median(d, axis=0)
    return off


def smpl_rest_directions(offsets):
    """Upright (world) rest direction (24,3) of each SMPL bone: joint → its main child.
    Leaves continue their parent's direction (only used by the ``swing`` rule if asked)."""
    kids = [[c for c in range(24) if PARENTS[c] == j] for j in range(24)]
    d = np.zeros((24, 3))
    for j in range(24):
        if kids[j]:
            d[j] = offsets[MAIN_CHILD.get(j, kids[j][0])]
    for j in range(24):
        if not kids[j]:
            d[j] = d[PARENTS[j]]
    return normalize(d @ A.T)


def leg_length_source(joints):
    """Median over valid frames of (hip→knee + knee→ankle), both sides averaged (metres)."""
    x = np.asarray(joints, dtype=np.float64)
    ok = np.isfinite(x).all((1, 2))
    legs = []
    for h, k, a in ((1, 4, 7), (2, 5, 8)):
        legs.append(np.linalg.norm(x[ok, h] - x[ok, k], axis=-1) + np.linalg.norm(x[ok, k] - x[ok, a], axis=-1))
    return float(np.median(np.concatenate(legs)))


# --------------------------------------------------------------------------- the target
class TargetSkeleton:
    """The target armature's rest pose in world space.

    names (B,), parents (B,) (index, -1 for none), rest_rot (B,3,3) world rotations of the rest
    bones (columns: bone X, Y (head→tail), Z), heads/tails (B,3) world, inherit_rotation (B,)
    bool, object_scale (uniform scale of the armature object: armature units → metres).
    """

    def __init__(self, names, parents, rest_rot, heads, tails, inherit_rotation=None, object_scale=1.0,
                 local_location=None, object_rotation=None):
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.parents = np.asarray(parents, dtype=int)
        self.rest_rot = np.asarray(rest_rot, dtype=np.float64)
        self.heads = np.asarray(heads, dtype=np.float64)
        self.tails = np.asarray(tails, dtype=np.float64)
        B = len(self.names)
        self.inherit_rotation = np.ones(B, bool) if inherit_rotation is None else np.asarray(inherit_rotation, bool)
        self.object_scale = float(object_scale)
        self.local_location = np.ones(B, bool) if local_location is None else np.asarray(local_location, bool)
        self.object_rotation = np.eye(3) if object_rotation is None else np.asarray(object_rotation, float)
        self.order = self._topological()

    def _topological(self):
        order, seen = [], set()
        for b in range(len(self.names)):
            chain = []
            while b >= 0 and b not in seen:
                chain.append(b)
                b = self.parents[b]
            for c in reversed(chain):
                seen.add(c)
                order.append(c)
        return order

    def ancestors(self, b):
        out = []
        p = self.parents[b]
        while p >= 0:
            out.append(p)
            p = self.parents[p]
        return out

    def direction(self, b):
        return normalize(self.tails[b] - self.heads[b])


class Mapping:
    """Which target bones follow which SMPL joints, with their alignment rules.

    ``bones``: {target bone name: SMPL joint name}; ``rules``: {target bone: rule} (missing:
    ``parent`` for SMPL leaves, ``none`` for the pelvis, ``swing`` otherwise).
    """

    def __init__(self, bones, rules=None, default=None):
        self.bones = dict(bones)
        rules = dict(rules or {})
        for b, j in self.bones.items():
            if j not in JOINT_INDEX:
                raise ValueError(f"unknown SMPL joint {j!r} for bone {b!r}")
            r = rules.get(b) or default or default_rule(j)
            if r not in ALIGN_RULES:
                raise ValueError(f"unknown alignment rule {r!r} for bone {b!r}")
            rules[b] = r
        self.rules = rules


def default_rule(joint):
    j = JOINT_INDEX[joint]
    return "none" if j == 0 else ("parent" if j in LEAVES else "swing")


def joint_bone(skel, mapping, joint):
    """The top-most target bone that follows SMPL ``joint`` (index), or None."""
    cand = [skel.index[b] for b, j in mapping.bones.items() if j == joint and b in skel.index]
    return min(cand, key=lambda b: len(skel.ancestors(b))) if cand else None


def facing_rotation(skel, mapping):
    """Yaw ``G`` that turns the target's rest facing onto the source's (subject's left = +X)."""
    def head_of(joint):
        b = joint_bone(skel, mapping, joint)
        return None if b is None else skel.heads[b]
    for left, right in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
                        ("left_knee", "right_knee"), ("left_collar", "right_collar")):
        hl, hr = head_of(left), head_of(right)
        if hl is not None and hr is not None:
            v = hl - hr
            if np.hypot(v[0], v[1]) > 1e-6:
                return yaw_rotation(-np.arctan2(v[1], v[0]))
    return np.eye(3)


def rest_alignment(skel, mapping, source_dirs):
    """Per mapped bone (by name): the aligned rest rotation ``Q_b R_b`` (world) and ``Q_b``."""
    G = facing_rotation(skel, mapping)
    S = {}
    aligned = {}
    for b in skel.order:
        name = skel.names[b]
        if name not in mapping.bones:
            continue
        rule = mapping.rules[name]
        if rule == "swing":
            Sb = minimal_rotation(G @ skel.direction(b), source_dirs[JOINT_INDEX[mapping.bones[name]]])
        elif rule == "parent":
            Sb = next((S[skel.names[a]] for a in skel.ancestors(b) if skel.names[a] in S), np.eye(3))
        else:
            Sb = np.eye(3)
        S[name] = Sb
        aligned[name] = Sb @ G @ skel.rest_rot[b]
    return aligned, {n: S[n] @ G for n in S}, G


def target_leg_length(skel, mapping):
    """Target hip→knee + knee→ankle (metres), averaged over the sides that are mapped."""
    heads = {}
    for j in set(mapping.bones.values()):
        b = joint_bone(skel, mapping, j)
        if b is not None:
            heads[j] = skel.heads[b]
    legs = []
    for h, k, a in (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")):
        if all(n in heads for n in (h, k, a)):
            legs.append(np.linalg.norm(heads[h] - heads[k]) + np.linalg.norm(heads[k] - heads[a]))
    return float(np.mean(legs)) if legs else None


# --------------------------------------------------------------------------- forward model
def pose_target(skel, world_rot_driven, hips=None, hips_pos=None, fixed=None):
    """World rotations (T,B,3,3) and heads (T,B,3) of every bone.

    ``world_rot_driven``: {bone index: (T,3,3)} for mapped bones; unmapped bones follow their
    parent rigidly (rest relation). ``hips``/``hips_pos``: the bone whose head is placed at
    (T,3). ``fixed``: {bone index: (rot (T,3,3), head (T,3))} bones with a given world pose
    (the root bone in root-bone mode).
    """
    fixed = fixed or {}
    T = next(iter(world_rot_driven.values())).shape[0] if world_rot_driven else (len(hips_pos) if hips_pos is not None else 1)
    B = len(skel.names)
    W = np.empty((T, B, 3, 3))
    H = np.empty((T, B, 3))
    for b in skel.order:
        p = skel.parents[b]
        if b in fixed:
            W[:, b], H[:, b] = fixed[b]
            continue
        if b in world_rot_driven:
            W[:, b] = world_rot_driven[b]
        elif p >= 0:
            W[:, b] = W[:, p] @ (skel.rest_rot[p].T @ skel.rest_rot[b])
        else:
            W[:, b] = skel.rest_rot[b]
        if b == hips and hips_pos is not None:
            H[:, b] = hips_pos
        elif p >= 0:
            off = skel.rest_rot[p].T @ (skel.heads[b] - skel.heads[p])
            H[:, b] = H[:, p] + W[:, p] @ off
        else:
            H[:, b] = skel.heads[b]
    return W, H


def basis_rotations(skel, W, bones):
    """Pose-bone (basis) rotation matrices (T,n,3,3) of ``bones`` from world rotations W."""
    out = np.empty((W.shape[0], len(bones), 3, 3))
    for i, b in enumerate(bones):
        p = skel.parents[b]
        if p >= 0 and skel.inherit_rotation[b]:
            rel = skel.rest_rot[b].T @ skel.rest_rot[p]
            out[:, i] = rel @ np.swapaxes(W[:, p], -1, -2) @ W[:, b]
        else:
            out[:, i] = skel.rest_rot[b].T @ W[:, b]
    return out


def basis_locations(skel, W, H, b, pos):
    """Pose-bone location (T,3) (armature units) that puts bone ``b``'s head at world ``pos``
    (T,3), given the parent's pose in W/H. Bone-local axes, or the parent's axes (armature
    axes without a parent) for bones without "Local Location"."""
    p = skel.parents[b]
    if p >= 0:
        off = skel.rest_rot[p].T @ (skel.heads[b] - skel.heads[p])
        zero_head = H[:, p] + W[:, p] @ off
        zero_rot = W[:, p] @ (skel.rest_rot[p].T @ skel.rest_rot[b])
    else:
        zero_head = np.broadcast_to(skel.heads[b], pos.shape)
        zero_rot = np.broadcast_to(skel.rest_rot[b], pos.shape[:1] + (3, 3))
    if not skel.local_location[b]:
        zero_rot = W[:, p] if p >= 0 else np.broadcast_to(skel.object_rotation, pos.shape[:1] + (3, 3))
    return np.einsum("tba,tb->ta", zero_rot, pos - zero_head) / skel.object_scale


def _segment_values(values, on):
    """Per run of ``on`` frames, the median of ``values`` there (T,), NaN elsewhere."""
    from ..scene.keyreduce import runs
    out = np.full(len(on), np.nan)
    for a, b in runs(on):
        out[a:b] = np.median(values[a:b])
    return out


def source_floor(joints, contacts, sole_offset=None):
    """Height (T,) the source's feet stand on, the pivot for scaling heights: per contact
    segment the median sole height of the contacting heel/toe points; elsewhere the lowest sole
    point of the frame (a jump keeps its height above the ground, a box top stays a box top);
    invalid frames interpolated, 0 without any valid frame."""
    x = np.asarray(joints, dtype=np.float64)
    T = len(x)
    off = np.zeros(4) if sole_offset is None else np.asarray(sole_offset, dtype=np.float64)
    z = x[:, CONTACT_JOINTS, 2] - off
    ok = np.isfinite(z).all(1)
    if not ok.any():
        return np.zeros(T)
    out = np.full(T, np.nan)
    out[ok] = z[ok].min(1)
    if contacts is not None:
        c = np.asarray(contacts, bool) & np.isfinite(z)
        on = c.any(1)
        if on.any():
            mean = np.where(c, z, 0.0).sum(1) / np.maximum(c.sum(1), 1)
            out[on] = _segment_values(mean, on)[on]
    have = np.flatnonzero(np.isfinite(out))
    return np.interp(np.arange(T), have, out[have])


def floor_correction(heights, contacts, ramp=6):
    """Vertical offset (T,) that brings the contacting points to the floor, segment by segment.

    heights (T,4): the target's contact points above their rest height (left heel, left toe,
    right heel, right toe); contacts (T,4) bool. Contact frames get minus the mean height of
    their contacting points. Between two contact segments less than ``2 * ramp`` frames apart
    the offset is linear; otherwise it fades to zero over ``ramp`` frames on either side, so a
    few contact frames never shift the rest of the clip.
    """
    from ..scene.keyreduce import runs
    heights = np.asarray(heights, dtype=np.float64)
    contacts = np.asarray(contacts, dtype=bool) & np.isfinite(heights)
    T = len(heights)
    out = np.zeros(T)
    any_c = contacts.any(1)
    if not any_c.any():
        return out
    h = np.where(contacts, heights, 0.0).sum(1) / np.maximum(contacts.sum(1), 1)
    out[any_c] = -h[any_c]
    segs = runs(any_c)
    ramp = max(int(ramp), 1)
    fade = np.arange(1, ramp + 1) / (ramp + 1.0)

    def fade_out(start, value, stop):  # frames start.. (at most ramp), towards 0
        n = min(ramp, stop - start)
        out[start:start + n] = value * (1.0 - fade[:n])

    def fade_in(stop, value, start):  # frames ..stop-1 (at most ramp), from 0
        n = min(ramp, stop - start)
        out[stop - n:stop] = value * fade[ramp - n:]
    fade_in(segs[0][0], out[segs[0][0]], 0)
    for (a0, b0), (a1, b1) in zip(segs, segs[1:]):
        gap = a1 - b0
        if gap <= 2 * ramp:
            out[b0:a1] = np.interp(np.arange(b0, a1), [b0 - 1, a1], [out[b0 - 1], out[a1]])
        else:
            fade_out(b0, out[b0 - 1], a1)
            fade_in(a1, out[a1], b0)
    fade_out(segs[-1][1], out[segs[-1][1] - 1], T)
    return out


def lever_arms(skel):
    """Per bone (B,), the farthest head or tail of itself and its descendants from its head
    (world units): how far a rotation error of the bone carries."""
    out = np.linalg.norm(skel.tails - skel.heads, axis=1)
    for d in range(len(skel.names)):
        for a in skel.ancestors(d):
            out[a] = max(out[a], np.linalg.norm(skel.heads[d] - skel.heads[a]),
                         np.linalg.norm(skel.tails[d] - skel.heads[a]))
    return out


def pose_points(rest, parents, order, lengths, basis, inherit=None):
    """Armature-space heads and tails (T,B,2,3) of every bone posed by ``basis`` {bone index:
    (T,4,4)} (other bones at rest), composed by Blender's parenting (constraints ignored).

    rest (B,4,4): bones' rest matrices in armature space (``Bone.matrix_local``)."""
    rest = np.asarray(rest, dtype=np.float64)
    T = next(iter(basis.values())).shape[0]
    B = len(parents)
    inherit = np.ones(B, bool) if inherit is None else np.asarray(inherit, bool)
    inv = np.linalg.inv(rest)
    P = np.empty((T, B, 4, 4))
    for b in order:
        p = parents[b]
        if p >= 0:
            base = P[:, p] @ (inv[p] @ rest[b])
            if not inherit[b]:
                base[:, :3, :3] = rest[b][:3, :3]
        else:
            base = np.broadcast_to(rest[b], (T, 4, 4))
        P[:, b] = base @ basis[b] if b in basis else base
    heads = P[..., :3, 3]
    tails = heads + P[..., :3, 1] * np.asarray(lengths, dtype=np.float64)[None, :, None]
    return np.stack([heads, tails], 2)


def retarget(F, joints, skel, mapping, *, contacts=None, valid=None, root_motion="hips",
             scale=None, floor=True, root_bone=None, origin=(0.0, 0.0, 0.0), rest_offsets=None,
             sole_offset=None, ramp=6):
    """Retarget source motion onto ``skel``.

    F (T,24,3,3) source global rotations, joints (T,24,3) source world positions.
    root_motion: ``hips`` (the hips bone carries it all), ``in_place`` (no horizontal
    translation), ``root_bone`` (the ground projection goes to ``root_bone``, hips relative to
    it) or ``object`` (the ground projection is returned as ``object_offset`` for the armature
    object; the bones move in place). scale: metres of target per metre of source (default:
    leg-length ratio). origin: world point where the source's origin lands (the rig's object
    location). Heights are scaled about the source's feet (``source_floor``: the contact
    segments' sole height, else the lowest sole point; ``sole_offset`` below the heel/toe
    joints), so the target's feet stay where the source's are; the floor correction
    (``floor_correction``, ``ramp`` frames) works per contact segment.

    Returns a dict with ``W`` (T,B,3,3), ``H`` (T,B,3) world poses, ``driven`` (bone indices),
    ``basis_rot`` {bone index: (T,3,3)}, ``basis_loc`` {bone index: (T,3)}, ``object_offset``
    (T,3) or None, ``scale``, ``aligned`` rests, ``floor_offset`` (T,).
    """
    if root_motion not in ROOT_MOTION:
        raise ValueError(f"root_motion must be one of {ROOT_MOTION}, not {root_motion!r}")
    F = np.asarray(F, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    T = F.shape[0]
    valid = np.isfinite(F).all((1, 2, 3)) & np.isfinite(joints).all((1, 2)) if valid is None else np.asarray(valid, bool)
    Fv = np.where(valid[:, None, None, None], np.nan_to_num(F), A)
    xv = np.where(valid[:, None, None], np.nan_to_num(joints), 0.0)
    offsets = smpl_rest_offsets(F, joints) if rest_offsets is None else np.asarray(rest_offsets, float)
    src_dirs = smpl_rest_directions(offsets)
    aligned, Q, G = rest_alignment(skel, mapping, src_dirs)

    driven = {}
    for name, joint in mapping.bones.items():
        if name in skel.index:
            driven[skel.index[name]] = Fv[:, JOINT_INDEX[joint]] @ (A.T @ aligned[name])
    hips_names = [b for b, j in mapping.bones.items() if j == "pelvis" and b in skel.index]
    if not hips_names:
        raise ValueError("no target bone follows the SMPL pelvis")
    # the hips: the top-most bone mapped to the pelvis
    hips = joint_bone(skel, mapping, "pelvis")

    if scale is None:
        tl = target_leg_length(skel, mapping)
        scale = tl / leg_length_source(joints) if tl else 1.0
    origin = np.asarray(origin, dtype=np.float64)

    # thigh-head midpoint of the target rest vs the source hip-joint midpoint
    thighs = [b for b in (joint_bone(skel, mapping, "left_hip"), joint_bone(skel, mapping, "right_hip")) if b is not None]
    m_src = 0.5 * (xv[:, 1] + xv[:, 2])
    if len(thighs) >= 2:
        m_rest = skel.heads[thighs].mean(0)
    else:
        m_rest = skel.heads[hips]
    delta0 = Fv[:, 0] @ (A.T @ G)  # hips' world rotation change from the (facing-aligned) rest
    ground = np.zeros((T, 3))
    ground[:, :2] = scale * m_src[:, :2]
    pivot = source_floor(np.where(valid[:, None, None], joints, np.nan),
                         None if contacts is None else np.asarray(contacts, bool) & valid[:, None], sole_offset)
    height = np.zeros((T, 3))
    height[:, 2] = pivot + scale * (m_src[:, 2] - pivot)
    if root_motion == "in_place":
        ground[:] = 0.0
    carry = np.zeros((T, 3)) if root_motion == "object" else ground  # what the bones carry
    hips_pos = origin + carry + height + np.einsum("tab,b->ta", delta0, skel.heads[hips] - m_rest)

    fixed = {}
    object_offset = None
    if root_motion == "root_bone" and root_bone is not None and root_bone in skel.index:
        rb = skel.index[root_bone]
        fixed[rb] = (np.broadcast_to(skel.rest_rot[rb], (T, 3, 3)).copy(), skel.heads[rb] + ground)
    elif root_motion == "object":
        object_offset = ground.copy()

    W, H = pose_target(skel, driven, hips, hips_pos, fixed)
    floor_offset = np.zeros(T)
    if floor and contacts is not None:
        pts = contact_points(skel, mapping)
        if pts is not None:
            rest_h = contact_rest(skel, pts)[:, 2] - origin[2]
            floor_z = origin[2] + pivot
            heights = contact_positions(skel, pts, W, H)[..., 2] - floor_z[:, None] - rest_h
            heights[~valid] = np.nan
            floor_offset = floor_correction(heights, np.asarray(contacts, bool) & valid[:, None], ramp)
            H = H + floor_offset[:, None, None] * np.array([0.0, 0.0, 1.0])
            hips_pos = hips_pos + floor_offset[:, None] * np.array([0.0, 0.0, 1.0])
            for rb, (rot, head) in fixed.items():  # the root bone stays on the floor
                H[:, rb] = head
            W, H = pose_target(skel, driven, hips, hips_pos, fixed)

    driven_idx = sorted(driven, key=skel.order.index)
    rots = basis_rotations(skel, W, driven_idx)
    basis_rot = {b: rots[:, i] for i, b in enumerate(driven_idx)}
    basis_loc = {hips: basis_locations(skel, W, H, hips, hips_pos)}
    for rb in fixed:
        basis_loc[rb] = basis_locations(skel, W, H, rb, fixed[rb][1])
        basis_rot[rb] = np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
    return {"W": W, "H": H, "driven": driven_idx, "hips": hips, "basis_rot": basis_rot, "basis_loc": basis_loc,
            "object_offset": object_offset, "scale": float(scale), "aligned": aligned, "alignment": Q,
            "facing": G, "floor_offset": floor_offset, "floor": pivot, "valid": valid}


def contact_points(skel, mapping):
    """The target's heel and toe points: [(bone, at_tail)] for left heel, left toe, right heel,
    right toe — the heads of the ankle and toe bones; without a toe bone, the ankle bone's tail."""
    out = []
    for ankle, toe in (("left_ankle", "left_foot"), ("right_ankle", "right_foot")):
        a, t = joint_bone(skel, mapping, ankle), joint_bone(skel, mapping, toe)
        if a is None:
            return None
        out += [(a, False), (t, False) if t is not None else (a, True)]
    return out


def contact_rest(skel, pts):
    return np.array([skel.tails[b] if tail else skel.heads[b] for b, tail in pts])


def contact_positions(skel, pts, W, H):
    """World positions (T,4,3) of the contact points in posed W/H."""
    out = []
    for b, tail in pts:
        if tail:
            off = skel.rest_rot[b].T @ (skel.tails[b] - skel.heads[b])
            out.append(H[:, b] + W[:, b] @ off)
        else:
            out.append(H[:, b])
    return np.stack(out, 1)


def matched_pose(W, H, rest_rot_src, rest_head_src, rest_rot_dst, rest_head_dst):
    """World pose (rot (T,3,3), head (T,3)) of a bone rigidly attached to a posed source bone
    by their rest relation: M_dst(t) = M_src(t) · M_src_rest⁻¹ · M_dst_rest (IK controls)."""
    rel_rot = rest_rot_src.T @ rest_rot_dst
    rel_pos = rest_rot_src.T @ (rest_head_dst - rest_head_src)
    return W @ rel_rot, H + W @ rel_pos


def pole_position(root, mid, tip, rest_root, rest_mid, rest_tip, rest_pole, W_root, rest_rot_root):
    """Pole-target positions (T,3) that keep an IK chain in the plane of the posed FK chain.

    The pole sits at the mid joint, pushed along the bend direction (mid away from the
    root–tip line) by its rest distance; nearly straight limbs fall back to the rest pole offset
    carried rigidly by the root bone.
    """
    dist = np.linalg.norm(rest_pole - rest_mid)
    rest_bend = rest_mid - 0.5 * (rest_root + rest_tip)
    side = 1.0 if np.dot(rest_bend, rest_pole - rest_mid) >= 0 else -1.0
    bend = mid - 0.5 * (root + tip)
    n = np.linalg.norm(bend, axis=-1, keepdims=True)
    limb = np.linalg.norm(tip - root, axis=-1, keepdims=True)
    rigid = W_root @ (rest_rot_root.T @ (rest_pole - rest_mid))
    use_bend = n > 0.02 * np.maximum(limb, 1e-6)
    d = np.where(use_bend, side * bend / np.where(n > 0, n, 1.0), normalize(rigid))
    return mid + dist * d
