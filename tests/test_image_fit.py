"""The image-aligned final fit: exact Jacobians, the body brought onto its keypoints, priors kept."""
import numpy as np
import pytest

from engine.align import image_fit as IF
from engine.body.landmarks import LandmarkModel
from engine.body.model import load_body_model
from engine.estimate.camera import project, world_to_camera
from engine.align.reprojection import reprojection_error

BODY = load_body_model()
BETAS = np.zeros(10)


def _camera(T, dist=4.0):
    K = np.array([[1200.0, 0, 640], [0, 1200.0, 360], [0, 0, 1]])
    E = np.tile(np.eye(4), (T, 1, 1))
    # world Z up, camera looking along world +Y from y = -dist: x_cam = x, y_cam = -z, z_cam = y + dist
    E[:, :3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    E[:, :3, 3] = [0, 0.9, dist]
    return K, E


def _poses(T, seed=0):
    """A smooth random motion: a random pose swaying by ±0.1 rad per joint over the clip."""
    rng = np.random.default_rng(seed)
    phase = np.sin(np.linspace(0, np.pi, T))[:, None]
    poses = rng.normal(scale=0.25, size=(1, 72)) + 0.1 * phase * rng.normal(size=(1, 72))
    poses[:, :3] = [np.pi / 2, 0, 0]  # canonical Y-up → world Z-up, facing the camera (-Y)
    return poses + np.zeros((T, 1))


def _keypoints(poses, trans, K, E):
    X = LandmarkModel(BODY, BETAS, IF.FIT_CONVENTION)(poses, trans)
    px = project(world_to_camera(X, E), K)
    return np.concatenate([px, np.ones(px.shape[:2] + (1,))], -1)


def test_chain_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    rv = rng.normal(scale=0.4, size=(2, 24, 3))
    tau = rng.normal(size=(2, 3))
    rest = BODY.rest_joints(BETAS)
    parent, offset = IF.attached_landmarks(BODY, BETAS)
    p, q, G = IF._pose_points(rv, tau, rest, parent, offset)
    Jp, Jq, M = IF._jacobians(rv, p, q, G, np.nonzero(IF.DESC.T), np.nonzero(IF.ANC[parent]))
    Jf = IF._facing_jacobian(M, G)                       # pelvis' and head's forward-axis z
    x = np.concatenate([rv.reshape(2, -1), tau], 1)
    eps = 1e-6
    for col in (0, 5, 3 * 3 + 1, 3 * 9 + 2, 3 * 12, 3 * 15 + 1, 3 * 16 + 1, 3 * 20 + 2, 72, 74):
        xp = x.copy()
        xp[:, col] += eps
        pp, qp, Gp = IF._pose_points(xp[:, :72].reshape(2, 24, 3), xp[:, 72:], rest, parent, offset)
        np.testing.assert_allclose((pp - p) / eps, Jp[..., col], atol=1e-4)
        np.testing.assert_allclose((qp - q) / eps, Jq[..., col], atol=1e-4)
        np.testing.assert_allclose((Gp[:, IF.FACING_JOINTS, 2, 2] - G[:, IF.FACING_JOINTS, 2, 2]) / eps,
                                   Jf[..., col], atol=1e-4)
    assert np.abs(Jf[:, 1, 3 * 15:3 * 15 + 3]).max() > 0.01 and not Jf[:, 0, 3:].any()   # the pelvis turns only with the root


@pytest.mark.parametrize("convention", ["rules", "learned"])
def test_attached_landmarks_reproduce_the_skinned_ones_at_rest_and_for_joints(convention):
    poses = np.zeros((1, 72))
    rest = BODY.rest_joints(BETAS)
    parent, offset = IF.attached_landmarks(BODY, BETAS, convention)
    _, q, _ = IF._pose_points(poses.reshape(1, 24, 3), np.zeros((1, 3)), rest, parent, offset)
    np.testing.assert_allclose(q[0], LandmarkModel(BODY, BETAS, convention)(poses)[0], atol=1e-9)


def test_fit_brings_a_displaced_body_onto_its_keypoints():
    T = 12
    K, E = _camera(T)
    true = _poses(T)
    trans = np.tile([0.0, 0.0, 0.0], (T, 1))
    kp = _keypoints(true, trans, K, E)
    # the estimate: rotations off by ~0.15 rad per joint (the same error in every frame, as a
    # learned estimate's errors are slow) and the body 8 cm to the side
    est = true + np.random.default_rng(2).normal(scale=0.15, size=(1, 72))
    est_trans = trans + [0.08, 0.0, 0.03]
    before = reprojection_error(LandmarkModel(BODY, BETAS, IF.FIT_CONVENTION)(est, est_trans), K, E, kp)
    poses, tr = IF.fit_to_image(est, est_trans, BETAS, BODY, K, E, kp, np.ones(T, bool))
    after = reprojection_error(LandmarkModel(BODY, BETAS, IF.FIT_CONVENTION)(poses, tr), K, E, kp)
    assert np.median(before) > 3.0
    assert np.median(after) < 0.2 * np.median(before) and np.max(after) < 1.5, (before, after)
    # errors that change every frame are fought by the temporal term; without it they are fixed too
    est = true + np.random.default_rng(2).normal(scale=0.15, size=true.shape)
    poses, tr = IF.fit_to_image(est, est_trans, BETAS, BODY, K, E, kp, np.ones(T, bool),
                                temporal_rot_sigma=1e3, temporal_trans_sigma=1e3)
    after = reprojection_error(LandmarkModel(BODY, BETAS, IF.FIT_CONVENTION)(poses, tr), K, E, kp)
    assert np.max(after) < 1.0, after


def test_depth_prior_and_invalid_frames():
    """The estimate's depth is held by its prior (the image's size cue pulls only part of a 30 cm
    error back); invalid frames and frames without keypoints are returned untouched."""
    T = 6
    K, E = _camera(T)
    poses = _poses(T, seed=3)
    trans = np.zeros((T, 3))
    kp = _keypoints(poses, trans, K, E)
    valid = np.ones(T, bool)
    valid[2] = False
    kp[4, :, 2] = 0.1  # nothing visible
    est_trans = trans + [0.0, 0.3, 0.0]  # 30 cm farther (world +Y is away from the camera)
    p2, t2 = IF.fit_to_image(poses, est_trans, BETAS, BODY, K, E, kp, valid)
    np.testing.assert_array_equal(p2[[2, 4]], poses[[2, 4]])
    np.testing.assert_array_equal(t2[[2, 4]], est_trans[[2, 4]])
    moved = np.abs(t2[[0, 1, 3, 5], 1] - est_trans[[0, 1, 3, 5], 1])
    assert 0.02 < moved.max() < 0.25  # pulled toward the image's depth, but not the full 30 cm


def test_anchor_keeps_a_planted_foot():
    T = 8
    K, E = _camera(T)
    poses = _poses(T, seed=4)
    trans = np.zeros((T, 3))
    kp = _keypoints(poses, trans, K, E)
    kp[..., :2] += [25.0, 0.0]  # every keypoint 25 px to the right
    joints = BODY.joints(poses, BETAS, trans)
    anchors = np.full(joints.shape, np.nan)
    anchors[:, 7] = joints[:, 7]  # left ankle planted
    _, t_free = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, np.ones(T, bool))
    p_a, t_a = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, np.ones(T, bool), anchors=anchors,
                               anchor_sigma=0.0015)
    p_f = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, np.ones(T, bool))[0]
    free = np.linalg.norm(BODY.joints(p_f, BETAS, t_free)[:, 7] - joints[:, 7], axis=-1)
    held = np.linalg.norm(BODY.joints(p_a, BETAS, t_a)[:, 7] - joints[:, 7], axis=-1)
    assert free.mean() > 0.05  # the fit follows the image...
    assert held.max() < 0.4 * free.mean()  # ...but the planted ankle much less


def test_temporal_term_reduces_jitter_from_noisy_keypoints():
    T = 40
    K, E = _camera(T)
    poses = np.repeat(_poses(1, seed=5), T, axis=0)  # standing still
    trans = np.zeros((T, 3))
    kp = _keypoints(poses, trans, K, E)
    kp[..., :2] += np.random.default_rng(6).normal(scale=3.0, size=kp[..., :2].shape)
    kw = dict(valid=np.ones(T, bool))

    def accel(tr):
        return np.linalg.norm(np.diff(tr, 2, axis=0), axis=-1).mean()

    _, t_loose = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, temporal_rot_sigma=1e3,
                                 temporal_trans_sigma=1e3, **kw)
    _, t_smooth = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, **kw)
    assert accel(t_smooth) < 0.5 * accel(t_loose)


@pytest.mark.parametrize("n", [1, 3])
def test_short_clips(n):
    K, E = _camera(n)
    poses = _poses(n)
    kp = _keypoints(poses, np.zeros((n, 3)), K, E)
    p2, t2 = IF.fit_to_image(poses, np.zeros((n, 3)), BETAS, BODY, K, E, kp, np.ones(n, bool))
    assert np.isfinite(p2).all() and np.isfinite(t2).all()


def test_anchor_runs_let_a_planted_foot_follow_the_image_without_sliding():
    T = 10
    K, E = _camera(T)
    poses = np.repeat(_poses(1, seed=7), T, axis=0)  # standing still
    trans = np.zeros((T, 3))
    kp = _keypoints(poses, trans, K, E)
    kp[..., :2] += [25.0, 0.0]
    kp[..., :2] += np.random.default_rng(8).normal(scale=2.0, size=kp[..., :2].shape)
    runs = np.full((T, 24), -1)
    runs[:, 7] = 0  # the left ankle planted for the whole clip
    p, t = IF.fit_to_image(poses, trans, BETAS, BODY, K, E, kp, np.ones(T, bool), anchor_runs=runs)
    ankle = BODY.joints(p, BETAS, t)[:, 7]
    start = BODY.joints(poses[:1], BETAS, trans[:1])[0, 7]
    assert np.linalg.norm(ankle.mean(0) - start) > 0.04           # moved with the image as a whole
    assert np.linalg.norm(ankle - ankle.mean(0), axis=-1).max() < 0.005  # but did not slide
