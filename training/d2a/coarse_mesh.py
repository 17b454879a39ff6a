"""The coarse vertex set of the D2A-HMR decoder and its fixed upsampling to the full mesh.

FastMETRO/METRO regress a coarse mesh (431 of SMPL's 6,890 vertices, from the COMA mesh
sampling) and upsample it to the full mesh with a fixed sparse matrix. The open body has its
own topology (13,348 vertices), so we build the equivalent once, here (our choices, the papers
give no recipe for another mesh):

- **coarse vertices**: farthest-point sampling of the rest-pose template (``n`` = 431, starting
  at the vertex nearest the pelvis joint) — the coarse vertices are actual mesh vertices, so the
  coarse ground truth is just the posed full mesh at ``indices``;
- **upsampling**: every full vertex is an affine combination (weights summing to 1) of its ``k``
  = 6 nearest coarse vertices in the rest pose. The weights are fitted by least squares over
  posed and shaped meshes of the body itself (random poses, 0.35 rad per axis, and random
  shapes), regularised towards inverse-square-distance weights, so they follow the body as it
  bends. ``build_coarse_mesh`` reports the upsampled mesh's error on held-out random poses (the
  file's ``stats``; MODEL_CARD_d2a.md).

The result is ``training/d2a/coarse_mesh.npz`` (``indices`` (431,), ``up_index`` (V,6) int16,
``up_weight`` (V,6) float32, ``num_vertices``, ``stats``); the engine reads it with numpy
(``training.d2a.coarse_mesh_file``), the networks with :func:`load` here. Rebuild it with

    .venv/bin/python -m training.d2a.coarse_mesh [--out training/d2a/coarse_mesh.npz]
"""
import argparse
import json

import numpy as np

from training.d2a.coarse_mesh_file import COARSE_MESH_PATH, CoarseMesh, load_coarse_mesh

NUM_COARSE = 431
K_NEIGHBOURS = 6
RIDGE = 1e-5


def farthest_point_sampling(points, n, start=0):
    """Indices (n,) of a farthest-point sample of ``points`` (N,3), beginning with ``start``."""
    idx = np.empty(n, np.int64)
    idx[0] = start
    d = np.linalg.norm(points - points[start], axis=1)
    for i in range(1, n):
        idx[i] = int(d.argmax())
        d = np.minimum(d, np.linalg.norm(points - points[idx[i]], axis=1))
    return idx


def _posed_meshes(body, n, seed, pose_sd=0.35):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        poses = rng.normal(scale=pose_sd, size=(1, 72))
        poses[:, :3] = 0.0
        out.append(body.vertices(poses, rng.normal(size=body.num_betas))[0])
    return np.stack(out)                                   # (P,V,3)


def build_coarse_mesh(body, n=NUM_COARSE, k=K_NEIGHBOURS, fit_poses=60, test_poses=20, seed=0,
                      ridge=RIDGE):
    """Choose the coarse vertices and fit the upsampling weights; returns a ``CoarseMesh``."""
    from scipy.spatial import cKDTree
    v = body.v_template
    start = int(np.argmin(np.linalg.norm(v - body.rest_joints()[0], axis=1)))
    idx = farthest_point_sampling(v, n, start)
    dist, nn = cKDTree(v[idx]).query(v, k)
    w0 = 1.0 / np.maximum(dist, 1e-6) ** 2
    w0 /= w0.sum(1, keepdims=True)
    V = _posed_meshes(body, fit_poses, seed + 1)
    A = V[:, idx][:, nn].transpose(1, 0, 3, 2).reshape(len(v), -1, k)   # (V, P*3, k)
    y = V.transpose(1, 0, 2).reshape(len(v), -1)                        # (V, P*3)
    s = A.shape[1]
    big = 1e3                                              # soft sum-to-one constraint
    AtA = np.einsum("vpk,vpl->vkl", A, A) / s + ridge * np.eye(k) + big
    Atb = np.einsum("vpk,vp->vk", A, y) / s + ridge * w0 + big
    w = np.linalg.solve(AtA, Atb[..., None])[..., 0]
    w /= w.sum(1, keepdims=True)
    cm = CoarseMesh(idx, nn.astype(np.int16), w.astype(np.float32), len(v))
    Vt = _posed_meshes(body, test_poses, seed + 2)
    e = np.linalg.norm(cm.upsample(Vt[:, idx]) - Vt, axis=-1)
    cm.stats = {"mean_mm": round(1000 * float(e.mean()), 2), "p99_mm": round(1000 * float(np.percentile(e, 99)), 2),
                "max_mm": round(1000 * float(e.max()), 2), "k": k, "fit_poses": fit_poses,
                "test_poses": test_poses, "ridge": ridge, "body": body.name}
    return cm


def subset(cm, body, n, k=3):
    """A smaller coarse mesh (the first ``n`` farthest-point vertices) with plain
    inverse-distance upsampling — for fast tests and quick experiments, not for training."""
    from scipy.spatial import cKDTree
    idx = np.asarray(cm.indices[:n])
    dist, nn = cKDTree(body.v_template[idx]).query(body.v_template, k)
    w = 1.0 / np.maximum(dist, 1e-6) ** 2
    return CoarseMesh(idx, nn.astype(np.int64), (w / w.sum(1, keepdims=True)).astype(np.float32),
                      len(body.v_template), {"subset_of": len(cm.indices), "k": k})


def load(path=None, body=None):
    """The stored coarse mesh; built on the fly (and not stored) if the file does not match ``body``."""
    try:
        cm = load_coarse_mesh(path)
        if body is None or cm.num_vertices == len(body.v_template):
            return cm
    except FileNotFoundError:
        if body is None:
            raise
    return build_coarse_mesh(body)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Build the coarse vertex set and its upsampling for D2A-HMR")
    ap.add_argument("--out", default=str(COARSE_MESH_PATH))
    ap.add_argument("--body", help="SMPL-layout body model (default: the open body)")
    ap.add_argument("-n", type=int, default=NUM_COARSE)
    a = ap.parse_args(argv)
    from engine.body import load_body_model
    body = load_body_model(a.body)
    cm = build_coarse_mesh(body, n=a.n)
    cm.save(a.out)
    print(f"wrote {a.out}: {len(cm.indices)} coarse vertices; upsampling error on held-out poses "
          f"{json.dumps(cm.stats)}")


if __name__ == "__main__":
    main()
