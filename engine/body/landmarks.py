"""Body → MediaPipe Pose's 33 landmarks (numpy only): the engine's reprojection figure and
image-aligned fit, the benchmarks' landmark scoring and the training data generator.

Each landmark is either an SMPL joint or a small set of mesh vertices (their mean), chosen on
the body's rest (T-pose) mesh by the rules below, so the same code serves the open body, the
user's SMPL and the capsule stand-in (canonical frame: Y up, facing +Z, left +X, metres):

| landmarks | source |
|---|---|
| shoulders, elbows, wrists, hips, knees, ankles | the SMPL joints of the same name |
| nose | head vertices within 1.5 cm of the mid-sagittal plane: the most anterior one |
| eyes (inner/centre/outer) | most anterior head vertex near x = ±1.8 / ±3.2 / ±4.5 cm, 3 cm above the nose tip |
| mouth corners | most anterior head vertex near x = ±2.2 cm, 3.5 cm below the nose tip |
| ears | most lateral head vertex in a 3 cm band at nose-tip height + 0.5 cm |
| index / pinky | hand vertices nearest the index / little-finger knuckle: 45 % / 42 % of the hand length from the wrist, ±3 cm front/back (T-pose palms face down) |
| thumb | hand vertex nearest wrist + 30 % hand length, 5 cm forward, 1 cm down |
| heel | foot vertices below the ankle: the most posterior, among the 3 cm lowest |
| foot_index | foot vertices: the most anterior (toe tip) |

"Head/hand/foot vertices" are those whose largest skinning weight is on the head, on the
wrist/hand, or on the ankle/foot joints of that side. Every vertex landmark averages the chosen
vertex with its 3 nearest neighbours (a small patch, robust to mesh density).
"""
import numpy as np

from ..observe import LANDMARK_NAMES, LM, NUM_LANDMARKS
from . import kinematics as K
from .skeleton import JOINT_INDEX as J

JOINT_LANDMARKS = {f"{s}_{n}": f"{s}_{n}" for s in ("left", "right")
                   for n in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}

# MediaPipe landmark index of each landmark's mirror image (left ↔ right).
MIRROR = np.array([LM[n.replace("left", "#").replace("right", "left").replace("#", "right")]
                   for n in LANDMARK_NAMES])


def _patch(v, i, k=4):
    return np.argsort(np.linalg.norm(v - v[i], axis=1))[:k]


def landmark_spec(body, betas=None):
    """{landmark name: ("joint", j) or ("verts", index array)} for ``body``."""
    v = body.shaped_vertices(betas)
    jt = body.J_regressor @ v
    owner = np.argmax(body.weights, axis=1)
    spec = {mp: ("joint", J[smpl]) for mp, smpl in JOINT_LANDMARKS.items()}
    head = np.flatnonzero(owner == J["head"])
    hv = v[head]

    def best(cands, key):
        return cands[np.argmax(key)]

    nose = best(head[np.abs(hv[:, 0]) < 0.015] if np.any(np.abs(hv[:, 0]) < 0.015) else head,
                v[head[np.abs(hv[:, 0]) < 0.015] if np.any(np.abs(hv[:, 0]) < 0.015) else head, 2])
    ny = v[nose, 1]

    def front_near(x, y, tol=0.012):
        d = np.hypot(hv[:, 0] - x, hv[:, 1] - y)
        c = head[d < tol]
        if len(c) == 0:
            c = head[np.argsort(d)[:5]]
        return c[np.argmax(v[c, 2])]

    spec["nose"] = ("verts", _patch(v, nose))
    for side, sx in (("left", 1.0), ("right", -1.0)):
        for name, x in (("eye_inner", .018), ("eye", .032), ("eye_outer", .045)):
            spec[f"{side}_{name}"] = ("verts", _patch(v, front_near(sx * x, ny + 0.03)))
        spec[f"mouth_{side}"] = ("verts", _patch(v, front_near(sx * .022, ny - 0.035)))
        band = head[np.abs(hv[:, 1] - (ny + 0.005)) < 0.015]
        band = band if len(band) else head
        spec[f"{side}_ear"] = ("verts", _patch(v, band[np.argmax(sx * v[band, 0])]))
        # hands
        hand = np.flatnonzero(np.isin(owner, [J[f"{side}_wrist"], J[f"{side}_hand"]]))
        w = jt[J[f"{side}_wrist"]]
        u = jt[J[f"{side}_hand"]] - w
        u /= np.linalg.norm(u)
        L = max(np.max((v[hand] - w) @ u), 0.05)
        fwd, up = np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
        for name, tgt in (("index", w + 0.45 * L * u + 0.03 * fwd),
                          ("pinky", w + 0.42 * L * u - 0.03 * fwd),
                          ("thumb", w + 0.30 * L * u + 0.05 * fwd - 0.01 * up)):
            spec[f"{side}_{name}"] = ("verts", _patch(v, hand[np.argmin(np.linalg.norm(v[hand] - tgt, axis=1))]))
        # feet
        foot = np.flatnonzero(np.isin(owner, [J[f"{side}_ankle"], J[f"{side}_foot"]]))
        low = foot[v[foot, 1] < v[foot, 1].min() + 0.03]
        spec[f"{side}_heel"] = ("verts", _patch(v, low[np.argmin(v[low, 2])]))
        spec[f"{side}_foot_index"] = ("verts", _patch(v, foot[np.argmax(v[foot, 2])]))
    assert set(spec) == set(LANDMARK_NAMES)
    return spec


def spec_matrix(spec, num_vertices, num_joints=24):
    """Dense (33, V+J) averaging matrix: landmarks = M @ concat(vertices, joints)."""
    M = np.zeros((NUM_LANDMARKS, num_vertices + num_joints), np.float32)
    for name, (kind, idx) in spec.items():
        if kind == "joint":
            M[LM[name], num_vertices + idx] = 1.0
        else:
            M[LM[name], idx] = 1.0 / len(idx)
    return M


def landmarks_from_body(vertices, joints, M):
    """(T,V,3) vertices and (T,24,3) joints → (T,33,3) landmarks with a spec_matrix ``M``."""
    X = np.concatenate([vertices, joints], axis=1)            # (T, V+J, 3)
    T, N, _ = X.shape
    cols = np.flatnonzero(M.any(0))                            # only the used points
    out = M[:, cols] @ X[:, cols].transpose(1, 0, 2).reshape(len(cols), T * 3)
    return out.reshape(len(M), T, 3).transpose(1, 0, 2)


class LandmarkModel:
    """MediaPipe-convention landmarks of a posed body, skinning only the few vertices they use.

    ``body`` a BodyModel, ``betas`` its shape; ``__call__(poses (T,72), trans (T,3))`` →
    (T,33,3) in the body's world (NaN rows stay NaN). About a hundred vertices are skinned
    instead of the whole mesh, so a long clip costs little."""

    def __init__(self, body, betas=None):
        spec = landmark_spec(body, betas)
        v = body.shaped_vertices(betas)
        self.rest_joints = body.J_regressor @ v
        self.parents = body.parents
        M = spec_matrix(spec, len(v))
        self.cols = np.flatnonzero(M.any(0))
        self.M = M[:, self.cols].astype(np.float64)
        vert_cols = self.cols[self.cols < len(v)]
        self.vert_idx = vert_cols
        self.joint_idx = self.cols[self.cols >= len(v)] - len(v)
        self.v_rest = v[vert_cols]
        self.w = body.weights[vert_cols]
        self.posedirs = None if body.posedirs is None else body.posedirs[vert_cols]

    def __call__(self, poses, trans=None):
        rot = K.axis_angle_to_matrix(np.nan_to_num(np.asarray(poses, np.float64)).reshape(-1, 24, 3))
        G = K.global_transforms(rot, self.rest_joints, self.parents)
        joints = G[..., :3, 3]
        v = np.broadcast_to(self.v_rest, rot.shape[:1] + self.v_rest.shape)
        if self.posedirs is not None:
            v = v + np.einsum("tp,vcp->tvc", K.pose_feature(rot), self.posedirs)
        verts = K.linear_blend_skinning(v, self.w, K.skinning_transforms(G, self.rest_joints))
        X = np.concatenate([verts, joints[:, self.joint_idx]], axis=1)       # (T, cols, 3)
        out = np.einsum("lc,tcd->tld", self.M, X)
        if trans is not None:
            out = out + np.asarray(trans, np.float64)[:, None, :]
        bad = ~np.isfinite(np.asarray(poses, np.float64)).reshape(len(out), -1).all(1)
        if trans is not None:
            bad |= ~np.isfinite(np.asarray(trans, np.float64)).all(1)
        out[bad] = np.nan
        return out
