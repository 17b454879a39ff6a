"""Refined joints (+σ) → SMPL-24 rotations by least squares (engine.estimate.joint_fit)."""
import numpy as np
import pytest

from engine.body import kinematics as K, load_body_model
from engine.body.skeleton import JOINT_INDEX
from engine.estimate.joint_fit import _pose, fit_frame, fit_sequence, fk_jacobian

LEAVES = [10, 11, 15, 22, 23]          # feet, head, hands: their rotation moves no joint


@pytest.fixture(scope="module")
def rest():
    return load_body_model().rest_joints(np.linspace(-1, 1, 10))


def _truth(rest, seed, scale=0.4):
    rng = np.random.default_rng(seed)
    rv = rng.normal(scale=scale, size=(24, 3))
    tr = rng.normal(scale=0.3, size=3)
    return rv, tr, _pose(rv, rest, tr)[1], rng


def test_analytic_jacobian_matches_finite_differences(rest):
    rv, tr, _, _ = _truth(rest, 0, 0.8)
    _, J = fk_jacobian(rv, rest, tr)
    x = np.concatenate([rv.ravel(), tr])
    num = np.zeros_like(J)
    for i in range(75):
        d = np.zeros(75)
        d[i] = 1e-6
        num[:, i] = (_pose((x + d)[:72].reshape(24, 3), rest, (x + d)[72:])[1]
                     - _pose((x - d)[:72].reshape(24, 3), rest, (x - d)[72:])[1]).ravel() / 2e-6
    np.testing.assert_allclose(J, num, atol=1e-7)


def test_recovers_known_pose_from_exact_joints(rest):
    rv, tr, joints, rng = _truth(rest, 1)
    init = rv + rng.normal(scale=0.2, size=rv.shape)           # the temporal estimate: 0.2 rad off
    fit_rv, fit_tr, fitted, res = fit_frame(joints, np.full(24, 0.01), K.axis_angle_to_matrix(init), rest)
    assert np.abs(fitted - joints).max() < 1e-3                # metres
    np.testing.assert_allclose(fit_tr, tr, atol=2e-3)
    # the rotations that joints determine are recovered: the global orientations of pelvis and
    # spine3 (several children each; a local rotation can trade twist with its parent's)
    G_fit, G_true = _pose(fit_rv, rest, fit_tr)[0], _pose(rv, rest, tr)[0]
    for j in (0, 9):
        d = K.matrix_to_axis_angle(G_fit[j].T @ G_true[j])
        assert np.linalg.norm(d) < 0.01, (j, d)
    # what joints cannot tell stays at the temporal estimate
    for j in LEAVES:
        d = K.matrix_to_axis_angle(K.axis_angle_to_matrix(fit_rv[j]).T @ K.axis_angle_to_matrix(init[j]))
        assert np.linalg.norm(d) < 1e-4
    assert np.abs(_pose(fit_rv, rest, fit_tr)[1] - fitted).max() < 1e-12


def test_sigma_down_weights_an_outlier_joint(rest):
    rv, tr, joints, rng = _truth(rest, 2)
    bad = JOINT_INDEX["left_wrist"]
    target = joints.copy()
    target[bad] += np.array([0.15, -0.1, 0.1])                 # an 20 cm outlier
    init = K.axis_angle_to_matrix(rv + rng.normal(scale=0.1, size=rv.shape))
    others = np.arange(24) != bad
    sig = np.full(24, 0.03)
    _, _, p_same, _ = fit_frame(target, sig, init, rest)
    sig[bad] = 2.0                                             # the network says: unsure there
    _, _, p_down, _ = fit_frame(target, sig, init, rest)
    err = lambda p: np.linalg.norm(p - joints, axis=-1)        # noqa: E731  (vs the true joints)
    assert err(p_down)[others].max() < 0.002
    assert err(p_down)[others].max() < 0.5 * err(p_same)[others].max()
    assert err(p_down)[bad] < 0.5 * err(p_same)[bad]           # it no longer chases the outlier
    # an ignored joint (σ = inf or NaN target) does not break the fit
    sig[bad] = np.inf
    _, _, p_inf, _ = fit_frame(target, sig, init, rest)
    assert err(p_inf)[others].max() < 0.002


def test_fit_sequence(rest):
    T = 4
    truths = [_truth(rest, 10 + t, 0.3) for t in range(T)]
    joints = np.stack([t[2] for t in truths])
    joints[2] = np.nan                                         # an undetected frame
    init = np.stack([t[0] for t in truths]) + 0.05
    out = fit_sequence(joints, np.full((T, 24), 0.02), init.reshape(T, 72), rest)
    assert out["poses"].shape == (T, 72) and out["trans"].shape == (T, 3) and out["joints"].shape == (T, 24, 3)
    assert np.isnan(out["trans"][2]).all() and np.allclose(out["poses"][2], init[2].ravel())
    ok = [0, 1, 3]
    assert np.nanmax(np.abs(out["joints"][ok] - joints[ok])) < 1e-3
    assert (out["rms"][ok] < 0.1).all()


def test_batched_fit_matches_the_per_frame_fit(rest):
    """fit_frames (batched LM, what fit_sequence uses) reaches the same minimum as scipy's
    per-frame fit_frame, also with noisy targets, an ignored joint and uneven σ."""
    from engine.estimate.joint_fit import fit_frames
    T = 6
    truths = [_truth(rest, 30 + t, 0.5) for t in range(T)]
    rng = np.random.default_rng(5)
    target = np.stack([t[2] for t in truths]) + rng.normal(scale=0.02, size=(T, 24, 3))
    sigma = rng.uniform(0.01, 0.2, (T, 24))
    sigma[1, 7] = np.inf
    init = np.stack([t[0] for t in truths]) + rng.normal(scale=0.2, size=(T, 24, 3))
    rv, tr, p, res = fit_frames(target, sigma, init, rest)
    for t in range(T):
        _, _, p_ref, r_ref = fit_frame(target[t], sigma[t], init[t], rest)
        cost_ref = float(np.sum(r_ref.fun ** 2))
        cost = float(np.sum(res[t] ** 2) + np.sum((rv[t] - init[t]) ** 2))      # prior σ = 1 rad
        assert cost <= cost_ref * (1 + 1e-3) + 1e-9, (t, cost, cost_ref)
        assert np.abs(p[t] - p_ref).max() < 5e-3
