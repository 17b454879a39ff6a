"""Seed 1: ImpHMR (Cho et al., CVPR 2023) as a training-time module of the D2A-HMR network.

The refinement network's encoder gives a global code (``out["global_code"]``). From it a
GIRAFFE-style neural feature field — an MLP on the positionally encoded 3D point and viewing
direction, conditioned on the code — is volume-rendered into a small feature map for a viewing
direction φ, and 3D joints, a silhouette, the global orientation, the body pose and the shape are
regressed from that map. Training adds three terms (``imphmr_loss``):

1. canonical view (φ = 0): the usual regression losses against the ground truth;
2. imagined view (φ ~ U(−π, π)): the prediction from φ must equal the ground truth rotated by
   −φ — joints R(−φ)·J, global orientation R(−φ)·R_root, silhouette of the rotated body —
   while body pose and shape stay unchanged. The data are synthetic with full 3D ground truth,
   so the rotated targets are exact (the silhouette is rendered from the true mesh);
3. appearance consistency: pose and shape predicted from φ agree with those from φ = 0, with a
   stop-gradient on the canonical branch (usable without 3D labels).

The branch only shapes the shared encoder during training: inference uses φ = 0 only, and in
this project not even that — the exported refinement network does not contain this module.

Geometry and choices where the paper is silent (ours, SEEDS.md's standard ones where stated):
- φ is an azimuth about the camera's y axis (image "down"; for the level or slightly pitched
  cameras of the training data this is the body's vertical axis) through the pelvis.
- The field lives in the root-centred camera frame, inside a cube of half-side ``extent`` =
  1.2 m. The view from φ is an orthographic camera: pixel (i, j) of the R×R map (R = 16) is the
  ray x = u_j, y = v_i (cell centres of [−extent, extent]) along +z of the view frame, whose
  points map to the body frame by p = R_y(φ)·p'. So a body point p appears in view φ at
  p' = R_y(−φ)·p — the "ground truth rotated by −φ".
- ``samples`` = 32 evenly spaced samples per ray (no stratified jitter), density softplus,
  standard emission-absorption compositing; NeRF positional encoding with 6 (points) and 2
  (directions) frequencies; density depends on the point only, features (32) on the point and
  the direction (GIRAFFE); the code enters the first layer.
- The silhouette target for view φ is the orthographic occupancy of the rotated true mesh on
  the same R×R grid; the silhouette is predicted by a 1×1 conv over the rendered features and
  opacity.
- Per-quantity weights as the main loss (joints L1 1000, rotation-matrix MSE 100, shape MSE 1,
  silhouette BCE 10; the consistency term uses the rotation/shape weights); the three terms
  count equally and ``D2ATraining`` scales their sum by ``WEIGHTS["imphmr"]``.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from training.geometry import rot6d_to_matrix

IMP_WEIGHTS = {"joints3d": 1000.0, "rotations": 100.0, "betas": 1.0, "silhouette": 10.0}


def rotation_y(phi):
    """(B,) azimuths → (B,3,3) rotations about the y axis."""
    c, s = torch.cos(phi), torch.sin(phi)
    z, o = torch.zeros_like(phi), torch.ones_like(phi)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2)


def positional_encoding(x, freqs):
    """NeRF encoding: [x, sin(2^k π x), cos(2^k π x)] for k < freqs."""
    out = [x]
    for k in range(freqs):
        out += [torch.sin((2.0 ** k) * math.pi * x), torch.cos((2.0 ** k) * math.pi * x)]
    return torch.cat(out, -1)


def rotate_targets(joints, root_rot, vertices, phi):
    """Ground truth as seen from direction φ: joints (B,24,3), root rotation (B,3,3) and vertices
    (B,V,3) rotated by R_y(−φ) (root-centred camera frame)."""
    Rm = rotation_y(-phi)
    return (torch.einsum("bij,bnj->bni", Rm, joints), Rm @ root_rot, torch.einsum("bij,bnj->bni", Rm, vertices))


def orthographic_silhouette(points, size, extent):
    """Occupancy (B,size,size) in {0,1} of points (B,N,3) on the view grid (x → columns, y → rows)."""
    B, N, _ = points.shape
    ij = torch.floor((points[..., :2] + extent) / (2 * extent) * size).long()
    ok = ((ij >= 0) & (ij < size)).all(-1)
    flat = torch.where(ok, ij[..., 1] * size + ij[..., 0], torch.full_like(ij[..., 0], size * size))
    occ = torch.zeros(B, size * size + 1, device=points.device)
    occ.scatter_(1, flat, 1.0)
    return occ[:, :-1].reshape(B, size, size)


class ImpHMR(nn.Module):
    def __init__(self, code_dim, feat_dim=32, hidden=64, render_size=16, samples=32, extent=1.2,
                 point_freqs=6, dir_freqs=2, num_betas=10):
        super().__init__()
        self.R, self.N, self.extent = render_size, samples, extent
        self.pf, self.df = point_freqs, dir_freqs
        pin, din = 3 * (1 + 2 * point_freqs), 3 * (1 + 2 * dir_freqs)
        self.code = nn.Linear(code_dim, hidden)
        self.p0 = nn.Linear(pin, hidden)
        self.trunk = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.density = nn.Linear(hidden, 1)
        self.feature = nn.Sequential(nn.Linear(hidden + din, hidden), nn.ReLU(), nn.Linear(hidden, feat_dim))
        c = 64
        self.cnn = nn.Sequential(nn.Conv2d(feat_dim + 1, c, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU())
        r = -(-render_size // 4)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * r * r, 256), nn.ReLU())
        self.joints_head = nn.Linear(256, 24 * 3)
        self.orient_head = nn.Linear(256, 6)
        self.pose_head = nn.Linear(256, 23 * 6)
        self.betas_head = nn.Linear(256, num_betas)
        self.sil_head = nn.Conv2d(feat_dim + 1, 1, 1)
        eye6 = torch.tensor([1.0, 0, 0, 0, 1, 0])
        for h, base in ((self.orient_head, eye6), (self.pose_head, eye6.repeat(23))):
            nn.init.zeros_(h.weight)
            h.bias.data = base.clone()
        # ray samples of the canonical view (view frame), fixed
        e = extent
        u = (torch.arange(render_size) + 0.5) / render_size * 2 * e - e
        z = (torch.arange(samples) + 0.5) / samples * 2 * e - e
        yy, xx = torch.meshgrid(u, u, indexing="ij")
        pts = torch.stack([xx[..., None].expand(-1, -1, samples), yy[..., None].expand(-1, -1, samples),
                           z.expand(render_size, render_size, samples)], -1)
        self.register_buffer("view_points", pts.reshape(-1, 3))          # (R*R*N, 3)
        self.delta = 2 * e / samples

    def render(self, code, phi):
        """code (B,code_dim), phi (B,) → feature map (B,C,R,R), opacity (B,R,R)."""
        B = code.shape[0]
        Rm = rotation_y(phi)                                            # view → body frame
        pts = torch.einsum("bij,pj->bpi", Rm, self.view_points)          # (B,P,3)
        dirs = Rm[:, :, 2]                                              # view +z in the body frame
        h = self.p0(positional_encoding(pts / self.extent, self.pf)) + self.code(code)[:, None]
        h = self.trunk(h)
        sigma = F.softplus(self.density(h))[..., 0]                     # (B,P)
        d = positional_encoding(dirs, self.df)[:, None].expand(-1, h.shape[1], -1)
        feat = self.feature(torch.cat([h, d], -1))                      # (B,P,C)
        R, N = self.R, self.N
        sigma = sigma.reshape(B, R * R, N)
        feat = feat.reshape(B, R * R, N, -1)
        alpha = 1 - torch.exp(-sigma * self.delta)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1] + 1e-10], -1), -1)
        wts = alpha * trans                                             # (B,R*R,N)
        fmap = (wts[..., None] * feat).sum(2).transpose(1, 2).reshape(B, -1, R, R)
        return fmap, wts.sum(-1).reshape(B, R, R)

    def forward(self, code, phi):
        """Predictions from direction φ: joints (B,24,3), orient (B,3,3), pose (B,23,3,3),
        betas (B,S), silhouette_logits (B,R,R), feature_map (B,C,R,R)."""
        fmap, opacity = self.render(code, phi)
        x = torch.cat([fmap, opacity[:, None]], 1)
        h = self.fc(self.cnn(x))
        B = code.shape[0]
        return {"joints": self.joints_head(h).reshape(B, 24, 3),
                "orient": rot6d_to_matrix(self.orient_head(h)),
                "pose": rot6d_to_matrix(self.pose_head(h).reshape(B, 23, 6)),
                "betas": self.betas_head(h),
                "silhouette_logits": self.sil_head(x)[:, 0],
                "feature_map": fmap}


    def canonical(self, code):
        """The inference-time prediction (φ = 0 only); not used by the engine."""
        return self(code, torch.zeros(code.shape[0], device=code.device))


def _wmean(x, w):
    per = x.reshape(x.shape[0], -1).mean(1)
    return per.mean() if w is None else (per * w).sum() / w.sum().clamp(min=1)


def regression_loss(pred, joints, orient, pose, betas, sil, w=None, weights=IMP_WEIGHTS):
    """Weighted regression of one view's prediction onto (already rotated) targets."""
    return (weights["joints3d"] * _wmean((pred["joints"] - joints).abs(), w)
            + weights["rotations"] * _wmean((pred["orient"] - orient) ** 2, w)
            + weights["rotations"] * _wmean((pred["pose"] - pose) ** 2, w)
            + weights["betas"] * _wmean((pred["betas"] - betas) ** 2, w)
            + weights["silhouette"] * _wmean(F.binary_cross_entropy_with_logits(pred["silhouette_logits"], sil,
                                                                               reduction="none"), w))


def consistency_loss(pred_phi, pred_canonical, w=None, weights=IMP_WEIGHTS):
    """Pose and shape from direction φ must agree with the canonical view's, which is held fixed
    (stop-gradient: this term trains only the φ branch)."""
    return (weights["rotations"] * _wmean((pred_phi["pose"] - pred_canonical["pose"].detach()) ** 2, w)
            + weights["betas"] * _wmean((pred_phi["betas"] - pred_canonical["betas"].detach()) ** 2, w))


def imphmr_loss(imp, code, batch, vertices, w=None, generator=None, weights=IMP_WEIGHTS, phi=None):
    """Canonical + imagined-view + consistency losses; returns (sum, parts).

    ``batch`` holds joints3d (B,24,3), rotmats (B,24,3,3), betas (B,S); ``vertices`` (B,V,3) the
    true mesh (root-centred camera frame) for the silhouettes; ``phi`` (B,) imagined directions
    (default U(−π, π))."""
    B = code.shape[0]
    joints, rot, betas = batch["joints3d"], batch["rotmats"], batch["betas"]
    if phi is None:
        phi = (torch.rand(B, generator=generator) * 2 - 1) * math.pi
    phi = phi.to(code.device)
    zero = torch.zeros(B, device=code.device)
    p0 = imp(code, zero)
    sil0 = orthographic_silhouette(vertices, imp.R, imp.extent)
    can = regression_loss(p0, joints, rot[:, 0], rot[:, 1:], betas, sil0, w, weights)
    pj, pr, pv = rotate_targets(joints, rot[:, 0], vertices, phi)
    pp = imp(code, phi)
    img = regression_loss(pp, pj, pr, rot[:, 1:], betas, orthographic_silhouette(pv, imp.R, imp.extent), w, weights)
    con = consistency_loss(pp, p0, w, weights)
    return can + img + con, {"canonical": can, "imagined": img, "consistency": con}
