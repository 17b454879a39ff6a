"""Residual log-likelihood estimation (RLE; Li et al., ICCV 2021) for D2A-HMR's joints.

The network predicts a joint position μ (metres) and a per-joint scale σ (sigmoid head). With
the ground truth y, the normalised error is μ̄ = (y − μ)/σ (3 coordinates sharing the joint's
σ). Its density is modelled as a fixed base density Q times a learned residual G_φ:

    P(μ̄) = c · Q(μ̄) · G_φ(μ̄),    c = 1 / ∫ Q G_φ

and the loss is the negative log-likelihood of y:

    L_RLE = −log Q(μ̄) − log G_φ(μ̄) − log c + D·log σ

(SEEDS.md's formula, per coordinate; with one σ shared by D = 3 coordinates the change of
variables y → μ̄ contributes D·log σ.)

Choices (the paper's, or ours where marked):
- Q is a Laplace density per coordinate with unit variance (scale 1/√2), as in the paper's
  "residual" Laplace variant.
- G_φ is a RealNVP flow (Dinh et al. 2017) on the 3-vector μ̄: 6 affine coupling layers with
  alternating masks, each with 64-wide 2-hidden-layer MLPs for scale (tanh-bounded) and
  translation, and a standard Gaussian prior (SEEDS.md's standard choice).
- −log c: the paper drops it (treats ∫QG as ≈ 1). Ours: optionally estimated by Monte Carlo,
  log ∫QG = log E_{u~Q}[G_φ(u)] with ``mc_samples`` Laplace draws (off by default, as in the
  paper; the estimate is biased for few samples).
- σ floor 1e-4 m so log σ stays finite; the flow and the loss are training-only — at inference
  μ is the output and σ is kept as the joint's confidence.
"""
import math

import torch
from torch import nn

LAPLACE_B = 1.0 / math.sqrt(2.0)      # unit-variance Laplace
SIGMA_MIN = 1e-4


class Coupling(nn.Module):
    """Affine coupling: x_b' = x_b · exp(s(x_a)) + t(x_a) on the unmasked coordinates."""

    def __init__(self, mask, hidden=64):
        super().__init__()
        self.register_buffer("mask", mask.float())
        d = mask.numel()

        def mlp():
            return nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
                                 nn.Linear(hidden, d))
        self.s, self.t = mlp(), mlp()
        # start as the identity map (the flow begins as the plain Gaussian prior)
        for net in (self.s, self.t):
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def _st(self, xa):
        m = self.mask
        return torch.tanh(self.s(xa)) * (1 - m), self.t(xa) * (1 - m)

    def forward(self, x):
        """data → latent; returns (z, log|det ∂z/∂x|)."""
        s, t = self._st(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t), s.sum(-1)

    def inverse(self, z):
        s, t = self._st(z * self.mask)
        return z * self.mask + (1 - self.mask) * ((z - t) * torch.exp(-s))


class RealNVP(nn.Module):
    """A RealNVP density on R^dim with a standard normal prior."""

    def __init__(self, dim=3, layers=6, hidden=64):
        super().__init__()
        base = torch.arange(dim) % 2
        self.layers = nn.ModuleList([Coupling(base if i % 2 == 0 else 1 - base, hidden) for i in range(layers)])
        self.dim = dim

    def forward(self, x):
        """x (..., dim) → z, log|det ∂z/∂x| (...)."""
        logdet = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x):
        z, logdet = self(x)
        return -0.5 * (z ** 2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi) + logdet

    def sample(self, n, generator=None):
        z = torch.randn(n, self.dim, generator=generator)
        return self.inverse(z)


def laplace_log_prob(u, b=LAPLACE_B):
    """Log density of i.i.d. Laplace(0, b) coordinates, summed over the last axis."""
    return (-math.log(2 * b) - u.abs() / b).sum(-1)


def rle_loss(mu, sigma, target, flow, weight=None, mc_samples=0, generator=None):
    """Mean RLE negative log-likelihood per joint.

    mu, target (..., J, 3) metres; sigma (..., J) (> 0); flow: ``RealNVP(3)``; weight (..., J)
    optional (e.g. valid frames). ``mc_samples`` > 0 adds the −log c term (see module doc)."""
    sigma = sigma.clamp(min=SIGMA_MIN)
    D = mu.shape[-1]
    bar = (target - mu) / sigma[..., None]
    nll = -laplace_log_prob(bar) - flow.log_prob(bar) + D * torch.log(sigma)
    if mc_samples:
        u = torch.empty(mc_samples, D, device=mu.device).exponential_(generator=generator) * LAPLACE_B
        sign = torch.randint(0, 2, (mc_samples, D), generator=generator, device=mu.device) * 2 - 1
        log_int = torch.logsumexp(flow.log_prob(u * sign), 0) - math.log(mc_samples)
        nll = nll + log_int                                       # −log c = log ∫ Q G
    if weight is None:
        return nll.mean()
    return (nll * weight).sum() / weight.sum().clamp(min=1)
