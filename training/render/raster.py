"""A small z-buffer triangle rasterizer in numpy (no GL): camera-frame mesh → per-pixel face,
perspective-correct barycentrics and depth, for the body only (a few hundred pixels tall).

Faces are back-face culled, grouped by the size of their screen box and tested against the
pixel centres of that box in one vectorised pass per group; the nearest fragment of a pixel wins
(``np.maximum.at`` on 1/z). Pixel centres sit at integer coordinates, as OpenCV's projection
(``u = fx·x/z + cx``) puts them.
"""
from dataclasses import dataclass

import numpy as np

NEAR = 0.05   # metres: faces with a vertex nearer than this are dropped


@dataclass
class Fragments:
    """The visible surface: one entry per covered pixel."""
    pix: np.ndarray      # (N,) flat pixel index y·W + x
    face: np.ndarray     # (N,) face index
    bary: np.ndarray     # (N,3) perspective-correct barycentric weights
    depth: np.ndarray    # (N,) camera z (metres)
    size: tuple          # (W, H)

    def mask(self):
        """(H,W) bool: pixels the mesh covers."""
        W, H = self.size
        m = np.zeros(W * H, bool)
        m[self.pix] = True
        return m.reshape(H, W)

    def interpolate(self, attr, faces):
        """Per-pixel value (N,C) of a per-vertex attribute (V,C)."""
        return np.einsum("nk,nkc->nc", self.bary, attr[faces[self.face]])


def project(points_cam, K):
    """Camera-frame points (...,3) → pixel coordinates (...,2) (OpenCV pinhole)."""
    z = np.maximum(points_cam[..., 2:3], 1e-6)
    return points_cam[..., :2] / z * K[[0, 1], [0, 1]] + K[:2, 2]


def face_incidence(faces, num_vertices):
    """Sparse (V,F) vertex–face incidence matrix (for ``vertex_normals``)."""
    from scipy.sparse import csr_matrix
    f = np.asarray(faces)
    rows = f.ravel()
    cols = np.repeat(np.arange(len(f)), 3)
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, len(f)))


def vertex_normals(verts, faces, incidence=None):
    """Unit area-weighted vertex normals (V,3) of a mesh (the faces' winding decides the sign).
    Pass ``face_incidence(faces, V)`` when calling it for many poses of one mesh."""
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    fn = np.cross(v1 - v0, v2 - v0)
    A = face_incidence(faces, len(verts)) if incidence is None else incidence
    n = np.asarray(A @ fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def rasterize(points_cam, faces, K, size, cull_sign=1.0):
    """Visible fragments of a camera-frame mesh (V,3) with faces (F,3) under intrinsics K.

    ``cull_sign``: +1 when the faces wind so that the cross product points outwards (a face is
    kept when its normal faces the camera); 0 keeps both sides."""
    W, H = size
    p = np.asarray(points_cam, np.float64)
    uv = project(p, K)
    zinv_v = 1.0 / np.maximum(p[:, 2], 1e-6)
    f = np.asarray(faces)
    ok = (p[f, 2] > NEAR).all(1)
    if cull_sign:
        v0, v1, v2 = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
        ok &= cull_sign * np.einsum("fc,fc->f", np.cross(v1 - v0, v2 - v0), v0) < 0
    a, b, c = uv[f[:, 0]], uv[f[:, 1]], uv[f[:, 2]]
    lo = np.ceil(np.minimum(np.minimum(a, b), c)).astype(np.int64)
    hi = np.floor(np.maximum(np.maximum(a, b), c)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], W - 1)
    hi[:, 1] = np.minimum(hi[:, 1], H - 1)
    ext = hi - lo + 1
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ok &= (ext > 0).all(1) & (np.abs(area) > 1e-12)
    idx = np.flatnonzero(ok)
    side = ext[idx].max(1)
    out_pix, out_face, out_w, out_z = [], [], [], []
    s0 = 1
    while len(idx):
        sel = side <= s0
        if sel.any():
            fi = idx[sel]
            g = np.arange(s0)
            ox, oy = np.meshgrid(g, g)
            px = lo[fi, 0, None] + ox.ravel()[None]
            py = lo[fi, 1, None] + oy.ravel()[None]
            inb = (px <= hi[fi, 0, None]) & (py <= hi[fi, 1, None])
            A, B, C = a[fi], b[fi], c[fi]
            ar = area[fi][:, None]
            w0 = ((B[:, 0, None] - px) * (C[:, 1, None] - py) - (B[:, 1, None] - py) * (C[:, 0, None] - px)) / ar
            w1 = ((C[:, 0, None] - px) * (A[:, 1, None] - py) - (C[:, 1, None] - py) * (A[:, 0, None] - px)) / ar
            w2 = 1.0 - w0 - w1
            inside = inb & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            r, q = np.nonzero(inside)
            if len(r):
                fr = fi[r]
                wl = np.stack([w0[r, q], w1[r, q], w2[r, q]], 1)
                zi = wl * zinv_v[f[fr]]
                zs = zi.sum(1)
                out_pix.append(py[r, q] * W + px[r, q])
                out_face.append(fr)
                out_w.append(zi / zs[:, None])
                out_z.append(zs)
            idx, side = idx[~sel], side[~sel]
        s0 *= 2
    if not out_pix:
        e = np.zeros(0, np.int64)
        return Fragments(e, e, np.zeros((0, 3)), np.zeros(0), (W, H))
    pix, face = np.concatenate(out_pix), np.concatenate(out_face)
    w, zs = np.concatenate(out_w), np.concatenate(out_z)
    best = np.zeros(W * H)
    np.maximum.at(best, pix, zs)
    win = zs >= best[pix]
    pix, face, w, zs = pix[win], face[win], w[win], zs[win]
    _, first = np.unique(pix, return_index=True)   # exact ties: keep one fragment per pixel
    return Fragments(pix[first], face[first], w[first], 1.0 / zs[first], (W, H))
