"""Associate people over time and select the subject: one consistent track, gaps left invalid.

1. ``suppress_duplicates``: two detections of one person in a frame (the landmarker's tracked
   region and a fresh detection can converge on the same body) → keep the more confident.
2. ``associate``: frame by frame, Hungarian assignment (scipy ``linear_sum_assignment``) of
   detections to live tracks; cost = (1 − IoU with the track's motion-predicted box) +
   keypoint distance in body heights / 3; a pair is allowed only when IoU > 0.1 or the
   keypoints are within half a body height (growing with the gap). The height is the larger of
   the two boxes' (symmetric: a stretched mid-flip box and the crouched landing next to it
   link whichever comes first, as when a looped clip plays backward). Tracks unseen for more
   than ``max_age_s`` end.
3. ``stitch``: a track that ends may continue as a *later* track (no time overlap — a person
   visible at the same time as the subject is never the subject) when it starts within
   ``max_gap_s``, near where the first ended (≤ 0.5 body height + 2.5 heights/s of gap: a person
   running at ~4 m/s, or the demo's back-flip, which covers ~1.9 heights/s), at a
   similar size (median box height of the 10 detections at each end, so one tucked box — a
   back-flip — does not count) and with a similar colour histogram. Deliberately conservative: a lost subject
   stays lost (invalid frames) rather than risk continuing as someone else.
4. ``select_subject`` by a rule (see there) and ``track_and_select`` → Observations.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import EngineError
from .types import LM, NUM_LANDMARKS, Observations

SUBJECT_RULES = ("largest", "central", "pitcher", "point", "track")


def iou_matrix(a, b, over_min=False):
    """IoU between boxes a (n,4) and b (m,4), x0,y0,x1,y1 (``over_min``: ∩ / smaller area)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: np.clip(r[:, 2] - r[:, 0], 0, None) * np.clip(r[:, 3] - r[:, 1], 0, None)
    if over_min:
        union = np.minimum(area(a)[:, None], area(b)[None, :])
    else:
        union = area(a)[:, None] + area(b)[None, :] - inter
    return np.nan_to_num(np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0))


def _centre(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _height(box):
    return max(float(box[3] - box[1]), float(box[2] - box[0]) * 0.5, 1.0)


def _kp_distance(kp_a, kp_b, shift=(0.0, 0.0), min_vis=0.5):
    """Mean distance (px) between keypoints visible in both; inf when fewer than 4 are."""
    both = (kp_a[:, 2] > min_vis) & (kp_b[:, 2] > min_vis)
    if both.sum() < 4:
        return np.inf
    return float(np.linalg.norm(kp_a[both, :2] + np.asarray(shift) - kp_b[both, :2], axis=1).mean())


def suppress_duplicates(frame_of, bbox, keypoints, score=None, iou=0.6, contained=0.85):
    """Keep-mask (N,) dropping a detection that overlaps a more confident one in its frame.

    Overlap: IoU > ``iou``, or one box lying (∩ / smaller area > ``contained``) inside the other
    — the landmarker sometimes adds a partial body (the smaller, less confident one is dropped),
    or a pose stretched over two people whose box contains one of them (a container more than
    1.5× taller than what it contains is dropped). Ranked by summed keypoint visibility.
    """
    N = len(frame_of)
    keep = np.ones(N, bool)
    conf = np.nansum(keypoints[:, :, 2], axis=1)
    for f in np.unique(frame_of):
        ids = np.flatnonzero(frame_of == f)
        if len(ids) < 2:
            continue
        ids = ids[np.argsort(-conf[ids])]
        ov = iou_matrix(bbox[ids], bbox[ids])
        inside = iou_matrix(bbox[ids], bbox[ids], over_min=True)
        for a in range(len(ids)):
            if not keep[ids[a]]:
                continue
            for b in range(a + 1, len(ids)):
                if keep[ids[b]] and (ov[a, b] > iou or inside[a, b] > contained):
                    ha, hb = _height(bbox[ids[a]]), _height(bbox[ids[b]])
                    if ov[a, b] <= iou and ha > 1.5 * hb:  # a pose stretched over two people
                        keep[ids[a]] = False
                        break
                    keep[ids[b]] = False
    return keep


def associate(frame_of, bbox, keypoints, timestamps, keep=None, max_age_s=0.5, appearance=None,
              min_similarity=0.75):
    """Online association → track id per detection (N,), −1 for suppressed ones.

    After a miss (gap > 1 frame) a detection must also resemble the track (Bhattacharyya
    similarity of colour histograms ≥ ``min_similarity``), so someone stepping into the place
    where the subject was lost does not inherit its track. Distances are in the larger of the
    track's and the detection's box heights, symmetric in the two boxes: a clip played
    backward is not cut where the box size changes sharply.
    """
    N = len(frame_of)
    keep = np.ones(N, bool) if keep is None else keep
    tid = np.full(N, -1, np.int64)
    app = np.zeros((N, 1), np.float32) if appearance is None else appearance
    tracks = []  # dicts: id, last (det index), t (frame ordinal), vel (px/frame), app
    for f in np.unique(frame_of):
        dets = np.flatnonzero((frame_of == f) & keep)
        live = [tr for tr in tracks if timestamps[f] - timestamps[tr["t"]] <= max_age_s + 1e-6]
        cost = np.full((len(live), len(dets)), 1e6)
        for j, tr in enumerate(live):
            gap = f - tr["t"]
            shift = tr["vel"] * gap
            pred = bbox[tr["last"]] + np.r_[shift, shift]
            h_last = _height(bbox[tr["last"]])
            ious = iou_matrix(pred[None], bbox[dets])[0]
            for i, d in enumerate(dets):
                h = max(h_last, _height(bbox[d]))
                kd = _kp_distance(keypoints[tr["last"]], keypoints[d], shift) / h
                cd = np.linalg.norm(_centre(bbox[d]) - _centre(pred)) / h
                sim = appearance_similarity(tr["app"], app[d]) if appearance is not None else 1.0
                if gap > 1 and sim < min_similarity:
                    continue
                if ious[i] > 0.1 or kd < 0.5 * (1 + 0.3 * (gap - 1)):
                    if cd < 1.0 + 0.3 * (gap - 1):  # never across the frame in one step
                        cost[j, i] = (1 - ious[i]) + min(kd, 3.0) / 3.0 + 0.5 * (1 - sim)
        used = set()
        if len(live) and len(dets):
            rows, cols = linear_sum_assignment(cost)
            for j, i in zip(rows, cols):
                if cost[j, i] >= 1e6:
                    continue
                tr, d = live[j], dets[i]
                gap = f - tr["t"]
                v = (_centre(bbox[d]) - _centre(bbox[tr["last"]])) / gap
                tr["vel"] = 0.5 * tr["vel"] + 0.5 * v
                tr["last"], tr["t"] = d, f
                tr["app"] = 0.8 * tr["app"] + 0.2 * app[d]
                tid[d] = tr["id"]
                used.add(i)
        for i, d in enumerate(dets):
            if i not in used:
                tracks.append({"id": len(tracks), "last": d, "t": f, "vel": np.zeros(2),
                               "app": app[d].astype(np.float64)})
                tid[d] = tracks[-1]["id"]
    return tid


def appearance_similarity(p, q):
    """Bhattacharyya coefficient of two normalised histograms: 1 = the same colours."""
    return float(np.sum(np.sqrt(np.clip(p, 0, None) * np.clip(q, 0, None))))


def stitch(track_id, frame_of, bbox, appearance, timestamps, max_gap_s=2.0, speed_h_per_s=2.5,
           min_similarity=0.75):
    """Join a track to a later one that plausibly continues it (see module doc) → new ids."""
    ids = [t for t in np.unique(track_id) if t >= 0]
    info = {}
    for t in ids:
        d = np.flatnonzero(track_id == t)
        d = d[np.argsort(frame_of[d])]
        heights = np.array([_height(bbox[i]) for i in d])
        # size at each end as the median over 10 detections: one tucked or clipped box (a
        # back-flip, a crouch) must not make the same person look like someone else
        info[t] = dict(first=d[0], last=d[-1], f0=frame_of[d[0]], f1=frame_of[d[-1]],
                       h_head=float(np.median(heights[:10])), h_tail=float(np.median(heights[-10:])),
                       app_head=appearance[d[:10]].mean(0), app_tail=appearance[d[-10:]].mean(0))
    cands = []
    for a in ids:
        for b in ids:
            A, B = info[a], info[b]
            if B["f0"] <= A["f1"]:
                continue
            dt = timestamps[B["f0"]] - timestamps[A["f1"]]
            if dt > max_gap_s:
                continue
            ha, hb = A["h_tail"], B["h_head"]
            if not 0.6 <= hb / ha <= 1 / 0.6:
                continue
            dist = np.linalg.norm(_centre(bbox[B["first"]]) - _centre(bbox[A["last"]])) / max(ha, hb)
            if dist > 0.5 + speed_h_per_s * dt:
                continue
            sim = appearance_similarity(A["app_tail"], B["app_head"])
            if sim < min_similarity:
                continue
            cands.append((dist + (1 - sim) * 4 + dt, a, b))
    nxt, prv = {}, {}
    for _, a, b in sorted(cands):
        if a not in nxt and b not in prv:
            nxt[a], prv[b] = b, a
    root = {}
    for t in ids:
        r = t
        while r in prv:
            r = prv[r]
        root[t] = r
    order = sorted({root[t] for t in ids}, key=lambda r: (info[r]["f0"], r))
    renum = {r: k for k, r in enumerate(order)}
    out = np.full_like(track_id, -1)
    for t in ids:
        out[track_id == t] = renum[root[t]]
    return out


def track_summaries(dets, track_id):
    """One dict per track: id, first/last clip frame, frames seen, mean box (for choosing one)."""
    out = []
    for t in sorted(t for t in np.unique(track_id) if t >= 0):
        d = np.flatnonzero(track_id == t)
        fr = dets.frame_index[dets.frame_of[d]]
        out.append(dict(id=int(t), first_frame=int(fr.min()), last_frame=int(fr.max()),
                        frames=int(len(d)), mean_box=[round(float(v), 1) for v in np.nanmean(dets.bbox[d], 0)]))
    return out


def _nearest_ordinal(dets, frame):
    return int(np.argmin(np.abs(dets.frame_index - int(frame))))


def check_subject_rule(subject, subject_point=None):
    """Raise EngineError for a rule ``select_subject`` would refuse (checked before detection)."""
    if subject_point is not None and subject in (None, "largest", "point"):
        return
    if isinstance(subject, (int, np.integer)) or (isinstance(subject, str) and (
            subject.isdigit() or (subject.startswith("track:") and subject[6:].isdigit()))):
        return
    if subject == "point":
        raise EngineError("subject 'point' needs a point (x, y) in pixels (--point X Y)")
    if subject not in SUBJECT_RULES or subject == "track":
        raise EngineError(f"unknown subject rule '{subject}' (choose from largest, central, pitcher, "
                          "point or a track id from --list-people)")


THROW_SPEED = 6.0  # box heights per second of the wrist about the shoulders: a throw's order


def pitcher_score(dets, track_id, t):
    """How much track ``t`` looks like the pitcher of a broadcast or side view (higher: more).

    In view for most of the clip × near the image's vertical centre line (the centre-field
    camera frames the mound; the batter, catcher and umpire stand to a side of it) × standing
    (a catcher's or umpire's crouch gives a box about as wide as tall: × 0.3) × (1 + how fast a
    wrist moves about the shoulders, up to one throw's speed). Box size is not used: from centre
    field the batter can look as large as the pitcher. Where no rule of the game says, these
    weights are our choice; docs/pitch_validation.md has what they were checked on."""
    W, _ = dets.frame_size
    d = np.flatnonzero(track_id == t)
    d = d[np.argsort(dets.frame_of[d])]
    coverage = len(np.unique(dets.frame_of[d])) / max(1, dets.num_frames)
    cx = 0.5 * (dets.bbox[d, 0] + dets.bbox[d, 2])
    centrality = float(np.mean(np.clip(1 - np.abs(cx - W / 2) / (W / 2), 0, 1)))
    h = dets.bbox[d, 3] - dets.bbox[d, 1]
    w = dets.bbox[d, 2] - dets.bbox[d, 0]
    standing = 0.3 if np.median(h / np.maximum(w, 1e-6)) < 1.2 else 1.0
    throw = 0.0
    if len(d) > 1:
        kp = dets.keypoints[d]
        shoulders = 0.5 * (kp[:, LM["left_shoulder"], :2] + kp[:, LM["right_shoulder"], :2])
        dt = np.diff(dets.timestamps[dets.frame_of[d]])
        for wrist in (LM["left_wrist"], LM["right_wrist"]):
            rel = kp[:, wrist, :2] - shoulders
            ok = (kp[:-1, wrist, 2] > 0.5) & (kp[1:, wrist, 2] > 0.5) & (dt > 0)
            if ok.any():
                v = np.linalg.norm(np.diff(rel, axis=0), axis=1)[ok] / dt[ok] / np.maximum(h[1:][ok], 1.0)
                throw = max(throw, float(np.percentile(v, 95)))
    return coverage * centrality * standing * (1 + min(throw / THROW_SPEED, 1.0))


def select_subject(dets, track_id, subject="largest", subject_point=None, subject_frame=0):
    """The subject's track id.

    Rules: ``largest`` — the track with the greatest summed box height over the clip (big and
    long in view); ``central`` — summed closeness of its box centre to the image centre;
    ``point`` — the person under ``subject_point`` (x, y full-resolution pixels) on clip frame
    ``subject_frame`` (the box containing the point whose visible keypoints are nearest to it;
    the detector's frames within ±5 are searched when that frame has nobody there);
    ``pitcher`` — the track that most looks like the pitcher (``pitcher_score``);
    ``track`` / an int / ``"track:N"`` / ``"N"`` — a track id from ``track_summaries``.
    """
    ids = [t for t in np.unique(track_id) if t >= 0]
    if not ids:
        raise EngineError("no person found in any frame")
    W, H = dets.frame_size
    if subject_point is not None and subject in (None, "largest", "point"):
        subject = "point"
    if isinstance(subject, (int, np.integer)) or (isinstance(subject, str) and
                                                 (subject.isdigit() or subject.startswith("track:"))):
        t = int(str(subject).split(":")[-1])
        if t not in ids:
            raise EngineError(f"no track {t}; tracks are {', '.join(map(str, ids))}")
        return t
    if subject == "largest":
        h = dets.bbox[:, 3] - dets.bbox[:, 1]
        return max(ids, key=lambda t: np.nansum(h[track_id == t]))
    if subject == "central":
        c = 0.5 * (dets.bbox[:, :2] + dets.bbox[:, 2:])
        d = np.linalg.norm((c - [W / 2, H / 2]) / [W / 2, H / 2], axis=1) / np.sqrt(2)
        close = np.clip(1 - d, 0, 1)
        return max(ids, key=lambda t: np.nansum(close[track_id == t]))
    if subject == "pitcher":
        return max(ids, key=lambda t: pitcher_score(dets, track_id, t))
    if subject == "point":
        if subject_point is None:
            raise EngineError("subject 'point' needs a point (x, y) in pixels")
        px, py = map(float, subject_point)
        f0 = _nearest_ordinal(dets, subject_frame)
        order = sorted(range(max(0, f0 - 5), min(dets.num_frames, f0 + 6)), key=lambda f: abs(f - f0))
        for f in order:
            best, best_d = None, np.inf
            for d in np.flatnonzero((dets.frame_of == f) & (track_id >= 0)):
                x0, y0, x1, y1 = dets.bbox[d]
                if not (x0 <= px <= x1 and y0 <= py <= y1):
                    continue
                kp = dets.keypoints[d]
                vis = kp[:, 2] > 0.3
                dist = np.linalg.norm(kp[vis, :2] - [px, py], axis=1).min() if vis.any() else np.inf
                if dist < best_d or best is None:
                    best, best_d = d, dist
            if best is not None:
                return int(track_id[best])
        raise EngineError(f"no person at ({px:.0f}, {py:.0f}) on frame {subject_frame} "
                          f"(or within 5 processed frames of it)")
    raise EngineError(f"unknown subject rule '{subject}' (choose from {', '.join(SUBJECT_RULES)} "
                      "or a track id)")


def track_people(dets, max_age_s=0.5, max_gap_s=2.0, min_frames=3, stitch_similarity=0.75):
    """Track ids (N,) for every detection (−1: suppressed duplicate or a transient).

    Tracks seen in fewer than ``min_frames`` frames (capped at the clip's length) are
    transients — the landmarker briefly stretching a pose over two people — and are dropped.
    ``stitch_similarity``: the colour similarity ``stitch`` asks of a continuation.
    """
    keep = suppress_duplicates(dets.frame_of, dets.bbox, dets.keypoints, dets.score)
    tid = associate(dets.frame_of, dets.bbox, dets.keypoints, dets.timestamps, keep, max_age_s,
                    dets.appearance)
    ids, counts = np.unique(tid[tid >= 0], return_counts=True)
    for t in ids[counts < min(min_frames, dets.num_frames)]:
        tid[tid == t] = -1
    return stitch(tid, dets.frame_of, dets.bbox, dets.appearance, dets.timestamps, max_gap_s,
                  min_similarity=stitch_similarity)


def track_and_select(dets, subject="largest", subject_point=None, subject_frame=0):
    """Detections → the subject's Observations (one track; frames without it invalid)."""
    T = dets.num_frames
    W, H = dets.frame_size
    mh, mw = dets.masks.shape[1:] if len(dets.masks) else (1, 1)
    if len(dets.masks) == 0:
        from .types import mask_size
        mw, mh = mask_size(W, H)
    tid = track_people(dets)
    kps = np.full((T, NUM_LANDMARKS, 3), np.nan, np.float32)
    world = np.full((T, NUM_LANDMARKS, 3), np.nan, np.float32)
    masks = np.zeros((T, mh, mw), np.uint8)
    box = np.full((T, 4), np.nan, np.float32)
    track = np.full(T, -1, np.int64)
    valid = np.zeros(T, bool)
    if (tid >= 0).any():
        s = select_subject(dets, tid, subject, subject_point, subject_frame)
        d = np.flatnonzero(tid == s)
        f = dets.frame_of[d]
        kps[f], world[f], masks[f], box[f] = dets.keypoints[d], dets.world[d], dets.masks[d], dets.bbox[d]
        track[f], valid[f] = s, True
    return Observations(keypoints=kps, world=world, masks=masks, valid=valid,
                        timestamps=dets.timestamps.copy(), frame_size=tuple(dets.frame_size),
                        fps=dets.fps, bbox=box, track_id=track, frame_index=dets.frame_index.copy(),
                        homographies=dets.homographies.copy(), tracks=track_summaries(dets, tid))
