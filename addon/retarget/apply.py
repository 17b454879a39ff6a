"""Retarget a Motion onto an existing armature (thin bpy layer over ``solve``).

* Presets (``presets``) map target bone names to SMPL joints, matched on the rig by ``names``.
* The math (world-space per-bone alignment, root motion, floor) runs in numpy for all frames at
  once. Rigs whose control bones are moved by constraints (Rigify's spine blends, parent
  switches) are then *refined* per frame: Blender evaluates the rig and each driven bone's
  basis is corrected by the parent space it really has, until every bone is within 0.01°.
* Keys are written in bulk through ``compat`` (layered actions on 4.4+), one F-curve group per
  bone, optionally reduced (``keyreduce``, bounded in world space), with the per-joint
  confidence as an animated custom property ``mocap_confidence`` on each mapped pose bone (its
  own group). The result is the rig's active action; the rig's previous action is kept on a
  muted NLA track.
* Export (BVH, FBX) is ``export``.
"""
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Matrix

from .. import compat
from engine.body.rotations import continuous_quaternions, matrix_to_quat_wxyz
from engine.body.skeleton import JOINT_INDEX

from ..scene import keyreduce
from ..scene.build_scene import Transaction, key_channels
from . import solve as rm
from .names import resolve_name, resolve_preset
from .presets import load_preset

CONF_PROP = "mocap_confidence"
CONF_GROUP = "Confidence"  # F-curve group of all confidence curves (apart from the bones' own groups)
FLOOR_RAMP_S = 0.2  # seconds over which a contact segment's floor correction fades in and out
CONF_SIGMA = 0.05  # metres: confidence 0.5 at this uncertainty


# --------------------------------------------------------------------------- skeleton
def object_scale(ob):
    return float(np.mean(np.linalg.norm(np.array(ob.matrix_world)[:3, :3], axis=0)))


def skeleton_from_armature(ob):
    """The rest skeleton of an armature object in world space (TargetSkeleton)."""
    Mw = np.array(ob.matrix_world)
    s = object_scale(ob)
    Ro = Mw[:3, :3] / s
    bones = list(ob.data.bones)
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = [index[b.parent.name] if b.parent else -1 for b in bones]
    ml = np.array([np.array(b.matrix_local) for b in bones])
    rot = np.einsum("ab,nbc->nac", Ro, ml[:, :3, :3])
    rot = np.array([_orthonormal(r) for r in rot])
    heads = np.array([b.head_local for b in bones]) @ Mw[:3, :3].T + Mw[:3, 3]
    tails = np.array([b.tail_local for b in bones]) @ Mw[:3, :3].T + Mw[:3, 3]
    inherit = [b.use_inherit_rotation for b in bones]
    local = [b.use_local_location for b in bones]
    return rm.TargetSkeleton(names, parents, rot, heads, tails, inherit, s, local, _orthonormal(Ro))


def _orthonormal(r):
    u, _, vt = np.linalg.svd(r)
    m = u @ vt
    return m if np.linalg.det(m) > 0 else u @ np.diag([1, 1, -1]) @ vt


# --------------------------------------------------------------------------- options/result
ROOT_MOTION_ITEMS = (("hips", "Hips Bone", "The hips bone carries all translation"),
                     ("root_bone", "Root Bone", "Ground projection on the preset's root bone, hips relative to it"),
                     ("object", "Object", "Ground projection on the armature object, the bones move in place"),
                     ("in_place", "In Place", "No horizontal translation (height kept)"))


@dataclass
class RetargetOptions:
    root_motion: str = "hips"
    scale: float = None            # None: target leg length / source leg length
    floor: bool = True             # feet meet the floor during contacts
    reduce: bool = False           # key reduction (same default in the panel and the batch)
    tolerance_cm: float = keyreduce.DEFAULT_TOLERANCE_CM  # reduction: largest world deviation of any bone point
    confidence: bool = True        # animated custom property per mapped bone
    bone_colors: bool = False      # colour mapped bones by their mean confidence
    ik: bool = True                # key IK controls of chains that are in IK (presets with "ik")
    refine: str = "auto"           # "auto" (when constraints move the controls), "on", "off"
    frame_start: int = 1
    set_scene: bool = True
    action_name: str = None


@dataclass
class RetargetResult:
    action: object                   # the new action, active on the rig
    stashed: object                  # NLA strip (muted track) holding the rig's previous action, or None
    bones: dict                      # {target bone: SMPL joint}
    missing: list
    scale: float
    keyed_frames: int
    keys: int = 0                    # keyframes written (all curves)
    samples: int = 0                 # keyframes without reduction
    refined: bool = False
    max_error_deg: float = 0.0       # after refinement (driven bones vs wanted, evaluated)
    ik_chains: list = field(default_factory=list)
    inactive: list = field(default_factory=list)  # mapped controls left unkeyed (FK of limbs in IK)
    reduce_error_cm: float = 0.0     # worst world deviation of a bone point after key reduction


def confidence_from_sigma(sigma):
    sigma = np.asarray(sigma, dtype=np.float64)
    return 1.0 / (1.0 + (sigma / CONF_SIGMA) ** 2)


# --------------------------------------------------------------------------- main entry
def update_world(scene=None):
    """Let Blender evaluate the scene, so object world matrices are current.

    An object appended or linked a moment ago (the batch's ``--rig``) reads an identity
    ``matrix_world`` until the view layer is evaluated; a rig imported from FBX (+90° X, 0.01)
    would then be retargeted as if it stood unrotated at scale 1."""
    scene = scene or bpy.context.scene
    layer = bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0]
    layer.update()


def retarget_motion(motion, target, preset, options=None, scene=None, name=None):
    """Retarget ``motion`` onto the armature object ``target`` with ``preset`` (id, path or dict).

    The result becomes the rig's active action (the Graph Editor shows it); the action the rig
    had is kept on its own muted NLA track; rig settings the retarget needs (Rigify's pole
    switches, the IK bones' stretch) are keyed in the new action, never changed on the rig. Everything created is removed again if
    anything fails. Returns RetargetResult.
    """
    opts = options or RetargetOptions()
    scene = scene or bpy.context.scene
    preset = load_preset(preset)
    if target is None or target.type != "ARMATURE":
        raise ValueError("the retarget target must be an armature object")
    bones, rules, root_bone, missing = resolve_preset(preset, target)
    if not any(j == "pelvis" for j in bones.values()):
        raise ValueError(f"the armature {target.name!r} has no bone for the SMPL pelvis "
                         f"(preset {preset.get('name', '?')!r}; missing: {', '.join(missing[:6])})")
    mapping = rm.Mapping(bones, rules, preset.get("default_rule"))
    update_world(scene)
    skel = skeleton_from_armature(target)
    T = motion.num_frames
    F = rm.smpl_world_rotations(motion.poses)
    joints = np.asarray(motion.joints, dtype=np.float64)
    valid = np.asarray(motion.valid, bool) & np.isfinite(F).all((1, 2, 3)) & np.isfinite(joints).all((1, 2))
    if not valid.any():
        raise ValueError("the motion has no valid frame")
    origin = np.array(target.matrix_world.translation)
    res = rm.retarget(F, joints, skel, mapping, contacts=motion.contacts, valid=valid,
                      root_motion=opts.root_motion, scale=opts.scale, floor=opts.floor,
                      root_bone=root_bone, origin=origin, sole_offset=_sole_offset(),
                      ramp=max(1, int(round(FLOOR_RAMP_S * float(motion.fps)))))
    W, H = res["W"].copy(), res["H"].copy()
    rot_bones = list(res["driven"]) + [b for b in res["basis_loc"] if b not in res["driven"]]
    loc_bones = set(res["basis_loc"])

    # IK chains (Rigify): key the IK controls where the rig is in IK, not its hidden FK controls
    ik_done, ik_links, inactive, switches = [], [], set(), []
    extra_rot, extra_loc = {}, {}
    if opts.ik:
        names = [b.name for b in target.data.bones]
        for chain in preset.get("ik", ()):
            got = _ik_chain(chain, target, skel, W, H)
            if got is None:
                continue
            for b, (rot, head, keys_rot) in got["bones"].items():
                W[:, b], H[:, b] = rot, head
                if keys_rot:
                    extra_rot[b] = True
                extra_loc[b] = True
            ik_done.append(got["name"])
            ik_links += got["links"]
            inactive |= {skel.index[n] for n in (resolve_name(f, names) for f in chain.get("fk", ())) if n}
            wanted = [list(chain["pole_switch"]) + [1]] if chain.get("pole_switch") else []
            for bone, prop, value in wanted + list(chain.get("keyed", ())):
                pb_name = resolve_name(bone, names)
                path = _setting_path(target, pb_name, prop) if pb_name else None
                if path:
                    switches.append((pb_name, path, float(value)))
    for b in extra_loc:
        if b not in rot_bones:
            rot_bones.append(b)
        loc_bones.add(b)
    pole_only = {b for b in extra_loc if b not in extra_rot}

    basis = _basis_matrices(skel, W, H, rot_bones, loc_bones)
    refined, err = False, 0.0
    need = opts.refine == "on" or (opts.refine == "auto" and _has_constraints(target, skel, rot_bones))
    if need and opts.refine != "off":
        thighs = [b for b in (rm.joint_bone(skel, mapping, "left_hip"), rm.joint_bone(skel, mapping, "right_hip"))
                  if b is not None and b in rot_bones]
        probe = {res["hips"]: thighs} if len(thighs) == 2 else {}
        basis, err = _refine(target, skel, W, H, rot_bones, loc_bones, basis, valid, probe, ik_links)
        refined = True
    keyed = [b for b in rot_bones if b not in inactive]

    action_name = opts.action_name or f"{target.name} {name or 'Motion'}"
    ad = target.animation_data
    previous = (ad.action, compat.assigned_slot(target)) if ad is not None and ad.action is not None else None
    frames = opts.frame_start + np.arange(T, dtype=np.float64)
    with Transaction(scene) as tx:
        try:
            channels = compat.new_action_for(target, action_name)
            tx.add(channels.action)
            curves = _curves(target, skel, basis, keyed, loc_bones, pole_only, valid, res, motion, bones, opts)
            curves += [(path, np.full((T, 1), value), "abs", pb, "switch") for pb, path, value in switches]
            written, samples, red_err = _write(channels, frames, curves, opts,
                                               _reduce_context(target, skel, basis, keyed))
            channels.action["mocap_clip"] = name or ""
            stashed = _stash(target, *previous) if previous else None
        except BaseException:
            if previous is not None:
                assign_action(target, *previous)
            raise
        if opts.confidence:
            _confidence_props(target, bones)
        if opts.bone_colors:
            _bone_colors(target, bones, motion, valid)
        if opts.set_scene:
            from ..scene.convert import scene_fps
            scene.render.fps, scene.render.fps_base = scene_fps(motion.fps)
            scene.frame_start = opts.frame_start
            scene.frame_end = opts.frame_start + T - 1
        target["mocap_retarget_preset"] = preset.get("name", "")
        target["mocap_retarget_scale"] = res["scale"]
    return RetargetResult(channels.action, stashed, bones, missing, res["scale"], int(valid.sum()), written, samples,
                          refined, err, ik_done, sorted(skel.names[b] for b in inactive), red_err)


# --------------------------------------------------------------------------- pieces
def _setting_path(ob, bone, prop):
    """Data path of a pose bone's setting: a custom property (Rigify's ``pole_vector``) or an
    animatable bone property (``ik_stretch``); None when the bone has neither."""
    pb = ob.pose.bones[bone]
    if prop in pb:
        return f'pose.bones["{bone}"]["{prop}"]'
    rna = pb.bl_rna.properties.get(prop)
    if rna is not None and rna.is_animatable and rna.type in ("FLOAT", "INT", "BOOLEAN") and not rna.is_array:
        return f'pose.bones["{bone}"].{prop}'
    return None


def _ik_chain(chain, ob, skel, W, H):
    """World poses for one IK chain's controls, or None when the chain is in FK / absent."""
    names = [b.name for b in ob.data.bones]
    sw = chain.get("switch")
    if sw:
        pb = resolve_name(sw[0], names)
        if pb is None or sw[1] not in ob.pose.bones[pb]:
            return None
        if float(ob.pose.bones[pb][sw[1]]) > float(chain.get("ik_below", 0.5)):
            return None  # the chain is in FK: its FK controls already drive it
    out, links = {}, []
    for ctrl, fk in (chain.get("match") or {}).items():
        c, f = resolve_name(ctrl, names), resolve_name(fk, names)
        if c is None or f is None:
            return None
        ci, fi = skel.index[c], skel.index[f]
        rot, head = rm.matched_pose(W[:, fi], H[:, fi], skel.rest_rot[fi], skel.heads[fi],
                                    skel.rest_rot[ci], skel.heads[ci])
        out[ci] = (rot, head, True)
        links.append(("match", ci, fi))
    pole = chain.get("pole")
    if pole:
        pn = resolve_name(pole["bone"], names)
        ids = [resolve_name(pole[k], names) for k in ("root", "mid", "tip")]
        if pn is None or None in ids:
            return None
        p, (r, m, t) = skel.index[pn], (skel.index[i] for i in ids)
        pos = rm.pole_position(H[:, r], H[:, m], H[:, t], skel.heads[r], skel.heads[m], skel.heads[t],
                               skel.heads[p], W[:, r], skel.rest_rot[r])
        out[p] = (W[:, p], pos, False)
        links.append(("pole", p, (r, m, t)))
    return {"name": chain.get("name", "ik"), "bones": out, "links": links}


def _basis_matrices(skel, W, H, rot_bones, loc_bones):
    """{bone index: (T,4,4) basis} from world poses (rotation from W; location where keyed)."""
    T = W.shape[0]
    rots = rm.basis_rotations(skel, W, rot_bones)
    out = {}
    for i, b in enumerate(rot_bones):
        M = np.broadcast_to(np.eye(4), (T, 4, 4)).copy()
        M[:, :3, :3] = rots[:, i]
        if b in loc_bones:
            M[:, :3, 3] = rm.basis_locations(skel, W, H, b, H[:, b])
        out[b] = M
    return out


def _has_constraints(ob, skel, bones):
    seen = set()
    for b in bones:
        for a in [b] + skel.ancestors(b):
            if a in seen:
                continue
            seen.add(a)
            if len(ob.pose.bones[skel.names[a]].constraints):
                return True
    return False


def _desired_armature(ob, skel, W, H, t, b, offset):
    """Wanted armature-space 4×4 of bone b at frame t (the object moved by ``offset``)."""
    Mw = np.array(ob.matrix_world)
    s = skel.object_scale
    Ro = Mw[:3, :3] / s
    D = np.eye(4)
    D[:3, :3] = Ro.T @ W[t, b]
    D[:3, 3] = Ro.T @ (H[t, b] - Mw[:3, 3] - (offset[t] if offset is not None else 0.0)) / s
    return D


def _refine(ob, skel, W, H, bones, loc_bones, basis, valid, probes=None, ik_links=(), tol_deg=0.02,
            tol_m=2e-4, max_iter=6):
    """Per frame: let Blender evaluate the rig and correct each driven bone by its real parent
    space, until every bone is within ``tol_deg`` / ``tol_m`` of its wanted pose.

    Rotation: basis ← (parent space)ᵀ · wanted, the parent space measured as evaluated pose ·
    current basisᵀ; a correction is passed on at once to the bone's driven descendants (they
    usually follow rigidly), so most frames converge in two evaluations. Location: a Newton step
    along the axes the location acts in (bone or parent axes). ``probes`` {bone: [bones]}: place
    that bone so the mean head of the listed bones lands where the model wants it (the hips by
    their thighs: Rigify's hips hang below a mid-spine pivot). IK controls and poles
    (``ik_links``) follow the *evaluated* FK chain.
    """
    probes = probes or {}
    ad = ob.animation_data
    saved = (ad.action, ad.use_nla) if ad else None
    if ad:
        ad.action = None
        ad.use_nla = False
    pbs = [ob.pose.bones[skel.names[b]] for b in bones]
    saved_basis = [pb.matrix_basis.copy() for pb in pbs]
    n = len(bones)
    pos_of = {b: i for i, b in enumerate(bones)}
    order = sorted(range(n), key=lambda i: skel.order.index(bones[i]))
    bone_set = set(bones)
    driven_anc = {i: next((pos_of[a] for a in skel.ancestors(bones[i]) if a in bone_set), None) for i in range(n)}
    has_loc = np.array([bones[i] in loc_bones for i in range(n)])
    local_loc = [pb.bone.use_local_location for pb in pbs]
    probe_idx = {pos_of[b]: [pos_of[k] for k in ks] for b, ks in probes.items() if b in pos_of}
    Mw = np.array(ob.matrix_world)
    s = skel.object_scale
    Ro = Mw[:3, :3] / s
    rest = {b: np.array(ob.data.bones[skel.names[b]].matrix_local) for b in bones}
    links = []
    for kind, a, b in ik_links:
        if kind == "match":
            links.append((kind, pos_of[a], pos_of[b], np.linalg.inv(rest[b]) @ rest[a]))
        else:
            r, m, t = b
            links.append((kind, pos_of[a], (pos_of[r], pos_of[m], pos_of[t]), None))
    view_layer = bpy.context.view_layer
    max_err = 0.0
    evals = 0
    try:
        for t in np.flatnonzero(valid):
            Drot = np.einsum("ab,nbc->nac", Ro.T, W[t, bones])
            Dpos = (H[t, bones] - Mw[:3, 3]) @ Ro / s
            want_probe = {i: Dpos[ks].mean(0) for i, ks in probe_idx.items()}
            cur = [basis[b][t].copy() for b in bones]
            for i, pb in enumerate(pbs):
                pb.matrix_basis = Matrix(cur[i].tolist())
            for it in range(max_iter + 1):
                view_layer.update()
                evals += 1
                M = np.array([np.array(pb.matrix) for pb in pbs])
                for kind, i, k, rel in links:  # IK controls follow the evaluated FK chain
                    if kind == "match":
                        D = M[k] @ rel
                        Drot[i], Dpos[i] = _orthonormal(D[:3, :3]), D[:3, 3]
                    else:
                        r, m, tip = k
                        Dpos[i] = rm.pole_position(M[r, :3, 3][None], M[m, :3, 3][None], M[tip, :3, 3][None],
                                                   rest[bones[r]][:3, 3], rest[bones[m]][:3, 3], rest[bones[tip]][:3, 3],
                                                   rest[bones[i]][:3, 3], _orthonormal(M[r, :3, :3])[None],
                                                   _orthonormal(rest[bones[r]][:3, :3]))[0]
                        Drot[i] = M[i, :3, :3]
                got = M[:, :3, 3].copy()
                want = Dpos.copy()
                for i, ks in probe_idx.items():
                    got[i], want[i] = M[ks, :3, 3].mean(0), want_probe[i]
                rerr = np.degrees(rm.rotation_angle(np.einsum("nba,nbc->nac", M[:, :3, :3], Drot)))
                perr = np.where(has_loc, np.linalg.norm(got - want, axis=1) * s, 0.0)
                if (rerr.max() < tol_deg and perr.max() < tol_m) or it == max_iter:
                    break
                change = {}
                for i in order:
                    Prot = M[i, :3, :3] @ cur[i][:3, :3].T
                    a = driven_anc[i]
                    if a is not None and a in change:
                        Prot = change[a] @ Prot
                    new_rot = _orthonormal(Prot.T @ Drot[i])
                    change[i] = (Prot @ new_rot) @ M[i, :3, :3].T
                    cur[i][:3, :3] = new_rot
                    if has_loc[i]:
                        if local_loc[i]:
                            L = Prot
                        else:
                            par = pbs[i].parent
                            L = _orthonormal(np.array(par.matrix)[:3, :3]) if par is not None else np.eye(3)
                        cur[i][:3, 3] = cur[i][:3, 3] + L.T @ (want[i] - got[i])
                for i, pb in enumerate(pbs):
                    pb.matrix_basis = Matrix(cur[i].tolist())
            max_err = max(max_err, float(rerr.max()))
            for i, b in enumerate(bones):
                basis[b][t] = cur[i]
    finally:
        for pb, mb in zip(pbs, saved_basis):
            pb.matrix_basis = mb
        if ad and saved:
            ad.action, ad.use_nla = saved
        view_layer.update()
    _refine.last_evaluations = evals
    return basis, float(max_err)


def quat_to_axis_angle(q):
    """(T,4) continuous quaternions → (T,4) Blender axis-angle (angle, x, y, z); the angle runs
    continuously in [0, 2π] with the quaternions, an undefined axis (no rotation) keeps the
    previous frame's."""
    q = np.asarray(q, dtype=np.float64)
    v = q[:, 1:]
    n = np.linalg.norm(v, axis=1)
    out = np.empty_like(q)
    out[:, 0] = 2.0 * np.arctan2(n, q[:, 0])
    axis = np.where(n[:, None] > 1e-9, v / np.where(n > 1e-9, n, 1.0)[:, None], np.nan)
    last = np.array([0.0, 1.0, 0.0])
    for t in range(len(q)):
        if np.isfinite(axis[t]).all():
            last = axis[t]
        elif np.isfinite(q[t]).all():
            axis[t] = last
    out[:, 1:] = axis
    return out


def _rotation_channels(pb, Mrot, valid):
    """(data_path, components (T,C), metric) for a pose bone's rotation mode."""
    mode = pb.rotation_mode
    path = f'pose.bones["{pb.name}"]'
    if mode in ("QUATERNION", "AXIS_ANGLE"):
        q = continuous_quaternions(matrix_to_quat_wxyz(Mrot), valid)
        if mode == "AXIS_ANGLE":  # keyed in the bone's own mode: the rig's setting stays
            return f"{path}.rotation_axis_angle", quat_to_axis_angle(q), "abs"
        return f"{path}.rotation_quaternion", q, "quat"
    eul = np.empty((len(Mrot), 3))
    prev = None
    for t in range(len(Mrot)):
        if not valid[t]:
            eul[t] = np.nan
            continue
        e = Matrix(Mrot[t].tolist()).to_euler(mode, prev) if prev is not None else Matrix(Mrot[t].tolist()).to_euler(mode)
        eul[t] = e[:]
        prev = e
    return f"{path}.rotation_euler", eul, "abs"


def _curves(ob, skel, basis, rot_bones, loc_bones, pole_only, valid, res, motion, bones, opts):
    """[(data_path, values (T,C), metric, group, kind)]: one group per bone, confidence apart."""
    curves = []
    for b in rot_bones:
        name = skel.names[b]
        pb = ob.pose.bones[name]
        M = basis[b]
        if b not in pole_only:
            path, vals, metric = _rotation_channels(pb, M[:, :3, :3], valid)
            vals = np.where(valid[:, None], vals, np.nan)
            curves.append((path, vals, metric, name, "rot"))
        if b in loc_bones:
            loc = np.where(valid[:, None], M[:, :3, 3], np.nan)
            curves.append((f'pose.bones["{name}"].location', loc, "dist", name, "loc"))
    if res["object_offset"] is not None:
        loc = np.array(ob.location)[None] + res["object_offset"]
        loc = np.where(valid[:, None], loc, np.nan)
        curves.append(("location", loc, "dist", "Object Transforms", "objloc"))
    if opts.confidence:
        sigma = np.asarray(motion.joint_sigma, dtype=np.float64)
        for name, joint in bones.items():
            c = confidence_from_sigma(sigma[:, JOINT_INDEX[joint]])
            c = np.where(valid & np.isfinite(c), c, 0.0)
            curves.append((f'pose.bones["{name}"]["{CONF_PROP}"]', c[:, None], "abs", CONF_GROUP, "conf"))
    return curves


def _write(channels, frames, curves, opts, ctx):
    """Key every curve in bulk; reduced (Bezier, aligned handles) when ``opts.reduce``.

    Returns (keys written, samples, worst world deviation in cm after reduction)."""
    written = samples = 0
    picks, err_cm = ({}, 0.0)
    if opts.reduce:
        picks, err = _reduce_world(curves, frames, ctx, opts.tolerance_cm / 100.0)
        err_cm = 100.0 * err
    for k, (path, vals, metric, group, kind) in enumerate(curves):
        C = vals.shape[1]
        if kind == "switch":  # a rig setting this action needs: one constant key
            for i in range(C):
                _constant_key(channels.new_fcurve(path, i, group), frames[0], float(vals[0, i]))
            written += C
            samples += C
            continue
        ok = np.isfinite(vals).all(1)
        samples += int(ok.sum()) * C
        if k not in picks:
            key_channels(channels, frames, [(path, i, group, vals[:, i]) for i in range(C)])
            written += int(ok.sum()) * C
            continue
        keys, m = picks[k]
        before_gap = (keys + 1 < len(ok)) & ~ok[np.minimum(keys + 1, len(ok) - 1)]
        for i in range(C):
            fc = channels.new_fcurve(path, i, group)
            write_bezier(fc, frames[keys], vals[keys, i], m[:, i], linear=before_gap)
        written += len(keys) * C
    return written, samples, err_cm


def _constant_key(fc, frame, value):
    kp = fc.keyframe_points
    kp.add(1)
    kp[0].co = (float(frame), value)
    kp[0].interpolation = "CONSTANT"
    fc.update()
    return fc


def _reduce_context(ob, skel, basis, keyed):
    """What the world-space key reduction needs: the rest in armature space and the full basis."""
    rest = np.array([np.array(b.matrix_local) for b in ob.data.bones])
    lengths = np.array([b.length for b in ob.data.bones])
    return {"skel": skel, "rest": rest, "lengths": lengths, "basis": {b: basis[b] for b in keyed},
            "modes": {b: ob.pose.bones[skel.names[b]].rotation_mode for b in keyed}}


def _curve_matrix(vals, metric, mode):
    """Rotation matrices (T,3,3) from a rotation curve's values (quaternion, axis-angle, Euler)."""
    if mode == "AXIS_ANGLE":
        a = np.nan_to_num(vals)
        half = 0.5 * a[:, :1]
        axis = a[:, 1:] / np.maximum(np.linalg.norm(a[:, 1:], axis=1, keepdims=True), 1e-12)
        return rm.quat_to_matrix(np.concatenate([np.cos(half), np.sin(half) * axis], 1))
    if metric == "quat":
        q = np.nan_to_num(vals)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return rm.quat_to_matrix(q)
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler(mode.lower(), np.nan_to_num(vals)).as_matrix()


def _reduce_world(curves, frames, ctx, tol_m, max_rounds=8):
    """Key reduction with a world-space bound: every bone's head and tail stays within
    ``tol_m`` (metres) of the unreduced pose, as the bone hierarchy composes the reduced
    channels (errors add up along a chain, so each bone's angular tolerance starts at tol / its
    lever arm and is halved on the chains that still miss, until none does).

    Returns ({curve index: (keys, slopes)}, worst deviation in metres)."""
    skel = ctx["skel"]
    s = skel.object_scale
    valid = None
    lever = rm.lever_arms(skel)
    tol = {}
    for k, (path, vals, metric, group, kind) in enumerate(curves):
        if kind == "rot":
            tol[k] = tol_m / max(lever[skel.index[group]], 0.05)
        elif kind == "loc":
            tol[k] = 0.5 * tol_m / s
        elif kind == "objloc":
            tol[k] = tol_m
        elif kind == "conf":
            tol[k] = 0.02
        if kind == "rot" and metric != "quat":
            tol[k] /= 3.0  # per Euler component
        if valid is None and kind in ("rot", "loc"):
            valid = np.isfinite(vals).all(1)
    picks, rec = {}, {}
    todo = set(tol)
    full = rm.pose_points(ctx["rest"], skel.parents, skel.order, ctx["lengths"], ctx["basis"])
    err = 0.0
    for _ in range(max_rounds):
        for k in todo:
            vals, metric = curves[k][1], curves[k][2]
            keys, m = keyreduce.reduce(frames, vals, tol[k], metric)
            picks[k] = (keys, m)
            rec[k] = keyreduce.evaluate(frames[keys], vals[keys], m, frames) if len(keys) else vals
        basis = {b: M.copy() for b, M in ctx["basis"].items()}
        for k, (path, vals, metric, group, kind) in enumerate(curves):
            if kind == "rot":
                b = skel.index[group]
                basis[b][:, :3, :3] = _curve_matrix(rec[k], metric, ctx["modes"][b])
            elif kind == "loc":
                basis[skel.index[group]][:, :3, 3] = rec[k]
        if not basis:
            break
        got = rm.pose_points(ctx["rest"], skel.parents, skel.order, ctx["lengths"], basis)
        dev = np.linalg.norm(got - full, axis=-1).max(-1) * s  # (T,B) worst of head/tail
        dev = dev[valid] if valid is not None and valid.any() else dev
        worst = dev.max(0)
        err = float(worst.max()) if worst.size else 0.0
        bad = np.flatnonzero(worst > tol_m)
        if not len(bad):
            break
        hit = set()
        for b in bad:
            hit |= {b, *skel.ancestors(b)}
        names = {skel.names[b] for b in hit}
        todo = {k for k, c in enumerate(curves) if c[4] in ("rot", "loc") and c[3] in names}
        for k in todo:
            tol[k] *= 0.5
    return picks, err


_ENUM_CODES = {}


def _enum_code(kp, attr, value):
    """The integer foreach_set wants for an enum value (read back from one key)."""
    key = (attr, value)
    if key not in _ENUM_CODES:
        setattr(kp[0], attr, value)
        buf = np.zeros(len(kp), dtype=np.int32)
        kp.foreach_get(attr, buf)
        _ENUM_CODES[key] = int(buf[0])
    return _ENUM_CODES[key]


def write_bezier(fc, x, y, m, linear=None):
    """Keys (x, y) with slopes m as Bezier keys with ALIGNED handles, in bulk. ``linear`` (n,)
    bool: keys whose following segment is linear (it bridges invalid frames: a Hermite segment
    there would swing out along the end slopes)."""
    n = len(x)
    if n == 0:
        return fc
    left, right = keyreduce.handles(x, y, m)
    kp = fc.keyframe_points
    kp.add(n)
    co = np.stack([x, y], -1).astype(np.float32)
    kp.foreach_set("co", co.ravel())
    interp = _enum_code(kp, "interpolation", "BEZIER")
    codes = np.full(n, interp, np.int32)
    if linear is not None and np.any(linear):
        codes[np.asarray(linear, bool)] = _enum_code(kp, "interpolation", "LINEAR")
    kp.foreach_set("interpolation", codes)
    for attr in ("handle_left_type", "handle_right_type"):
        code = _enum_code(kp, attr, "ALIGNED")
        kp.foreach_set(attr, np.full(n, code, np.int32))
    kp.foreach_set("handle_left", left.astype(np.float32).ravel())
    kp.foreach_set("handle_right", right.astype(np.float32).ravel())
    fc.update()
    return fc


def _confidence_props(ob, bones):
    for name in bones:
        pb = ob.pose.bones[name]
        if CONF_PROP not in pb:
            pb[CONF_PROP] = 1.0
        try:
            pb.id_properties_ui(CONF_PROP).update(min=0.0, max=1.0, soft_min=0.0, soft_max=1.0,
                                                  description="Capture confidence of this joint (1: sure)")
        except (AttributeError, TypeError):
            pass


def confidence_color(c):
    """Red (0) → yellow (0.5) → green (1)."""
    c = float(np.clip(c, 0.0, 1.0))
    return (min(1.0, 2.0 * (1.0 - c)), min(1.0, 2.0 * c), 0.1)


def _bone_colors(ob, bones, motion, valid):
    sigma = np.asarray(motion.joint_sigma, dtype=np.float64)
    for name, joint in bones.items():
        c = confidence_from_sigma(sigma[valid, JOINT_INDEX[joint]])
        mean = float(np.nanmean(c)) if np.isfinite(c).any() else 0.0
        pb = ob.pose.bones[name]
        col = getattr(pb, "color", None)
        if col is None:
            continue
        col.palette = "CUSTOM"
        rgb = confidence_color(mean)
        col.custom.normal = rgb
        col.custom.select = tuple(min(1.0, v + 0.3) for v in rgb)
        col.custom.active = (1.0, 1.0, 1.0)


def assign_action(ob, action, slot):
    ad = ob.animation_data or ob.animation_data_create()
    ad.action = action
    if slot is not None and hasattr(ad, "action_slot"):
        ad.action_slot = slot


def unique_track_name(ad, base):
    names = {t.name for t in ad.nla_tracks}
    name, n = base, 1
    while name in names:
        name, n = f"{base}.{n:03d}", n + 1
    return name


def _stash(ob, action, slot):
    """Keep ``action`` (the rig's previous active action) as a strip on its own muted NLA track,
    so it has a user, survives saving and can be brought back; returns the strip."""
    ad = ob.animation_data
    track = ad.nla_tracks.new()
    track.name = unique_track_name(ad, action.name)
    track.mute = True
    strip = track.strips.new(action.name, int(np.floor(action.frame_range[0])), action)
    if slot is not None and hasattr(strip, "action_slot"):
        try:
            strip.action_slot = slot
        except (TypeError, AttributeError, RuntimeError):
            pass
    return strip


def _sole_offset():
    """Heights of the heel/toe contact points below their SMPL joints (engine.clean.contacts)."""
    from ..enginepath import ensure_engine
    ensure_engine()
    from engine.clean.contacts import SOLE_OFFSET
    return np.asarray(SOLE_OFFSET, dtype=np.float64)
