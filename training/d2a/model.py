"""Seed 0: D2A-HMR per-frame refinement (Bright et al.) — a distribution- and depth-aware
transformer, keypoint input, initialised from the seed-2 temporal model's estimate.

One frame at a time (B frames in a batch):

    tokens ─ encoder (self-attention → cross-attention to depth tokens → feed-forward) × L
           ─ decoder: 24 joint queries + 431 coarse-vertex queries (self-attention →
             cross-attention to the encoder tokens → feed-forward) × L
           ─ heads: joints (24,3) + σ (24) [RLE], 6D rotations, coarse vertices (431,3);
             camera token → shape, weak-perspective camera; silhouette decoder (56×56)

Tokens (after FastMETRO: a camera token plus frame tokens):
- **camera token**: learned, plus a projection of the person-box/zoom cues (features[198:202])
  and the temporal estimate's camera and shape;
- **keypoint tokens** (33): each landmark's normalised (x, y, visibility) (features[0:99]) plus
  a learned landmark embedding — the "image" tokens of the keypoint-input design;
- **silhouette tokens** (49): the person mask, S×S (56) crop, cut into 8×8 patches, projected,
  plus a learned 2D position embedding. The crop convention is synth's: a square box centred on
  the detected keypoints' box, side 1.2 × its longer side;
- **depth tokens** (33, the pseudo-depth prior): each landmark's world position (features
  [99:198], MediaPipe's metric hip-centred landmarks: their z is the landmark's depth) plus a
  learned landmark embedding; optionally (``use_depth_map``) also 49 patch tokens of a depth
  render of the temporal estimate (metres relative to the pelvis, 0 = background, synth's
  ``depth`` convention) — off by default because the engine does not render it yet.
Encoder layers: self-attention over camera/keypoint/silhouette tokens, then cross-attention with
those tokens as queries and the depth tokens as keys/values, then feed-forward (SEEDS.md).

Decoder queries are initialised from the temporal estimate: joint query j = learned embedding
+ MLP(temporal joint position j, temporal 6D rotation j); coarse-vertex query v = learned
embedding + MLP(temporal coarse vertex v). The temporal joints and coarse vertices come from the
estimate's rotations and shape by FK and linear blend skinning inside the network (open body,
no pose correctives), root-centred in the camera frame. Outputs are residuals on that estimate,
so an untrained head (zero-initialised) returns the temporal estimate unchanged.

Masked modelling (METRO): in training only, a share r ~ U(0, ``mask_ratio``) (at most 30 %) of
the joint and vertex queries of each sample is replaced by a learned constant token (their
identity embedding is kept, their temporal content dropped) and their residual base becomes the
rest-pose template instead of the temporal estimate, so they must be inferred from the frame
and the other queries. Never at inference (``model.eval()``).

RLE (``training.d2a.rle``): a per-joint σ head (sigmoid, metres, floor 1e-4) on the joint
tokens; the RealNVP flow lives in ``D2ATraining`` (training only, not exported).

Coordinates: joints and vertices in metres, camera frame (OpenCV axes), relative to the
temporal estimate's pelvis (≈ root-centred; the pelvis itself is predicted too). Rotations are
local, the root's is the global orientation in the camera frame (as in the temporal model).

Residual scale (ours): the residual heads' outputs are multiplied by ``residual_scale`` (0.02,
i.e. heads predict in units of 2 cm / 0.02 6D units). Their inputs are layer-normalised 128-d
tokens, so one Adam step of lr 1e-3 on an unscaled head moves an output by up to ~0.1 m, ten
times the residuals to learn (~1.5 cm): unscaled, the network could not even overfit 16 frames
(MODEL_CARD_d2a.md).

Choices where the papers are silent (ours): pre-norm transformer layers, d_model 128, 4 heads,
3 encoder + 3 decoder layers, FFN ×2 (FastMETRO: ×4; halved for CPU run time and a ~5.5 MB
ONNX), dropout 0.1; the depth tokens are a fixed memory (not updated by the encoder); no attention masks from the mesh adjacency (FastMETRO uses them in its
decoder); the silhouette decoder upsamples the 7×7 silhouette-token grid by three ×2 conv stages;
rotations and shape are supervised too (the engine fits rotations to the refined joints and
starts from them).
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.geometry import JointShapeModel, matrix_to_rot6d, rot6d_to_matrix
from training.temporal.losses import weak_perspective
from engine.body.skeleton import PARENTS

NUM_LANDMARKS = 33
NUM_JOINTS = 24
SIL_SIZE = 56
PATCH = 8

DEFAULTS = dict(d_model=128, heads=4, enc_layers=3, dec_layers=3, ffn_mult=2, dropout=0.1, use_depth=True,
                use_depth_map=False, use_silhouette_input=True, use_silhouette_decoder=True, mask_ratio=0.3,
                sil_size=SIL_SIZE, patch=PATCH, num_betas=10, residual_scale=0.02)

# Loss weights, FastMETRO's (3D joints 1000, vertices 100, 2D 100; L1 losses, metres and the
# [-1,1] crop) with SEEDS.md's λd≈1, λs≈10, scaled to our units:
# - 3D joints and vertices: metres, as FastMETRO: 1000 and 100 unchanged;
# - 2D: our normalised keypoint units (``engine.estimate.network_inputs``: 1 unit ≈ the person's height) are
#   ~1.6× FastMETRO's crop units (a person spans ~1.6 of the crop's 2 units), so an error in ours
#   is 1/1.6 of the same error in theirs: weight 100 × 1.6 = 160;
# - RLE (nats per joint) 1 and silhouette BCE (per pixel) 10 are unitless: unchanged.
# Ours: rotations (rotation-matrix-entry MSE) 100 and shape (MSE) 1 — the papers supervise SMPL
# parameters through the mesh instead; ImpHMR's auxiliary term 0.02 (its parts use the same
# per-quantity weights, see imphmr.py); at 0.1 its sum (canonical + imagined + consistency)
# outweighed the refinement's own losses on the shared encoder code (MODEL_CARD_d2a.md).
WEIGHTS = {"rle": 1.0, "vertices": 100.0, "joints3d": 1000.0, "joints2d": 160.0, "silhouette": 10.0,
           "rotations": 100.0, "betas": 1.0, "imphmr": 0.02}

# Ablation switches (each off alone), as model-argument and training overrides.
SWITCHES = {
    "no_depth": {"model": {"use_depth": False}},
    "no_rle": {"train": {"use_rle": False}},
    "no_silhouette": {"model": {"use_silhouette_decoder": False}},
    "no_masking": {"model": {"mask_ratio": 0.0}},
    "no_imphmr": {"train": {"use_imphmr": False}},
}
# The model card's rows, cumulative (row 0, "temporal only", is the seed-2 model alone).
ABLATION_ROWS = (
    ("refine", {"model": {"use_depth": False, "use_silhouette_decoder": False, "mask_ratio": 0.0},
                "train": {"use_rle": False, "use_imphmr": False}}),
    ("+depth", {"model": {"use_silhouette_decoder": False, "mask_ratio": 0.0},
                "train": {"use_rle": False, "use_imphmr": False}}),
    ("+rle", {"model": {"use_silhouette_decoder": False, "mask_ratio": 0.0}, "train": {"use_imphmr": False}}),
    ("+silhouette", {"model": {"mask_ratio": 0.0}, "train": {"use_imphmr": False}}),
    ("+masking", {"train": {"use_imphmr": False}}),
    ("+imphmr", {}),
)


def ablation(name):
    """Overrides {"model": ..., "train": ...} for a switch or a model-card row name."""
    if name in ("full", "+imphmr"):
        return {"model": {}, "train": {}}
    if name in SWITCHES:
        return {"model": {}, "train": {}, **SWITCHES[name]}
    rows = dict(ABLATION_ROWS)
    if name in rows:
        return {"model": {}, "train": {}, **rows[name]}
    raise KeyError(f"unknown ablation {name!r}: one of full, {', '.join(SWITCHES)}, {', '.join(rows)}")


# ---------------------------------------------------------------- transformer parts
class Attention(nn.Module):
    """Multi-head attention written out (exports to ONNX as plain MatMul/Softmax)."""

    def __init__(self, d, heads, dropout=0.0):
        super().__init__()
        assert d % heads == 0
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mem):
        B, N, d = x.shape
        M = mem.shape[1]
        q = self.q(x).reshape(B, N, self.h, self.dh).transpose(1, 2)
        k = self.k(mem).reshape(B, M, self.h, self.dh).transpose(1, 2)
        v = self.v(mem).reshape(B, M, self.h, self.dh).transpose(1, 2)
        # scale q (N×dh) rather than the scores (N×M): the same product, and dividing the
        # 455×455 score maps is a large share of the forward time on CPU
        a = torch.softmax((q * (1.0 / math.sqrt(self.dh))) @ k.transpose(-1, -2), dim=-1)
        return self.o((self.drop(a) @ v).transpose(1, 2).reshape(B, N, d))


def _ffn(d, mult, dropout):
    return nn.Sequential(nn.Linear(d, mult * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(mult * d, d))


class Layer(nn.Module):
    """Pre-norm: x += SA(x); [x += CA(x → mem)]; x += FFN(x)."""

    def __init__(self, d, heads, mult, dropout, cross=True):
        super().__init__()
        self.n1, self.n3 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.sa = Attention(d, heads, dropout)
        self.cross = cross
        if cross:
            self.n2, self.nm = nn.LayerNorm(d), nn.LayerNorm(d)
            self.ca = Attention(d, heads, dropout)
        self.ff = _ffn(d, mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mem=None):
        h = self.n1(x)
        x = x + self.drop(self.sa(h, h))
        if self.cross:
            x = x + self.drop(self.ca(self.n2(x), self.nm(mem)))
        return x + self.drop(self.ff(self.n3(x)))


def mlp(i, h, o):
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, o))


def patches(img, p):
    """(B,S,S) → (B,(S/p)², p²) non-overlapping patches, row-major."""
    B, S, _ = img.shape
    n = S // p
    return img.reshape(B, n, p, n, p).permute(0, 1, 3, 2, 4).reshape(B, n * n, p * p)


# ---------------------------------------------------------------- body (torch)
class CoarseBody(nn.Module):
    """Rest joints and coarse vertices of a SMPL-layout body as functions of shape; posing by FK
    + LBS (no pose correctives). Exports to ONNX (24 small matmuls)."""

    def __init__(self, body, coarse, num_betas=10):
        super().__init__()
        self.joints = JointShapeModel(body, num_betas)
        idx = np.asarray(coarse.indices)
        self.register_buffer("v_template", torch.tensor(body.v_template[idx], dtype=torch.float32))
        self.register_buffer("shapedirs", torch.tensor(body.shapedirs[idx, :, :num_betas], dtype=torch.float32))
        self.register_buffer("weights", torch.tensor(body.weights[idx], dtype=torch.float32))
        self.parents = PARENTS.tolist()

    def forward(self, rot, betas):
        """rot (B,24,3,3) local, betas (B,S) → joints (B,24,3), coarse vertices (B,n,3), both
        relative to the posed pelvis."""
        rest = self.joints(betas)
        v = self.v_template + torch.einsum("vcs,bs->bvc", self.shapedirs, betas)
        g_rot, g_pos = [rot[:, 0]], [rest[:, 0]]
        for j in range(1, NUM_JOINTS):
            p = self.parents[j]
            g_pos.append(g_pos[p] + torch.einsum("bij,bj->bi", g_rot[p], rest[:, j] - rest[:, p]))
            g_rot.append(g_rot[p] @ rot[:, j])
        G = torch.stack(g_rot, 1)                                          # (B,24,3,3)
        P = torch.stack(g_pos, 1)                                          # (B,24,3)
        t = P - torch.einsum("bjik,bjk->bji", G, rest)                     # G·(x − rest) + P
        A = torch.einsum("vj,bjik->bvik", self.weights, G)
        tv = torch.einsum("vj,bji->bvi", self.weights, t)
        verts = torch.einsum("bvik,bvk->bvi", A, v) + tv
        root = P[:, :1]
        return P - root, verts - root


# ---------------------------------------------------------------- the network
class D2AHMR(nn.Module):
    def __init__(self, body=None, coarse=None, **cfg):
        super().__init__()
        cfg = {**DEFAULTS, **cfg}
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown D2AHMR options: {sorted(unknown)}")
        self.cfg = cfg
        if body is None:
            from engine.body import load_body_model
            body = load_body_model()
        if coarse is None:
            from training.d2a.coarse_mesh import load
            coarse = load(body=body)
        d, S, p = cfg["d_model"], cfg["sil_size"], cfg["patch"]
        if S % p:
            raise ValueError("sil_size must be a multiple of patch")
        self.grid = S // p
        n_patch = self.grid ** 2
        self.num_coarse = len(coarse.indices)
        self.coarse = coarse                   # plain attribute (numpy): the upsampling for training
        self.use_depth, self.use_depth_map = cfg["use_depth"], cfg["use_depth_map"] and cfg["use_depth"]
        self.use_sil_in, self.use_sil_dec = cfg["use_silhouette_input"], cfg["use_silhouette_decoder"]
        self.mask_ratio = float(cfg["mask_ratio"])
        self.residual_scale = float(cfg["residual_scale"])
        nb = cfg["num_betas"]
        self.body = CoarseBody(body, coarse, nb)
        # rest-pose template (mean shape) = the residual base of masked queries
        with torch.no_grad():
            eye = torch.eye(3).expand(1, NUM_JOINTS, 3, 3)
            tj, tv = self.body(eye, torch.zeros(1, nb))
        self.register_buffer("template_joints", tj[0])
        self.register_buffer("template_vertices", tv[0])
        self.register_buffer("identity6d", matrix_to_rot6d(torch.eye(3)).expand(NUM_JOINTS, 6).clone())

        # tokens
        self.cam_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cam_proj = nn.Linear(4 + 3 + nb, d)
        self.kp_proj = nn.Linear(3, d)
        self.kp_embed = nn.Parameter(torch.randn(NUM_LANDMARKS, d) * 0.02)
        self.sil_proj = nn.Linear(p * p, d) if self.use_sil_in else None
        self.sil_pos = nn.Parameter(torch.randn(n_patch, d) * 0.02)
        if self.use_depth:
            self.depth_proj = nn.Linear(3, d)
            self.depth_embed = nn.Parameter(torch.randn(NUM_LANDMARKS, d) * 0.02)
            if self.use_depth_map:
                self.dmap_proj = nn.Linear(p * p, d)
                self.dmap_pos = nn.Parameter(torch.randn(n_patch, d) * 0.02)
        L = dict(heads=cfg["heads"], mult=cfg["ffn_mult"], dropout=cfg["dropout"])
        self.encoder = nn.ModuleList([Layer(d, cross=self.use_depth, **L) for _ in range(cfg["enc_layers"])])
        self.enc_norm = nn.LayerNorm(d)
        # decoder queries
        self.joint_embed = nn.Parameter(torch.randn(NUM_JOINTS, d) * 0.02)
        self.vert_embed = nn.Parameter(torch.randn(self.num_coarse, d) * 0.02)
        self.joint_init = mlp(3 + 6, d, d)
        self.vert_init = mlp(3, d, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.decoder = nn.ModuleList([Layer(d, cross=True, **L) for _ in range(cfg["dec_layers"])])
        self.dec_norm = nn.LayerNorm(d)
        # heads (residuals zero-initialised: an untrained head returns the temporal estimate)
        self.joint_head = nn.Linear(d, 3)
        self.rot_head = nn.Linear(d, 6)
        self.vert_head = nn.Linear(d, 3)
        self.sigma_head = nn.Linear(d, 1)
        self.betas_head = nn.Linear(d, nb)
        self.cam_head = nn.Linear(d, 3)
        for h in (self.joint_head, self.rot_head, self.vert_head, self.betas_head, self.cam_head):
            nn.init.zeros_(h.weight)
            nn.init.zeros_(h.bias)
        nn.init.normal_(self.sigma_head.weight, std=0.01)
        nn.init.constant_(self.sigma_head.bias, math.log(0.1 / 0.9))   # σ starts at 0.1 m
        if self.use_sil_dec:
            c = d // 2
            self.sil_decoder = nn.Sequential(
                nn.Conv2d(d, c, 3, padding=1), nn.GELU(),
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 3, padding=1), nn.GELU(),
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c // 2, 1, 3, padding=1))
        self.code_dim = 2 * d

    @property
    def input_names(self):
        return ("features", "silhouette", "init_rot6d", "init_betas", "init_cam") + \
            (("depth_map",) if self.use_depth_map else ())

    def initial_estimate(self, init_rot6d, init_betas):
        """Temporal estimate → (joints (B,24,3), coarse vertices (B,n,3)) relative to its pelvis."""
        return self.body(rot6d_to_matrix(init_rot6d), init_betas)

    def _query_mask(self, B, device):
        n = NUM_JOINTS + self.num_coarse
        if not (self.training and self.mask_ratio > 0):
            return torch.zeros(B, n, dtype=torch.bool, device=device)
        r = torch.rand(B, 1, device=device) * self.mask_ratio
        return torch.rand(B, n, device=device) < r

    def forward(self, features, silhouette, init_rot6d, init_betas, init_cam, depth_map=None,
                return_silhouette=True):
        """features (B,202), silhouette (B,S,S) in [0,1], init_rot6d (B,24,6), init_betas (B,10),
        init_cam (B,3) [, depth_map (B,S,S)] → dict: joints (B,24,3), sigma (B,24),
        vertices (B,n,3), rot6d (B,24,6), betas (B,10), cam (B,3), silhouette_logits (B,S,S)
        (when the decoder is on and asked for), global_code (B,2d), query_mask (B,24+n)."""
        B = features.shape[0]
        kp = features[:, :99].reshape(B, NUM_LANDMARKS, 3)
        world = features[:, 99:198].reshape(B, NUM_LANDMARKS, 3)
        box = features[:, 198:202]
        cam_tok = self.cam_token.expand(B, -1, -1) + self.cam_proj(torch.cat([box, init_cam, init_betas], -1))[:, None]
        kp_tok = self.kp_proj(kp) + self.kp_embed
        sil_tok = self.sil_pos.expand(B, -1, -1)
        if self.use_sil_in:
            sil_tok = sil_tok + self.sil_proj(patches(silhouette, self.cfg["patch"]))
        x = torch.cat([cam_tok, kp_tok, sil_tok], 1)
        mem = None
        if self.use_depth:
            mem = self.depth_proj(world) + self.depth_embed
            if self.use_depth_map:
                mem = torch.cat([mem, self.dmap_proj(patches(depth_map, self.cfg["patch"])) + self.dmap_pos], 1)
        for layer in self.encoder:
            x = layer(x, mem)
        x = self.enc_norm(x)

        # decoder queries from the temporal estimate
        j0, v0 = self.initial_estimate(init_rot6d, init_betas)
        qj = self.joint_embed + self.joint_init(torch.cat([j0, init_rot6d], -1))
        qv = self.vert_embed + self.vert_init(v0)
        q = torch.cat([qj, qv], 1)
        qmask = self._query_mask(B, features.device)
        base_j, base_r, base_v = j0, init_rot6d, v0
        if self.training and self.mask_ratio > 0:          # masked modelling: training only
            ident = torch.cat([self.joint_embed, self.vert_embed], 0).expand(B, -1, -1)
            q = torch.where(qmask[..., None], ident + self.mask_token, q)
            mj, mv = qmask[:, :NUM_JOINTS, None], qmask[:, NUM_JOINTS:, None]
            base_j = torch.where(mj, self.template_joints.expand(B, -1, -1), j0)
            base_r = torch.where(mj, self.identity6d.expand(B, -1, -1), init_rot6d)
            base_v = torch.where(mv, self.template_vertices.expand(B, -1, -1), v0)
        for layer in self.decoder:
            q = layer(q, x)
        q = self.dec_norm(q)
        hj, hv = q[:, :NUM_JOINTS], q[:, NUM_JOINTS:]
        k = self.residual_scale
        out = {
            "joints": base_j + k * self.joint_head(hj),
            "sigma": torch.sigmoid(self.sigma_head(hj))[..., 0],
            "vertices": base_v + k * self.vert_head(hv),
            "rot6d": base_r + k * self.rot_head(hj),
            "betas": init_betas + k * self.betas_head(x[:, 0]),
            "cam": init_cam + k * self.cam_head(x[:, 0]),
            "global_code": torch.cat([x[:, 0], x.mean(1)], -1),
            "query_mask": qmask,
        }
        if self.use_sil_dec and return_silhouette:
            n0 = 1 + NUM_LANDMARKS
            g = x[:, n0:n0 + self.grid ** 2].transpose(1, 2).reshape(B, -1, self.grid, self.grid)
            out["silhouette_logits"] = self.sil_decoder(g)[:, 0]
        return out


# ---------------------------------------------------------------- training objective
def _mean(x, w=None):
    """Mean of x (B,...) with optional per-sample weights w (B,)."""
    if w is None:
        return x.mean()
    per = x.reshape(x.shape[0], -1).mean(1)
    return (per * w).sum() / w.sum().clamp(min=1)


def _l1(a, b, w=None):
    """Mean absolute coordinate error (FastMETRO's L1)."""
    return _mean((a - b).abs(), w)


class D2ATraining(nn.Module):
    """The refinement network with its training-only parts (RLE flow, ImpHMR branch) and the loss

        L = λd·L_RLE + λv·L_vertices + λ3D·L_3D + λ2D·L_2D + λs·L_silhouette
            (+ ours: λrot·L_rotations + λβ·L_betas + λimp·L_ImpHMR)

    ``batch`` (per frame, B frames):

    | key | shape | what |
    |---|---|---|
    | features | (B,202) | ``engine.estimate.network_inputs.frame_features`` |
    | silhouette_in | (B,S,S) | the observed person mask crop, [0,1] |
    | depth_map | (B,S,S) | optional: depth render of the temporal estimate (``use_depth_map``) |
    | init_rot6d / init_betas / init_cam | (B,24,6) / (B,10) / (B,3) | the temporal model's estimate |
    | joints3d | (B,24,3) | true joints, camera frame, minus the true pelvis (metres) |
    | vertices_coarse | (B,n,3) | true posed mesh at the coarse indices, minus the true pelvis |
    | rotmats / betas | (B,24,3,3) / (B,10) | true local rotations (root in the camera frame), shape |
    | joints2d / joints2d_vis | (B,24,2) / (B,24) | as in ``training.temporal.dataset`` |
    | silhouette | (B,S,S) | the rendered true body in the same crop, {0,1} |
    | valid | (B,) | optional frame weights (undetected frames 0) |

    Only ``self.model`` is exported (``training.d2a.export``)."""

    def __init__(self, model, use_rle=True, use_imphmr=True, weights=None, imphmr_args=None, rle_mc_samples=0,
                 imphmr_frames=None):
        super().__init__()
        from training.d2a.rle import RealNVP
        self.model = model
        self.use_rle, self.use_imphmr = use_rle, use_imphmr
        self.weights = {**WEIGHTS, **(weights or {})}
        if not model.use_sil_dec:
            self.weights["silhouette"] = 0.0
        self.flow = RealNVP(3, 6, 64) if use_rle else None
        self.rle_mc_samples = rle_mc_samples
        # ImpHMR's volume rendering (16×16 rays × 32 samples a frame) costs more than the rest of
        # the step; ``imphmr_frames`` = k applies it to the first k frames of each (shuffled)
        # batch only, so the other losses see more frames per second (ours; None = every frame)
        self.imphmr_frames = None if imphmr_frames is None else int(imphmr_frames)
        if use_imphmr:
            from training.d2a.imphmr import ImpHMR
            self.imphmr = ImpHMR(model.code_dim, **(imphmr_args or {}))
            cm = model.coarse
            self.register_buffer("up_index", torch.as_tensor(np.asarray(cm.up_index, np.int64)), persistent=False)
            self.register_buffer("up_weight", torch.as_tensor(np.asarray(cm.up_weight, np.float32)), persistent=False)
        else:
            self.imphmr = None

    def upsample(self, coarse):
        """Coarse vertices (B,n,3) → the full mesh (B,V,3) with the fixed upsampling."""
        return (coarse[:, self.up_index] * self.up_weight[..., None]).sum(-2)

    def forward(self, batch, generator=None):
        m = self.model
        out = m(batch["features"], batch["silhouette_in"], batch["init_rot6d"], batch["init_betas"],
                batch["init_cam"], batch.get("depth_map"))
        w = batch.get("valid")
        w = None if w is None else w.float()
        W = self.weights
        parts = {"joints3d": _l1(out["joints"], batch["joints3d"], w),
                 "vertices": _l1(out["vertices"], batch["vertices_coarse"], w)}
        vis = batch["joints2d_vis"] * (1 if w is None else w[:, None])
        p2d = weak_perspective(out["joints"] - out["joints"][:, :1], out["cam"])
        parts["joints2d"] = ((p2d - batch["joints2d"]).abs().mean(-1) * vis).sum() / vis.sum().clamp(min=1)
        parts["rotations"] = _mean(((rot6d_to_matrix(out["rot6d"]) - batch["rotmats"]) ** 2).flatten(1), w)
        parts["betas"] = _mean((out["betas"] - batch["betas"]) ** 2, w)
        if self.use_rle:
            from training.d2a.rle import rle_loss
            jw = None if w is None else w[:, None].expand(-1, NUM_JOINTS)
            parts["rle"] = rle_loss(out["joints"], out["sigma"], batch["joints3d"], self.flow, jw,
                                    self.rle_mc_samples, generator)
        if m.use_sil_dec and W["silhouette"]:
            bce = F.binary_cross_entropy_with_logits(out["silhouette_logits"], batch["silhouette"].float(),
                                                     reduction="none")
            parts["silhouette"] = _mean(bce.flatten(1), w)
        if self.use_imphmr:
            from training.d2a.imphmr import imphmr_loss
            k = self.imphmr_frames or out["global_code"].shape[0]
            sub = {key: v[:k] for key, v in batch.items() if torch.is_tensor(v)}
            verts = self.upsample(sub["vertices_coarse"])
            imp, imp_parts = imphmr_loss(self.imphmr, out["global_code"][:k], sub, verts,
                                         None if w is None else w[:k], generator)
            parts["imphmr"] = imp
            parts.update({f"imphmr_{k}": v for k, v in imp_parts.items()})
        total = sum(W[k] * v for k, v in parts.items() if k in W)
        return total, {k: float(v.detach()) for k, v in parts.items()}, out


@torch.no_grad()
def toy_batch(model, batch=4, seed=0, noise=0.1):
    """A self-consistent random batch (tests and smoke runs): true pose/shape → joints, coarse
    vertices, 2D joints and an orthographic silhouette; the temporal estimate is the truth plus
    noise. Features are random (the network cannot use them; it can still learn from the rest)."""
    from training.d2a.imphmr import orthographic_silhouette
    g = torch.Generator().manual_seed(seed)
    nb, S = model.cfg["num_betas"], model.cfg["sil_size"]
    rotmats = rot6d_to_matrix(torch.tensor([1.0, 0, 0, 0, 1, 0]) + 0.3 * torch.randn(batch, NUM_JOINTS, 6, generator=g))
    betas = 0.5 * torch.randn(batch, nb, generator=g)
    joints, verts = model.body(rotmats, betas)
    cam = torch.tensor([1.0, 0.0, 0.0]) + 0.05 * torch.randn(batch, 3, generator=g)
    cm = model.coarse
    full = (verts[:, torch.as_tensor(np.asarray(cm.up_index, np.int64))]
            * torch.as_tensor(np.asarray(cm.up_weight, np.float32))[..., None]).sum(-2)
    sil = orthographic_silhouette(full, S, 1.2)
    out = {"features": 0.3 * torch.randn(batch, 202, generator=g), "silhouette_in": sil.clone(),
           "init_rot6d": matrix_to_rot6d(rotmats) + noise * torch.randn(batch, NUM_JOINTS, 6, generator=g),
           "init_betas": betas + noise * torch.randn(batch, nb, generator=g),
           "init_cam": cam + 0.02 * torch.randn(batch, 3, generator=g),
           "joints3d": joints, "vertices_coarse": verts, "rotmats": rotmats, "betas": betas,
           "joints2d": weak_perspective(joints, cam), "joints2d_vis": torch.ones(batch, NUM_JOINTS),
           "silhouette": sil, "valid": torch.ones(batch)}
    if model.use_depth_map:
        out["depth_map"] = 0.1 * torch.randn(batch, S, S, generator=g)
    return out
