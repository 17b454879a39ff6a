"""A stand-in SMPL-layout body (capsules on a T-pose skeleton) for tests and for development
when ``engine/data/open_body.npz`` is absent. Not a real body: no shape space (shapedirs are 0),
rigid per-bone skinning. Same array layout as SMPL, so every code path runs unchanged.
"""
import numpy as np

from engine.body.model import BodyModel
from engine.body.skeleton import JOINT_INDEX as J, NUM_JOINTS, PARENTS

# T-pose joints (metres, canonical frame: Y up, facing +Z, left +X), pelvis at the origin.
REST = np.array([[0, 0, 0], [.06, -.09, 0], [-.06, -.09, 0], [0, .11, -.01], [.1, -.47, 0],
                 [-.1, -.47, 0], [0, .24, .01], [.143, -.88, 0], [-.143, -.88, 0],
                 [0, .30, .03], [.16, -.94, .1], [-.16, -.94, .1], [0, .51, 0], [.08, .42, 0],
                 [-.08, .42, 0], [0, .6, .05], [.18, .45, -.01], [-.18, .45, -.01],
                 [.44, .45, -.01], [-.44, .45, -.01], [.69, .45, -.01], [-.69, .45, -.01],
                 [.77, .44, -.02], [-.77, .44, -.02]], float)
for _h, _k, _a in ((1, 4, 7), (2, 5, 8)):
    REST[_a] = REST[_h] + (REST[_k] - REST[_h]) * (0.79 / 0.38)

_RADIUS = {"pelvis": .11, "spine1": .12, "spine2": .13, "spine3": .13, "neck": .06,
           "left_collar": .06, "left_shoulder": .055, "left_elbow": .045, "left_wrist": .04,
           "left_hip": .085, "left_knee": .06, "left_ankle": .045}


def _radius(name):
    return _RADIUS.get(name.replace("right_", "left_"), 0.05)


def _capsule(a, b, r, n_ring=10, n_len=6):
    """Vertices and faces of an open cylinder from a to b with radius r."""
    d = b - a
    L = np.linalg.norm(d)
    u = d / max(L, 1e-9)
    t = np.array([1.0, 0, 0]) if abs(u[0]) < 0.9 else np.array([0, 0, 1.0])
    e1 = np.cross(u, t); e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    ang = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    s = np.linspace(0, 1, n_len)
    # round the ends a little so silhouettes look like limbs
    rr = r * np.sqrt(np.clip(1 - (2 * s - 1) ** 8, 0.2, 1))
    v = (a + s[:, None, None] * d + rr[:, None, None] * (np.cos(ang)[None, :, None] * e1
                                                          + np.sin(ang)[None, :, None] * e2))
    v = v.reshape(-1, 3)
    f = []
    for i in range(n_len - 1):
        for k in range(n_ring):
            p, q = i * n_ring + k, i * n_ring + (k + 1) % n_ring
            f += [(p, q, p + n_ring), (q, q + n_ring, p + n_ring)]
    return v, np.array(f), s


def capsule_body():
    """BodyModel of capsules around each bone plus a head and feet (about 1.7 m tall)."""
    verts, faces, weights = [], [], []
    segs = [(j, c) for c in range(1, NUM_JOINTS) for j in [PARENTS[c]]]
    segs += [(J["left_foot"], None), (J["right_foot"], None)]
    ends = {J["head"]: REST[J["head"]] + [0, .2, 0], J["left_foot"]: REST[J["left_foot"]] + [0, -.02, .08],
            J["right_foot"]: REST[J["right_foot"]] + [0, -.02, .08]}
    from engine.body.skeleton import JOINT_NAMES
    for j, c in segs:
        a = REST[j]
        b = REST[c] if c is not None else ends[j]
        if j == 0 and c is not None and c != J["spine1"]:
            continue  # the pelvis → hip bones are covered by the pelvis/hip capsules
        name = JOINT_NAMES[j] if c is None or j != 0 else "pelvis"
        r = 0.1 if j == J["head"] and c is None else _radius(JOINT_NAMES[c] if c is not None and j in (J["spine3"],) else name)
        if j == J["spine3"] and c in (J["left_collar"], J["right_collar"]):
            r = 0.06
        v, f, s = _capsule(a, b, r)
        w = np.zeros((len(v), NUM_JOINTS))
        w[:, j] = 1.0
        faces.append(f + sum(len(x) for x in verts))
        verts.append(v)
        weights.append(w)
    # head: a dense ellipsoid (so face landmarks are distinct points)
    th, ph = np.meshgrid(np.linspace(0.05, np.pi - 0.05, 20), np.linspace(0, 2 * np.pi, 40, endpoint=False), indexing="ij")
    c = REST[J["head"]] + [0, 0.07, 0.02]
    hv = c + np.stack([0.08 * np.sin(th) * np.sin(ph), 0.11 * np.cos(th), 0.1 * np.sin(th) * np.cos(ph)], -1).reshape(-1, 3)
    hf = []
    for i in range(19):
        for k in range(40):
            p, q = i * 40 + k, i * 40 + (k + 1) % 40
            hf += [(p, q, p + 40), (q, q + 40, p + 40)]
    hw = np.zeros((len(hv), NUM_JOINTS))
    hw[:, J["head"]] = 1.0
    faces.append(np.array(hf) + sum(len(x) for x in verts))
    verts.append(hv)
    weights.append(hw)
    # feet: from behind the ankle to the toes
    for side in ("left", "right"):
        a = REST[J[f"{side}_ankle"]] + [0, -0.05, -0.05]
        b = REST[J[f"{side}_foot"]] + [0, -0.02, 0.08]
        fv, ff, _ = _capsule(a, b, 0.04)
        fw = np.zeros((len(fv), NUM_JOINTS))
        fw[:, J[f"{side}_ankle"]] = 1.0
        faces.append(ff + sum(len(x) for x in verts))
        verts.append(fv)
        weights.append(fw)
    v = np.concatenate(verts)
    w = np.concatenate(weights)
    f = np.concatenate(faces)
    V = len(v)
    # Joint regressor: each joint is exactly its rest position (one-hot on nearest vertex
    # would move it); express it as an affine combination: J = REST via a constant column trick.
    jreg = np.zeros((NUM_JOINTS, V))
    # Solve jreg @ v = REST with jreg rows summing to 1 using the vertices nearest each joint.
    for j in range(NUM_JOINTS):
        idx = np.argsort(np.linalg.norm(v - REST[j], axis=1))[:8]
        A = np.vstack([v[idx].T, np.ones(len(idx))])
        coef, *_ = np.linalg.lstsq(A, np.append(REST[j], 1.0), rcond=None)
        jreg[j, idx] = coef
    shapedirs = np.zeros((V, 3, 10))
    return BodyModel(v, shapedirs, jreg, w, f, PARENTS.copy(), None, "capsule_standin")
