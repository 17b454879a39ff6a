"""Left/right label swaps of the detector, found by continuity and undone before estimation.

MediaPipe sometimes labels a person mirrored for a run of frames: the left shoulder's label sits
on the right shoulder and so on for every pair, while the points themselves move on smoothly.
An estimator that trusts the labels then turns the body's back to the camera for those frames.
A swap shows as a jump in the labels that vanishes when the pairs are exchanged: frame t's left
points lie where frame t−d's right points were. Each run of consecutive valid frames gets the
label sequence (as detected / mirrored) that minimises

    Σ_t Σ_{d=1..K}  d(labels_t, labels_{t−d}) / h  +  λ · [frame t mirrored]

with d the summed distance of the paired landmarks between the two frames under each frame's
labelling and h the person's height (plus the same for MediaPipe's world landmarks, in units of
1.7 m: seen side-on or upside down the 2D pairs overlap and both labellings cost about the same,
while the 3D still tells left from right); λ makes "as detected" the default, so a run is taken as
mirrored only when continuity says so (our choice; λ = ``SWAP_PRIOR``). Comparing each frame with
the K previous ones (not only the last) keeps the chain whole across a garbled detection (the
shoulders collapsed onto each other for a frame or two at a swap): without it, a mirrored run
bounded by such frames is cut off from the rest of the clip and λ alone keeps it as detected.
Solved exactly by a Viterbi pass over the last K frames' labels (2^K states). Mirrored frames get
their keypoints' and world landmarks' left/right labels exchanged.
"""
import itertools

import numpy as np

from .types import LM
from ..align.reprojection import person_height

def _pairs(names):
    return [(LM[f"left_{n}"], LM[f"right_{n}"]) for n in names]


# A mirrored detection is judged on the upper body (shoulders, arms, eyes, ears: apart in every
# view but a pure profile) and undone for every pair. The legs alone are not judged: in side views
# they cross, and their labels are ambiguous there (tried: judging them apart relabelled walking
# strides and turned the pelvis on the demo clip).
JUDGE = _pairs(("shoulder", "elbow", "wrist", "eye", "ear"))
ALL_PAIRS = _pairs(("shoulder", "elbow", "wrist", "eye", "ear", "eye_inner", "eye_outer", "pinky", "index",
                    "thumb", "hip", "knee", "ankle", "heel", "foot_index")) + [(LM["mouth_left"], LM["mouth_right"])]
SWAP_PRIOR = 0.3     # per mirrored frame, in summed-distance / height units (0.1 per compared frame)
MIN_VISIBILITY = 0.3
HISTORY = 3          # K: each frame is compared with this many previous frames (two garbled frames bridged)
WORLD_SCALE = 1.7    # metres: the world landmarks' label-change cost in units of a body height


def _seen_pairs(kp_prev, kp_cur, pairs):
    """(left indices, right indices, (...,P) bool: both points of a pair seen in both frames)."""
    L = np.array([p for p, _ in pairs])
    R = np.array([q for _, q in pairs])
    ok = (kp_prev[..., L, 2] > MIN_VISIBILITY) & (kp_prev[..., R, 2] > MIN_VISIBILITY) \
        & (kp_cur[..., L, 2] > MIN_VISIBILITY) & (kp_cur[..., R, 2] > MIN_VISIBILITY)
    return L, R, ok


def _label_distances(a, b, L, R, ok):
    """Summed (same, swapped) distances of the pairs between points a and b (..., 33, D)."""
    dist = lambda x, y: np.linalg.norm(np.nan_to_num(x - y), axis=-1)  # noqa: E731
    same = np.where(ok, dist(b[..., L, :], a[..., L, :]) + dist(b[..., R, :], a[..., R, :]), 0.0).sum(-1)
    swap = np.where(ok, dist(b[..., L, :], a[..., R, :]) + dist(b[..., R, :], a[..., L, :]), 0.0).sum(-1)
    return same, swap


def transition_costs(kp_prev, kp_cur, pairs):
    """(same, mirrored) label-change costs between frames' keypoints (..., 33, 3) over ``pairs``,
    in units of the person's height: "same" when both frames share a labelling, "mirrored" when
    they differ. Leading axes broadcast (many frame pairs at once); a pair of frames with fewer
    than 2 usable pairs, or no measurable height, costs 0 both ways (no evidence)."""
    a = np.asarray(kp_prev, np.float64)
    b = np.asarray(kp_cur, np.float64)
    L, R, ok = _seen_pairs(a, b, pairs)
    ha, hb = person_height(a, MIN_VISIBILITY), person_height(b, MIN_VISIBILITY)
    h = np.where(np.isnan(ha), hb, np.where(np.isnan(hb), ha, 0.5 * (ha + hb)))
    same, swap = _label_distances(a[..., :2], b[..., :2], L, R, ok)
    usable = (ok.sum(-1) >= 2) & np.isfinite(h) & (h > 0)
    with np.errstate(all="ignore"):
        return np.where(usable, same / h, 0.0), np.where(usable, swap / h, 0.0)


def world_transition_costs(kp_prev, kp_cur, w_prev, w_cur, pairs):
    """(same, mirrored) label-change costs of the world landmarks (..., 33, 3), metres over
    ``WORLD_SCALE``: MediaPipe's 3D of a body seen side-on or upside down keeps the left/right
    depth order that the overlapping 2D points lose. Visibility from the keypoints, as in 2D;
    NaN world landmarks (re-detected frames without them) give no evidence."""
    a, b = np.asarray(w_prev, np.float64), np.asarray(w_cur, np.float64)
    L, R, ok = _seen_pairs(np.asarray(kp_prev), np.asarray(kp_cur), pairs)
    finite = lambda w: np.isfinite(w[..., L, :]).all(-1) & np.isfinite(w[..., R, :]).all(-1)  # noqa: E731
    ok = ok & finite(a) & finite(b)
    same, swap = _label_distances(a, b, L, R, ok)
    usable = ok.sum(-1) >= 2
    return np.where(usable, same / WORLD_SCALE, 0.0), np.where(usable, swap / WORLD_SCALE, 0.0)


def _run_labels(kp, swap_prior, pairs, K=HISTORY, world=None):
    """Mirrored labels (n,) bool of one run of consecutive frames (n, 33, 3): Viterbi over the
    states (x_t, x_{t−1}, …, x_{t−K+1}) with edges to the K previous frames; with ``world`` (n,33,3)
    each edge also pays the world landmarks' label change."""
    n = len(kp)

    def edge(d):
        if n <= d:
            return np.zeros(0), np.zeros(0)
        same, swap = transition_costs(kp[:-d], kp[d:], pairs)
        if world is not None:
            ws, wm = world_transition_costs(kp[:-d], kp[d:], world[:-d], world[d:], pairs)
            same, swap = same + ws, swap + wm
        return same, swap
    costs = [edge(d) for d in range(1, K + 1)]               # costs[d-1][0|1][t-d] for edge (t-d, t)
    states = list(itertools.product((0, 1), repeat=K))      # (x_t, x_{t-1}, ..., x_{t-K+1})
    S = len(states)
    # predecessor of state s=(x_t, ..., x_{t-K+1}) with x_{t-K} = y: (x_{t-1}, ..., x_{t-K+1}, y)
    prev = np.array([[states.index(s[1:] + (y,)) for y in (0, 1)] for s in states])   # (S, 2)
    xt = np.array([s[0] for s in states])
    hist = np.array(states)                                  # hist[s, d-1] = x_{t-d+1}
    # components of a state older than frame 0 are held at 0 (they have no edges)
    defined = lambda t: (hist[:, t + 1:] == 0).all(1)
    cost = np.where(defined(0), swap_prior * xt, np.inf)
    back = np.zeros((n, S), np.int8)
    for t in range(1, n):
        cand = np.empty((S, 2))
        for y in (0, 1):
            p = prev[:, y]
            c = cost[p] + swap_prior * xt
            for d in range(1, min(K, t) + 1):
                same, swap = costs[d - 1][0][t - d], costs[d - 1][1][t - d]
                c = c + np.where(xt == hist[p, d - 1], same, swap)   # hist[p, d-1] = x_{t-d}
            cand[:, y] = np.where(defined(t), c, np.inf)
        back[t] = np.argmin(cand, axis=1)
        cost = cand[np.arange(S), back[t]]
    s = int(np.argmin(cost))
    out = np.zeros(n, bool)
    for t in range(n - 1, -1, -1):
        out[t] = bool(xt[s])
        s = int(prev[s, back[t, s]]) if t > 0 else s
    return out


def mirrored_frames(keypoints, valid, pairs, swap_prior=SWAP_PRIOR, world=None):
    """(T,) bool: frames whose labels of ``pairs`` are mirrored (continuity with the neighbours
    in the image, and of the world landmarks (T,33,3) when given)."""
    kp = np.asarray(keypoints, np.float64)
    valid = np.asarray(valid, bool)
    out = np.zeros(len(kp), bool)
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return out
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        if len(run) >= 2:
            out[run] = _run_labels(kp[run], swap_prior, pairs, world=None if world is None else world[run])
    return out


def fix_left_right_swaps(obs, swap_prior=SWAP_PRIOR):
    """Undo the detector's mirrored runs in ``obs`` (keypoints and world landmarks) in place;
    returns the number of frames relabelled."""
    m = mirrored_frames(obs.keypoints, obs.valid, JUDGE, swap_prior, world=obs.world)
    if m.any():
        perm = np.arange(obs.keypoints.shape[1])
        for a, b in ALL_PAIRS:
            perm[a], perm[b] = b, a
        obs.keypoints[m] = obs.keypoints[m][:, perm]
        obs.world[m] = obs.world[m][:, perm]
    return int(m.sum())


GARBLED_RATIO = 0.25   # a torso pair this much narrower than the body's usual hips/shoulders ratio
MIN_WIDTH = 0.05       # of the person's height: the other pair must be at least this wide


def garbled_torso(keypoints, valid, min_visibility=MIN_VISIBILITY):
    """(T,33) bool: hip or shoulder keypoints of frames where that pair has collapsed for one
    frame (wide in the frames before and after) while the other pair stays wide — a detector
    glitch (seen in the frame where a mirrored run starts or ends), since hips and shoulders turn
    together: through a profile both narrow at once, over several frames. The clip's median
    hips/shoulders width ratio is the reference; our thresholds."""
    kp = np.asarray(keypoints, np.float64)
    out = np.zeros(kp.shape[:2], bool)
    h = person_height(kp, min_visibility)
    (ls, rs), (lh, rh) = (LM["left_shoulder"], LM["right_shoulder"]), (LM["left_hip"], LM["right_hip"])
    ws = np.linalg.norm(kp[:, ls, :2] - kp[:, rs, :2], axis=-1)
    wh = np.linalg.norm(kp[:, lh, :2] - kp[:, rh, :2], axis=-1)
    seen = np.asarray(valid, bool) & (np.nan_to_num(kp[:, [ls, rs, lh, rh], 2]).min(1) > min_visibility) & (h > 0)
    with np.errstate(all="ignore"):
        r = wh / ws
        wide = seen & (ws > MIN_WIDTH * h) & (wh > MIN_WIDTH * h)
        if wide.sum() < 5:
            return out
        ref = np.median(r[wide])
        # a one-frame collapse: the pair is wide in both neighbouring frames
        around = lambda w: np.minimum(np.r_[np.nan, w[:-1]], np.r_[w[1:], np.nan]) > MIN_WIDTH * h
        hips = seen & (ws > MIN_WIDTH * h) & (r < GARBLED_RATIO * ref) & around(wh)
        shoulders = seen & (wh > MIN_WIDTH * h) & (r > ref / GARBLED_RATIO) & around(ws)
    out[hips, lh] = out[hips, rh] = True
    out[shoulders, ls] = out[shoulders, rs] = True
    return out
