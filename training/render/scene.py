"""Render a motion clip of the open body as a video: the body posed by ``training.data.synth.Poser``,
filmed by ``synth.sample_camera``'s cameras (scaled to a render size), over a far background and a
textured floor plane, with motion blur and the camera's degradations; and the ground truth of
every frame (joints, the body's MediaPipe-convention landmarks, their projection and occlusion,
the silhouette, the camera).

Far background: a texture at infinity (frame 0's view), moved by the rotation/zoom homography
H_t = K_t R_t R_0ᵀ K_0⁻¹. Floor: the plane z = 0 seen through K_t [r1 r2 t_t], so it has the
right perspective; pixels whose viewing ray points above the horizon show the background.
Motion blur: the mean of three renders at t − s/2, t, t + s/2 (vertices interpolated linearly
between frames; ``s`` = the clip's shutter, a fraction of a frame).
"""
import cv2
import numpy as np

from engine.observe import mask_size
from training.data.synth import Poser, mirror_motion, sample_camera

from . import appearance as A
from .raster import face_incidence, project, rasterize, vertex_normals

LONG_SIDE = 960   # rendered frames' longer side: MediaPipe's landmark model sees a 256 px crop


def scale_intrinsics(Ks, s):
    """Intrinsics (T,3,3) of the same camera imaging at ``s`` × the resolution."""
    out = np.array(Ks, np.float64)
    out[:, :2] *= s
    return out


class ClipRenderer:
    """Renders clips of one body (reuse it: it caches posing and body regions per shape)."""

    def __init__(self, body, long_side=LONG_SIDE):
        self.body = body
        self.long_side = int(long_side)
        self.incidence = face_incidence(body.faces, len(body.v_template))
        self._cache = {}

    def _poser(self, betas):
        key = tuple(np.round(np.asarray(betas, np.float64), 4))
        if key not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = (Poser(self.body, betas), A.body_regions(self.body, betas))
        return self._cache[key]

    def render(self, poses, trans, betas, rng, fps=30.0, camera=None, mirror=None):
        """Frames (list of uint8 RGB) and the truth (dict of arrays) of one clip."""
        poses = np.asarray(poses, np.float64)
        trans = np.asarray(trans, np.float64)
        mirror = bool(rng.random() < 0.5) if mirror is None else bool(mirror)
        if mirror:
            poses, trans = mirror_motion(poses, trans, self.body, betas)
        P, regions = self._poser(betas)
        verts, joints, lm3 = P(poses, trans)
        height = float(verts[0, :, 2].max() - verts[0, :, 2].min())
        Ks, E, (w0, h0), kind = sample_camera(rng, joints[:, 0], camera, None, max(height, 1.0))
        s = min(1.0, self.long_side / max(w0, h0))
        Ks = scale_intrinsics(Ks, s)
        W, H = int(round(w0 * s)), int(round(h0 * s))
        albedo = A.sample_appearance(rng, regions)
        light = A.sample_light(rng)
        deg = A.sample_degradation(rng)
        wall = cv2.resize(A.to_u8(A.procedural_texture(rng, H, W)), (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR)
        floor = A.to_u8(A.floor_texture(rng))
        tile_m = float(rng.uniform(3, 20))
        centre = joints[:, 0, :2].mean(0)
        R, tc = E[:, :3, :3], E[:, :3, 3]
        frames, masks, occluded, sil_px = [], [], [], []
        T = len(poses)
        mw, mh = mask_size(W, H)
        for t in range(T):
            bg = self._background(wall, floor, tile_m, centre, Ks, R, tc, t, (W, H))
            subs = (-0.5, 0.0, 0.5) if deg["shutter"] > 0 else (0.0,)
            frags = []
            for o in subs:
                v = _verts_at(verts, t + o * deg["shutter"])
                vc = v @ R[t].T + tc[t]
                fr = rasterize(vc, self.body.faces, Ks[t], (W, H))
                n = fr.interpolate(vertex_normals(vc, self.body.faces, self.incidence), self.body.faces)
                frags.append((fr, A.shade(fr.interpolate(albedo, self.body.faces), n, light)))
            frames.append(A.degrade(_composite(bg, frags), deg, rng))
            m = frags[len(frags) // 2][0].mask()
            sil_px.append(int(m.sum()))
            masks.append((cv2.resize(m.astype(np.float32), (mw, mh), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8))
            occluded.append(_occluded(frags[len(frags) // 2][0], lm3[t] @ R[t].T + tc[t], Ks[t], P.occ_margin))
        if deg["compression"] == "mp4v":
            import tempfile
            with tempfile.TemporaryDirectory() as td:
                frames = A.compress_clip(frames, fps, td)
        lm_cam = np.einsum("tij,tnj->tni", R, lm3) + tc[:, None]
        uv = np.stack([project(lm_cam[t], Ks[t]) for t in range(T)])
        truth = dict(joints=joints.astype(np.float32), landmarks3d=lm3.astype(np.float32),
                     landmarks_cam=lm_cam.astype(np.float32), landmarks2d=uv.astype(np.float32),
                     occluded=np.array(occluded), true_masks=np.array(masks), silhouette_px=np.array(sil_px),
                     K=Ks.astype(np.float32), extrinsics=E.astype(np.float32),
                     frame_size=np.array([W, H], np.int32), camera_type=kind,
                     poses=poses.astype(np.float32), trans=trans.astype(np.float32),
                     betas=np.asarray(betas, np.float32), mirrored=mirror, fps=np.float32(fps),
                     degradation=deg)
        return frames, truth

    @staticmethod
    def _background(wall, floor, tile_m, centre, Ks, R, tc, t, size):
        """The frame's background (H,W,3) uint8: far texture above the horizon, floor below."""
        W, H = size
        # a pixel sees the floor when its ray (world) points down: d_z = (Rᵀ K⁻¹ [u v 1])_z
        c = (R[t].T @ np.linalg.inv(Ks[t]))[2]
        u = np.arange(W, dtype=np.float32)
        v = np.arange(H, dtype=np.float32)
        down = (c[0] * u[None, :] + c[1] * v[:, None] + c[2]) < -1e-4
        far = None
        if not down.all():
            off = np.array([[1, 0, -W / 2], [0, 1, -H / 2], [0, 0, 1.0]])   # texture = frame 0 view, 2× wider
            Hw = Ks[t] @ R[t] @ R[0].T @ np.linalg.inv(Ks[0]) @ off
            far = cv2.warpPerspective(wall, Hw, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            if not down.any():
                return far
        n = floor.shape[0]
        r = tile_m / n
        Atex = np.array([[r, 0, centre[0] - tile_m / 2], [0, r, centre[1] - tile_m / 2], [0, 0, 1.0]])
        Hf = Ks[t] @ np.column_stack([R[t][:, 0], R[t][:, 1], tc[t]]) @ Atex
        ground = cv2.warpPerspective(floor, Hf, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        if far is None:
            return ground
        cv2.copyTo(ground, down.view(np.uint8), far)
        return far


def _composite(bg, frags):
    """uint8 frame: the body's sub-frame renders (fragments, colours 0–1) over ``bg``, averaged."""
    H, W = bg.shape[:2]
    flat = bg.reshape(-1, 3)
    if len(frags) == 1:
        fr, col = frags[0]
        out = flat.copy()
        out[fr.pix] = (col * 255 + 0.5).astype(np.uint8)
        return out.reshape(H, W, 3)
    pix = np.concatenate([fr.pix for fr, _ in frags])
    if not len(pix):
        return bg.copy()
    acc = np.zeros((len(np.unique(pix)), 3))
    uniq, inv = np.unique(pix, return_inverse=True)
    acc = np.repeat(flat[uniq].astype(np.float64)[None], len(frags), 0)
    start = 0
    for k, (fr, col) in enumerate(frags):
        acc[k, inv[start:start + len(fr.pix)]] = col * 255
        start += len(fr.pix)
    out = flat.copy()
    out[uniq] = (acc.mean(0) + 0.5).astype(np.uint8)
    return out.reshape(H, W, 3)


def _verts_at(verts, t):
    """Vertices at fractional frame ``t`` (linear between frames, clamped to the clip)."""
    t = float(np.clip(t, 0, len(verts) - 1))
    i = int(np.floor(t))
    j = min(i + 1, len(verts) - 1)
    a = t - i
    return verts[i] if a == 0 else (1 - a) * verts[i] + a * verts[j]


def _occluded(frag, lm_cam, K, margin):
    """(33,) landmarks lying more than ``margin`` behind the rendered surface at their pixel."""
    W, H = frag.size
    depth = np.full(W * H, np.inf)
    depth[frag.pix] = frag.depth
    uv = np.rint(project(lm_cam, K)).astype(np.int64)
    ins = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    surf = np.full(len(lm_cam), np.inf)
    surf[ins] = depth[uv[ins, 1] * W + uv[ins, 0]]
    return lm_cam[:, 2] > surf + margin
