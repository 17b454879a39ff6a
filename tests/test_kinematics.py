"""FK and LBS against hand-computed cases; the SMPL-layout loader (npz and chumpy-free pkl)."""
import pickle
import sys
import types

import numpy as np
import pytest

from engine.body import kinematics as K
from engine.body.model import BodyModel, load_body_model
from engine.body.skeleton import JOINT_NAMES, MIRROR, PARENTS, children
from engine.errors import EngineError


def _rz(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_skeleton_tree_is_smpl():
    assert len(JOINT_NAMES) == 24 and PARENTS[0] == -1
    assert all(PARENTS[j] < j for j in range(1, 24))  # parents come first
    assert JOINT_NAMES[PARENTS[JOINT_NAMES.index("left_wrist")]] == "left_elbow"
    assert sorted(children()[9]) == [12, 13, 14]
    assert JOINT_NAMES[MIRROR[JOINT_NAMES.index("left_elbow")]] == "right_elbow"
    assert MIRROR[0] == 0 and np.array_equal(MIRROR[MIRROR], np.arange(24))


def test_fk_chain_hand_computed():
    # A 3-joint chain along +x with unit bones; rotate joint 0 by 90° about z, joint 1 by 90°.
    parents = np.array([-1, 0, 1])
    rest = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    rots = np.stack([_rz(90), _rz(90), np.eye(3)])
    joints = K.forward_kinematics(rots, rest, trans=np.array([0, 0, 5.0]), parents=parents)
    np.testing.assert_allclose(joints, [[0, 0, 5], [0, 1, 5], [-1, 1, 5]], atol=1e-12)


def test_fk_identity_returns_rest_and_batches():
    rest = np.random.default_rng(0).normal(size=(24, 3))
    rots = np.tile(np.eye(3), (7, 24, 1, 1))
    np.testing.assert_allclose(K.forward_kinematics(rots, rest), np.broadcast_to(rest, (7, 24, 3)))


def test_lbs_hand_computed():
    # Two joints; vertex fully bound to joint 1 rotates about joint 1; a half-half vertex blends.
    parents = np.array([-1, 0])
    rest = np.array([[0.0, 0, 0], [1, 0, 0]])
    verts = np.array([[2.0, 0, 0], [1.5, 0, 0]])
    weights = np.array([[0.0, 1.0], [0.5, 0.5]])
    g = K.global_transforms(np.stack([np.eye(3), _rz(90)]), rest, parents)
    out = K.linear_blend_skinning(verts, weights, K.skinning_transforms(g, rest))
    np.testing.assert_allclose(out[0], [1, 1, 0], atol=1e-12)
    np.testing.assert_allclose(out[1], 0.5 * np.array([1.5, 0, 0]) + 0.5 * np.array([1, 0.5, 0]), atol=1e-12)


def test_axis_angle_round_trip():
    aa = np.random.default_rng(1).normal(size=(5, 24, 3)) * 0.5
    np.testing.assert_allclose(K.matrix_to_axis_angle(K.axis_angle_to_matrix(aa)), aa, atol=1e-9)


def _tiny_model():
    rng = np.random.default_rng(2)
    V = 30
    v = rng.normal(size=(V, 3))
    jreg = np.zeros((24, V))
    jreg[np.arange(24), np.arange(24)] = 1.0
    w = rng.random((V, 24))
    w /= w.sum(1, keepdims=True)
    return BodyModel(v, rng.normal(size=(V, 3, 10)) * 0.01, jreg, w, np.array([[0, 1, 2], [2, 3, 4]]), name="tiny")


def test_npz_round_trip(tmp_path):
    m = _tiny_model()
    m.save(tmp_path / "m.npz", licence="test")
    r = load_body_model(tmp_path / "m.npz")
    np.testing.assert_allclose(r.v_template, m.v_template, atol=1e-6)
    np.testing.assert_allclose(r.shapedirs, m.shapedirs, atol=1e-6)
    assert r.name == "tiny" and np.array_equal(r.parents, PARENTS)
    poses = np.random.default_rng(3).normal(size=(2, 72)) * 0.3
    np.testing.assert_allclose(r.vertices(poses, np.ones(10)), m.vertices(poses, np.ones(10)), atol=1e-5)


def test_vertices_agree_with_joints_when_bound_rigidly():
    """A vertex placed at a joint and bound only to its parent follows that joint under FK."""
    m = _tiny_model()
    m.weights = np.zeros_like(m.weights)
    m.weights[np.arange(24), PARENTS.clip(0)] = 1.0  # vertex j (== joint j) rides on its parent
    m.weights[24:, 0] = 1.0
    poses = np.random.default_rng(4).normal(size=(3, 72)) * 0.4
    trans = np.random.default_rng(5).normal(size=(3, 3))
    np.testing.assert_allclose(m.vertices(poses, trans=trans)[:, :24], m.joints(poses, trans=trans), atol=1e-9)


def test_official_pkl_layout_without_chumpy(tmp_path):
    """SMPL's .pkl pickles chumpy arrays and a scipy.sparse regressor; we read it without chumpy."""
    import scipy.sparse as sp
    m = _tiny_model()
    fake = types.ModuleType("chumpy.ch")

    class Ch:  # mimics chumpy.ch.Ch's pickled state: the array lives in 'x'
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x}

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    fake.Ch = Ch
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        raw = {"v_template": Ch(m.v_template), "shapedirs": Ch(m.shapedirs),
               "J_regressor": sp.csc_matrix(m.J_regressor), "weights": Ch(m.weights),
               "posedirs": Ch(np.zeros((30, 3, 207))), "f": m.faces.astype(np.uint32),
               "kintree_table": np.stack([np.r_[4294967295, PARENTS[1:]], np.arange(24)])}
        (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    r = load_body_model(tmp_path / "SMPL_NEUTRAL.pkl")
    np.testing.assert_allclose(r.J_regressor, m.J_regressor)
    np.testing.assert_allclose(r.shapedirs, m.shapedirs)
    assert r.posedirs.shape == (30, 3, 207)


@pytest.mark.parametrize("content,match", [(b"not a zip", "cannot read"), (None, "not found")])
def test_loader_errors(tmp_path, content, match):
    p = tmp_path / "bad.npz"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(EngineError, match=match):
        load_body_model(p)
