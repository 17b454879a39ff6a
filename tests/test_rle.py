"""RLE (residual log-likelihood) for D2A-HMR: the RealNVP flow and the loss."""
import math

import pytest

torch = pytest.importorskip("torch")

from training.d2a.rle import RealNVP, laplace_log_prob, rle_loss  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _random_flow(seed=0, scale=0.3):
    torch.manual_seed(seed)
    f = RealNVP(3, 6, 64).double()
    for layer in f.layers:                     # the flow starts as the identity: perturb it
        for net in (layer.s, layer.t):
            net[-1].weight.data.normal_(0, scale)
            net[-1].bias.data.normal_(0, scale)
    return f


def test_realnvp_starts_as_gaussian():
    f = RealNVP(3, 6, 64)
    x = torch.randn(10, 3)
    z, ld = f(x)
    torch.testing.assert_close(z, x)
    torch.testing.assert_close(f.log_prob(x), -0.5 * (x ** 2).sum(-1) - 1.5 * math.log(2 * math.pi))


def test_realnvp_invertible_and_logdet_consistent():
    f = _random_flow()
    x = torch.randn(16, 3, dtype=torch.float64) * 2
    z, ld = f(x)
    assert not torch.allclose(z, x)
    torch.testing.assert_close(f.inverse(z), x, atol=1e-10, rtol=0)
    torch.testing.assert_close(f(f.inverse(x))[0], x, atol=1e-10, rtol=0)
    for i in range(4):                         # log|det| equals the autograd Jacobian's
        J = torch.autograd.functional.jacobian(lambda v: f(v[None])[0][0], x[i])
        torch.testing.assert_close(ld[i], torch.linalg.slogdet(J)[1], atol=1e-9, rtol=0)


def test_realnvp_density_normalised():
    f = _random_flow(1, 0.2)
    g = torch.Generator().manual_seed(0)
    # importance-sample ∫ p(x) dx with a wide Gaussian proposal: ≈ 1
    s = 3.0
    x = torch.randn(20_000, 3, generator=g, dtype=torch.float64) * s
    logq = -0.5 * ((x / s) ** 2).sum(-1) - 1.5 * math.log(2 * math.pi) - 3 * math.log(s)
    with torch.no_grad():
        est = torch.exp(f.log_prob(x) - logq).mean().item()
    assert abs(est - 1) < 0.1, est


def test_laplace_normalised():
    u = torch.linspace(-30, 30, 200_001, dtype=torch.float64)
    p = torch.exp(laplace_log_prob(u[:, None]))
    assert abs(torch.trapezoid(p, u).item() - 1) < 1e-6


def test_rle_loss_finite():
    f = RealNVP()
    mu = torch.randn(4, 24, 3)
    for sigma in (torch.full((4, 24), 0.05), torch.full((4, 24), 1e-9), torch.rand(4, 24)):
        for target in (mu + 0.01 * torch.randn_like(mu), mu + 5.0, mu):
            for mc in (0, 32):
                loss = rle_loss(mu, sigma, target, f, mc_samples=mc)
                assert torch.isfinite(loss)
    w = torch.zeros(4, 24)
    w[0] = 1
    assert torch.isfinite(rle_loss(mu, torch.full((4, 24), 0.1), mu + 0.1, f, weight=w))


def test_rle_sigma_gradient_sign():
    f = RealNVP()
    mu = torch.zeros(1, 2, 3)
    target = torch.tensor([[[0.002, 0.0, 0.0], [0.3, 0.0, 0.0]]])   # joint 0 nearly right, joint 1 far off
    sigma = torch.full((1, 2), 0.1, requires_grad=True)
    rle_loss(mu, sigma, target, f).backward()
    assert sigma.grad[0, 0] > 0          # error ≪ σ: σ should shrink
    assert sigma.grad[0, 1] < 0          # error ≫ σ: σ should grow


def test_rle_sigma_learns_error_scale():
    """Toy problem: two joints with fixed predictions, errors of ~1 cm and ~20 cm; a few steps
    of training the σ logits (and the flow) make σ track the error scale."""
    torch.manual_seed(0)
    f = RealNVP()
    g = torch.Generator().manual_seed(1)
    n = 128
    target = torch.randn(n, 2, 3, generator=g) * torch.tensor([0.01, 0.2])[None, :, None]
    mu = torch.zeros(n, 2, 3)
    logit = torch.full((2,), math.log(0.05 / 0.95), requires_grad=True)    # both start at σ = 5 cm
    opt = torch.optim.Adam([{"params": [logit], "lr": 0.1}, {"params": f.parameters(), "lr": 1e-3}])
    for _ in range(30):
        loss = rle_loss(mu, torch.sigmoid(logit).expand(n, 2), target, f)
        opt.zero_grad()
        loss.backward()
        opt.step()
    s = torch.sigmoid(logit).detach()
    assert s[1] > 0.05 > s[0], s          # the large-error joint's σ grew, the small one's shrank
    assert s[1] / s[0] > 3, s
