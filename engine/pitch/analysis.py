"""One pitch: joint centres → pitch frame → time series → events → OBP-style metrics.

``analyze(joint_set)`` returns a :class:`PitchAnalysis` (plain arrays and dicts; ``to_dict()``
is JSON-ready). The steps, and the choices made where OBP's definitions need markers that
SMPL-24 joint centres do not have, are documented on each function and in
docs/pitch_validation.md.
"""
from dataclasses import dataclass, field

import numpy as np

from . import events as E
from . import metrics as M
from . import plausibility as P
from .joints import REQUIRED, JointSet

DEFAULT_CUTOFF_HZ = 20.0   # OBP filters its landmarks at 20 Hz
# Whole-body centre of mass: the segment model of OBP's own Visual3D model
# (baseball_pitching/code/v3d/model/v6_model_hybrid_lm.mdh in the OBP repository): pelvis, a
# thorax/abdomen segment that runs from thorax_prox to thorax_dist (OBP's RTA segment), head,
# upper arms, forearms, hands, thighs, shanks, feet, with Visual3D's default segment masses
# (Dempster's, as fractions of body mass) and each segment's centre of mass at the centroid of
# its geometric shape (Hanavan-style frusta: Dempster's centre-of-mass fractions from the
# proximal end for the limbs, the middle of the cylinder for the thorax/abdomen).
SEGMENTS = {  # name: (mass fraction, proximal point, distal point, CoM fraction from proximal)
    "thorax_abdomen": (0.355, "thorax_prox", "thorax_dist", 0.5),
    "upper_arm": (0.028, "shoulder", "elbow", 0.436),
    "forearm": (0.016, "elbow", "wrist", 0.430),
    "hand": (0.006, "hand", "hand", 0.0),          # OBP: a sphere centred on the hand point
    "thigh": (0.100, "hip", "knee", 0.433),
    "shank": (0.0465, "knee", "ankle", 0.433),
    "foot": (0.0145, "ankle", "ankle", 0.0),      # no toe point in OBP: the ankle centre
}
PELVIS_MASS = 0.142
# Pelvis CoM: halfway between the hip centres and the ASIS plane. OBP places the hip centres
# 0.30 ASIS-widths below the ASIS plane and 0.36 ASIS-widths either side of the midline
# (Bell's rule), so the ASIS plane is 0.30/0.72 = 0.42 hip-centre widths above them.
PELVIS_COM_ABOVE_HIPS = 0.21   # × hip-centre width, toward thorax_dist
HEAD_MASS = 0.081
HEAD_ABOVE_THORAX = 0.15   # m along the thorax axis: head+neck CoM (the head joint is not used)
# Segment length / body height (Drillis & Contini), used only when no height is given.
HEIGHT_RATIOS = {"thigh": 0.245, "shank": 0.246, "upper_arm": 0.186, "forearm": 0.146}


@dataclass
class PitchAnalysis:
    fps: float
    t0: float
    handedness: str                  # "R" or "L" (the throwing arm)
    handedness_source: str           # "auto" or "user"
    height: float
    height_source: str
    home_azimuth_deg: float          # direction of home plate in the input's world frame
    events: dict                     # name -> frame index (on this clip) or None
    metrics: dict                    # name -> value (float or None)
    series: dict = field(repr=False, default_factory=dict)   # name -> (T,) arrays
    warnings: list = field(default_factory=list)
    source: str = ""
    first_frame: int = 0             # input (Motion) frame of the analysed span's frame 0
    flags: dict = field(default_factory=dict)   # metric or event -> why it is implausible

    @property
    def status(self):
        """"ok", or "check" when a metric is outside its plausible range or an event is missing."""
        return P.status(self.flags)

    def event_time(self, name):
        f = self.events.get(name)
        return None if f is None else self.t0 + f / self.fps

    def clip_frame(self, name):
        """Frame index of event ``name`` on the input clip (Motion frame), or None."""
        f = self.events.get(name)
        return None if f is None else int(self.first_frame + f)

    def to_dict(self):
        ev = {k: {"frame": v, "clip_frame": self.clip_frame(k), "time_s": self.event_time(k)}
              for k, v in self.events.items()}
        return {"source": self.source, "fps": self.fps, "handedness": self.handedness,
                "handedness_source": self.handedness_source, "height_m": self.height,
                "height_source": self.height_source, "home_azimuth_deg": self.home_azimuth_deg,
                "events": ev, "metrics": {k: _num(v) for k, v in self.metrics.items()},
                "status": self.status, "flags": dict(self.flags), "warnings": list(self.warnings)}


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else round(v, 4)


def detect_handedness(points, fps):
    """'R' or 'L': the throwing hand is the much faster one (peak wrist speed about the trunk,
    the shoulders' midpoint: the stride and the trunk's own motion count for both hands alike).

    Returns (hand, ratio) with ratio = faster / slower peak speed (≈1.5-3 in a real pitch); the
    caller warns when it is too close to 1 to tell.
    """
    trunk = 0.5 * (points["left_shoulder"] + points["right_shoulder"])
    peaks = {}
    for side in ("left", "right"):
        v = np.linalg.norm(M.derivative(points[f"{side}_wrist"] - trunk, fps), axis=1)
        peaks[side] = float(np.nanpercentile(v, 99.5))
    hand = "R" if peaks["right"] >= peaks["left"] else "L"
    ratio = max(peaks.values()) / max(min(peaks.values()), 1e-9)
    return hand, ratio


def home_azimuth(points, fps, throw_side, com=None):
    """Azimuth (degrees, from world +x toward +y) of home plate in the input's world frame.

    The bisector of two horizontal directions that both point at the plate: the throwing hand's
    velocity at its peak speed (the throw) and the centre of mass's velocity at its peak
    horizontal speed (the drive toward the plate). On OBP's lab frame the two land a few
    degrees either side of the true direction and their bisector within ~1°
    (docs/pitch_validation.md).
    """
    v = M.derivative(points[f"{throw_side}_hand"], fps) * [1, 1, 0]
    d = M.normalize(v[int(np.nanargmax(np.linalg.norm(v, axis=1)))])
    if com is not None:
        cv = M.derivative(com, fps) * [1, 1, 0]
        d = M.normalize(d + M.normalize(cv[int(np.nanargmax(np.linalg.norm(cv, axis=1)))]))
    return float(np.degrees(np.arctan2(d[1], d[0])))


def _world_to_pitch(azimuth_deg):
    """The rotation about z that turns home plate's direction into +x."""
    a = np.radians(azimuth_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])


def to_pitch_frame(points, azimuth_deg, handedness):
    """Rotate about z so home is +x; mirror a left-hander (y → -y, left ↔ right names)."""
    Rz = _world_to_pitch(azimuth_deg)
    out = {}
    for name, p in points.items():
        q = p @ Rz.T
        if handedness == "L":
            q = q * [1, -1, 1]
            if name.startswith("left_"):
                name = "right_" + name[5:]
            elif name.startswith("right_"):
                name = "left_" + name[6:]
        out[name] = q
    if handedness == "L" and "thorax_right" in out:
        # the lateral thorax point must stay on the (new) right: mirror it through thorax_prox
        out["thorax_right"] = 2 * out["thorax_prox"] - out["thorax_right"]
    return out


def frames_to_pitch_frame(R, azimuth_deg, handedness):
    """Segment frames (T,3,3, columns = axes in the world) into the pitch frame, as
    :func:`to_pitch_frame` does for points: rotate about z, and mirror a left-hander (S R S with
    S = diag(1, -1, 1), which keeps the frame right-handed and its x on the glove side)."""
    out = np.einsum("ij,tjk->tik", _world_to_pitch(azimuth_deg), np.asarray(R, dtype=np.float64))
    if handedness == "L":
        S = np.diag([1.0, -1.0, 1.0])
        out = S @ out @ S
    return out


def roles(p):
    """Pitch roles for a (mirrored-to-)right-hander: throwing arm, glove arm, rear/lead leg."""
    r = {"shoulder": p["right_shoulder"], "elbow": p["right_elbow"], "wrist": p["right_wrist"],
         "hand": p["right_hand"], "glove_shoulder": p["left_shoulder"],
         "glove_elbow": p["left_elbow"], "glove_wrist": p["left_wrist"],
         "glove_hand": p["left_hand"],
         "rear_hip": p["right_hip"], "rear_knee": p["right_knee"], "rear_ankle": p["right_ankle"],
         "lead_hip": p["left_hip"], "lead_knee": p["left_knee"], "lead_ankle": p["left_ankle"],
         "thorax_prox": p["thorax_prox"], "thorax_dist": p["thorax_dist"],
         "thorax_right": p["thorax_right"]}
    r["hip_mid"] = 0.5 * (r["rear_hip"] + r["lead_hip"])
    return r


def estimate_height(r):
    """Body height (m) from median segment lengths and anthropometric ratios."""
    pairs = {"thigh": [("rear_hip", "rear_knee"), ("lead_hip", "lead_knee")],
             "shank": [("rear_knee", "rear_ankle"), ("lead_knee", "lead_ankle")],
             "upper_arm": [("shoulder", "elbow"), ("glove_shoulder", "glove_elbow")],
             "forearm": [("elbow", "wrist"), ("glove_elbow", "glove_wrist")]}
    est = []
    for seg, ps in pairs.items():
        for a, b in ps:
            est.append(np.nanmedian(np.linalg.norm(r[a] - r[b], axis=1)) / HEIGHT_RATIOS[seg])
    return float(np.median(est))


def centre_of_mass(r, R_thorax):
    """Whole-body centre of mass (T,3) from joint centres with OBP's segment model (SEGMENTS).

    The head+neck is placed HEAD_ABOVE_THORAX along the thorax axis above thorax_prox (OBP has
    no head point; SMPL's head joint is at the skull base); feet sit at the ankle centres (no
    toe point in OBP). Chosen over de Leva's single trunk segment (C7 → mid-hip) because it
    follows OBP's own centre of mass on OBP's landmarks (docs/pitch_validation.md).
    """
    hip_w = np.linalg.norm(r["lead_hip"] - r["rear_hip"], axis=1, keepdims=True)
    pelvis = r["hip_mid"] + PELVIS_COM_ABOVE_HIPS * hip_w * M.normalize(r["thorax_dist"] - r["hip_mid"])
    com = HEAD_MASS * (r["thorax_prox"] + HEAD_ABOVE_THORAX * R_thorax[:, :, 2]) + PELVIS_MASS * pelvis
    for seg, (m, a, b, f) in SEGMENTS.items():
        if seg == "thorax_abdomen":
            com = com + m * (r[a] + f * (r[b] - r[a]))
            continue
        for pre in (("", "glove_") if seg in ("upper_arm", "forearm", "hand") else ("rear_", "lead_")):
            pa, pb = r[pre + a], r[pre + b]
            com = com + m * (pa + f * (pb - pa))
    return com


def _rot_branch(a):
    """Unwrap an angle series (deg) and put its median on the (-180, 180] branch."""
    a = M.unwrap_deg(a)
    return a - 360.0 * np.round(np.nanmedian(a) / 360.0)


def analyze(js: JointSet, handedness="auto", height=None, cutoff_hz="auto", home_azimuth_deg=None,
            events=None, thorax_frames=None, check_delivery=True):
    """Analyse one delivery. ``handedness``: 'auto', 'R' or 'L'; ``height`` in metres overrides
    ``js.height``; ``cutoff_hz``: low-pass cutoff ('auto' = 20 Hz, at most 0.4·fps; None = off);
    ``home_azimuth_deg``: direction of home plate in the world frame when known (degrees), None to
    estimate it from the motion, or "camera" when the camera looks toward home (a center-field
    view: the camera's horizontal viewing direction, ``js.meta["camera_azimuth_deg"]``);
    ``events``: frame indices that replace detected ones (e.g. force-plate foot plant), used by
    the validation to separate definition errors from event-timing errors;
    ``thorax_frames``: (T,3,3) measured torso orientations in the world frame (columns x toward
    the glove side, y = z × x, z up the spine), used instead of the frame built from the three
    thorax points — e.g. a marker-cluster fit; the validation uses OBP's own torso to show which
    misses come from the thorax points alone;
    ``check_delivery``: refuse a motion without a pitching delivery (raises
    :class:`~engine.pitch.plausibility.NotAPitch` with the reason); False keeps the events and
    metrics of any motion (development tools comparing event rules).

    Metrics outside their plausible range and missing events are listed in ``flags`` (status
    "check").
    """
    fps = float(js.fps)
    warnings = []
    if isinstance(home_azimuth_deg, str):
        if home_azimuth_deg == "camera":
            home_azimuth_deg = js.meta.get("camera_azimuth_deg")
            if home_azimuth_deg is None:
                raise ValueError("home direction 'camera' needs a Motion with camera extrinsics")
        elif home_azimuth_deg == "auto":
            home_azimuth_deg = None
        else:
            home_azimuth_deg = float(home_azimuth_deg)
    valid = js.valid
    if valid.sum() < max(10, int(0.3 * fps)):
        raise ValueError("too few valid frames for a pitch analysis")
    idx = np.nonzero(valid)[0]
    lo, hi = idx[0], idx[-1] + 1                   # analyse the span the subject was seen
    if (~valid[lo:hi]).any():
        warnings.append(f"{int((~valid[lo:hi]).sum())} frames without the subject were interpolated")
    if cutoff_hz == "auto":
        cutoff_hz = min(DEFAULT_CUTOFF_HZ, 0.4 * fps)
    pts = {}
    for name, p in js.points.items():
        if not np.isfinite(p[lo:hi][valid[lo:hi]]).all():
            continue
        pts[name] = M.lowpass(M.fill_gaps(p[lo:hi], valid[lo:hi]), fps, cutoff_hz)
    lost = [n for n in REQUIRED if n not in pts]
    if lost:
        raise ValueError(f"joint {lost[0]} is missing in frames marked valid: the Motion is damaged")

    auto_hand, ratio = detect_handedness(pts, fps)
    if handedness in (None, "auto"):
        hand, hand_src = auto_hand, "auto"
        if ratio < 1.2:
            warnings.append(f"handedness unclear (wrist peak-speed ratio {ratio:.2f}); override it")
    else:
        hand, hand_src = handedness.upper(), "user"
        if hand != auto_hand:
            warnings.append(f"user handedness {hand} differs from the detected {auto_hand}")
    throw_side = "right" if hand == "R" else "left"
    if home_azimuth_deg is None:
        r0 = roles(to_pitch_frame(pts, 0.0, hand))   # world axes, throwing side on the right
        com0 = centre_of_mass(r0, M.thorax_frame(r0["thorax_prox"], r0["thorax_dist"], r0["thorax_right"]))
        if hand == "L":
            com0 = com0 * [1, -1, 1]                   # back to the world frame
        az = home_azimuth(pts, fps, throw_side, com0)
    else:
        az = float(home_azimuth_deg)
    p = to_pitch_frame(pts, az, hand)
    r = roles(p)

    H = height if height is not None else js.height
    h_src = "given"
    if H is None:
        H, h_src = estimate_height(r), "estimated from segment lengths"

    # --- segment frames and time series --------------------------------------------------
    Rp = M.pelvis_frame(r["rear_hip"], r["lead_hip"])
    if thorax_frames is None:
        Rt = M.thorax_frame(r["thorax_prox"], r["thorax_dist"], r["thorax_right"])
    else:
        if len(thorax_frames) != js.num_frames:
            raise ValueError(f"thorax_frames has {len(thorax_frames)} frames, the joints {js.num_frames}")
        Rt = frames_to_pitch_frame(np.asarray(thorax_frames)[lo:hi], az, hand)
    Ru = M.upper_arm_frame(r["shoulder"], r["elbow"], r["wrist"])
    pelvis_rot = _rot_branch(M.cardan_zyx(Rp)[:, 0])
    tz = M.cardan_zyx(Rt)
    torso_rot, torso_lat, torso_ant = _rot_branch(tz[:, 0]), tz[:, 1], tz[:, 2]
    sh = M.shoulder_angles(Rt, Ru)
    elbow = M.flexion(r["shoulder"], r["elbow"], r["wrist"])
    lead_knee = M.flexion(r["lead_hip"], r["lead_knee"], r["lead_ankle"])
    pelvis_w = M.segment_angular_velocity(Rp, fps)[:, 2]
    torso_w = M.segment_angular_velocity(Rt, fps)[:, 2]
    # Internal-rotation velocity from the ER series re-filtered at the joint-centre cutoff: the
    # arm-plane frame amplifies the forearm's small out-of-plane motion by 1/sin(elbow flexion)
    # as the elbow straightens toward release, which puts content above 20 Hz back into the
    # angle's derivative (OBP's angles come from 20 Hz-filtered markers through a model whose
    # forearm cannot leave the elbow's flexion plane). The angle itself (MER, max ER) is not
    # re-filtered: that would shift its peak.
    er_vel = M.derivative(M.lowpass(sh[:, 2], fps, cutoff_hz), fps)
    # hip-shoulder separation: OBP's torso_pelvis Z angle (torso relative to pelvis, X-Y-Z
    # Cardan, + = pelvis rotated ahead of the torso)
    separation = -_rot_branch(M.joint_cardan_xyz(Rp, Rt)[:, 2])
    elbow_ext_vel = -M.derivative(elbow, fps)
    knee_ext_vel = -M.derivative(lead_knee, fps)
    hand_speed = np.linalg.norm(M.derivative(r["hand"], fps), axis=1)
    com = centre_of_mass(r, Rt)
    com_v = M.derivative(com, fps)
    ankle_vz = M.derivative(r["lead_ankle"][:, 2], fps)
    T = len(elbow)
    t = js.t0 + (lo + np.arange(T)) / fps
    series = {"time_s": t, "pelvis_rotation": pelvis_rot, "torso_rotation": torso_rot,
              "torso_lateral_tilt": torso_lat, "torso_anterior_tilt": torso_ant,
              "hip_shoulder_separation": separation,
              "shoulder_horizontal_abduction": sh[:, 0], "shoulder_abduction": sh[:, 1],
              "shoulder_external_rotation": sh[:, 2], "elbow_flexion": elbow,
              "lead_knee_flexion": lead_knee, "pelvis_angular_velocity": pelvis_w,
              "torso_angular_velocity": torso_w, "shoulder_internal_rotation_velocity": -er_vel,
              "elbow_extension_velocity": elbow_ext_vel, "lead_knee_extension_velocity": knee_ext_vel,
              "hand_speed": hand_speed, "com_velocity_x": com_v[:, 0],
              "lead_ankle_height": r["lead_ankle"][:, 2], "lead_knee_height": r["lead_knee"][:, 2]}

    # --- events -----------------------------------------------------------------------------
    ev = {}
    pelvis_centre = 0.5 * (r["rear_hip"] + r["lead_hip"])
    hand_rel_speed = np.linalg.norm(M.derivative(r["hand"] - pelvis_centre, fps), axis=1)
    hp = E.peak_hand_speed(hand_speed, fps, hand_rel_speed)
    ev["pkh"] = E.peak_knee_height(r["lead_knee"][:, 2], hp)
    if ev["pkh"] == 0:
        warnings.append("the clip starts at or after peak knee height: PKH is the first frame")
    ground = E.ground_height(r["lead_ankle"][:, 2], ev["pkh"], None if hp is None else hp + 1)
    ev["foot_contact"] = E.foot_contact(r["lead_ankle"][:, 2], ground, ev["pkh"], hp)
    if ev["foot_contact"] is None:
        warnings.append("no lead-foot contact found before the throw")
        ev["foot_plant"] = None
    else:
        ev["foot_plant"] = E.foot_plant(ankle_vz, ev["foot_contact"], hp)
    ev["ball_release"] = E.ball_release(elbow, hp, fps)
    start = ev["foot_plant"] if ev["foot_plant"] is not None else ev["pkh"]
    ev["mer"] = E.max_external_rotation(sh[:, 2], start, ev["ball_release"])
    ev["mir"] = E.max_internal_rotation(sh[:, 2], ev["ball_release"], fps)
    if ev["ball_release"] is not None and ev["ball_release"] + int(0.05 * fps) >= T:
        warnings.append("the clip ends within 50 ms of ball release: MIR may be cut")

    if events:
        ev.update({k: (None if v is None else int(v) - lo) for k, v in events.items()})
    # the user's arm differing from the faster wrist is the likely cause of a refusal: say so
    hint = (f" (throwing arm {hand} set by the user; the faster wrist is {auto_hand})"
            if hand_src == "user" and hand != auto_hand else "")
    if check_delivery:
        problem = P.event_problem(ev, int(lo))
        if problem:
            raise P.NotAPitch(problem + hint)
    m = compute_metrics(series, ev, r, H, fps)
    if check_delivery:
        problem = P.motion_problem(m)
        if problem:
            raise P.NotAPitch(problem + hint)
    return PitchAnalysis(fps=fps, t0=float(t[0]), handedness=hand, handedness_source=hand_src,
                         height=float(H), height_source=h_src, home_azimuth_deg=az, events=ev,
                         metrics=m, series=series, warnings=warnings, source=js.source,
                         first_frame=int(lo), flags=P.flags(ev, m))


def _at(x, f):
    return None if f is None else float(x[f])


def compute_metrics(s, ev, r, height, fps):
    """OBP point-of-interest metrics from the series and events (None where an event is missing).

    Window choices where OBP is silent: maxima of separation and rotational velocities are taken
    from peak knee height to 0.1 s after release (the delivery), not over the whole recording.
    """
    fp, mer, br, pkh = ev["foot_plant"], ev["mer"], ev["ball_release"], ev["pkh"]
    T = len(s["time_s"])
    lo = pkh or 0
    hi = T if br is None else min(T, br + int(0.1 * fps) + 1)
    if hi <= lo:            # events out of order (analysed without the delivery check)
        lo, hi = 0, T
    win = slice(lo, hi)
    m = {}
    # stride: rear ankle at peak knee height (before the drive foot slides) → lead ankle at
    # foot plant, horizontal; ankle to ankle at foot plant reads shorter (docs/pitch_validation.md).
    if fp is not None:
        d = (r["lead_ankle"][fp] - r["rear_ankle"][pkh or 0])[:2]
        m["stride_length_pct_height"] = 100.0 * float(np.hypot(*d)) / height
        m["stride_angle"] = float(np.degrees(np.arctan2(-d[1], d[0])))   # + = cross-body
    else:
        m["stride_length_pct_height"] = m["stride_angle"] = None
    sep = s["hip_shoulder_separation"]
    m["max_hip_shoulder_separation"] = float(np.max(sep[win]))
    m["hip_shoulder_separation_fp"] = _at(sep, fp)
    m["max_shoulder_external_rotation"] = _at(s["shoulder_external_rotation"], mer)
    m["elbow_flexion_fp"] = _at(s["elbow_flexion"], fp)
    m["elbow_flexion_mer"] = _at(s["elbow_flexion"], mer)
    m["shoulder_abduction_fp"] = _at(s["shoulder_abduction"], fp)
    m["shoulder_horizontal_abduction_fp"] = _at(s["shoulder_horizontal_abduction"], fp)
    m["shoulder_external_rotation_fp"] = _at(s["shoulder_external_rotation"], fp)
    for tag, f in (("fp", fp), ("mer", mer), ("br", br)):
        m[f"torso_anterior_tilt_{tag}"] = _at(s["torso_anterior_tilt"], f)
        m[f"torso_lateral_tilt_{tag}"] = _at(s["torso_lateral_tilt"], f)
        m[f"torso_rotation_{tag}"] = _at(s["torso_rotation"], f)
    m["pelvis_rotation_fp"] = _at(s["pelvis_rotation"], fp)
    pw, tw = s["pelvis_angular_velocity"], s["torso_angular_velocity"]
    ip, it = lo + int(np.argmax(pw[win])), lo + int(np.argmax(tw[win]))
    m["max_pelvis_rotational_velo"] = float(pw[ip])
    m["max_torso_rotational_velo"] = float(tw[it])
    m["timing_peak_torso_to_peak_pelvis_rot_velo"] = (it - ip) / fps
    m["max_shoulder_internal_rotational_velo"] = float(np.max(s["shoulder_internal_rotation_velocity"][win]))
    m["max_elbow_extension_velo"] = float(np.max(s["elbow_extension_velocity"][win]))
    knee = s["lead_knee_flexion"]
    m["lead_knee_extension_from_fp_to_br"] = (None if fp is None or br is None
                                              else float(knee[fp] - knee[br]))
    m["lead_knee_extension_angular_velo_br"] = _at(s["lead_knee_extension_velocity"], br)
    if br is not None:
        # forearm (elbow → wrist) elevation above the horizontal plane at release
        fa = r["wrist"][br] - r["elbow"][br]
        m["arm_slot"] = float(np.degrees(np.arcsin(fa[2] / max(np.linalg.norm(fa), 1e-9))))
    else:
        m["arm_slot"] = None
    m["max_cog_velo_x"] = float(np.max(s["com_velocity_x"][win]))
    m["cog_velo_pkh"] = _at(s["com_velocity_x"], pkh)
    m["peak_hand_speed"] = float(np.max(s["hand_speed"][win]))
    return m
