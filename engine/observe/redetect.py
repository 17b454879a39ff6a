"""Recover the subject in short detection gaps by re-detecting on rotated crops.

MediaPipe's person detector expects people roughly upright; a gymnast, a diver or the demo's
back-flipping jumper goes undetected while upside down or sideways. For each gap in the
subject's track no longer than ``max_gap_s`` (bounded by known boxes on at least one side),
we crop the region the subject must be in (the neighbouring boxes, expanded), rotate the crop
by 0°, 180°, 90° and 270° (``np.rot90``: exact, no resampling) and run a single-image pose
detector on each until one finds a person whose size matches the track's. Keypoints, world
landmarks (their x/y are in the rotated image's axes) and the mask are rotated back.

Only the subject's own region is searched, so another person cannot be picked up unless they
stand exactly where the subject must be; a detection must also keep the track's size (0.3–1.6×
the box height interpolated across the gap: a tucked flip is small, a detection that stretches
limbs onto the background is large), lie in the crop's central part and come with a mask no
larger than ``MAX_MASK_GROWTH`` times the gap's neighbouring frames' (a pose made of glare or
foliage is segmented over the background). Our design; the papers do not cover detection.
"""
import hashlib
from pathlib import Path

import cv2
import numpy as np

from ..video.cache import code_version
from .types import MAX_MASK_GROWTH, FrameObservation, keypoint_box, mask_size
from ..video.decode import iter_frames

ANGLES = (0, 2, 1, 3)  # np.rot90 turns (×90° counter-clockwise), most likely first
_CV_TURNS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def rot90(image, k):
    """``np.rot90(image, k)`` as a contiguous array (opencv's rotate: the same pixels, no view to copy)."""
    k %= 4
    return np.ascontiguousarray(image) if k == 0 else cv2.rotate(image, _CV_TURNS[k])


def unrotate_points(xy, k, w, h):
    """Map pixel coordinates in ``np.rot90(crop, k)`` back to the crop (w×h) coordinates."""
    x, y = xy[..., 0], xy[..., 1]
    k %= 4
    if k == 0:
        return xy.copy()
    if k == 1:
        return np.stack([w - y, x], -1)
    if k == 2:
        return np.stack([w - x, h - y], -1)
    return np.stack([y, h - x], -1)


def unrotate_vectors(v, k):
    """Rotate (…,3) world-landmark vectors given in the rotated image's axes back (z kept)."""
    dx, dy = v[..., 0], v[..., 1]
    k %= 4
    if k == 0:
        return v.copy()
    x, y = {1: (-dy, dx), 2: (-dx, -dy), 3: (dy, -dx)}[k]
    return np.stack([x, y, v[..., 2]], -1)


class ImagePoseDetector:
    """One person per still image: ``tiles.MultiPoseImageDetector`` (MediaPipe's PoseLandmarker
    in IMAGE mode) asked for one pose."""

    def __init__(self, min_detection_confidence=0.5):
        from .tiles import MultiPoseImageDetector
        self._multi = MultiPoseImageDetector(num_poses=1, min_detection_confidence=min_detection_confidence)

    def __call__(self, rgb):
        """(keypoints (33,3) px, world (33,3), segmentation (h,w) float) or None."""
        found = self._multi(rgb)
        return found[0][:3] if found else None

    def close(self):
        self._multi.close()


def _height(box):
    return float(box[3] - box[1])


def search_region(before, after, frame_w, frame_h, expand=0.6):
    """Integer crop (x0,y0,x1,y1) covering the neighbouring boxes, grown by ``expand``× size."""
    boxes = np.array([b for b in (before, after) if b is not None], np.float64)
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = boxes[:, 2:].max(0)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = 0.5 * side * (1 + 2 * expand)  # square: a rotated person fits either way
    return (int(max(0, cx - half)), int(max(0, cy - half)),
            int(min(frame_w, cx + half)), int(min(frame_h, cy + half)))


def detect_in_crop(crop_bgr, origin, ref_height, detector, max_mask_px=None):
    """(keypoints, world, segmentation of the crop, box) in full-frame coordinates for the
    subject in ``crop_bgr`` (the search region, its top-left corner at ``origin``), or None.
    ``max_mask_px``: a detection whose mask covers more of the crop's pixels is not the subject."""
    x0, y0 = origin
    crop = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
    ch, cw = crop.shape[:2]
    if ch < 32 or cw < 32:
        return None
    for k in ANGLES:
        found = detector(rot90(crop, k))
        if found is None:
            continue
        kp, world, seg = found
        kp = kp.copy()
        kp[:, :2] = unrotate_points(kp[:, :2], k, cw, ch) + (x0, y0)
        box = keypoint_box(kp)
        if not np.isfinite(box).all():
            continue
        size = max(box[2] - box[0], box[3] - box[1])
        centre = 0.5 * (box[:2] + box[2:])
        inner = (x0 + 0.15 * cw <= centre[0] <= x0 + 0.85 * cw) and (y0 + 0.15 * ch <= centre[1] <= y0 + 0.85 * ch)
        if not (inner and 0.3 * ref_height <= size <= 1.6 * ref_height):
            continue
        if max_mask_px is not None and float((np.asarray(seg) > 0.5).mean()) * cw * ch > max_mask_px:
            continue
        return kp, unrotate_vectors(world, k), np.rot90(seg, -k), box
    return None


def gaps(valid, max_len):
    """(start, end_exclusive) runs of False no longer than ``max_len`` with a True neighbour."""
    out = []
    v = np.r_[True, valid, True].astype(int)
    starts = np.flatnonzero(np.diff(v) == -1)
    ends = np.flatnonzero(np.diff(v) == 1)
    for a, b in zip(starts, ends):
        if b - a <= max_len and (a > 0 or b < len(valid)) and valid.any():
            out.append((a, b))
    return out


SEEK_GAP = 90   # frames: gaps further apart are reached by seeking, nearer ones by grabbing through


def _gap_frames(video_path, frames, store=None):
    """Yield (index, timestamp, BGR) at full resolution for the sorted clip frame numbers
    ``frames`` only: each cluster of nearby frames is one seek and a grab through the frames
    between (not converted), or read from ``store`` (``engine.video.store``) where it holds them."""
    frames = np.asarray(frames)
    source = iter_frames if store is None else store.frames
    for cluster in np.split(frames, np.flatnonzero(np.diff(frames) > SEEK_GAP) + 1):
        keep = set(int(i) for i in cluster)
        yield from source(video_path, (int(cluster[0]), int(cluster[-1]) + 1), only=keep)


def inward_order(a, b, from_start, from_end):
    """Attempt order for gap [a, b): (forward frames from its start, backward frames from its
    end), each only when that edge is bounded by a known box; the caller walks each until its
    first miss. The detector loses a turning subject progressively and finds them again the
    same way, so past a side's first miss the rest of that side is not tried (measurements in
    docs/performance.md). Our choice; the papers do not cover detection."""
    fwd = list(range(a, b)) if from_start else []
    bwd = list(range(b - 1, a - 1, -1)) if from_end else []
    return fwd, bwd


def _fill(obs, t, hit, region, track, W, H, mw, mh):
    kp, world, seg, box = hit
    full = np.zeros((H, W), np.float32)
    x0, y0, x1, y1 = region
    full[y0:y1, x0:x1] = cv2.resize(seg, (x1 - x0, y1 - y0)) if seg.shape != (y1 - y0, x1 - x0) else seg
    obs.keypoints[t], obs.world[t], obs.bbox[t] = kp, world, box
    obs.masks[t] = (np.clip(cv2.resize(full, (mw, mh), interpolation=cv2.INTER_AREA), 0, 1) * 255).astype(np.uint8)
    obs.valid[t], obs.track_id[t] = True, track


def gap_plans(obs, max_gap_s=1.0):
    """The search plan of each gap of ``obs`` that ``recover_gaps`` searches: its frames
    (ordinals a…b−1), search region, the box heights and mask size a detection must keep, and
    which edges are bounded by a known box. A gap where the subject was hidden behind someone
    is not searched (whoever is found there is not the subject)."""
    todo = gaps(obs.valid, int(round(max_gap_s * obs.fps)))
    if obs.hidden is not None:
        todo = [(a, b) for a, b in todo if not obs.hidden[a:b].any()]
    W, H = obs.frame_size
    mw, mh = mask_size(W, H)
    T = len(obs.valid)
    plans = []
    for a, b in todo:
        before = obs.bbox[a - 1] if a > 0 and obs.valid[a - 1] else None
        after = obs.bbox[b] if b < T and obs.valid[b] else None
        h0 = _height(before) if before is not None else _height(after)
        h1 = _height(after) if after is not None else h0
        sides = [int((obs.masks[t] > 127).sum()) for t in (a - 1, b) if 0 <= t < T and obs.valid[t]]
        ref_px = np.mean(sides) * (W * H) / (mw * mh) if sides else 0.0   # full-resolution pixels
        plans.append(dict(a=a, b=b, region=search_region(before, after, W, H), crops={},
                          max_mask_px=MAX_MASK_GROWTH * ref_px if ref_px > 0 else None,
                          refs={t: h0 + (h1 - h0) * (t - a + 1) / (b - a + 1) for t in range(a, b)},
                          from_start=before is not None, from_end=after is not None))
    return plans


def _subject_track(obs):
    return int(obs.track_id[obs.valid][0]) if obs.valid.any() else -1


def search_final_gaps(video_path, obs, max_gap_s=1.0, skip=(), detector=None, store=None):
    """Search the gaps of ``obs``, the observations of a clip's first frames while the rest are
    still being followed, that are final (a valid frame after them) and not in ``skip`` →
    {(a, b): [(ordinal, keypoints, world, box, mask) of each frame found]}, for
    ``recover_gaps(searched=…)``. ``obs`` itself is filled as ``recover_gaps`` fills it.
    The same result as searching them afterwards: a gap's plan depends only on its neighbouring
    frames, and each gap is searched alone by a detector without memory."""
    plans = [p for p in gap_plans(obs, max_gap_s) if p["b"] < len(obs.valid) and (p["a"], p["b"]) not in skip]
    if not plans:
        return {}
    before = obs.valid.copy()
    _search_plans(video_path, obs, plans, _subject_track(obs), detector, None, store)
    return {(p["a"], p["b"]): [(t, obs.keypoints[t].copy(), obs.world[t].copy(), obs.bbox[t].copy(),
                                obs.masks[t].copy()) for t in range(p["a"], p["b"]) if obs.valid[t] and not before[t]]
            for p in plans}


def recover_gaps(video_path, obs, max_gap_s=1.0, detector=None, progress=None, halves=None, store=None,
                 searched=None):
    """Fill short gaps of ``obs`` (the subject's Observations) in place; returns frames recovered.

    Each gap is searched from its bounded edges inward (``inward_order``); a gap's frames are
    decoded in one pass and only their search regions kept until the gap is done. ``halves``
    (default: two cores; only with two gaps or more and no ``detector`` given): the gaps in two
    groups of about equal frames, each searched in its own thread with its own decoder and
    detector (``halves.run_beside``) — the same result, as each gap is searched alone by a
    detector without memory (IMAGE mode). ``store``: frames already decoded
    (``engine.video.store.FrameStore``), read instead of decoded where it holds them.
    ``searched``: ``search_final_gaps``'s result for gaps searched while the clip was being
    followed; their frames are filled from it, not searched again."""
    from .halves import cores, run_beside

    plans = gap_plans(obs, max_gap_s)
    if not plans:
        return 0
    track = _subject_track(obs)
    found = 0
    if searched:
        todo = []
        for p in plans:
            fills = searched.get((p["a"], p["b"]))
            if fills is None:
                todo.append(p)
                continue
            for t, kp, world, box, mask in fills:
                obs.keypoints[t], obs.world[t], obs.bbox[t], obs.masks[t] = kp, world, box, mask
                obs.valid[t], obs.track_id[t] = True, track
                found += 1
        plans = todo
        if not plans:
            return found
    if halves is None:
        halves = cores() >= 2
    if not halves or len(plans) < 2 or detector is not None:
        return found + _search_plans(video_path, obs, plans, track, detector, progress, store)
    sizes = np.cumsum([p["b"] - p["a"] for p in plans])
    k = int(np.clip(np.searchsorted(sizes, sizes[-1] / 2), 0, len(plans) - 2)) + 1
    n1, n2 = run_beside(lambda report: _search_plans(video_path, obs, plans[:k], track, None, progress, store),
                        lambda report: _search_plans(video_path, obs, plans[k:], track, None,
                                                     lambda i: report(0), store))  # stops when the first fails
    return found + n1 + n2


def _search_plans(video_path, obs, plans, track, detector=None, progress=None, store=None):
    """``recover_gaps``'s search over ``plans`` (gaps with their regions) → frames recovered. A
    decoded frame whose timestamp is not the observations' for that frame (a container whose
    seeking misses) is never searched: whoever is there at that time is not the gap's frame."""
    W, H = obs.frame_size
    mw, mh = mask_size(W, H)
    own = detector is None
    detector = detector or ImagePoseDetector()
    gap_of = {int(obs.frame_index[t]): (g, t) for g, p in enumerate(plans) for t in range(p["a"], p["b"])}
    found = 0

    def search(p):
        nonlocal found
        x0, y0, _, _ = p["region"]
        fwd, bwd = inward_order(p["a"], p["b"], p["from_start"], p["from_end"])
        done = set()
        for side in (fwd, bwd):
            for t in side:
                if t in done or t not in p["crops"]:  # met the other side, or never decoded
                    break
                done.add(t)
                hit = detect_in_crop(p["crops"][t], (x0, y0), p["refs"][t], detector, p["max_mask_px"])
                if hit is None:
                    break
                _fill(obs, t, hit, p["region"], track, W, H, mw, mh)
                found += 1
        p["crops"].clear()

    try:
        for i, ts, bgr in _gap_frames(video_path, sorted(gap_of), store):
            g, t = gap_of[i]
            p = plans[g]
            if abs(ts - obs.timestamps[t]) > 0.5 / obs.fps:
                continue  # the seek landed on another frame than the one asked for: not searched
            if bgr.shape[1] != W:  # decoded size must match the observation coordinates
                bgr = cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA)
            x0, y0, x1, y1 = p["region"]
            p["crops"][t] = bgr[y0:y1, x0:x1].copy()
            if progress is not None:
                progress(i)
            if len(p["crops"]) == p["b"] - p["a"]:
                search(p)
        for p in plans:  # the decoder ended early (a container longer than its frames)
            if p["crops"]:
                search(p)
    finally:
        if own:
            detector.close()
    return found


_HERE = Path(__file__).parent
# the cache of recovered frames follows this module's code and the detector's
RECOVER_VERSION = code_version(__file__, _HERE / "tiles.py", _HERE / "landmarker.py")
_FILLED = ("keypoints", "world", "bbox", "masks", "track_id")


def _observations_digest(obs):
    """SHA-1 of what the search depends on: which frames are valid, their boxes, keypoints,
    masks, track ids, times, the frames left out as hidden, the frame size and rate."""
    h = hashlib.sha1(str((tuple(obs.frame_size), float(obs.fps))).encode())
    for a in (obs.valid, obs.bbox, obs.keypoints, obs.masks, obs.track_id, obs.frame_index, obs.timestamps,
              obs.hidden):
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def recover_gaps_cached(video_path, obs, max_gap_s=1.0, use_cache=True, progress=None, store=None,
                        searched=None):
    """``recover_gaps`` with its result kept in the detection cache (``engine.video.cache``):
    a run over the same clip whose detections come from the cache (another smoothing, another
    rig) then repeats no detection at all. The key is the clip's content, these observations'
    digest, ``max_gap_s``, the installed MediaPipe and this code. → frames recovered."""
    from ..video import cache
    from .landmarker import mediapipe_version_tag
    key = cache.cache_key(video_path, {"recover": RECOVER_VERSION, "max_gap_s": float(max_gap_s),
                                       "observations": _observations_digest(obs),
                                       "mediapipe": mediapipe_version_tag()}) if use_cache else None
    got = cache.load(key, kind="recovered") if key else None
    if got is not None:
        t = got["frames"].astype(np.int64)
        for name in _FILLED:
            getattr(obs, name)[t] = got[name]
        obs.valid[t] = True
        return int(len(t))
    before = obs.valid.copy()
    n = recover_gaps(video_path, obs, max_gap_s=max_gap_s, progress=progress, store=store, searched=searched)
    if key:
        t = np.flatnonzero(obs.valid & ~before)
        cache.save(key, {"frames": t} | {name: getattr(obs, name)[t] for name in _FILLED}, kind="recovered")
    return n
