"""The clean-motion stage keeps the Motion consistent: joints = FK(poses) + trans, camera follows."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.body.kinematics import axis_angle_to_matrix, forward_kinematics
from engine.camera import project, world_to_camera
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
