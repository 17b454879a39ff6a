"""Synthetic observations of a motion clip through random cameras (numpy only).

``synthesize(clip, body, rng)`` turns an SMPL motion window into what the front end gives on
real video (``engine.observe.Observations`` fields) plus the ground truth:

- cameras (``sample_camera``): ``handheld`` (phone, 3–10 m, 1.2–1.8 m high, 24–60 mm-equivalent,
  follows the subject with lag and shake, landscape or portrait), ``tripod`` (4–15 m, 0.8–1.7 m,
  26–135 mm-eq., static or panning, slow zoom), ``broadcast`` (center-field pitching view:
  90–125 m away, 8–20 m high, telephoto framing the subject at 35–70 % of the frame height,
  panning and zooming) and ``broadcast_side`` (30–50 m, 5–10 m high). Camera axes are
  OpenCV's (x right, y down, z forward); world is Z up, metres.
- 2D keypoints in MediaPipe's 33-landmark layout (``engine.body.landmarks``), with the
  detector noise model (``training.data.noise``: noise, outliers, swaps, visibility, dropout);
- world landmarks (hip-centred, camera-aligned, with depth error), as MediaPipe's;
- a full-frame person mask (longer side 160, as ``observe`` keeps it) and a 64×64 crop of the
  silhouette and depth (metres relative to the pelvis depth, 0 = background) around the
  detected keypoints' box, by a point-splat z-buffer over vertices and face centroids;
- the 135-d camera-motion feature: exact frame-to-frame homographies of the rotating/zooming
  camera, H_t = K_t R_t R_{t-1}ᵀ K_{t-1}⁻¹ (background at infinity), through
  ``engine.observe.camera_motion.homography_feature``.

``mirror_motion`` gives the mirror (left/right-handed) variant of a motion; ``change_speed``,
``arm_angle_motion`` and ``augment_motion`` the speed and arm-slot variants (throwing data is
scarce: two baseball pitches); ``perturb_pose`` the joint-angle variant. World-landmark noise is AR(1) in time (``noise.py``).
"""
import numpy as np

from engine.body import kinematics as K
from engine.body.skeleton import MIRROR as JMIRROR, NUM_JOINTS
from engine.observe import LM, NUM_LANDMARKS, Observations, mask_size

from engine.body.landmarks import MIRROR as LMIRROR, landmark_spec, landmarks_from_body, spec_matrix
from training.data.noise import load_noise_model, world_noise_sigma

CAMERA_TYPES = ("handheld", "tripod", "broadcast", "broadcast_side")
CROP = 64
REFLECT = np.diag([-1.0, 1.0, 1.0])   # x ↦ −x: canonical (left ↔ right) and world


# ---------------------------------------------------------------- motion helpers
def mirror_motion(poses, trans, body, betas=None):
    """Mirror image of a motion (a right-handed pitch becomes left-handed): joints swap sides
    and the world is reflected in the x = 0 plane. Returns (poses, trans)."""
    T = len(poses)
    rv = poses.reshape(T, NUM_JOINTS, 3)[:, JMIRROR].copy()
    rv[..., 1:] *= -1.0                      # R ↦ M R M for M = diag(−1, 1, 1)
    rest = body.rest_joints(betas)
    # pelvis' = M (rest0 + t) must equal rest0' + t' with rest0' = rest0 (mirrored body ≈ body)
    trans_m = (REFLECT @ (rest[0] + trans).T).T - rest[0]
    return rv.reshape(T, -1), trans_m


def change_speed(poses, trans, speed, fps=30.0):
    """The motion played ``speed`` times faster, resampled at ``fps`` (rotations slerped, trans
    interpolated): speed 1.25 → 0.8× as many frames. Keep it within ±25 %: flight phases of
    jumps stop obeying gravity beyond that. Returns (poses, trans)."""
    from training.data.bvh_to_smpl import resample_rotations
    if speed == 1.0:
        return np.asarray(poses), np.asarray(trans)
    return resample_rotations(np.asarray(poses, np.float64), np.asarray(trans, np.float64), fps * speed, fps)


_FORWARD_ROT = {"left": 1.0, "right": -1.0}   # +angle raises the arm (canonical: left arm along +X)


def arm_angle_motion(poses, angle_deg, side="right"):
    """Change one arm's slot: the whole arm (shoulder down) turns by ``angle_deg`` about the
    chest's forward axis at the shoulder joint, in every frame (+ raises the arm: more overhand;
    − lowers it: towards sidearm). Only the shoulder's local rotation changes:
    L_sh' = L_colᵀ·Rz(±angle)·L_col·L_sh (Rz about the canonical forward axis +Z)."""
    from engine.body.skeleton import JOINT_INDEX
    poses = np.array(poses, np.float64)
    if angle_deg == 0:
        return poses
    T = len(poses)
    rv = poses.reshape(T, NUM_JOINTS, 3)
    col, sh = JOINT_INDEX[f"{side}_collar"], JOINT_INDEX[f"{side}_shoulder"]
    a = np.radians(angle_deg) * _FORWARD_ROT[side]
    Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    Lc = K.axis_angle_to_matrix(rv[:, col])
    Ls = K.axis_angle_to_matrix(rv[:, sh])
    rv[:, sh] = K.matrix_to_axis_angle(np.swapaxes(Lc, -1, -2) @ Rz @ Lc @ Ls)
    return rv.reshape(T, -1)


# joint name → (kind, sd in degrees) of ``perturb_pose``: ball joints get a random rotation
# offset, hinges (knees, elbows) a scaled flexion. Magnitudes are our choice: about the spread
# between CMU's everyday poses and a pitcher's leg lift / stride / layback.
POSE_PERTURBATION = {"left_hip": ("ball", 15.0), "right_hip": ("ball", 15.0),
                     "spine1": ("ball", 5.0), "spine2": ("ball", 5.0), "spine3": ("ball", 5.0),
                     "left_collar": ("ball", 5.0), "right_collar": ("ball", 5.0),
                     "left_shoulder": ("ball", 20.0), "right_shoulder": ("ball", 20.0),
                     "left_knee": ("hinge", 0.2), "right_knee": ("hinge", 0.2),
                     "left_elbow": ("hinge", 0.2), "right_elbow": ("hinge", 0.2)}


def perturb_pose(poses, rng, scale=1.0, spec=None):
    """Joint-angle augmentation: the motion with each listed joint's local rotation changed,
    so a model cannot lean on CMU's pose statistics where the observation says otherwise.

    Ball joints: L' = R(t)·L with R an axis-angle offset drawn per sequence, ~N(0, sd²) per
    axis, plus a linear drift of the same size over the sequence (the offset itself moves).
    Hinges (``sd`` = relative spread): the flexion angle scaled by exp(N(0, sd²)) about its own
    axis, so knees and elbows stay hinges. ``scale`` multiplies every spread. Returns poses
    (T,72)."""
    from engine.body.skeleton import JOINT_INDEX
    poses = np.array(poses, np.float64)
    T = len(poses)
    rv = poses.reshape(T, NUM_JOINTS, 3)
    ramp = (np.arange(T) / max(T - 1, 1) - 0.5)[:, None]
    for name, (kind, sd) in (spec or POSE_PERTURBATION).items():
        j = JOINT_INDEX[name]
        if kind == "hinge":
            rv[:, j] *= float(np.exp(rng.normal(0.0, sd * scale)))
            continue
        a, b = rng.normal(0.0, np.radians(sd * scale), (2, 3))
        R = K.axis_angle_to_matrix(a[None] + ramp * b[None])
        rv[:, j] = K.matrix_to_axis_angle(R @ K.axis_angle_to_matrix(rv[:, j]))
    return rv.reshape(T, -1)


def augment_motion(poses, trans, rng, fps=30.0, speed_range=(0.8, 1.25), arm_angle_sd=10.0,
                   arm_angle_max=25.0):
    """Speed and arm-angle augmentation (for scarce throwing data): a speed factor drawn
    log-uniformly in ``speed_range`` and an arm-slot change per arm ~ N(0, ``arm_angle_sd``°),
    clipped at ±``arm_angle_max``. Returns (poses, trans, dict(speed, arm_angles (left, right)))."""
    lo, hi = speed_range
    speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)
    angles = tuple(float(x) for x in np.clip(rng.normal(0, arm_angle_sd, 2), -arm_angle_max, arm_angle_max))
    poses, trans = change_speed(poses, trans, speed, fps)
    for side, ang in zip(("left", "right"), angles):
        poses = arm_angle_motion(poses, ang, side)
    return poses, trans, dict(speed=speed, arm_angles=angles)


class Poser:
    """Fast batched posing of one body (float32 LBS via a matrix product)."""

    def __init__(self, body, betas=None, convention=None):
        self.body = body
        self.betas = np.zeros(10) if betas is None else np.asarray(betas)
        self.v = body.shaped_vertices(self.betas).astype(np.float32)
        self.rest = (body.J_regressor @ body.shaped_vertices(self.betas)).astype(np.float64)
        self.W = body.weights.astype(np.float32)
        self.M = spec_matrix(landmark_spec(body, self.betas, convention), len(self.v))
        f = body.faces
        # joints lie inside the body: a landmark is occluded when it is this far behind the
        # rendered surface at its pixel (a joint 15 cm, a surface point 5 cm, a mix by its joint share)
        self.occ_margin = 0.05 + 0.10 * np.clip(self.M[:, len(self.v):].sum(1), 0.0, 1.0)
        self.faces = f
        self.posedirs = body.posedirs

    def __call__(self, poses, trans):
        T = len(poses)
        rot = K.axis_angle_to_matrix(poses.reshape(T, NUM_JOINTS, 3))
        g = K.global_transforms(rot, self.rest, self.body.parents)
        joints = g[..., :3, 3] + trans[:, None]
        a = K.skinning_transforms(g, self.rest)[..., :3, :].astype(np.float32)   # (T,J,3,4)
        m = (self.W @ a.transpose(1, 0, 2, 3).reshape(NUM_JOINTS, -1)).reshape(len(self.v), T, 3, 4)
        v = self.v
        if self.posedirs is not None:
            v = v[None] + np.einsum("tp,vcp->tvc", K.pose_feature(rot), self.posedirs).astype(np.float32)
            verts = np.einsum("vtab,tvb->tva", m[..., :3], v) + m[..., 3].transpose(1, 0, 2)
        else:
            verts = (m[..., :3] @ v[:, None, :, None])[..., 0].transpose(1, 0, 2) + m[..., 3].transpose(1, 0, 2)
        verts = verts + trans[:, None].astype(np.float32)
        lm = landmarks_from_body(verts, joints.astype(np.float32), self.M)
        return verts, joints, lm


# ---------------------------------------------------------------- cameras
def look_at(c, target, roll=0.0):
    """World→camera rotation (OpenCV axes) looking from c at target, world Z up."""
    z = target - c
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=-2)
    if np.any(roll):
        cr, sr = np.cos(roll), np.sin(roll)
        Rz = np.zeros(np.shape(roll) + (3, 3))
        Rz[..., 0, 0], Rz[..., 0, 1], Rz[..., 1, 0], Rz[..., 1, 1], Rz[..., 2, 2] = cr, -sr, sr, cr, 1
        R = Rz @ R
    return R


def _smooth_follow(p, lag):
    """Exponential follow of a trajectory (T,3): the operator's lagging aim."""
    out = p.copy()
    a = 1.0 / max(lag, 1.0)
    for t in range(1, len(p)):
        out[t] = out[t - 1] + a * (p[t] - out[t - 1])
    return out


def sample_camera(rng, pelvis, kind=None, facing=None, height_m=1.7):
    """Per-frame intrinsics (T,3,3), world→camera extrinsics (T,4,4), frame size, kind.

    ``pelvis`` (T,3) world trajectory of the subject; ``facing``: optional azimuth (rad) of the
    direction the camera should look along (broadcast: from center field toward home)."""
    T = len(pelvis)
    kind = kind or rng.choice(CAMERA_TYPES, p=[0.35, 0.35, 0.2, 0.1])
    portrait = kind == "handheld" and rng.random() < 0.3
    w, h = ((1080, 1920) if portrait else (1920, 1080)) if rng.random() < 0.7 else \
        ((720, 1280) if portrait else (1280, 720))
    long_side = max(w, h)
    centre = pelvis.mean(0)
    az = rng.uniform(0, 2 * np.pi) if facing is None else facing + np.pi + rng.normal(0, np.radians(6))
    follow, zoom, shake, roll_sd = True, 0.0, 0.0, 0.0
    if kind == "handheld":
        dist, cam_h = rng.uniform(3, 10), rng.uniform(1.2, 1.8)
        f0 = rng.uniform(24, 60) / 36 * long_side
        shake, roll_sd, lag = np.radians(0.25), np.radians(1.5), rng.uniform(2, 6)
    elif kind == "tripod":
        dist, cam_h = rng.uniform(4, 15), rng.uniform(0.8, 1.7)
        f0 = rng.uniform(26, 135) / 36 * long_side
        follow, lag = rng.random() < 0.5, rng.uniform(3, 8)
        zoom = rng.uniform(-0.15, 0.15) if rng.random() < 0.3 else 0.0
    else:
        if kind == "broadcast":
            dist, cam_h = rng.uniform(90, 125), rng.uniform(8, 20)
        else:
            dist, cam_h = rng.uniform(30, 50), rng.uniform(5, 10)
            az += np.pi / 2 * rng.choice([-1, 1])
        f0 = rng.uniform(0.35, 0.7) * h * dist / height_m
        lag = rng.uniform(2, 5)
        zoom = rng.uniform(-0.2, 0.2) if rng.random() < 0.5 else 0.0
    # operators frame the whole body: the focal never crops the subject at its distance
    f0 = min(f0, 0.8 * h * dist / height_m)
    horiz = np.sqrt(max(dist ** 2 - (cam_h - centre[2]) ** 2, 1.0))
    c = np.array([centre[0] + horiz * np.cos(az), centre[1] + horiz * np.sin(az), cam_h])
    # keep the tripod subject in view when it is static: fit the focal to the motion's extent
    aim = _smooth_follow(pelvis, lag) if follow else np.repeat(centre[None], T, 0)
    if not follow:
        spread = np.linalg.norm(pelvis - centre, axis=1).max() + 1.0
        f0 = min(f0, 0.45 * min(w, h) * dist / spread)
    C = np.repeat(c[None], T, 0)
    if kind == "handheld":  # the operator sways a little
        C = C + np.cumsum(rng.normal(0, 0.003, (T, 3)), 0)
    roll = rng.normal(0, roll_sd) + np.zeros(T)
    R = look_at(C, aim, roll)
    if shake:
        from scipy.spatial.transform import Rotation
        jit = np.cumsum(rng.normal(0, shake, (T, 3)), 0) * 0.5
        R = Rotation.from_rotvec(jit).as_matrix() @ R
    f = f0 * np.exp(np.linspace(0, zoom, T))
    Ks = np.zeros((T, 3, 3))
    Ks[:, 0, 0] = Ks[:, 1, 1] = f
    Ks[:, 0, 2], Ks[:, 1, 2], Ks[:, 2, 2] = w / 2, h / 2, 1
    E = np.zeros((T, 4, 4))
    E[:, :3, :3] = R
    E[:, :3, 3] = -np.einsum("tij,tj->ti", R, C)
    E[:, 3, 3] = 1
    return Ks, E, (w, h), str(kind)


def homographies(Ks, E):
    """Frame-to-frame homographies (T,3,3) of a rotating/zooming camera; H[0] = I."""
    R = E[:, :3, :3]
    H = np.tile(np.eye(3), (len(Ks), 1, 1))
    H[1:] = Ks[1:] @ R[1:] @ np.swapaxes(R[:-1], -1, -2) @ np.linalg.inv(Ks[:-1])
    return H / H[:, 2:3, 2:3]


def camera_motion_feature(H, frame_size):
    try:
        from engine.observe.camera_motion import homography_feature
    except ImportError:  # pragma: no cover - the module is part of the engine now
        raise
    return homography_feature(H, frame_size)


# ---------------------------------------------------------------- rendering
def splat(points_cam, K_, box, size, radius=1):
    """Z-buffer point splat: camera-frame points (N,3) → depth (size_y,size_x), inf = empty.

    ``box`` = (x0, y0, x1, y1) image region mapped onto the ``size`` (sx, sy) raster."""
    sx, sy = size
    z = points_cam[:, 2]
    ok = z > 1e-3
    u = K_[0, 0] * points_cam[ok, 0] / z[ok] + K_[0, 2]
    v = K_[1, 1] * points_cam[ok, 1] / z[ok] + K_[1, 2]
    x0, y0, x1, y1 = box
    px = ((u - x0) / max(x1 - x0, 1e-6) * sx).astype(np.int64)
    py = ((v - y0) / max(y1 - y0, 1e-6) * sy).astype(np.int64)
    zz = z[ok]
    depth = np.full(sx * sy, np.inf)
    for dx in range(-radius + 1, radius + 1) if radius > 1 else (0,):
        for dy in range(-radius + 1, radius + 1) if radius > 1 else (0,):
            qx, qy = px + dx, py + dy
            m = (qx >= 0) & (qx < sx) & (qy >= 0) & (qy < sy)
            np.minimum.at(depth, qy[m] * sx + qx[m], zz[m])
    return depth.reshape(sy, sx)


def _fill_holes(sil):
    """Close 1-pixel holes of splatted silhouettes (...,H,W) (3×3 majority)."""
    p = np.pad(sil, [(0, 0)] * (sil.ndim - 2) + [(1, 1), (1, 1)]).astype(np.uint8)
    H, W = sil.shape[-2:]
    n = sum(p[..., 1 + dy:H + 1 + dy, 1 + dx:W + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return sil | (n >= 5)


# ---------------------------------------------------------------- noise
def _ar1(rng, shape, rho):
    e = rng.normal(size=shape)
    out = np.empty(shape)
    out[0] = e[0]
    s = np.sqrt(1 - rho ** 2)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + s * e[t]
    return out


def apply_detector_noise(rng, kp_true, occluded, inside, frame_size, noise):
    """Noisy keypoints (T,33,3) + valid (T,) from true pixels (T,33,2) and flags (T,33)."""
    T = len(kp_true)
    lo, hi = kp_true.min(1), kp_true.max(1)
    box_h = np.maximum(hi[:, 1] - lo[:, 1], hi[:, 0] - lo[:, 0])[:, None, None]
    sigma = noise["sigma_rel"][None, :, None] * box_h * np.where(occluded, noise["occluded_sigma_mult"], 1.0)[..., None]
    speed = np.zeros((T, NUM_LANDMARKS, 1))
    if T > 1:
        speed[1:] = np.linalg.norm(np.diff(kp_true, axis=0), axis=-1, keepdims=True)
        speed[0] = speed[1]
    sigma = sigma + noise["blur_gain"] * speed
    kp = kp_true + sigma * _ar1(rng, (T, NUM_LANDMARKS, 2), noise["temporal_rho"])
    out = rng.random((T, NUM_LANDMARKS)) < noise["outlier_rate"]
    kp[out] += rng.normal(size=(out.sum(), 2)) * noise["outlier_sigma_rel"] * np.broadcast_to(box_h, (T, NUM_LANDMARKS, 1))[out]
    swap = rng.random(T) < noise["swap_rate"]
    kp[swap] = kp[swap][:, LMIRROR]
    vis = np.where(inside, np.where(occluded, rng.beta(*noise["vis_occluded"], (T, NUM_LANDMARKS)),
                                    rng.beta(*noise["vis_visible"], (T, NUM_LANDMARKS))),
                   rng.beta(*noise["vis_outside"], (T, NUM_LANDMARKS)))
    valid = np.ones(T, bool)
    t = 0
    while t < T:
        if rng.random() < noise["dropout_rate"]:
            n = 1 + rng.poisson(max(noise["dropout_burst"] - 1, 0))
            valid[t:t + n] = False
            t += n
        t += 1
    keypoints = np.concatenate([kp, vis[..., None]], -1)
    keypoints[~valid] = np.nan
    return keypoints, valid


# ---------------------------------------------------------------- the generator
class Synthesizer:
    """Draws synthetic observation sequences for one body. Reuse it: it caches the posing."""

    def __init__(self, body, noise=None, crop=CROP, convention=None):
        self.body = body
        self.noise = noise or load_noise_model()
        self.crop = crop
        self.convention = convention   # the landmark convention (engine.body.landmarks; None: the default)
        self._posers = {}

    def poser(self, betas):
        key = tuple(np.round(np.asarray(betas, np.float64), 4))
        if key not in self._posers:
            self._posers = {key: Poser(self.body, betas, self.convention)} if len(self._posers) > 8 else self._posers
            self._posers[key] = Poser(self.body, betas, self.convention)
        return self._posers[key]

    def __call__(self, poses, trans, betas, rng, fps=30.0, camera=None, mirror=False, facing=None,
                 render=True, body_scale=1.0, speed=1.0, arm_angles=(0.0, 0.0)):
        """One sequence: dict of observation arrays and ground truth (see module docstring).

        ``speed`` (``change_speed``: the output has round(T / speed) frames) and ``arm_angles``
        (degrees for the left and right arm, ``arm_angle_motion``) augment the motion before it
        is mirrored and posed; the defaults leave it unchanged."""
        poses = np.asarray(poses, np.float64)
        trans = np.asarray(trans, np.float64)
        if speed != 1.0:
            poses, trans = change_speed(poses, trans, speed, fps)
        for side, ang in zip(("left", "right"), arm_angles):
            poses = arm_angle_motion(poses, ang, side)
        if mirror:
            poses, trans = mirror_motion(poses, trans, self.body, betas)
            if facing is not None:
                facing = np.pi - facing
        T = len(poses)
        P = self.poser(betas)
        verts, joints, lm3 = P(poses, trans)
        if body_scale != 1.0:  # a taller/shorter person (about the pelvis), for rendering only
            pc = joints[:, :1].astype(np.float32)
            verts = pc + body_scale * (verts - pc)
            lm3 = pc + body_scale * (lm3 - pc)
            joints = joints[:, :1] + body_scale * (joints - joints[:, :1])
        pelvis = joints[:, 0]
        height = float(verts[0, :, 2].max() - verts[0, :, 2].min()) if verts.shape[1] > 100 else 1.7
        Ks, E, (w, h), kind = sample_camera(rng, pelvis, camera, facing, max(height, 1.0))
        o = self.observe(verts, joints, lm3, Ks, E, (w, h), rng, P, render)
        H = homographies(Ks, E)
        return dict(
            keypoints=o["keypoints"].astype(np.float32), world=o["world"], valid=o["valid"], masks=o["masks"],
            silhouette=o["silhouette"], depth=o["depth"], crop_box=o["crop_box"].astype(np.float32),
            camera_motion=camera_motion_feature(H, (w, h)), homographies=H.astype(np.float32),
            frame_size=np.array([w, h], np.int32), fps=np.float32(fps), camera_type=kind,
            K=Ks.astype(np.float32), extrinsics=E.astype(np.float32),
            # ground truth
            poses=poses.astype(np.float32), trans=trans.astype(np.float32),
            betas=np.asarray(betas, np.float32), joints=joints.astype(np.float32),
            joints_cam=o["joints_cam"].astype(np.float32), landmarks3d=lm3.astype(np.float32),
            occluded=o["occluded"], mirrored=bool(mirror), speed=float(speed),
            arm_angles=np.asarray(arm_angles, np.float32))

    def observe(self, verts, joints, lm3, Ks, E, frame_size, rng, P, render=True):
        """The detector's view of a posed body (world vertices, joints, landmarks (T,·,3)) through
        per-frame pinhole cameras Ks (T,3,3), E (T,4,4) world→camera, frame ``(w, h)``: noisy
        keypoints, world landmarks, masks and crops, with the occlusion flags behind them.
        ``P`` is the body's ``Poser`` (mesh faces, occlusion margins). A separate step so the
        same noise path can run on real cameras (``training.eval.noise_compare``)."""
        w, h = frame_size
        R, tcam = E[:, :3, :3], E[:, :3, 3]
        lm_cam = np.einsum("tij,tnj->tni", R, lm3) + tcam[:, None]
        j_cam = np.einsum("tij,tnj->tni", R, joints) + tcam[:, None]
        z = np.maximum(lm_cam[..., 2:3], 1e-3)
        uv = lm_cam[..., :2] / z * Ks[:, None, [0, 1], [0, 1]] + Ks[:, None, :2, 2]
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        # self-occlusion: landmark behind the rendered surface at its pixel (crop z-buffer)
        lo, hi = uv.min(1), uv.max(1)
        ctr, half = 0.5 * (lo + hi), 0.6 * np.max(hi - lo, axis=1, keepdims=True)
        boxes = np.concatenate([ctr - half, ctr + half], 1)
        mw, mh = mask_size(w, h)
        sil, depth, masks, occluded = self._render(verts, R, tcam, Ks, boxes, uv, lm_cam, j_cam, P,
                                                   (w, h), (mw, mh), render)
        keypoints, valid = apply_detector_noise(rng, uv, occluded, inside, (w, h), self.noise)
        # detector's crop box = its keypoints' box (what a model sees at run time)
        # world landmarks: hip-centred, camera-aligned, with depth compression and noise
        nz = self.noise
        hip = 0.5 * (lm_cam[:, LM["left_hip"]] + lm_cam[:, LM["right_hip"]])
        wl = lm_cam - hip[:, None]
        wl[..., 2] *= rng.uniform(*nz["world_depth_scale"])
        wl *= rng.uniform(*nz["world_scale"])
        # temporally correlated (AR(1)) jitter, calibrated to the measured SG-residual jitter
        wl += _ar1(rng, wl.shape, nz.get("world_temporal_rho", 0.0)) * world_noise_sigma(nz)
        world = wl.astype(np.float32)
        world[~valid] = np.nan
        return dict(keypoints=keypoints, world=world, valid=valid, masks=masks, silhouette=sil,
                    depth=depth, crop_box=boxes, occluded=occluded, uv=uv, inside=inside,
                    landmarks_cam=lm_cam, joints_cam=j_cam)


def _render_impl(self, verts, R, tcam, Ks, boxes, uv, lm_cam, j_cam, P, size, msize, render):
    """Batched point-splat z-buffer over all frames at once (vertices + face centroids)."""
    T, C = len(verts), self.crop
    vc = verts @ np.swapaxes(R, 1, 2).astype(np.float32) + tcam[:, None].astype(np.float32)
    f = P.faces
    # a dense mesh (the open body: 13k vertices, ~2 cm apart) needs no face samples at 64 px
    dense = len(P.v) > 5000
    pts = vc if dense else np.concatenate([vc, (vc[:, f[:, 0]] + vc[:, f[:, 1]] + vc[:, f[:, 2]]) / 3], 1)
    z = np.maximum(pts[..., 2], 1e-3)
    u = Ks[:, None, 0, 0] * pts[..., 0] / z + Ks[:, None, 0, 2]
    v = Ks[:, None, 1, 1] * pts[..., 1] / z + Ks[:, None, 1, 2]
    bw = (boxes[:, 2] - boxes[:, 0])[:, None]
    px = ((u - boxes[:, :1]) / bw * C).astype(np.int64)
    py = ((v - boxes[:, 1:2]) / bw * C).astype(np.int64)
    ok = (px >= 0) & (px < C) & (py >= 0) & (py < C) & (pts[..., 2] > 1e-3)
    flat = (np.arange(T)[:, None] * C * C + py * C + px)[ok]
    depth_buf = np.full(T * C * C, np.inf)
    np.minimum.at(depth_buf, flat, pts[..., 2][ok].astype(np.float64))
    d = depth_buf.reshape(T, C, C)
    on = _fill_holes(np.isfinite(d))
    q = np.clip(((uv - boxes[:, None, :2]) / bw[:, None] * C).astype(int), 0, C - 1)
    surf = np.where(np.isfinite(d), d, np.inf)[np.arange(T)[:, None], q[..., 1], q[..., 0]]
    occluded = lm_cam[..., 2] > surf + P.occ_margin
    (w, h), (mw, mh) = size, msize
    sil = (on * 255).astype(np.uint8)
    depth = np.where(on & np.isfinite(d), d - j_cam[:, :1, 2:3], 0.0).astype(np.float16)
    masks = np.zeros((T, mh, mw), np.uint8)
    if render:  # paste the crop silhouette into the full-frame mask grid (longer side 160)
        import cv2
        sx, sy = mw / w, mh / h
        for t in range(T):
            x0, y0 = boxes[t, 0] * sx, boxes[t, 1] * sy
            side = max(int(round(bw[t, 0] * sx)), 1)
            patch = cv2.resize(sil[t], (side, side), interpolation=cv2.INTER_AREA)
            xi, yi = int(round(x0)), int(round(y0))
            a0, b0 = max(xi, 0), max(yi, 0)
            a1, b1 = min(xi + side, mw), min(yi + side, mh)
            if a1 > a0 and b1 > b0:
                masks[t, b0:b1, a0:a1] = patch[b0 - yi:b1 - yi, a0 - xi:a1 - xi]
    return sil, depth, masks, occluded


Synthesizer._render = _render_impl


def to_observations(sample):
    """The synthetic sample as ``engine.observe.Observations`` (what estimators consume)."""
    T = len(sample["valid"])
    return Observations(keypoints=sample["keypoints"], world=sample["world"], masks=sample["masks"],
                        valid=sample["valid"], timestamps=np.arange(T) / float(sample["fps"]),
                        frame_size=tuple(int(x) for x in sample["frame_size"]), fps=float(sample["fps"]))
