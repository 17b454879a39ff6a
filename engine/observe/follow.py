"""Follow the chosen subject frame by frame on a crop around it (region-of-interest tracking).

Two passes over the clip:

1. **Survey** (``survey_frames``): the full-frame multi-person landmarker runs on every
   ``SURVEY_EVERY``-th frame (evenly, so a rule that sums over the clip weighs every second
   alike). It finds everyone, tracks them (``track.track_people``) and the subject is chosen by
   the usual rules over the whole clip (``track.select_subject``): the survey is what
   ``--list-people`` shows.
2. **Follow** (``follow_video``): every frame is landmarked by a single-person landmarker on a
   square crop around the subject's predicted box, as MediaPipe's own single-person pipeline
   does internally, but with the crop placed by us from the subject's own motion and the survey's
   sightings of it. The landmarker runs in IMAGE mode: MediaPipe's person detector places its
   pose region on every crop. Its video mode instead carries the region over from the last
   frame's landmarks and, for a single pose, smooths them in time: on R1 those landmarks lag
   and stick, further from the reference than the detector's (docs/benchmarks.md). MediaPipe's
   tracking is used only while another person is near (``TRACK_NEAR``), where a detector would
   take the more visible person. A crop's detection is kept only when it is the subject
   (``is_subject``): its box agrees with the prediction (and with the survey's sighting on
   survey frames), few of its visible joints lie outside the predicted box (a pose stretched
   over two people is rejected, never fed to the estimator), and it does not resemble a nearby
   other person more than the subject. A rejected frame is left invalid (a landmarker with a
   memory between frames is restarted, so that it forgets whoever it latched onto).

Choices where MediaPipe is silent: the crop is 1.7× the box's longer side (room for a frame's
motion and for limbs the keypoint box misses), moved only when the prediction leaves its middle
or changes size by a fifth, and handed over at the frame's resolution: downscaling crops first
(to 384 px) cost R1 accuracy (docs/benchmarks.md), as MediaPipe's own warp to its input samples
the full frame.
"""
import copy
import time

import cv2
import numpy as np

from ..errors import EngineError
from ..video.cache import code_version
from .detect import appearance_histogram
from .track import appearance_similarity, iou_matrix
from .types import MAX_MASK_GROWTH, NUM_LANDMARKS, Observations, keypoint_box, mask_size

SURVEY_EVERY = 6     # frames between full-frame passes
CROP_SCALE = 1.7     # crop side / the predicted box's longer side
CROP_MIN_SIDE = 96   # pixels
MOVE_FRACTION = 0.12  # the crop moves when the prediction's centre is this far (× side) off
MIN_IOU = 0.3        # found box vs predicted box
MIN_ANCHOR_IOU = 0.45  # found box vs the survey's sighting on a survey frame
SIZE_RANGE = (0.45, 2.2)  # a detection against the subject's expected size (a tucked flip: about half)
MAX_OUTSIDE = 0.3    # fraction of visible joints allowed outside the grown predicted box
LOST_S = 0.5         # without a sighting or a valid frame for this long, stop predicting
CROP_TRACKING = False  # True: the crops landmarked in MediaPipe's video mode (its tracking and
# smoothing; the default until 2026-12-08), kept to measure against (scripts/crop_landmarks_r1.py)
TRACK_NEAR = (0.5, 6)  # MediaPipe's tracking on the crops while another person's expected box
# touches the subject's grown by this × its side, now or within this many frames (our choice)
SURVEY_SIMILARITY = 0.6  # colour similarity a survey track's continuation needs (see track_survey)


def track_survey(survey):
    """Track ids for the survey's detections: ``track.track_people`` with a looser colour test
    for joining a track to a later one, and 2 sightings enough for a track. Seen every sixth
    frame, a person who turns or lands in another light (the demo's back-flip) changes colour
    between sightings more than between consecutive frames; the position, size and
    no-overlap-in-time tests of ``track.stitch`` still apply."""
    from .track import track_people
    return track_people(survey, min_frames=2, stitch_similarity=SURVEY_SIMILARITY)


def survey_frames(first, last, stride, every=SURVEY_EVERY, extra=()):
    """Clip frame numbers the full-frame pass runs on: every ``every``-th processed frame, the
    last one and the processed frames nearest ``extra`` (e.g. the frame a ``--point`` refers to)."""
    frames = np.arange(int(first), int(last), max(1, int(stride)))
    if not len(frames):
        return set()
    keep = set(int(f) for f in frames[::max(1, int(every))]) | {int(frames[-1])}
    for f in extra:
        keep.add(int(frames[np.argmin(np.abs(frames - int(f)))]))
    return keep


def _centre(b):
    return 0.5 * (np.asarray(b[:2]) + np.asarray(b[2:]))


def _side(b):
    return float(max(b[2] - b[0], b[3] - b[1]))


class SubjectPrior:
    """What the survey knows: the subject's sightings (box, keypoints) by clip frame, the other
    people's boxes by clip frame, and everyone's mean colour signature."""

    def __init__(self, survey, track_id, subject):
        fr = survey.frame_index[survey.frame_of]
        self.frames = np.unique(survey.frame_index)
        mine = np.flatnonzero(track_id == subject)
        self.boxes = {int(fr[d]): survey.bbox[d].astype(np.float64) for d in mine}
        self.keypoints = {int(fr[d]): survey.keypoints[d] for d in mine}
        self.sighted = np.array(sorted(self.boxes), np.int64)
        self.others = {}
        self.signatures = {}
        for t in np.unique(track_id[track_id >= 0]):
            d = np.flatnonzero(track_id == t)
            self.signatures[int(t)] = survey.appearance[d].mean(0) if len(survey.appearance) else None
            if t == subject:
                continue
            for k in d:
                self.others.setdefault(int(fr[k]), []).append((int(t), survey.bbox[k].astype(np.float64)))
        self.subject = int(subject)
        self.adopted = []
        self._tracks = {}
        for t in np.unique(track_id[track_id >= 0]):
            if t == subject:
                continue
            d = np.flatnonzero(track_id == t)
            d = d[np.argsort(fr[d])]
            self._tracks[int(t)] = dict(frames=fr[d].astype(np.int64), det=d,
                                        h_head=float(np.median(survey.bbox[d[:10], 3] - survey.bbox[d[:10], 1])),
                                        app_head=survey.appearance[d[:10]].mean(0) if len(survey.appearance) else None)
        self._survey = survey

    def copy(self):
        """A copy whose adoptions (``adopt`` changes the sightings) leave this one as it is: each
        half of a split follow pass adopts on its own."""
        c = copy.copy(self)
        c.boxes, c.keypoints = dict(self.boxes), dict(self.keypoints)
        c.others = {f: list(v) for f, v in self.others.items()}
        c.sighted, c.adopted, c._tracks = self.sighted.copy(), list(self.adopted), dict(self._tracks)
        return c

    def steady(self, track, share=1 / 3, at_least=4):
        """True when another person's track is seen on at least ``share`` of the survey frames
        (and ``at_least`` of them). A short track may be a false one (on R1, a second box on the
        subject's upper body), and greying it where it overlaps the subject cuts their limbs; a
        real person seen that rarely is then not greyed there either. Our threshold, set on R1
        and the composites (docs/benchmarks.md)."""
        tr = self._tracks.get(int(track))
        return tr is not None and len(tr["frames"]) >= max(at_least, share * len(self.frames))

    def others_at(self, frame, fps, max_span_s=2.0):
        """Other people's (track, box) expected on ``frame``: a survey sighting there, or the
        sightings on either side interpolated when at most ``max_span_s`` apart (the survey may
        miss someone half hidden for a few of its frames), or the nearest end within
        ``SURVEY_EVERY`` frames."""
        out = []
        for t, tr in self._tracks.items():
            f = tr["frames"]
            j = int(np.searchsorted(f, frame))
            boxes = self._survey.bbox[tr["det"]].astype(np.float64)
            if j < len(f) and f[j] == frame:
                out.append((t, boxes[j]))
            elif 0 < j < len(f) and f[j] - f[j - 1] <= max_span_s * fps:
                a = (frame - f[j - 1]) / (f[j] - f[j - 1])
                out.append((t, (1 - a) * boxes[j - 1] + a * boxes[j]))
            elif j == len(f) and frame - f[-1] <= SURVEY_EVERY:
                out.append((t, boxes[-1]))
            elif j == 0 and f[0] - frame <= SURVEY_EVERY:
                out.append((t, boxes[0]))
        return out

    def other_path(self, track, frame):
        """Another person's motion from their last survey sightings at or before ``frame``, in
        ``motion_path``'s form, or None."""
        tr = self._tracks.get(track)
        if tr is None:
            return None
        k = np.flatnonzero(tr["frames"] <= frame)
        if not len(k):
            return None
        b1 = self._survey.bbox[tr["det"][k[-1]]].astype(np.float64)
        v = np.zeros(2)
        if len(k) > 1:  # over up to the last four sightings: one sighting's jitter is not a velocity
            j = k[max(0, len(k) - 4)]
            b0 = self._survey.bbox[tr["det"][j]]
            v = (_centre(b1) - _centre(b0)) / max(1, tr["frames"][k[-1]] - tr["frames"][j])
        return int(tr["frames"][k[-1]]), _centre(b1), v, np.array([b1[2] - b1[0], b1[3] - b1[1]])

    def adopt(self, frame, last_frame, last_boxes, fps, max_gap_s=2.0, speed_h_per_s=2.5,
              min_similarity=0.6):
        """After the subject is lost on ``last_frame``: take over a survey track that starts after
        the loss (never one seen at the same time as the subject), within ``max_gap_s``, near
        where the subject was lost (as ``track.stitch``), at a similar size and colour, and that
        starts by ``frame`` + ``SURVEY_EVERY``. The survey's own stitch cannot see through a
        stunt the detector misses (a back-flip seen every sixth frame); the dense followed
        frames before the loss give the size. Returns the adopted track id or None."""
        if not last_boxes:
            return None
        boxes = np.array(last_boxes[-10:])
        h_tail = float(np.median(boxes[:, 3] - boxes[:, 1]))
        best = None
        for t, tr in self._tracks.items():
            f0 = int(tr["frames"][0])
            if not (last_frame < f0 <= frame + SURVEY_EVERY) or t in self.adopted:
                continue
            dt = (f0 - last_frame) / fps
            if dt > max_gap_s or not 0.6 <= tr["h_head"] / max(h_tail, 1e-6) <= 1 / 0.6:
                continue
            b0 = self._survey.bbox[tr["det"][0]]
            dist = np.linalg.norm(_centre(b0) - _centre(boxes[-1])) / max(h_tail, tr["h_head"])
            if dist > 0.5 + speed_h_per_s * dt:
                continue
            sig = self.signatures.get(self.subject)
            sim = 1.0 if sig is None or tr["app_head"] is None else appearance_similarity(sig, tr["app_head"])
            if sim < min_similarity:
                continue
            cost = dist + 4 * (1 - sim) + dt
            if best is None or cost < best[0]:
                best = (cost, t)
        if best is None:
            return None
        t = best[1]
        tr = self._tracks.pop(t)
        for f, d in zip(tr["frames"], tr["det"]):
            self.boxes[int(f)] = self._survey.bbox[d].astype(np.float64)
            self.keypoints[int(f)] = self._survey.keypoints[d]
            self.others[int(f)] = [o for o in self.others.get(int(f), []) if o[0] != t]
        self.sighted = np.array(sorted(self.boxes), np.int64)
        self.adopted.append(t)
        return t

    def sighting_around(self, frame):
        """(before, after) sightings as (frame, box), None where absent."""
        s = self.sighted
        j = np.searchsorted(s, frame)
        before = (int(s[j - 1]), self.boxes[int(s[j - 1])]) if j > 0 else None
        after = (int(s[j]), self.boxes[int(s[j])]) if j < len(s) else None
        return before, after

    def others_near(self, frame, window):
        """Other people's (track, box) on the survey frame nearest ``frame`` within ``window``."""
        f = self.frames
        if not len(f):
            return []
        j = int(np.argmin(np.abs(f - frame)))
        return self.others.get(int(f[j]), []) if abs(int(f[j]) - frame) <= window else []


def predict_box(frame, prior, history, fps):
    """The subject's expected box on clip ``frame``, or None when it cannot be predicted.

    A survey sighting on this frame wins; else the last followed boxes extrapolated (half the
    last step's velocity); else the sightings before and after interpolated (or the nearer one
    held) when within ``LOST_S``."""
    if frame in prior.boxes:
        return prior.boxes[frame]
    if history and frame - history[-1][0] <= max(2, int(0.1 * fps)):
        f1, b1 = history[-1]
        if len(history) > 1 and history[-2][0] == f1 - 1:
            # the centre moves on at half the last step's speed (at most half a height a
            # frame); the size stays: a keypoint box's size jumps with the limbs
            h = max(b1[3] - b1[1], 1.0)
            v = _centre(b1) - _centre(history[-2][1])
            v *= min(1.0, 0.5 * h / max(np.linalg.norm(v), 1e-9))
            step = 0.5 * v * (frame - f1)
            return b1 + np.r_[step, step]
        return b1
    before, after = prior.sighting_around(frame)
    lim = LOST_S * fps
    if before and after and after[0] - before[0] <= 2 * lim:
        a = (frame - before[0]) / max(1, after[0] - before[0])
        return (1 - a) * before[1] + a * after[1]
    near = [s for s in (before, after) if s is not None and abs(s[0] - frame) <= lim]
    if history and frame - history[-1][0] <= lim:
        near.append(history[-1])
    if not near:
        return None
    return min(near, key=lambda s: abs(s[0] - frame))[1]


def crop_region(box, frame_w, frame_h, scale=CROP_SCALE):
    """Square (x0, y0, x1, y1) integer crop around ``box`` (clipped to the frame)."""
    side = max(CROP_MIN_SIDE, scale * _side(box))
    cx, cy = _centre(box)
    h = side / 2
    return (int(max(0, cx - h)), int(max(0, cy - h)), int(min(frame_w, cx + h)), int(min(frame_h, cy + h)))


def keep_crop(current, box, scale=CROP_SCALE):
    """True when the current crop still suits the predicted ``box`` (centre and size close)."""
    if current is None:
        return False
    want = max(CROP_MIN_SIDE, scale * _side(box))
    have = max(current[2] - current[0], current[3] - current[1])
    off = np.abs(_centre(box) - _centre(current)).max()
    return off <= MOVE_FRACTION * have and 0.8 <= want / max(have, 1) <= 1.25


def outside_fraction(keypoints, box, grow=0.25, min_vis=0.5):
    """Fraction of visible keypoints outside ``box`` grown by ``grow`` × its side on each edge."""
    vis = keypoints[:, 2] >= min_vis
    if not vis.any():
        return 1.0
    g = grow * _side(box)
    x, y = keypoints[vis, 0], keypoints[vis, 1]
    out = (x < box[0] - g) | (x > box[2] + g) | (y < box[1] - g) | (y > box[3] + g)
    return float(out.mean())


def near_prediction(found_box, predicted):
    """Box overlap ≥ ``MIN_IOU``, or centres within half the predicted height at a similar
    height: a keypoint box's width changes with the arms, its height and centre less."""
    if iou_matrix(found_box[None], np.asarray(predicted)[None])[0, 0] >= MIN_IOU:
        return True
    h_f, h_p = found_box[3] - found_box[1], predicted[3] - predicted[1]
    close = np.linalg.norm(_centre(found_box) - _centre(predicted)) <= 0.5 * max(h_p, 1.0)
    return bool(close and 0.6 <= h_f / max(h_p, 1e-6) <= 1 / 0.6)


def typical_size(recent, frame, fps, min_frames=3):
    """(longer box side px, mask pixels): the medians over the subject's detections kept in the
    last second before ``frame`` (``recent``: (frame, side, mask pixels)), or None with fewer than
    ``min_frames`` of them. Unlike the predicted box, which is the last kept box, it does not
    follow a run of detections that each grow a little (a pose spreading over foliage)."""
    near = [(s, a) for f, s, a in recent if 0 < frame - f <= fps]
    if len(near) < min_frames:
        return None
    s, a = np.median(np.array(near, np.float64), axis=0)
    return float(s), float(a)


def is_subject(found_box, keypoints, predicted, sighting=None, others=(), appearance=None,
               signature=None, signatures=None, typical=None, mask_pixels=None):
    """Whether a crop's detection is the subject (see the module doc) → (ok, reason).

    ``others``: (track, box) of the other people the survey saw in or near the crop. With nobody
    else there the crop's one person is the subject, wherever the prediction put it (the
    prediction lags in a stunt) as long as its size and place are the subject's within a factor
    of about two (a tucked back-flip is half the standing height); with someone near, the detection must match the prediction
    and the survey's sighting, keep its joints inside the predicted box, and be neither more on
    nor more alike another person than the subject. ``typical`` (``typical_size``): the
    detection's longer side must also be within the same factors of the subject's recent one and
    its mask (``mask_pixels``) at most ``MAX_MASK_GROWTH`` times theirs."""
    if not np.isfinite(found_box).all():
        return False, "no box"
    if sighting is not None and not near_prediction(found_box, sighting) \
            and iou_matrix(found_box[None], sighting[None])[0, 0] < MIN_ANCHOR_IOU:
        return False, "not the survey's sighting"
    h_f, h_p = found_box[3] - found_box[1], predicted[3] - predicted[1]
    if not SIZE_RANGE[0] <= h_f / max(h_p, 1e-6) <= SIZE_RANGE[1] or \
            np.linalg.norm(_centre(found_box) - _centre(predicted)) > max(h_p, h_f):
        return False, "not the subject's size or place"  # a pose made of glare or foliage
    if typical is not None:
        side, area = typical
        if not SIZE_RANGE[0] <= _side(found_box) / max(side, 1e-6) <= SIZE_RANGE[1] or \
                (mask_pixels is not None and area > 0 and mask_pixels > MAX_MASK_GROWTH * area):
            return False, "not the subject's size or place"
    if not others:
        return True, ""
    if not near_prediction(found_box, predicted):
        return False, "away from the prediction"
    if outside_fraction(keypoints, predicted) > MAX_OUTSIDE:
        return False, "joints outside the subject"
    iou_pred = float(iou_matrix(found_box[None], np.asarray(predicted)[None])[0, 0])
    for t, box in others:
        iou_other = float(iou_matrix(found_box[None], box[None])[0, 0])
        if iou_other <= 0.2:
            continue
        if iou_other > iou_pred + 0.1:
            return False, "on another person"
        if (appearance is not None and signature is not None and signatures
                and signatures.get(t) is not None and appearance.sum() > 0):
            s_me = appearance_similarity(signature, appearance)
            s_other = appearance_similarity(signatures[t], appearance)
            if s_other > s_me + 0.05:
                return False, "looks like another person"
    return True, ""


RESTART_REASONS = ("joints outside the subject", "on another person", "looks like another person",
                   "on another person's path")
RESTART_GAP = 10  # frames between two restarts of the landmarker (each costs a graph set-up)
HIDDEN = "hidden behind or mixed with another person"
MAX_STEP = 0.15   # body heights per frame: a sprinter at 30 frames/s; paths never move faster
MAX_CROSSING_S = 1.5  # an overlap longer than this ends the crossing (its paths no longer hold)
HIDDEN_IOU = 0.5  # the subject's and another person's expected boxes overlap this much: no frame kept
MIXED_IOU = 0.35  # this much: kept only when clearly on the subject's path and inside its box


def _overlapping(others, region):
    """The (track, box) of ``others`` whose box meets the crop ``region``."""
    x0, y0, x1, y1 = region
    return [(t, b) for t, b in others if b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0]


def motion_path(history, min_steps=3):
    """The subject's motion from its last followed frames → (frame, centre, velocity px/frame,
    box size) or None: the median step over the consecutive frames at the end of ``history``."""
    run = [history[-1]] if history else []
    for f, b in reversed(history[:-1]):
        if run[-1][0] - f != 1:
            break
        run.append((f, b))
    if len(run) < min_steps + 1:
        return None
    run = run[::-1]
    c = np.array([_centre(b) for _, b in run])
    v = np.median(np.diff(c, axis=0), axis=0)
    f1, b1 = run[-1]
    v *= min(1.0, MAX_STEP * (b1[3] - b1[1]) / max(np.linalg.norm(v), 1e-9))
    return f1, c[-1], v, np.array([b1[2] - b1[0], b1[3] - b1[1]])


def path_box(path, frame):
    """The box ``motion_path`` expects on ``frame`` (constant velocity, constant size)."""
    f1, c, v, size = path
    cc = c + v * (frame - f1)
    return np.r_[cc - size / 2, cc + size / 2]


def path_margin(found_box, own_centre, other_centres):
    """How much nearer the found box's centre is to the subject's expected centre than to the
    nearest other person's (pixels; negative: nearer to someone else)."""
    c = _centre(found_box)
    d_other = min((np.linalg.norm(c - o) for o in other_centres if o is not None), default=np.inf)
    return float(d_other - np.linalg.norm(c - own_centre))


def update_path(path, frame, found_box, gain=0.3):
    """The subject's path moved onto a confident detection: centre replaced, velocity blended."""
    f1, c, v, size = path
    c_new = _centre(found_box)
    v_new = (c_new - (c + v * (frame - f1))) / max(1, frame - f1) * gain + v
    return frame, c_new, v_new, np.array([found_box[2] - found_box[0], found_box[3] - found_box[1]])


def _grown(box, k=0.25):
    g = k * _side(box)
    return (box[0] - g, box[1] - g, box[2] + g, box[3] + g)


def hide_others(crop, origin, scale, others, keep, grow=0.1):
    """Grey out, in place, the parts of other people's boxes that lie outside the subject's
    (grown) box: a single-person landmarker takes the most person-like figure in its image, and
    a bystander more visible than the subject must not be it. ``origin`` (x, y) and ``scale``
    (crop pixels per frame pixel) place frame boxes in the crop."""
    h, w = crop.shape[:2]
    g = grow * _side(keep)
    kx0, ky0 = (keep[0] - g - origin[0]) * scale, (keep[1] - g - origin[1]) * scale
    kx1, ky1 = (keep[2] + g - origin[0]) * scale, (keep[3] + g - origin[1]) * scale
    inside = np.zeros((h, w), bool)
    for _, b in others:
        x0, y0 = int(max(0, (b[0] - origin[0]) * scale)), int(max(0, (b[1] - origin[1]) * scale))
        x1, y1 = int(min(w, (b[2] - origin[0]) * scale + 1)), int(min(h, (b[3] - origin[1]) * scale + 1))
        if x1 > x0 and y1 > y0:
            inside[y0:y1, x0:x1] = True
    if not inside.any():
        return crop
    inside[int(max(0, ky0)):int(max(0, ky1)), int(max(0, kx0)):int(max(0, kx1))] = False
    crop[inside] = 127
    return crop


def _prepare(item, flow_max_side=640):
    """Producer-thread work: the frame, its small grey copy for the flow and a small HSV copy."""
    from ..video.decode import shrink
    i, ts, bgr = item
    h, w = bgr.shape[:2]
    s = min(1.0, flow_max_side / max(w, h))
    gw, gh = max(8, round(w * s)), max(8, round(h * s))
    ss = min(1.0, 320.0 / max(w, h))
    # halved once for both (shrink's first step either way), the grey taken from the half
    half = shrink(bgr, (w // 2, h // 2)) if w >= 2 * gw and h >= 2 * gh else bgr
    grey = shrink(cv2.cvtColor(half, cv2.COLOR_BGR2GRAY), (gw, gh))
    small = shrink(half, (max(1, round(w * ss)), max(1, round(h * ss))))
    return i, ts, bgr, grey, cv2.cvtColor(small, cv2.COLOR_BGR2HSV)


def _paste_mask(full, crop_mask, region, W, H):
    """Max-paste a crop's mask into the full frame's mask grid."""
    mh, mw = full.shape
    x0, y0, x1, y1 = region
    a0, b0 = int(round(x0 * mw / W)), int(round(y0 * mh / H))
    a1, b1 = max(a0 + 1, int(round(x1 * mw / W))), max(b0 + 1, int(round(y1 * mh / H)))
    a1, b1 = min(a1, mw), min(b1, mh)
    if a1 <= a0 or b1 <= b0:
        return
    m = cv2.resize(crop_mask, (a1 - a0, b1 - b0), interpolation=cv2.INTER_AREA)
    np.maximum(full[b0:b1, a0:a1], m, out=full[b0:b1, a0:a1])


def _background_mask(subject_mask, boxes, W, H):
    """The people's pixels on the mask grid: the subject's mask and everyone's boxes
    (full-resolution px) — what the background flow must not track."""
    mh, mw = subject_mask.shape
    person = subject_mask > 127
    for b in boxes:
        b = (np.asarray(b) * [mw / W, mh / H, mw / W, mh / H]).astype(int)
        person[max(0, b[1]):max(0, b[3]) + 1, max(0, b[0]):max(0, b[2]) + 1] = True
    return person


def _follow_rows(frames, frame_size, fps, prior, make_landmarker=None, camera_motion=True,
                 progress=None, timings=None, prefetch=4, warm=0, live=None, make_tracker=None):
    """The follow pass over ``frames`` ((index, timestamp, BGR); downscaled frames allowed, results
    in full-resolution ``frame_size`` px) → (per-frame rows, stats: crops, rejections by reason,
    restarts, ``hidden``: the rows left out because the subject overlapped someone — gap
    recovery must not fill those with whoever is in front). ``prior``: a ``SubjectPrior`` (changed
    by adoptions); ``make_landmarker()``: a fresh single-person landmarker with
    ``detect_all(rgb, timestamp_s)`` (default: MediaPipe's, one pose, IMAGE mode) and
    ``make_tracker()`` one that tracks between frames, used while someone is near
    (``crop_landmarks``; default: MediaPipe's video mode with the default landmarker, none with
    a given one). The first ``warm`` frames only prime
    the background flow (the frame before a half's first, so that its homography is the one a
    single pass computes) and give no row. ``live`` (a dict): gets the rows and stats as they
    are filled (``rows`` keys in the order each row is appended, ``valid`` last), for another
    thread to read while this pass runs."""
    from .camera_motion import HomographyEstimator
    from ..video.decode import prefetch as _prefetch

    if make_landmarker is None:
        from .landmarker import MediaPipePoseLandmarker

        def make_landmarker():
            return MediaPipePoseLandmarker(num_poses=1, tracking=CROP_TRACKING)

        if make_tracker is None:
            def make_tracker():
                return MediaPipePoseLandmarker(num_poses=1)

    W, H = frame_size
    mw, mh = mask_size(W, H)
    est = HomographyEstimator() if camera_motion else None
    rows = dict(idx=[], ts=[], kp=[], world=[], mask=[], box=[], valid=[], hom=[])
    history = []  # (clip frame, box) of the last followed frames
    recent = []   # (clip frame, longer side, mask pixels) of the last kept detections
    crossing = None  # the subject's motion_path when someone came near (None: nobody near)
    last_restart = -RESTART_GAP
    stats = {"crops": 0, "restarts": 0, "rejected": {}, "hidden": []}
    if live is not None:
        live.update(rows=rows, stats=stats)
    lm = make_landmarker()
    tracker = None  # the video-mode landmarker, while someone is near the subject (see TRACK_NEAR)
    region = None
    stream = _prefetch(frames, depth=prefetch, prepare=_prepare, timings=timings)

    def restart():
        """A landmarker that does not remember whom it held (an IMAGE-mode one never does)."""
        nonlocal lm, tracker
        if tracker is not None:
            tracker.close()
            tracker = make_tracker()
        if not getattr(lm, "stateless", False):
            lm.close()
            lm = make_landmarker()
        stats["restarts"] += 1

    def crop_landmarks(i, ts, rgb, pred):
        """The crop's people: by the IMAGE-mode landmarker, or by MediaPipe's own tracking
        from the frame before while another person (a steady survey track: a short one may be
        a false detection on the subject itself, as on R1) is near the subject or soon will
        be: its region stays on whom it held, where a detector takes the more visible person."""
        nonlocal tracker
        near = make_tracker is not None and any(
            prior.steady(t) for k in range(0, TRACK_NEAR[1] + 1, max(1, TRACK_NEAR[1] // 2))
            for t, _ in _overlapping(prior.others_at(i + k, fps), _grown(pred, TRACK_NEAR[0])))
        if not near:
            if tracker is not None:
                tracker.close()
                tracker = None
            return lm.detect_all(rgb, ts)
        if tracker is None:
            tracker = make_tracker()
            stats["tracked_from"] = stats.get("tracked_from", []) + [i]
        return tracker.detect_all(rgb, ts)

    def lap(key, t0):
        now = time.perf_counter()
        if timings is not None:
            timings[key] = timings.get(key, 0.0) + now - t0
        return now

    try:
        for i, ts, bgr, grey, small_hsv in stream:
            t0 = time.perf_counter()
            if warm > 0:
                warm -= 1
                if est is not None:
                    seen = prior.boxes.get(int(i), predict_box(int(i), prior, [], fps))
                    person = _background_mask(np.zeros((mh, mw), np.uint8), ([] if seen is None else [seen]) +
                                              [b for _, b in prior.others_at(int(i), fps)], W, H)
                    est.update(grey, cv2.resize(person.astype(np.uint8), grey.shape[1::-1]) > 0)
                lap("flow_homographies", t0)
                continue
            h, w = bgr.shape[:2]
            sx, sy = W / w, H / h
            kp = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
            world = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
            mask = np.zeros((mh, mw), np.uint8)
            box = np.full(4, np.nan, np.float32)
            ok = False
            pred = predict_box(int(i), prior, history, fps)
            if pred is None and history and prior.adopt(int(i), history[-1][0], [b for _, b in history], fps) is not None:
                stats["adopted"] = prior.adopted
                pred = predict_box(int(i), prior, history, fps)
            if crossing is not None:
                # people overlap: everyone goes on as they moved before they met; the survey's
                # sightings (which may have swapped) and the last detections (which may have
                # drifted onto the other person) are not trusted until they part
                crossing_path = crossing["subject"]
                pred = path_box(crossing_path, int(i))
                others = [(t, path_box(q, int(i))) for t, q in crossing["others"].items()]
                crossing["apart"] = crossing.get("apart", 0) + 1 if not _overlapping(others, _grown(pred)) else 0
                lost_in_it = int(i) - crossing.get("last_kept", crossing["start"]) > SURVEY_EVERY
                if lost_in_it:  # its path no longer finds the subject: back to the survey's sightings
                    crossing, region = None, None
                    history.clear()
                    pred = predict_box(int(i), prior, history, fps)
                    if int(i) - last_restart >= RESTART_GAP:
                        restart()
                        last_restart = int(i)
                elif crossing["apart"] >= 3 or int(i) - crossing["start"] > MAX_CROSSING_S * fps:
                    # they parted: start afresh from the survey's sightings and the path, with a
                    # landmarker that does not remember whom it held during the overlap
                    crossing, region = None, None
                    history[:] = [(int(i) - 1, path_box(crossing_path, int(i) - 1)), (int(i), pred)]
                    restart()
                    last_restart = int(i)
            elif pred is not None:
                near = _overlapping(prior.others_at(int(i), fps), _grown(pred))
                path = motion_path(history) if near else None
                if path is not None:
                    paths = {t: prior.other_path(t, int(i)) for t, _ in near}
                    crossing = {"subject": path, "others": {t: q for t, q in paths.items() if q is not None},
                                "start": int(i)}
                    pred = path_box(path, int(i))
            if pred is not None:
                if not keep_crop(region, pred):
                    region = crop_region(pred, W, H)
                x0, y0, x1, y1 = region
                c0, r0 = int(x0 / sx), int(y0 / sy)
                c1, r1 = max(c0 + 8, int(np.ceil(x1 / sx))), max(r0 + 8, int(np.ceil(y1 / sy)))
                rgb = cv2.cvtColor(bgr[r0:r1, c0:c1], cv2.COLOR_BGR2RGB)
                if crossing is None:  # bystanders, outside the subject's box (in a crossing
                    # their places are only extrapolated, and greying them could cut the subject);
                    # one that overlaps the subject only when it is a steady track, not a false
                    # detection beside or on the subject that would cut their limbs
                    hide = [(t, b) for t, b in _overlapping(prior.others_at(int(i), fps), region)
                            if prior.steady(t) or not _overlapping([(t, b)], _grown(pred, 0.1))]
                    hide_others(rgb, (c0 * sx, r0 * sy), 1.0 / sx, hide, pred)
                people = crop_landmarks(int(i), float(ts), rgb, pred)
                stats["crops"] += 1
                t0 = lap("follow_landmarks", t0)
                if people:
                    ob = people[0]
                    fx, fy = (c1 - c0) * sx / rgb.shape[1], (r1 - r0) * sy / rgb.shape[0]
                    found = np.asarray(ob.keypoints, np.float32).copy()
                    found[:, 0] = found[:, 0] * fx + c0 * sx
                    found[:, 1] = found[:, 1] * fy + r0 * sy
                    fbox = keypoint_box(found)
                    cmask = np.asarray(ob.mask, np.uint8)
                    full_mask = np.zeros((mh, mw), np.uint8)
                    _paste_mask(full_mask, cmask, (c0 * sx, r0 * sy, c1 * sx, r1 * sy), W, H)
                    app = appearance_histogram(small_hsv, cv2.resize(full_mask, small_hsv.shape[1::-1]))
                    size = dict(typical=typical_size(recent, int(i), fps), mask_pixels=int((full_mask > 127).sum()))
                    if crossing is None:
                        near = _overlapping(prior.others_at(int(i), fps), region)
                        good, why = is_subject(fbox, found, pred, prior.boxes.get(int(i)), near, app,
                                               prior.signatures.get(prior.subject), prior.signatures, **size)
                    else:
                        good, why = is_subject(fbox, found, pred, **size)
                        h_p = pred[3] - pred[1]
                        m = path_margin(fbox, _centre(pred),
                                        [_centre(path_box(q, int(i))) for q in crossing["others"].values()])
                        if good and m < -0.1 * h_p:
                            good, why = False, "on another person's path"
                        elif good and outside_fraction(found, pred, grow=0.1) > 0.15:
                            good, why = False, "joints outside the subject"  # mixed with the other
                        else:
                            overlap = max((float(iou_matrix(pred[None], path_box(q, int(i))[None])[0, 0])
                                           for q in crossing["others"].values()), default=0.0)
                            if good and (overlap >= HIDDEN_IOU or (overlap >= MIXED_IOU and (
                                    m <= 0 or outside_fraction(found, pred, grow=0.05) > 0.05))):
                                good, why = False, HIDDEN
                                stats["hidden"].append(len(rows["idx"]))
                            elif good and m > 0.25 * h_p:  # clearly the subject: the path follows it
                                crossing["subject"] = update_path(crossing["subject"], int(i), fbox)
                    if good:
                        if crossing is not None:
                            crossing["last_kept"] = int(i)
                        kp, world, mask, box, ok = found, np.asarray(ob.world, np.float32), full_mask, fbox, True
                        history.append((int(i), fbox.astype(np.float64)))
                        del history[:-10]
                        recent.append((int(i), _side(fbox), size["mask_pixels"]))
                        del recent[:-int(fps) - 1]
                    else:
                        stats["rejected"][why] = stats["rejected"].get(why, 0) + 1
                        region = None
                        if why in RESTART_REASONS and int(i) - last_restart >= RESTART_GAP:
                            restart()  # its own tracking latched onto someone else
                            last_restart = int(i)
                t0 = lap("masks_appearance", t0)
            if est is not None:
                person = _background_mask(mask, [b for _, b in prior.others_at(int(i), fps)], W, H)
                Hp = est.update(grey, cv2.resize(person.astype(np.uint8), grey.shape[1::-1]) > 0)
                S = np.diag([W / grey.shape[1], H / grey.shape[0], 1.0])
                rows["hom"].append(S @ Hp @ np.linalg.inv(S))
            else:
                rows["hom"].append(np.full((3, 3), np.nan))
            lap("flow_homographies", t0)
            for key, v in (("idx", int(i)), ("ts", float(ts)), ("kp", kp), ("world", world),
                           ("mask", mask), ("box", box), ("valid", ok)):
                rows[key].append(v)
            if progress is not None:
                progress(len(rows["idx"]))
    finally:
        stream.close()
        lm.close()
        if tracker is not None:
            tracker.close()
    return rows, stats


def _observations(rows, stats, frame_size, fps, subject):
    """Observations (no ``tracks``) from ``_follow_rows``'s rows."""
    W, H = frame_size
    mw, mh = mask_size(W, H)
    T = len(rows["idx"])
    valid = np.array(rows["valid"], bool)
    track = np.where(valid, subject, -1).astype(np.int64)
    obs = Observations(
        keypoints=np.array(rows["kp"], np.float32).reshape(T, NUM_LANDMARKS, 3),
        world=np.array(rows["world"], np.float32).reshape(T, NUM_LANDMARKS, 3),
        masks=np.array(rows["mask"], np.uint8).reshape(T, mh, mw), valid=valid,
        timestamps=np.array(rows["ts"], np.float64), frame_size=(int(W), int(H)), fps=float(fps),
        bbox=np.array(rows["box"], np.float32).reshape(T, 4), track_id=track,
        frame_index=np.array(rows["idx"], np.int64),
        homographies=np.array(rows["hom"], np.float64).reshape(T, 3, 3))
    obs.hidden = np.zeros(T, bool)
    obs.hidden[stats["hidden"]] = True
    return obs


def split_frame(prior, frames, fps, min_half_s=2.0):
    """Where to split a follow pass over clip ``frames`` (the processed frame numbers, in order)
    in two: the survey frame nearest the middle on which the subject is sighted, alone (nobody's
    box near theirs) and also sighted on the survey frames either side — so the second half
    starts as a pass starts, from a sighting nobody can be confused with. None when no frame
    qualifies or the halves would be shorter than ``min_half_s``."""
    frames = np.asarray(frames, np.int64)
    if len(frames) < 2:
        return None
    lo, hi = frames[0] + min_half_s * fps, frames[-1] - min_half_s * fps
    mid = 0.5 * (frames[0] + frames[-1])
    grid = set(int(f) for f in frames)
    best = None
    for k, f in enumerate(prior.frames):
        f = int(f)
        if not (lo <= f <= hi) or f not in grid or f not in prior.boxes or f == frames[0]:
            continue
        if k == 0 or k + 1 >= len(prior.frames) or int(prior.frames[k - 1]) not in prior.boxes \
                or int(prior.frames[k + 1]) not in prior.boxes:
            continue
        if _overlapping(prior.others_at(f, fps), _grown(prior.boxes[f], 0.5)):
            continue
        if best is None or abs(f - mid) < abs(best - mid):
            best = f
    return best


def _seek_landed(ts, n):
    """True when the second half's first timestamp (``ts[n]``) follows the first half's last by
    about the first half's own frame interval: the seek to the second half's start landed on the
    frame it asked for (a container whose seeking misses would otherwise shift every frame of
    the second half). Without two frames on each side there is nothing to compare: True."""
    if n < 2 or len(ts) <= n:
        return True
    step = float(np.median(np.diff(ts[:n])))
    return step > 0 and 0.5 * step <= ts[n] - ts[n - 1] <= 1.5 * step


def _search_gaps_beside(video_path, rows, stats, live, second_done, frame_size, fps, subject, max_gap_s,
                        report, store=None, timings=None, poll_s=0.05):
    """Gap recovery's search (``redetect.search_final_gaps``) run by the first half's thread once
    its own frames are done, while the second half is still being followed: each gap that has a
    valid frame after it in the first half's rows and the second half's rows so far (``live``,
    filled by the other thread) is final and is searched now, on the core the first half no
    longer needs. Each new row is looked at once (the scan starts at the last valid frame seen),
    and a gap is searched on the observations of its own span only (from the frame before it to
    the one after). Stops when ``second_done`` is set; the gaps left (the clip's end, those the
    second half finishes last) are searched after the pass as before. → ``recover_gaps``'s
    ``searched``. ``report(n)`` is called while waiting, so that a cancel or the second half's
    error reaches this thread."""
    from .redetect import ImagePoseDetector, gaps, search_final_gaps

    searched, det = {}, None
    max_len = int(round(max_gap_s * fps))
    n1 = len(rows["valid"])
    valid = list(rows["valid"])   # the first half's rows, then the second half's as they come
    scan = 0                      # no gap ends before this ordinal that is not searched yet

    def span(key, lo, hi, rows2):
        return rows[key][lo:min(hi, n1)] + (rows2[key][max(lo - n1, 0):hi - n1] if hi > n1 else [])

    try:
        while not second_done.is_set():
            report(n1)
            rows2, stats2 = live.get("rows"), live.get("stats")
            n2 = 0 if rows2 is None else len(rows2["valid"])  # ``valid`` is appended last in a row
            if n1 + n2 == len(valid):
                time.sleep(poll_s)
                continue
            valid.extend(rows2["valid"][len(valid) - n1:n2])
            v = np.array(valid[scan:], bool)
            final = [(scan + a, scan + b) for a, b in gaps(v, max_len) if scan + b < len(valid)]
            if v.any():
                scan += int(np.flatnonzero(v)[-1])  # runs after the last valid frame are not final yet
            if not final:
                continue
            t0 = time.perf_counter()
            lo, hi = max(0, final[0][0] - 1), final[-1][1] + 1
            window = {k: span(k, lo, hi, rows2) for k in rows}
            hidden = list(stats["hidden"]) + ([n1 + h for h in stats2["hidden"] if h < n2] if n2 else [])
            hidden = [h - lo for h in hidden if lo <= h < hi]
            obs = _observations(window, {"hidden": hidden}, frame_size, fps, subject)
            det = det or ImagePoseDetector()
            found = search_final_gaps(video_path, obs, max_gap_s, detector=det, store=store)
            searched.update({(a + lo, b + lo): [(t + lo, *rest) for t, *rest in fills]
                             for (a, b), fills in found.items()})
            if timings is not None:
                timings["gap_search_beside"] = timings.get("gap_search_beside", 0.0) + time.perf_counter() - t0
    finally:
        if det is not None:
            det.close()
    return searched


def follow_video(video_path, frame_range, stride, max_side, frame_size, fps, prior, progress=None,
                 timings=None, halves=None, make_landmarker=None, store=None, gap_search_s=0.0):
    """The subject landmarked on a crop in every frame of a clip (``_follow_rows``), split in two halves run side by side
    (``halves.run_beside``, one landmarker each) at ``split_frame`` when ``halves`` (default:
    ``halves.parallel_halves``) → (Observations without ``tracks``, stats with ``halves``: the
    frame the second half starts on, or None). The second half also decodes the frame before
    its first, to prime the background flow. ``timings`` gets each stage's seconds summed over
    both halves and ``follow_wall``, the pass's own wall-clock seconds. ``prior`` is left as
    it is (each half adopts tracks on its own copy). When the second half's first frame does not
    follow the first half's last in time (``_seek_landed``), the pass is run again in one piece.
    ``make_landmarker``: as in ``_follow_rows``. ``store``: frames the survey kept
    (``engine.video.store``), read instead of decoded. ``gap_search_s`` (> 0: gap recovery's
    longest gap, seconds): the first half's thread, done before the second, searches the gaps
    that are final by then (``_search_gaps_beside``) → ``stats["searched_gaps"]``."""
    import threading

    from ..video.decode import iter_frames as decoded
    from .halves import parallel_halves, run_beside

    def iter_frames(*args):
        return decoded(*args) if store is None else store.frames(*args)

    first, last = int(frame_range[0]), int(frame_range[1])
    frames = np.arange(first, last, stride)
    t0 = time.perf_counter()
    if halves is None:
        halves = parallel_halves(len(frames), fps)
    b = split_frame(prior, frames, fps) if halves else None
    parts = [{}, {}]
    if b is not None:
        live, second_done = {}, threading.Event()

        def first_half(report):
            rows, stats = _follow_rows(iter_frames(video_path, (first, b), stride, max_side), frame_size, fps,
                                       prior.copy(), make_landmarker, progress=report, timings=parts[0])
            if gap_search_s and stride == 1:
                stats["searched_gaps"] = _search_gaps_beside(
                    video_path, rows, stats, live, second_done, frame_size, fps, prior.subject, gap_search_s,
                    report, store, parts[0])
            return rows, stats

        def second_half(report):
            try:
                return _follow_rows(iter_frames(video_path, (b - stride, last), stride, max_side), frame_size,
                                    fps, prior.copy(), make_landmarker, progress=report, timings=parts[1],
                                    warm=1, live=live)
            finally:
                second_done.set()

        (rows, stats), (rows2, stats2) = run_beside(first_half, second_half, progress=progress)
        if not _seek_landed(rows["ts"] + rows2["ts"][:1], len(rows["ts"])):
            b = None  # the container does not seek to the frame asked for: one pass after all
    if b is None:
        rows, stats = _follow_rows(iter_frames(video_path, (first, last), stride, max_side), frame_size, fps,
                                   prior.copy(), make_landmarker, progress=progress, timings=parts[0])
    else:
        n = len(rows["idx"])
        for key in rows:
            rows[key].extend(rows2[key])
        stats["hidden"] = stats["hidden"] + [n + k for k in stats2["hidden"]]
        for key in ("crops", "restarts"):
            stats[key] += stats2[key]
        for why, c in stats2["rejected"].items():
            stats["rejected"][why] = stats["rejected"].get(why, 0) + c
        if "adopted" in stats2:
            stats["adopted"] = sorted(set(stats.get("adopted", [])) | set(stats2["adopted"]))
        if "tracked_from" in stats2:
            stats["tracked_from"] = stats.get("tracked_from", []) + stats2["tracked_from"]
    stats["halves"] = b
    if timings is not None:
        for part in parts:
            for key, v in part.items():
                timings[key] = timings.get(key, 0.0) + v
        timings["follow_wall"] = timings.get("follow_wall", 0.0) + time.perf_counter() - t0
    return _observations(rows, stats, frame_size, fps, prior.subject), stats


class TiledSearch:
    """``tiles.find_people`` (the zoomed, tiled search) as a detector for ``detect_people``: it
    finds people the full frame's 224-pixel letterbox misses (side by side, small, on a wide
    strip), so they get a track to follow.

    Every ``full_every``-th frame it is given (the first included) searches all tiles; the frames
    between search only the tiles near the people the last full search found
    (``tiles.windows_near``), as a survey frame is a fifth of a second or so after the last and
    a person found there is still near where they were; nobody new is looked for there (on the
    demo clip 4 tiles of 18). Our choice, for the pitcher rule's search of every survey frame
    (docs/performance.md)."""

    def __init__(self, full_every=5):
        from .tiles import MultiPoseImageDetector
        self._tiles = MultiPoseImageDetector()
        self.full_every = int(full_every)
        self._seen = 0
        self._near = None

    def detect_all(self, rgb, timestamp_s):
        from .tiles import find_people, tile_windows, windows_near
        H, W = rgb.shape[:2]
        full = self._near is None or self._seen % self.full_every == 0
        found = find_people(rgb, detector=self._tiles, windows=None if full else self._near)
        if full:
            self._near = windows_near(found, tile_windows(W, H))
        self._seen += 1
        return found

    def close(self):
        self._tiles.close()


def prefer_more(main, other):
    """``main``'s Detections, but on each frame where ``other`` (Detections of some of the same
    frames) found more people, ``other``'s detections of that frame instead."""
    from .types import Detections
    n_main = np.bincount(main.frame_of, minlength=main.num_frames)
    n_other = np.bincount(other.frame_of, minlength=other.num_frames)
    take = {int(f): k for k, f in enumerate(other.frame_index)}
    src, idx, frame_of = [], [], []  # per kept detection: 0 main / 1 other, its index, its frame
    for t, f in enumerate(main.frame_index):
        k = take.get(int(f))
        use = 1 if k is not None and n_other[k] > n_main[t] else 0
        d = np.flatnonzero(other.frame_of == k) if use else np.flatnonzero(main.frame_of == t)
        src += [use] * len(d)
        idx += list(d)
        frame_of += [t] * len(d)
    src, idx = np.array(src, bool), np.array(idx, np.int64)
    per = {}
    for key in ("keypoints", "world", "masks", "bbox", "score", "appearance"):
        a, b = getattr(main, key), getattr(other, key)
        out = np.empty((len(idx),) + a.shape[1:], a.dtype)
        out[~src], out[src] = a[idx[~src]], b[idx[src]]
        per[key] = out
    return Detections(frame_index=main.frame_index, timestamps=main.timestamps, homographies=main.homographies,
                      frame_size=main.frame_size, fps=main.fps, frame_of=np.array(frame_of, np.int64), **per)


TILED_START = 3  # survey frames that also get the tiled search (every one for the pitcher rule:
# a broadcast's pitcher is small beside a batter in front of them, and the rule needs them all along)


def survey_video(video_path, frame_range, stride=1, max_side=None, num_poses=4, extra=(),
                 use_cache=True, progress=None, timings=None, every=SURVEY_EVERY, tiled=TILED_START,
                 store=None):
    """The survey pass over a clip (cached) → (Detections on the survey frames, track ids).

    ``frame_range`` = (first, last_exclusive) clip frames; ``extra``: clip frames to survey as
    well (the frame a ``--point`` refers to); ``progress(n, total)`` after each surveyed frame.
    One pass, never split in halves: the multi-person landmarker's own tracking holds people its
    person detector misses on a frame, so a second half started afresh would see fewer people
    (docs/performance.md). ``store`` (an ``engine.video.store.FrameStore``): keeps the decoded
    frames for the later passes."""
    from .detect import detect_people
    from .halves import run_beside
    from .landmarker import MediaPipePoseLandmarker
    from .types import Detections
    from ..video import cache
    from ..video.decode import iter_frames, open_video

    cap, info = open_video(video_path)
    cap.release()
    first, last = int(frame_range[0]), int(frame_range[1])
    stride = max(1, int(stride or 1))
    only = survey_frames(first, last, stride, every, extra=extra)
    zoomed = set(sorted(only)[:max(0, int(tiled))])
    # the few start frames are each searched in full; the pitcher rule's every frame is searched
    # in full every fifth (docs/performance.md: R1 and the pitch clips measured)
    full_every = 1 if len(zoomed) <= TILED_START else 5
    options = {"detector": f"{MediaPipePoseLandmarker.cache_name(num_poses)}-survey{every}-tiled{tiled}"
                           + (f"-full{full_every}" if full_every > 1 else ""),
               "first": first, "last": last, "stride": stride, "max_side": max_side,
               "extra": sorted(int(f) for f in extra)}
    key = cache.cache_key(video_path, options) if use_cache else None
    hit = cache.load(key, kind="survey") if key else None
    if hit is not None:
        hit["frame_size"] = tuple(int(v) for v in hit["frame_size"])
        hit["fps"] = float(hit["fps"])
        survey = Detections(**hit)
    else:
        t0 = time.perf_counter()

        def surveyed():
            if store is None:
                return iter_frames(video_path, (first, last), stride, max_side, only=only)
            # every frame decoded is kept for the follow pass and gap recovery (engine.video.store)
            every_frame = store.keeping(iter_frames(video_path, (first, last), stride, max_side),
                                        video_path, max_side, first, stride, last)
            return (item for item in every_frame if item[0] in only)

        def full_frame(report):
            det = MediaPipePoseLandmarker(num_poses=num_poses)
            try:
                return detect_people(surveyed(),
                                     (info.width, info.height), info.fps / stride, detector=det,
                                     camera_motion=False, timings={},
                                     progress=None if progress is None else (lambda n: progress(n, len(only))))
            finally:
                det.close()

        def tiled_pass(report):  # beside the full-frame pass, on the second core
            det = TiledSearch(full_every=full_every)
            try:
                return detect_people(iter_frames(video_path, (first, max(zoomed) + 1), stride, max_side, only=zoomed),
                                     (info.width, info.height), info.fps / stride, detector=det,
                                     camera_motion=False, timings={}, progress=report)
            finally:
                det.close()

        if zoomed:
            survey = prefer_more(*run_beside(full_frame, tiled_pass))
        else:
            survey = full_frame(None)
        if timings is not None:  # the whole pass, its decoding (every frame grabbed) included
            timings["survey"] = timings.get("survey", 0.0) + time.perf_counter() - t0
        if key and survey.num_frames:
            cache.save(key, survey.arrays(), kind="survey")
    t0 = time.perf_counter()
    tid = track_survey(survey)
    if timings is not None:
        timings["tracking"] = timings.get("tracking", 0.0) + time.perf_counter() - t0
    return survey, tid, key


def add_person_at_point(survey, tid, video_path, frame, point, max_side=None):
    """The survey with the person under ``point`` (full-resolution px) on clip ``frame`` added
    as a new track, found by ``tiles.find_near_point`` on crops around the point (for a person
    the full-frame detector missed) → (survey, track ids, the new track id). One clear error
    when nobody is there either."""
    from .tiles import find_near_point
    from .types import Detections
    from ..video.decode import iter_frames, shrink

    W, H = survey.frame_size
    ordinal = int(np.argmin(np.abs(survey.frame_index - int(frame)))) if survey.num_frames else -1
    if ordinal < 0 or survey.frame_index[ordinal] != int(frame):
        raise EngineError(f"no person at ({point[0]:.0f}, {point[1]:.0f}) on frame {frame}")
    found = None
    for _, _, bgr in iter_frames(video_path, (int(frame), int(frame) + 1), max_side=max_side):
        k = bgr.shape[1] / W
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = find_near_point(rgb, (point[0] * k, point[1] * k))
        if found is not None:
            ss = min(1.0, 320.0 / max(bgr.shape[:2]))
            small = cv2.cvtColor(shrink(bgr, (max(1, round(bgr.shape[1] * ss)), max(1, round(bgr.shape[0] * ss)))),
                                 cv2.COLOR_BGR2HSV)
    if found is None:
        raise EngineError(f"no person at ({point[0]:.0f}, {point[1]:.0f}) on frame {frame}, "
                          "not even on a closer look")
    kp = np.asarray(found.keypoints, np.float32).copy()
    kp[:, :2] /= k
    box = np.asarray(found.bbox, np.float32) / k
    mw, mh = mask_size(W, H)
    mask = cv2.resize(np.asarray(found.mask, np.uint8), (mw, mh), interpolation=cv2.INTER_AREA)
    app = appearance_histogram(small, cv2.resize(mask, small.shape[1::-1]))
    new = int(tid.max()) + 1 if len(tid) and (tid >= 0).any() else 0
    arrays = survey.arrays()
    for key, row in (("frame_of", ordinal), ("keypoints", kp), ("world", np.asarray(found.world, np.float32)),
                     ("masks", mask), ("bbox", box), ("score", np.float32(found.score)), ("appearance", app)):
        arrays[key] = np.concatenate([arrays[key], np.asarray(row, arrays[key].dtype)[None]])
    arrays["frame_size"] = tuple(int(v) for v in arrays["frame_size"])
    arrays["fps"] = float(arrays["fps"])
    return Detections(**arrays), np.r_[tid, new], new


def observe_video(video_path, frame_range, stride=1, max_side=None, subject="largest",
                  subject_point=None, subject_frame=0, num_poses=4, use_cache=True,
                  progress=None, timings=None, halves=None, store=None, gap_search_s=0.0):
    """The subject's Observations of a clip by survey + follow (module doc) → (Observations or
    None when nobody was found, the survey's Detections, their track ids, stats).

    ``progress(fraction, message)``. ``halves``: run each pass as two halves side by side
    (``follow_video``; default: when there are two cores and the clip is long enough). The
    followed subject is cached under the survey's key, the chosen track and ``halves``.
    ``store``: the ``engine.video.store.FrameStore`` the survey fills and the follow pass reads
    (default: one for this call; pass one to keep the frames for gap recovery).
    ``gap_search_s``: as in ``follow_video`` (stats' ``searched_gaps`` then holds what was found).
    """
    from .halves import parallel_halves
    from .track import select_subject, track_summaries
    from ..video import cache
    from ..video.decode import open_video

    cap, info = open_video(video_path)
    cap.release()
    first, last = int(frame_range[0]), int(frame_range[1])
    stride = max(1, int(stride or 1))
    expected = len(range(first, last, stride))
    if halves is None:
        halves = parallel_halves(expected, info.fps / stride)
    report = progress or (lambda fraction, message: None)
    if store is None:
        from ..video.store import FrameStore
        store = FrameStore()
    report(0.0, "finding everyone")
    survey, tid, key = survey_video(
        video_path, (first, last), stride, max_side, num_poses,
        extra=[subject_frame] if subject_point is not None else (), use_cache=use_cache,
        tiled=expected if subject == "pitcher" else TILED_START, store=store,
        timings=timings, progress=lambda n, total: report(0.25 * n / total, f"finding everyone: frame {n}/{total}"))
    if not (tid >= 0).any() and survey.num_frames:
        # nobody in the surveyed frames (a short clip, a person the detector needs a few
        # frames to find): survey every frame before giving up
        survey, tid, key = survey_video(video_path, (first, last), stride, max_side, num_poses,
                                        extra=(), use_cache=use_cache, timings=timings, every=1,
                                        store=store)
    if subject_point is not None and subject in (None, "largest", "point"):
        try:
            s = select_subject(survey, tid, "point", subject_point, subject_frame)
        except EngineError:  # nobody there in the survey: look closer around the point
            survey, tid, s = add_person_at_point(survey, tid, video_path, subject_frame, subject_point,
                                                 max_side)
    else:
        if not (tid >= 0).any():
            return None, survey, tid, {}
        s = select_subject(survey, tid, subject, subject_point, subject_frame)
    fkey = cache.cache_key(video_path, {"survey": key, "subject": int(s), "follow": FOLLOW_VERSION,
                                        "halves": bool(halves), "crop_tracking": bool(CROP_TRACKING)}) if key else None
    got = cache.load(fkey, kind="followed") if fkey else None
    if got is not None:
        stats = {"cached": True}
        obs = Observations(**{k: got[k] for k in FOLLOWED_FIELDS},
                           frame_size=tuple(int(v) for v in got["frame_size"]), fps=float(got["fps"]))
    else:
        prior = SubjectPrior(survey, tid, s)
        obs, stats = follow_video(
            video_path, (first, last), stride, max_side, (info.width, info.height), info.fps / stride, prior,
            timings=timings, halves=halves, store=store, gap_search_s=gap_search_s,
            progress=lambda n: report(0.25 + 0.75 * n / max(1, expected), f"following the subject: frame {n}/{expected}"))
        if fkey and obs.num_frames:
            cache.save(fkey, {k: getattr(obs, k) for k in FOLLOWED_FIELDS} |
                       {"frame_size": np.array(obs.frame_size), "fps": np.array(obs.fps)}, kind="followed")
    obs.tracks = track_summaries(survey, tid)
    return obs, survey, tid, stats


FOLLOW_VERSION = code_version(__file__)  # the cache follows the code
FOLLOWED_FIELDS = ("keypoints", "world", "masks", "valid", "timestamps", "bbox", "track_id",
                   "frame_index", "homographies", "hidden")
