"""Bone-name matching: a preset's bone names on the user's armature, the best preset for a rig,
and a suggested map from bone names and the hierarchy.

No bpy: works on any armature-like object (``.data.bones`` with ``name``, ``parent_recursive``,
``children``). Names match exactly, else case-insensitively without a namespace prefix
(``mixamorig1:Hips`` finds ``mixamorig:Hips``).
"""
import re

from .presets import list_presets, load_preset

SKIP_PREFIXES = ("DEF-", "ORG-", "MCH-", "VIS", "WGT-")


def _plain(name):
    return name.split(":")[-1].lower()


def resolve_name(name, bone_names):
    """The armature's bone for a preset bone name, or None (exact, then namespace/case-free)."""
    if name in bone_names:
        return name
    key = _plain(name)
    for b in bone_names:
        if _plain(b) == key:
            return b
    return None


def resolve_preset(preset, armature):
    """(bones {actual name: joint}, rules {actual name: rule}, root bone or None, missing names)."""
    names = [b.name for b in armature.data.bones]
    bones, rules, missing = {}, {}, []
    for b, j in preset["bones"].items():
        r = resolve_name(b, names)
        if r is None:
            missing.append(b)
            continue
        bones[r] = j
        rule = (preset.get("rules") or {}).get(b)
        if rule:
            rules[r] = rule
    root = preset.get("root_bone")
    root = resolve_name(root, names) if root else None
    return bones, rules, root, missing


def preset_score(preset, armature):
    """Fraction of the preset's bones the armature has."""
    bones, _, _, missing = resolve_preset(preset, armature)
    return len(bones) / max(len(bones) + len(missing), 1)


def detect_preset(armature, min_score=0.8):
    """The best-matching preset id for ``armature`` (None below ``min_score``)."""
    best, best_score = None, 0.0
    for pid, (_, _, path) in list_presets().items():
        try:
            s = preset_score(load_preset(path), armature)
        except ValueError:
            continue
        if s > best_score + 1e-9 or (abs(s - best_score) < 1e-9 and best and
                                      len(load_preset(path)["bones"]) > len(load_preset(best)["bones"])):
            best, best_score = pid, s
    return best if best_score >= min_score else None


# ---------------------------------------------------------------------- suggested map
_SIDE_PATTERNS = (
    (re.compile(r"^(left)[_\-. ]?(.+)$"), "left"), (re.compile(r"^(right)[_\-. ]?(.+)$"), "right"),
    (re.compile(r"^(.+?)[_\-. ]?(left)$"), "left"), (re.compile(r"^(.+?)[_\-. ]?(right)$"), "right"),
    (re.compile(r"^(.+?)[_\-.](l)$"), "left"), (re.compile(r"^(.+?)[_\-.](r)$"), "right"),
    (re.compile(r"^(l)[_\-.](.+)$"), "left"), (re.compile(r"^(r)[_\-.](.+)$"), "right"),
)
_JOINT_PATTERNS = {  # core bone name (no side, lower case) → SMPL joint stem
    "pelvis": r"(torso|hips?|pelvis)",
    "hip": r"(up_?leg|thigh(_fk)?|upper_?leg0?1?)",
    "knee": r"(leg|calf|shin(_fk)?|lower_?leg0?1?|knee)",
    "ankle": r"(foot(_fk)?|ankle)",
    "foot": r"(toe_?base|toes?(_fk)?|ball)",
    "collar": r"(shoulder|clavicle)",
    "shoulder": r"(arm|upper_?arm(_fk)?0?1?)",
    "elbow": r"(fore_?arm(_fk)?|lower_?arm0?1?|elbow)",
    "wrist": r"(hand(_fk)?|wrist)",
    "neck": r"(neck(_?0?1)?)",
    "head": r"(head)",
}
_EXCLUDE = re.compile(r"(^|[_.\-])(ik|twist|parent|master|tweak|pole|target|end|nub|roll|helper)([_.\-]|\d|$)")


def _split_side(name):
    n = _plain(name)
    for pat, side in _SIDE_PATTERNS:
        m = pat.match(n)
        if m:
            core = m.group(2) if m.group(1) in ("left", "right", "l", "r") else m.group(1)
            return side, core.strip("_-. ")
    return None, n


def suggest_mapping(armature):
    """Guess {target bone: SMPL joint} from bone names and the hierarchy (a starting point)."""
    bones = armature.data.bones
    cand = {}
    for b in bones:
        if b.name.startswith(SKIP_PREFIXES) or _EXCLUDE.search(_plain(b.name)):
            continue
        side, core = _split_side(b.name)
        for stem, pat in _JOINT_PATTERNS.items():
            if re.fullmatch(pat, core):
                joint = stem if stem in ("pelvis", "neck", "head") else None
                if joint is None:
                    if side is None:
                        continue
                    joint = f"{side}_{stem}"
                elif side is not None:
                    continue
                depth = len(b.parent_recursive)
                if joint not in cand or depth < cand[joint][0]:
                    cand[joint] = (depth, b.name)
                break
    if "pelvis" not in cand:
        for b in bones:
            if _plain(b.name) == "root" and b.children:
                cand["pelvis"] = (0, b.name)
                break
    out = {name: joint for joint, (_, name) in cand.items()}
    # spine: the bones between the pelvis and the neck, spread over spine1..3
    if "pelvis" in cand and "neck" in cand:
        neck = bones[cand["neck"][1]]
        chain = [p for p in neck.parent_recursive if p.name != cand["pelvis"][1]]
        chain = [p for p in chain if not p.name.startswith(SKIP_PREFIXES)]
        pel = bones[cand["pelvis"][1]]
        chain = [p for p in reversed(chain) if pel in p.parent_recursive]
        if chain:
            picks = {"spine1": chain[0], "spine3": chain[-1]}
            if len(chain) >= 3:
                picks["spine2"] = chain[len(chain) // 2]
            for joint, b in picks.items():
                out.setdefault(b.name, joint)
    return out
