"""Is the clip a pitch, and are its numbers plausible?

Two checks on an analysed delivery, both set in ``presets/pitch/ranges.json``:

* the **delivery pattern** (:func:`event_problem`, :func:`motion_problem`): peak knee height,
  foot contact, foot plant, MER and ball release all found, in the order PKH < FC ≤ FP < MER ≤
  BR; a throwing-hand speed peak in a human throwing range, a stride, an arm that lays back and
  an elbow that extends fast. Without it the clip is not analysed (:class:`NotAPitch`): event
  rules run on any motion, and a box jump otherwise gets a "release" and pitching metrics.
* **plausible ranges** (:func:`flags`): each metric outside its published-norm envelope, and
  each event that is missing or cannot be trusted, is flagged; the pitch is still reported, with
  status "check" instead of "ok".
"""
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import EngineError
from .report import EVENT_NAMES, metric_unit

RANGES_PATH = Path(__file__).resolve().parent.parent.parent / "presets" / "pitch" / "ranges.json"
# (earlier, later, strict): the delivery's event order
ORDER = (("pkh", "foot_contact", True), ("foot_contact", "foot_plant", False),
         ("foot_plant", "mer", True), ("mer", "ball_release", False))
REQUIRED = ("pkh", "foot_contact", "foot_plant", "mer", "ball_release")


class NotAPitch(EngineError, ValueError):
    """The motion does not show a pitching delivery; ``reason`` says what is missing.

    A ValueError too, like the analysis' other refusals (too few valid frames), so callers that
    skip unanalysable clips keep doing so."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=4)
def load_ranges(path=RANGES_PATH):
    """The preset: ``{"delivery": {...}, "metrics": {name: (lo, hi, citation)}, "sources": {...}}``."""
    data = json.loads(Path(path).read_text())
    metrics = {}
    for name, spec in data["metrics"].items():
        lo, hi = (float(x) for x in spec["range"])
        metrics[name] = (lo, hi, citation(spec, data["sources"]))
    return {"delivery": dict(data["delivery"]), "metrics": metrics, "sources": dict(data["sources"])}


def citation(spec, sources):
    """Short source label of a range: "Fleisig 1999", "envelope around Kageyama 2015", "own envelope"."""
    key = spec["source"]
    if key not in sources:
        raise ValueError(f"range source {key!r} is not listed in the preset's sources")
    if key == "envelope":
        return "own envelope"
    label = f"{key[:-4].capitalize()} {key[-4:]}"
    return f"envelope around {label}" if spec.get("basis") == "envelope" else label


def _event_label(name):
    return EVENT_NAMES[name].lower()


def event_problem(events, first_frame=0):
    """Why the events are not a delivery (one line), or None: a required event missing or the
    order PKH < FC ≤ FP < MER ≤ BR broken. Frames in the message are the input clip's."""
    for k in REQUIRED:
        if events.get(k) is None:
            return f"no {_event_label(k)} found" + (" before the throw" if k == "foot_contact" else "")
    for a, b, strict in ORDER:
        fa, fb = events[a], events[b]
        if fb < fa or (strict and fb == fa):
            rel = "after" if strict else "at or after"
            return (f"{_event_label(b)} (frame {first_frame + fb}) is not {rel} "
                    f"{_event_label(a)} (frame {first_frame + fa})")
    return None


def _val(metrics, name):
    v = metrics.get(name)
    return None if v is None or not np.isfinite(float(v)) else float(v)


def motion_problem(metrics, ranges=None):
    """Why the motion is not a pitch (one line), or None: no throwing-hand speed peak in a human
    throwing range, no stride, no layback of the throwing arm, no fast elbow extension."""
    d = (ranges or load_ranges())["delivery"]
    lo, hi = d["peak_hand_speed"]
    v = _val(metrics, "peak_hand_speed")
    if v is None or not lo <= v <= hi:
        shown = "not measured" if v is None else f"{v:.1f} m/s"
        return f"throwing-hand speed peak {shown}, outside a throw's {lo:g}-{hi:g} m/s"
    v = _val(metrics, "stride_length_pct_height")
    if v is None or v < d["min_stride_length_pct_height"]:
        shown = "not measured" if v is None else f"{v:.0f} % of height"
        return f"no stride (lead foot {shown} from the drive foot; a pitch: at least " \
               f"{d['min_stride_length_pct_height']:g} %)"
    v = _val(metrics, "max_shoulder_external_rotation")
    if v is None or v < d["min_max_shoulder_external_rotation"]:
        shown = "not measured" if v is None else f"{v:.0f}°"
        return f"the throwing arm never lays back (max shoulder external rotation {shown}; a pitch: " \
               f"at least {d['min_max_shoulder_external_rotation']:g}°)"
    v = _val(metrics, "max_elbow_extension_velo")
    if v is None or v < d["min_max_elbow_extension_velo"]:
        shown = "not measured" if v is None else f"{v:.0f}°/s"
        return f"no throwing elbow extension (peak {shown}; a pitch: at least " \
               f"{d['min_max_elbow_extension_velo']:g}°/s)"
    return None


def _range_text(lo, hi, unit):
    u = {"deg": "°", "deg/s": "°/s"}.get(unit, f" {unit}" if unit else "")
    return f"{lo:g} to {hi:g}{u}"


def flags(events, metrics, ranges=None):
    """``{name: reason}`` for every metric outside its plausible range (or not computable) and
    every event that is missing or untrustworthy (PKH on the clip's first frame: the clip may
    start after it; MIR not after release). Empty when everything is plausible."""
    out = {}
    for k in EVENT_NAMES:
        if events.get(k) is None:
            out[k] = "event not found"
    if events.get("pkh") == 0:
        out["pkh"] = "on the clip's first frame: the clip may start after peak knee height"
    br, mir = events.get("ball_release"), events.get("mir")
    if br is not None and mir is not None and mir <= br:
        out["mir"] = "not after ball release: no internal rotation found after release"
    for name, (lo, hi, cite) in (ranges or load_ranges())["metrics"].items():
        if name not in metrics:
            continue
        v = metrics[name]
        if v is None:
            continue        # its event is missing: flagged above
        v = float(v)
        if not np.isfinite(v):
            out[name] = "not computable"
        elif not lo <= v <= hi:
            side = "below" if v < lo else "above"
            out[name] = f"{side} the plausible {_range_text(lo, hi, metric_unit(name))} ({cite})"
    return out


def status(flag_map):
    """"ok" when nothing is flagged, else "check" (a flag or a missing event)."""
    return "check" if flag_map else "ok"
