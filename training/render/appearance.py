"""How a rendered person and scene look: per-vertex colours of the open body (skin, shirt with
short or long sleeves, trousers or shorts, shoes, hair or a cap, simple stripes/checks/noise on
the clothes), a light, procedural textures for the far background and the floor, and the camera's
degradations (optical blur, sensor noise, JPEG or MPEG-4 compression).

Body regions come from each vertex's strongest skinning joint and its rest-pose height (the
canonical frame: Y up, facing +Z), so they follow any body in SMPL's layout.
"""
import numpy as np

from engine.body.skeleton import JOINT_INDEX as J

# sRGB (0–1) anchors; a draw mixes two neighbours and jitters them
SKIN_TONES = np.array([[0.98, 0.84, 0.72], [0.94, 0.75, 0.61], [0.85, 0.64, 0.48],
                       [0.72, 0.52, 0.37], [0.55, 0.37, 0.25], [0.38, 0.25, 0.17],
                       [0.27, 0.18, 0.12]])
HAIR_COLOURS = np.array([[0.05, 0.04, 0.03], [0.20, 0.13, 0.07], [0.40, 0.28, 0.15],
                         [0.70, 0.56, 0.33], [0.55, 0.55, 0.55], [0.45, 0.18, 0.08]])

_UPPER = ("spine1", "spine2", "spine3", "neck", "left_collar", "right_collar", "left_shoulder", "right_shoulder")
_SLEEVE = ("left_elbow", "right_elbow")
_HAND = ("left_wrist", "right_wrist", "left_hand", "right_hand")
_LOWER = ("pelvis", "left_hip", "right_hip")
_SHIN = ("left_knee", "right_knee")
_FOOT = ("left_ankle", "right_ankle", "left_foot", "right_foot")


def body_regions(body, betas=None):
    """{region: bool (V,)} on the rest mesh: skin, head_top (hair/cap), upper, sleeve, lower,
    shin, foot; plus the rest vertices (V,3) for texture coordinates."""
    v = body.shaped_vertices(betas)
    owner = np.argmax(body.weights, axis=1)

    def owned(names):
        return np.isin(owner, [J[n] for n in names])

    head = owner == J["head"]
    hv = v[head]
    # hair: above the eyes' height, and the back of the head down to the ears' lower edge
    top_y = hv[:, 1].max()
    front = hv[:, 2].max()
    ctr_z = 0.5 * (hv[:, 2].max() + hv[:, 2].min())
    y_brow = top_y - 0.10
    hair = np.zeros(len(v), bool)
    hair[head] = (hv[:, 1] > y_brow) | ((hv[:, 2] < ctr_z - 0.02) & (hv[:, 1] > top_y - 0.17))
    hair[head] &= ~((hv[:, 2] > front - 0.03) & (hv[:, 1] < y_brow + 0.02))
    return dict(rest=v, head_top=hair, upper=owned(_UPPER), sleeve=owned(_SLEEVE), hand=owned(_HAND),
                lower=owned(_LOWER), shin=owned(_SHIN), foot=owned(_FOOT))


def _jitter(rng, rgb, sd=0.04):
    return np.clip(np.asarray(rgb, float) + rng.normal(0, sd, 3), 0, 1)


def _cloth_colour(rng):
    """A garment colour: saturated or muted hue, any value (HSV draw)."""
    import colorsys
    h = rng.random()
    s = rng.choice([rng.uniform(0, 0.15), rng.uniform(0.3, 0.9)])
    val = rng.uniform(0.08, 0.95)
    return np.array(colorsys.hsv_to_rgb(h, s, val))


def _pattern(rng, rest, base):
    """Per-vertex colours (N,3) of a garment with a random texture on rest coordinates."""
    kind = rng.choice(["plain", "stripes", "checks", "noise"], p=[0.4, 0.25, 0.15, 0.2])
    col = np.repeat(base[None], len(rest), 0)
    if kind == "plain":
        return col
    other = _cloth_colour(rng) if rng.random() < 0.6 else base * rng.uniform(0.4, 0.8)
    period = rng.uniform(0.04, 0.15)
    if kind == "stripes":
        axis = rng.choice(3)
        t = (np.sin(2 * np.pi * rest[:, axis] / period) > rng.uniform(-0.5, 0.5))
    elif kind == "checks":
        t = (np.floor(rest[:, 0] / period) + np.floor(rest[:, 1] / period) + np.floor(rest[:, 2] / period)) % 2 == 0
    else:
        k = rng.normal(size=(6, 3)) / period
        ph = rng.uniform(0, 2 * np.pi, 6)
        t = np.sin(rest @ k.T + ph).sum(1) * rng.uniform(0.05, 0.15)
        return np.clip(col * (1 + t[:, None]), 0, 1)
    return np.where(t[:, None], other[None], col)


def sample_appearance(rng, regions):
    """Per-vertex albedo (V,3) in 0–1: a skin tone, hair or a cap, shirt (short/long sleeves),
    trousers or shorts, shoes; clothes may carry stripes, checks or noise."""
    rest = regions["rest"]
    i = rng.integers(len(SKIN_TONES) - 1)
    skin = _jitter(rng, SKIN_TONES[i] + rng.random() * (SKIN_TONES[i + 1] - SKIN_TONES[i]), 0.02)
    col = np.repeat(skin[None], len(rest), 0)
    cap = rng.random() < 0.3
    top = _cloth_colour(rng) if cap else _jitter(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))])
    hair = regions["head_top"]
    col[hair] = top
    shirt = _cloth_colour(rng)
    upper = regions["upper"] | (regions["sleeve"] if rng.random() < 0.5 else False)
    col[upper] = _pattern(rng, rest[upper], shirt)
    pants = _cloth_colour(rng)
    lower = regions["lower"] | (regions["shin"] if rng.random() < 0.7 else False)
    col[lower] = _pattern(rng, rest[lower], pants)
    col[regions["foot"]] = _jitter(rng, [0.95, 0.95, 0.95] if rng.random() < 0.4 else _cloth_colour(rng) * 0.5)
    if rng.random() < 0.2:   # gloves (batting, goalkeeping)
        col[regions["hand"]] = _cloth_colour(rng)
    return col


def sample_light(rng):
    """Unit light direction in camera axes (x right, y down, z forward), ambient and gain."""
    d = np.array([rng.normal(0, 0.6), rng.uniform(-1.0, 0.1), rng.uniform(-1.0, 0.3)])
    return d / np.linalg.norm(d), rng.uniform(0.25, 0.55), rng.uniform(0.7, 1.1)


def shade(albedo, normals, light):
    """Lambert + ambient: per-pixel colour (N,3) from albedo (N,3) and camera-frame normals
    (N,3) pointing out of the surface."""
    d, amb, gain = light
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
    lam = np.clip(-(n @ d), 0, 1)
    return np.clip(albedo * (amb + (1 - amb) * lam)[:, None] * gain, 0, 1)


# ---------------------------------------------------------------- textures
def _noise(rng, h, w, octaves=4, base=4):
    """Smooth value noise (h,w) in roughly [-1, 1]: a sum of upsampled random grids."""
    import cv2
    out = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        g = base * 2 ** o
        small = rng.normal(size=(g, max(2, int(g * w / h)))).astype(np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        tot += amp
        amp *= 0.5
    return out / tot


def procedural_texture(rng, h, w, palette=None):
    """An RGB float image (h,w,3) in 0–1: a gradient, value noise, stripes and blurred shapes
    over two or three random colours (walls, stands, crowds, fences, trees seen out of focus)."""
    import cv2
    cols = palette if palette is not None else np.stack([_cloth_colour(rng) for _ in range(3)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    g = (np.cos(a) * xx + np.sin(a) * yy) / max(h, w)
    g = (g - g.min()) / max(g.max() - g.min(), 1e-6)
    img = cols[0][None, None] * (1 - g[..., None]) + cols[1][None, None] * g[..., None]
    img = img * (1 + rng.uniform(0.05, 0.4) * _noise(rng, h, w)[..., None])
    if rng.random() < 0.5:   # stripes (fences, court lines, stands)
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(0.02, 0.2) * max(h, w)
        s = np.sin(2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy) / period) > rng.uniform(0.3, 0.9)
        img = np.where(s[..., None], 0.5 * img + 0.5 * cols[2][None, None], img)
    for _ in range(rng.integers(0, 12)):   # shapes (things in the scene)
        c = tuple(float(x) for x in _cloth_colour(rng))
        cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        r = int(rng.uniform(0.02, 0.15) * max(h, w))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, c, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + int(r * rng.uniform(0.5, 3))), c, -1)
    k = int(rng.choice([0, 3, 7, 15]))
    if k:
        img = cv2.GaussianBlur(img, (0, 0), k / 3)
    return np.clip(img, 0, 1).astype(np.float32)


FLOORS = {  # (colour a, colour b) of the floor kinds
    "grass": ([0.20, 0.42, 0.15], [0.30, 0.55, 0.20]),
    "dirt": ([0.55, 0.40, 0.28], [0.65, 0.50, 0.36]),
    "court": ([0.45, 0.25, 0.20], [0.25, 0.35, 0.55]),
    "concrete": ([0.55, 0.55, 0.53], [0.70, 0.70, 0.68]),
    "wood": ([0.60, 0.42, 0.25], [0.75, 0.55, 0.35]),
    "carpet": ([0.25, 0.25, 0.30], [0.45, 0.40, 0.35]),
}


def floor_texture(rng, size=1024):
    """A floor texture (size,size,3) in 0–1 (one of ``FLOORS``, or any procedural one)."""
    if rng.random() < 0.25:
        return procedural_texture(rng, size, size)
    a, b = (np.asarray(c) for c in FLOORS[rng.choice(list(FLOORS))])
    pal = np.stack([_jitter(rng, a), _jitter(rng, b), np.array([0.95, 0.95, 0.95])])
    return procedural_texture(rng, size, size, pal)


# ---------------------------------------------------------------- camera degradations
def sample_degradation(rng):
    """The camera of one clip: optical blur σ (px), sensor noise σ (0–255), compression
    ("jpeg" with a quality or "mp4v"), and the motion-blur shutter (fraction of a frame, 0 = off)."""
    comp = rng.choice(["jpeg", "mp4v", "none"], p=[0.5, 0.4, 0.1])
    return dict(blur=float(rng.uniform(0.3, 1.2)), noise=float(rng.uniform(0, 4)), compression=str(comp),
                quality=int(rng.integers(30, 96)),
                shutter=float(rng.uniform(0.3, 0.8)) if rng.random() < 0.5 else 0.0)


def to_u8(img):
    """0–1 float image → uint8."""
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def degrade(img_u8, deg, rng):
    """Optical blur and sensor noise on one uint8 RGB frame (JPEG here; MPEG-4 is per clip,
    ``compress_clip``). The noise comes from OpenCV's generator seeded from ``rng``."""
    import cv2
    out = cv2.GaussianBlur(img_u8, (0, 0), deg["blur"]) if deg["blur"] > 0 else img_u8
    if deg["noise"] > 0:
        cv2.setRNGSeed(int(rng.integers(2 ** 31)))
        noise = np.empty(out.shape, np.int16)
        cv2.randn(noise, 0, deg["noise"])
        out = cv2.add(out, noise, dtype=cv2.CV_8U)
    if deg["compression"] == "jpeg":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, deg["quality"]])
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def compress_clip(frames, fps, tmpdir):
    """Frames (list of uint8 RGB) through an MPEG-4 Part 2 (mp4v) encode and decode."""
    import cv2
    from pathlib import Path
    path = str(Path(tmpdir) / "clip.mp4")
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not vw.isOpened():
        return frames
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    return out if len(out) == len(frames) else frames
