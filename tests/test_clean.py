"""The clean-motion stage keeps the Motion consistent: joints = FK(poses) + trans, camera follows."""
import copy

import numpy as np
from scipy.spatial.transform import Rotation

from engine.body.kinematics import axis_angle_to_matrix, forward_kinematics
from engine.estimate.camera import project, world_to_camera
from engine.clean import apply_world_transform, clean_motion
from test_baseline import REST
from test_motion import make_motion


def _consistent_motion():
    m = make_motion(T=40)
    v = m.valid
    rot = axis_angle_to_matrix(np.nan_to_num(m.poses).reshape(-1, 24, 3))
    m.joints = forward_kinematics(rot, REST, np.nan_to_num(m.trans))
    m.joints[~v] = np.nan
    m.camera_extrinsics = np.tile(np.eye(4), (40, 1, 1))
    m.camera_extrinsics[:, :3, 3] = [0, 0, 6.0]
    m.camera_intrinsics = np.array([[800.0, 0, 320], [0, 800, 180], [0, 0, 1]])
    return m.astype_file()


def test_world_transform_keeps_fk_and_the_image():
    m = _consistent_motion()
    R = Rotation.from_euler("xy", [7, -4], degrees=True).as_matrix()
    out = apply_world_transform(m, R, 0.3, REST)
    v = out.valid
    fk = forward_kinematics(axis_angle_to_matrix(out.poses[v].reshape(-1, 24, 3).astype(np.float64)),
                            REST, out.trans[v].astype(np.float64))
    np.testing.assert_allclose(out.joints[v], fk, atol=1e-4)
    np.testing.assert_allclose(out.joints[v], m.joints[v] @ R.T + [0, 0, 0.3], atol=1e-4)
    px = lambda mm: project(world_to_camera(mm.joints[v].astype(np.float64), mm.camera_extrinsics[v].astype(np.float64)),  # noqa: E731
                            mm.camera_intrinsics.astype(np.float64))
    np.testing.assert_allclose(px(out), px(m), atol=1e-2)  # the picture is unchanged


def test_clean_motion_keeps_invalid_frames_invalid_and_fk_consistent():
    m = _consistent_motion()
    out = clean_motion(m, REST, "light")
    assert np.array_equal(out.valid, m.valid) and np.isnan(out.poses[~m.valid]).all()
    v = out.valid
    fk = forward_kinematics(axis_angle_to_matrix(out.poses[v].reshape(-1, 24, 3).astype(np.float64)),
                            REST, out.trans[v].astype(np.float64))
    np.testing.assert_allclose(out.joints[v], fk, atol=1e-3)


def _standing_motion_with_root_jitter(T=90, seed=0):
    """A person standing still (both feet planted) seen by a camera 6 m away along +y; the
    root jitters along the camera ray as monocular depth does (σ 4 cm)."""
    from test_footlock import _walk_in_place
    rng = np.random.default_rng(seed)
    poses, trans = _walk_in_place(T=T, skate=0.0)
    poses = poses.reshape(T, 24, 3).copy()
    poses[:, 1:] = 0.0                                   # stand straight: both heels planted
    poses = poses.reshape(T, 72)
    truth = forward_kinematics(axis_angle_to_matrix(poses.reshape(-1, 24, 3)), REST, trans)
    trans[:, 2] -= truth[:, [7, 8], 2].min() - 0.08     # soles on z = 0
    noisy = trans + np.c_[np.zeros(T), rng.normal(0, 0.04, T), np.zeros(T)]
    m = make_motion(T=T)
    m.valid[:] = True
    m.poses, m.trans = poses, noisy
    m.joints = forward_kinematics(axis_angle_to_matrix(poses.reshape(-1, 24, 3)), REST, noisy)
    m.joint_sigma = np.full((T, 24), 0.04)
    E = np.tile(np.eye(4), (T, 1, 1))
    E[:, :3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]   # looking along +y, level
    E[:, :3, 3] = E[:, :3, :3] @ np.array([0, 6.0, -1.0])
    m.camera_extrinsics = E
    m.camera_intrinsics = np.array([[1000.0, 0, 640], [0, 1000, 360], [0, 0, 1]])
    return m.astype_file()


def test_clean_motion_plants_still_feet_and_removes_skating():
    from engine.clean.footlock import skating
    m = _standing_motion_with_root_jitter()
    planted = np.ones((m.num_frames, 4), bool)
    raw = skating(m.joints.astype(np.float64), planted, m.fps)
    smoothed = clean_motion(m, REST, "light", lock=False)
    out = clean_motion(m, REST, "light")
    assert out.contacts[:, [0, 2]].mean() > 0.8         # both heels found planted
    after = skating(out.joints.astype(np.float64), planted, m.fps)
    assert after < 0.3 * skating(smoothed.joints.astype(np.float64), planted, m.fps)
    assert after < 0.05 * raw
    # the pose is untouched by the root lock and the soles sit on the floor
    np.testing.assert_allclose(out.joints[:, 7:9, 2], 0.08, atol=0.02)
    np.testing.assert_allclose(out.joints - out.joints[:, :1], smoothed.joints - smoothed.joints[:, :1], atol=0.02)


def test_clean_motion_decides_the_floor_wherever_the_estimate_stands():
    """The estimators leave the body where their camera puts it; clean-up finds the floor. The
    same motion lifted 1.3 m (world and camera together) comes out the same: contacts, heights
    above the floor, and the body in the camera (the levelling rotation turns about the world
    origin, so the world itself may slide sideways, its camera with it)."""
    m = _standing_motion_with_root_jitter()
    lifted = copy.deepcopy(m)
    lifted.trans[:, 2] += 1.3
    lifted.joints[..., 2] += 1.3
    E = lifted.camera_extrinsics.astype(np.float64)
    E[:, :3, 3] -= E[:, :3, :3] @ np.array([0.0, 0.0, 1.3])        # the camera rises with it
    lifted.camera_extrinsics = E.astype(np.float32)
    a, b = clean_motion(m, REST, "light"), clean_motion(lifted.astype_file(), REST, "light")
    assert a.contacts[:, [0, 2]].mean() > 0.8
    np.testing.assert_array_equal(b.contacts, a.contacts)
    np.testing.assert_allclose(b.joints[..., 2], a.joints[..., 2], atol=1e-4)
    np.testing.assert_allclose(world_to_camera(b.joints, b.camera_extrinsics),
                               world_to_camera(a.joints, a.camera_extrinsics), atol=1e-4)


def test_lowest_point_is_a_percentile_of_the_lowest_soles():
    from engine.clean.contacts import CONTACT_JOINTS, SOLE_OFFSET, lowest_point
    j = np.zeros((100, 24, 3))
    j[:, CONTACT_JOINTS, 2] = SOLE_OFFSET + 0.5              # soles 0.5 m up
    j[:3, CONTACT_JOINTS[0], 2] = -2.0                       # three frames dip far below
    valid = np.ones(100, bool)
    valid[50] = False
    j[50] = np.nan
    assert abs(lowest_point(j, valid) - 0.5) < 1e-9
    assert abs(lowest_point(j, valid, offsets=0.0) - (0.5 + SOLE_OFFSET.min())) < 1e-9
    assert lowest_point(np.full((4, 24, 3), np.nan)) == 0.0
