#!/usr/bin/env python3
"""Make the composite test clips in tests/data/composites/ from the demo clip (deterministic).

    .venv/bin/python scripts/make_composites.py [-o tests/data/composites] [--sheet /tmp/sheet.png]

The demo clip (assets/demo/sports2d_demo.mp4, Sports2D, BSD-3; 1768×994, 30 fps, static camera)
holds two people: a jumper on a box and a walker who crosses the frame from right to left
(frames ~60–195). The walker is the one cut out: upright, whole and reliably detected. Steps:

1. Background plate: the per-pixel median of every 6th frame, each frame's people (found by
   ``engine.observe.tiles.find_people``, boxes grown by 15 %) left out of it.
2. The walker in source frames 62–185: followed with the IMAGE-mode landmarker on a square crop
   around the previous box; the cut-out's alpha is MediaPipe's segmentation (soft edge), kept
   within the walker's keypoint box grown by 15 % sideways and 5 % up and down (so the jumper's
   feet above never come along). Anchor = hip centre x, lower of the ankles y, smoothed.
3. Each clip pastes copies of the walker onto the plate, back to front, each through a 2×3
   affine (source full-resolution pixels → clip pixels: scale, optional mirror, shift):
   ``pair_side_by_side`` (two copies in place, the second mirrored), ``crossing`` (the natural
   walk and a mirrored, slightly larger and lower copy walking the other way: they cross once,
   the mirrored copy in front), ``strip4`` (an 832×234 strip — the aspect of 1768×496 — with four
   small copies), ``broadcast_like`` (a small "pitcher" in place and a larger mirrored "batter"
   in front, sliding in to cover part of the pitcher for about a third of the clip).

Per clip: NAME.mp4 (mp4v), NAME.json (per frame: back-to-front order; per copy: source frame,
transform, full box and visible box from the pasted alpha > 0.5, visible fraction) and
NAME_masks.npz (``visible`` (T,P,h,w) uint8 alpha of each copy after occlusion at the engine's
``mask_size``; ``keypoints`` (T,P,33,3): the walker's source landmarks mapped through the
transform — positions only: a mirrored copy's "left" landmarks lie on its right side).
``--sheet`` writes a PNG contact sheet (boxes drawn) to look at.
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.observe.tiles import MultiPoseImageDetector, find_people, to_frame  # noqa: E402
from engine.observe.track import iou_matrix  # noqa: E402
from engine.observe.types import LM, keypoint_box, mask_size  # noqa: E402
from engine.video.decode import iter_frames, open_video  # noqa: E402

DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"
OUT_W, OUT_H = 832, 468
STRIP_H = 2 * round(OUT_W * 496 / 1768 / 2)  # the aspect of 1768×496, even (mp4v rounds odd sizes down)
SOURCE = (62, 186)          # walker's source frames (whole and in view)
START_BOX = (1240, 540, 1530, 975)  # walker's box on frame 62 (px), to pick them out there


def grow(box, sx, sy):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return np.array([x0 - sx * w, y0 - sy * h, x1 + sx * w, y1 + sy * h])


def square_window(box, W, H, factor=1.5):
    """Integer square around a box, ``factor`` × its longer side, moved inside the frame."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = int(min(min(W, H), factor * max(box[2] - box[0], box[3] - box[1])))
    x0 = int(np.clip(cx - side / 2, 0, W - side))
    y0 = int(np.clip(cy - side / 2, 0, H - side))
    return x0, y0, x0 + side, y0 + side


def background_plate(detector, stride=6):
    """People-free plate at clip size (uint8 BGR): median over frames, people's boxes left out."""
    stack, free = [], []
    for _, _, bgr in iter_frames(DEMO, stride=stride):
        H, W = bgr.shape[:2]
        ok = np.ones((H, W), bool)
        for ob in find_people(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detector):
            x0, y0, x1, y1 = grow(ob.bbox, 0.15, 0.15).round().astype(int)
            ok[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = False
        stack.append(cv2.resize(bgr, (OUT_W, OUT_H), interpolation=cv2.INTER_AREA))
        free.append(cv2.resize(ok.astype(np.uint8), (OUT_W, OUT_H), interpolation=cv2.INTER_NEAREST) > 0)
    stack, free = np.stack(stack).astype(np.float32), np.stack(free)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plate = np.nanmedian(np.where(free[..., None], stack, np.nan), axis=0)
    plate = np.where(np.isfinite(plate), plate, np.median(stack, axis=0))  # never free: plain median
    return np.clip(plate, 0, 255).astype(np.uint8)


def cut_out_walker(detector):
    """Per source frame: dict(frame, patch BGR, alpha float, origin (x0, y0) px, kp (33,3) px)."""
    _, info = open_video(DEMO)
    W, H = info.width, info.height
    box, out = np.array(START_BOX, float), []
    for i, _, bgr in iter_frames(DEMO, SOURCE):
        win = square_window(box, W, H)
        x0, y0, x1, y1 = win
        found = detector(cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB))
        cands = [(to_frame(f, win, (W, H))[0], f[2]) for f in found]
        if not cands:
            raise SystemExit(f"error: the walker was not found on source frame {i}")
        ious = [iou_matrix(ob.bbox, box)[0, 0] for ob, _ in cands]
        ob, seg = cands[int(np.argmax(ious))]
        if max(ious) < 0.3:
            raise SystemExit(f"error: lost the walker on source frame {i}")
        box = keypoint_box(ob.keypoints)
        keep = grow(box, 0.15, 0.05)
        alpha = np.zeros((H, W), np.float32)
        alpha[y0:y1, x0:x1] = seg
        bx0, by0 = max(0, int(keep[0])), max(0, int(keep[1]))
        bx1, by1 = min(W, int(np.ceil(keep[2]))), min(H, int(np.ceil(keep[3])))
        a = cv2.GaussianBlur(alpha[by0:by1, bx0:bx1], (5, 5), 0)  # soft edge
        kp = ob.keypoints.copy()
        kp[:, 2] = np.asarray(found[int(np.argmax(ious))][0])[:, 2]  # MediaPipe's own visibility
        out.append(dict(frame=i, patch=bgr[by0:by1, bx0:bx1].copy(), alpha=a, origin=(bx0, by0), kp=kp))
    hips = np.array([(s["kp"][LM["left_hip"], 0] + s["kp"][LM["right_hip"], 0]) / 2 for s in out])
    feet = np.array([max(s["kp"][LM["left_ankle"], 1], s["kp"][LM["right_ankle"], 1]) for s in out])
    for s, ax, ay in zip(out, uniform_filter1d(hips, 9, mode="nearest"), uniform_filter1d(feet, 9, mode="nearest")):
        s["anchor"] = (float(ax), float(ay))
    return out, (W, H)


def affine(scale, mirror, src_anchor, dst_anchor):
    """2×3 matrix: source pixel → clip pixel, the source anchor landing on the clip anchor."""
    sx = -scale if mirror else scale
    return np.array([[sx, 0.0, dst_anchor[0] - sx * src_anchor[0]],
                     [0.0, scale, dst_anchor[1] - scale * src_anchor[1]]])


def paste_layer(src, A, size):
    """The copy's BGR and alpha laid out on a clip-sized canvas through the affine ``A``."""
    W, H = size
    scale = abs(A[0, 0])
    ph, pw = src["alpha"].shape
    sw, sh = max(1, round(pw * scale)), max(1, round(ph * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(src["patch"], (sw, sh), interpolation=interp).astype(np.float32)
    alpha = cv2.resize(src["alpha"], (sw, sh), interpolation=interp)
    ox, oy = src["origin"]
    if A[0, 0] < 0:  # mirrored: the patch's right edge lands on the left
        patch, alpha = patch[:, ::-1], alpha[:, ::-1]
        left = A[0, 0] * (ox + pw) + A[0, 2]
    else:
        left = A[0, 0] * ox + A[0, 2]
    top = A[1, 1] * oy + A[1, 2]
    # the resized patch's pixel grid: shift by the exact offset (sub-pixel, bilinear)
    M = np.array([[1.0, 0, left], [0, 1.0, top]])
    rgb = cv2.warpAffine(np.ascontiguousarray(patch), M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    a = cv2.warpAffine(np.ascontiguousarray(alpha), M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    return rgb, np.clip(a, 0, 1)


def alpha_box(a, thr=0.5):
    ys, xs = np.nonzero(a > thr)
    if not len(xs):
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def compose(plate, layers):
    """Back-to-front 'over' compositing → (BGR uint8, visible alpha per layer)."""
    img = plate.astype(np.float32)
    visible = []
    for rgb, a in layers:
        img = img * (1 - a[..., None]) + rgb * a[..., None]
        visible = [v * (1 - a) for v in visible] + [a.copy()]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), visible


# ------------------------------------------------------------------ the four clips
# Each returns, per clip frame, a list of copies back to front: (id, source index, scale, mirror,
# clip anchor). Scales are relative to the source's full resolution; K brings 1768 px to 960.

def pair_side_by_side(src, rng, T=60):
    K = OUT_W / 1768
    s0 = 8 + int(rng.integers(0, 4))
    return [[(0, s0 + t, K, False, (0.28 * OUT_W, 0.93 * OUT_H)),
             (1, s0 + 20 + t, K, True, (0.72 * OUT_W, 0.93 * OUT_H))] for t in range(T)]


def crossing(src, rng, T=75):
    K = OUT_W / 1768
    s0 = 3 + int(rng.integers(0, 4))
    out = []
    for t in range(T):
        a, b = src[s0 + t], src[s0 + 12 + t]
        x_a = a["anchor"][0] * K                      # natural walk, right to left
        x_b = (1768 - b["anchor"][0]) * K * 1.08 - 0.0625 * OUT_W  # mirrored: left to right
        out.append([(0, s0 + t, K, False, (x_a, 0.9 * OUT_H)),
                    (1, s0 + 12 + t, 1.1 * K, True, (x_b, 0.955 * OUT_H))])
    return out


def strip4(src, rng, T=60):
    H = STRIP_H
    scale = 0.55 * H / 405.0  # the walker is ~405 px tall at full resolution
    phases = rng.permutation(4) * 12 + 3
    return [[(k, int(phases[k]) + t, scale, bool(k % 2), ((k + 0.5) * OUT_W / 4, 0.94 * H))
             for k in range(4)] for t in range(T)]


def broadcast_like(src, rng, T=75):
    K = OUT_W / 1768
    s0 = 10 + int(rng.integers(0, 4))
    px = 0.56 * OUT_W
    out = []
    for t in range(T):
        d = (300 - 245 * np.sin(np.pi * t / (T - 1))) * OUT_W / 960  # batter slides in, covers, slides back
        out.append([(0, s0 + t, 0.8 * K, False, (px, 0.72 * OUT_H)),
                    (1, s0 + 25 + t, 1.35 * K, True, (px - d, 0.96 * OUT_H))])
    return out


CLIPS = {"pair_side_by_side": (pair_side_by_side, (OUT_W, OUT_H), ["left", "right (mirrored)"]),
         "crossing": (crossing, (OUT_W, OUT_H), ["walks right to left (behind)", "walks left to right (in front)"]),
         "strip4": (strip4, (OUT_W, STRIP_H), ["first", "second", "third", "fourth"]),
         "broadcast_like": (broadcast_like, (OUT_W, OUT_H), ["pitcher", "batter (mirrored, in front)"])}


def make_clip(name, plate, src, out_dir, seed=0):
    fn, (W, H), roles = CLIPS[name]
    rng = np.random.default_rng(seed)
    plan = fn(src, rng)
    if H != plate.shape[0]:  # the strip: the plate's lower band (ground and the box)
        plate = plate[OUT_H - H:]
    mw, mh = mask_size(W, H)
    writer = cv2.VideoWriter(str(out_dir / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
    if not writer.isOpened():
        raise SystemExit("error: opencv cannot write mp4v here")
    frames, vis_masks, kps, stills = [], [], [], []
    for t, copies in enumerate(plan):
        layers, people, kp_t = [], [], []
        for cid, si, scale, mirror, anchor in copies:
            s = src[si]
            A = affine(scale, mirror, s["anchor"], anchor)
            layers.append(paste_layer(s, A, (W, H)))
            k = s["kp"].copy()
            k[:, :2] = k[:, :2] @ A[:, :2].T + A[:, 2]
            kp_t.append(k)
            people.append(dict(id=cid, source_frame=s["frame"], transform=np.round(A, 5).tolist()))
        img, visible = compose(plate, layers)
        for p, (_, a), v in zip(people, layers, visible):
            p["box"] = alpha_box(a)
            p["visible_box"] = alpha_box(v)
            p["visible_fraction"] = round(float(v.sum() / max(a.sum(), 1e-6)), 3)
        order = [p["id"] for p in people]
        by_id = sorted(range(len(people)), key=lambda i: people[i]["id"])
        frames.append(dict(frame=t, order=order, people=[people[i] for i in by_id]))
        vis_masks.append([(cv2.resize(visible[i], (mw, mh), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8)
                          for i in by_id])
        kps.append([kp_t[i] for i in by_id])
        writer.write(img)
        stills.append(img)
    writer.release()
    meta = dict(name=name, size=[W, H], fps=30.0, frames=len(plan), seed=seed,
                source=dict(video="assets/demo/sports2d_demo.mp4", licence="BSD-3-Clause (Sports2D)",
                            person="the walker, cut out with MediaPipe's segmentation",
                            frames=list(SOURCE)),
                copies=[dict(id=i, role=r) for i, r in enumerate(roles)],
                notes="transform: 2x3 affine, source full-resolution px -> clip px; order: back to front; "
                      "box: pasted alpha > 0.5; visible_box: after the copies in front",
                per_frame=frames)
    (out_dir / f"{name}.json").write_text(json.dumps(meta, separators=(",", ":")))
    np.savez_compressed(out_dir / f"{name}_masks.npz", visible=np.array(vis_masks, np.uint8),
                        keypoints=np.array(kps, np.float32))
    return meta, stills


def contact_sheet(items, path, per_clip=4, width=480):
    """items: (meta, stills); a row per clip of ``per_clip`` frames: the ground-truth boxes
    (green, id and visible fraction) and the keypoints ``find_people`` finds (red)."""
    rows = []
    detector = MultiPoseImageDetector()
    for meta, stills in items:
        T = len(stills)
        cells = []
        for t in np.linspace(0, T - 1, per_clip).round().astype(int):
            im = stills[t].copy()
            f = meta["per_frame"][t]
            for p in f["people"]:
                if p["box"]:
                    cv2.rectangle(im, tuple(p["box"][:2]), tuple(p["box"][2:]), (0, 255, 0), 2)
                    cv2.putText(im, f"{p['id']} v{p['visible_fraction']:.2f}", (p["box"][0], p["box"][1] + 16),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
            found = find_people(cv2.cvtColor(stills[t], cv2.COLOR_BGR2RGB), detector)
            for ob in found:
                for x, y, v in ob.keypoints:
                    if v > 0.5:
                        cv2.circle(im, (int(x), int(y)), 3, (0, 0, 255), -1)
            cv2.putText(im, f"{meta['name']} {t}: {len(found)} found", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            s = width / im.shape[1]
            cells.append(cv2.resize(im, (width, round(im.shape[0] * s)), interpolation=cv2.INTER_AREA))
        rows.append(cv2.hconcat(cells))
    detector.close()
    cv2.imwrite(str(path), cv2.vconcat([cv2.copyMakeBorder(r, 0, 0, 0, max(x.shape[1] for x in rows) - r.shape[1],
                                                           cv2.BORDER_CONSTANT) for r in rows]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default=str(ROOT / "tests" / "data" / "composites"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=sorted(CLIPS), help="clips to make (default: all)")
    ap.add_argument("--sheet", help="write a PNG contact sheet with the ground-truth boxes here")
    args = ap.parse_args(argv)
    if not DEMO.is_file():
        print(f"error: {DEMO} not found", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    detector = MultiPoseImageDetector()
    try:
        plate = background_plate(detector)
        src, _ = cut_out_walker(detector)
    finally:
        detector.close()
    made = []
    for i, name in enumerate(args.only or CLIPS):
        meta, stills = make_clip(name, plate, src, out_dir, seed=args.seed + i)
        made.append((meta, stills))
        size = (out_dir / f"{name}.mp4").stat().st_size
        print(f"{name}: {meta['frames']} frames {meta['size'][0]}x{meta['size'][1]}, {size / 1e6:.2f} MB")
    if args.sheet:
        contact_sheet(made, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
