"""Evaluation metrics on hand-made cases (always run)."""
import numpy as np
from scipy.spatial.transform import Rotation

from training.eval.metrics import accel_error, mpjpe, pa_mpjpe, per_joint_errors, procrustes_align, pve


def _pose(rng, T=5, J=24):
    return rng.normal(scale=0.3, size=(T, J, 3))


def test_mpjpe_of_a_translated_copy_is_zero_and_offset_is_measured():
    rng = np.random.default_rng(0)
    g = _pose(rng)
    assert mpjpe(g + [1.0, 2.0, 3.0], g) < 1e-12
    p = g.copy()
    p[:, 5] += [0.03, 0.04, 0.0]         # one joint off by 5 cm
    assert np.isclose(mpjpe(p, g), 0.05 / 24)
    assert np.isclose(per_joint_errors(p, g)[:, 5].mean(), 0.05)


def test_pa_mpjpe_of_a_rotated_scaled_translated_copy_is_zero():
    rng = np.random.default_rng(1)
    g = _pose(rng)
    R = Rotation.random(5, random_state=2).as_matrix()
    p = 1.7 * np.einsum("tij,tnj->tni", R, g) + rng.normal(size=(5, 1, 3))
    assert pa_mpjpe(p, g) < 1e-9
    assert mpjpe(p, g) > 0.05
    np.testing.assert_allclose(procrustes_align(p, g), g, atol=1e-9)


def test_pa_mpjpe_does_not_fix_a_reflection():
    rng = np.random.default_rng(3)
    g = _pose(rng)
    assert pa_mpjpe(g * [-1, 1, 1], g) > 0.01


def test_accel_error_of_constant_velocity_sequences_is_zero():
    rng = np.random.default_rng(4)
    g0, p0 = _pose(rng, 1), _pose(rng, 1)
    t = np.arange(20)[:, None, None]
    g = g0 + t * rng.normal(size=(1, 24, 3)) * 0.01
    p = p0 + t * rng.normal(size=(1, 24, 3)) * 0.01
    assert accel_error(p, g) < 1e-12
    q = p.copy()
    q[10, 3] += [0.01, 0, 0]              # a 1 cm blip: accel error spikes around frame 10
    assert accel_error(q, g) > 0


def test_masking_and_pve():
    rng = np.random.default_rng(5)
    g = _pose(rng, 6)
    p = g.copy()
    p[2] = np.nan
    valid = np.ones(6, bool)
    valid[2] = False
    assert mpjpe(p, g, valid=valid) < 1e-12
    assert mpjpe(p, g) < 1e-12            # NaN frames are skipped without a mask
    v = rng.normal(size=(6, 100, 3))
    assert pve(v + 1.0, v, g[:, 0] + 1.0, g[:, 0]) < 1e-12
    assert np.isclose(mpjpe(g + 0.1, g, root=[1, 2]), 0.0)
