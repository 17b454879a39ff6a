"""The named joint-centre set the pitch analysis works on, and adapters that build it.

The analysis never sees SMPL indices or marker names: it reads a :class:`JointSet`, a dict of
``name -> (T,3)`` world positions (Z up, metres) in *body-side* terms (left/right). Which side
throws, which leg strides, and where home plate is are decided later by the analysis.

Points (``REQUIRED`` must be present; the others are used when present):

=============  =====================================  =========================================
point          from SMPL-24 (``from_motion``)          from OBP landmarks (``from_obp_landmarks``)
=============  =====================================  =========================================
left/right_hip      left_hip / right_hip (hip centres)     lead_hip / rear_hip (RHP: lead = left)
left/right_knee     left_knee / right_knee                 lead_knee_jc / rear_knee_jc
left/right_ankle    left_ankle / right_ankle               lead_ankle_jc / rear_ankle_jc
left/right_shoulder left_shoulder / right_shoulder (GH)    glove_shoulder_jc / shoulder_jc
left/right_elbow    left_elbow / right_elbow               glove_elbow_jc / elbow_jc
left/right_wrist    left_wrist / right_wrist               glove_wrist_jc / wrist_jc
left/right_hand     left_hand / right_hand                 glove_hand_jc / hand_jc
thorax_prox         neck (base of the neck)                thorax_prox (upper thorax)
thorax_dist         spine2 (mid/lower thorax)              thorax_dist (about 27 cm lower)
thorax_right        neck + 0.10 m toward right_collar      thorax_ap (OBP's lateral thorax point;
                    (collar line: SMPL has no sternum/     it lies ~10 cm to the throwing side of
                    C7 point, so the clavicles fix the     thorax_prox; mirrored through
                    thorax's rotation about its axis)      thorax_prox for a left-hander)
head                head                                   (none; not needed by any metric)
left/right_toe      left_foot / right_foot (toe base)      (none; OBP has no toe point)
com                 (none; estimated from segments)        centerofmass (kept for reference only)
=============  =====================================  =========================================

The analysis uses only joint centres that SMPL-24 also has, so OBP's own landmarks can validate
the definitions (Validation 1) and the same code runs on video-derived motion.
"""
import csv
from dataclasses import dataclass, field

import numpy as np

SIDE_POINTS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist", "hand")
REQUIRED = tuple(f"{s}_{p}" for p in SIDE_POINTS for s in ("left", "right")) + (
    "thorax_prox", "thorax_dist", "thorax_right")
OPTIONAL = ("head", "left_toe", "right_toe", "com")

# SMPL-24 joint name for each analysis point (thorax_right is synthesised, see from_motion).
SMPL_MAP = {f"{s}_{p}": f"{s}_{p}" for p in SIDE_POINTS for s in ("left", "right")}
SMPL_MAP.update({"thorax_prox": "neck", "thorax_dist": "spine2", "head": "head",
                 "left_toe": "left_foot", "right_toe": "right_foot"})
THORAX_LATERAL_OFFSET = 0.10   # metres, like OBP's thorax_ap point

# OBP landmark prefix for each analysis point of a right-handed pitcher (throwing side = right).
OBP_MAP_RHP = {
    "right_hip": "rear_hip", "left_hip": "lead_hip",
    "right_knee": "rear_knee_jc", "left_knee": "lead_knee_jc",
    "right_ankle": "rear_ankle_jc", "left_ankle": "lead_ankle_jc",
    "right_shoulder": "shoulder_jc", "left_shoulder": "glove_shoulder_jc",
    "right_elbow": "elbow_jc", "left_elbow": "glove_elbow_jc",
    "right_wrist": "wrist_jc", "left_wrist": "glove_wrist_jc",
    "right_hand": "hand_jc", "left_hand": "glove_hand_jc",
    "thorax_prox": "thorax_prox", "thorax_dist": "thorax_dist", "com": "centerofmass",
}


@dataclass
class JointSet:
    """Named joint centres ``points[name] -> (T,3)`` (Z up, metres) sampled at ``fps``.

    ``valid`` marks frames where the subject was seen (NaN elsewhere); ``t0`` is the time of
    frame 0 in seconds; ``height`` is the body height in metres when known (stride length is
    reported as a fraction of it).
    """
    points: dict
    fps: float
    valid: np.ndarray = None
    t0: float = 0.0
    height: float | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.points = {k: np.asarray(v, dtype=np.float64) for k, v in self.points.items()}
        missing = [n for n in REQUIRED if n not in self.points]
        if missing:
            raise ValueError(f"joint set lacks {', '.join(missing)}")
        T = self.num_frames
        if self.valid is None:
            self.valid = np.all([np.isfinite(self.points[n]).all(1) for n in REQUIRED], axis=0)
        self.valid = np.asarray(self.valid, dtype=bool).reshape(T)

    @property
    def num_frames(self):
        return int(self.points["thorax_prox"].shape[0])

    def __getitem__(self, name):
        return self.points[name]


def from_smpl_joints(joints, fps, valid=None, height=None, source="", meta=None):
    """SMPL-24 joints (T,24,3) → a :class:`JointSet` (see the table above)."""
    from ..body.skeleton import JOINT_INDEX
    J = np.asarray(joints, dtype=np.float64)
    pts = {name: J[:, JOINT_INDEX[smpl]] for name, smpl in SMPL_MAP.items()}
    lateral = J[:, JOINT_INDEX["right_collar"]] - J[:, JOINT_INDEX["left_collar"]]
    lateral /= np.maximum(np.linalg.norm(lateral, axis=1, keepdims=True), 1e-9)
    pts["thorax_right"] = pts["thorax_prox"] + THORAX_LATERAL_OFFSET * lateral
    return JointSet(pts, float(fps), valid=None if valid is None else np.asarray(valid, bool),
                    height=height, source=str(source), meta=dict(meta or {}))


def from_motion(motion, height=None):
    """SMPL-24 ``Motion.joints`` (T,24,3) → a :class:`JointSet` (see the table above)."""
    src = motion.source.get("video", "") if isinstance(motion.source, dict) else ""
    meta = {"body_model": motion.body_model}
    az = camera_azimuth(getattr(motion, "camera_extrinsics", None))
    if az is not None:
        meta["camera_azimuth_deg"] = az
    return from_smpl_joints(motion.joints, motion.fps, motion.valid, height, src, meta)


def camera_azimuth(extrinsics):
    """Azimuth (degrees, from world +x toward +y) of the camera's horizontal viewing direction
    (median over frames), or None. For a center-field broadcast view this is the direction of
    home plate (``analyze(home_azimuth_deg="camera")``)."""
    if extrinsics is None:
        return None
    E = np.asarray(extrinsics, dtype=np.float64).reshape(-1, 4, 4)
    E = E[np.isfinite(E).all(axis=(1, 2))]
    if not len(E):
        return None
    axis = E[:, 2, :3]                        # optical axis in world = row 3 of R (world→camera)
    d = np.median(axis[:, :2], axis=0)
    if np.hypot(*d) < 1e-6:                   # looking straight down: no horizontal direction
        return None
    return float(np.degrees(np.arctan2(d[1], d[0])))


def read_obp_csv(path):
    """Rows of an OBP full-signal CSV grouped by ``session_pitch`` (ordered by time)."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["session_pitch"], []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: float(r["time"]))
    return out


def from_obp_landmarks(rows, throws="R", height=None):
    """OBP ``landmarks`` rows of one pitch → a :class:`JointSet` (tests/validation only).

    OBP names points by role (throwing arm, lead leg); ``throws`` says which body side that is.
    The lab frame (+x toward home, +y toward first base, +z up) is kept as the world frame.
    """
    def col(prefix):
        return np.array([[float(r[f"{prefix}_{a}"]) for a in "xyz"] for r in rows])

    mirror = {"left": "right", "right": "left"}
    pts = {}
    for name, prefix in OBP_MAP_RHP.items():
        if f"{prefix}_x" not in rows[0]:
            continue
        side = name.split("_", 1)[0]
        if throws.upper() == "L" and side in mirror:
            name = mirror[side] + name[len(side):]
        pts[name] = col(prefix)
    ap = col("thorax_ap")
    # thorax_ap sits on the throwing side of thorax_prox: mirror it for a left-hander.
    pts["thorax_right"] = ap if throws.upper() == "R" else 2 * pts["thorax_prox"] - ap
    t = np.array([float(r["time"]) for r in rows])
    fps = (len(t) - 1) / float(t[-1] - t[0])   # times are rounded to 0.1 ms: use the span
    return JointSet(pts, fps, t0=float(t[0]), height=height, source=rows[0]["session_pitch"],
                    meta={"obp_events": {k: float(rows[0][k]) for k in rows[0] if k.endswith("_time")}})
