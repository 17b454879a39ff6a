"""Image-aligned final fit: pose and root adjusted so the body's landmarks land on the detections.

The learned estimate gives a plausible 3D body whose projection can sit several percent of the
person's height beside them in the image. Each valid frame is refined, in that frame's camera,
by a batched Levenberg–Marquardt (all frames at once, as ``engine.estimate.joint_fit.fit_frames``):

    minimise  Σ_l ρ(‖π(q_l(θ, τ)) − u_l‖ / h) · v_l / s²              (landmarks on the detections)
            + Σ_j (z_j(θ, τ) − z⁰_j)² / σ_z²                             (each joint's depth kept)
            + Σ_k ‖θ_k − θ⁰_k‖² / s_θ²                                   (rotations near the estimate)
            + ‖x_t − ½(x_{t−1} + x_{t+1})‖² / s_t²                          (temporal smoothness)
            + Σ_{j ∈ pelvis, head} max(0, f_j,z + m)² / s_f²   where the face is seen (front, not back)

q_l are MediaPipe-convention landmarks (``engine.body.landmarks``) modelled as points fixed in
their dominant joint's frame (exact for the 12 limb joints; for the face, hands and feet the
skinning's blend near a joint is ignored — our simplification, it keeps the Jacobian the same
closed form as the joints'); u_l the detected keypoints with visibility v_l > ``min_visibility``;
h the person's 2D height; ρ a Huber loss by iterative reweighting (an occluded or mislabelled
keypoint cannot drag the body); z⁰ the estimate's joint depths in the camera (the monocular depth
stays the network's: 2D alone cannot fix it). The rotation prior keeps what 2D cannot see (bone
twist) at the estimate. The last term settles front/back where 2D cannot: in frames whose face
is seen from the front (``engine.align.facing.face_toward_camera``), the pelvis' and head's forward axes
f_j (camera frame) may not point away from the camera (a hinge: no pull while they face it; our
choice, m = ``FACING_MARGIN``). Shape and focal are not refitted here.
"""
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from ..threads import one_library_thread
from ..body import kinematics as K
from ..body.landmarks import landmark_spec, spec_matrix
from ..body.skeleton import NUM_JOINTS, PARENTS
from ..estimate.joint_fit import DESC, right_jacobian
from .reprojection import person_height

MIN_VISIBILITY = 0.5
PIXEL_SIGMA = 0.003       # of the person's height: one such offset costs one unit
DEPTH_SIGMA = 0.15        # metres: a joint's depth may leave the estimate's by about this
ROT_SIGMA = 0.35          # radians
ANCHOR_SIGMA = 0.005       # metres: an anchored joint (a planted foot) stays within about this
ITERATIONS = 10
TEMPORAL_ROT_SIGMA = 0.015    # radians: a local rotation's offset from its neighbours' mean
TEMPORAL_TRANS_SIGMA = 0.004  # metres: the root's offset from its neighbours' mean (camera frame)
# σ values chosen on R1 (docs/benchmarks.md, 'Image-fit weights'): weaker priors against the
# image gave better 3D on real video, a stronger temporal term less jitter; this is the middle.
# The smoothing preset scales the temporal term (``TEMPORAL_SCALE``): 'none' has none.
TEMPORAL_SCALE = {"none": None, "light": 1.0, "analysis": 1.0, "animation": 1 / 3}
HUBER = 4.0               # in units of PIXEL_SIGMA: beyond it a keypoint's pull stops growing
ROOT_TEMPORAL_SCALE = 0.5   # the root rotation's temporal σ relative to the other joints'
FACING_SIGMA = 0.02       # forward-axis z (unit vector) beyond the hinge: one such offset costs one unit
FACING_MARGIN = 0.1       # the hinge starts at z = −0.1 (the axis turned ~84° from the camera)
FACING_JOINTS = (0, 15)   # pelvis, head
# The landmark points the fit puts on the detections. The learned convention (the reprojection
# figure's and the benchmarks') was measured here too: on R1 it gave 3.4 mm lower MPJPE and half
# the reprojection error but 1.4 mm higher PA-MPJPE, and a 39° one-frame pelvis turn on the demo
# clip where the detector collapses the hips for a frame (docs/detector_noise.md), so the fit
# keeps the rule points.
FIT_CONVENTION = "rules"


def _anc_or_self(parents=PARENTS):
    J = len(parents)
    a = np.zeros((J, J), bool)              # a[j, k]: k is j or an ancestor of j
    for j in range(J):
        k = j
        while k >= 0:
            a[j, k] = True
            k = parents[k]
    return a


ANC = _anc_or_self()


def attached_landmarks(body, betas=None, convention=FIT_CONVENTION):
    """(parent joint (L,), offset (L,3)) of the 33 landmarks as points fixed in a joint's frame.

    A landmark hangs from the joint of the largest share: a joint's own weight plus its
    vertices' weights times their skinning weights; its offset is taken on the rest pose (where
    every joint frame is the identity), so the rest pose is exact."""
    v = body.shaped_vertices(betas)
    M = spec_matrix(landmark_spec(body, betas, convention), len(v))
    rest = body.J_regressor @ v
    share = M[:, :len(v)] @ body.weights + M[:, len(v):]                  # (L, 24)
    parent = np.argmax(share, axis=1).astype(np.int64)
    point = M @ np.concatenate([v, rest])
    return parent, point - rest[parent]


def _to_camera(rv, trans, E, rest0):
    """Root rotation and translation moved into the camera (see module docstring of the math):
    p_cam = R_E·(FK(θ) + τ) + t_E = FK(θ') + τ' with θ'_0 = R_E·R_0 and τ' = R_E(r0 + τ) + t_E − r0."""
    R_E, t_E = E[:, :3, :3], E[:, :3, 3]
    rv = rv.copy()
    R0 = Rotation.from_rotvec(rv[:, 0]).as_matrix()
    rv[:, 0] = Rotation.from_matrix(R_E @ R0).as_rotvec()
    tau = np.einsum("tij,tj->ti", R_E, rest0 + trans) + t_E - rest0
    return rv, tau


def _from_camera(rv, tau, E, rest0):
    R_E, t_E = E[:, :3, :3], E[:, :3, 3]
    rv = rv.copy()
    R0 = Rotation.from_rotvec(rv[:, 0]).as_matrix()
    rv[:, 0] = Rotation.from_matrix(np.swapaxes(R_E, 1, 2) @ R0).as_rotvec()
    trans = np.einsum("tji,tj->ti", R_E, tau + rest0 - t_E) - rest0
    return rv, trans


def _pose_points(rv, tau, rest, parent, offset):
    """Joints (T,24,3), landmarks (T,L,3), global rotations (T,24,3,3) in the camera."""
    g = K.global_transforms(K.axis_angle_to_matrix(rv), rest)
    G, p = g[..., :3, :3], g[..., :3, 3] + tau[:, None]
    q = p[:, parent] + np.einsum("tlij,lj->tli", G[:, parent], offset)
    return p, q, G


def _chain_jacobian(points, p, M, pairs):
    """d(points)/d(θ,τ) (T,N,3,75): rotating joint k by dθ moves a point x below it by
    (M_k dθ) × (x − p_k); ``pairs`` = (point index, joint k) for every k that moves the point."""
    T, N = points.shape[:2]
    i, k = pairs
    d = points[:, i] - p[:, k]                                          # (T,P,3)
    m = M[:, k]                                                         # (T,P,3,3): column a = M_k e_a
    dx, dy, dz = (d[..., c, None] for c in range(3))                    # (T,P,1)
    mx, my, mz = m[..., 0, :], m[..., 1, :], m[..., 2, :]               # (T,P,3) over a
    blk = np.stack([my * dz - mz * dy, mz * dx - mx * dz, mx * dy - my * dx], axis=-2)   # [t,p,c,a]: (M_k e_a) × d
    J = np.zeros((T, N, 3, NUM_JOINTS + 1, 3))
    J[:, i, :, k, :] = np.swapaxes(blk, 0, 1)
    J[:, :, :, NUM_JOINTS] = np.eye(3)
    return J.reshape(T, N, 3, 3 * NUM_JOINTS + 3)


def _jacobians(rv, p, q, G, joint_pairs, landmark_pairs):
    """d(joints)/d(θ,τ) (T,24,3,75), d(landmarks)/d(θ,τ) (T,L,3,75) and M (T,24,3,3), the map from
    a joint's rotation-vector step to its global angular step."""
    M = G @ right_jacobian(rv)                                          # (T,24,3,3)
    return _chain_jacobian(p, p, M, joint_pairs), _chain_jacobian(q, p, M, landmark_pairs), M


def _facing_jacobian(M, G, joints=FACING_JOINTS):
    """d(f_j,z)/d(θ,τ) (T,len(joints),75): the camera-frame z of each joint's forward axis f_j =
    G_j e_z; rotating an ancestor-or-self k by dθ turns f_j by (M_k dθ) × f_j."""
    T = len(G)
    J = np.zeros((T, len(joints), 3 * NUM_JOINTS + 3))
    for i, j in enumerate(joints):
        ks = np.flatnonzero(ANC[j])
        cols = np.cross(np.swapaxes(M[:, ks], -1, -2), G[:, None, None, j, :, 2])[..., 2]    # (T,nk,3)
        J[:, i, (3 * ks[:, None] + np.arange(3)).ravel()] = cols.reshape(T, -1)
    return J


def fit_to_image(poses, trans, betas, body, intrinsics, extrinsics, keypoints, valid, anchors=None, anchor_runs=None,
                 anchor_sigma=ANCHOR_SIGMA, iterations=ITERATIONS, min_visibility=MIN_VISIBILITY, pixel_sigma=PIXEL_SIGMA,
                 depth_sigma=DEPTH_SIGMA, rot_sigma=ROT_SIGMA, huber=HUBER,
                 temporal_rot_sigma=TEMPORAL_ROT_SIGMA, temporal_trans_sigma=TEMPORAL_TRANS_SIGMA, chunk=512):
    """Refined (poses (T,72), trans (T,3)) in the Motion's world; frames that are invalid or
    show fewer than 4 usable keypoints are returned unchanged.

    ``anchors`` (T,24,3) world positions, NaN where free: joints held there (σ ``anchor_sigma``),
    e.g. the clean-up's planted feet, so the fit does not make a locked foot skate.
    ``anchor_runs`` (T,24) int, −1 where free: instead of a fixed place, every anchored joint of
    one run (one contact) is held at the run's current mean world position, re-taken at each
    iteration: a planted foot may move with the image as a whole but not slide during the run."""
    poses = np.asarray(poses, np.float64).reshape(len(poses), -1)
    trans = np.asarray(trans, np.float64)
    out_p, out_t = poses.copy(), trans.copy()
    kp = np.asarray(keypoints, np.float64)
    h = person_height(kp, min_visibility)
    from ..observe.lr_swaps import garbled_torso
    seen = (np.nan_to_num(kp[..., 2]) > min_visibility) & np.isfinite(kp[..., :2]).all(-1) \
        & ~garbled_torso(kp, valid, min_visibility)     # a collapsed hip or shoulder pair: not evidence
    ok = np.asarray(valid, bool) & np.isfinite(poses).all(1) & np.isfinite(trans).all(1) \
        & (seen.sum(1) >= 4) & (np.nan_to_num(h) > 1)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return out_p, out_t
    rest = body.rest_joints(betas)
    parent, offset = attached_landmarks(body, betas)
    Kf = np.asarray(intrinsics, np.float64)
    E = np.broadcast_to(np.asarray(extrinsics, np.float64), (len(poses), 4, 4))
    A = np.full((len(poses), NUM_JOINTS, 3), np.nan) if anchors is None else np.asarray(anchors, np.float64)
    runs = np.full((len(poses), NUM_JOINTS), -1) if anchor_runs is None else np.asarray(anchor_runs, np.int64)
    if anchor_runs is not None:
        A = np.where((runs >= 0)[..., None], 0.0, np.nan)   # targets come from the runs
    from .facing import face_toward_camera
    face = face_toward_camera(kp, min_visibility)
    for c in range(0, len(idx), chunk):
        f = idx[c:c + chunk]
        with warnings.catch_warnings(), one_library_thread():
            warnings.simplefilter("ignore", RuntimeWarning)
            rv, tau = _fit_chunk(poses[f].reshape(-1, NUM_JOINTS, 3), trans[f], E[f], kp[f], seen[f], h[f],
                                 A[f], runs[f], f, rest, parent, offset, Kf, iterations, pixel_sigma, depth_sigma,
                                 rot_sigma, huber, anchor_sigma, temporal_rot_sigma, temporal_trans_sigma, face[f])
        out_p[f] = rv.reshape(len(f), -1)
        out_t[f] = tau
    return out_p, out_t


def _fit_chunk(rv0w, trans0, E, kp, seen, h, anchors, runs, frame_idx, rest, parent, offset, Kf, iterations,
               pixel_sigma, depth_sigma, rot_sigma, huber, anchor_sigma, temporal_rot_sigma,
               temporal_trans_sigma, face):
    T = len(rv0w)
    n = 3 * NUM_JOINTS
    rest0 = rest[0]
    rv0, tau0 = _to_camera(rv0w, trans0, E, rest0)
    p0, _, _ = _pose_points(rv0, tau0, rest, parent, offset)
    z0 = p0[..., 2]
    anchored = np.isfinite(anchors).all(-1)                             # (T,24)
    a_cam = np.einsum("tij,tnj->tni", E[:, :3, :3], np.nan_to_num(anchors)) + E[:, None, :3, 3]
    wa = np.where(anchored, 1.0 / anchor_sigma, 0.0)[..., None]         # (T,24,1)
    in_run = runs >= 0
    run_ids, run_of = np.unique(runs[in_run], return_inverse=True) if in_run.any() else (np.zeros(0), None)

    def run_targets(p):
        """Camera-frame targets: each run's mean world position of its anchored joints now."""
        if run_of is None:
            return a_cam
        pw = np.einsum("tji,tnj->tni", E[:, :3, :3], p - E[:, None, :3, 3])[in_run]   # world
        sums = np.zeros((len(run_ids), 3))
        np.add.at(sums, run_of, pw)
        mean = sums / np.bincount(run_of, minlength=len(run_ids))[:, None]
        tw = np.zeros_like(p)
        tw[in_run] = mean[run_of]
        out = a_cam.copy()
        out[in_run] = (np.einsum("tij,tnj->tni", E[:, :3, :3], tw) + E[:, None, :3, 3])[in_run]
        return out
    f = np.array([Kf[0, 0], Kf[1, 1]])
    cpt = Kf[:2, 2]
    u = np.nan_to_num(kp[..., :2])
    vis = np.where(seen, np.clip(kp[..., 2], 0, 1), 0.0)
    scale = 1.0 / (pixel_sigma * h)                                     # (T,) residual per pixel
    wz = 1.0 / depth_sigma
    wr = 1.0 / rot_sigma
    x0 = np.concatenate([rv0.reshape(T, n), tau0], 1)

    def residuals(x):
        rv = x[:, :n].reshape(T, NUM_JOINTS, 3)
        p, q, G = _pose_points(rv, x[:, n:], rest, parent, offset)
        z = np.maximum(q[..., 2], 1e-3)
        proj = q[..., :2] / z[..., None] * f + cpt
        r2 = (proj - u) * scale[:, None, None]                          # (T,L,2)
        return rv, p, q, G, z, r2

    def data_cost(r2, w2, p, x):
        rz = (p[..., 2] - z0) * wz
        rr = (x[:, :n] - x0[:, :n]) * wr
        ra = (p - a_cam) * wa
        return (w2[..., None] * r2 ** 2).sum((1, 2)) + (rz ** 2).sum(1) + (rr ** 2).sum(1) + (ra ** 2).sum((1, 2))

    def robust_weights(r2):
        a = np.linalg.norm(r2, axis=-1)
        return vis * np.where(a > huber, huber / np.maximum(a, 1e-12), 1.0)

    # temporal term: each frame is pulled toward the mean of its neighbours' current values
    # (held fixed within an iteration, so every frame's step stays a small dense solve; the
    # coupling is solved by the iterations, Jacobi-style — our choice, for speed)
    prev_ok = np.r_[False, np.diff(frame_idx) == 1]
    next_ok = np.r_[np.diff(frame_idx) == 1, False]
    w_time = np.r_[np.full(n, 1.0 / temporal_rot_sigma ** 2), np.full(3, 1.0 / temporal_trans_sigma ** 2)]
    w_time[:3] /= ROOT_TEMPORAL_SCALE ** 2

    def neighbour_mean(x):
        prev = np.where(prev_ok[:, None], np.roll(x, 1, axis=0), 0.0)
        nxt = np.where(next_ok[:, None], np.roll(x, -1, axis=0), 0.0)
        cnt = prev_ok.astype(float) + next_ok
        mid = (prev + nxt) / np.maximum(cnt, 1)[:, None]
        k = np.where(cnt[:, None] > 0, 0.5 * cnt[:, None], 0.0) * w_time      # (T,75)
        jump = np.linalg.norm((x - mid)[:, :n].reshape(T, NUM_JOINTS, 3), axis=-1) > 1.0  # wrap/flip
        k[:, :n] *= ~np.repeat(jump, 3, axis=1)
        return mid, k

    wf = np.where(face, 1.0 / FACING_SIGMA, 0.0)[:, None]             # (T,1): only where the face is seen

    def facing_residuals(G):
        """(T,2) hinge residuals of the pelvis' and head's forward-axis z (camera frame)."""
        return wf * np.maximum(G[:, FACING_JOINTS, 2, 2] + FACING_MARGIN, 0.0)

    def cost(r2, w2, p, x, G):
        return data_cost(r2, w2, p, x) + (k_time * (x - mid) ** 2).sum(1) + (facing_residuals(G) ** 2).sum(1)

    x = x0.copy()
    mid, k_time = neighbour_mean(x)
    rv, p, q, G, z, r2 = residuals(x)
    a_cam = run_targets(p)
    w2 = robust_weights(r2)
    c = cost(r2, w2, p, x, G)
    lam = np.full(T, 1e-2)
    diag = np.arange(n + 3)
    prior = np.r_[np.full(n, wr ** 2), np.zeros(3)]
    anchored_joints = np.flatnonzero(anchored.any(0))                  # only these joints carry anchor rows
    joint_pairs = np.nonzero(DESC.T)                                    # (i, k): k a strict ancestor of i
    landmark_pairs = np.nonzero(ANC[parent])                            # (l, k): k moves landmark l
    for _ in range(iterations):
        Jp, Jq, M = _jacobians(rv, p, q, G, joint_pairs, landmark_pairs)
        # projection Jacobian: d proj / d q = f/z [[1, 0, -x/z], [0, 1, -y/z]]
        dpi = np.zeros(q.shape[:2] + (2, 3))
        dpi[..., 0, 0] = f[0] / z
        dpi[..., 1, 1] = f[1] / z
        dpi[..., 0, 2] = -f[0] * q[..., 0] / z ** 2
        dpi[..., 1, 2] = -f[1] * q[..., 1] / z ** 2
        L = q.shape[1]
        J2 = (np.einsum("tlab,tlbi->tlai", dpi, Jq) * scale[:, None, None, None]).reshape(T, 2 * L, -1)
        sw = np.sqrt(np.repeat(w2, 2, axis=1))[..., None]                 # (T,2L,1): √(robust weight)
        # every weighted residual block stacked, so H = JᵀJ and g = Jᵀr are one product each
        blocks = [J2 * sw, Jp[:, :, 2] * wz]
        res = [r2.reshape(T, 2 * L) * sw[..., 0], (p[..., 2] - z0) * wz]
        rf = facing_residuals(G)
        if (rf > 0).any():
            blocks.append(_facing_jacobian(M, G) * (wf * (rf > 0))[..., None])
            res.append(rf)
        if len(anchored_joints):
            ja = wa[:, anchored_joints]                                  # (T,A,1)
            blocks.append((Jp[:, anchored_joints] * ja[..., None]).reshape(T, -1, n + 3))
            res.append(((p[:, anchored_joints] - a_cam[:, anchored_joints]) * ja).reshape(T, -1))
        J = np.concatenate(blocks, axis=1)
        Jt = np.swapaxes(J, 1, 2)
        H = Jt @ J
        g = (Jt @ np.concatenate(res, axis=1)[..., None])[..., 0] + prior * (x - x0) + k_time * (x - mid)
        H[:, diag, diag] += prior + k_time
        d = H[:, diag, diag].copy()
        H[:, diag, diag] += lam[:, None] * (d + 1e-9)
        step = -np.linalg.solve(H, g[..., None])[..., 0]
        xn = x + step
        rvn, pn, qn, Gn, zn, r2n = residuals(xn)
        cn = cost(r2n, w2, pn, xn, Gn)
        better = cn < c
        x[better] = xn[better]
        rv[better], p[better], q[better], G[better], z[better], r2[better] = \
            rvn[better], pn[better], qn[better], Gn[better], zn[better], r2n[better]
        lam = np.where(better, np.maximum(lam / 3, 1e-7), lam * 4)
        w2 = robust_weights(r2)                                          # IRLS: Huber weights
        mid, k_time = neighbour_mean(x)
        a_cam = run_targets(p)
        c = cost(r2, w2, p, x, G)
    rv = Rotation.from_rotvec(x[:, :n].reshape(-1, 3)).as_rotvec().reshape(T, NUM_JOINTS, 3)
    return _from_camera(rv, x[:, n:], E, rest0)


def temporal_sigmas(smoothing):
    """(rotation σ, translation σ) of the fit's temporal term for a smoothing preset name."""
    scale = TEMPORAL_SCALE.get(smoothing, 1.0) if isinstance(smoothing, str) else 1.0
    if scale is None:
        return 1e3, 1e3   # no temporal coupling
    return TEMPORAL_ROT_SIGMA * scale, TEMPORAL_TRANS_SIGMA * scale


def align_motion(motion, body, smoothing="light", **kw):
    """A copy of a cleaned Motion fitted to its own keypoints (``fit_to_image``); the clean-up's
    planted heels and toes (``motion.contacts``) stay still through each contact; the temporal
    term follows the smoothing preset (``temporal_sigmas``)."""
    import copy
    from ..clean.contacts import CONTACT_JOINTS
    m = copy.deepcopy(motion)
    v = np.asarray(m.valid, bool)
    if not v.any():
        return m
    runs = np.full(m.joints.shape[:2], -1)
    c = np.asarray(m.contacts, bool) & v[:, None]
    n = 0
    for i, j in enumerate(CONTACT_JOINTS):  # one run per contact: consecutive planted frames
        s = np.r_[False, c[:, i], False].astype(int)
        for a, b in zip(np.flatnonzero(np.diff(s) == 1), np.flatnonzero(np.diff(s) == -1)):
            runs[a:b, j] = n
            n += 1
    rs, ts = temporal_sigmas(smoothing)
    kw = {"temporal_rot_sigma": rs, "temporal_trans_sigma": ts, **kw}
    poses, trans = fit_to_image(m.poses, m.trans, m.betas, body, m.camera_intrinsics, m.camera_extrinsics,
                                m.keypoints2d, v, anchor_runs=runs, **kw)
    rest = body.rest_joints(m.betas)
    m.poses[v], m.trans[v] = poses[v], trans[v]
    m.joints[v] = K.forward_kinematics(K.axis_angle_to_matrix(poses[v].reshape(-1, NUM_JOINTS, 3)), rest, trans[v])
    return m.astype_file()
