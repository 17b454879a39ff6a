"""engine.estimate.temporal (numpy + onnxruntime): a tiny randomly initialised exported model runs through
the whole runtime; geometry conventions are checked with a stand-in that returns the truth.
(Random weights are for plumbing only: shipped weights must be trained.)"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.estimate import temporal  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from training.data.capsule_body import capsule_body  # noqa: E402
from training.data.synth import Synthesizer, to_observations  # noqa: E402
from training.temporal.dataset import camera_frame_rotations  # noqa: E402
from training.temporal.export import export_prvipe, export_temporal  # noqa: E402
from training.geometry import matrix_to_rot6d  # noqa: E402
from training.prvipe.model import PrVIPE  # noqa: E402
from training.temporal.model import TemporalModel  # noqa: E402
from random_motions import smooth_motion  # noqa: E402

BODY = capsule_body()


def _sample(T=21, seed=0, camera="tripod"):
    p, t, b = smooth_motion(T, seed)
    s = Synthesizer(BODY)(p, t, b, np.random.default_rng(seed), camera=camera)
    obs = to_observations(s)
    obs.homographies = s["homographies"].astype(np.float64)
    return s, obs


def _export(folder, window=8, uses_prvipe=True, ik_prior=True):
    torch.manual_seed(0)
    m = TemporalModel(hidden=16, part_channels=8, use_prvipe=uses_prvipe, use_ik_prior=ik_prior)
    for h in m.heads:
        h.weight.data.normal_(0, 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    export_temporal(m, folder / "temporal.onnx", {"window": window, "overlap": window // 2,
                                                 "uses_prvipe": int(uses_prvipe)})
    if uses_prvipe:
        export_prvipe(PrVIPE(width=32), folder / "prvipe.onnx")
    return folder


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("tiny"))


def test_window_starts_cover_the_clip():
    assert temporal.window_starts(5, 8, 4) == [0]
    for T in (8, 9, 21, 64):
        st = temporal.window_starts(T, 8, 4)
        cover = np.zeros(T, int)
        for s in st:
            cover[s:s + 8] += 1
        assert (cover >= 1).all() and st[-1] == T - 8


def test_fit_with_a_tiny_random_model(tiny_weights):
    s, obs = _sample(T=21)
    obs.valid[5] = False
    obs.keypoints[5] = np.nan
    obs.world[5] = np.nan
    runner = temporal.TemporalRunner(tiny_weights, device="cpu")
    assert runner.window == 8 and runner.providers == ["CPUExecutionProvider"]
    f = temporal.fit(obs, BODY, runner=runner)
    T = 21
    assert f["poses"].shape == (T, 72) and f["trans"].shape == (T, 3) and f["betas"].shape == (10,)
    assert f["joints"].shape == (T, 24, 3) and f["joint_sigma"].shape == (T, 24)
    assert f["camera_extrinsics"].shape == (T, 4, 4) and f["weak_camera"].shape == (T, 3)
    assert "contacts" not in f                  # decided in clean-up (engine.clean.clean_motion)
    ok = f["valid"]
    assert not ok[5] and ok.sum() == obs.valid.sum()
    assert np.isnan(f["poses"][5]).all() and np.isfinite(f["poses"][ok]).all()
    assert (f["joint_sigma"][ok] > 0).all()
    # the Motion contract: joints = FK(poses, rest(betas)) + trans
    np.testing.assert_allclose(BODY.joints(f["poses"][ok], f["betas"], f["trans"][ok]), f["joints"][ok], atol=1e-6)
    # a clip shorter than the window runs as one window; a model without Pr-VIPE needs no prvipe.onnx
    short = temporal.fit(_sample(T=5, seed=1)[1], BODY, runner=runner)
    assert short["poses"].shape == (5, 72)


def test_model_without_prvipe_or_ik_prior(tmp_path):
    d = _export(tmp_path / "np", uses_prvipe=False, ik_prior=False)
    runner = temporal.TemporalRunner(d, device="cpu")
    assert not runner.uses_ik_prior and runner.prvipe is None
    f = temporal.fit(_sample(T=12)[1], BODY, runner=runner)
    assert np.isfinite(f["joints"]).all()


def test_untrained_ik_prior_model_gives_the_analytic_ik(tmp_path):
    """Zero correction heads → the engine's output rotations are the IK prior's (root turned
    from the camera frame into the Z-up world by the output camera), checked against
    engine.estimate.network_inputs.ik_prior."""
    from engine.estimate.network_inputs import ik_prior
    from engine.body import kinematics as KK
    torch.manual_seed(0)
    d = tmp_path / "zero"
    d.mkdir()
    export_temporal(TemporalModel(hidden=16, part_channels=8, use_prvipe=False, use_ik_prior=True),
                    d / "temporal.onnx", {"window": 8, "uses_prvipe": 0})
    s, obs = _sample(T=12, seed=3)
    f = temporal.fit(obs, BODY, weights=d, device="cpu")
    prior = temporal.rot6d_to_matrix(ik_prior(obs.world, obs.keypoints[..., 2]).reshape(12, 24, 6))
    Rcam = f["camera_extrinsics"][:, :3, :3]
    prior[:, 0] = np.swapaxes(Rcam, -1, -2) @ prior[:, 0]
    got = KK.axis_angle_to_matrix(f["poses"].reshape(12, 24, 3))
    ok = f["valid"]
    assert ok.sum() >= 10
    np.testing.assert_allclose(got[ok], prior[ok], atol=1e-4)


class TruthRunner:
    """Stands in for the network: returns the true camera-frame rotations and shape."""

    def __init__(self, s):
        self.rot6d = matrix_to_rot6d(torch.as_tensor(camera_frame_rotations(s["poses"], s["extrinsics"]))).numpy()
        self.betas = s["betas"]

    uses_ik_prior = False

    def embed(self, nk):
        return np.zeros((len(nk), 32), np.float32), np.ones((len(nk), 32), np.float32)

    def predict(self, feats, mu, sig, hom, ik_prior=None):
        return {"rot6d": self.rot6d, "betas": self.betas}


@pytest.mark.parametrize("camera", ["handheld", "tripod"])
def test_true_rotations_give_true_camera_frame_joints(camera):
    s, obs = _sample(T=16, seed=2, camera=camera)
    f = temporal.fit(obs, BODY, focal=float(np.median(s["K"][:, 0, 0])), runner=TruthRunner(s))
    ok = f["valid"]
    E = f["camera_extrinsics"]
    jc = np.einsum("tij,tnj->tni", E[:, :3, :3], f["joints"]) + E[:, None, :3, 3]
    gt = s["joints_cam"].astype(np.float64)
    rc = lambda j: j - j[:, :1]  # noqa: E731
    assert np.abs(rc(jc)[ok] - rc(gt)[ok]).max() < 1e-4          # pose: exact
    depth = gt[ok, 0, 2]
    err = np.linalg.norm(jc[ok, 0] - gt[ok, 0], axis=-1)         # root position: 2D–3D solve
    assert np.median(err / depth) < 0.05


def test_missing_weights_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv(temporal.WEIGHTS_ENV, str(tmp_path / "none"))
    assert not temporal.available()
    with pytest.raises(EngineError, match="trained weights"):
        temporal.find_weights()
    from engine.pipeline import PipelineOptions, run
    with pytest.raises(EngineError, match="estimator baseline"):
        run(tmp_path / "no_video.mp4", PipelineOptions(estimator="temporal"))


def test_device_selection():
    import onnxruntime as ort
    assert temporal.providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert temporal.providers("auto")[0] == "CUDAExecutionProvider"
    else:
        assert temporal.providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(EngineError, match="CUDAExecutionProvider"):
            temporal.providers("gpu")


def test_bench_plugin_registers_temporal(tiny_weights, monkeypatch):
    import importlib
    import sys
    from training.bench import synthetic as bench
    monkeypatch.setenv(temporal.WEIGHTS_ENV, str(tiny_weights))
    monkeypatch.delitem(bench.ESTIMATORS, "temporal", raising=False)
    sys.modules.pop("training.temporal.bench", None)
    importlib.import_module(bench.PLUGINS["temporal"])
    _, obs = _sample(T=10)
    pred = bench.ESTIMATORS["temporal"](obs, BODY)
    assert pred["joints"].shape == (10, 24, 3) and pred["camera_extrinsics"].shape == (10, 4, 4)
    bench.ESTIMATORS.pop("temporal")


def test_auto_estimator_follows_the_weights(tiny_weights, tmp_path, monkeypatch):
    from engine.pipeline import resolve_estimator
    monkeypatch.setenv(temporal.WEIGHTS_ENV, str(tiny_weights))
    assert resolve_estimator("auto") == "temporal"
    monkeypatch.setenv(temporal.WEIGHTS_ENV, str(tmp_path / "none"))
    assert resolve_estimator("auto") == "baseline" and resolve_estimator("temporal") == "temporal"
    with pytest.raises(EngineError, match="unknown estimator"):
        resolve_estimator("magic")


def test_bench_registers_models_by_folder(tiny_weights):
    from training.bench import synthetic as bench
    from training.temporal.bench import register_weights
    _, obs = _sample(T=10)
    for name in (f"temporal@{tiny_weights}", f"temporal+light@{tiny_weights}"):
        register_weights(name)
        pred = bench.ESTIMATORS.pop(name)(obs, BODY)
        assert pred["joints"].shape == (10, 24, 3)
    with pytest.raises(KeyError, match="unknown estimator"):
        register_weights(f"nonsense@{tiny_weights}")


def test_blend_toward_the_prior_moves_each_joint_the_given_share_of_the_way():
    from scipy.spatial.transform import Rotation
    from engine.estimate.network_inputs import matrix_to_rot6d, rot6d_to_matrix
    from engine.estimate.temporal import blend_toward_prior
    rng = np.random.default_rng(0)
    T = 5
    a = Rotation.random(T * 24, random_state=1)
    b = a * Rotation.from_rotvec(rng.normal(size=(T * 24, 3)) * 0.4)   # up to about 1.5 rad apart
    net = matrix_to_rot6d(a.as_matrix()).reshape(T, 144).astype(np.float32)
    prior = matrix_to_rot6d(b.as_matrix()).reshape(T, 144).astype(np.float32)
    rows = np.array([True, True, False, True, True])
    out = blend_toward_prior(net, prior, 0.5, rows)
    got = Rotation.from_matrix(rot6d_to_matrix(out.reshape(-1, 6)))
    to_net, to_prior = (got.inv() * a).magnitude(), (got.inv() * b).magnitude()
    apart = (a.inv() * b).magnitude()
    on = np.repeat(rows, 24)
    np.testing.assert_allclose(to_net[on], 0.5 * apart[on], atol=1e-4)
    np.testing.assert_allclose(to_prior[on], 0.5 * apart[on], atol=1e-4)
    np.testing.assert_array_equal(out[~rows], net[~rows])        # no landmarks: the network's
    np.testing.assert_array_equal(blend_toward_prior(net, prior, 0.0, rows), net)
    far = Rotation.from_matrix(rot6d_to_matrix(blend_toward_prior(net, prior, 1.0, rows).reshape(-1, 6)))
    assert (far.inv() * b).magnitude()[on].max() < 1e-4


def test_prior_blend_is_checked():
    from engine.errors import EngineError
    from engine.pipeline import PipelineOptions
    for bad in (-0.1, 1.5, "half", None):
        with pytest.raises(EngineError, match="prior_blend"):
            PipelineOptions(prior_blend=bad).check()
    assert PipelineOptions().prior_blend == temporal.PRIOR_BLEND == 0.5
