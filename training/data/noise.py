"""Detector noise model: what MediaPipe Pose gives on real video, for synthetic observations.

``load_noise_model()`` returns PROVISIONAL updated with ``training/data/detector_noise.json``
when that file exists (measured from real footage, docs/detector_noise.md): keys with the same
names replace the provisional values; unknown keys are kept under ``"measured"`` for
reference. Every value below is provisional (our estimate, not a measurement):

- 2D noise: per-landmark standard deviation as a fraction of the person's box height
  (``sigma_rel``; face ~0.6 %, trunk 1 %, hips 1.5 % (MediaPipe's hip points wander), limbs
  1.2–2 %), AR(1) in time with ``temporal_rho`` (MediaPipe smooths landmarks), plus a motion-blur
  term ``blur_gain`` × image speed (px/frame), ×``occluded_sigma_mult`` when self-occluded,
  and ``outlier_rate`` jumps of ``outlier_sigma_rel``; ``swap_rate``: per-frame chance that the
  left and right limbs swap labels (a known failure on side views).
- Visibility (confidence): Beta(``vis_visible``) when visible, Beta(``vis_occluded``) when
  self-occluded, Beta(``vis_outside``) outside the frame.
- Dropout: frames with no detection arrive in bursts: start rate ``dropout_rate``, mean
  length ``dropout_burst``; such frames are invalid (NaN), as ``observe_frames`` marks them.
- World landmarks: per-landmark noise ``world_sigma_m`` (x, y, z in MediaPipe's camera-aligned
  frame; depth is the worst), a per-sequence depth compression ``world_depth_scale`` (MediaPipe
  flattens the body in depth) and overall scale ``world_scale`` (it normalises body size).
  The noise is AR(1) in time with ``world_temporal_rho`` (MediaPipe filters its landmarks, so
  the error drifts rather than flickers; the value is provisional). ``world_sigma_m`` as measured
  (``detector_noise/1``) is the *jitter* that a Savitzky–Golay residual sees (window 9,
  quadratic, divided by √0.7446); ``world_noise_sigma`` turns it into the AR(1) process's own
  standard deviation, so that the same measurement on synthetic landmarks gives back the
  measured jitter (``sg_jitter_ratio``). ρ = 0.6 was chosen so that the synthetic world
  landmarks' bone-length variation matches the measured ``world.bone_lengths`` CV on CMU test
  clips through random cameras (docs/benchmarks.md).
"""
import json
from pathlib import Path

import numpy as np

from engine.observe import LANDMARK_NAMES

NOISE_PATH = Path(__file__).resolve().parents[2] / "training" / "data" / "detector_noise.json"


def _sigma_rel():
    s = np.full(len(LANDMARK_NAMES), 0.012)
    for i, n in enumerate(LANDMARK_NAMES):
        if any(k in n for k in ("eye", "ear", "mouth", "nose")):
            s[i] = 0.006
        elif "shoulder" in n:
            s[i] = 0.010
        elif "hip" in n:
            s[i] = 0.015
        elif "wrist" in n or "ankle" in n:
            s[i] = 0.015
        elif any(k in n for k in ("pinky", "index", "thumb")):
            s[i] = 0.020
        elif "heel" in n or "foot" in n:
            s[i] = 0.015
    return s


PROVISIONAL = {
    "version": "provisional-1",
    "sigma_rel": _sigma_rel().tolist(),
    "temporal_rho": 0.6,
    "blur_gain": 0.12,
    "occluded_sigma_mult": 2.5,
    "outlier_rate": 0.01,
    "outlier_sigma_rel": 0.08,
    "swap_rate": 0.002,
    "vis_visible": [12.0, 1.2],
    "vis_occluded": [2.0, 3.0],
    "vis_outside": [1.0, 8.0],
    "dropout_rate": 0.01,
    "dropout_burst": 3.0,
    "world_sigma_m": [0.015, 0.015, 0.05],
    "world_temporal_rho": 0.6,
    "world_sigma_is_jitter": False,   # True when world_sigma_m is the measured SG-residual jitter
    "world_depth_scale": [0.6, 1.0],
    "world_scale": [0.9, 1.1],
}


def _from_detector_noise_v1(d):
    """Map ``detector_noise/1`` (scripts/measure_detector_noise.py) onto this model's keys."""
    out = {}
    kp = d.get("keypoints2d", {})
    if "sigma_per_box_height" in kp:
        out["sigma_rel"] = np.mean(np.asarray(kp["sigma_per_box_height"], np.float64), axis=1)
    if "outlier_rate" in kp:
        out["outlier_rate"] = np.asarray(kp["outlier_rate"], np.float64)
    if "outlier_sigma_per_box_height" in kp:
        out["outlier_sigma_rel"] = float(kp["outlier_sigma_per_box_height"])
    pd = d.get("person_dropout", {})
    if "gap_lengths_frames" in pd:
        out["dropout_burst"] = float(np.mean(pd["gap_lengths_frames"]))
    if "missing_rate_inside_track" in pd:
        out["dropout_rate"] = float(pd["missing_rate_inside_track"]) / out.get("dropout_burst", 3.0)
    w = d.get("world", {})
    if "sigma_m" in w:
        out["world_sigma_m"] = np.asarray(w["sigma_m"], np.float64)   # (33,3) per landmark
        out["world_sigma_is_jitter"] = True
    sm = d.get("smoother", {})
    if "savgol_window" in sm:
        out["jitter_smoother"] = (int(sm["savgol_window"]), int(sm.get("savgol_order", 2)))
    return out


def _savgol_residual_weights(window=9, order=2):
    """e = δ − h: the weights that give a Savitzky–Golay fit's residual at the window centre."""
    x = np.arange(window) - window // 2
    V = np.vander(x, order + 1, increasing=True)
    h = (V @ np.linalg.pinv(V))[window // 2]
    e = -h
    e[window // 2] += 1.0
    return e


def sg_jitter_ratio(rho, window=9, order=2):
    """Jitter a Savitzky–Golay residual measurement (as scripts/measure_detector_noise.py does:
    residual σ / √(eᵀe)) reports for an AR(1) process of unit standard deviation and lag-1
    correlation ``rho`` (1 for white noise; smaller for correlated noise, which the smoother
    partly follows)."""
    e = _savgol_residual_weights(window, order)
    k = np.arange(window)
    cov = float(rho) ** np.abs(k[:, None] - k[None, :])
    return float(np.sqrt(e @ cov @ e / (e @ e)))


def world_noise_sigma(model):
    """Per-landmark standard deviation (…,3) of the AR(1) world-landmark noise."""
    s = np.asarray(model["world_sigma_m"], np.float64)
    if model.get("world_sigma_is_jitter"):
        s = s / sg_jitter_ratio(model.get("world_temporal_rho", 0.0), *model.get("jitter_smoother", (9, 2)))
    return s


def _from_multiview_reference(d, model):
    """Overrides from the ``multiview_reference`` block (``scripts/measure_detector_noise_multiview.py``:
    MediaPipe against a leave-one-view-out triangulation of a 4-camera clip). 2D σ: the
    detector estimate (reference's own share removed), mean of x/y; outlier rates as measured.
    World landmarks: x/y keep the self-consistency jitter (converted to the AR(1) σ), z becomes
    the measured hip-relative depth error (an error, not a jitter: no conversion). Not taken
    (ours): the swap rate (one 25-frame burst in one view: 6 % of view-frames, but the generator
    draws swaps per frame independently, so it stays provisional), the temporal correlation of
    the depth error (unmeasured: ``world_temporal_rho`` stays) and the depth scale."""
    kp, dep = d["keypoints2d"], d["depth"]
    out = {"sigma_rel": np.mean(np.asarray(kp["sigma_per_box_height_detector_estimate"], np.float64), axis=1),
           "outlier_rate": np.asarray(kp["outlier_rate"], np.float64)}
    xy = np.asarray(world_noise_sigma(model), np.float64)
    xy = np.broadcast_to(xy, (len(out["sigma_rel"]), 3)).copy()
    xy[:, 2] = np.asarray(dep["sigma_m"], np.float64)
    out["world_sigma_m"], out["world_sigma_is_jitter"] = xy, False
    return out


def load_noise_model(path=NOISE_PATH, reference="self_consistency"):
    """The noise model: ``reference`` "self_consistency" (what the shipped models were trained
    with: σ from the jitter of one clip) or "multiview" (2D σ, outliers and world depth error
    measured against a calibrated 4-view reference; see docs/detector_noise.md)."""
    if reference not in ("self_consistency", "multiview"):
        raise ValueError(f"unknown noise reference {reference!r} (self_consistency | multiview)")
    model = _load_self_consistency(path)
    if reference == "multiview":
        measured = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
        if "multiview_reference" not in measured:
            raise ValueError(f"{path} has no multiview_reference block "
                             "(scripts/measure_detector_noise_multiview.py writes it)")
        model.update(_from_multiview_reference(measured["multiview_reference"], model))
        model["version"] += "+multiview"
        model["source"] += "; 2D sigma, outliers and world depth error from the multi-view reference"
    return model


def _load_self_consistency(path=NOISE_PATH):
    model = dict(PROVISIONAL)
    model["source"] = "provisional (training/data/noise.py)"
    path = Path(path)
    if path.is_file():
        measured = json.loads(path.read_text())
        if str(measured.get("format", "")).startswith("detector_noise/1"):
            model.update(_from_detector_noise_v1(measured))
            model["version"] = "measured:" + measured["format"]
            model["source"] = (f"{path.name} (measured: 2D sigma, outliers, dropout, world jitter); "
                               "provisional: visibility, temporal correlation, blur, swaps, depth scale")
            model["sigma_rel"] = np.asarray(model["sigma_rel"], np.float64)
            return model
        model["measured"] = {}
        for k, v in measured.items():
            if k in PROVISIONAL and k != "version":
                model[k] = v
            else:
                model["measured"][k] = v
        model["source"] = f"{path.name} (measured; provisional values for missing keys)"
    model["sigma_rel"] = np.asarray(model["sigma_rel"], np.float64)
    return model
