"""engine.align.reprojection: the per-frame reprojection figure (% of the person's 2D height)."""
import numpy as np

from engine.estimate.camera import default_intrinsics
from engine.align.reprojection import reprojection_error


def _scene(T=5, K=33, seed=0):
    """Landmarks in a world rotated and shifted away from a camera, their exact projections."""
    rng = np.random.default_rng(seed)
    body = rng.uniform([-0.3, -0.9, -0.2], [0.3, 0.9, 0.2], size=(T, K, 3))
    Kmat = default_intrinsics(1080, 1920)
    E = np.tile(np.eye(4), (T, 1, 1))
    a = np.radians(30)
    E[:, :3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    E[:, :3, 3] = [0.1, -0.2, 3.5]
    world = np.einsum("ji,tnj->tni", E[0, :3, :3], body - E[0, :3, 3])   # E·world = body
    px = body[..., :2] / body[..., 2:] * Kmat[0, 0] + Kmat[:2, 2]
    kp = np.concatenate([px, np.full((T, K, 1), 0.9)], -1)
    return world, Kmat, E, kp


def test_exact_projection_gives_zero():
    world, Kmat, E, kp = _scene()
    np.testing.assert_allclose(reprojection_error(world, Kmat, E, kp), 0.0, atol=1e-9)


def test_shifted_keypoints_give_the_shift_in_percent_of_height():
    world, Kmat, E, kp = _scene()
    height = kp[..., 1].max(1) - kp[..., 1].min(1)
    shifted = kp.copy()
    shifted[..., 0] += 12.0                       # 12 px sideways: height unchanged
    np.testing.assert_allclose(reprojection_error(world, Kmat, E, shifted), 100 * 12.0 / height, rtol=1e-9)


def test_low_visibility_and_missing_frames_are_ignored():
    world, Kmat, E, kp = _scene()
    kp = kp.copy()
    kp[:, :10, 0] += 500.0                        # far off but not visible: ignored (and not in the height)
    kp[:, :10, 2] = 0.2
    world = world.copy()
    world[2] = np.nan                             # an invalid frame of the estimate
    kp[3, :, 2] = 0.0                             # a frame with nothing detected
    r = reprojection_error(world, Kmat, E, kp)
    assert np.isnan(r[2]) and np.isnan(r[3])
    np.testing.assert_allclose(r[[0, 1, 4]], 0.0, atol=1e-9)
