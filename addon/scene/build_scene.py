"""Turn a Motion into Blender data: armature, skinned body, bulk keyframes, camera, video plane.

Thin bpy layer over ``convert`` (all the math) and ``compat.py`` (version differences).
Everything is built inside a ``Transaction``: on any error the new data-blocks are removed and
the scene settings restored, so a failed import leaves the file as it was.
"""
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from .. import compat
from . import convert
from ..enginepath import ensure_engine

ensure_engine()
from engine.body.rotations import continuous_quaternions, matrix_to_quat_wxyz  # noqa: E402
from engine.body.skeleton import JOINT_NAMES, PARENTS  # noqa: E402

ROT_PATH = 'pose.bones["{}"].rotation_quaternion'
LOC_PATH = 'pose.bones["{}"].location'
REPROJECTION_PROP = "mocap_reprojection"  # animated, % of the person's height (Motion.reprojection)
_SCENE_KEYS = ("frame_start", "frame_end", "frame_current", "camera")
_RENDER_KEYS = ("fps", "fps_base", "resolution_x", "resolution_y", "pixel_aspect_x", "pixel_aspect_y")


class Transaction:
    """Record what an import creates or changes; undo it all if the import fails."""

    def __init__(self, scene):
        self.scene = scene
        self.ids = []
        self._scene_state = {k: getattr(scene, k) for k in _SCENE_KEYS}
        self._render_state = {k: getattr(scene.render, k) for k in _RENDER_KEYS}

    def add(self, idblock):
        self.ids.append(idblock)
        return idblock

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.rollback()
        return False

    def rollback(self):
        for idb in reversed(self.ids):
            try:
                coll = _collection_of(idb)
                if coll is not None:
                    coll.remove(idb, do_unlink=True)
            except ReferenceError:
                pass
        self.ids.clear()
        for k, v in self._scene_state.items():
            try:
                setattr(self.scene, k, v)
            except (ReferenceError, TypeError, AttributeError):
                pass
        for k, v in self._render_state.items():
            setattr(self.scene.render, k, v)


def _collection_of(idb):
    for kind, coll in ((bpy.types.Object, bpy.data.objects), (bpy.types.Mesh, bpy.data.meshes),
                       (bpy.types.Armature, bpy.data.armatures), (bpy.types.Action, bpy.data.actions),
                       (bpy.types.Camera, bpy.data.cameras), (bpy.types.Image, bpy.data.images),
                       (bpy.types.Material, bpy.data.materials), (bpy.types.Collection, bpy.data.collections)):
        if isinstance(idb, kind):
            return coll
    return None


@dataclass
class ImportResult:
    collection: object
    armature: object
    mesh: object
    action: object
    camera: object = None
    plane: object = None
    keyed_frames: int = 0


# --------------------------------------------------------------------------- keying
def key_channels(channels, frames, curves):
    """Write keyframes in bulk. ``curves``: list of (data_path, index, group, values (N,)).

    ``frames`` (N,) are shared; NaN values (invalid frames) get no keys.
    """
    frames = np.asarray(frames, dtype=np.float64)
    out = []
    for data_path, index, group, values in curves:
        values = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(values)
        n = int(ok.sum())
        fc = channels.new_fcurve(data_path, index, group)
        if n:
            co = np.empty((n, 2), dtype=np.float32)
            co[:, 0] = frames[ok]
            co[:, 1] = values[ok]
            kp = fc.keyframe_points
            kp.add(n)
            kp.foreach_set("co", co.ravel())
            fc.update()
        out.append(fc)
    return out


# --------------------------------------------------------------------------- builders
def _link(tx, coll, ob):
    coll.objects.link(ob)
    return ob


def build_armature(tx, coll, name, rig, view_layer):
    arm = tx.add(bpy.data.armatures.new(name))
    arm.display_type = "OCTAHEDRAL"
    ob = tx.add(bpy.data.objects.new(name, arm))
    _link(tx, coll, ob)
    ob.show_in_front = True
    prev_active = view_layer.objects.active
    if prev_active is not None and prev_active.mode != "OBJECT":
        with bpy.context.temp_override(active_object=prev_active, object=prev_active, view_layer=view_layer):
            bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = ob
    with bpy.context.temp_override(active_object=ob, object=ob, view_layer=view_layer, scene=view_layer.id_data):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            ebs = []
            for j, jname in enumerate(JOINT_NAMES):
                eb = arm.edit_bones.new(jname)
                eb.head = rig["heads"][j]
                eb.tail = rig["tails"][j]
                eb.align_roll(rig["rest_rot"][j][:, 2])
                if PARENTS[j] >= 0:
                    eb.parent = ebs[PARENTS[j]]
                    eb.use_connect = False
                ebs.append(eb)
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")
    for pb in ob.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return ob


def build_body_mesh(tx, coll, name, body, betas, arm_ob):
    verts = body.shaped_vertices(betas) @ convert.A.T
    me = tx.add(bpy.data.meshes.new(name))
    me.from_pydata(verts.tolist(), [], np.asarray(body.faces).tolist())
    compat.set_smooth(me)
    me.update()
    ob = tx.add(bpy.data.objects.new(name, me))
    _link(tx, coll, ob)
    weights = np.asarray(body.weights)
    for j, jname in enumerate(JOINT_NAMES):
        vg = ob.vertex_groups.new(name=jname)
        col = weights[:, j]
        idx = np.flatnonzero(col > 1e-6)
        if not len(idx):
            continue
        # One call per distinct weight keeps this fast without per-vertex Python loops.
        w = np.round(col[idx], 5)
        order = np.argsort(w, kind="stable")
        uniq, starts = np.unique(w[order], return_index=True)
        bounds = list(starts[1:]) + [len(order)]
        for value, a, b in zip(uniq, starts, bounds):
            vg.add(idx[order[a:b]].tolist(), float(value), "REPLACE")
    mod = ob.modifiers.new("Armature", "ARMATURE")
    mod.object = arm_ob
    ob.parent = arm_ob
    mat = tx.add(bpy.data.materials.new(name))
    mat.diffuse_color = (0.85, 0.45, 0.25, 1.0)
    me.materials.append(mat)
    return ob


def animate_rig(tx, arm_ob, motion, rig, rest_joints, action_name, frame_start=1):
    T = motion.num_frames
    frames = frame_start + np.arange(T, dtype=np.float64)
    valid = np.asarray(motion.valid, dtype=bool) & np.isfinite(motion.poses).all(1) & np.isfinite(motion.trans).all(1)
    quats = convert.pose_quaternions(motion.poses, rig["D_quat"])
    quats[~valid] = np.nan
    quats = continuous_quaternions(quats, valid)
    loc = convert.root_locations(motion.trans, rest_joints[0], rig["rest_rot"][0])
    loc[~valid] = np.nan
    channels = compat.new_action_for(arm_ob, action_name)
    tx.add(channels.action)
    curves = []
    root = JOINT_NAMES[0]
    for i in range(3):
        curves.append((LOC_PATH.format(root), i, root, loc[:, i]))
    for j, jname in enumerate(JOINT_NAMES):
        for i in range(4):
            curves.append((ROT_PATH.format(jname), i, jname, quats[:, j, i]))
    rep = getattr(motion, "reprojection", None)
    if rep is not None and np.isfinite(rep).any():
        # per frame, how far the body sits from the person in the image (% of their height):
        # an animated property so an animator sees in the Graph Editor where to look
        arm_ob[REPROJECTION_PROP] = 0.0
        arm_ob.id_properties_ui(REPROJECTION_PROP).update(
            min=0.0, soft_max=10.0, subtype="PERCENTAGE",
            description="Distance of the body's landmarks from the detected keypoints, % of the person's height")
        curves.append((f'["{REPROJECTION_PROP}"]', 0, "Reprojection", np.where(valid, rep, np.nan)))
    key_channels(channels, frames, curves)
    return channels.action, int(valid.sum())


def build_camera(tx, coll, name, motion, scene, frame_start=1):
    settings = convert.camera_settings(motion.camera_intrinsics, motion.frame_size)
    cam = tx.add(bpy.data.cameras.new(name))
    cam.sensor_fit = settings["sensor_fit"]
    cam.sensor_width = settings["sensor_width"]
    cam.lens = settings["lens"]
    cam.shift_x, cam.shift_y = settings["shift_x"], settings["shift_y"]
    cam.clip_start = 0.05
    ob = tx.add(bpy.data.objects.new(name, cam))
    _link(tx, coll, ob)
    ob.rotation_mode = "QUATERNION"
    mats = convert.camera_world_matrices(motion.camera_extrinsics)
    finite = np.isfinite(mats).all(axis=(1, 2))
    if not finite.any():
        raise ValueError("the Motion file has no usable camera")
    first = mats[np.flatnonzero(finite)[0]]
    ob.matrix_world = Matrix(first.tolist())
    static = np.allclose(mats[finite], first, atol=1e-6)
    if not static:
        T = len(mats)
        loc = mats[:, :3, 3].copy()
        q = matrix_to_quat_wxyz(np.where(finite[:, None, None], mats[:, :3, :3], np.eye(3)))
        q = continuous_quaternions(q, finite)
        loc[~finite] = np.nan
        q[~finite] = np.nan
        channels = compat.new_action_for(ob, name)
        tx.add(channels.action)
        frames = frame_start + np.arange(T, dtype=np.float64)
        curves = [("location", i, "Object Transforms", loc[:, i]) for i in range(3)]
        curves += [("rotation_quaternion", i, "Object Transforms", q[:, i]) for i in range(4)]
        key_channels(channels, frames, curves)
    W, H = settings["resolution"]
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = settings["pixel_aspect"]
    scene.camera = ob
    return ob


def video_abspath(path):
    """The absolute path of a video given relative to the cwd or to the open .blend (``//``).

    Loaded as given, a cwd-relative path resolves only from that cwd, and Blender's save turns it
    into a wrong ``//../..`` path: the plane shows the missing-texture pink when reopened."""
    return str(Path(bpy.path.abspath(str(path))).expanduser().resolve())


def build_video_plane(tx, coll, name, motion, video_path, cam_ob, frame_offset):
    depth = convert.plane_depth(motion.joints, motion.valid, motion.camera_extrinsics)
    corners, uv = convert.video_plane(motion.camera_intrinsics, motion.frame_size, depth)
    cam_ob.data.clip_end = max(cam_ob.data.clip_end, depth * 2.0)
    me = tx.add(bpy.data.meshes.new(name))
    me.from_pydata(corners.tolist(), [], [[0, 1, 2, 3]])
    uvl = me.uv_layers.new(name="UVMap")
    uvl.data.foreach_set("uv", uv.ravel().astype(np.float32))
    me.update()
    image = tx.add(bpy.data.images.load(video_abspath(video_path), check_existing=False))
    if image.source != "MOVIE":
        image.source = "MOVIE"
    frames = max(int(image.frame_duration), motion.num_frames)
    mat = tx.add(compat.image_texture_emission_material(name, image, frames, frame_offset))
    me.materials.append(mat)
    ob = tx.add(bpy.data.objects.new(name, me))
    _link(tx, coll, ob)
    ob.parent = cam_ob  # camera-local corners: the plane follows a moving camera
    ob.hide_select = True
    for attr in ("visible_shadow",):
        if hasattr(ob, attr):
            setattr(ob, attr, False)
    return ob


def clip_name(motion, path=None):
    src = (motion.source or {}).get("video")
    stem = Path(src).stem if src else (Path(path).stem if path else "motion")
    return stem or "motion"


def import_motion(motion, body, scene=None, name=None, video_path=None, with_mesh=True,
                  with_camera=None, set_scene=True, frame_start=1, motion_path=None):
    """Build the armature (+ body, camera, video plane) of ``motion`` in ``scene``.

    ``video_path``: the reference video (default: the file's source video when it exists).
    ``with_camera`` default: when a video reference is present. ``motion_path``: the Motion
    file on disk, recorded on the armature (``mocap_motion_path``, with ``mocap_frame_start``)
    for later analyses (Analyse Pitch). Returns ImportResult.
    """
    scene = scene or bpy.context.scene
    view_layer = bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0]
    name = name or clip_name(motion)
    if video_path is None:
        src = (motion.source or {}).get("video")
        video_path = src if src and Path(src).is_file() else None
    if with_camera is None:
        with_camera = video_path is not None
    betas = np.asarray(motion.betas, dtype=np.float64)
    rest_joints = body.rest_joints(betas)
    rig = convert.rig_rest(rest_joints, PARENTS)
    with Transaction(scene) as tx:
        coll = tx.add(bpy.data.collections.new(name))
        scene.collection.children.link(coll)
        arm_ob = build_armature(tx, coll, name, rig, view_layer)
        arm_ob["mocap_source"] = str((motion.source or {}).get("video", ""))
        arm_ob["mocap_body_model"] = str(motion.body_model)
        arm_ob["mocap_motion_path"] = str(Path(motion_path).resolve()) if motion_path else ""
        arm_ob["mocap_frame_start"] = int(frame_start)
        rep = (motion.source or {}).get("reprojection") or {}
        if rep:
            arm_ob["mocap_reprojection_median"] = float(rep["median"])
            arm_ob["mocap_reprojection_p90"] = float(rep["p90"])
        mesh_ob = build_body_mesh(tx, coll, f"{arm_ob.name} Body", body, betas, arm_ob) if with_mesh else None
        action, nvalid = animate_rig(tx, arm_ob, motion, rig, rest_joints, f"{arm_ob.name} Motion", frame_start)
        cam_ob = plane_ob = None
        if set_scene:
            scene.render.fps, scene.render.fps_base = convert.scene_fps(motion.fps)
            scene.frame_start = frame_start
            scene.frame_end = frame_start + motion.num_frames - 1
            scene.frame_current = frame_start
        if with_camera:
            cam_ob = build_camera(tx, coll, f"{arm_ob.name} Camera", motion, scene, frame_start)
            if video_path is not None:
                fr = (motion.source or {}).get("frame_range") or [0]
                plane_ob = build_video_plane(tx, coll, f"{arm_ob.name} Video", motion, video_path,
                                             cam_ob, int(fr[0]))
        for ob in view_layer.objects:
            ob.select_set(False)
        arm_ob.select_set(True)
        view_layer.objects.active = arm_ob
    return ImportResult(coll, arm_ob, mesh_ob, action, cam_ob, plane_ob, nvalid)


_BODY_CACHE = {}


def load_body(path=None):
    """The body model for the rig: the user's SMPL file when given, else the open body (cached)."""
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    p = Path(bpy.path.abspath(path)) if path else OPEN_BODY_PATH
    key = (str(p), p.stat().st_mtime if p.is_file() else None)
    if key not in _BODY_CACHE:
        _BODY_CACHE.clear()
        _BODY_CACHE[key] = load_body_model(p)
    return _BODY_CACHE[key]
