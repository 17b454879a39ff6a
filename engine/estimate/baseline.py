"""The walking-skeleton estimator: SMPL-24 rotations fitted to MediaPipe's world landmarks.

No learned weights of ours. Per frame, analytic inverse kinematics on the body model's rest
skeleton: the pelvis, chest and head orientations come from weighted Kabsch fits of observed
landmark directions; each limb bone takes the smallest rotation that points it at its observed
child, with the upper arm/thigh twist set so the elbow/knee bends about its anatomical hinge.
The chest rotation relative to the pelvis is shared equally by spine1–3 (our choice; a real
spine bends over all three). It is the baseline every learned model must beat.
"""
import numpy as np

from ..body.skeleton import JOINT_INDEX as J, NUM_JOINTS, PARENTS
from ..body.rotations import (fractional_rotation, frame_from_axes, minimal_rotation, normalize,
                       weighted_kabsch)
from ..observe import LM

# MediaPipe world / camera axes (x right, y down, z away) → Z-up world (x right, y away, z up).
CAMERA_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


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


def contacts_from_joints(joints, fps, height=0.08, speed=0.5):
    """(T,4) foot contacts: left heel(ankle), left toe, right heel, right toe.

    A point is in contact while within ``height`` m of the floor (z=0) and slower than
    ``speed`` m/s. Simple thresholds; the clean-motion stage refines them.
    """
    idx = [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]]
    p = joints[:, idx]
    v = np.zeros(p.shape[:2])
    if len(p) > 1:
        v[1:] = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
        v[0] = v[1]
    floor_offset = np.array([0.1, 0.05, 0.1, 0.05])  # ankles sit ~0.1 m above the sole
    return np.nan_to_num((p[..., 2] - floor_offset < height) & (v < speed), nan=False).astype(bool)


def camera_model(obs, focal=None, compensate=True):
    """The camera: intrinsics K (3,3) of the first frame, per-frame world→camera rotations
    (T,3,3) and focal lengths (T,).

    Perspective with the focal length given (metadata, ``--focal``) or the default of
    ``default_intrinsics``. The first frame's camera is level (its axes are the world's,
    ``CAMERA_TO_WORLD``); with ``compensate`` and ``obs.homographies`` (background motion,
    ``engine.observe.camera_motion``) the camera then pans/tilts/rolls/zooms as they say, so a panning
    camera becomes a rotating camera in ``camera_extrinsics`` instead of the body sliding
    across the world. Without homographies the camera is static."""
    from .camera import default_intrinsics
    from ..observe.camera_motion import camera_rotations
    w, h = obs.frame_size
    K = default_intrinsics(w, h, focal)
    T = obs.num_frames
    R0 = CAMERA_TO_WORLD.T
    H = getattr(obs, "homographies", None)
    if compensate and H is not None and len(H) == T:
        R, f = camera_rotations(H, K, R0)
    else:
        R, f = np.repeat(R0[None], T, 0), np.full(T, K[0, 0])
    return K, R, f


def fit(obs, body, betas=None, focal=None, min_visibility=0.5, compensate_camera=True):
    """Fit SMPL-24 rotations and root translation to Observations → dict of Motion fields.

    Root translation comes from the camera model (``camera_model``): the hip midpoint's
    camera-frame position from 2D–3D least squares with each frame's focal length, carried
    into the world by that frame's camera rotation."""
    from ..body.kinematics import forward_kinematics, matrix_to_axis_angle
    from .camera import solve_translation

    T = obs.num_frames
    valid = obs.valid.copy()
    betas = np.zeros(10) if betas is None else np.asarray(betas, np.float64)
    rest = body.rest_joints(betas)
    K, Rcam, focals = camera_model(obs, focal, compensate_camera)

    poses = np.full((T, 72), np.nan)
    trans = np.full((T, 3), np.nan)
    joints = np.full((T, NUM_JOINTS, 3), np.nan)
    sigma = np.full((T, NUM_JOINTS), np.nan)
    idx = np.flatnonzero(valid)
    if len(idx):
        lm_cam = obs.world[idx].astype(np.float64)
        vis = obs.keypoints[idx, :, 2].astype(np.float64)
        Rw = Rcam[idx]                               # world → camera per frame
        lm = np.einsum("tnj,tjk->tnk", lm_cam, Rw)   # camera → world: Rᵀ·x
        tgt, conf = smpl_targets_from_landmarks(lm, vis, neck_fraction(rest))
        local = rotations_from_joint_positions(tgt, rest, head_rotation(lm))
        poses[idx] = matrix_to_axis_angle(local).reshape(-1, 72)
        # Hip midpoint in camera coordinates from the 2D keypoints (MediaPipe's world origin).
        wts = np.where(vis > min_visibility, vis, 0.0)
        t_cam = np.zeros((len(idx), 3))
        kp = obs.keypoints[idx, :, :2].astype(np.float64)
        for fval in np.unique(focals[idx]):          # one solve per distinct focal (zoom)
            sel = focals[idx] == fval
            Kf = K.copy(); Kf[0, 0] = Kf[1, 1] = fval
            t_cam[sel] = solve_translation(lm_cam[sel], kp[sel], wts[sel], Kf)
        hip_mid_world = np.einsum("tj,tjk->tk", t_cam, Rw)
        rel = forward_kinematics(local, rest)
        fitted_hip_mid = 0.5 * (rel[:, J["left_hip"]] + rel[:, J["right_hip"]])
        trans[idx] = hip_mid_world - fitted_hip_mid
        joints[idx] = rel + trans[idx, None, :]
        sigma[idx] = 0.03 + 0.15 * (1.0 - np.clip(conf, 0, 1))  # heuristic: visibility → metres
    # Floor: put the lowest feet (5th percentile over the clip) at z = 0; the camera stays level.
    feet = joints[:, [J["left_foot"], J["right_foot"], J["left_ankle"], J["right_ankle"]], 2]
    z0 = float(np.percentile(feet[idx].min(axis=1), 5)) if len(idx) else 0.0
    trans[:, 2] -= z0
    joints[..., 2] -= z0
    ext = np.tile(np.eye(4), (T, 1, 1))
    ext[:, :3, :3] = Rcam
    ext[:, :3, 3] = Rcam @ np.array([0.0, 0.0, z0])  # the camera centre sits z0 above the floor
    return dict(poses=poses, trans=trans, betas=betas, joints=joints, joint_sigma=sigma,
                valid=valid, contacts=contacts_from_joints(joints, obs.fps),
                camera_intrinsics=K, camera_extrinsics=ext)
