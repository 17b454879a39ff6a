"""Pitch plausibility: 'not a pitch' refusals, plausible-range flags, status, CLI exit codes."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DEMO_VIDEO, ROOT, make_motion, make_toy_body, shared_path

from engine.pitch import NotAPitch, analyze, from_smpl_joints
from engine.pitch import events as E
from engine.pitch import plausibility as P
from engine.pitch import report

FPS, T, PKH, BR = 60.0, 130, 45, 95


def _sig(x):
    return 1 / (1 + np.exp(-x))


def synthetic_pitch_joints(T=T, pkh=PKH, br=BR, rotate=True, arm_speed=1.0):
    """SMPL-24 joints (T,24,3) of a crude right-handed pitch toward +x at 60 fps with known
    events: the lead knee peaks at frame ``pkh``, the lead foot lands ~28 frames later, the arm
    lays back to its maximum external rotation ~8 frames before ``br``, where the elbow is
    straightest as the throwing hand reaches its top speed. With ``rotate`` the pelvis and then
    the upper body turn from closed to square (peak ~700 and ~1000 °/s, pelvis first), as in a
    delivery; ``arm_speed`` scales the arm action's rate. Every metric lies in its plausible
    range (status ok)."""
    from engine.body.skeleton import JOINT_INDEX as J
    f = np.arange(T, dtype=float)
    P_ = np.zeros((T, 24, 3))
    one = np.ones(T)

    def put(name, x, y, z):
        P_[:, J[name]] = np.stack([x * one, y * one, z * one], 1)

    xp = 0.8 * _sig((f - (pkh + 30)) / 6)
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
    k = 1.0 / arm_speed
    a = np.radians(50) * _sig((f - br) / (3 * k))
    u = np.stack([np.sin(a), -np.cos(a), 0 * f], 1)                    # upper arm, comes forward
    theta = np.radians(90 - 80 * np.exp(-((f - br) / (2.5 * k)) ** 2))    # elbow flexion, least at br
    # forearm: up, back to layback (max external rotation ~8 frames before br), then forward
    psi = np.radians(-90 * _sig((f - (br - 16)) / (3 * k)) + 180 * _sig((f - br + 1) / k))
    fwd = np.stack([np.cos(a), np.sin(a), 0 * f], 1)
    w = np.cos(psi)[:, None] * np.array([0, 0, 1.0]) + np.sin(psi)[:, None] * fwd
    fa = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * w
    E_ = P_[:, J["right_shoulder"]] + 0.3 * u
    W = E_ + 0.26 * fa
    P_[:, J["right_elbow"]], P_[:, J["right_wrist"]], P_[:, J["right_hand"]] = E_, W, W + 0.08 * fa
    if rotate:   # built square to home; turn it closed before the delivery, then rotate open
        pelvis = np.radians(100 * _sig((f - (br - 14)) / 2.1) - 90)
        torso = np.radians(100 * _sig((f - (br - 11)) / 1.5) - 95)
        centre = P_[:, J["pelvis"]].copy()
        lower = ("pelvis", "right_hip", "left_hip")
        upper = ("spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
                 "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                 "right_wrist", "left_hand", "right_hand")
        for names, ang in ((lower, pelvis), (upper, torso)):
            c, s_ = np.cos(ang), np.sin(ang)
            for n in names:
                d = P_[:, J[n]] - centre
                P_[:, J[n]] = centre + np.stack([c * d[:, 0] - s_ * d[:, 1], s_ * d[:, 0] + c * d[:, 1],
                                                 d[:, 2]], 1)
    return P_


def synthetic_pitch(**kw):
    return from_smpl_joints(synthetic_pitch_joints(**kw), FPS)


# --- a pitch passes -----------------------------------------------------------------------

def test_synthetic_pitch_is_analysed_with_status_ok():
    res = analyze(synthetic_pitch())
    ev = res.events
    assert ev["pkh"] == PKH and abs(ev["ball_release"] - BR) <= 1
    assert ev["pkh"] < ev["foot_contact"] <= ev["foot_plant"] < ev["mer"] <= ev["ball_release"] < ev["mir"]
    assert res.flags == {}, res.flags
    assert res.status == "ok"
    d = res.to_dict()
    assert d["status"] == "ok" and d["flags"] == {}


# --- not a pitch ----------------------------------------------------------------------------

def test_standing_still_is_not_a_pitch():
    J = synthetic_pitch_joints()
    still = np.repeat(J[:1], T, axis=0) + 0.001 * np.random.default_rng(0).normal(size=J.shape)
    with pytest.raises(NotAPitch) as e:
        analyze(from_smpl_joints(still, FPS))
    assert e.value.reason and isinstance(e.value, ValueError)


def test_out_of_order_events_are_not_a_pitch():
    """Foot plant after release (e.g. the arm action before the stride) is no delivery; the
    reason names the two events and their clip frames."""
    ev = {"pkh": 10, "foot_contact": 40, "foot_plant": 42, "mer": 38, "ball_release": 41}
    assert P.event_problem(ev, first_frame=5) == \
        "max external rotation (frame 43) is not after foot plant (frame 47)"
    ev = {"pkh": 10, "foot_contact": 10, "foot_plant": 12, "mer": 20, "ball_release": 22}
    assert "foot contact" in P.event_problem(ev)                   # PKH < FC is strict
    ev = {"pkh": 10, "foot_contact": 30, "foot_plant": 30, "mer": 40, "ball_release": 40}
    assert P.event_problem(ev) is None                              # FC ≤ FP, MER ≤ BR
    assert P.event_problem({**ev, "mer": None}) == "no max external rotation found"
    # through analyze: the arm action replaced by a throw before the stride lands
    with pytest.raises(NotAPitch, match="is not after"):
        analyze(synthetic_pitch(), events={"ball_release": PKH + 10, "mer": PKH + 8})


def test_slow_arm_is_not_a_pitch():
    with pytest.raises(NotAPitch, match="throwing-hand speed|elbow extension"):
        analyze(synthetic_pitch(rotate=False, arm_speed=0.2))


@pytest.mark.parametrize("name, value, needle", [
    ("peak_hand_speed", 60.0, "throwing-hand speed peak 60.0 m/s"),
    ("stride_length_pct_height", 5.0, "no stride"),
    ("max_shoulder_external_rotation", 40.0, "never lays back"),
    ("max_elbow_extension_velo", 100.0, "elbow extension"),
])
def test_motion_gates(name, value, needle):
    ok = {"peak_hand_speed": 20.0, "stride_length_pct_height": 80.0,
          "max_shoulder_external_rotation": 170.0, "max_elbow_extension_velo": 2400.0}
    assert P.motion_problem(ok) is None
    assert needle in P.motion_problem({**ok, name: value})


def test_argmax_in_empty_or_unknown_windows_give_none():
    """The TypeError of a two-person clip's second track: windows bounded by missing events."""
    x = np.arange(10.0)
    assert E._argmax_in(x, None, 5) is None and E._argmax_in(x, 3, None) is None
    assert E._argmax_in(x, 5, 5) is None
    assert E._argmax_in(np.full(10, np.nan), 0, 10) is None
    assert E.max_external_rotation(x, 2, None) is None and E.max_internal_rotation(x, None, FPS) is None
    assert E.ball_release(x, None, FPS) is None and E.foot_plant(x, None, 5) is None
    assert E.foot_contact(x, None, 0, 5) is None and E.ground_height(x, None) is None


def test_clip_starting_at_the_throw_is_refused_not_crashed():
    """A track seen only from the throw on (another person's track, a late cut): the events
    bounded by the missing peak knee height are None and the refusal names it."""
    with pytest.raises(NotAPitch, match="no peak knee height found|is not after"):
        analyze(from_smpl_joints(synthetic_pitch_joints()[BR - 2:], FPS))


# --- plausible ranges -------------------------------------------------------------------------

def test_metric_outside_its_range_is_flagged_and_status_check(tmp_path):
    res = analyze(synthetic_pitch())
    lo, hi, cite = P.load_ranges()["metrics"]["max_shoulder_external_rotation"]
    res.metrics["max_shoulder_external_rotation"] = hi + 30
    res.flags = P.flags(res.events, res.metrics)
    assert list(res.flags) == ["max_shoulder_external_rotation"]
    assert res.flags["max_shoulder_external_rotation"].startswith(f"above the plausible {lo:g} to {hi:g}°")
    assert cite in res.flags["max_shoulder_external_rotation"]
    assert res.status == "check"
    report.write_all(res, tmp_path, "p", plots=False)
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["status"] == "check" and "max_shoulder_external_rotation" in d["flags"]
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "p_metrics.csv"))}
    assert rows["max_shoulder_external_rotation"]["flag"] == res.flags["max_shoulder_external_rotation"]
    assert rows["stride_length_pct_height"]["flag"] == ""
    row = report.summary_row(res, "p")
    assert row["status"] == "check" and "max_shoulder_external_rotation" in row["flags"]


def test_missing_or_edge_events_make_status_check():
    res = analyze(synthetic_pitch())
    assert P.flags({**res.events, "mir": None}, res.metrics) == {"mir": "event not found"}
    assert "not after ball release" in P.flags({**res.events, "mir": res.events["ball_release"]},
                                               res.metrics)["mir"]
    assert "first frame" in P.flags({**res.events, "pkh": 0}, res.metrics)["pkh"]
    clipped = analyze(from_smpl_joints(synthetic_pitch_joints()[PKH:], FPS))   # starts at PKH
    assert clipped.events["pkh"] == 0 and clipped.status == "check" and "pkh" in clipped.flags


def test_every_reported_metric_has_a_range_and_every_range_a_source():
    ranges = P.load_ranges()
    shown = {name for _, items in report.METRIC_GROUPS for name, _, _ in items}
    assert set(ranges["metrics"]) == shown
    for name, (lo, hi, cite) in ranges["metrics"].items():
        assert lo < hi and cite, name
    raw = json.loads(P.RANGES_PATH.read_text())
    assert {s["source"] for s in raw["metrics"].values()} <= set(raw["sources"])


def test_obp_values_fall_inside_the_ranges():
    """OBP's own per-pitch POI values (test data only) and ours on OBP's joint centres lie inside
    every plausible range: the five lab pitches analyse with status ok."""
    import importlib.util
    d = shared_path("data", "obp")
    spec = importlib.util.spec_from_file_location("validate_pitch_obp", ROOT / "scripts" / "validate_pitch_obp.py")
    V = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(V)
    rows, poi, meta = V.load(d)
    ranges = P.load_ranges()["metrics"]
    for p in sorted(rows):
        for ours, (col, scale, _) in V.METRICS.items():
            ref = poi[p].get(col)
            if ref in (None, "") or ours not in ranges:
                continue
            lo, hi, _ = ranges[ours]
            assert lo <= float(ref) * scale <= hi, (p, ours, float(ref) * scale, (lo, hi))
        res = analyze(V.from_obp_landmarks(rows[p], height=float(meta[p]["session_height_m"])))
        assert res.status == "ok", (p, res.flags)


# --- the command line ----------------------------------------------------------------------

def _run(*args):
    return subprocess.run([sys.executable, "-m", "engine.pitch", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def _motion_file(tmp_path, name, joints):
    """A Motion file whose joints are ``joints`` (the analysis reads only those)."""
    m = make_motion(make_toy_body(), T=len(joints), fps=FPS)
    m.joints = joints.astype(np.float32)
    path = tmp_path / f"{name}.npz"
    m.save(path)
    return path


@pytest.fixture(scope="module")
def demo_motion():
    """The shipped demo clip (a box jump) through the engine's baseline estimator, kept in
    tests/artifacts and made again when the video or any engine file is newer (~40 s)."""
    from conftest import ARTIFACTS
    out = ARTIFACTS / "demo_baseline.npz"
    newest = max(p.stat().st_mtime for p in [DEMO_VIDEO, *(ROOT / "engine").rglob("*.py")])
    if not out.is_file() or out.stat().st_mtime < newest:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "engine", str(DEMO_VIDEO), "-o", str(out),
                            "--estimator", "baseline"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_demo_box_jump_is_not_a_pitch(demo_motion, tmp_path):
    r = _run(demo_motion, "-o", tmp_path / "out")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"{demo_motion}: not a pitch: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr + r.stdout
    assert not list((tmp_path / "out").glob("*.json"))


def test_cli_mixed_batch_and_bad_output(tmp_path):
    good = _motion_file(tmp_path, "good", synthetic_pitch_joints())
    still = _motion_file(tmp_path, "still", np.repeat(synthetic_pitch_joints()[:1], T, axis=0))
    r = _run(good, still, "-o", tmp_path / "out", "--no-plots")
    assert r.returncode == 1, r.stderr                      # one pitch analysed, one is not
    assert f"{still}: not a pitch: " in r.stderr and "Traceback" not in r.stderr
    assert "status ok" in r.stdout
    assert (tmp_path / "out" / "good.json").is_file() and not (tmp_path / "out" / "still.json").exists()
    summary = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert [s["clip"] for s in summary] == ["good"] and summary[0]["status"] == "ok"
    # -o an existing file: one error line, exit 2, the file untouched
    r = _run(good, "-o", good)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    r = _run(good, "-o", blocker)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert blocker.read_text() == "keep"
    # a missing file and a damaged one: one error line each, no traceback
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    r = _run(tmp_path / "missing.npz", broken, "-o", tmp_path / "out2")
    assert r.returncode == 2 and r.stderr.count("error: ") == 2 and "Traceback" not in r.stderr


def test_cli_unexpected_failure_is_one_error_line(tmp_path, monkeypatch, capsys):
    """A bug inside the analysis still gives one ``error:`` line per file, never a traceback."""
    from engine.pitch import __main__ as cli
    good = _motion_file(tmp_path, "good", synthetic_pitch_joints())

    def boom(path, a):
        raise IndexError("index 7 is out of bounds")
    monkeypatch.setattr(cli, "analyse_file", boom)
    assert cli.main([str(good), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {good}: analysis failed (IndexError: index 7 is out of bounds)\n"
