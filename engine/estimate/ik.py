"""Analytic inverse kinematics from MediaPipe landmarks to SMPL-24 rotations.

MediaPipe's 33 landmarks become SMPL-24 target points (``smpl_targets_from_landmarks``); the
body model's rest skeleton is posed along them (``rotations_from_joint_positions``): the
pelvis, chest and head orientations come from weighted Kabsch fits of observed landmark
directions; each limb bone takes the smallest rotation that points it at its observed child,
with the upper arm/thigh twist set so the elbow/knee bends about its anatomical hinge. The chest
rotation relative to the pelvis is shared equally by spine1–3 (our choice; a real spine bends
over all three). The baseline estimator is this IK on the world landmarks; the temporal model
takes the same rotations as its prior input (``engine.estimate.network_inputs.ik_prior``).
"""
import numpy as np

from ..body.skeleton import JOINT_INDEX as J, NUM_JOINTS, PARENTS
from ..body.rotations import (fractional_rotation, frame_from_axes, minimal_rotation, normalize,
                              weighted_kabsch)
from ..observe import LM


def _mid(a, b):
    return 0.5 * (a + b)


def neck_fraction(rest):
    """Where the body's neck joint sits on the shoulder-midpoint → head line (0 = shoulders).

    SMPL-layout bodies put the neck joint well above the shoulder line (the open body ~10 cm);
    MediaPipe has no neck point, so the target is placed at the body's own proportion."""
    sh = 0.5 * (rest[J["left_shoulder"]] + rest[J["right_shoulder"]])
    axis = rest[J["head"]] - sh
    return float(np.clip(np.dot(rest[J["neck"]] - sh, axis) / max(np.dot(axis, axis), 1e-9), 0.0, 0.9))


def smpl_targets_from_landmarks(lm, vis, neck_at=0.0):
    """Map 33 landmarks (T,33,3) + visibility (T,33) to SMPL-24 target points and confidences.

    Pelvis = hip midpoint; neck on the shoulder-midpoint → ear-midpoint line at ``neck_at``
    (``neck_fraction`` of the body being fitted); spine joints on the pelvis→neck line;
    collars halfway from the shoulder midpoint to each shoulder; head = ear midpoint;
    hand = index/pinky midpoint; foot = foot_index. These are choices (MediaPipe has no spine,
    neck or collar points).
    """
    T = lm.shape[0]
    p = np.zeros((T, NUM_JOINTS, 3))
    c = np.zeros((T, NUM_JOINTS))
    pelvis = _mid(lm[:, LM["left_hip"]], lm[:, LM["right_hip"]])
    shoulders = _mid(lm[:, LM["left_shoulder"]], lm[:, LM["right_shoulder"]])
    neck = shoulders + neck_at * (_mid(lm[:, LM["left_ear"]], lm[:, LM["right_ear"]]) - shoulders)
    direct = {"left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee",
              "right_knee": "right_knee", "left_ankle": "left_ankle", "right_ankle": "right_ankle",
              "left_foot": "left_foot_index", "right_foot": "right_foot_index",
              "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
              "left_elbow": "left_elbow", "right_elbow": "right_elbow",
              "left_wrist": "left_wrist", "right_wrist": "right_wrist"}
    for smpl, mp in direct.items():
        p[:, J[smpl]] = lm[:, LM[mp]]
        c[:, J[smpl]] = vis[:, LM[mp]]
    hips_v = np.minimum(vis[:, LM["left_hip"]], vis[:, LM["right_hip"]])
    sh_v = np.minimum(vis[:, LM["left_shoulder"]], vis[:, LM["right_shoulder"]])
    p[:, J["pelvis"]], c[:, J["pelvis"]] = pelvis, hips_v
    for name, f in (("spine1", 0.25), ("spine2", 0.5), ("spine3", 0.75)):
        p[:, J[name]] = pelvis + f * (neck - pelvis)
        c[:, J[name]] = np.minimum(hips_v, sh_v)
    p[:, J["neck"]], c[:, J["neck"]] = neck, sh_v
    for side in ("left", "right"):
        p[:, J[f"{side}_collar"]] = _mid(shoulders, lm[:, LM[f"{side}_shoulder"]])
        c[:, J[f"{side}_collar"]] = sh_v
        p[:, J[f"{side}_hand"]] = _mid(lm[:, LM[f"{side}_index"]], lm[:, LM[f"{side}_pinky"]])
        c[:, J[f"{side}_hand"]] = np.minimum(vis[:, LM[f"{side}_index"]], vis[:, LM[f"{side}_pinky"]])
    p[:, J["head"]] = _mid(lm[:, LM["left_ear"]], lm[:, LM["right_ear"]])
    c[:, J["head"]] = np.minimum(vis[:, LM["left_ear"]], vis[:, LM["right_ear"]])
    return p, c


def _limb_rotation(G_parent, rest, tgt, j, child, grandchild, bend_dir):
    """Global rotation of a hinge limb's upper bone (shoulder or hip).

    Aligns the bone with its observation; the twist puts the observed bend plane on the rest
    hinge (hinge = bone × bend_dir in the canonical frame), weighted by how bent the limb is,
    with the parent frame's twist as the fallback for a straight limb. Assumes the rest pose's
    upper and lower limb are nearly collinear (true of T-poses); a bent rest limb biases the twist.
    """
    a_bone = normalize(rest[child] - rest[j])
    b_bone = normalize(tgt[:, child] - tgt[:, j])
    b_low = normalize(tgt[:, grandchild] - tgt[:, child])
    hinge_rest = normalize(np.cross(a_bone, bend_dir))
    cross = np.cross(b_bone, b_low)
    bend = np.linalg.norm(cross, axis=-1)           # sin of the bend angle
    hinge_obs = normalize(cross)
    fallback = np.einsum("tij,j->ti", G_parent, hinge_rest)  # parent's idea of the hinge
    s_bend = np.clip(bend * 4, 0, 1)[:, None]          # trust the bend plane from ~15° on
    hinge_tgt = normalize(s_bend * hinge_obs + (1 - s_bend) * fallback)
    a = np.stack([np.broadcast_to(a_bone, b_bone.shape), np.broadcast_to(hinge_rest, b_bone.shape)], axis=1)
    b = np.stack([b_bone, hinge_tgt], axis=1)
    w = np.stack([np.full_like(bend, 4.0), np.ones_like(bend)], axis=1)
    G = weighted_kabsch(a, b, w)
    # The fit trades the bone's direction against the twist cues; point the bone exactly.
    return minimal_rotation(np.einsum("tij,j->ti", G, a_bone), b_bone) @ G


def rotations_from_joint_positions(tgt, rest, head_frame=None):
    """Local rotations (T,24,3,3) posing ``rest`` (24,3) joints along target points (T,24,3).

    ``tgt`` is in the world frame; the root rotation maps the canonical body frame into it.
    ``head_frame`` (T,3,3), the head's global orientation when known (from the face).
    """
    T = tgt.shape[0]
    G = np.tile(np.eye(3), (T, NUM_JOINTS, 1, 1))
    fwd = np.array([0.0, 0.0, 1.0])

    def kabsch_to(j, kids):
        a = np.stack([normalize(rest[k] - rest[j]) for k in kids])[None].repeat(T, 0)
        b = np.stack([normalize(tgt[:, k] - tgt[:, j]) for k in kids], axis=1)
        return weighted_kabsch(a, b, np.ones((T, len(kids))))

    def aim(j, child):
        a = np.einsum("tij,j->ti", G[:, PARENTS[j]], rest[child] - rest[j])
        return minimal_rotation(a, tgt[:, child] - tgt[:, j]) @ G[:, PARENTS[j]]

    G[:, J["pelvis"]] = kabsch_to(J["pelvis"], [J["left_hip"], J["right_hip"], J["neck"]])
    chest = kabsch_to(J["spine3"], [J["left_shoulder"], J["right_shoulder"], J["neck"]])
    rel = np.swapaxes(G[:, 0], -1, -2) @ chest
    G[:, J["spine1"]] = G[:, 0] @ fractional_rotation(rel, 1.0 / 3.0)
    G[:, J["spine2"]] = G[:, 0] @ fractional_rotation(rel, 2.0 / 3.0)
    G[:, J["spine3"]] = chest
    G[:, J["neck"]] = aim(J["neck"], J["head"])
    G[:, J["head"]] = G[:, J["neck"]] if head_frame is None else head_frame
    for side in ("left", "right"):
        sj = lambda n: J[f"{side}_{n}"]  # noqa: E731
        G[:, sj("collar")] = aim(sj("collar"), sj("shoulder"))
        G[:, sj("shoulder")] = _limb_rotation(G[:, sj("collar")], rest, tgt, sj("shoulder"),
                                              sj("elbow"), sj("wrist"), fwd)
        G[:, sj("elbow")] = aim(sj("elbow"), sj("wrist"))
        G[:, sj("wrist")] = aim(sj("wrist"), sj("hand"))
        G[:, sj("hand")] = G[:, sj("wrist")]
        G[:, sj("hip")] = _limb_rotation(G[:, 0], rest, tgt, sj("hip"), sj("knee"), sj("ankle"), -fwd)
        G[:, sj("knee")] = aim(sj("knee"), sj("ankle"))
        G[:, sj("ankle")] = aim(sj("ankle"), sj("foot"))
        G[:, sj("foot")] = G[:, sj("ankle")]
    local = G.copy()
    local[:, 1:] = np.swapaxes(G[:, PARENTS[1:]], -1, -2) @ G[:, 1:]
    return local


def head_rotation(lm):
    """Global head rotation from the face: ears give left, nose gives forward (T,3,3)."""
    left = lm[:, LM["left_ear"]] - lm[:, LM["right_ear"]]
    ear_mid = _mid(lm[:, LM["left_ear"]], lm[:, LM["right_ear"]])
    fwd = lm[:, LM["nose"]] - ear_mid
    # canonical: x left, z forward → y = z × x
    frame = frame_from_axes(left, np.cross(fwd, left))
    return frame


def landmark_rotations(lm, vis, rest):
    """Local rotations (T,24,3,3) and per-joint confidences (T,24) of world landmarks (T,33,3)
    (Z-up world axes) with visibility (T,33), posing ``rest`` (24,3): targets at the body's
    own neck proportion, the head turned by the face."""
    tgt, conf = smpl_targets_from_landmarks(lm, vis, neck_fraction(rest))
    return rotations_from_joint_positions(tgt, rest, head_rotation(lm)), conf


def visibility_sigma(conf):
    """Per-joint σ (metres) from detection confidence in [0,1] for estimators without a learned
    σ: 3 cm when fully seen up to 18 cm when unseen (a heuristic)."""
    return 0.03 + 0.15 * (1.0 - np.clip(conf, 0, 1))
