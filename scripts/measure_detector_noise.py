"""Measure MediaPipe's noise on the demo clip → training/data/detector_noise.json (see docs/detector_noise.md).

    .venv/bin/python scripts/measure_detector_noise.py [--obp]   # --obp: also print the OBP check

Shipped numbers come only from the BSD-3 demo clip (assets/demo). The optional OBP comparison
(CC BY-NC-SA data) is printed for validation and never written to the JSON.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.observe import LANDMARK_NAMES, LM  # noqa: E402
from engine.pipeline import PipelineOptions, detect  # noqa: E402
from engine.observe.track import track_people  # noqa: E402

DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"
WIN, ORDER = 9, 2               # Savitzky–Golay smoother: 0.3 s at 30 fps, quadratic
# white-noise variance kept by the residual of a projection smoother: 1 − h0 (h0 = centre weight)
H0 = float(savgol_filter(np.eye(WIN)[WIN // 2], WIN, ORDER, mode="interp")[WIN // 2])
BONES = {"upper_arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"),
         "thigh": ("hip", "knee"), "shank": ("knee", "ankle")}
MIN_TRACK = 60  # frames


def _runs(valid):
    """(start, stop) of runs of consecutive True."""
    v = np.r_[False, valid, False].astype(int)
    d = np.diff(v)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _residuals(x, valid):
    """Savitzky–Golay residuals of x (T,…) over runs of ≥ WIN valid frames; NaN elsewhere."""
    r = np.full_like(x, np.nan, dtype=np.float64)
    for a, b in _runs(valid):
        if b - a >= WIN:
            r[a:b] = x[a:b] - savgol_filter(x[a:b], WIN, ORDER, axis=0)
    return r


def _robust_sigma(r, axis=0):
    med = np.nanmedian(r, axis=axis, keepdims=True)
    return 1.4826 * np.nanmedian(np.abs(r - med), axis=axis) / np.sqrt(1 - H0)


def measure(dets):
    tid = track_people(dets)
    ids, counts = np.unique(tid[tid >= 0], return_counts=True)
    used = [int(t) for t, c in zip(ids, counts) if c >= MIN_TRACK]
    res2d, resw, vis_all, lengths, gaps, spans, hist_err = [], [], [], {b: [] for b in BONES}, [], 0, []
    asym = {b: [] for b in BONES}
    T = dets.num_frames
    for t in used:
        d = np.flatnonzero(tid == t)
        f = dets.frame_of[d]
        kp = np.full((T, 33, 3), np.nan)
        wl = np.full((T, 33, 3), np.nan)
        kp[f], wl[f] = dets.keypoints[d], dets.world[d]
        box_h = np.full(T, np.nan)
        box_h[f] = dets.bbox[d, 3] - dets.bbox[d, 1]
        valid = np.zeros(T, bool)
        valid[f] = True
        spans += f.max() - f.min() + 1
        gaps += [b - a for a, b in _runs(~valid[f.min():f.max() + 1])]
        # 2D: residual in units of the person's box height; landmarks seen (visibility > 0.5)
        r = _residuals(kp[..., :2] / np.nanmedian(box_h[f]), valid)
        seen = kp[..., 2] > 0.5
        r[~seen] = np.nan
        res2d.append(r[valid])
        resw.append(_residuals(wl, valid)[valid])
        vis_all.append(kp[valid, :, 2])
        # error vs visibility: |residual| by visibility decile (all landmarks pooled)
        rr = np.linalg.norm(_residuals(kp[..., :2] / np.nanmedian(box_h[f]), valid), axis=-1)
        hist_err.append(np.stack([kp[valid, :, 2].ravel(), rr[valid].ravel()], 1))
        for b, (p, c) in BONES.items():
            L = {s: np.linalg.norm(wl[valid, LM[f"{s}_{p}"]] - wl[valid, LM[f"{s}_{c}"]], axis=-1)
                 for s in ("left", "right")}
            ok = {s: (kp[valid, LM[f"{s}_{p}"], 2] > 0.5) & (kp[valid, LM[f"{s}_{c}"], 2] > 0.5) for s in L}
            for s in L:
                lengths[b].append(L[s][ok[s]])
            both = ok["left"] & ok["right"]
            asym[b].append((L["left"] - L["right"])[both])
    r2 = np.concatenate(res2d)                 # (n,33,2)
    rw = np.concatenate(resw)                  # (n,33,3)
    vis = np.concatenate(vis_all)              # (n,33)
    sig2 = _robust_sigma(r2)                   # (33,2)
    z = np.linalg.norm(r2 / sig2, axis=-1)
    outlier = np.nanmean(np.where(np.isfinite(z), z > 5, np.nan), axis=0)
    big = r2[z > 5]
    ve = np.concatenate(hist_err)
    ve = ve[np.isfinite(ve).all(1)]
    edges = np.linspace(0, 1, 11)
    err_by_vis = [float(1.4826 * np.median(ve[(ve[:, 0] >= a) & (ve[:, 0] < b), 1]) / np.sqrt(1 - H0))
                  if ((ve[:, 0] >= a) & (ve[:, 0] < b)).sum() > 30 else None
                  for a, b in zip(edges[:-1], edges[1:])]
    bone = {}
    for b in BONES:
        L = np.concatenate(lengths[b])
        A = np.concatenate(asym[b])
        bone[b] = dict(mean_m=round(float(np.mean(L)), 4), sd_m=round(float(np.std(L)), 4),
                       cv=round(float(np.std(L) / np.mean(L)), 4),
                       left_minus_right_sd_m=round(float(np.std(A)), 4), n=int(len(L)))
    sigw = _robust_sigma(rw)                   # (33,3) metres
    rnd = lambda a, k=5: np.round(np.asarray(a, float), k).tolist()
    return dict(
        tracks_used=len(used), frames_used=int(len(vis)),
        keypoints2d=dict(
            sigma_per_box_height=rnd(sig2),
            sigma_per_box_height_median=round(float(np.nanmedian(sig2)), 5),
            outlier_rate=rnd(outlier, 4), outlier_threshold_sigma=5,
            outlier_sigma_per_box_height=round(float(np.nanmedian(np.abs(big))) * 1.4826, 4) if len(big) else None,
            sigma_by_visibility_decile=[None if v is None else round(v, 5) for v in err_by_vis]),
        visibility=dict(
            mean=rnd(np.nanmean(vis, 0), 3), below_0_5=rnd(np.nanmean(vis < 0.5, 0), 3),
            histogram_edges=rnd(edges, 2), histogram=rnd(np.histogram(vis, edges)[0] / vis.size, 4)),
        person_dropout=dict(
            missing_rate_inside_track=round(float(sum(gaps) / max(spans, 1)), 4),
            gap_lengths_frames=sorted(int(g) for g in gaps)),
        world=dict(
            sigma_m=rnd(sigw), sigma_m_median_xyz=rnd(np.nanmedian(sigw, 0), 4),
            bone_lengths=bone))


def obp_check():
    """Bone lengths and ratios of OBP's mocap joint centres (validation only, not shipped)."""
    import csv
    rows = list(csv.DictReader(open(ROOT.parent / "shared/data/obp/landmarks_subset.csv")))
    P = lambda r, n: np.array([float(r[f"{n}_{a}"]) for a in "xyz"])
    pairs = {"upper_arm": ("shoulder_jc", "elbow_jc"), "forearm": ("elbow_jc", "wrist_jc"),
             "thigh": ("rear_hip", "rear_knee_jc"), "shank": ("rear_knee_jc", "rear_ankle_jc")}
    out = {}
    for b, (p, c) in pairs.items():
        L = np.array([np.linalg.norm(P(r, p) - P(r, c)) for r in rows])
        out[b] = (float(np.median(L)), float(np.std(L) / np.mean(L)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obp", action="store_true")
    ap.add_argument("-o", "--output", default=str(ROOT / "training" / "data" / "detector_noise.json"))
    a = ap.parse_args(argv)
    opts = PipelineOptions()
    dets, info = detect(DEMO, opts)
    stats = measure(dets)
    doc = {
        "format": "detector_noise/1",
        "detector": "MediaPipe 0.10.21 Tasks PoseLandmarker (pose_detection + pose_landmark_full "
                    "from the wheel), video mode, num_poses=4, confidences 0.5",
        "source": {"clip": "assets/demo/sports2d_demo.mp4 (Sports2D demo, BSD-3)", "frames": int(dets.num_frames),
                   "size": list(dets.frame_size), "fps": float(dets.fps),
                   "script": "scripts/measure_detector_noise.py", "doc": "docs/detector_noise.md"},
        "landmark_names": list(LANDMARK_NAMES),
        "smoother": {"savgol_window": WIN, "savgol_order": ORDER, "residual_variance_factor": round(1 - H0, 4)},
        "provisional": ["world.sigma_m (jitter only, not the absolute depth error)",
                        "world.bone_lengths (consistency, not accuracy)",
                        "keypoints2d (one clip, 2 people, outdoor backlit; jitter after MediaPipe's own "
                        "smoothing, real fast motion inflates it)",
                        "person_dropout (one clip)"],
        **stats,
    }
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(json.dumps(doc, indent=1) + "\n")
    k = doc["keypoints2d"]
    print(f"wrote {a.output}: {stats['tracks_used']} tracks, {stats['frames_used']} person-frames")
    print(f"2D sigma (median over landmarks) = {k['sigma_per_box_height_median']:.4f} box heights; "
          f"world sigma xyz median = {doc['world']['sigma_m_median_xyz']} m")
    for b, v in doc["world"]["bone_lengths"].items():
        print(f"  {b:9s} world length {v['mean_m']:.3f} ± {v['sd_m']:.3f} m (cv {v['cv']:.3f}), "
              f"L−R sd {v['left_minus_right_sd_m']:.3f} m")
    if a.obp:
        print("OBP mocap (validation only; CC BY-NC-SA, not shipped): median length, cv")
        for b, (m, cv) in obp_check().items():
            print(f"  {b:9s} {m:.3f} m  cv {cv:.3f}")


if __name__ == "__main__":
    main()
