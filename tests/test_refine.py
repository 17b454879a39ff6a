"""engine.estimate.refine (numpy + onnxruntime): the run-time silhouette crop, and a tiny exported untrained
D2A-HMR network end to end on synthetic observations. Its residual heads start at zero, so the
refined motion must be the temporal estimate itself. (Random weights: plumbing only.)

The open body is used instead of the capsule stand-in: the refinement network's coarse vertex set
is defined on the open body's mesh."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.estimate import refine as R  # noqa: E402
from engine.estimate import temporal  # noqa: E402
from engine.estimate.motion_fields import MOTION_FIELDS  # noqa: E402
from engine.body import load_body_model  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from random_motions import smooth_motion  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(d_model=32, heads=2, enc_layers=1, dec_layers=1, ffn_mult=2, dropout=0.0)


def _box_keypoints(x0, y0, x1, y1, n=33):
    """33 keypoints spread over a box (corners included), all visible."""
    rng = np.random.default_rng(0)
    kp = np.ones((n, 3))
    kp[:, 0] = rng.uniform(x0, x1, n)
    kp[:, 1] = rng.uniform(y0, y1, n)
    kp[:4, :2] = [[x0, y0], [x1, y1], [x0, y1], [x1, y0]]
    return kp


def test_silhouette_crop_of_a_hand_made_mask():
    # frame 1600×900 → mask 160×90 (0.1 px per px); keypoints' box x 700..900, y 300..700:
    # crop = square of side 1.2 × 400 = 480 centred at (800, 500): x 560..1040, y 260..740
    kp = _box_keypoints(700, 300, 900, 700)
    np.testing.assert_allclose(R.crop_boxes(kp[None])[0], [560, 260, 1040, 740])
    mask = np.zeros((90, 160), np.uint8)
    mask[30:70, 70:90] = 255                        # the person: x 700..900, y 300..700 in the frame
    crop = R.silhouette_crop(mask, (1600, 900), kp, size=56)
    assert crop.shape == (56, 56) and crop.dtype == np.float32
    # the rectangle lands at x (700−560)/480·56 = 16.3 .. 39.7, y 4.7 .. 51.3 (crop pixels)
    assert (crop[6:50, 18:38] > 0.99).all()
    assert (crop[:, :15] == 0).all() and (crop[:, 41:] == 0).all()
    assert (crop[:4] == 0).all() and (crop[53:] == 0).all()
    assert abs(crop.sum() - (51.33 - 4.67) * (39.67 - 16.33)) < 25     # area preserved (bilinear)


def test_crop_ignores_unseen_keypoints_and_undetected_frames():
    kp = _box_keypoints(700, 300, 900, 700)
    kp[5] = [10.0, 10.0, 0.05]                      # a wild low-visibility landmark: ignored
    bad = np.full((33, 3), np.nan)                  # an undetected frame
    boxes = R.crop_boxes(np.stack([kp, bad]))
    np.testing.assert_allclose(boxes[0], [560, 260, 1040, 740])
    assert np.isnan(boxes[1]).all()
    masks = np.full((2, 90, 160), 255, np.uint8)
    crops = R.silhouette_crops(masks, (1600, 900), np.stack([kp, bad]), 56)
    assert (crops[0] > 0.99).all() and (crops[1] == 0).all()


def test_missing_weights_are_a_clear_error(tmp_path):
    assert not R.available(tmp_path)
    with pytest.raises(EngineError, match="d2a.onnx"):
        R.D2ARunner(tmp_path)


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def weights(tmp_path_factory, body):
    """A folder with a tiny temporal model, its Pr-VIPE and a tiny untrained D2A network."""
    from training.d2a.coarse_mesh_file import load_coarse_mesh
    from training.d2a.coarse_mesh import subset
    from training.d2a.model import D2AHMR
    from training.d2a.export import export_d2a
    from training.temporal.export import export_prvipe, export_temporal
    from training.prvipe.model import PrVIPE
    from training.temporal.model import TemporalModel
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    m = TemporalModel(hidden=16, part_channels=8)
    for h in m.heads:
        h.weight.data.normal_(0, 0.05)
    export_temporal(m, d / "temporal.onnx", {"window": 8, "overlap": 4, "uses_prvipe": 1})
    export_prvipe(PrVIPE(width=32), d / "prvipe.onnx")
    export_d2a(D2AHMR(body, subset(load_coarse_mesh(), body, 48), **TINY), d / "d2a.onnx")
    return d


def _observations(body, T=12, seed=0):
    from training.data.synth import Synthesizer, to_observations
    p, t, b = smooth_motion(T, seed)
    s = Synthesizer(body)(p, t, b, np.random.default_rng(seed), camera="tripod")
    obs = to_observations(s)
    obs.homographies = s["homographies"].astype(np.float64)
    return obs


def test_untrained_refinement_returns_the_temporal_estimate(weights, body):
    obs = _observations(body)
    obs.valid[4] = False
    obs.keypoints[4] = np.nan
    obs.world[4] = np.nan
    trun = temporal.TemporalRunner(weights, device="cpu")
    runner = R.D2ARunner(weights, device="cpu")
    assert runner.size == 56 and R.available(weights)
    t = temporal.fit(obs, body, runner=trun)
    r = R.refine(obs, body, t, runner=runner)
    T = obs.num_frames
    assert set(r) == set(t) - {"weak_camera"}                      # the same Motion fields
    assert set(r) == set(MOTION_FIELDS)
    assert r["poses"].shape == (T, 72) and r["joints"].shape == (T, 24, 3) and r["joint_sigma"].shape == (T, 24)
    ok = r["valid"]
    assert not ok[4] and ok.sum() == obs.valid.sum() and np.isnan(r["joints"][4]).all()
    # zero residual heads: the refined joints are the temporal ones, and so is the fitted motion
    np.testing.assert_allclose(r["joints"][ok], t["joints"][ok], atol=1e-4)
    np.testing.assert_allclose(r["trans"][ok], t["trans"][ok], atol=1e-4)
    np.testing.assert_allclose(r["camera_extrinsics"], t["camera_extrinsics"])
    # σ is the network's (its head starts at 0.1 m); the pelvis keeps the temporal root's σ
    assert np.all(np.abs(r["joint_sigma"][ok][:, 1:] - 0.1) < 0.02)
    np.testing.assert_allclose(r["joint_sigma"][ok][:, 0], t["joint_sigma"][ok][:, 0])
    # the Motion contract: joints = FK(poses, rest(betas)) + trans
    np.testing.assert_allclose(body.joints(r["poses"][ok], r["betas"], r["trans"][ok]), r["joints"][ok], atol=1e-6)


def test_sigma_scale_scales_the_motion_sigma_not_the_fit(weights, body):
    """The export's ``sigma_scale`` (σ calibration) scales the Motion's σ (but the pelvis's, the
    temporal root σ: ``motion_sigma``); the rotation fit weighs by the network's own σ, so the
    pose does not change with it."""
    obs = _observations(body, T=8, seed=2)
    trun = temporal.TemporalRunner(weights, device="cpu")
    runner = R.D2ARunner(weights, device="cpu")
    assert runner.sigma_scale == 1.0                                # no calibration stored
    t = temporal.fit(obs, body, runner=trun)
    a = R.refine(obs, body, t, runner=runner)
    runner.sigma_scale = 0.06
    try:
        b = R.refine(obs, body, t, runner=runner)
    finally:
        runner.sigma_scale = 1.0
    ok = a["valid"]
    np.testing.assert_allclose(b["joint_sigma"][ok][:, 1:], 0.06 * a["joint_sigma"][ok][:, 1:], rtol=1e-6)
    np.testing.assert_allclose(b["joint_sigma"][ok][:, 0], t["joint_sigma"][ok][:, 0])
    np.testing.assert_allclose(b["poses"][ok], a["poses"][ok])


def test_motion_sigma_takes_the_root_from_the_temporal_estimate():
    rel = np.array([[0.001, 0.04, 0.03]])
    root = np.array([[0.03, 0.5, 0.5]])                  # only the root column is used
    np.testing.assert_allclose(R.motion_sigma(rel, root), [[0.03, 0.04, 0.03]])


def test_chunked_refinement_equals_one_pass(weights, body, monkeypatch):
    """Long clips run the crops and the network in chunks of CHUNK valid frames: the same
    result as one pass (here chunks of 3 across an invalid frame)."""
    obs = _observations(body, T=10, seed=3)
    obs.valid[5] = False
    obs.keypoints[5] = np.nan
    trun = temporal.TemporalRunner(weights, device="cpu")
    runner = R.D2ARunner(weights, device="cpu")
    t = temporal.fit(obs, body, runner=trun)
    one = R.refine(obs, body, t, runner=runner)
    monkeypatch.setattr(R, "CHUNK", 3)
    calls = []
    real = runner.predict
    monkeypatch.setattr(runner, "predict", lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    chunked = R.refine(obs, body, t, runner=runner)
    assert calls == [3, 3, 3]
    for k in ("joints", "joint_sigma", "poses"):
        np.testing.assert_allclose(chunked[k], one[k], rtol=1e-6, atol=1e-7, equal_nan=True)


def test_camera_frame_rotations_undo_the_temporal_world_turn(weights, body):
    """The 6D input rebuilt from the Motion poses is what the temporal model predicted."""
    obs = _observations(body, T=10, seed=1)
    trun = temporal.TemporalRunner(weights, device="cpu")
    t = temporal.fit(obs, body, runner=trun)
    pred = temporal.predict_observations(obs, trun, t["camera_intrinsics"][0, 0])
    np.testing.assert_allclose(t["weak_camera"], pred["cam"])       # what the refinement takes
    Rm, six = R.camera_frame_rot6d(t["poses"], t["camera_extrinsics"])
    ok = t["valid"]
    np.testing.assert_allclose(Rm[ok], temporal.rot6d_to_matrix(pred["rot6d"])[ok], atol=1e-5)
    np.testing.assert_allclose(temporal.rot6d_to_matrix(six)[ok], Rm[ok], atol=1e-9)


class _Shifted:
    """Wraps the runner: the left wrist moved 5 cm along camera x with a confident σ (1 cm)."""

    def __init__(self, runner):
        self.runner, self.size = runner, runner.size

    def predict(self, *a):
        out = self.runner.predict(*a)
        out["joints"][:, 20, 0] += 0.05
        out["sigma"][:, 20] = 0.01
        return out


def test_confident_refined_joints_move_the_fitted_motion(weights, body):
    from engine.body.skeleton import JOINT_INDEX as J
    assert J["left_wrist"] == 20
    obs = _observations(body, T=8, seed=2)
    trun = temporal.TemporalRunner(weights, device="cpu")
    t = temporal.fit(obs, body, runner=trun)
    r = R.refine(obs, body, t, runner=_Shifted(R.D2ARunner(weights, device="cpu")))
    ok = r["valid"]
    E = t["camera_extrinsics"][ok, :3, :3]
    d = np.einsum("tij,tnj->tni", E, r["joints"][ok] - t["joints"][ok])      # camera axes
    assert np.all(np.abs(d[:, 20, 0] - 0.05) < 0.01)                        # the wrist followed
    assert np.abs(d[:, [J["left_ankle"], J["right_ankle"]]]).max() < 0.005   # the legs held
    assert np.linalg.norm(d[:, J["head"]], axis=-1).max() < 0.03              # the trunk gave a little


def test_pipeline_refines_after_the_temporal_model(weights, tmp_path, monkeypatch):
    """With d2a.onnx beside the temporal model the engine refines by default; --no-refine (and
    the baseline) skip it; the Motion file says which ran."""
    from engine.pipeline import PipelineOptions, run
    from test_observe import CountingDetector
    from test_video import write_clip
    monkeypatch.setenv(temporal.WEIGHTS_ENV, str(weights))
    clip = write_clip(tmp_path / "c.mp4", [np.full((120, 160, 3), 60 + 10 * i, np.uint8) for i in range(10)])
    opts = dict(use_cache=False, recover_gaps=0, smoothing="none", foot_lock=False)
    m = run(clip, PipelineOptions(**opts), detector=CountingDetector())
    assert m.estimator == "temporal+d2a" and m.valid.all() and np.isfinite(m.joints).all()
    assert run(clip, PipelineOptions(refine=False, **opts), detector=CountingDetector()).estimator == "temporal"
    assert run(clip, PipelineOptions(estimator="baseline", **opts), detector=CountingDetector()).estimator == "baseline"
