"""Pitch analysis inside Blender (bpy==5.0.1 module): markers, panel, plots, batch columns."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from conftest import make_motion  # noqa: E402
from test_pitch_plausibility import BR, FPS, PKH, T, synthetic_pitch_joints  # noqa: E402

pytestmark = pytest.mark.blender

LEAD_INVALID = 5


def pitch_motion(body, **kw):
    """A Motion whose joints are the synthetic pitch (the rig's poses are a toy walk: the
    analysis reads ``joints``); the first LEAD_INVALID frames have no subject. ``kw`` go to
    ``synthetic_pitch_joints`` (``rotate=False``: a pitch whose trunk does not turn, flagged)."""
    m = make_motion(body, T=T, fps=FPS, invalid=range(LEAD_INVALID))
    J = synthetic_pitch_joints(**kw)
    J[: LEAD_INVALID] = np.nan
    m.joints = J.astype(np.float32)
    return m


@pytest.fixture
def toy_loader(toy_body, monkeypatch):
    from addon.scene import build_scene as build
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
    from addon.scene import pitch
    scene = bpy.context.scene
    scene.timeline_markers.new("keep me", frame=3)
    got = pitch.set_markers(scene, {"pkh": 10, "ball_release": None, "mer": 20}, frame_start=1)
    assert got == {"PKH": 11, "MER": 21}
    pitch.set_markers(scene, {"pkh": 12}, frame_start=100)      # replaces, never duplicates
    assert _markers(scene) == {"keep me": 3, "PKH": 112}


def test_analyse_pitch_operator_markers_panel_plots(blender_addon, toy_loader, tmp_path):
    from addon.scene import pitch
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
    assert res["status"] == "ok" and res["flags"] == {}
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
    # handedness override + re-analyse: a left-hander's delivery is not in this right-hander's
    # motion, so the analysis refuses with one report line, and no stale markers or metrics stay
    rig.mocap_pitch_handedness = "L"
    with pytest.raises(RuntimeError) as e:
        bpy.ops.mocap.analyse_pitch()
    msg = str(e.value).strip()
    assert "throw: not a pitch: " in msg and "\n" not in msg and "Traceback" not in msg
    assert "throwing arm L set by the user; the faster wrist is R" in msg
    assert pitch.result(rig)["status"] == "not_a_pitch" and not _markers(scene)
    text = _draw_panel(bpy.types.MOCAP_PT_pitch, bpy.context, needles=("Not a pitch",))
    assert pitch.result(rig)["reason"] in text and "Max shoulder external rotation" not in text
    rig.mocap_pitch_handedness = "R"            # the user's choice is used and said so
    assert bpy.ops.mocap.analyse_pitch() == {"FINISHED"}
    res2 = pitch.result(rig)
    assert res2["handedness"] == "R" and res2["handedness_source"] == "user"
    assert sum(m.name == "PKH" for m in scene.timeline_markers) == 1
    # the body mesh selected instead of the armature still finds the rig
    body = next(ob for ob in scene.objects if ob.parent == rig and ob.type == "MESH")
    assert pitch.motion_rig(body) == rig


def test_markers_follow_the_import_frame_start(blender_addon, toy_loader, tmp_path):
    from addon.scene import build_scene as build, pitch
    from engine.motion import load_motion
    path = tmp_path / "late.npz"
    pitch_motion(toy_loader).save(path)
    r = build.import_motion(load_motion(path), toy_loader, bpy.context.scene, name="late", frame_start=101,
                            motion_path=path)
    _, stored = pitch.analyse_rig(r.armature, bpy.context.scene, out_dir=tmp_path / "rep", plots=False)
    assert _markers(bpy.context.scene)["PKH"] == 101 + PKH
    assert stored["plots"] == [] and (tmp_path / "rep" / "late.json").is_file()
    # a report folder that is a file (or the Motion file itself) is refused before any work
    (tmp_path / "afile").write_text("keep")
    for bad in (tmp_path / "afile", path):
        with pytest.raises(pitch.PitchError, match="not a folder|is the input"):
            pitch.analyse_rig(r.armature, bpy.context.scene, out_dir=bad, plots=False)
    assert (tmp_path / "afile").read_text() == "keep" and load_motion(path).num_frames > 0


def test_analyse_without_motion_file_reports(blender_addon, toy_loader, tmp_path):
    from addon.scene import build_scene as build
    r = build.import_motion(pitch_motion(toy_loader), toy_loader, bpy.context.scene, name="nofile")
    assert r.armature["mocap_motion_path"] == ""
    with pytest.raises(RuntimeError, match="no Motion file"):
        bpy.ops.mocap.analyse_pitch()


def test_batch_with_pitch_analysis_writes_metric_columns(blender_addon, toy_loader, tmp_path):
    from addon import batch
    pitch_motion(toy_loader).save(tmp_path / "p1.npz")
    make_motion(toy_loader, T=6).save(tmp_path / "tiny.npz")      # too short to analyse
    make_motion(toy_loader, T=T, fps=FPS).save(tmp_path / "walk.npz")   # a toy walk: no delivery
    pitch_motion(toy_loader, rotate=False).save(tmp_path / "flat.npz")  # the trunk never turns
    out = tmp_path / "out"
    rows = batch.batch([str(tmp_path / n) for n in ("p1.npz", "tiny.npz", "walk.npz", "flat.npz")], out,
                       {"pitch": True, "pitch_plots": False}, log=None)
    assert [r["status"] for r in rows] == ["ok"] * 4
    with open(out / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    head = list(summary[0])
    assert head[:len(batch.SUMMARY_FIELDS)] == list(batch.SUMMARY_FIELDS)
    for col in ("pitch_status", "pitch_handedness", "t_pkh", "t_ball_release", "max_shoulder_external_rotation",
                "stride_length_pct_height", "max_pelvis_rotational_velo"):
        assert col in head, col
    a, b, walk, flat = summary
    assert a["pitch_status"] == "ok" and a["pitch_handedness"] == "R" and a["pitch_flags"] == ""
    assert float(a["t_pkh"]) == pytest.approx(PKH / FPS, abs=1e-3)
    assert float(a["max_shoulder_external_rotation"]) == float(a["max_shoulder_external_rotation"])
    assert b["pitch_status"] == "failed" and "too few valid frames" in b["pitch_message"]
    assert b["max_shoulder_external_rotation"] == ""
    assert walk["pitch_status"] == "not_a_pitch" and walk["pitch_message"]
    assert walk["max_shoulder_external_rotation"] == "" and walk["t_ball_release"] == ""
    assert not (out / "walk_pitch" / "walk.json").exists()
    assert flat["pitch_status"] == "check" and "max_pelvis_rotational_velo" in flat["pitch_flags"]
    assert flat["max_pelvis_rotational_velo"] != ""                # flagged values are still reported
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


def test_panel_shows_flags(blender_addon, toy_loader, tmp_path):
    """A pitch with implausible values: status check, the flagged metrics carry an error icon
    and their reasons are listed; the operator warns in one line."""
    from addon.scene import pitch
    path = tmp_path / "flat.npz"
    pitch_motion(toy_loader, rotate=False).save(path)
    assert bpy.ops.mocap.import_motion(filepath=str(path)) == {"FINISHED"}
    rig = bpy.context.view_layer.objects.active
    assert bpy.ops.mocap.analyse_pitch() == {"FINISHED"}
    res = pitch.result(rig)
    assert res["status"] == "check" and "max_torso_rotational_velo" in res["flags"]
    text = _draw_panel(bpy.types.MOCAP_PT_pitch, bpy.context)
    assert "Status: check" in text and "Check: outside the plausible range" in text
    assert "[ERROR] Peak torso rotation velocity" in text
    assert f"Peak torso rotation velocity: {res['flags']['max_torso_rotational_velo']}" in text
    assert "[ERROR] Max shoulder external rotation" not in text       # plausible: no icon


# ------------------------------------------------------------------ panel draw stand-in
class _Recorder:
    """Accepts any layout call (row/column/box/label/prop/operator...) and records labels."""

    def __init__(self, log):
        self.__dict__["_log"] = log

    def __getattr__(self, name):
        def call(*args, **kw):
            if name == "label":
                icon = kw.get("icon", "NONE")
                assert icon in _ICONS, icon
                self._log.append(("" if icon == "NONE" else f"[{icon}] ") + kw.get("text", ""))
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


_ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
PANEL_NEEDLES = ("Throws: Right", "Max shoulder external rotation", "°", "°/s", "% height", "m/s",
                 "PKH", "Stride")


def _draw_panel(panel_cls, context, needles=PANEL_NEEDLES):
    log = []
    stand_in = type("P", (), {"layout": _Recorder(log)})()
    panel_cls.draw(stand_in, context)
    text = "\n".join(log)
    for needle in needles:
        assert needle in text, (needle, text)
    return text
