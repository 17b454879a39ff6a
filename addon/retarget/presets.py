"""Rig presets: JSON bone maps (target bone → SMPL joint, optional alignment rules, a root bone,
Rigify IK chains), shipped in ``presets/rigs/`` and saved by the user in their own folder.

No bpy at import: only ``user_preset_dir`` asks Blender where the user's folder is.
"""
import json
from pathlib import Path

from engine.body.skeleton import JOINT_INDEX

from ..enginepath import presets_dir

HERE = Path(__file__).resolve().parent


def builtin_preset_dir():
    """The shipped rig presets: ``presets/rigs`` beside the engine (``enginepath.presets_dir``:
    the repository root in a checkout, ``lib/`` in the installed extension); a folder that does
    not exist when the engine's presets are missing."""
    return (presets_dir() or HERE) / "rigs"


def user_preset_dir(create=False):
    """The user's rig-preset folder (the extension's user folder; Blender asked at call time)."""
    import bpy
    pkg = (__package__ or "addon").rpartition(".")[0] or "addon"
    try:
        path = bpy.utils.extension_path_user(pkg, path="rig_presets", create=create)
    except (ValueError, AttributeError, RuntimeError):
        path = bpy.utils.user_resource("SCRIPTS", path=str(Path("presets") / "video_mocap" / "rigs"), create=create)
    return Path(path)


def list_presets():
    """{preset id: (display name, description, path)}: shipped presets, then the user's (only
    the shipped ones outside Blender)."""
    out = {}
    try:
        folders = (builtin_preset_dir(), user_preset_dir())
    except ImportError:
        folders = (builtin_preset_dir(),)
    for folder in folders:
        if folder.is_dir():
            for f in sorted(folder.glob("*.json")):
                try:
                    d = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                out[f.stem] = (d.get("name", f.stem), d.get("description", ""), f)
    return out


def load_preset(preset):
    """A preset dict from a dict, a preset id (file stem) or a path to a JSON file."""
    if isinstance(preset, dict):
        d = dict(preset)
    else:
        p = Path(str(preset))
        if not p.suffix:
            known = list_presets()
            if str(preset) not in known:
                raise ValueError(f"unknown rig preset {preset!r} (known: {', '.join(sorted(known))})")
            p = known[str(preset)][2]
        d = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(d.get("bones"), dict) or not d["bones"]:
        raise ValueError("a rig preset needs a non-empty 'bones' map (target bone → SMPL joint)")
    for b, j in d["bones"].items():
        if j not in JOINT_INDEX:
            raise ValueError(f"preset maps bone {b!r} to unknown SMPL joint {j!r}")
    return d


def save_preset(path, name, bones, rules=None, root_bone=None, description=""):
    d = {"name": name, "description": description, "bones": dict(bones)}
    if rules:
        d["rules"] = dict(rules)
    if root_bone:
        d["root_bone"] = root_bone
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
    return path
