"""The shipped seed-2 weights (engine/data/temporal): they load, give the documented shapes and
valid rotations, and move a real observation's IK prior towards the truth (they are trained)."""
import json

import numpy as np
import onnxruntime as ort
import pytest

from engine.estimate import temporal
from engine.estimate.network_inputs import NUM_FEATURES, PRIOR_DIM

SHIPPED = temporal.SHIPPED_DIR


def test_shipped_weights_are_present_and_small():
    for name in (temporal.TEMPORAL_FILE, temporal.PRVIPE_FILE):
        f = SHIPPED / name
        assert f.is_file(), f"{f} missing"
        assert f.stat().st_size < 10 * 2 ** 20
    assert (SHIPPED / "MODEL_CARD.md").is_file()


def test_shapes_and_orthonormal_rotations():
    runner = temporal.TemporalRunner(SHIPPED, device="cpu")
    meta = runner.session.get_modelmeta().custom_metadata_map
    assert meta["format"] == "mocap-temporal/1" and json.loads(meta["model_args"])["use_ik_prior"]
    rng = np.random.default_rng(0)
    T = 75                                     # not a multiple of the window: stitching runs
    feats = rng.normal(0, 0.3, (T, NUM_FEATURES)).astype(np.float32)
    mu, sig = runner.embed(rng.normal(0, 0.3, (T, 99)).astype(np.float32))
    assert mu.shape == (T, 32) and (sig > 0).all()
    prior = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (T, 24))
    assert prior.shape == (T, PRIOR_DIM)
    out = runner.predict(feats, mu, sig, np.zeros((T, 135), np.float32), prior)
    assert out["rot6d"].shape == (T, 24, 6) and out["betas"].shape == (10,) and out["cam"].shape == (T, 3)
    R = temporal.rot6d_to_matrix(out["rot6d"])
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-4)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-4)
    # the raw session too (batch of windows, as the runtime calls it)
    sess = ort.InferenceSession(str(SHIPPED / temporal.TEMPORAL_FILE), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert names == ["features", "prvipe_mu", "prvipe_sigma", "homography", "ik_prior"]


def test_trained_model_beats_its_own_input_on_a_held_out_clip():
    """Untrained, the model would return the IK prior exactly; trained, its joints are closer to
    the truth than the prior's on a held-out subject's clip (CMU 16_01, an H1 subject)."""
    from conftest import shared_path
    from engine.body.kinematics import forward_kinematics
    from engine.estimate.network_inputs import ik_prior
    from training.data.bvh import read_bvh
    from training.data.bvh_to_smpl import default_body, retarget_bvh
    from training.data.synth import Synthesizer, to_observations
    body = default_body()
    r = retarget_bvh(read_bvh(shared_path("data", "cmu", "bvh", "16", "16_01.bvh")), body)
    p, t, b = r["poses"][:90], r["trans"][:90], r["betas"]
    s = Synthesizer(body)(p, t, b, np.random.default_rng(5), camera="tripod", render=False)
    obs = to_observations(s)
    obs.homographies = s["homographies"].astype(np.float64)
    pred = temporal.predict_observations(obs, temporal.get_runner(SHIPPED, "cpu"), float(np.median(s["K"][:, 0, 0])),
                                         prior_blend=0.0)   # the network alone
    rest = body.rest_joints(np.zeros(10))
    ok = obs.valid
    gt = s["joints_cam"][ok].astype(np.float64)

    def err(rot6d):
        j = forward_kinematics(temporal.rot6d_to_matrix(rot6d[ok]), rest)
        j = j - j[:, :1]
        g = gt - gt[:, :1]
        return np.linalg.norm(j - g, axis=-1).mean()
    prior = ik_prior(obs.world, obs.keypoints[..., 2]).reshape(-1, 24, 6)
    assert err(pred["rot6d"]) < err(prior), (err(pred["rot6d"]), err(prior))
