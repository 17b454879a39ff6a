"""Pure conversion math between the Motion file and Blender data (numpy only, no bpy).

Rig convention (documented here, relied on by build_scene.py and the tests)
--------------------------------------------------------------------
* The armature object sits at the world origin with an identity transform, so armature space
  is world space (Blender's: Z up, metres; the body faces -Y).
* ``A`` = rotation of +90° about X maps the body model's canonical frame (SMPL: Y up, facing
  +Z, subject's left +X) to Blender's Z-up world. The rest pose is the body model's T-pose
  turned upright: rest joint ``j`` sits at ``A @ J_j`` (``J = body.rest_joints(betas)``).
* Every bone's rest matrix ``C_j`` is *axis-aligned* (a signed permutation of the world axes):
  its Y axis (head→tail) is the world axis nearest to the direction towards the joint's child
  (leaves continue their parent's direction); its Z axis is world -Y (the body's front), or
  world +Z when the bone itself runs along ±Y (the feet). So ``D_j = Aᵀ C_j`` is a fixed
  signed permutation relating SMPL's canonical axes to the bone's axes.
* Pose-bone quaternions (bone space) are the SMPL local rotations conjugated by ``D_j``:
  ``q_j = D_jᵀ · R_j · D_j``; for the root, ``R_0`` is first taken relative to the upright rest
  (``Aᵀ · R_0``, as the file's global orientation maps the canonical frame straight into the
  Z-up world). The root bone's location is ``C_0ᵀ (J_0 + trans − A J_0)``, so that the posed
  pelvis is at ``J_0 + trans`` exactly as in SMPL/AMASS.
* Consequently the evaluated armature-space matrix of bone ``j`` is ``[F_j D_j | x_j]`` where
  ``F_j`` is the SMPL global rotation of joint j (canonical → world) and ``x_j`` its world
  position: ``F_j = M_j[:3,:3] @ D_jᵀ``.

Quaternions are (w, x, y, z), Blender's order.
"""

import numpy as np

from engine.body.rotations import matrix_to_quat_wxyz

# Canonical (SMPL) → Blender world: +90° about X.
A = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
FRONT = np.array([0.0, -1.0, 0.0])
UP = np.array([0.0, 0.0, 1.0])
_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)

# The child a bone points to when the joint has several (pelvis → spine1, spine3 → neck).
MAIN_CHILD = {0: 3, 9: 12}


# --------------------------------------------------------------------------- quaternions
def quat_mul(a, b):
    """Hamilton product of (..., 4) quaternions (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conj(q):
    q = np.array(q, dtype=np.float64)
    q[..., 1:] *= -1.0
    return q


def axis_angle_to_quat(aa):
    """(..., 3) axis-angle → (..., 4) unit quaternions; exact near zero angle."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * theta
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    k = np.where(small, 0.5 - theta ** 2 / 48.0, np.sin(half) / safe)
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def quat_to_matrix(q):
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


# --------------------------------------------------------------------------- rig rest pose
def _nearest_axis(d):
    return _AXES[int(np.argmax(_AXES @ d))]


def bone_rest_rotation(direction):
    """Axis-aligned rest rotation (3,3) whose Y column is the axis nearest ``direction``."""
    y = _nearest_axis(np.asarray(direction, dtype=np.float64))
    z = UP if abs(y[1]) > 0.5 else FRONT
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=1)


def rig_rest(rest_joints, parents):
    """Rest layout of the armature from canonical rest joints (24,3).

    Returns dict: ``heads`` (J,3) world, ``tails`` (J,3) world, ``rest_rot`` (J,3,3) = C_j,
    ``D`` (J,3,3) = Aᵀ C_j, ``D_quat`` (J,4), ``lengths`` (J,).
    """
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    parents = np.asarray(parents)
    J = len(parents)
    heads = rest_joints @ A.T
    kids = [[] for _ in range(J)]
    for j in range(1, J):
        kids[parents[j]].append(j)
    dirs = np.zeros((J, 3))
    lengths = np.zeros(J)
    order = range(J)  # parents precede children in SMPL order
    for j in order:
        if kids[j]:
            c = MAIN_CHILD.get(j, kids[j][0])
            v = heads[c] - heads[j]
            lengths[j] = np.linalg.norm(v)
            dirs[j] = v
    for j in order:
        if not kids[j]:
            p = parents[j]
            dirs[j] = heads[j] - heads[p] if p >= 0 else UP
            lengths[j] = 0.6 * lengths[p] if p >= 0 else 0.1
    lengths = np.maximum(lengths, 0.02)
    rest_rot = np.stack([bone_rest_rotation(d) for d in dirs])
    tails = heads + rest_rot[:, :, 1] * lengths[:, None]
    D = np.einsum("ji,bjk->bik", A, rest_rot)
    return {"heads": heads, "tails": tails, "rest_rot": rest_rot, "D": D,
            "D_quat": matrix_to_quat_wxyz(D), "lengths": lengths}


# --------------------------------------------------------------------------- animation
A_QUAT = matrix_to_quat_wxyz(A)


def pose_quaternions(poses, D_quat):
    """Pose-bone quaternions (T,J,4) from file ``poses`` (T, 3J) axis-angle.

    q_j = D_j* ⊗ r_j ⊗ D_j, with r_0 taken relative to the upright rest (A* ⊗ r_0).
    NaN rows (invalid frames) stay NaN.
    """
    poses = np.asarray(poses, dtype=np.float64)
    T = poses.shape[0]
    r = axis_angle_to_quat(poses.reshape(T, -1, 3))
    r[:, 0] = quat_mul(quat_conj(A_QUAT), r[:, 0])
    Dq = np.asarray(D_quat, dtype=np.float64)[None]
    return quat_mul(quat_mul(quat_conj(Dq), r), Dq)


def root_locations(trans, rest_pelvis, rest_rot_root):
    """Root pose-bone location (T,3) in bone space: C_0ᵀ (J_0 + trans − A J_0)."""
    J0 = np.asarray(rest_pelvis, dtype=np.float64)
    offset = J0 - A @ J0
    return (np.asarray(trans, dtype=np.float64) + offset) @ np.asarray(rest_rot_root)


def global_rotations_from_bone_matrices(bone_rot, D):
    """Inverse of the convention: SMPL global rotations F_j = M_j · D_jᵀ (…,J,3,3)."""
    return np.einsum("...jab,jcb->...jac", bone_rot, D)


def scene_fps(fps):
    """Blender's (fps:int, fps_base:float) for a float frame rate."""
    fps = float(fps)
    whole = max(1, int(round(fps)))
    return whole, whole / fps


# --------------------------------------------------------------------------- camera
# OpenCV camera axes (x right, y down, z forward) → Blender camera axes (x right, y up, -z forward).
CV_TO_BLENDER_CAM = np.diag([1.0, -1.0, -1.0, 1.0])


def camera_world_matrices(extrinsics):
    """(T,4,4) world→camera (OpenCV) → Blender camera object world matrices (T,4,4)."""
    E = np.asarray(extrinsics, dtype=np.float64)
    return np.linalg.inv(E) @ CV_TO_BLENDER_CAM


def camera_settings(K, frame_size, sensor_width=36.0):
    """Blender camera/render settings reproducing pinhole intrinsics ``K`` on a W×H frame.

    Sensor fit is horizontal, so the lens shift is in units of the image width.
    """
    K = np.asarray(K, dtype=np.float64)
    W, H = (int(v) for v in frame_size)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    aspect_y = fx / fy  # non-square pixels: taller pixels when fy < fx
    return {"lens": fx * sensor_width / W, "sensor_width": sensor_width, "sensor_fit": "HORIZONTAL",
            "shift_x": (W / 2.0 - cx) / W, "shift_y": (cy - H / 2.0) * aspect_y / W,
            "resolution": (W, H), "pixel_aspect": (1.0, aspect_y) if aspect_y >= 1 else (1.0 / aspect_y, 1.0)}


def video_plane(K, frame_size, depth):
    """Corners (4,3) in Blender camera-local coordinates and their UVs (4,2) for a plane at
    ``depth`` metres that exactly fills the frame (counter-clockwise as seen by the camera)."""
    K = np.asarray(K, dtype=np.float64)
    W, H = (float(v) for v in frame_size)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    pix = np.array([[0.0, H], [W, H], [W, 0.0], [0.0, 0.0]])  # bottom-left, bottom-right, top-right, top-left
    x = (pix[:, 0] - cx) * depth / fx
    y = (pix[:, 1] - cy) * depth / fy
    corners = np.stack([x, -y, np.full(4, -depth)], axis=1)
    uv = np.stack([pix[:, 0] / W, 1.0 - pix[:, 1] / H], axis=1)
    return corners, uv


def plane_depth(joints, valid, extrinsics, margin=1.0):
    """A depth (metres along the optical axis) behind every valid joint of the subject."""
    E = np.asarray(extrinsics, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        return 10.0
    pts = np.einsum("tij,tnj->tni", E[valid, :3, :3], joints[valid]) + E[valid, None, :3, 3]
    z = pts[..., 2][np.isfinite(pts[..., 2])]
    if z.size == 0:
        return 10.0
    return float(max(z.max() + margin, 1.5 * z.max(), 1.0))
