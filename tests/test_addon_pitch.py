"""Pitch analysis inside Blender (bpy==5.0.1 module): markers, panel, plots, batch columns."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import make_motion  # noqa: E402

pytestmark = pytest.mark.blender

FPS, T, LEAD_INVALID, PKH, BR = 60.0, 130, 5, 45, 95


def synthetic_pitch_joints(T=T, pkh=PKH, br=BR):
    """SMPL-24 joints (T,24,3) of a crude right-handed pitch toward +x with known events: the lead
    knee peaks at frame ``pkh``, the lead foot lands ~28 frames later, the elbow is straightest
    at frame ``br`` as the throwing hand reaches its top speed."""
    from engine.body.skeleton import JOINT_INDEX as J
    f = np.arange(T, dtype=float)

    def sig(x):
        return 1 / (1 + np.exp(-x))

    P = np.zeros((T, 24, 3))
    one = np.ones(T)

    def put(name, x, y, z):
        P[:, J[name]] = np.stack([x * one, y * one, z * one], 1)

    xp = 0.8 * sig((f - (pkh + 30)) / 6)
    put("pelvis", xp, 0, 1.0)
    put("right_hip", xp, -0.12, 1.0)
    put("left_hip", xp, 0.12, 1.0)
    put("right_ankle", 0, -0.15, 0.1)
    put("right_knee", 0.5 * xp, -0.15, 0.55)
    put("right_foot", 0.12, -0.15, 0.03)
    land = pkh + 28
    s = np.clip((f - pkh) / (land - pkh), 0, 1)
    ax = 1.5 * s * s * (3 - 2 * s)
    lift = np.clip((f - pkh + 25) / (land - pkh + 25), 0, 1)
    az = np.where((f > pkh - 25) & (f < land), 0.1 + 0.35 * np.sin(np.pi * lift), 0.1)
    put("left_ankle", ax, 0.15, az)
    put("left_foot", ax + 0.12, 0.15, az - 0.07)
    put("left_knee", 0.5 * (xp + ax) + 0.1, 0.14, 0.55 + 0.4 * np.exp(-((f - pkh) / 8) ** 2))
    for name, z in (("spine1", 1.1), ("spine2", 1.25), ("spine3", 1.4), ("neck", 1.5), ("head", 1.65)):
        put(name, xp, 0, z)
    put("left_collar", xp, 0.08, 1.48)
    put("right_collar", xp, -0.08, 1.48)
    put("left_shoulder", xp, 0.18, 1.47)
    put("right_shoulder", xp, -0.18, 1.47)
    put("left_elbow", xp, 0.22, 1.17)
    put("left_wrist", xp, 0.22, 0.92)
    put("left_hand", xp, 0.22, 0.84)
    a = np.radians(50) * sig((f - br) / 3)
    u = np.stack([np.sin(a), -np.cos(a), 0 * f], 1)               # upper arm, comes forward
    theta = np.radians(90 - 80 * np.exp(-((f - br) / 6) ** 2))    # elbow flexion, least at br
    psi = np.radians(-80 + 170 * sig((f - br + 1) / 2.5))         # forearm: layback → forward
    fwd = np.stack([np.cos(a), np.sin(a), 0 * f], 1)
    w = np.cos(psi)[:, None] * np.array([0, 0, 1.0]) + np.sin(psi)[:, None] * fwd
    fa = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * w
    E = P[:, J["right_shoulder"]] + 0.3 * u
    W = E + 0.26 * fa
    P[:, J["right_elbow"]], P[:, J["right_wrist"]], P[:, J["right_hand"]] = E, W, W + 0.08 * fa
    return P


def pitch_motion(body):
    """A Motion whose joints are the synthetic pitch (the rig's poses are a toy walk: the
    analysis reads ``joints``); the first LEAD_INVALID frames have no subject."""
    m = make_motion(body, T=T, fps=FPS, invalid=range(LEAD_INVALID))
    J = synthetic_pitch_joints()
    J[: LEAD_INVALID] = np.nan
    m.joints = J.astype(np.float32)
    return m


@pytest.fixture
def toy_loader(toy_body, monkeypatch):
    from addon import build
    monkeypatch.setattr(build, "load_body", lambda path=None: toy_body)
    return toy_body


def _markers(scene):
    return {m.name: m.frame for m in scene.timeline_markers}


def test_pitch_ui_registers(blender_addon):
    for name in ("MOCAP_PT_pitch", "MOCAP_OT_analyse_pitch", "MOCAP_OT_pitch_show_plot",
                 "MOCAP_OT_pitch_open_folder", "MOCAP_OT_pitch_goto"):
        assert hasattr(bpy.types, name), name
    for prop in ("mocap_pitch_handedness", "mocap_pitch_home", "mocap_pitch_height"):
        assert prop in bpy.types.Object.bl_rna.properties, prop


def test_set_markers_frame_offset(blender_addon):
    from addon import pitch
    scene = bpy.context.scene
    scene.timeline_markers.new("keep me", frame=3)
    got = pitch.set_markers(scene, {"pkh": 10, "ball_release": None, "mer": 20}, frame_start=1)
    assert got == {"PKH": 11, "MER": 21}
    pitch.set_markers(scene, {"pkh": 12}, frame_start=100)      # replaces, never duplicates
    assert _markers(scene) == {"keep me": 3, "PKH": 112}


def test_analyse_pitch_operator_markers_panel_plots(blender_addon, toy_loader, tmp_path):
    from addon import pitch
    path = tmp_path / "throw.npz"
    pitch_motion(toy_loader).save(path)
    assert bpy.ops.mocap.import_motion(filepath=str(path)) == {"FINISHED"}
    rig = bpy.context.view_layer.objects.active
    assert rig.name == "throw" and rig["mocap_motion_path"] == str(path.resolve())
    assert rig["mocap_frame_start"] == 1
    scene = bpy.context.scene
    assert bpy.ops.mocap.analyse_pitch() == {"FINISHED"}
    res = pitch.result(rig)
    assert res["handedness"] == "R" and res["handedness_source"] == "auto"
    markers = _markers(scene)
    assert set(markers) == {"PKH", "FC", "FP", "MER", "BR", "MIR"}
    # Motion frame f is keyed on scene frame 1 + f; events are on Motion frames
    for key, label in (("pkh", "PKH"), ("ball_release", "BR"), ("foot_plant", "FP")):
        assert markers[label] == 1 + res["events"][key]["clip_frame"] == res["scene_frames"][key]
    assert markers["PKH"] == 1 + PKH
    assert abs(markers["BR"] - (1 + BR)) <= 1
    assert 1 + PKH + 25 <= markers["FP"] <= 1 + PKH + 31
    assert markers["PKH"] < markers["FC"] <= markers["FP"] <= markers["MER"] < markers["BR"] < markers["MIR"]
    # the report sits next to the Motion file; plots load as images (headless: no editor)
    assert Path(res["report_dir"]) == tmp_path / "throw_pitch"
    assert Path(res["json"]).is_file() and len(res["plots"]) == 2
    assert bpy.ops.mocap.pitch_show_plot(index=1) == {"FINISHED"}
    img = next(im for im in bpy.data.images if im.filepath == res["plots"][1])
    assert img.size[0] > 500 and img.size[1] > 500
    # the panel draws (with a recording stand-in for the layout)
    text = _draw_panel(bpy.types.MOCAP_PT_pitch, bpy.context)
    from engine.pitch.report import CAVEAT_TEXT
    assert "Marked: beyond tolerance vs marker mocap" in text and CAVEAT_TEXT["torso"] in text
    # handedness override + re-analyse: the user's choice is used and flagged
    rig.mocap_pitch_handedness = "L"
    assert bpy.ops.mocap.analyse_pitch() == {"FINISHED"}
    res2 = pitch.result(rig)
    assert res2["handedness"] == "L" and res2["handedness_source"] == "user"
    assert any("differs" in w for w in res2["warnings"])
    assert sum(m.name == "PKH" for m in scene.timeline_markers) == 1
    # the body mesh selected instead of the armature still finds the rig
    body = next(ob for ob in scene.objects if ob.parent == rig and ob.type == "MESH")
    assert pitch.motion_rig(body) == rig


def test_markers_follow_the_import_frame_start(blender_addon, toy_loader, tmp_path):
    from addon import build, pitch
    from engine.motion import load_motion
    path = tmp_path / "late.npz"
    pitch_motion(toy_loader).save(path)
    r = build.import_motion(load_motion(path), toy_loader, bpy.context.scene, name="late", frame_start=101,
                            motion_path=path)
    _, stored = pitch.analyse_rig(r.armature, bpy.context.scene, out_dir=tmp_path / "rep", plots=False)
    assert _markers(bpy.context.scene)["PKH"] == 101 + PKH
    assert stored["plots"] == [] and (tmp_path / "rep" / "late.json").is_file()


def test_analyse_without_motion_file_reports(blender_addon, toy_loader, tmp_path):
    from addon import build
    r = build.import_motion(pitch_motion(toy_loader), toy_loader, bpy.context.scene, name="nofile")
    assert r.armature["mocap_motion_path"] == ""
    with pytest.raises(RuntimeError, match="no Motion file"):
        bpy.ops.mocap.analyse_pitch()


def test_batch_with_pitch_analysis_writes_metric_columns(blender_addon, toy_loader, tmp_path):
    from addon import batch
    pitch_motion(toy_loader).save(tmp_path / "p1.npz")
    make_motion(toy_loader, T=6).save(tmp_path / "tiny.npz")      # too short to analyse
    out = tmp_path / "out"
    rows = batch.batch([str(tmp_path / "p1.npz"), str(tmp_path / "tiny.npz")], out,
                       {"pitch": True, "pitch_plots": False}, log=None)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    head = list(summary[0])
    assert head[:len(batch.SUMMARY_FIELDS)] == list(batch.SUMMARY_FIELDS)
    for col in ("pitch_status", "pitch_handedness", "t_pkh", "t_ball_release", "max_shoulder_external_rotation",
                "stride_length_pct_height", "max_pelvis_rotational_velo"):
        assert col in head, col
    a, b = summary
    assert a["pitch_status"] == "ok" and a["pitch_handedness"] == "R"
    assert float(a["t_pkh"]) == pytest.approx(PKH / FPS, abs=1e-3)
    assert float(a["max_shoulder_external_rotation"]) == float(a["max_shoulder_external_rotation"])
    assert b["pitch_status"] == "failed" and "too few valid frames" in b["pitch_message"]
    assert b["max_shoulder_external_rotation"] == ""
    assert (out / "p1_pitch" / "p1.json").is_file()
    # the markers are saved in the clip's .blend
    bpy.ops.wm.open_mainfile(filepath=str(out / "p1.blend"))
    assert _markers(bpy.context.scene)["PKH"] == 1 + PKH
    d = json.loads(bpy.data.objects["p1"]["mocap_pitch"])
    assert d["scene_frames"]["pkh"] == 1 + PKH


def test_batch_cli_pitch_flag(blender_addon, toy_loader, tmp_path):
    from addon import batch
    pitch_motion(toy_loader).save(tmp_path / "c.npz")
    assert batch.main([str(tmp_path / "c.npz"), "-o", str(tmp_path / "o"), "--pitch", "--handedness", "R"]) == 0
    row = next(csv.DictReader(open(tmp_path / "o" / "summary.csv")))
    assert row["pitch_status"] == "ok" and row["pitch_handedness"] == "R"
    assert (tmp_path / "o" / "c_pitch" / "c_kinematic_sequence.png").is_file()


# ------------------------------------------------------------------ panel draw stand-in
class _Recorder:
    """Accepts any layout call (row/column/box/label/prop/operator...) and records labels."""

    def __init__(self, log):
        self.__dict__["_log"] = log

    def __getattr__(self, name):
        def call(*args, **kw):
            if name == "label":
                self._log.append(kw.get("text", ""))
            if name == "prop":
                data, prop = args[0], args[1]
                assert prop in data.bl_rna.properties, prop
            if name == "operator":
                idname = args[0]
                mod, op = idname.split(".")
                assert hasattr(getattr(bpy.ops, mod), op), idname
            return _Recorder(self._log)
        return call

    def __setattr__(self, name, value):
        pass


def _draw_panel(panel_cls, context):
    log = []
    stand_in = type("P", (), {"layout": _Recorder(log)})()
    panel_cls.draw(stand_in, context)
    text = "\n".join(log)
    for needle in ("Throws: Right", "Max shoulder external rotation", "°", "°/s", "% height", "m/s",
                   "PKH", "Stride"):
        assert needle in text, (needle, text)
    return text
