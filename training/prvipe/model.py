"""Pr-VIPE (Sun et al., ECCV 2020): a probabilistic view-invariant embedding of a 2D pose.

A residual MLP maps normalised 2D keypoints to a Gaussian embedding: mean and std (ELU+1, plus
a floor of 1e-3 against float32 underflow).
Training: triplet ratio loss on −log p(m|z_i,z_j) with margin ln 2, a positive-pair loss and a
small KL to N(0, I); p(m|z_i,z_j) = σ(−a‖z_i − z_j‖ + b) with learnable a, b, averaged over K
Monte-Carlo samples. Width 1024 in the paper; ours defaults to 256 so it trains on CPU (our
choice, recorded in the model card).
"""
import math

import torch
from torch import nn

IN_FEATURES = 99  # 33 keypoints × (x, y, visibility), engine.estimate.network_inputs.normalized_keypoints
SIGMA_FLOOR = 1e-3  # ELU+1 underflows to 0 in float32; log σ in the KL then diverges to NaN


class ResidualBlock(nn.Module):
    def __init__(self, width, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(width, width), nn.BatchNorm1d(width),
                                 nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.net(x)


class PrVIPE(nn.Module):
    def __init__(self, width=256, dim=32, blocks=2, dropout=0.3):
        super().__init__()
        self.dim = dim
        self.inp = nn.Sequential(nn.Linear(IN_FEATURES, width), nn.BatchNorm1d(width), nn.ReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(width, dropout) for _ in range(blocks)])
        self.out = nn.Linear(width, 2 * dim)
        self.a = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(0.0))

    def forward(self, kp):
        """kp (N,99) → (mu (N,dim), sigma (N,dim))."""
        h = self.out(self.blocks(self.inp(kp)))
        mu, s = h[:, : self.dim], h[:, self.dim:]
        return mu, nn.functional.elu(s) + 1.0 + SIGMA_FLOOR

    def match_log_prob(self, z1, z2):
        """log p(m|z1,z2) per sample pair; z (..., dim)."""
        d = torch.sqrt(((z1 - z2) ** 2).sum(-1) + 1e-12)   # smooth at 0
        return nn.functional.logsigmoid(-nn.functional.softplus(self.a) * d + self.b)

    def pair_log_prob(self, e1, e2, samples=8):
        """log of p(m|·,·) averaged over K samples of each embedding; e = (mu, sigma)."""
        z1 = e1[0][None] + e1[1][None] * torch.randn((samples,) + e1[0].shape, device=e1[0].device)
        z2 = e2[0][None] + e2[1][None] * torch.randn((samples,) + e2[0].shape, device=e2[0].device)
        lp = self.match_log_prob(z1[:, None], z2[None])            # (K,K,N)
        return torch.logsumexp(lp.reshape(-1, lp.shape[-1]), 0) - math.log(samples * samples)


def prvipe_loss(model, anchor, positive, negative, samples=8, kl_weight=1e-3, margin=math.log(2)):
    """Triplet ratio + positive-pair + KL loss for (anchor, positive, negative) keypoint batches."""
    ea, ep, en = model(anchor), model(positive), model(negative)
    lp_pos = model.pair_log_prob(ea, ep, samples)
    lp_neg = model.pair_log_prob(ea, en, samples)
    ratio = torch.relu(lp_neg - lp_pos + margin).mean()
    positive_pair = (-lp_pos).mean()
    kl = 0.0
    for mu, sig in (ea, ep, en):
        kl = kl + 0.5 * (mu ** 2 + sig ** 2 - 2 * torch.log(sig) - 1).sum(-1).mean()
    return ratio + positive_pair + kl_weight * kl / 3, {"ratio": ratio.item(), "positive": positive_pair.item()}
