"""Torch geometry for training: 6D rotations (Zhou et al. 2019) and SMPL-24 forward kinematics."""
import numpy as np
import torch

from engine.body.skeleton import PARENTS


def rot6d_to_matrix(x):
    """(..., 6) → (..., 3, 3) by Gram–Schmidt on the two columns; always a proper rotation."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(m):
    """(..., 3, 3) → (..., 6): the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


class JointShapeModel(torch.nn.Module):
    """Rest joints of a SMPL-layout body as a linear function of betas (J_regressor folded in)."""

    def __init__(self, body, num_betas=10):
        super().__init__()
        jt = body.J_regressor @ body.v_template
        jd = np.einsum("jv,vcs->jcs", body.J_regressor, body.shapedirs[..., :num_betas])
        self.register_buffer("joints_template", torch.tensor(jt, dtype=torch.float32))
        self.register_buffer("joint_shapedirs", torch.tensor(jd, dtype=torch.float32))

    def forward(self, betas):
        """betas (B,S) → rest joints (B,24,3)."""
        return self.joints_template + torch.einsum("jcs,bs->bjc", self.joint_shapedirs, betas)


def forward_kinematics(rot, rest):
    """Posed joints (B,T,24,3), root at its rest position; rot (B,T,24,3,3), rest (B,24,3)."""
    parents = PARENTS.tolist()
    rel = rest.clone()
    rel[:, 1:] = rest[:, 1:] - rest[:, parents[1:]]
    rel = rel[:, None].expand(rot.shape[:2] + rel.shape[1:])
    g_rot = [rot[:, :, 0]]
    g_pos = [rel[:, :, 0]]
    for j in range(1, 24):
        p = parents[j]
        g_pos.append(g_pos[p] + torch.einsum("btij,btj->bti", g_rot[p], rel[:, :, j]))
        g_rot.append(g_rot[p] @ rot[:, :, j])
    return torch.stack(g_pos, dim=2)
