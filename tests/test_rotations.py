"""engine.body.rotations: the one copy of the rotation helpers the engine, the add-on and the
scripts share."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.body.rotations import continuous_quaternions, matrix_to_quat_wxyz, minimal_rotation, normalize


def test_normalize_gives_float64_unit_rows_and_keeps_zero_vectors():
    v = normalize(np.array([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0], [1e-3, -2e-3, 0.0]], np.float32))
    assert v.dtype == np.float64
    np.testing.assert_allclose(v[0], [0.6, 0.0, 0.8], atol=1e-7)
    assert np.array_equal(v[1], np.zeros(3))
    np.testing.assert_allclose(np.linalg.norm(v[[0, 2]], axis=-1), 1.0, atol=1e-7)
    np.testing.assert_allclose(normalize([[0.0, 2.0, 0.0]]), [[0.0, 1.0, 0.0]])   # lists too


def test_minimal_rotation_maps_u_onto_v_also_when_opposite():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(200, 3))
    v = rng.normal(size=(200, 3))
    v[:3] = -u[:3]                              # exactly opposite directions
    v[3] = 2.0 * u[3]                           # the same direction
    R = minimal_rotation(u, v)
    un = u / np.linalg.norm(u, axis=1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert np.allclose(np.einsum("nij,nj->ni", R, un), vn, atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(R[3], np.eye(3), atol=1e-12)
    angle = Rotation.from_matrix(R[:3]).magnitude()
    assert np.allclose(angle, np.pi)            # 180°, about an axis perpendicular to u
    axes = Rotation.from_matrix(R[:3]).as_rotvec() / np.pi
    assert np.allclose(np.sum(axes * un[:3], axis=1), 0.0, atol=1e-9)


def test_matrix_to_quat_wxyz_matches_scipy_with_w_positive():
    r = Rotation.random(500, random_state=3)
    q = matrix_to_quat_wxyz(r.as_matrix())
    xyzw = r.as_quat()
    ref = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    ref *= np.where(ref[:, :1] < 0, -1.0, 1.0)
    assert q.shape == (500, 4) and np.all(q[:, 0] >= 0)
    assert np.allclose(q, ref, atol=1e-12)


def test_continuous_quaternions_one_hemisphere_and_invalid_frames_untouched():
    q = Rotation.random(60, random_state=4).as_quat()
    q = np.repeat(q[:1], 60, 0) * np.where(np.arange(60) % 3 == 0, -1.0, 1.0)[:, None]
    valid = np.ones(60, bool)
    valid[10:15] = False
    out = continuous_quaternions(q, valid)
    idx = np.flatnonzero(valid)
    assert np.all(np.sum(out[idx[1:]] * out[idx[:-1]], axis=-1) > 0)
    assert np.array_equal(out[~valid], q[~valid])
    assert np.array_equal(np.abs(out), np.abs(q))
