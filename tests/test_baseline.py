"""The analytic inverse kinematics (engine.estimate.ik, the baseline's) recovers known poses from joint positions."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.estimate.ik import rotations_from_joint_positions
from engine.body import kinematics as K
from engine.body.skeleton import JOINT_INDEX as J
from engine.estimate.camera import CAMERA_TO_WORLD, default_intrinsics, project, solve_translation

# A plausible T-pose skeleton (metres, canonical frame: Y up, facing +Z, left +X) with straight
# limbs, as the IK's hinge model assumes (a bent rest limb would tilt the observed bend plane).
from training.data.capsule_body import REST  # noqa: E402


def _random_pose(rng, T):
    """Poses within the IK's assumptions: pure-hinge elbows/knees, and a straight spine (the
    fit takes the pelvis's tilt from the trunk, since MediaPipe gives no point for it), and
    still collars (the chest's orientation is read from the shoulders)."""
    rv = rng.normal(scale=0.35, size=(T, 24, 3))
    rv[:, [J["spine1"], J["spine2"], J["spine3"], J["left_collar"], J["right_collar"]]] = 0.0
    for side in ("left", "right"):  # elbows flex forward, knees backward, about ⟂ hinges
        for hinge, top, bottom, bend in (("elbow", "shoulder", "elbow", [0, 0, 1]),
                                         ("knee", "hip", "knee", [0, 0, -1])):
            axis = np.cross(REST[J[f"{side}_{bottom}"]] - REST[J[f"{side}_{top}"]], bend)
            axis /= np.linalg.norm(axis)
            rv[:, J[f"{side}_{hinge}"]] = axis * rng.uniform(0.5, 2.0, (T, 1))
    for leaf in ("head", "left_foot", "right_foot", "left_hand", "right_hand"):
        rv[:, J[leaf]] = 0.0
    rv[:, 0] = Rotation.random(T, random_state=1).as_rotvec()
    return K.axis_angle_to_matrix(rv)


def test_ik_reproduces_joint_positions_and_hinges():
    rng = np.random.default_rng(0)
    truth = _random_pose(rng, 50)
    targets = K.forward_kinematics(truth, REST)
    G = K.global_transforms(truth, REST)[..., :3, :3]
    fitted = rotations_from_joint_positions(targets, REST, head_frame=G[:, J["head"]])
    np.testing.assert_allclose(K.forward_kinematics(fitted, REST), targets, atol=1e-6)
    for name in ("pelvis", "spine1", "spine3", "left_collar", "left_shoulder", "right_elbow", "left_hip", "right_knee"):
        np.testing.assert_allclose(fitted[:, J[name]], truth[:, J[name]], atol=1e-5, err_msg=name)


def test_solve_translation_recovers_depth():
    rng = np.random.default_rng(1)
    K_ = default_intrinsics(1280, 720)
    pts = rng.normal(scale=0.4, size=(4, 33, 3))
    t = np.array([[0.3, -0.2, 4.0], [-1, 0.5, 7], [0, 0, 2.5], [2, 1, 12]])
    px = project(pts + t[:, None], K_)
    np.testing.assert_allclose(solve_translation(pts, px, np.ones((4, 33)), K_), t, atol=1e-9)


def test_camera_to_world_is_a_proper_rotation_with_z_up():
    assert np.isclose(np.linalg.det(CAMERA_TO_WORLD), 1.0)
    np.testing.assert_allclose(CAMERA_TO_WORLD @ [0, -1, 0], [0, 0, 1])  # image up → world up


def test_spine_bend_is_shared_by_the_three_spine_joints():
    rng = np.random.default_rng(2)
    truth = _random_pose(rng, 20)
    bend = Rotation.from_rotvec(rng.normal(scale=0.1, size=(20, 3))).as_matrix()  # ~10° a joint
    truth[:, [J["spine1"], J["spine2"], J["spine3"]]] = bend[:, None]
    targets = K.forward_kinematics(truth, REST)
    fitted = rotations_from_joint_positions(targets, REST)
    g_true = K.global_transforms(truth, REST)[..., :3, :3]
    g_fit = K.global_transforms(fitted, REST)[..., :3, :3]
    # The chest, limbs and their positions are still recovered; only the split may differ.
    np.testing.assert_allclose(g_fit[:, J["spine3"]], g_true[:, J["spine3"]], atol=0.05)
    err = np.linalg.norm(K.forward_kinematics(fitted, REST) - targets, axis=-1)
    assert err.max() < 0.05, err.max()  # the pelvis tilt is read from the trunk: a bounded bias
