"""Find every person in one still frame: a zoomed, tiled search with MediaPipe's PoseLandmarker.

The full-frame landmarker sees a 224-pixel letterbox of the whole frame, so on a wide frame or
with people below about a tenth of the frame's height it finds fewer people than there are, or
none. ``find_people`` also runs the detector on square windows ("tiles") covering the frame at
one or more zoom levels (``tile_windows``: zoom 1 = tiles the size of the frame's short side, so
a wide strip is cut into tiles of about its height; zoom 2 = half that), overlapping by at least
``overlap``, plus the whole frame, and merges the detections.

What MediaPipe's documentation does not say and we chose:

* A landmark outside its tile, or within 2 % of the tile's side of an edge that lies inside the
  frame, was not seen by the network (MediaPipe extrapolates such landmarks and may give them a
  high visibility): its visibility is set to 0 and it does not count towards the box. Edges on
  the frame's border do not cut: the frame itself ends there, as for the full-frame detector.
* Merging (``merge``) ranks detections by fewest landmarks cut, then summed visibility, and
  drops one that overlaps a better one (the tracker's ``suppress_duplicates`` box rule) or whose
  landmarks coincide with its landmarks: a person cut by a tile border never survives as a half
  body when a tile holding the whole body found them. With overlap ≥ 25 % a person narrower
  than a quarter of the short side lies whole in some zoom-1 tile. A detection with fewer than
  ``MIN_VISIBLE`` landmarks of visibility ≥ 0.5 left is dropped (a sliver at a tile edge).
* Keypoints are full-frame pixels; world landmarks are MediaPipe's (metric, hip-centred) as the
  tile gave them; the mask is the tile's segmentation placed into a frame-sized mask at
  ``types.mask_size`` (zero outside the tile); the score is the mean landmark presence.

``find_near_point`` (for ``--point``) runs the detector on square crops centred on the point
and returns the person whose box contains it. All geometry helpers are pure functions.
"""
import math

import cv2
import numpy as np

from .track import _kp_distance, iou_matrix
from .types import FrameObservation, keypoint_box, mask_size

EDGE_MARGIN = 0.02   # of the tile's side: landmarks this close to an inner tile edge count as cut
MIN_TILE = 96        # px: smaller windows are not searched
NUM_POSES = 3        # per tile: a zoomed tile rarely holds more
MIN_VISIBLE = 8      # landmarks of visibility ≥ 0.5 a kept detection needs


class MultiPoseImageDetector:
    """Up to ``num_poses`` people per still image: MediaPipe Tasks PoseLandmarker in IMAGE mode.

    Calling it with an RGB image returns a list of (keypoints (33,3) px + visibility, world
    (33,3) m, segmentation (h,w) float 0..1, score = mean presence).
    """

    def __init__(self, num_poses=NUM_POSES, min_detection_confidence=0.5, min_presence_confidence=0.5):
        from ..native_log import quiet_native_logs
        from .landmarker import QuietStart, import_mediapipe, pose_bundle_options
        import_mediapipe()
        from mediapipe.tasks.python import vision
        opts = vision.PoseLandmarkerOptions(
            base_options=pose_bundle_options(),
            running_mode=vision.RunningMode.IMAGE, num_poses=int(num_poses),
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence, output_segmentation_masks=True)
        with quiet_native_logs():
            self._lm = vision.PoseLandmarker.create_from_options(opts)
        self._quiet = QuietStart()

    def __call__(self, rgb):
        import mediapipe as mp

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._quiet(self._lm.detect, image)
        segs = res.segmentation_masks or []
        out = []
        for i, (lms, wl) in enumerate(zip(res.pose_landmarks, res.pose_world_landmarks)):
            kp = np.array([(l.x * w, l.y * h, l.visibility) for l in lms], np.float32)
            world = np.array([(l.x, l.y, l.z) for l in wl], np.float32)
            pres = np.array([l.presence for l in lms], np.float32)
            # a copy while the result is alive (mediapipe 1.x's view dies with the Image)
            seg = np.array(segs[i].numpy_view(), np.float32) if i < len(segs) else np.zeros((h, w), np.float32)
            out.append((kp, world, seg, float(np.nanmean(pres))))
        return out

    def close(self):
        self._lm.close()


def window_starts(length, side, overlap):
    """Start offsets of windows of ``side`` px covering ``length`` px, neighbours overlapping by
    at least ``overlap`` × side, spread evenly from 0 to length − side."""
    if side >= length:
        return [0]
    n = math.ceil((length - side) / (side * (1.0 - overlap)) - 1e-9) + 1
    return [int(round(v)) for v in np.linspace(0, length - side, n)]


def tile_windows(width, height, scales=(1, 2), overlap=0.25, min_side=MIN_TILE):
    """Square windows (x0, y0, x1, y1) covering a width×height frame at each zoom in ``scales``:
    side = short side / zoom (zoom 1 on a wide strip: tiles of the strip's height). The whole
    frame is not among them (``find_people`` adds it); duplicates and windows below ``min_side``
    are left out."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1) (got {overlap})")
    out = []
    for s in scales:
        side = int(round(min(width, height) / float(s)))
        if side < min_side:
            continue
        for y in window_starts(height, side, overlap):
            for x in window_starts(width, side, overlap):
                win = (x, y, min(width, x + side), min(height, y + side))
                if win not in out and win != (0, 0, width, height):
                    out.append(win)
    return out


def uncut(xy, window, frame_size, margin=EDGE_MARGIN):
    """(N,) bool: the points lie inside ``window``, at least ``margin`` × its side away from each
    edge that is inside the frame (an edge on the frame's border cuts nothing)."""
    x0, y0, x1, y1 = window
    W, H = frame_size
    m = margin * max(x1 - x0, y1 - y0)
    lo_x = x0 + m if x0 > 0 else -np.inf
    hi_x = x1 - m if x1 < W else np.inf
    lo_y = y0 + m if y0 > 0 else -np.inf
    hi_y = y1 - m if y1 < H else np.inf
    x, y = xy[:, 0], xy[:, 1]
    return (x >= lo_x) & (x <= hi_x) & (y >= lo_y) & (y <= hi_y)


def place_mask(seg, window, frame_size):
    """A window's segmentation (h,w float 0..1) as the frame's uint8 mask at ``mask_size``."""
    W, H = frame_size
    mw, mh = mask_size(W, H)
    x0, y0, x1, y1 = window
    sx, sy = mw / W, mh / H
    X0, Y0 = int(math.floor(x0 * sx)), int(math.floor(y0 * sy))
    X1, Y1 = min(mw, max(X0 + 1, int(math.ceil(x1 * sx)))), min(mh, max(Y0 + 1, int(math.ceil(y1 * sy))))
    out = np.zeros((mh, mw), np.uint8)
    part = cv2.resize(np.asarray(seg, np.float32), (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_AREA)
    out[Y0:Y1, X0:X1] = (np.clip(part, 0, 1) * 255).astype(np.uint8)
    return out


def to_frame(found, window, frame_size, margin=EDGE_MARGIN):
    """One detection in a window (``MultiPoseImageDetector``'s tuple) → (FrameObservation in
    full-frame pixels, number of landmarks cut by the window's inner edges, set to visibility 0)."""
    kp, world, seg, score = found
    x0, y0 = window[:2]
    kp = np.asarray(kp, np.float32).copy()
    kp[:, 0] += x0
    kp[:, 1] += y0
    cut = ~uncut(kp[:, :2], window, frame_size, margin)
    kp[cut, 2] = 0.0
    return FrameObservation(kp, np.asarray(world, np.float32), place_mask(seg, window, frame_size),
                            bbox=keypoint_box(kp), score=float(score)), int(cut.sum())


def merge(found, iou=0.6, contained=0.85, same=0.15):
    """Non-maximum suppression of (FrameObservation, landmarks cut) pairs → the survivors, the
    most complete first: ranked by fewest landmarks cut by a tile edge, then summed visibility.

    Two detections are one person when their boxes overlap (IoU > ``iou``, or ∩ / smaller area >
    ``contained``: ``track.suppress_duplicates``'s rule) or when the landmarks visible in both lie
    on top of each other (mean distance < ``same`` × the taller box: a half body cut by a tile
    edge whose box pokes out of the whole one). As in the tracker, a box more than 1.5× taller
    than one it merely contains is a pose stretched over two people and gives way.
    """
    found = [(o, c) for o, c in found
             if np.isfinite(o.bbox).all() and (o.keypoints[:, 2] >= 0.5).sum() >= MIN_VISIBLE]
    if not found:
        return []
    conf = [float(np.nansum(o.keypoints[:, 2])) for o, _ in found]
    order = sorted(range(len(found)), key=lambda i: (found[i][1], -conf[i]))
    obs = [found[i][0] for i in order]
    box = np.stack([o.bbox for o in obs])
    ov, inside = iou_matrix(box, box), iou_matrix(box, box, over_min=True)
    height = np.maximum(box[:, 3] - box[:, 1], 1.0)
    keep = []
    for b in range(len(obs)):
        dup = False
        for a in list(keep):
            h = max(height[a], height[b])
            if _kp_distance(obs[a].keypoints, obs[b].keypoints) < same * h or ov[a, b] > iou:
                dup = True
            elif inside[a, b] > contained:
                if height[a] > 1.5 * height[b]:  # a stretched over two people: b replaces it
                    keep.remove(a)
                    continue
                dup = True
            if dup:
                break
        if not dup:
            keep.append(b)
    return [obs[i] for i in keep]


def detect_windows(rgb, windows, detector, margin=EDGE_MARGIN):
    """Run ``detector`` on each window of the RGB frame → (FrameObservation, landmarks cut) pairs."""
    H, W = rgb.shape[:2]
    out = []
    for win in windows:
        x0, y0, x1, y1 = win
        for found in detector(rgb[y0:y1, x0:x1]):
            out.append(to_frame(found, win, (W, H), margin))
    return out


def _with_detector(detector, fn):
    own = detector is None
    detector = detector or MultiPoseImageDetector()
    try:
        return fn(detector)
    finally:
        if own:
            detector.close()


def find_people(rgb, detector=None, scales=(1, 2), overlap=0.25, margin=EDGE_MARGIN,
                min_side=MIN_TILE, windows=None):
    """Every person in an RGB frame → list of FrameObservation (full-frame pixels), the most
    complete first. ``detector``: a ``MultiPoseImageDetector`` (made and closed here if None);
    see the module docstring for the tiles and the merge. ``windows``: search only these tiles
    (and the whole frame) instead of all of them."""
    H, W = rgb.shape[:2]
    if windows is None:
        windows = tile_windows(W, H, scales, overlap, min_side)
    windows = [(0, 0, W, H)] + [w for w in windows if tuple(w) != (0, 0, W, H)]
    return _with_detector(detector, lambda d: merge(detect_windows(rgb, windows, d, margin)))


def windows_near(people, windows, grow=0.25, share=0.5):
    """The tiles of ``windows`` holding at least ``share`` of a box of ``people``
    (FrameObservations) grown by ``grow`` × its size on each side: the tiles that can find those
    people again a few frames later, when they have moved a little."""
    out = []
    for w in windows:
        for ob in people:
            x0, y0, x1, y1 = ob.bbox
            gx, gy = grow * (x1 - x0), grow * (y1 - y0)
            x0, y0, x1, y1 = x0 - gx, y0 - gy, x1 + gx, y1 + gy
            ix = max(0.0, min(x1, w[2]) - max(x0, w[0]))
            iy = max(0.0, min(y1, w[3]) - max(y0, w[1]))
            if ix * iy >= share * (x1 - x0) * (y1 - y0):
                out.append(w)
                break
    return out


def point_windows(point, width, height, sizes=(0.5, 1.0), min_side=MIN_TILE):
    """Square windows centred on ``point`` (x, y px), sides = ``sizes`` × the short side, moved
    (not shrunk) to stay inside the frame."""
    px, py = point
    out = []
    for s in sizes:
        side = int(round(min(width, height) * s))
        if side < min_side:
            continue
        x0 = int(round(min(max(px - side / 2, 0), width - side)))
        y0 = int(round(min(max(py - side / 2, 0), height - side)))
        win = (x0, y0, x0 + side, y0 + side)
        if win not in out:
            out.append(win)
    return out


def pick_at_point(observations, point):
    """Of the observations whose box contains ``point``, the one with a visible keypoint
    nearest to it (the rule of ``track.select_subject``'s ``point``); None when none does."""
    px, py = map(float, point)
    best, best_d = None, np.inf
    for ob in observations:
        x0, y0, x1, y1 = ob.bbox
        if not (x0 <= px <= x1 and y0 <= py <= y1):
            continue
        vis = ob.keypoints[:, 2] > 0.3
        d = np.linalg.norm(ob.keypoints[vis, :2] - [px, py], axis=1).min() if vis.any() else np.inf
        if best is None or d < best_d:
            best, best_d = ob, d
    return best


def find_near_point(rgb, point, detector=None, sizes=(0.5, 1.0), margin=EDGE_MARGIN):
    """The person at ``point`` (x, y full-frame px) in an RGB frame, or None: crops centred on
    the point at ``sizes`` × the frame's short side, detections merged, then ``pick_at_point``."""
    H, W = rgb.shape[:2]
    if not (0 <= point[0] < W and 0 <= point[1] < H):
        raise ValueError(f"point ({point[0]:.0f}, {point[1]:.0f}) is outside the {W}×{H} frame")
    windows = point_windows(point, W, H, sizes) or [(0, 0, W, H)]
    return _with_detector(detector, lambda d: pick_at_point(merge(detect_windows(rgb, windows, d, margin)), point))
