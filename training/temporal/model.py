"""Seed 2: the part-based, uncertainty-aware temporal model (Lee & Lee, ICCV 2021), keypoint input.

per-frame features (engine.estimate.network_inputs, optionally plus an image-feature tensor) → MLP → GRU
temporal features; concatenated with the uncertainty-aware static feature (Pr-VIPE μ, σ) and
the dynamic feature (15 homographies, 135 values) → split-and-recombine temporal convolution
over the five SMPL-24 parts (Zeng et al., ECCV 2020), each part gated by a sigmoid of the
other parts' features → 6D rotations per joint, shape, and a weak-perspective camera.

Choices where the papers are silent (ours): a bidirectional 2-layer GRU (offline clips are
processed in windows, so the future is available); two dilated conv blocks per part; the
root rotation is predicted by every part and averaged (the root is in every part); shape is
predicted per frame and averaged over the window; a head predicts (μ̂, σ̂) of the Pr-VIPE
embedding from the temporal features for the uncertainty term.

With ``use_ik_prior`` (the shipped configuration) the model also takes the analytic IK
rotations of the landmarks (``engine.estimate.network_inputs.ik_prior``, 6D per joint) as a per-frame input
and its rotation heads predict a correction added to them (heads start at zero, so an untrained
model returns the IK pose). Our choice: the paper's per-frame feature comes from an image CNN,
which we cannot train here; starting from the landmarks' own answer lets a CPU-sized model
spend its capacity on denoising and on the landmark-to-SMPL-joint differences.
"""
import torch
from torch import nn

from engine.body.skeleton import BODY_PARTS
from engine.estimate.network_inputs import NUM_FEATURES, PRIOR_DIM

PART_NAMES = tuple(BODY_PARTS)
EMBED_DIM = 32
HOMOGRAPHY_DIM = 135


class PartTCN(nn.Module):
    """Residual dilated temporal convolutions for one body part, (B,C,T) → (B,C,T)."""

    def __init__(self, channels, dilations=(1, 2), kernel=3, dropout=0.1):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=d * (kernel - 1) // 2, dilation=d),
                          nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout))
            for d in dilations])

    def forward(self, x):
        for b in self.blocks:
            x = x + b(x)
        return x


class SplitRecombine(nn.Module):
    """Per-part temporal channels; each part mixes in the others through a sigmoid gate."""

    def __init__(self, in_dim, channels, parts=len(PART_NAMES)):
        super().__init__()
        self.parts = parts
        self.proj = nn.Conv1d(in_dim, channels * parts, 1)
        self.tcn = nn.ModuleList([PartTCN(channels) for _ in range(parts)])
        others = channels * max(parts - 1, 1)  # one part (the ablation) has nothing to mix in
        self.gate = nn.ModuleList([nn.Conv1d(others, channels, 1) for _ in range(parts)]) if parts > 1 else None
        self.mix = nn.ModuleList([nn.Conv1d(others, channels, 1) for _ in range(parts)]) if parts > 1 else None
        self.channels = channels

    def forward(self, x):
        """x (B,in,T) → list of part features (B,C,T)."""
        h = [t(p) for t, p in zip(self.tcn, torch.split(self.proj(x), self.channels, dim=1))]
        if self.parts == 1:
            return h
        out = []
        for i in range(self.parts):
            others = torch.cat([h[j] for j in range(self.parts) if j != i], dim=1)
            out.append(h[i] + torch.sigmoid(self.gate[i](others)) * self.mix[i](others))
        return out


class TemporalModel(nn.Module):
    def __init__(self, hidden=128, part_channels=64, image_features=0, use_prvipe=True,
                 use_dynamic=True, use_parts=True, use_ik_prior=False, num_betas=10):
        super().__init__()
        self.use_prvipe, self.use_dynamic, self.use_parts = use_prvipe, use_dynamic, use_parts
        self.use_ik_prior = use_ik_prior
        self.image_features = image_features
        in_dim = NUM_FEATURES + image_features + (PRIOR_DIM if use_ik_prior else 0)
        self.encoder = nn.Sequential(nn.Linear(in_dim, 2 * hidden), nn.ReLU(),
                                     nn.Linear(2 * hidden, 2 * hidden), nn.ReLU())
        self.gru = nn.GRU(2 * hidden, hidden, num_layers=2, batch_first=True, bidirectional=True)
        dyn = 64
        self.dynamic = nn.Sequential(nn.Linear(HOMOGRAPHY_DIM, dyn), nn.ReLU())
        cat_dim = 2 * hidden + (2 * EMBED_DIM if use_prvipe else 0) + (dyn if use_dynamic else 0)
        n_parts = len(PART_NAMES) if use_parts else 1
        self.sr = SplitRecombine(cat_dim, part_channels if use_parts else part_channels * len(PART_NAMES), n_parts)
        ch = self.sr.channels
        # which joints each part's head predicts (non-root joints; root from every part)
        self.part_joints = [[j for j in BODY_PARTS[p] if j != 0] for p in PART_NAMES] if use_parts \
            else [list(range(1, 24))]
        self.heads = nn.ModuleList([nn.Conv1d(ch, 6 * (len(js) + 1), 1) for js in self.part_joints])
        self.shape_head = nn.Conv1d(ch * n_parts, num_betas, 1)
        self.cam_head = nn.Conv1d(ch * n_parts, 3, 1)
        self.embed_head = nn.Linear(2 * hidden, 2 * EMBED_DIM)
        # 6D identity: heads start at the rest pose, or at the IK prior (a zero correction)
        init = torch.zeros(6) if use_ik_prior else torch.tensor([1.0, 0, 0, 0, 1, 0])
        for h, js in zip(self.heads, self.part_joints):
            nn.init.zeros_(h.weight)
            h.bias.data = init.repeat(len(js) + 1)

    def forward(self, feats, prvipe_mu, prvipe_sigma, homography, ik_prior=None, image_feats=None):
        """feats (B,T,202), prvipe_* (B,T,32), homography (B,T,135), ik_prior (B,T,144) (used
        when the model was built with ``use_ik_prior``) → dict of outputs.

        rot6d (B,T,24,6) local rotations (root = global orientation in the camera frame),
        betas (B,10), cam (B,T,3) weak perspective (scale, tx, ty) in normalised keypoint
        units, embed_mu / embed_sigma (B,T,32) for the uncertainty term."""
        x = feats if image_feats is None or self.image_features == 0 else torch.cat([feats, image_feats], -1)
        if self.use_ik_prior:
            if ik_prior is None:
                raise ValueError("this model was built with use_ik_prior: pass ik_prior (B,T,144)")
            x = torch.cat([x, ik_prior], -1)
        g, _ = self.gru(self.encoder(x))
        parts = [g]
        if self.use_prvipe:
            parts += [prvipe_mu, prvipe_sigma]
        if self.use_dynamic:
            parts.append(self.dynamic(homography))
        h = self.sr(torch.cat(parts, -1).transpose(1, 2))
        B, T = feats.shape[:2]
        rot = [None] * 24
        roots = []
        for head, js, hp in zip(self.heads, self.part_joints, h):
            out = head(hp).transpose(1, 2).reshape(B, T, len(js) + 1, 6)
            roots.append(out[:, :, 0])
            for k, j in enumerate(js):
                rot[j] = out[:, :, k + 1]
        rot[0] = torch.stack(roots, 0).mean(0)
        rot6d = torch.stack(rot, dim=2)
        if self.use_ik_prior:
            rot6d = rot6d + ik_prior.reshape(B, T, 24, 6)
        allp = torch.cat(h, 1)
        emb = self.embed_head(g)
        return {"rot6d": rot6d,
                "betas": self.shape_head(allp).mean(-1),
                "cam": self.cam_head(allp).transpose(1, 2),
                "embed_mu": emb[..., :EMBED_DIM],
                "embed_sigma": nn.functional.elu(emb[..., EMBED_DIM:]) + 1.0 + 1e-3}
