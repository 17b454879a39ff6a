"""Seed 1 (ImpHMR as a training module): rotated targets, rendering, silhouettes, stop-gradient."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.body import kinematics as K, load_body_model  # noqa: E402
from training.d2a.coarse_mesh_file import load_coarse_mesh  # noqa: E402
from training.d2a.model import CoarseBody  # noqa: E402
from training.d2a.imphmr import (ImpHMR, consistency_loss, imphmr_loss, orthographic_silhouette,  # noqa: E402
                                    rotate_targets, rotation_y)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def posed():
    """True joints, rotations and coarse vertices of two random poses of the open body."""
    body = load_body_model()
    cb = CoarseBody(body, load_coarse_mesh())
    rng = np.random.default_rng(0)
    rot = torch.tensor(K.axis_angle_to_matrix(rng.normal(scale=0.4, size=(2, 24, 3))), dtype=torch.float32)
    betas = torch.tensor(rng.normal(size=(2, 10)), dtype=torch.float32)
    j, v = cb(rot, betas)
    return cb, rot, betas, j, v


def test_rotating_by_zero_is_exact(posed):
    _, rot, _, j, v = posed
    zero = torch.zeros(2)
    rj, rr, rv = rotate_targets(j, rot[:, 0], v, zero)
    assert torch.equal(rotation_y(zero), torch.eye(3).expand(2, 3, 3))
    assert torch.equal(rj, j) and torch.equal(rr, rot[:, 0]) and torch.equal(rv, v)


def test_rotated_targets_are_the_rotated_body(posed):
    """The joints/mesh rotated by −φ are exactly those of the body whose global orientation is
    R(−φ)·R_root with the same body pose and shape (what the imagined view must predict)."""
    cb, rot, betas, j, v = posed
    phi = torch.tensor([0.7, -2.5])
    rj, rr, rv = rotate_targets(j, rot[:, 0], v, phi)
    rot2 = rot.clone()
    rot2[:, 0] = rr
    j2, v2 = cb(rot2, betas)
    torch.testing.assert_close(rj, j2, atol=1e-5, rtol=0)
    torch.testing.assert_close(rv, v2, atol=1e-5, rtol=0)
    # and a full turn is the identity
    torch.testing.assert_close(rotate_targets(j, rot[:, 0], v, torch.full((2,), 2 * math.pi))[0], j, atol=1e-5, rtol=0)


def test_render_shapes_and_periodicity():
    torch.manual_seed(0)
    imp = ImpHMR(code_dim=16, feat_dim=8, hidden=16, render_size=16, samples=32)
    code = torch.randn(3, 16)
    fmap, opacity = imp.render(code, torch.zeros(3))
    assert fmap.shape == (3, 8, 16, 16) and opacity.shape == (3, 16, 16)
    assert ((opacity >= 0) & (opacity <= 1)).all()
    f2, _ = imp.render(code, torch.full((3,), 2 * math.pi))
    torch.testing.assert_close(f2, fmap, atol=1e-4, rtol=1e-4)
    out = imp(code, torch.tensor([0.0, 1.0, -1.0]))
    assert out["joints"].shape == (3, 24, 3) and out["pose"].shape == (3, 23, 3, 3)
    assert out["orient"].shape == (3, 3, 3) and out["betas"].shape == (3, 10)
    assert out["silhouette_logits"].shape == (3, 16, 16)


def test_orthographic_silhouette_views(posed):
    _, rot, _, j, v = posed
    cm = load_coarse_mesh()
    full = torch.as_tensor(cm.upsample(v.numpy()))
    s0 = orthographic_silhouette(full, 16, 1.2)
    assert s0.shape == (2, 16, 16) and 15 < s0.sum(dim=(1, 2)).min() < 200
    # seen from behind (φ = π) the silhouette is the mirror image (x → −x), up to cell boundaries
    _, _, vb = rotate_targets(j, rot[:, 0], full, torch.full((2,), math.pi))
    sb = orthographic_silhouette(vb, 16, 1.2)
    agree = (sb == torch.flip(s0, dims=[2])).float().mean()
    assert agree > 0.9, agree


def test_consistency_stop_gradient():
    pred_phi = {k: torch.randn(2, *s, requires_grad=True) for k, s in (("pose", (23, 3, 3)), ("betas", (10,)))}
    pred_0 = {k: torch.randn(2, *s, requires_grad=True) for k, s in (("pose", (23, 3, 3)), ("betas", (10,)))}
    consistency_loss(pred_phi, pred_0).backward()
    assert all(pred_0[k].grad is None for k in pred_0)
    assert all(pred_phi[k].grad.abs().sum() > 0 for k in pred_phi)


def test_imphmr_loss_trains_the_code(posed):
    """The loss is finite, its three parts are there, and gradients reach the encoder's code."""
    _, rot, betas, j, v = posed
    torch.manual_seed(0)
    imp = ImpHMR(code_dim=16, feat_dim=8, hidden=16, render_size=8, samples=8)
    code = torch.randn(2, 16, requires_grad=True)
    batch = {"joints3d": j, "rotmats": rot, "betas": betas}
    total, parts = imphmr_loss(imp, code, batch, v, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(total) and set(parts) == {"canonical", "imagined", "consistency"}
    total.backward()
    assert code.grad.abs().sum() > 0
    # with φ = 0 for the imagined view, canonical and imagined terms coincide
    t0, p0 = imphmr_loss(imp, code, batch, v, phi=torch.zeros(2))
    torch.testing.assert_close(p0["canonical"], p0["imagined"])
    assert p0["consistency"].item() < 1e-10
