"""Export a rig's animation so it re-imports in place with Blender's default import settings:
BVH (own writer: the deform skeleton, Y up) and FBX (Blender's exporter, the frame range shifted
for its importer)."""
from pathlib import Path

import bpy
import numpy as np

from .. import compat
from .apply import assign_action, unique_track_name, update_world

# Blender world (Z up, −Y forward) → BVH file axes (Y up, −Z forward): Blender's BVH importer
# with its default axes (forward −Z, up Y) and scale 1 maps the file back onto the same place.
BVH_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
EXPORT_BONES = ("deform", "all")


def export_skeleton(ob, bones="deform"):
    """[(bone name, parent name or None)] in hierarchy order: the deform bones (``"deform"``;
    all bones when the rig has none) or every bone (``"all"``).

    A deform bone's parent is its nearest deform ancestor, or the deform twin of a control
    ancestor (Rigify parents ``DEF-thigh.L`` to ``ORG-spine``: its parent here is ``DEF-spine``),
    so a control rig exports as one deform hierarchy; tops that remain are joined under their
    lowest common ancestor."""
    if bones not in EXPORT_BONES:
        raise ValueError(f"bones must be one of {EXPORT_BONES}, not {bones!r}")
    arm = ob.data.bones
    keep = [b for b in arm if b.use_deform] if bones == "deform" else list(arm)
    keep = keep or list(arm)
    names = {b.name for b in keep}

    def twin(a):
        for pre in ("ORG-", "MCH-"):
            if a.name.startswith(pre) and "DEF-" + a.name[len(pre):] in names:
                return "DEF-" + a.name[len(pre):]
        return None

    parent = {}
    for b in keep:
        parent[b.name] = None
        for a in b.parent_recursive:
            cand = a.name if a.name in names else twin(a)
            if cand is not None and cand != b.name and b not in arm[cand].parent_recursive:
                parent[b.name] = cand
                break
    tops = [n for n, p in parent.items() if p is None]
    if len(tops) > 1:
        common = set(p.name for p in arm[tops[0]].parent_recursive)
        for n in tops[1:]:
            common &= {p.name for p in arm[n].parent_recursive}
        if common:
            low = max((arm[n] for n in common), key=lambda b: len(b.parent_recursive)).name
            parent.update({n: low for n in tops})
            parent[low] = None
    depth = {}

    def level(n):
        if n not in depth:
            depth[n] = 0 if parent[n] is None else level(parent[n]) + 1
        return depth[n]
    order = {b.name: i for i, b in enumerate(arm)}
    return sorted(((n, p) for n, p in parent.items()), key=lambda np_: (level(np_[0]), order[np_[0]]))


def _bvh_frames(ob, names, scene, frames):
    """World pose matrices (F,n,4,4) of the named bones over ``frames`` (Blender evaluates)."""
    current = scene.frame_current
    pbs = [ob.pose.bones[n] for n in names]
    out = np.empty((len(frames), len(names), 4, 4))
    try:
        for k, f in enumerate(frames):
            scene.frame_set(int(f))
            Mw = np.array(ob.matrix_world)
            out[k] = Mw @ np.array([np.array(pb.matrix) for pb in pbs])
    finally:
        scene.frame_set(current)
    return out


def write_bvh(ob, path, scene, frame_start, frame_end, bones="deform"):
    """A BVH of ``ob``'s animation over [frame_start, frame_end]: the chosen skeleton (see
    ``export_skeleton``) in metres, Y up, so that Blender's importer with its defaults puts every
    joint back where it was. Rotations ZXY in world-aligned joint frames; the root has position
    channels, other joints only where their offset from the parent changes (stretch)."""
    from scipy.spatial.transform import Rotation
    skel = export_skeleton(ob, bones)
    names = [n for n, _ in skel]
    index = {n: i for i, n in enumerate(names)}
    parent = [index[p] if p is not None else -1 for _, p in skel]
    Mw = np.array(ob.matrix_world)
    rest = np.array([Mw @ np.array(ob.data.bones[n].matrix_local) for n in names])
    tails = np.array([Mw @ np.r_[np.array(ob.data.bones[n].tail_local), 1.0] for n in names])[:, :3]
    frames = np.arange(int(frame_start), int(frame_end) + 1)
    P = _bvh_frames(ob, names, scene, frames)
    C = BVH_AXES

    def rot(M):
        u, _, vt = np.linalg.svd(M[..., :3, :3])
        return u @ vt

    G = C @ np.einsum("fnab,ncb->fnac", rot(P), rot(rest)) @ C.T      # world-aligned rotation change
    head = P[..., :3, 3] @ C.T
    rest_head = rest[:, :3, 3] @ C.T
    local_rot = np.empty_like(G)
    local_pos = np.empty_like(head)
    for i, p in enumerate(parent):
        if p < 0:
            local_rot[:, i], local_pos[:, i] = G[:, i], head[:, i]
        else:
            local_rot[:, i] = np.swapaxes(G[:, p], -1, -2) @ G[:, i]
            local_pos[:, i] = np.einsum("fba,fb->fa", G[:, p], head[:, i] - head[:, p])
    offsets = np.array([rest_head[i] - (rest_head[p] if p >= 0 else 0.0) for i, p in enumerate(parent)])
    moves = [p < 0 or float(np.abs(local_pos[:, i] - offsets[i]).max()) > 1e-3 for i, p in enumerate(parent)]
    euler = np.degrees(Rotation.from_matrix(local_rot.reshape(-1, 3, 3)).as_euler("ZXY")).reshape(len(frames), -1, 3)
    kids = {i: [k for k, p in enumerate(parent) if p == i] for i in range(len(names))}
    lines = ["HIERARCHY"]

    def joint(i, depth):
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if parent[i] < 0 else 'JOINT'} {names[i]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET {offsets[i][0]:.6f} {offsets[i][1]:.6f} {offsets[i][2]:.6f}")
        ch = "Xposition Yposition Zposition Zrotation Xrotation Yrotation" if moves[i] else "Zrotation Xrotation Yrotation"
        lines.append(f"{pad}\tCHANNELS {6 if moves[i] else 3} {ch}")
        for k in kids[i]:
            joint(k, depth + 1)
        if not kids[i]:
            end = (tails[i] @ C.T) - rest_head[i]
            lines.extend([f"{pad}\tEnd Site", pad + "\t{",
                          f"{pad}\t\tOFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}", pad + "\t}"])
        lines.append(pad + "}")
    order = []

    def visit(i):
        order.append(i)
        for k in kids[i]:
            visit(k)
    for i, p in enumerate(parent):
        if p < 0:
            joint(i, 0)
            visit(i)
    fps = scene.render.fps / scene.render.fps_base
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {1.0 / fps:.6f}"]
    for f in range(len(frames)):
        vals = []
        for i in order:
            if moves[i]:
                vals += [f"{v:.6f}" for v in local_pos[f, i]]
            vals += [f"{v:.5f}" for v in euler[f, i]]
        lines.append(" ".join(vals))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class _ShiftedOneFrame:
    """While exporting FBX: the rig's active action plays one frame early (in a temporary NLA
    strip, the rig's other tracks muted), so frame ``frame_start`` lands at FBX time 0 and
    Blender's FBX importer (animation offset 1 by default) puts it back on ``frame_start``."""

    def __init__(self, ob):
        self.ob = ob

    def __enter__(self):
        ad = self.ob.animation_data
        self.saved = None
        if ad is None or ad.action is None:
            return 0
        self.saved = (ad.action, compat.assigned_slot(self.ob), [(t, t.mute) for t in ad.nla_tracks])
        action, slot, tracks = self.saved
        for t, _ in tracks:
            t.mute = True
        self.track = ad.nla_tracks.new()
        self.track.name = unique_track_name(ad, "FBX export")
        start = int(np.floor(action.frame_range[0]))
        strip = self.track.strips.new("FBX export", start - 1, action)
        if slot is not None and hasattr(strip, "action_slot"):
            strip.action_slot = slot
        ad.action = None
        return 1

    def __exit__(self, *exc):
        if self.saved is None:
            return False
        action, slot, tracks = self.saved
        ad = self.ob.animation_data
        ad.nla_tracks.remove(self.track)
        for t, mute in tracks:
            t.mute = mute
        assign_action(self.ob, action, slot)
        return False


def export_armature(ob, path, fmt, frame_start=None, frame_end=None, scene=None, bones="deform"):
    """Export ``ob``'s animation so it re-imports in place with Blender's default import settings.

    BVH: ``write_bvh`` (the deform skeleton, or ``bones="all"``; metres, Y up). FBX: Blender's
    own exporter (io_scene_fbx), deform bones only unless ``bones="all"``, the frame range
    shifted so the importer's default offset lands every key on its frame."""
    import addon_utils
    scene = scene or bpy.context.scene
    fmt = fmt.lower()
    if fmt not in ("bvh", "fbx"):
        raise ValueError(f"unknown export format {fmt!r} (bvh or fbx)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fs = scene.frame_start if frame_start is None else int(frame_start)
    fe = scene.frame_end if frame_end is None else int(frame_end)
    update_world(scene)
    if fmt == "bvh":
        return write_bvh(ob, path, scene, fs, fe, bones)
    if bones not in EXPORT_BONES:
        raise ValueError(f"bones must be one of {EXPORT_BONES}, not {bones!r}")
    if not addon_utils.check("io_scene_fbx")[1]:
        addon_utils.enable("io_scene_fbx", default_set=False)
    view_layer = bpy.context.view_layer
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    saved_range = scene.frame_start, scene.frame_end
    for o in selected:
        o.select_set(False)
    ob.select_set(True)
    view_layer.objects.active = ob
    try:
        with _ShiftedOneFrame(ob) as shift:
            scene.frame_start, scene.frame_end = fs - shift, fe - shift
            with bpy.context.temp_override(active_object=ob, object=ob, selected_objects=[ob], scene=scene,
                                           view_layer=view_layer):
                r = bpy.ops.export_scene.fbx(filepath=str(path), check_existing=False, use_selection=True,
                                             object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
                                             use_armature_deform_only=bones == "deform",
                                             bake_anim=True, bake_anim_use_all_actions=False,
                                             bake_anim_use_nla_strips=False, bake_anim_simplify_factor=0.0)
    finally:
        scene.frame_start, scene.frame_end = saved_range
        ob.select_set(False)
        for o in selected:
            o.select_set(True)
        view_layer.objects.active = active
    if "FINISHED" not in r:
        raise RuntimeError(f"FBX export failed: {r}")
    return path
