"""Pitch analysis in Blender: run ``engine.pitch`` on an imported rig's Motion, put the delivery
events on the timeline, keep the result on the rig for the panel, write the report files.

The importer records on the armature where its motion came from (``mocap_motion_path``) and
which scene frame holds Motion frame 0 (``mocap_frame_start``, default 1); Motion frame ``i``
is keyed on scene frame ``frame_start + i``, so an event on Motion frame ``f`` gets a marker on
scene frame ``frame_start + f``. The result is stored on the armature as JSON
(``mocap_pitch``), so it is saved with the .blend and the panel needs no engine import to draw.
"""
import json
from pathlib import Path

import bpy

from ..enginepath import ensure_engine

ensure_engine()
from engine.pitch.report import EVENT_LABELS  # noqa: E402  (pure Python, no numpy import cost)

RESULT_KEY = "mocap_pitch"
MOTION_PATH_KEY = "mocap_motion_path"
FRAME_START_KEY = "mocap_frame_start"
HANDEDNESS_ITEMS = (("AUTO", "Auto", "Detect the throwing arm (the faster wrist)"),
                    ("R", "Right", "Right-handed pitcher"),
                    ("L", "Left", "Left-handed pitcher"))
HOME_ITEMS = (("AUTO", "Estimate", "Estimate home plate's direction from the throw"),
              ("CAMERA", "Camera looks at home", "Center-field view: home plate lies along the "
                                                 "camera's viewing direction"))


class PitchError(Exception):
    """A message for the user (no Motion on the rig, not a pitch, ...)."""


class NotAPitch(PitchError):
    """The rig's motion shows no pitching delivery; the message is the reason."""


def motion_rig(ob):
    """The imported armature for ``ob`` (itself, its parent — e.g. the body mesh — or None)."""
    while ob is not None:
        if ob.type == "ARMATURE" and (MOTION_PATH_KEY in ob or "mocap_source" in ob):
            return ob
        ob = ob.parent
    return None


def motion_path(rig):
    p = rig.get(MOTION_PATH_KEY, "") if rig is not None else ""
    return Path(bpy.path.abspath(p)) if p else None


def result(rig):
    """The stored analysis (dict, as ``PitchAnalysis.to_dict()`` plus Blender extras, with
    ``status`` "ok" or "check"), ``{"status": "not_a_pitch", "reason": ...}`` after a refused
    analysis, or None."""
    raw = rig.get(RESULT_KEY) if rig is not None else None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def default_report_dir(rig):
    """``<motion stem>_pitch`` next to the Motion file, or next to the saved .blend, or temp."""
    mp = motion_path(rig)
    stem = rig.name
    candidates = []
    if mp is not None:
        s = mp.name
        s = s[: -len(".motion.npz")] if s.endswith(".motion.npz") else mp.stem
        candidates.append(mp.parent / f"{s}_pitch")
    if bpy.data.filepath:
        candidates.append(Path(bpy.path.abspath("//")) / f"{bpy.path.clean_name(stem)}_pitch")
    import tempfile
    candidates.append(Path(tempfile.gettempdir()) / "mocap_pitch" / bpy.path.clean_name(stem))
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
            return c
        except OSError:
            continue
    raise PitchError("no writable folder for the pitch report")


def set_markers(scene, events, frame_start=1, labels=EVENT_LABELS):
    """Timeline markers for ``events`` ({name: Motion frame or None}); returns {label: frame}.

    Markers with the same labels are replaced (one pitch per scene timeline at a time).
    """
    wanted = {labels[k]: int(frame_start + f) for k, f in events.items() if f is not None and k in labels}
    for m in list(scene.timeline_markers):
        if m.name in labels.values():
            scene.timeline_markers.remove(m)
    for name, frame in sorted(wanted.items(), key=lambda kv: kv[1]):
        scene.timeline_markers.new(name, frame=frame)
    return wanted


def analyse_motion(motion, handedness="AUTO", home="AUTO", height=0.0):
    """engine.pitch on a Motion → PitchAnalysis (raises NotAPitch with the reason when the motion
    shows no delivery, PitchError with a readable message when it cannot be analysed)."""
    from engine.errors import EngineError
    from engine.pitch import NotAPitch as EngineNotAPitch
    from engine.pitch import analyze, from_motion
    try:
        js = from_motion(motion)
        return analyze(js, handedness="auto" if handedness == "AUTO" else handedness,
                       height=height if height and height > 0 else None,
                       home_azimuth_deg="camera" if home == "CAMERA" else None)
    except EngineNotAPitch as exc:
        raise NotAPitch(exc.reason) from exc
    except (ValueError, EngineError) as exc:
        raise PitchError(f"pitch analysis failed: {exc}") from exc


def analyse_rig(rig, scene=None, handedness=None, home=None, height=None, out_dir=None, plots=True,
                motion=None):
    """Analyse the pitch of an imported rig: markers, stored result, report files.

    ``handedness``/``home``/``height`` default to the rig's own settings (the panel's override
    controls). ``motion`` skips reading the Motion file (batch: already in memory). Returns
    ``(PitchAnalysis, stored dict)``.
    """
    scene = scene or bpy.context.scene
    if rig is None:
        raise PitchError("select an armature imported by Video Mocap")
    handedness = handedness or getattr(rig, "mocap_pitch_handedness", "AUTO")
    home = home or getattr(rig, "mocap_pitch_home", "AUTO")
    height = getattr(rig, "mocap_pitch_height", 0.0) if height is None else height
    if out_dir:  # checked before any work: never the Motion file, created, writable
        from engine.errors import EngineError
        from engine.outputs import check_output_dir
        try:
            out_dir = check_output_dir(bpy.path.abspath(str(out_dir)), inputs=[motion_path(rig)],
                                       what="pitch report folder")
        except EngineError as exc:
            raise PitchError(str(exc)) from None
    if motion is None:
        mp = motion_path(rig)
        if mp is None or not mp.is_file():
            raise PitchError(f"'{rig.name}' has no Motion file on disk"
                             + (f" ({mp})" if mp else "") + ": import a .npz, or import the video "
                             "with 'Save Motion File' on")
        from engine.errors import EngineError
        from engine.motion import load_motion
        try:
            motion = load_motion(mp)
        except EngineError as exc:
            raise PitchError(str(exc)) from exc
    settings = dict(handedness=handedness, home=home, height=float(height or 0.0))
    try:
        res = analyse_motion(motion, handedness, home, height)
    except NotAPitch as exc:   # no stale events or metrics from an earlier analysis stay shown
        set_markers(scene, {})
        rig[RESULT_KEY] = json.dumps({"status": "not_a_pitch", "reason": str(exc), "settings": settings})
        raise
    frame_start = int(rig.get(FRAME_START_KEY, 1))
    clip_events = {k: res.clip_frame(k) for k in res.events}
    markers = set_markers(scene, clip_events, frame_start)
    out = out_dir if out_dir else default_report_dir(rig)
    from engine.pitch import report
    stem = bpy.path.clean_name(rig.name)
    try:
        pngs = report.write_all(res, out, stem, plots=plots)
    except OSError as exc:
        raise PitchError(f"cannot write the pitch report to {out}: {exc.strerror or exc}") from exc
    stored = res.to_dict()
    stored.update(scene_frames={k: (None if f is None else frame_start + f) for k, f in clip_events.items()},
                  markers=markers, report_dir=str(out), plots=[str(p) for p in pngs],
                  json=str(out / f"{stem}.json"), settings=settings)
    rig[RESULT_KEY] = json.dumps(stored)
    return res, stored


def show_image(context, path):
    """Load a PNG as an Image and show it in an Image Editor (an open one, else a new window).

    Returns the Image; headless (or without a window) it is only loaded.
    """
    path = str(path)
    img = None
    for im in bpy.data.images:
        if im.filepath and bpy.path.abspath(im.filepath) == path:
            img = im
            img.reload()
            break
    if img is None:
        img = bpy.data.images.load(path, check_existing=False)
    if bpy.app.background or context.window is None or context.screen is None:
        return img
    area = next((a for a in context.screen.areas if a.type == "IMAGE_EDITOR"), None)
    if area is None:
        try:
            before = set(context.window_manager.windows)
            bpy.ops.wm.window_new()
            new = [w for w in context.window_manager.windows if w not in before]
            if new:
                area = new[0].screen.areas[0]
                area.type = "IMAGE_EDITOR"
        except RuntimeError:
            area = None
    if area is not None:
        area.spaces.active.image = img
    return img
