"""Body → MediaPipe Pose's 33 landmarks (numpy only): the engine's reprojection figure and
image-aligned fit, the benchmarks' landmark scoring and the training data generator.

Two conventions place the landmarks on a body:

* **learned** (the default; the image-aligned fit keeps the rules, ``image_fit.FIT_CONVENTION``):
  each landmark a fixed weighted mix of mesh vertices and joints,
  fitted to where the real PoseLandmarker puts it on renders of the open body
  (``engine/data/landmark_convention.json``, made by ``python -m training.render.convention fit``;
  docs/detector_noise.md). MediaPipe's hips, for one, lie about 2 cm inside and 1 cm below the
  SMPL hip joints, its ankles 3 cm above the ankle joints. ``learned_landmark_spec`` carries it
  to another body (the user's SMPL, the capsule stand-in).
* **rules**: the first hand-made definition, kept for comparison. Each landmark is an SMPL joint
  or a small set of mesh vertices (their mean), chosen on the body's rest (T-pose) mesh by the
  rules below, so the same code serves every body (canonical frame: Y up, facing +Z, left +X,
  metres):

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
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import EngineError
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


def rule_landmark_spec(body, betas=None):
    """{landmark name: ("joint", j) or ("verts", index array)} for ``body`` by the rules above."""
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


CONVENTION_PATH = Path(__file__).resolve().parent.parent / "data" / "landmark_convention.json"
CONVENTIONS = ("learned", "rules")


@lru_cache(maxsize=2)
def _convention_table(path=CONVENTION_PATH):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read the landmark convention {Path(path).name}: {exc}") from exc


def learned_landmark_spec(body, betas=None, table=None):
    """{landmark name: ("mix", vertex ids, vertex weights, joint ids, joint weights)}: the learned
    convention (``landmark_convention.json``, fitted on the open body) carried to ``body``.

    On the open body the fitted vertices are used as they are. On any other body (the user's
    SMPL, the capsule stand-in) each fitted vertex becomes the vertex of the same owning joint
    nearest to the landmark's home joint (its own joint for the limb landmarks) plus the fitted
    offset scaled by the bodies' height ratio; joints carry over by index. Offsets from the home
    joint, not from the owning one, keep a point near its landmark on a body whose bones have
    other lengths."""
    table = _convention_table() if table is None else table
    ref = table["landmarks"]
    same = body.name == table["body"] and len(body.v_template) == table["num_vertices"]
    if not same:
        v = body.shaped_vertices(betas)
        rest = body.J_regressor @ v
        owner = np.argmax(body.weights, axis=1)
        scale = float(v[:, 1].max() - v[:, 1].min()) / table["body_height"]
    spec = {}
    for name in LANDMARK_NAMES:
        vi, vw = [], []
        for e in ref[name]["vertices"]:
            i = e["vertex"]
            if not same:
                tgt = rest[ref[name]["home"]] + scale * np.asarray(e["offset"])
                own = np.flatnonzero(owner == e["joint"])
                own = own if len(own) else np.arange(len(v))
                i = int(own[np.argmin(np.linalg.norm(v[own] - tgt, axis=1))])
            vi.append(i)
            vw.append(e["weight"])
        ji = [e["joint"] for e in ref[name]["joints"]]
        jw = [e["weight"] for e in ref[name]["joints"]]
        spec[name] = ("mix", np.array(vi, np.int64), np.array(vw), np.array(ji, np.int64), np.array(jw))
    return spec


def landmark_spec(body, betas=None, convention=None):
    """The 33 landmark definitions for ``body``: ``convention`` "learned" (the default, what
    MediaPipe puts on a body, ``learned_landmark_spec``) or "rules" (``rule_landmark_spec``)."""
    convention = convention or "learned"
    if convention not in CONVENTIONS:
        raise EngineError(f"unknown landmark convention '{convention}' (choose from {', '.join(CONVENTIONS)})")
    return learned_landmark_spec(body, betas) if convention == "learned" else rule_landmark_spec(body, betas)


def spec_matrix(spec, num_vertices, num_joints=24):
    """Dense (33, V+J) matrix: landmarks = M @ concat(vertices, joints). A "verts" entry is the
    mean of its vertices; a "mix" entry (the learned convention) a weighted sum of vertices and
    joints whose weights add up to 1."""
    M = np.zeros((NUM_LANDMARKS, num_vertices + num_joints), np.float32)
    for name, entry in spec.items():
        kind, idx = entry[0], entry[1]
        if kind == "joint":
            M[LM[name], num_vertices + idx] = 1.0
        elif kind == "verts":
            M[LM[name], idx] = 1.0 / len(idx)
        else:
            _, vi, vw, ji, jw = entry
            np.add.at(M[LM[name]], np.asarray(vi, np.int64), vw)          # a vertex may come twice
            np.add.at(M[LM[name]], num_vertices + np.asarray(ji, np.int64), jw)
    return M


def landmarks_from_body(vertices, joints, M):
    """(T,V,3) vertices and (T,24,3) joints → (T,33,3) landmarks with a spec_matrix ``M``."""
    X = np.concatenate([vertices, joints], axis=1)            # (T, V+J, 3)
    T, N, _ = X.shape
    cols = np.flatnonzero(M.any(0))                            # only the used points
    out = M[:, cols] @ X[:, cols].transpose(1, 0, 2).reshape(len(cols), T * 3)
    return out.reshape(len(M), T, 3).transpose(1, 0, 2)


class PointModel:
    """Points that are fixed weighted sums of a posed body's vertices and joints, skinning only
    the vertices they use: ``M`` (N, V+J) as ``spec_matrix`` builds it (one row per point);
    ``__call__(poses (T,72), trans (T,3))`` → (T,N,3) in the body's world (NaN rows stay NaN)."""

    def __init__(self, body, betas, M):
        v = body.shaped_vertices(betas)
        self.rest_joints = body.J_regressor @ v
        self.parents = body.parents
        self.cols = np.flatnonzero(np.asarray(M).any(0))
        self.M = np.asarray(M)[:, self.cols].astype(np.float64)
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
        out = np.tensordot(self.M, X, axes=([1], [1])).transpose(1, 0, 2)    # (T, N, 3), by BLAS
        if trans is not None:
            out = out + np.asarray(trans, np.float64)[:, None, :]
        bad = ~np.isfinite(np.asarray(poses, np.float64)).reshape(len(out), -1).all(1)
        if trans is not None:
            bad |= ~np.isfinite(np.asarray(trans, np.float64)).all(1)
        out[bad] = np.nan
        return out


class LandmarkModel(PointModel):
    """MediaPipe-convention landmarks of a posed body (``landmark_spec``'s points): about a
    hundred vertices are skinned instead of the whole mesh, so a long clip costs little."""

    def __init__(self, body, betas=None, convention=None):
        spec = landmark_spec(body, betas, convention)
        super().__init__(body, betas, spec_matrix(spec, len(body.v_template)))
