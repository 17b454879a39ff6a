"""The learned MediaPipe landmark convention: the shipped table, carrying it to other bodies,
the point model, and the fit recovering a known convention from detections."""
import json

import numpy as np
import pytest

from engine.body import landmarks as L
from engine.body.model import load_body_model
from engine.errors import EngineError
from engine.observe import LANDMARK_NAMES, LM
from tests.random_motions import smooth_motion
from training.data.capsule_body import capsule_body
from training.data.synth import look_at
from training.render import convention as C

BODY = load_body_model(None)
BETAS = np.array([0.5, -0.3, 0.2, 0, 0, 0, 0, 0, 0, 0.1])


def _points(body, betas, spec, poses, trans):
    """Reference: the whole mesh skinned, then the spec's weights applied."""
    v = body.vertices(poses, betas, trans)
    j = body.joints(poses, betas, trans)
    M = L.spec_matrix(spec, len(body.v_template))
    return np.einsum("lc,tcd->tld", M, np.concatenate([v, j], axis=1))


def test_shipped_convention_is_a_weighted_mix_for_every_landmark():
    table = json.loads(L.CONVENTION_PATH.read_text())
    assert table["body"] == BODY.name and table["num_vertices"] == len(BODY.v_template)
    assert set(table["landmarks"]) == set(LANDMARK_NAMES)
    for name, e in table["landmarks"].items():
        w = [x["weight"] for x in e["vertices"]] + [x["weight"] for x in e["joints"]]
        assert min(w) > 0 and sum(w) == pytest.approx(1.0, abs=1e-3), name
        assert all(0 <= x["vertex"] < len(BODY.v_template) for x in e["vertices"])
        assert e["rows"] > 1000, name          # fitted on many detections, not left at its start


@pytest.mark.parametrize("convention", ["learned", "rules"])
def test_landmark_model_equals_skinning_the_whole_mesh(convention):
    poses, trans, _ = smooth_motion(T=6, seed=3)
    got = L.LandmarkModel(BODY, BETAS, convention)(poses, trans)
    want = _points(BODY, BETAS, L.landmark_spec(BODY, BETAS, convention), poses, trans)
    np.testing.assert_allclose(got, want, atol=1e-4)      # float32 posing of the whole mesh


def test_learned_and_rule_points_differ_where_mediapipe_does():
    """On the rest pose: the learned hips lie inside the hip joints and the ankles above the
    ankle joints (the real detector's offsets in docs/detector_noise.md), by centimetres."""
    X = {c: L.LandmarkModel(BODY, None, c)(np.zeros((1, 72)))[0] for c in L.CONVENTIONS}
    d = X["learned"] - X["rules"]                          # canonical: x left, y up
    assert d[LM["left_hip"], 0] < -0.01 and d[LM["right_hip"], 0] > 0.01
    assert d[LM["left_ankle"], 1] > 0.015 and d[LM["right_ankle"], 1] > 0.015
    assert np.abs(d).max() < 0.06


def test_the_convention_carries_to_another_body():
    """On the capsule stand-in (another mesh, other vertex count) the same rule picks vertices of
    the same owning joints (where that joint owns any); every landmark stays a weighted mix summing
    to 1 near the rules' point."""
    body = capsule_body()
    spec = L.landmark_spec(body, None)
    owner = np.argmax(body.weights, axis=1)
    table = json.loads(L.CONVENTION_PATH.read_text())["landmarks"]
    for name, (kind, vi, vw, ji, jw) in spec.items():
        assert kind == "mix" and vw.sum() + jw.sum() == pytest.approx(1.0, abs=1e-3)
        assert (vi < len(body.v_template)).all()
        want = [e["joint"] for e in table[name]["vertices"]]
        assert all(owner[i] == j for i, j in zip(vi, want) if (owner == j).any())
    np.testing.assert_allclose(L.spec_matrix(spec, len(body.v_template)).sum(1), 1.0, atol=1e-3)  # shared vertices add up
    X = {c: L.LandmarkModel(body, None, c)(np.zeros((1, 72)))[0] for c in L.CONVENTIONS}
    limbs = [LM[f"{s}_{n}"] for s in ("left", "right") for n in C.LIMB]
    assert np.linalg.norm(X["learned"][limbs] - X["rules"][limbs], axis=1).max() < 0.06


def test_unknown_convention_and_unreadable_table_are_one_clear_error(tmp_path):
    with pytest.raises(EngineError, match="unknown landmark convention 'bogus'"):
        L.landmark_spec(BODY, None, "bogus")
    bad = tmp_path / "landmark_convention.json"
    bad.write_text("{not json")
    with pytest.raises(EngineError, match="cannot read the landmark convention"):
        L._convention_table(bad)


def _clip(hidden_M, seed):
    """A fake rendered clip: the body moving in front of a still camera, its 'detections' the
    hidden convention's points projected (+0.3 px noise), the truth by the rules."""
    rng = np.random.default_rng(seed)
    poses, trans, _ = smooth_motion(T=40, seed=seed)          # world Z up
    T = len(poses)
    a = np.pi / 2 * seed                                      # cameras all round the body
    c = np.array([4.0 * np.sin(a), -4.0 * np.cos(a), 1.2])
    R = look_at(c, np.array([0.0, 0.0, 1.0]))
    E = np.repeat(np.eye(4)[None], T, 0)
    E[:, :3, :3], E[:, :3, 3] = R, -R @ c
    K = np.repeat(np.array([[900.0, 0, 480], [0, 900.0, 270], [0, 0, 1]])[None], T, 0)

    def project(M):
        X = L.PointModel(BODY, np.zeros(10), M)(poses, trans)
        c = np.einsum("tij,tnj->tni", E[:, :3, :3], X) + E[:, None, :3, 3]
        x = np.einsum("tij,tnj->tni", K, c)
        return x[..., :2] / x[..., 2:], c

    uv, _ = project(hidden_M)
    truth, cam = project(L.spec_matrix(L.rule_landmark_spec(BODY), len(BODY.v_template)))
    kp = np.concatenate([uv + rng.normal(scale=0.3, size=uv.shape), np.ones(uv.shape[:2] + (1,))], -1)
    return dict(keypoints=kp, landmarks2d=truth, landmarks_cam=cam, valid=np.ones(T, bool),
                occluded=np.zeros((T, 33), bool), poses=poses, trans=trans, betas=np.zeros(10), K=K, extrinsics=E)


def test_fit_recovers_a_known_convention():
    """Detections made with a made-up convention (the left knee 3 cm in front of its joint, the
    nose 1 cm lower) are fitted back to within a few millimetres of it on the rest pose."""
    cands = C.candidates(BODY)
    v = BODY.shaped_vertices(None)
    rest = BODY.J_regressor @ v
    hidden = L.spec_matrix(L.rule_landmark_spec(BODY), len(v)).astype(np.float64)
    knee_target = rest[4] + [0.0, 0.0, 0.03]
    vi = cands["left_knee"][0]
    near = vi[np.argsort(np.linalg.norm(v[vi] - knee_target, axis=1))[:2]]
    hidden[LM["left_knee"]] = 0
    hidden[LM["left_knee"], near] = 0.5
    nose = hidden[LM["nose"]].copy()
    nose_pt = nose @ np.concatenate([v, rest])
    vn = cands["nose"][0]
    lower = vn[np.argmin(np.linalg.norm(v[vn] - (nose_pt - [0, 0.01, 0]), axis=1))]
    hidden[LM["nose"]] = 0
    hidden[LM["nose"], lower] = 1.0
    cand_M, slices = C._candidate_matrix(cands, len(v))
    parts = [C.clip_rows(_clip(hidden, s), BODY, cand_M, every=1) for s in (0, 1, 2, 3)]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    data["slices"] = slices
    weights, counts = C.fit(data, cands, log=lambda *a: None)
    table = C.convention_table(BODY, cands, weights, counts)
    learned = L.spec_matrix(L.learned_landmark_spec(BODY, None, table), len(v)) @ np.concatenate([v, rest])
    want = hidden @ np.concatenate([v, rest])
    for name in ("left_knee", "nose"):
        assert np.linalg.norm(learned[LM[name]] - want[LM[name]]) < 0.005, name
    rules = L.spec_matrix(L.rule_landmark_spec(BODY), len(v)) @ np.concatenate([v, rest])
    assert np.linalg.norm(rules[LM["left_knee"]] - want[LM["left_knee"]]) > 0.02   # it did move


def test_clip_halves_keep_both_renders_of_a_motion_together():
    assert C.half_of("01_01") == C.half_of("01_01")
    halves = [C.half_of(f"{s:02d}_{c:02d}") for s in range(1, 40) for c in range(1, 6)]
    assert 0.1 < halves.count("check") / len(halves) < 0.3
