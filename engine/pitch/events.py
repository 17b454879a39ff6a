"""Delivery events from joint centres (frame indices on the analysed clip).

All functions take arrays already in the pitch frame (+x home, z up) with the throwing side
on the body's right. Video shows no force plates, ball or fingers, so:

* **Peak knee height (PKH)**: the highest lead-knee centre before the throw (OBP's definition).
* **Foot contact (FC)**: first frame after PKH where the lead ankle centre is within
  ``CONTACT_HEIGHT`` of its planted height. OBP times contact at 10 % bodyweight on the force
  plate; the ankle centre is still a couple of centimetres up when the heel/toe touches.
* **Foot plant (FP)**: first frame from FC on where the lead ankle has stopped descending
  (vertical velocity ≥ ``PLANT_VZ``). OBP times it at 100 % bodyweight; the ankle settles a few
  frames later (see docs/pitch_validation.md for the measured offsets).
* **Ball release (BR)**: the frame of maximum elbow extension (least elbow flexion) around the
  peak throwing-hand speed. The ball leaves the hand as the elbow reaches full extension; on
  OBP this lands within a few milliseconds of the official release.
* **MER**: maximum shoulder external rotation between FP and BR.
* **MIR**: minimum external rotation (maximum internal rotation) in the ``MIR_WINDOW`` after BR.

Thresholds were chosen from the biomechanics (ankle centre height above the sole, a foot at
rest) and checked on the 5 OBP pitches; they are the same at any frame rate.
"""
import numpy as np

CONTACT_HEIGHT = 0.025   # m above the planted ankle height
PLANT_VZ = -0.2          # m/s: the lead ankle is no longer descending
BR_WINDOW = (-0.03, 0.04)  # s around the peak hand speed searched for maximum elbow extension
MIR_WINDOW = 0.15        # s after BR


def _argmax_in(x, lo, hi):
    """Index of the largest value of ``x`` in [lo, hi), or None: a bound that is None (an event
    it depends on was not found), an empty window or one with no finite value."""
    if lo is None or hi is None:
        return None
    lo, hi = max(0, int(lo)), min(len(x), int(hi))
    if hi <= lo:
        return None
    w = np.asarray(x[lo:hi], dtype=np.float64)
    if not np.isfinite(w).any():
        return None
    return lo + int(np.nanargmax(np.where(np.isfinite(w), w, np.nan)))


HAND_PEAK_REFINE = 0.05   # s: the world-speed peak is searched this close to the relative one


def peak_hand_speed(hand_speed, fps, relative_speed=None):
    """Frame of the throwing hand's peak speed (the anchor for the arm events).

    With ``relative_speed`` (the hand's speed relative to the pelvis) the throw is located by
    that peak and the frame is the world-speed peak within ``HAND_PEAK_REFINE`` of it: a jump of
    the whole body in a video estimate (the root's depth re-estimated after a detection gap)
    moves the hand as fast as a throw but not relative to the pelvis. Our choice; on OBP's
    joint centres it gives the same frame as the world-speed peak (docs/pitch_validation.md).
    """
    if relative_speed is None:
        return _argmax_in(hand_speed, 0, len(hand_speed))
    c = _argmax_in(relative_speed, 0, len(relative_speed))
    if c is None:
        return None
    w = max(1, int(round(HAND_PEAK_REFINE * fps)))
    return _argmax_in(np.asarray(hand_speed), c - w, c + w + 1)


def peak_knee_height(lead_knee_z, end):
    """Frame of the highest lead knee before ``end`` (foot contact or the throw)."""
    return _argmax_in(lead_knee_z, 0, end)


def ground_height(lead_ankle_z, start, end=None):
    """Planted height of the lead ankle centre: its lowest value in [start, end) (PKH to the
    peak hand speed: the foot lands before the throw). Limiting the window keeps a video
    estimate whose ankle drifts lower after release (mound slope, depth error) from hiding
    the landing. None when the window is empty or unknown."""
    if start is None:
        return None
    w = np.asarray(lead_ankle_z[start:end], dtype=np.float64)
    return float(np.nanmin(w)) if np.isfinite(w).any() else None


def foot_contact(lead_ankle_z, ground, start, end):
    """First frame in [start, end) with the lead ankle within CONTACT_HEIGHT of the ground."""
    if ground is None or start is None or end is None:
        return None
    idx = np.nonzero(lead_ankle_z[start:end] - ground <= CONTACT_HEIGHT)[0]
    return int(start + idx[0]) if len(idx) else None


def foot_plant(lead_ankle_vz, contact, end):
    """First frame from ``contact`` where the lead ankle stops descending (vz ≥ PLANT_VZ)."""
    if contact is None:
        return None
    idx = np.nonzero(lead_ankle_vz[contact:end] >= PLANT_VZ)[0]
    return int(contact + idx[0]) if len(idx) else contact


def ball_release(elbow_flexion, hand_peak, fps):
    """Frame of least elbow flexion within BR_WINDOW of the peak hand speed."""
    if hand_peak is None:
        return None
    lo = hand_peak + int(np.floor(BR_WINDOW[0] * fps))
    hi = hand_peak + int(np.ceil(BR_WINDOW[1] * fps)) + 1
    return _argmax_in(-np.asarray(elbow_flexion), lo, hi)


def max_external_rotation(er, start, release):
    """Frame of maximum external rotation in [start, release] (None if either is unknown)."""
    if start is None or release is None:
        return None
    return _argmax_in(er, start, release + 1)


def max_internal_rotation(er, release, fps):
    """Frame of minimum external rotation in the MIR_WINDOW from release (None without release)."""
    if release is None:
        return None
    return _argmax_in(-np.asarray(er), release, release + int(round(MIR_WINDOW * fps)) + 1)
