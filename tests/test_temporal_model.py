"""Seed-2 temporal model: shapes, ablations, valid rotations, ONNX parity, loss goes down."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.body import kinematics as K  # noqa: E402
from training.temporal.export import example_temporal_inputs, export_temporal, torch_vs_onnx  # noqa: E402
from training.geometry import forward_kinematics, matrix_to_rot6d, rot6d_to_matrix  # noqa: E402
from training.temporal.losses import temporal_loss  # noqa: E402
from training.temporal.model import TemporalModel  # noqa: E402
from test_baseline import REST  # noqa: E402


def _randomise_heads(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for h in model.heads:
        h.weight.data = torch.randn(h.weight.shape, generator=g) * 0.05
    return model


@pytest.mark.parametrize("flags", [{}, {"use_parts": False}, {"use_prvipe": False}, {"use_dynamic": False},
                                   {"use_ik_prior": True}])
def test_shapes_and_rotations(flags):
    m = _randomise_heads(TemporalModel(**flags)).eval()
    out = m(*example_temporal_inputs(2, 40))
    assert out["rot6d"].shape == (2, 40, 24, 6) and out["betas"].shape == (2, 10)
    assert out["cam"].shape == (2, 40, 3) and (out["embed_sigma"] > 0).all()
    R = rot6d_to_matrix(out["rot6d"]).detach().numpy()
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)


def test_untrained_ik_prior_model_returns_the_prior():
    """Heads start at a zero correction: before training the model is the analytic IK."""
    inputs = example_temporal_inputs(2, 12, seed=4)
    out = TemporalModel(use_ik_prior=True).eval()(*inputs)
    np.testing.assert_allclose(out["rot6d"].detach().numpy(), inputs[4].reshape(2, 12, 24, 6).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="ik_prior"):
        TemporalModel(use_ik_prior=True)(*inputs[:4])


def test_torch_fk_matches_numpy_fk():
    rot = torch.tensor(K.axis_angle_to_matrix(np.random.default_rng(0).normal(scale=0.4, size=(1, 5, 24, 3))), dtype=torch.float64)
    rest = torch.tensor(REST[None])
    np.testing.assert_allclose(forward_kinematics(rot, rest).numpy()[0], K.forward_kinematics(rot.numpy()[0], REST), atol=1e-12)
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(rot)).numpy(), rot.numpy(), atol=1e-12)


def test_onnx_parity_on_joint_positions(tmp_path):
    m = _randomise_heads(TemporalModel(use_ik_prior=True), seed=3)
    path = tmp_path / "temporal.onnx"
    export_temporal(m, path)
    inputs = example_temporal_inputs(2, 77, seed=5)  # a length other than the export example's
    diffs = torch_vs_onnx(m, path, inputs)
    assert max(diffs.values()) < 1e-4, diffs
    import onnxruntime as ort
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["rot6d"], {n: x.numpy() for n, x in zip(("features", "prvipe_mu", "prvipe_sigma", "homography", "ik_prior"), inputs)})[0]
    with torch.no_grad():
        ref = m.eval()(*inputs)["rot6d"]
    j = lambda r6: K.forward_kinematics(rot6d_to_matrix(torch.as_tensor(r6)).numpy(), REST)  # noqa: E731
    assert np.abs(j(got) - j(ref)).max() < 1e-4


class _Joints(torch.nn.Module):
    def forward(self, betas):
        return torch.tensor(REST, dtype=torch.float32)[None].expand(betas.shape[0], 24, 3) + 0 * betas.sum()


def test_loss_decreases_when_fitting_one_batch():
    torch.manual_seed(0)
    m = TemporalModel(hidden=32, part_channels=16)
    feats, mu, sig, hom, _ = example_temporal_inputs(2, 16)
    rot = torch.tensor(K.axis_angle_to_matrix(np.random.default_rng(1).normal(scale=0.3, size=(2, 16, 24, 3))), dtype=torch.float32)
    batch = {"rotmats": rot, "betas": torch.zeros(2, 10), "joints2d": torch.zeros(2, 16, 24, 2),
             "joints2d_vis": torch.ones(2, 16, 24), "prvipe_mu": mu, "prvipe_sigma": sig}
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, parts = temporal_loss(m(feats, mu, sig, hom), batch, _Joints())
        opt.zero_grad(); loss.backward(); opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first, (first, loss.item())
