"""Left/right label swaps of the detector, found by continuity and undone before estimation.

MediaPipe sometimes labels a person mirrored for a run of frames: the left shoulder's label sits
on the right shoulder and so on for every pair, while the points themselves move on smoothly.
An estimator that trusts the labels then turns the body's back to the camera for those frames.
A swap shows as a jump in the labels that vanishes when the pairs are exchanged: frame t's left
points lie where frame t−1's right points were. Each run of consecutive valid frames gets the
label sequence (as detected / mirrored) that minimises, by a two-state Viterbi pass,

    Σ_t  d(labels_t, labels_{t−1}) / h  +  λ · [frame t mirrored]

with d the summed distance of the paired landmarks between the two frames under each frame's
labelling and h the person's height; λ makes "as detected" the default, so a run is taken as
mirrored only when continuity says so (our choice; λ = ``SWAP_PRIOR``). Mirrored frames get
their keypoints' and world landmarks' left/right labels exchanged.
"""
import numpy as np

from .observe import LM
from .reprojection import person_height

def _pairs(names):
    return [(LM[f"left_{n}"], LM[f"right_{n}"]) for n in names]


# A mirrored detection is judged on the upper body (shoulders, arms, eyes, ears: apart in every
# view but a pure profile) and undone for every pair. The legs alone are not judged: in side views
# they cross, and their labels are ambiguous there (tried: judging them apart relabelled walking
# strides and turned the pelvis on the demo clip).
JUDGE = _pairs(("shoulder", "elbow", "wrist", "eye", "ear"))
ALL_PAIRS = _pairs(("shoulder", "elbow", "wrist", "eye", "ear", "eye_inner", "eye_outer", "pinky", "index",
                    "thumb", "hip", "knee", "ankle", "heel", "foot_index")) + [(LM["mouth_left"], LM["mouth_right"])]
SWAP_PRIOR = 0.1     # in summed-distance / height units per mirrored frame
MIN_VISIBILITY = 0.3


def transition_costs(kp_prev, kp_cur, pairs):
    """(same, mirrored) label-change costs between two frames' keypoints (33,3) over ``pairs``,
    in units of the person's height: "same" when both frames share a labelling, "mirrored" when
    they differ."""
    L = [a for a, _ in pairs]
    R = [b for _, b in pairs]
    ok = (kp_prev[L, 2] > MIN_VISIBILITY) & (kp_prev[R, 2] > MIN_VISIBILITY) \
        & (kp_cur[L, 2] > MIN_VISIBILITY) & (kp_cur[R, 2] > MIN_VISIBILITY)
    if ok.sum() < 2:
        return 0.0, 0.0
    h = np.nanmean([person_height(kp_prev, MIN_VISIBILITY), person_height(kp_cur, MIN_VISIBILITY)])
    if not np.isfinite(h) or h <= 0:
        return 0.0, 0.0
    a, b = kp_prev[:, :2], kp_cur[:, :2]
    Lk, Rk = np.array(L)[ok], np.array(R)[ok]
    same = np.linalg.norm(b[Lk] - a[Lk], axis=1).sum() + np.linalg.norm(b[Rk] - a[Rk], axis=1).sum()
    swap = np.linalg.norm(b[Lk] - a[Rk], axis=1).sum() + np.linalg.norm(b[Rk] - a[Lk], axis=1).sum()
    return same / h, swap / h


def mirrored_frames(keypoints, valid, pairs, swap_prior=SWAP_PRIOR):
    """(T,) bool: frames whose labels of ``pairs`` are mirrored (continuity with the neighbours)."""
    kp = np.asarray(keypoints, np.float64)
    valid = np.asarray(valid, bool)
    out = np.zeros(len(kp), bool)
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return out
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for run in runs:
        if len(run) < 2:
            continue
        # Viterbi over states 0 (as detected) / 1 (mirrored)
        cost = np.array([0.0, swap_prior])
        back = np.zeros((len(run), 2), np.int8)
        for n in range(1, len(run)):
            same, swap = transition_costs(kp[run[n - 1]], kp[run[n]], pairs)
            stay = cost + same                      # [prev 0 → 0, prev 1 → 1]
            cross = cost[::-1] + swap               # [prev 1 → 0, prev 0 → 1]
            back[n] = np.where(stay <= cross, [0, 1], [1, 0])
            cost = np.minimum(stay, cross) + [0.0, swap_prior]
        s = int(np.argmin(cost))
        for n in range(len(run) - 1, -1, -1):
            out[run[n]] = bool(s)
            s = int(back[n, s])
    return out


def fix_left_right_swaps(obs, swap_prior=SWAP_PRIOR):
    """Undo the detector's mirrored runs in ``obs`` (keypoints and world landmarks) in place;
    returns the number of frames relabelled."""
    m = mirrored_frames(obs.keypoints, obs.valid, JUDGE, swap_prior)
    if m.any():
        perm = np.arange(obs.keypoints.shape[1])
        for a, b in ALL_PAIRS:
            perm[a], perm[b] = b, a
        obs.keypoints[m] = obs.keypoints[m][:, perm]
        obs.world[m] = obs.world[m][:, perm]
    return int(m.sum())
