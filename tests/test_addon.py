"""Blender extension core, on the bpy module (bpy==5.0.1; no Blender binary needed)."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import DEMO_VIDEO, ROOT, make_motion, make_toy_body  # noqa: E402

pytestmark = pytest.mark.blender


def _build():
    from addon.scene import build_scene as build
    return build


# ------------------------------------------------------------------ registration / manifest
def test_register_unregister_twice():
    import addon
    for _ in range(2):
        addon.register()
        assert hasattr(bpy.types, "MOCAP_OT_import_motion")
        assert hasattr(bpy.types, "MOCAP_OT_import_video")
        assert hasattr(bpy.types, "MOCAP_PT_main")
        assert hasattr(bpy.types.WindowManager, "mocap_running")
        assert addon.operators.menu_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
        assert addon._cli_handle is not None  # `blender -c mocap ...`
        addon.unregister()
        assert not hasattr(bpy.types, "MOCAP_OT_import_motion")
        assert not hasattr(bpy.types.WindowManager, "mocap_running")


def test_manifest_valid_for_blender_validator(tmp_path):
    """Blender's own validator (bl_pkg's blender_ext.py) on the extension's layout:
    the top-level manifest next to the add-on package, as the packaged zip has it."""
    import shutil
    import tomllib
    validator = Path(bpy.utils.resource_path("LOCAL")) / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not validator.is_file():
        pytest.skip("bl_pkg validator not found in this bpy")
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert manifest["blender_version_min"] == "4.2.0"
    stage = tmp_path / manifest["id"]
    shutil.copytree(ROOT / "addon", stage, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "blender_manifest.toml", stage)
    out = subprocess.run([sys.executable, str(validator), "validate", str(stage)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Success" in out.stdout, out.stdout + out.stderr


def test_preferences_defaults_without_enable(blender_addon):
    from addon.preferences import get_prefs
    p = get_prefs()
    assert (p.device, p.smpl_path, p.smoothing) == ("auto", "", "light")


def test_preference_defaults_match_the_properties(blender_addon):
    """The defaults used without an enabled add-on (get_prefs) are those of the preferences'
    own properties (following the subject, the refinement and the rest)."""
    from addon.preferences import DEFAULTS, MOCAP_AP_preferences
    props = MOCAP_AP_preferences.__annotations__
    assert set(vars(DEFAULTS)) == set(props) and DEFAULTS.follow is True
    for name, value in vars(DEFAULTS).items():
        assert props[name].keywords["default"] == value, name


# ------------------------------------------------------------------ pure conversion math
def test_convert_quaternions_roundtrip():
    from addon.scene import convert
    from engine.body.kinematics import axis_angle_to_matrix
    from engine.body.rotations import continuous_quaternions, matrix_to_quat_wxyz
    rng = np.random.default_rng(0)
    aa = rng.normal(0, 1.5, (50, 3))
    q = convert.axis_angle_to_quat(aa)
    assert np.allclose(convert.quat_to_matrix(q), axis_angle_to_matrix(aa), atol=1e-12)
    m = convert.quat_to_matrix(q)
    q2 = matrix_to_quat_wxyz(m)
    assert np.allclose(convert.quat_to_matrix(q2), m, atol=1e-12)
    qc = continuous_quaternions(np.stack([q[0], -q[0], q[0]]))
    assert np.all(np.sum(qc[1:] * qc[:-1], -1) > 0)


def test_rig_rest_is_axis_aligned(toy_body):
    from addon.scene import convert
    from engine.body.skeleton import PARENTS
    rig = convert.rig_rest(toy_body.rest_joints(), PARENTS)
    for C, D in zip(rig["rest_rot"], rig["D"]):
        assert np.allclose(C @ C.T, np.eye(3)) and np.isclose(np.linalg.det(C), 1)
        assert set(np.unique(np.abs(C))) <= {0.0, 1.0} and set(np.unique(np.abs(D))) <= {0.0, 1.0}
    # spine bones point up, legs down, arms sideways
    assert np.allclose(rig["rest_rot"][3][:, 1], [0, 0, 1])
    assert np.allclose(rig["rest_rot"][4][:, 1], [0, 0, -1])
    assert np.allclose(rig["rest_rot"][18][:, 1], [1, 0, 0]) and np.allclose(rig["rest_rot"][19][:, 1], [-1, 0, 0])


@pytest.mark.parametrize("moving,aspect", [(False, 1.0), (True, 1.0), (True, 1.1), (False, 0.9)])
def test_camera_reproduces_projection(blender_addon, moving, aspect):
    """The Blender camera built from K/extrinsics projects world points to the same pixels
    (static and moving cameras, square and non-square pixels)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    from engine.estimate.camera import project, world_to_camera
    body = make_toy_body()
    m = make_motion(body, T=6, frame_size=(1280, 720))
    m.camera_intrinsics[1, 1] *= aspect
    if moving:
        m.camera_extrinsics[:, 0, 3] += np.linspace(0, 0.8, 6)  # camera slides and pans
        c, s_ = np.cos(np.linspace(0, 0.2, 6)), np.sin(np.linspace(0, 0.2, 6))
        R = np.zeros((6, 3, 3))
        R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s_, 1, -s_, c
        m.camera_extrinsics[:, :3, :] = np.einsum("tij,tjk->tik", R, m.camera_extrinsics[:, :3, :])
    res = _build().import_motion(m, body, bpy.context.scene, name="cam", with_camera=True)
    scene = bpy.context.scene
    assert (res.camera.animation_data is not None) == moving
    W, H = m.frame_size
    for f in (1, 4):
        scene.frame_set(f + 1)
        pts = m.joints[f]
        px = project(world_to_camera(pts[None], m.camera_extrinsics[f:f + 1])[0], m.camera_intrinsics)
        for p, expect in zip(pts, px):
            ndc = world_to_camera_view(scene, res.camera, Vector(p.tolist()))
            got = (ndc.x * W, (1 - ndc.y) * H)
            assert np.allclose(got, expect, atol=1e-2), (f, got, expect)


# ------------------------------------------------------------------ import a Motion file
def _smpl_global(motion, body, f):
    from engine.body import kinematics as K
    from engine.body.skeleton import PARENTS
    rot = K.axis_angle_to_matrix(motion.poses[f].reshape(24, 3).astype(np.float64))
    g = K.global_transforms(rot, body.rest_joints(motion.betas.astype(np.float64)), PARENTS)
    return rot, g[:, :3, :3]


@pytest.fixture(params=["toy_body", "open_body"])
def any_body(request):
    if request.param == "toy_body":
        return make_toy_body()
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    if not OPEN_BODY_PATH.is_file():
        pytest.skip("the open body (engine/data/open_body.npz) is not baked yet")
    return load_body_model()


def test_import_motion_file_rotations_exact(blender_addon, any_body, tmp_path):
    toy_body = any_body
    from addon import compat
    from addon.scene import convert
    from engine.body.skeleton import JOINT_NAMES, PARENTS
    from engine.motion import load_motion
    invalid = (10, 11, 12, 200)
    make_motion(toy_body, T=300, invalid=invalid).save(tmp_path / "walk.npz")
    motion = load_motion(tmp_path / "walk.npz")
    build = _build()
    build._BODY_CACHE.clear()
    res = build.import_motion(motion, toy_body, bpy.context.scene, name="walk")
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (1, 300, 30)
    arm = res.armature
    assert sorted(b.name for b in arm.data.bones) == sorted(JOINT_NAMES)
    assert res.mesh is not None and res.mesh.parent == arm and len(res.mesh.vertex_groups) == 24
    fcurves = list(compat.iter_fcurves(res.action))
    assert len(fcurves) == 24 * 4 + 3
    for fc in fcurves:
        assert len(fc.keyframe_points) == 300 - len(invalid)
        assert fc.group is not None and fc.group.name in JOINT_NAMES
    keyed = {int(round(k.co[0])) for k in fcurves[0].keyframe_points}
    assert not keyed & {i + 1 for i in invalid}
    rig = convert.rig_rest(toy_body.rest_joints(motion.betas.astype(np.float64)), PARENTS)
    dg = bpy.context.evaluated_depsgraph_get()
    for f in (0, 137, 299):
        scene.frame_set(f + 1)
        ev = arm.evaluated_get(dg)
        M = np.array([np.array(ev.pose.bones[n].matrix) for n in JOINT_NAMES])
        F = convert.global_rotations_from_bone_matrices(M[:, :3, :3], rig["D"])
        local, glob = _smpl_global(motion, toy_body, f)
        assert np.abs(F - glob).max() < 1e-5, f
        # local rotations: R_j = F_parentᵀ F_j (root: its global orientation)
        loc = np.array([F[j] if PARENTS[j] < 0 else F[PARENTS[j]].T @ F[j] for j in range(24)])
        assert np.abs(loc - local).max() < 1e-5, f
        assert np.abs(M[:, :3, 3] - motion.joints[f]).max() < 1e-4, f
        # and the pose-bone quaternion is the file's rotation conjugated by the fixed D_j
        q = np.array([ev.pose.bones[n].rotation_quaternion for n in JOINT_NAMES])
        expect = convert.pose_quaternions(motion.poses[f:f + 1], rig["D_quat"])[0]
        assert np.abs(np.abs(np.sum(q * expect, -1)) - 1).max() < 1e-6
    # the skinned body follows: evaluated mesh == the engine's own LBS (the toy has no correctives)
    me = res.mesh.evaluated_get(dg).to_mesh()
    v = np.empty(len(me.vertices) * 3)
    me.vertices.foreach_get("co", v)
    ref = toy_body.vertices(motion.poses[299:300].astype(np.float64), motion.betas.astype(np.float64),
                            motion.trans[299:300].astype(np.float64))[0]
    assert np.abs(v.reshape(-1, 3) - ref).max() < 1e-4


def test_reimport_makes_new_names_and_save_reopen(blender_addon, toy_body, tmp_path):
    from addon import compat
    motion = make_motion(toy_body, T=60)
    build = _build()
    a = build.import_motion(motion, toy_body, bpy.context.scene, name="clip")
    b = build.import_motion(motion, toy_body, bpy.context.scene, name="clip")
    assert a.armature.name == "clip" and b.armature.name != "clip"
    assert a.action.name != b.action.name and a.mesh.name != b.mesh.name
    assert a.armature.animation_data.action == a.action and b.armature.animation_data.action == b.action
    before = {(fc.data_path, fc.array_index, fc.group.name, len(fc.keyframe_points),
               round(fc.keyframe_points[7].co[1], 6)) for fc in compat.iter_fcurves(a.action)}
    names = (a.armature.name, a.action.name)
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    assert names[0] not in bpy.data.objects
    bpy.ops.wm.open_mainfile(filepath=str(path))
    arm = bpy.data.objects[names[0]]
    action = arm.animation_data.action
    assert action.name == names[1]
    after = {(fc.data_path, fc.array_index, fc.group.name, len(fc.keyframe_points),
              round(fc.keyframe_points[7].co[1], 6)) for fc in compat.iter_fcurves(action, compat.assigned_slot(arm))}
    assert after == before


def test_failed_import_leaves_scene_unchanged(blender_addon, toy_body):
    motion = make_motion(toy_body, T=20)
    motion.camera_extrinsics[:] = np.nan  # makes build_camera fail after armature/mesh/action exist
    scene = bpy.context.scene
    before = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "armatures", "actions", "cameras",
                                                       "collections", "materials")}
    state = (scene.frame_start, scene.frame_end, scene.render.fps)
    with pytest.raises(ValueError):
        _build().import_motion(motion, toy_body, scene, name="bad", with_camera=True)
    after = {k: len(getattr(bpy.data, k)) for k in before}
    assert after == before and (scene.frame_start, scene.frame_end, scene.render.fps) == state


def test_import_motion_operator(blender_addon, toy_body, tmp_path, monkeypatch):
    build = _build()
    monkeypatch.setattr(build, "load_body", lambda path=None: toy_body)
    make_motion(toy_body, T=30).save(tmp_path / "op_clip.npz")
    r = bpy.ops.mocap.import_motion(filepath=str(tmp_path / "op_clip.npz"))
    assert r == {"FINISHED"}
    assert "op_clip" in bpy.data.objects and bpy.data.objects["op_clip"].type == "ARMATURE"
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(RuntimeError, match="not a readable Motion file"):
        bpy.ops.mocap.import_motion(filepath=str(tmp_path / "broken.npz"))


# ------------------------------------------------------------------ background job (the modal's engine)
def test_engine_job_cancel_leaves_scene(blender_addon, monkeypatch):
    """The modal operator's thread: cancelling stops the engine; nothing is added to the file."""
    import threading
    import types
    from addon import jobs
    started = threading.Event()

    def fake_run(video, options, progress=None):
        from engine.errors import Cancelled
        started.set()
        for i in range(1000):
            if progress(i / 1000, f"frame {i}") is False:
                raise Cancelled("cancelled")
            threading.Event().wait(0.005)
        raise AssertionError("not cancelled")

    monkeypatch.setitem(sys.modules, "engine.pipeline", types.SimpleNamespace(run=fake_run))
    n_objects = len(bpy.data.objects)
    job = jobs.EngineJob("x.mp4", None).start()
    assert started.wait(5)
    job.cancel()
    job.join(5)
    assert job.done and job.cancelled and job.motion is None and job.error is None
    assert len(bpy.data.objects) == n_objects


def test_engine_job_error_message(monkeypatch):
    import types
    from addon import jobs
    from engine.errors import EngineError

    def bad_run(video, options, progress=None):
        raise EngineError("no person found")

    monkeypatch.setitem(sys.modules, "engine.pipeline", types.SimpleNamespace(run=bad_run))
    job = jobs.EngineJob("x.mp4", None).run_blocking()
    assert jobs.error_message(job.error) == "no person found"


def test_addon_never_imports_torch():
    code = ("import sys; sys.path.insert(0, %r); import bpy, addon; addon.register(); addon.unregister();"
            "import addon.scene.build_scene, addon.batch, addon.jobs; import engine.pipeline;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code % str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


# ------------------------------------------------------------------ batch
def test_batch_motion_files_and_corrupt(blender_addon, toy_body, tmp_path, monkeypatch):
    from addon import batch
    build = _build()
    monkeypatch.setattr(build, "load_body", lambda path=None: toy_body)
    make_motion(toy_body, T=40).save(tmp_path / "good.npz")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "out"
    rows = batch.batch([str(tmp_path / "good.npz"), str(bad)], out, {"device": "cpu"}, log=None)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert sorted(p.name for p in out.glob("*.blend")) == ["good.blend"]
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert summary[1]["clip"].endswith("corrupt.mp4") and summary[1]["message"]


def test_cli_command_entry(blender_addon, toy_body, tmp_path, monkeypatch):
    from addon import batch
    monkeypatch.setattr(_build(), "load_body", lambda path=None: toy_body)
    make_motion(toy_body, T=10).save(tmp_path / "a.npz")
    assert batch.main([str(tmp_path / "a.npz"), "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "a.blend").is_file() and (tmp_path / "o" / "a.npz").is_file()
    assert batch.main(["--bogus"]) != 0


def test_blender_batch_script(toy_body, tmp_path):
    """`blender -b -P scripts/blender_batch.py -- ...` (here: the same script on the bpy module)."""
    toy_body.save(tmp_path / "toy.npz")
    make_motion(toy_body, T=12).save(tmp_path / "clip.npz")
    (tmp_path / "bad.npz").write_bytes(b"broken")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "blender_batch.py"), "--",
                          str(tmp_path / "clip.npz"), str(tmp_path / "bad.npz"), "-o", str(tmp_path / "out"),
                          "--body-model", str(tmp_path / "toy.npz")], capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr  # one clip failed
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert [r["status"] for r in rows] == ["ok", "failed"] and "bad.npz" in rows[1]["message"]
    assert (tmp_path / "out" / "clip.blend").is_file()


@pytest.mark.slow
def test_batch_demo_clip_and_corrupt(blender_addon, tmp_path):
    pytest.importorskip("engine.pipeline")
    from addon import batch
    from engine.body.model import OPEN_BODY_PATH
    opts = {"device": "cpu", "frame_range": (0, 60)}
    if not OPEN_BODY_PATH.is_file():
        make_toy_body().save(tmp_path / "toy.npz")
        opts["body_model_path"] = str(tmp_path / "toy.npz")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "out"
    rows = batch.batch([str(DEMO_VIDEO), str(bad)], out, opts, log=None)
    assert [r["status"] for r in rows] == ["ok", "failed"], rows
    assert sorted(p.name for p in out.glob("*.blend")) == [DEMO_VIDEO.stem + ".blend"]
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert len(summary) == 2 and summary[1]["status"] == "failed" and summary[1]["message"]


# ------------------------------------------------------------------ Import Video
def _toy_prefs(monkeypatch, tmp_path, body):
    """Point the add-on's preferences (defaults: the add-on is not enabled in prefs) at a body file."""
    from addon import preferences
    path = tmp_path / "toy_body.npz"
    body.save(path)
    monkeypatch.setattr(preferences.DEFAULTS, "smpl_path", str(path))
    monkeypatch.setattr(preferences.DEFAULTS, "device", "cpu")
    return path


def test_import_video_operator_with_fake_engine(blender_addon, toy_body, tmp_path, monkeypatch):
    """Operator flow (headless = blocking) with the engine replaced: rig, camera, video plane."""
    import types
    calls = {}

    def fake_run(video, options, progress=None):
        calls["options"] = options
        progress(0.5, "half")
        return make_motion(toy_body, T=50, video=video, frame_size=(1768, 994))

    _toy_prefs(monkeypatch, tmp_path, toy_body)
    real = __import__("engine.pipeline", fromlist=["PipelineOptions"])
    monkeypatch.setitem(sys.modules, "engine.pipeline",
                        types.SimpleNamespace(run=fake_run, PipelineOptions=real.PipelineOptions))
    r = bpy.ops.mocap.import_video(filepath=str(DEMO_VIDEO), save_motion=False, smoothing="analysis",
                                   first_frame=3, last_frame=53)
    assert r == {"FINISHED"}
    opts = calls["options"]
    assert (opts.device, opts.smoothing, opts.frame_range) == ("cpu", "analysis", (3, 53))
    name = DEMO_VIDEO.stem
    arm = bpy.data.objects[name]
    cam = bpy.data.objects[f"{name} Camera"]
    plane = bpy.data.objects[f"{name} Video"]
    assert bpy.context.scene.camera == cam and plane.parent == cam
    img = plane.active_material.node_tree.nodes.active.image
    assert img.source == "MOVIE" and tuple(img.size) == (1768, 994)
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (1768, 994)
    assert arm.animation_data.action is not None


def test_import_video_engine_error_leaves_scene(blender_addon, toy_body, tmp_path, monkeypatch):
    import types
    from engine.errors import EngineError

    def failing_run(video, options, progress=None):
        progress(0.1, "detecting")
        raise EngineError("no person found in any of 12 frames")

    _toy_prefs(monkeypatch, tmp_path, toy_body)
    real = __import__("engine.pipeline", fromlist=["PipelineOptions"])
    monkeypatch.setitem(sys.modules, "engine.pipeline",
                        types.SimpleNamespace(run=failing_run, PipelineOptions=real.PipelineOptions))
    before = {k: len(getattr(bpy.data, k)) for k in ("objects", "actions", "images", "collections")}
    with pytest.raises(RuntimeError, match="no person found"):
        bpy.ops.mocap.import_video(filepath=str(DEMO_VIDEO), save_motion=False)
    assert {k: len(getattr(bpy.data, k)) for k in before} == before


def _render(scene, path):
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(path), check_existing=False)
    w, h = img.size
    px = np.empty(w * h * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1, :, :3]  # top row first


@pytest.mark.slow
def test_import_demo_video_end_to_end_and_render(blender_addon, tmp_path, monkeypatch, artifacts):
    """The real engine on the demo clip, the rig over the video, a Workbench render as a PNG."""
    pytest.importorskip("engine.pipeline")
    from engine.body.model import OPEN_BODY_PATH
    from addon import preferences
    monkeypatch.setattr(preferences.DEFAULTS, "device", "cpu")
    if not OPEN_BODY_PATH.is_file():
        _toy_prefs(monkeypatch, tmp_path, make_toy_body())
    from addon.scene import build_scene as build
    seen = {}
    real_import = build.import_motion

    def spy(motion, *a, **kw):
        seen["motion"] = motion
        return real_import(motion, *a, **kw)

    monkeypatch.setattr(build, "import_motion", spy)
    r = bpy.ops.mocap.import_video(filepath=str(DEMO_VIDEO), save_motion=False, first_frame=0, last_frame=60)
    assert r == {"FINISHED"}
    scene = bpy.context.scene
    name = DEMO_VIDEO.stem
    arm, body = bpy.data.objects[name], bpy.data.objects[f"{name} Body"]
    assert (scene.frame_start, scene.frame_end) == (1, 60)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "FLAT"
    scene.display.shading.color_type = "TEXTURE"
    scene.view_settings.view_transform = "Standard"
    scene.render.resolution_percentage = 50
    frame = 30
    scene.frame_set(frame)
    with_body = _render(scene, artifacts / "addon_demo_overlay.png")
    body.hide_render = True
    without = _render(scene, tmp_path / "no_body.png")
    body.hide_render = False
    mask = np.abs(with_body - without).sum(-1) > 0.05  # the body's silhouette over the video
    assert mask.mean() > 0.002, "body not visible in the render"
    # the person's confident 2D keypoints (this frame) fall on the body silhouette
    kp = np.asarray(seen["motion"].keypoints2d[frame - 1], dtype=np.float64)
    s = scene.render.resolution_percentage / 100.0
    h, w = mask.shape
    import scipy.ndimage as ndi
    grown = ndi.binary_dilation(mask, iterations=12)
    pts = kp[kp[:, 2] > 0.5, :2] * s
    inside = [grown[int(y), int(x)] for x, y in pts if 0 <= x < w and 0 <= y < h]
    assert len(inside) >= 8 and np.mean(inside) > 0.7, np.mean(inside)


def _drive_modal(job, filepath, events, max_ticks=500):
    """Drive MOCAP_OT_import_video.modal the way Blender's event loop would (no window here)."""
    import time
    import types
    from addon.operators import MOCAP_OT_import_video as Op
    reports = []
    op = types.SimpleNamespace(_job=job, _timer=None, filepath=filepath, with_mesh=True, save_motion=False)
    op.report = lambda kind, msg: reports.append((kind, msg))
    op._cleanup = lambda ctx: Op._cleanup(op, ctx)
    op._finish = lambda ctx, j: Op._finish(op, ctx, j)
    wm = bpy.context.window_manager
    ctx = types.SimpleNamespace(window_manager=wm, workspace=None, screen=None, scene=bpy.context.scene,
                                preferences=bpy.context.preferences)
    wm.mocap_running = True
    seen_progress = []
    for i in range(max_ticks):
        ev = events(i) or types.SimpleNamespace(type="TIMER", value="NOTHING", timer=None)
        r = Op.modal(op, ctx, ev)
        seen_progress.append(wm.mocap_progress)
        if r & {"FINISHED", "CANCELLED"}:
            return r, reports, seen_progress
        time.sleep(0.01)
    raise AssertionError("modal never finished")


def test_modal_import_video_progress_cancel_and_finish(blender_addon, toy_body, tmp_path, monkeypatch):
    import threading
    import types
    from addon import jobs
    _toy_prefs(monkeypatch, tmp_path, toy_body)
    go = threading.Event()

    def slow_run(video, options, progress=None):
        from engine.errors import Cancelled
        for i in range(400):
            if progress(i / 400, f"frame {i}") is False:
                raise Cancelled("cancelled")
            if go.is_set() and i > 20:
                return make_motion(toy_body, T=30, video=video, frame_size=(1768, 994))
            threading.Event().wait(0.005)
        raise AssertionError("ran to the end")

    monkeypatch.setitem(sys.modules, "engine.pipeline", types.SimpleNamespace(run=slow_run))
    before = {k: len(getattr(bpy.data, k)) for k in ("objects", "actions", "images", "collections")}
    # 1) Esc after a few ticks: the thread stops, the operator cancels, nothing was added
    job = jobs.EngineJob(str(DEMO_VIDEO), None).start()
    esc = types.SimpleNamespace(type="ESC", value="PRESS", timer=None)
    r, reports, prog = _drive_modal(job, str(DEMO_VIDEO), lambda i: esc if i == 5 else None)
    assert r == {"CANCELLED"} and job.cancelled and any("cancelled" in m for _, m in reports)
    assert max(prog) > 0 and not bpy.context.window_manager.mocap_running
    assert {k: len(getattr(bpy.data, k)) for k in before} == before
    # 2) let it finish: the rig is built from the job's Motion
    go.set()
    job = jobs.EngineJob(str(DEMO_VIDEO), None).start()
    r, reports, _ = _drive_modal(job, str(DEMO_VIDEO), lambda i: None)
    assert r == {"FINISHED"}, reports
    assert bpy.data.objects[DEMO_VIDEO.stem].type == "ARMATURE"


# ------------------------------------------------------------------ Import Video: checked before the engine
def _bad_import_video_cases(tmp_path):
    import shutil
    video = tmp_path / "clip.mp4"
    shutil.copyfile(DEMO_VIDEO, video)
    (tmp_path / "blocked.mp4").write_bytes(DEMO_VIDEO.read_bytes())
    (tmp_path / "blocked.motion.npz").mkdir()  # the Motion file's path is taken by a folder
    return [
        (dict(filepath=str(tmp_path / "nope.mp4")), "video not found"),
        (dict(filepath=str(video), first_frame=50, last_frame=20), r"Last Frame \(20\) must be after First Frame \(50\)"),
        (dict(filepath=str(video), first_frame=500), r"First Frame \(500\) is past the end of the video \(230 frames\)"),
        (dict(filepath=str(tmp_path / "blocked.mp4")), "Motion file .*blocked.motion.npz is a folder"),
    ]


def test_import_video_fields_checked_before_the_engine(blender_addon, toy_body, tmp_path, monkeypatch):
    """A bad frame range, a missing video or an unwritable Motion path: one error report, the
    engine never starts, nothing in the scene or next to the video changes."""
    import engine.pipeline
    calls = []
    monkeypatch.setattr(engine.pipeline, "run", lambda *a, **k: calls.append(a))
    _toy_prefs(monkeypatch, tmp_path, toy_body)
    cases = _bad_import_video_cases(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    before = {k: len(getattr(bpy.data, k)) for k in ("objects", "actions", "images", "collections")}
    for kwargs, message in cases:
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.mocap.import_video(**kwargs)
    assert calls == []
    assert {k: len(getattr(bpy.data, k)) for k in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_import_video_bad_body_model_before_the_engine(blender_addon, tmp_path, monkeypatch):
    import engine.pipeline
    from addon import preferences
    calls = []
    monkeypatch.setattr(engine.pipeline, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(preferences.DEFAULTS, "smpl_path", str(tmp_path / "SMPL_NEUTRAL.pkl"))
    with pytest.raises(RuntimeError, match="body model file not found"):
        bpy.ops.mocap.import_video(filepath=str(DEMO_VIDEO), save_motion=False)
    assert calls == []


def test_import_video_focal_reaches_the_engine_and_plane_path_is_absolute(blender_addon, toy_body, tmp_path,
                                                                          monkeypatch):
    """The focal field goes to the engine (0 = estimate); a video given relative to the cwd is
    loaded on the plane by its absolute path."""
    import os
    import engine.pipeline
    seen = {}

    def fake_run(video, options, progress=None):
        seen.update(video=video, focal=options.focal)
        return make_motion(toy_body, T=20, video=video, frame_size=(1768, 994))
    monkeypatch.setattr(engine.pipeline, "run", fake_run)
    _toy_prefs(monkeypatch, tmp_path, toy_body)
    monkeypatch.chdir(ROOT)
    rel = os.path.relpath(DEMO_VIDEO, ROOT)
    assert bpy.ops.mocap.import_video(filepath=rel, save_motion=False, focal=1500.0) == {"FINISHED"}
    assert seen == {"video": str(DEMO_VIDEO), "focal": 1500.0}
    img = bpy.data.objects[f"{DEMO_VIDEO.stem} Video"].active_material.node_tree.nodes.active.image
    assert img.filepath == str(DEMO_VIDEO)
    assert bpy.ops.mocap.import_video(filepath=rel, save_motion=False) == {"FINISHED"}
    assert seen["focal"] is None


def test_reprojection_curve_and_summary_on_the_armature(blender_addon, toy_body, tmp_path):
    """The Motion's per-frame reprojection figure becomes an animated property of the armature
    (its own F-curve group, no keys on invalid frames) and its summary is kept for the panel."""
    from addon import compat
    from engine.motion import load_motion
    m = make_motion(toy_body, T=40, invalid=(5, 6))
    m.reprojection = np.linspace(0.5, 4.0, 40).astype(np.float32)
    m.source["reprojection"] = {"median": 2.25, "p90": 3.6, "frames": 38, "unit": "%"}
    m.save(tmp_path / "r.npz")
    build = _build()
    res = build.import_motion(load_motion(tmp_path / "r.npz"), toy_body, bpy.context.scene, name="rep")
    fc = [f for f in compat.iter_fcurves(res.action) if f.data_path == '["mocap_reprojection"]']
    assert len(fc) == 1 and fc[0].group.name == "Reprojection"
    keyed = {int(round(k.co[0])): k.co[1] for k in fc[0].keyframe_points}
    assert len(keyed) == 38 and 6 not in keyed and 7 not in keyed
    assert abs(keyed[11] - m.reprojection[10]) < 1e-5
    arm = res.armature
    assert arm["mocap_reprojection_median"] == pytest.approx(2.25) and arm["mocap_reprojection_p90"] == pytest.approx(3.6)
    bpy.context.scene.frame_set(21)
    assert arm["mocap_reprojection"] == pytest.approx(float(m.reprojection[20]), abs=1e-5)
