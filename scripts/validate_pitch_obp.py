"""Validation 1: our pitch metrics on OBP's own joint centres vs OBP's official values.

    .venv/bin/python scripts/validate_pitch_obp.py [--obp DIR] [--plots docs/img] [--auto-home]
                                                   [--obp-torso]

Feeds the 5 OBP pitches' landmarks (joint centres, 360 Hz) through engine.pitch and prints, for
every event and metric, ours vs OBP (poi_subset.csv / the event columns) and the error, with the
issue's tolerance and a pass/miss flag, plus a summary. OBP data is CC BY-NC-SA and is used here
only as test data. By default home plate is OBP's lab +x (a definitions test); ``--auto-home``
estimates it as for video. Columns "@OBP ev" re-evaluate event-bound metrics at OBP's official
event frames (foot plant: the frame OBP's POI foot-plant values come from, found in OBP's angle
series), which separates definition error from event-timing error. ``--obp-torso`` (a
diagnostic) replaces the thorax frame built from the three exported thorax points with OBP's own
tracked torso orientation (its ``torso_angle`` series in joint_angles_subset.csv), to show which
misses come from the thorax points alone.
"""
import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.pitch import analyze, from_obp_landmarks, read_obp_csv  # noqa: E402
from engine.pitch import report  # noqa: E402

FRAME = 1 / 360
# event: (OBP column, tolerance in s or None = report only)
EVENTS = {"pkh": ("pkh_time", 2 * FRAME), "foot_contact": ("fp_10_time", None),
          "foot_plant": ("fp_100_time", 0.020), "mer": ("MER_time", 2 * FRAME),
          "ball_release": ("BR_time", 0.010), "mir": ("MIR_time", None)}
# our metric: (OBP POI column, scale to our units, kind) — kind sets the tolerance
METRICS = {
    "stride_length_pct_height": ("stride_length", 100.0, "pct_height"),
    "stride_angle": ("stride_angle", 1, "angle"),
    "max_hip_shoulder_separation": ("max_rotation_hip_shoulder_separation", 1, "angle"),
    "hip_shoulder_separation_fp": ("rotation_hip_shoulder_separation_fp", 1, "angle"),
    "max_shoulder_external_rotation": ("max_shoulder_external_rotation", 1, "angle"),
    "elbow_flexion_fp": ("elbow_flexion_fp", 1, "angle"),
    "elbow_flexion_mer": ("elbow_flexion_mer", 1, "angle"),
    "shoulder_abduction_fp": ("shoulder_abduction_fp", 1, "angle"),
    "shoulder_horizontal_abduction_fp": ("shoulder_horizontal_abduction_fp", 1, "angle"),
    "shoulder_external_rotation_fp": ("shoulder_external_rotation_fp", 1, "angle"),
    "torso_anterior_tilt_fp": ("torso_anterior_tilt_fp", 1, "angle"),
    "torso_lateral_tilt_fp": ("torso_lateral_tilt_fp", 1, "angle"),
    "torso_rotation_fp": ("torso_rotation_fp", 1, "angle"),
    "torso_anterior_tilt_mer": ("torso_anterior_tilt_mer", 1, "angle"),
    "torso_lateral_tilt_mer": ("torso_lateral_tilt_mer", 1, "angle"),
    "torso_rotation_mer": ("torso_rotation_mer", 1, "angle"),
    "torso_anterior_tilt_br": ("torso_anterior_tilt_br", 1, "angle"),
    "torso_lateral_tilt_br": ("torso_lateral_tilt_br", 1, "angle"),
    "torso_rotation_br": ("torso_rotation_br", 1, "angle"),
    "pelvis_rotation_fp": ("pelvis_rotation_fp", 1, "angle"),
    "lead_knee_extension_from_fp_to_br": ("lead_knee_extension_from_fp_to_br", 1, "angle"),
    "arm_slot": ("arm_slot", 1, "angle"),
    "max_pelvis_rotational_velo": ("max_pelvis_rotational_velo", 1, "angvel"),
    "max_torso_rotational_velo": ("max_torso_rotational_velo", 1, "angvel"),
    "max_elbow_extension_velo": ("max_elbow_extension_velo", 1, "angvel"),
    "max_shoulder_internal_rotational_velo": ("max_shoulder_internal_rotational_velo", 1, "angvel"),
    "lead_knee_extension_angular_velo_br": ("lead_knee_extension_angular_velo_br", 1, "angvel"),
    "timing_peak_torso_to_peak_pelvis_rot_velo": ("timing_peak_torso_to_peak_pelvis_rot_velo", 1, "time"),
    "max_cog_velo_x": ("max_cog_velo_x", 1, "velocity"),
    "cog_velo_pkh": ("cog_velo_pkh", 1, "velocity"),
}
# kind: (tolerance, relative?) — the Validation 1 tolerances; None = report only
TOL = {"angle": (5.0, False), "pct_height": (5.0, False), "angvel": (0.10, True),
       "time": (None, False), "velocity": (0.10, True)}


def load(obp_dir):
    obp_dir = Path(obp_dir)
    rows = read_obp_csv(obp_dir / "landmarks_subset.csv")
    poi = {r["session_pitch"]: r for r in csv.DictReader(open(obp_dir / "poi_subset.csv"))}
    meta = {r["session_pitch"]: r for r in csv.DictReader(open(obp_dir / "metadata_subset.csv"))}
    return rows, poi, meta


def obp_torso_frames(angle_rows):
    """OBP's torso orientation (T,3,3) in the lab frame from its ``torso_angle`` Z-Y-X Cardan
    angles (Visual3D: RTA relative to the lab, AXIS1=Z, AXIS3=X; OBP's CMO.v3s). Its axes follow
    the same convention as ours (x to the glove side, z up the spine) — checked: at OBP's event
    frames it reproduces OBP's torso POI values exactly through our code (tests/test_pitch.py)."""
    zyx = np.array([[float(r[f"torso_angle_{a}"]) for a in "zyx"] for r in angle_rows])
    return Rotation.from_euler("ZYX", zyx, degrees=True).as_matrix()


def obp_humerus_frames(angle_rows, torso):
    """OBP's throwing-arm humerus orientation (T,3,3): its torso times the shoulder's Z-Y-Z angles
    (Visual3D angles = (-x, y, -z) of OBP's shoulder_angle columns, as our shoulder_angles
    reproduces them on OBP's frames)."""
    xyz = np.array([[float(r[f"shoulder_angle_{a}"]) for a in "xyz"] for r in angle_rows])
    rel = Rotation.from_euler("ZYZ", xyz * [-1, 1, -1], degrees=True).as_matrix()
    return np.einsum("tij,tjk->tik", torso, rel)


def forearm_out_of_plane(js, humerus):
    """Angle (deg, per frame) of the elbow → wrist direction out of the humerus's y-z plane (the
    flexion plane of OBP's elbow, which has no varus/valgus freedom), and the angle between the
    humerus's z axis and the elbow → shoulder direction."""
    f = js["right_wrist"] - js["right_elbow"]
    u = js["right_shoulder"] - js["right_elbow"]
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    out = np.degrees(np.arcsin(np.clip(np.einsum("ti,ti->t", humerus[:, :, 0], f), -1, 1)))
    axis = np.degrees(np.arccos(np.clip(np.einsum("ti,ti->t", humerus[:, :, 2], u), -1, 1)))
    return out, axis


# OBP angle series (joint_angles_subset.csv) → the POI value it gives at foot plant (sign)
FP_POI = {"torso_angle_x": ("torso_anterior_tilt_fp", 1), "torso_angle_y": ("torso_lateral_tilt_fp", 1),
          "torso_angle_z": ("torso_rotation_fp", 1), "pelvis_angle_z": ("pelvis_rotation_fp", 1),
          "elbow_angle_x": ("elbow_flexion_fp", 1), "shoulder_angle_x": ("shoulder_horizontal_abduction_fp", 1),
          "shoulder_angle_y": ("shoulder_abduction_fp", -1),
          "shoulder_angle_z": ("shoulder_external_rotation_fp", 1),
          "torso_pelvis_angle_z": ("rotation_hip_shoulder_separation_fp", -1)}


def poi_foot_plant_frame(angle_rows, poi_row, near, search=4):
    """The frame (within ``search`` of ``near``) at which OBP's own angle series give its
    foot-plant POI values, and the median |difference| there (degrees): OBP's POI table reads
    its foot-plant angles on a frame that is not always the exported fp_100_time."""
    best = None
    for f in range(max(0, near - search), min(len(angle_rows), near + search + 1)):
        d = [abs(sign * float(angle_rows[f][c]) - float(poi_row[k])) for c, (k, sign) in FP_POI.items()]
        if best is None or np.median(d) < best[1]:
            best = (f, float(np.median(d)))
    return best


def load_angles(obp_dir):
    """OBP's joint-angle series per pitch, or None when joint_angles_subset.csv is absent."""
    path = Path(obp_dir) / "joint_angles_subset.csv"
    return read_obp_csv(path) if path.exists() else None


def evaluate(rows, poi, meta, pitch, auto_home=False, thorax_frames=None, angle_rows=None):
    """(analysis, analysis-at-OBP-events, event rows, metric rows) for one pitch.

    The at-OBP-events analysis uses OBP's exported event frames, except foot plant when OBP's
    angle series (``angle_rows``) are given: then the frame its POI foot-plant values come from.
    """
    rs = rows[pitch]
    js = from_obp_landmarks(rs, throws=poi[pitch]["p_throws"],
                            height=float(meta[pitch]["session_height_m"]))
    home = None if auto_home else 0.0
    a = analyze(js, home_azimuth_deg=home, thorax_frames=thorax_frames)
    obp_frames = {k: int(round((float(rs[0][c]) - js.t0) * js.fps)) for k, (c, _) in EVENTS.items()}
    if angle_rows is not None:
        obp_frames["foot_plant"] = poi_foot_plant_frame(angle_rows, poi[pitch], obp_frames["foot_plant"])[0]
    b = analyze(js, home_azimuth_deg=home, events=obp_frames, thorax_frames=thorax_frames)
    ev_rows = []
    for k, (c, tol) in EVENTS.items():
        ours, ref = a.event_time(k), float(rs[0][c])
        err = None if ours is None else ours - ref
        ok = None if tol is None or err is None else abs(err) <= tol + 1e-9
        ev_rows.append((k, ours, ref, err, tol, ok))
    m_rows = []
    for k, (c, scale, kind) in METRICS.items():
        ours, at_ev, ref = a.metrics.get(k), b.metrics.get(k), float(poi[pitch][c]) * scale
        tol, rel = TOL[kind]
        err = None if ours is None else ours - ref
        err2 = None if at_ev is None else at_ev - ref
        if tol is None or err is None:
            ok = None
        else:
            ok = abs(err) <= (tol * abs(ref) if rel else tol)
        m_rows.append((k, kind, ours, ref, err, err2, tol, rel, ok))
    return a, b, ev_rows, m_rows


def _f(v, nd=2):
    return "—" if v is None else f"{v:.{nd}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--obp", default=str(ROOT.parent / "shared" / "data" / "obp"))
    ap.add_argument("--plots", default=None, help="write report PNGs of the first pitch here")
    ap.add_argument("--auto-home", action="store_true", help="estimate home plate's direction")
    ap.add_argument("--obp-torso", action="store_true",
                    help="diagnostic: use OBP's own torso orientation instead of the thorax points'")
    a = ap.parse_args(argv)
    rows, poi, meta = load(a.obp)
    angles = load_angles(a.obp)
    if a.obp_torso and angles is None:
        ap.error("--obp-torso needs joint_angles_subset.csv in the OBP folder")
    pitches = sorted(rows)
    misses, passes = {}, {}
    torso_note = "; torso: OBP's own orientation (diagnostic)" if a.obp_torso else ""
    print(f"# Validation 1 on {len(pitches)} OBP pitches "
          f"(home direction: {'estimated' if a.auto_home else 'OBP lab +x'}{torso_note})\n")
    for i, p in enumerate(pitches):
        torso = obp_torso_frames(angles[p]) if a.obp_torso else None
        res, _, ev_rows, m_rows = evaluate(rows, poi, meta, p, a.auto_home, torso,
                                           None if angles is None else angles[p])
        print(f"## {p} ({res.handedness}HP detected, home azimuth {res.home_azimuth_deg:+.1f}°)\n")
        if angles is not None:
            fp100 = int(round((float(rows[p][0]["fp_100_time"]) - res.t0) * res.fps))
            f, d = poi_foot_plant_frame(angles[p], poi[p], fp100)
            ours = res.clip_frame("foot_plant")
            print(f"OBP's POI foot-plant values are its angle series at frame {f} (fp_100_time "
                  f"{f - fp100:+d} frames; median difference {d:.2f}°); our foot plant is "
                  f"{ours - f:+d} frames ({1000 * (ours - f) / res.fps:+.1f} ms) from it.\n")
        if a.obp_torso and poi[p]["p_throws"].upper() == "R":
            js = from_obp_landmarks(rows[p])
            out, axis = forearm_out_of_plane(js, obp_humerus_frames(angles[p], torso))
            ev = {k: int(round((float(rows[p][0][c]) - js.t0) * js.fps))
                  for k, c in (("pkh", "pkh_time"), ("mer", "MER_time"), ("br", "BR_time"))}
            w = slice(ev["mer"], ev["br"] + 1)
            print(f"Elbow → wrist out of OBP's humerus flexion plane: max |angle| {np.abs(out[w]).max():.1f}° "
                  f"from MER to BR ({np.abs(out[ev['pkh']:ev['mer']]).max():.1f}° from PKH to MER); "
                  f"humerus axis vs elbow → shoulder: max {axis[ev['pkh']:ev['br'] + 1].max():.1f}°.\n")
        print("| event | ours (s) | OBP (s) | error (ms) | tolerance (ms) | ok |")
        print("|---|---|---|---|---|---|")
        for k, ours, ref, err, tol, ok in ev_rows:
            print(f"| {k} | {_f(ours, 4)} | {ref:.4f} | {_f(None if err is None else 1000 * err, 1)} | "
                  f"{_f(None if tol is None else 1000 * tol, 1)} | {'' if ok is None else ('yes' if ok else 'MISS')} |")
            if ok is not None:
                (passes if ok else misses).setdefault("event " + k, []).append(p)
        print("\n| metric | ours | OBP | error | error @OBP ev | tolerance | ok |")
        print("|---|---|---|---|---|---|---|")
        for k, kind, ours, ref, err, err2, tol, rel, ok in m_rows:
            nd = 3 if kind in ("time", "velocity") else 1
            if rel and err is not None:
                e = f"{100 * err / abs(ref):+.1f}%"
                e2 = "—" if err2 is None else f"{100 * err2 / abs(ref):+.1f}%"
            else:
                e, e2 = _f(err, nd), _f(err2, nd)
            t = "report" if tol is None else (f"{100 * tol:.0f}%" if rel else f"{tol:g}")
            print(f"| {k} | {_f(ours, nd)} | {ref:.{nd}f} | {e} | {e2} | {t} | "
                  f"{'' if ok is None else ('yes' if ok else 'MISS')} |")
            if ok is not None:
                (passes if ok else misses).setdefault(k, []).append(p)
        print()
        if a.plots and i == 0:
            out = Path(a.plots)
            out.mkdir(parents=True, exist_ok=True)
            for path in report.plot(res, out, stem="pitch_obp_" + p):
                print(f"(wrote {path})")
            print()
    names = list(dict.fromkeys([*passes, *misses]))
    print("## Summary (pitches within tolerance / 5)\n")
    print("| check | within | missed on |")
    print("|---|---|---|")
    for n in names:
        print(f"| {n} | {len(passes.get(n, []))}/{len(pitches)} | {', '.join(misses.get(n, [])) or '—'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
