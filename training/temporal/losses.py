"""Seed 2 losses: 2D reprojection, 3D joints, SMPL parameters, adjacent frames, uncertainty.

Weights are our starting point (the paper gives none on this scale): 3D joints 1, 2D 0.5,
rotations 1, betas 0.01, velocity 1, uncertainty 0.001 — all quantities in metres / normalised
keypoint units / rotation-matrix entries so they are of similar size. The uncertainty term is
KL(Pr-VIPE's N(μ, σ) ‖ the predicted N(μ̂, σ̂)), summed over the 32 dimensions; its weight
0.001 keeps it about a tenth of the pose loss (at 0.01 it outweighed all pose terms together
and val PA-MPJPE was worse: MODEL_CARD_temporal.md).
"""
import torch

from training.geometry import forward_kinematics, rot6d_to_matrix

WEIGHTS = {"joints3d": 1.0, "joints2d": 0.5, "rotations": 1.0, "betas": 0.01, "velocity": 1.0,
           "uncertainty": 0.001}


def root_centred(j):
    return j - j[:, :, :1]


def weak_perspective(joints, cam):
    """Project root-centred camera-frame joints (B,T,24,3) with (s, tx, ty) (B,T,3) → (B,T,24,2)."""
    return cam[..., None, 0:1] * joints[..., :2] + cam[..., None, 1:3]


def gaussian_kl(mu_q, sig_q, mu_p, sig_p):
    """KL(N(mu_q, sig_q) ‖ N(mu_p, sig_p)) summed over the last axis."""
    return (torch.log(sig_p / sig_q) + (sig_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sig_p ** 2) - 0.5).sum(-1)


def temporal_loss(out, batch, joint_model, weights=WEIGHTS):
    """Total loss and its parts. ``batch`` holds: rotmats (B,T,24,3,3) camera-frame local
    rotations, betas (B,10), joints2d (B,T,24,2) normalised like the input keypoints,
    joints2d_vis (B,T,24), prvipe_mu/prvipe_sigma (B,T,32)."""
    rot = rot6d_to_matrix(out["rot6d"])
    rest_pred = joint_model(out["betas"])
    rest_true = joint_model(batch["betas"])
    j_pred = root_centred(forward_kinematics(rot, rest_pred))
    j_true = root_centred(forward_kinematics(batch["rotmats"], rest_true))
    parts = {
        "joints3d": torch.linalg.norm(j_pred - j_true, dim=-1).mean(),
        "rotations": ((rot - batch["rotmats"]) ** 2).mean(),
        "betas": ((out["betas"] - batch["betas"]) ** 2).mean(),
        "velocity": torch.linalg.norm((j_pred[:, 1:] - j_pred[:, :-1]) - (j_true[:, 1:] - j_true[:, :-1]), dim=-1).mean(),
    }
    p2d = weak_perspective(j_pred, out["cam"])
    vis = batch["joints2d_vis"]
    parts["joints2d"] = (torch.linalg.norm(p2d - batch["joints2d"], dim=-1) * vis).sum() / vis.sum().clamp(min=1)
    # KL(Pr-VIPE ‖ predicted): the predicted σ is in the denominator, so a confident (tiny-σ)
    # Pr-VIPE target cannot blow the term up (the reverse direction, with it in the denominator, does)
    parts["uncertainty"] = gaussian_kl(batch["prvipe_mu"], batch["prvipe_sigma"], out["embed_mu"], out["embed_sigma"]).mean()
    total = sum(weights[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}
