"""Pitch analysis: synthetic unit cases (always run) and Validation 1 on OBP (skips without data)."""
import importlib.util
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from conftest import ROOT, shared_path

from engine.pitch import NotAPitch
from engine.pitch import analysis as A
from engine.pitch import metrics as M
from engine.pitch import report
from engine.pitch.joints import JointSet, from_obp_landmarks, read_obp_csv


# --- synthetic -----------------------------------------------------------------------------

def rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def test_rigid_rotation_gives_its_angular_velocity():
    fps, rate = 240.0, 650.0                   # deg/s about the segment's own z
    t = np.arange(100) / fps
    tilt = np.array([[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    R = np.stack([tilt @ rot_z(rate * ti) for ti in t])
    w = M.segment_angular_velocity(R, fps)
    np.testing.assert_allclose(w[:, 2], rate, rtol=1e-6)
    np.testing.assert_allclose(w[:, :2], 0, atol=1e-6)


def test_right_angle_elbow_is_90_degrees_flexion():
    s, e, w = np.array([[0, 0, 1.5]]), np.array([[0, 0, 1.2]]), np.array([[0.25, 0, 1.2]])
    assert M.flexion(s, e, w)[0] == pytest.approx(90.0)
    assert M.flexion(s, e, np.array([[0, 0, 0.9]]))[0] == pytest.approx(0.0, abs=1e-6)


def _square_thorax():
    """A right-hander square to home (+x): thorax frame x to the glove side (+y)."""
    prox, dist, right = (np.array([[0, 0, 1.5]]), np.array([[0, 0, 1.2]]),
                         np.array([[0, -0.1, 1.5]]))
    return M.thorax_frame(prox, dist, right)


@pytest.mark.parametrize("wrist, er", [((0.3, -0.5, 1.45), 0.0), ((0, -0.5, 1.75), 90.0),
                                       ((-0.3, -0.5, 1.45), 180.0)])
def test_shoulder_external_rotation_and_abduction(wrist, er):
    shoulder, elbow = np.array([[0, -0.2, 1.45]]), np.array([[0, -0.5, 1.45]])
    Ru = M.upper_arm_frame(shoulder, elbow, np.array([wrist], float))
    horiz, abd, ext = M.shoulder_angles(_square_thorax(), Ru)[0]
    assert abd == pytest.approx(90.0, abs=1e-6)
    assert horiz == pytest.approx(0.0, abs=1e-6)
    assert (ext - er + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-6)


def test_pelvis_and_torso_rotation_conventions():
    # closed: hip line (rear -> lead) points at home -> 0; square to home -> 90
    closed = M.pelvis_frame(np.array([[-0.1, 0, 1.0]]), np.array([[0.1, 0, 1.0]]))
    square = M.pelvis_frame(np.array([[0, -0.1, 1.0]]), np.array([[0, 0.1, 1.0]]))
    assert M.cardan_zyx(closed)[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert M.cardan_zyx(square)[0, 0] == pytest.approx(90.0)
    z, y, x = M.cardan_zyx(_square_thorax())[0]
    assert (z, y, x) == pytest.approx((90.0, 0.0, 0.0), abs=1e-9)


def test_hip_shoulder_separation_is_torso_relative_to_pelvis():
    """OBP's torso_pelvis Z: pelvis 30° more open than the torso reads +30 (sign as analyze uses),
    also when the torso is tilted forward (where a difference of lab Z angles is not the same)."""
    Rp = M.pelvis_frame(np.array([[0, -0.1, 1.0]]) @ rot_z(-60).T, np.array([[0, 0.1, 1.0]]) @ rot_z(-60).T)
    Rt = M.pelvis_frame(np.array([[0, -0.1, 1.0]]) @ rot_z(-90).T, np.array([[0, 0.1, 1.0]]) @ rot_z(-90).T)
    assert -M.joint_cardan_xyz(Rp, Rt)[0, 2] == pytest.approx(30.0)
    tilt = np.array([[1.0, 0, 0], [0, np.cos(0.5), -np.sin(0.5)], [0, np.sin(0.5), np.cos(0.5)]])
    # flexed forward relative to the pelvis, then rotated (the X-Y-Z order)
    Rt_tilted = Rp[0] @ tilt @ (Rp[0].T @ Rt[0])
    assert -M.joint_cardan_xyz(Rp, Rt_tilted[None])[0, 2] == pytest.approx(30.0)


def test_lowpass_keeps_slow_signal_and_removes_fast():
    fps = 360.0
    t = np.arange(720) / fps
    slow, fast = np.sin(2 * np.pi * 2 * t), 0.5 * np.sin(2 * np.pi * 80 * t)
    out = M.lowpass(slow + fast, fps, 20.0)
    assert np.abs(out - slow)[50:-50].max() < 0.02


def _synthetic_points(T=240, fps=240.0, throw="right"):
    """A crude standing body whose throwing wrist swings fast: enough for handedness."""
    t = np.arange(T) / fps
    z = np.zeros(T)
    pts = {}
    for side, sy in (("left", 0.15), ("right", -0.15)):
        for name, zz in (("hip", 1.0), ("knee", 0.55), ("ankle", 0.1), ("shoulder", 1.45),
                         ("elbow", 1.2), ("wrist", 0.95), ("hand", 0.88)):
            pts[f"{side}_{name}"] = np.stack([z, z + sy * (1.5 if name in ("elbow", "wrist", "hand") else 1),
                                              z + zz], 1)
    swing = np.stack([0.6 * np.sin(2 * np.pi * 3 * t), z, 0.3 * np.cos(2 * np.pi * 3 * t)], 1)
    for n in ("wrist", "hand"):
        pts[f"{throw}_{n}"] = pts[f"{throw}_{n}"] + swing
    pts["thorax_prox"] = np.stack([z, z, z + 1.5], 1)
    pts["thorax_dist"] = np.stack([z, z, z + 1.23], 1)
    pts["thorax_right"] = np.stack([z, z - 0.1, z + 1.5], 1)
    return pts, fps


def test_mirrored_data_flips_handedness_detection():
    pts, fps = _synthetic_points()
    assert A.detect_handedness(pts, fps)[0] == "R"
    mirrored = {}
    for name, p in pts.items():
        if name.startswith("left_"):
            name = "right_" + name[5:]
        elif name.startswith("right_"):
            name = "left_" + name[6:]
        mirrored[name] = p * [1, -1, 1]
    assert A.detect_handedness(mirrored, fps)[0] == "L"


def test_to_pitch_frame_rotates_home_to_x_and_mirrors_left_hander():
    pts, _ = _synthetic_points()
    world = {k: v @ rot_z(30).T for k, v in pts.items()}       # home plate at azimuth 30°
    back = A.to_pitch_frame(world, 30.0, "R")
    np.testing.assert_allclose(back["right_wrist"], pts["right_wrist"], atol=1e-12)
    lefty = A.to_pitch_frame(pts, 0.0, "L")
    np.testing.assert_allclose(lefty["right_elbow"], pts["left_elbow"] * [1, -1, 1])
    # the lateral thorax point stays on the body's right after mirroring
    assert lefty["thorax_right"][0, 1] < lefty["thorax_prox"][0, 1]


@pytest.mark.parametrize("hand", ["R", "L"])
def test_measured_thorax_frames_go_to_the_pitch_frame_like_the_points(hand):
    """A torso orientation given to the analysis (world frame) becomes, in the pitch frame, the
    frame that the thorax points themselves give there — for a rotated home and a left-hander."""
    T = 20
    R = Rotation.from_euler("ZYX", np.c_[np.linspace(-20, 120, T), np.linspace(0, 30, T),
                                         np.linspace(5, 40, T)], degrees=True).as_matrix()
    prox = np.tile([0.2, -0.1, 1.5], (T, 1))
    pts = {"thorax_prox": prox, "thorax_dist": prox - 0.27 * R[:, :, 2],
           "thorax_right": prox - 0.10 * R[:, :, 0]}                # x points to the glove side
    if hand == "L":   # a left-hander's world: mirror the body; its lateral point is on its left
        S = np.diag([1.0, -1.0, 1.0])
        pts = {k: v @ S for k, v in pts.items()}
        pts["thorax_right"] = 2 * pts["thorax_prox"] - pts["thorax_right"]
    world = {k: v @ rot_z(30).T for k, v in pts.items()}
    R_world = M.thorax_frame(world["thorax_prox"], world["thorax_dist"],
                             world["thorax_right"] if hand == "R"
                             else 2 * world["thorax_prox"] - world["thorax_right"])
    p = A.to_pitch_frame(world, 30.0, hand)
    expect = M.thorax_frame(p["thorax_prox"], p["thorax_dist"], p["thorax_right"])
    got = A.frames_to_pitch_frame(R_world, 30.0, hand)
    np.testing.assert_allclose(got, expect, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-9)
    if hand == "R":
        np.testing.assert_allclose(got, R, atol=1e-9)     # the body's own orientation back


def test_jointset_requires_the_analysis_points():
    pts, fps = _synthetic_points()
    del pts["thorax_dist"]
    with pytest.raises(ValueError, match="thorax_dist"):
        JointSet(pts, fps)


# --- OBP Validation 1 ----------------------------------------------------------------------

def _validator():
    spec = importlib.util.spec_from_file_location("validate_pitch_obp",
                                                  ROOT / "scripts" / "validate_pitch_obp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def obp():
    d = shared_path("data", "obp")
    V = _validator()
    rows, poi, meta = V.load(d)
    angles = V.load_angles(d)
    results = {p: V.evaluate(rows, poi, meta, p, angle_rows=angles[p]) for p in sorted(rows)}
    return V, rows, poi, meta, results


# Checks that meet the tolerance on all 5 pitches.
ASSERTED_EVENTS = ("pkh", "foot_plant", "mer", "ball_release")
ASSERTED_METRICS = ("stride_length_pct_height", "stride_angle", "max_shoulder_external_rotation",
                    "elbow_flexion_fp", "shoulder_abduction_fp", "torso_anterior_tilt_fp",
                    "torso_lateral_tilt_fp", "torso_anterior_tilt_br",
                    "lead_knee_extension_from_fp_to_br", "max_pelvis_rotational_velo",
                    "max_elbow_extension_velo", "max_cog_velo_x", "cog_velo_pkh")
# Checks that meet it on some pitches only: asserted on exactly those (docs/pitch_validation.md
# explains each miss). max_hip_shoulder_separation and torso_rotation_mer meet it on none.
ASSERTED_ON = {
    "hip_shoulder_separation_fp": ("1031_2", "1097_1", "1097_2", "1097_3"),
    "torso_rotation_fp": ("1031_2", "1031_3", "1097_1", "1097_2"),
    "torso_anterior_tilt_mer": ("1031_3", "1097_1", "1097_2", "1097_3"),
    "torso_lateral_tilt_mer": ("1031_2", "1031_3", "1097_1", "1097_2"),
    "arm_slot": ("1031_2", "1031_3", "1097_1", "1097_2"),
    "lead_knee_extension_angular_velo_br": ("1031_2", "1031_3", "1097_2"),
    "shoulder_horizontal_abduction_fp": ("1097_1", "1097_2", "1097_3"),
    "elbow_flexion_mer": ("1031_2", "1031_3"),
    "torso_lateral_tilt_br": ("1031_2", "1031_3"),
    "max_torso_rotational_velo": ("1031_2", "1031_3"),
    "max_shoulder_internal_rotational_velo": ("1031_2", "1031_3"),
    "shoulder_external_rotation_fp": ("1097_1", "1097_2"),
    "pelvis_rotation_fp": ("1097_1", "1097_2"),
    "torso_rotation_br": ("1031_3",),
}
PITCHES = ("1031_2", "1031_3", "1097_1", "1097_2", "1097_3")


@pytest.mark.parametrize("pitch", PITCHES)
def test_obp_events_within_tolerance(obp, pitch):
    _, _, _, _, results = obp
    ev_rows = {r[0]: r for r in results[pitch][2]}
    assert results[pitch][0].handedness == "R"
    for k in ASSERTED_EVENTS:
        _, ours, ref, err, tol, ok = ev_rows[k]
        assert ok, f"{pitch} {k}: ours {ours:.4f}s vs OBP {ref:.4f}s (tolerance {tol * 1000:.1f} ms)"


@pytest.mark.parametrize("pitch", PITCHES)
def test_obp_metrics_within_tolerance(obp, pitch):
    _, _, _, _, results = obp
    m_rows = {r[0]: r for r in results[pitch][3]}
    names = list(ASSERTED_METRICS) + [k for k, ps in ASSERTED_ON.items() if pitch in ps]
    for k in names:
        _, kind, ours, ref, err, _, tol, rel, ok = m_rows[k]
        assert ok, f"{pitch} {k}: ours {ours:.3f} vs OBP {ref:.3f} (tolerance {tol}{' rel' if rel else ''})"


def test_obp_centre_of_mass_follows_obp_model(obp):
    """Our segment model on OBP's joint centres lands within 1.5 cm of OBP's own centre of mass."""
    _, rows, _, meta, results = obp
    for p in PITCHES:
        js = from_obp_landmarks(rows[p], height=float(meta[p]["session_height_m"]))
        r = A.roles(A.to_pitch_frame(js.points, 0.0, "R"))
        com = A.centre_of_mass(r, M.thorax_frame(r["thorax_prox"], r["thorax_dist"], r["thorax_right"]))
        ev = results[p][0].events
        w = slice(ev["pkh"], ev["ball_release"] + 36)
        err = np.linalg.norm(com[w] - js.points["com"][w], axis=1)
        assert np.median(err) < 0.015, (p, np.median(err))


def test_obp_left_handed_mirror_gives_same_metrics(obp):
    """Mirror a real pitch into a left-hander: detected as L, metrics unchanged."""
    _, rows, poi, meta, results = obp
    p = "1097_2"
    mirrored = []
    for r in rows[p]:
        r = dict(r)
        for k in list(r):
            if k.endswith("_y"):
                r[k] = str(-float(r[k]))
        mirrored.append(r)
    js = from_obp_landmarks(mirrored, throws="L", height=float(meta[p]["session_height_m"]))
    res = A.analyze(js, home_azimuth_deg=0.0)
    assert res.handedness == "L" and res.handedness_source == "auto"
    ref = results[p][0]
    assert res.events == ref.events
    for k, v in ref.metrics.items():
        assert res.metrics[k] == pytest.approx(v, abs=1e-6), k
    # the wrong arm forced: that arm and leg make no delivery, and the refusal says why
    with pytest.raises(NotAPitch, match="throwing arm R set by the user; the faster wrist is L"):
        A.analyze(js, handedness="R", home_azimuth_deg=0.0)


@pytest.fixture(scope="module")
def obp_torso(obp):
    """OBP's own tracked torso orientation per pitch (joint_angles_subset.csv)."""
    V = obp[0]
    angles = V.load_angles(shared_path("data", "obp"))
    return {p: V.obp_torso_frames(angles[p]) for p in PITCHES}


def test_obp_torso_orientation_reproduces_obp_torso_metrics(obp, obp_torso):
    """Our torso definitions are OBP's: given OBP's own torso orientation, the torso angles at
    OBP's event frames, the maximum hip-shoulder separation and the peak torso rotational
    velocity reproduce OBP's POI values on all 5 pitches (the misses with the thorax points
    come from the input, next test)."""
    V, rows, poi, meta, _ = obp
    angles = V.load_angles(shared_path("data", "obp"))
    for p in PITCHES:
        _, _, _, m_rows = V.evaluate(rows, poi, meta, p, thorax_frames=obp_torso[p], angle_rows=angles[p])
        m = {r[0]: r for r in m_rows}
        for tag in ("fp", "mer", "br"):
            for k in (f"torso_anterior_tilt_{tag}", f"torso_lateral_tilt_{tag}", f"torso_rotation_{tag}"):
                assert abs(m[k][5]) < 0.1, (p, k, m[k][5])        # error at OBP's event frame
        assert abs(m["max_hip_shoulder_separation"][4]) < 0.2, p
        _, _, ours, ref, *_ = m["max_torso_rotational_velo"]
        assert abs(ours - ref) < 0.005 * ref, (p, ours, ref)


def test_obp_thorax_points_do_not_carry_the_torso_axial_rotation(obp, obp_torso):
    """The frame from OBP's three exported thorax points and OBP's tracked torso agree in tilt but
    turn against each other about the long axis by well over the 5° tolerance during a pitch
    (OBP tracks the torso with the STRN/T10 markers too, which no exported point follows)."""
    _, rows, _, _, _ = obp
    for p in PITCHES:
        js = from_obp_landmarks(rows[p])
        Rt = M.thorax_frame(js["thorax_prox"], js["thorax_dist"], js["thorax_right"])
        rel = Rotation.from_matrix(np.einsum("tji,tjk->tik", Rt, obp_torso[p])).as_rotvec(degrees=True)
        assert np.abs(rel[:, :2]).max() < 2.5, p                     # tilt: the same long axis
        assert np.ptp(rel[:, 2]) > 15.0, (p, np.ptp(rel[:, 2]))      # axial: not the same frame


def test_obp_wrist_leaves_obp_elbow_plane_between_mer_and_release(obp, obp_torso):
    """OBP's elbow has no varus/valgus freedom (elbow_angle_y is 0 in every frame) and its
    humerus follows its own markers; the wrist centre leaves that humerus's flexion plane by
    more than 8° between MER and release on every pitch, which a frame from joint centres
    alone (the arm plane) turns into humeral rotation (docs/pitch_validation.md)."""
    V, rows, _, _, _ = obp
    angles = V.load_angles(shared_path("data", "obp"))
    for p in PITCHES:
        assert all(float(r["elbow_angle_y"]) == 0.0 for r in angles[p])
        js = from_obp_landmarks(rows[p])
        out, axis = V.forearm_out_of_plane(js, V.obp_humerus_frames(angles[p], obp_torso[p]))
        ev = {k: int(round(float(rows[p][0][k]) * js.fps)) for k in ("pkh_time", "MER_time", "BR_time")}
        assert axis[ev["pkh_time"]:ev["BR_time"] + 1].max() < 4.0, p    # the rebuilt humerus is right
        assert np.abs(out[ev["MER_time"]:ev["BR_time"] + 1]).max() > 8.0, p


def test_obp_auto_home_direction_close_to_lab_x(obp):
    _, rows, poi, meta, _ = obp
    for p in PITCHES:
        js = from_obp_landmarks(rows[p], height=float(meta[p]["session_height_m"]))
        assert abs(A.analyze(js).home_azimuth_deg) < 5.0, p


def test_caveats_mark_exactly_the_checks_missing_on_most_pitches():
    """report.METRIC_CAVEATS lists the metrics asserted on fewer than 3 of the 5 pitches."""
    weak = {k for k, ps in ASSERTED_ON.items() if len(ps) < 3}
    weak |= {"max_hip_shoulder_separation", "torso_rotation_mer"}          # asserted on none
    assert set(report.METRIC_CAVEATS) == weak


def test_report_files(obp, tmp_path):
    _, _, _, _, results = obp
    res = results["1031_2"][0]
    pngs = report.write_all(res, tmp_path, "p")
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["handedness"] == "R" and d["events"]["ball_release"]["frame"] is not None
    assert "max_shoulder_external_rotation" in d["metrics"]
    assert (tmp_path / "p_metrics.csv").read_text().count("\n") > 30
    # metrics that miss Validation 1's tolerance carry their caveat in both reports
    assert set(d["caveats"]) == set(report.METRIC_CAVEATS)
    assert "torso" in d["caveats"]["torso_rotation_mer"] and "stride_length_pct_height" not in d["caveats"]
    import csv
    notes = {r["name"]: r["note"] for r in csv.DictReader(open(tmp_path / "p_metrics.csv"))}
    assert notes["max_hip_shoulder_separation"] == report.caveat("max_hip_shoulder_separation") != ""
    assert notes["max_shoulder_external_rotation"] == ""
    assert all(p.stat().st_size > 10_000 for p in pngs)
    report.write_summary([report.summary_row(res, "a"), report.summary_row(results["1097_1"][0], "b")],
                         tmp_path / "summary.csv")
    assert (tmp_path / "summary.csv").read_text().count("\n") == 3


def test_throw_is_found_relative_to_the_pelvis():
    """A whole-body jump (a video estimate's root re-estimated after a gap) moves the hand as
    fast as a throw; the throw is located by the hand's speed relative to the pelvis."""
    from engine.pitch import events as E
    fps, T = 60.0, 120
    t = np.arange(T)
    throw = 12.0 * np.exp(-0.5 * ((t - 90) / 2.0) ** 2)        # the real throw at frame 90
    jump = np.zeros(T)
    jump[40] = 15.0                                              # a one-frame body jump at 40
    world = throw + jump + 0.5
    relative = throw + 0.3                                       # the jump cancels against the pelvis
    assert E.peak_hand_speed(world, fps) == 40                  # world speed alone is fooled
    assert E.peak_hand_speed(world, fps, relative) == 90
    shifted = np.roll(relative, 2)                               # relative peak 2 frames late
    assert E.peak_hand_speed(world, fps, shifted) == 90          # the frame is the world peak
