#!/usr/bin/env python3
"""Build the installable extension zips: one per Blender target and platform, its run-time wheels inside.

    python build_extension.py                          # every target: 4.2-5.0 (Python 3.11) and 5.1-5.3 (3.13)
    python build_extension.py --blender 4.2-5.0        # one target (repeatable), or the one a version needs: 4.5, 5.2
    python build_extension.py --gpu                    # ... plus the linux-x64-cuda12, windows-x64-cuda12 variants
    python build_extension.py --platform linux-x64     # only some platforms (repeatable; a CUDA variant by its name)
    python build_extension.py --offline DIR            # wheels from DIR only (no registry), e.g. a copied .whl/
    python build_extension.py --requirements 5.1+      # print a target's pinned wheels (scripts/test_stacks.sh)
    python build_extension.py --pose-bundle FILE       # only write the pose .task bundle (mediapipe 1.x tests)

Targets: Blender 4.2 to 5.0 embed Python 3.11 (mediapipe 0.10.21, numpy 1.x or 2.x is Blender's);
5.1 to 5.3 embed Python 3.13, for which mediapipe 0.10.21 has no wheel: their zips ship mediapipe
1.2.x, which has no pose models, so build_extension.py makes the PoseLandmarker ``.task`` bundle from
mediapipe 0.10.21's own Apache-2.0 models (downloaded wheel, with its licence) and ships it as
``lib/engine/data/mediapipe/`` (``engine.observe.landmarker.find_pose_bundle``).

Each zip holds the manifest (a copy with ``platforms``, ``wheels``, ``blender_version_min`` and
``blender_version_max`` filled in for that target and platform), the add-on package (``addon/*`` with its ``ui/``, ``scene/`` and ``retarget/`` sub-packages at the zip root), ``lib/engine/``
(code, the open body, shipped weights) and ``lib/presets/`` (``addon/enginepath.py`` puts only
``lib/`` on sys.path), ``LICENSE`` and ``wheels/``. Blender installs
the wheels into its extensions site-packages when the extension is enabled; numpy is Blender's own
and never shipped. Every zip is built and then validated by Blender's own extension tool
(``bl_pkg/cli/blender_ext.py`` from the ``bpy`` wheel or a Blender install; it is called, not
copied), checked for what must not ship (torch, tests, training code, caches), and measured.

Wheels are downloaded once into a cache (``.whl/<platform>/`` for Python 3.11,
``.whl/<platform>-cp313/`` for 3.13; gitignored) with ``pip download --only-binary=:all: --no-deps
--python-version X --platform ...`` and reused; zips go to ``dist/`` (gitignored).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
WHEEL_CACHE = Path(os.environ.get("MOCAP_WHEEL_CACHE", ROOT / ".whl"))

# Blender 4.2 to 5.0 embed Python 3.11; 5.1 moved to 3.13, where cp311 wheels cannot load.
PYTHON_VERSION = "3.11"
BLENDER_VERSION_MAX = "5.1.0"  # exclusive
MACOS_MIN = (13, 0)  # opencv-python-headless 4.11+ and onnxruntime 1.20-1.23 ship macOS 13 wheels at best
GLIBC_MAX = 28  # Blender 4.2+ on Linux needs glibc 2.28: wheels may need up to manylinux_2_28

# What the add-on needs at run time, pinned as in requirements.txt (numpy<2 compatible builds).
# mediapipe's jax/jaxlib, sounddevice and sentencepiece are not needed by the pose solution;
# ``import mediapipe`` does import matplotlib (drawing utils), so matplotlib and its own
# dependencies ship. onnxruntime's coloredlogs/sympy are only used by its tools.
WHEELS = (
    ("onnxruntime", "1.20.1"),
    ("mediapipe", "0.10.21"),
    ("opencv-python-headless", "4.11.0.86"),
    ("scipy", "1.13.1"),
    ("protobuf", "4.25.8"),
    ("absl-py", "2.1.0"),
    ("attrs", "24.2.0"),
    ("flatbuffers", "24.3.25"),
    ("matplotlib", "3.9.2"),
    ("contourpy", "1.3.3"),
    ("cycler", "0.12.1"),
    ("fonttools", "4.68.0"),
    ("kiwisolver", "1.5.1"),
    ("packaging", "26.3"),
    ("pillow", "13.0.0"),
    ("pyparsing", "3.3.3"),
    ("python-dateutil", "4.0.0"),
    ("six", "1.17.0"),
    ("tqdm", "4.67.1"),
    ("threadpoolctl", "3.5.0"),
)
# CUDA variants swap onnxruntime for onnxruntime-gpu (same `onnxruntime` package inside; the two
# must never be installed together). PyPI's onnxruntime-gpu 1.20.x is built for CUDA 12.x and
# cuDNN 9.x; 1.20.1 was not published for GPU, 1.20.2 is the matching patch release.
ONNXRUNTIME_GPU = ("onnxruntime-gpu", "1.20.2")

# Blender 5.1+ (Python 3.13; numpy 2 is Blender's own). mediapipe 1.2.2 is a py3-none wheel with
# the Tasks API only (C bindings: no protobuf, no solutions, no models); it imports certifi, and
# cv2 + matplotlib (drawing utils) from ``mediapipe.tasks.python.vision``. onnxruntime 1.23.2 is the
# newest with a macOS 13 arm64 wheel (1.24+ need macOS 14); onnxruntime-gpu 1.23.2: CUDA 12, cuDNN 9.
WHEELS_CP313 = (
    ("onnxruntime", "1.23.2"),
    ("mediapipe", "1.2.2"),
    ("opencv-python-headless", "4.13.0.92"),
    ("scipy", "1.17.1"),
    ("absl-py", "2.3.1"),
    ("certifi", "2025.11.12"),
    ("flatbuffers", "25.9.23"),
    ("matplotlib", "3.10.8"),
    ("contourpy", "1.3.3"),
    ("cycler", "0.12.1"),
    ("fonttools", "4.68.0"),
    ("kiwisolver", "1.5.1"),
    ("packaging", "26.3"),
    ("pillow", "13.0.0"),
    ("pyparsing", "3.3.3"),
    ("python-dateutil", "4.0.0"),
    ("six", "1.17.0"),
    ("tqdm", "4.67.1"),
    ("threadpoolctl", "3.5.0"),
)
ONNXRUNTIME_GPU_CP313 = ("onnxruntime-gpu", "1.23.2")
# The pose models the 5.1+ zips need come from this wheel (any platform's: the models are the same).
POSE_MODELS_WHEEL = ("mediapipe", "0.10.21")
POSE_BUNDLE_DIR = "lib/engine/data/mediapipe"  # engine.observe.landmarker.SHIPPED_POSE_BUNDLE's folder in a zip


@dataclass(frozen=True)
class Target:
    """A range of Blender versions that share one embedded Python, and what its zips ship."""
    name: str              # --blender value, in the zip name as blender<name>
    python: str            # Blender's embedded Python
    blender_min: str       # manifest blender_version_min
    blender_max: str       # manifest blender_version_max (exclusive)
    versions: tuple        # the Blender releases it covers (--blender 4.5 picks this target)
    wheels: tuple
    gpu_wheel: tuple
    platforms: tuple       # Blender platforms it has zips for
    pose_bundle: bool = False  # ship the .task bundle made from mediapipe 0.10.21's models

    @property
    def cp(self):
        return "cp" + self.python.replace(".", "")


TARGETS = {t.name: t for t in (
    Target("4.2-5.0", "3.11", "4.2.0", "5.1.0", ("4.2", "4.3", "4.4", "4.5", "5.0"), WHEELS,
           ONNXRUNTIME_GPU, ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")),
    # Blender 5.0 dropped Intel Macs. 5.4.0 is exclusive: the newest release known to embed 3.13 is 5.3.
    Target("5.1-5.3", "3.13", "5.1.0", "5.4.0", ("5.1", "5.2", "5.3"), WHEELS_CP313,
           ONNXRUNTIME_GPU_CP313, ("linux-x64", "windows-x64", "macos-arm64"), pose_bundle=True),
)}
TARGET_ALIASES = {"5.1+": "5.1-5.3", "4.2+": "4.2-5.0"}

PLATFORMS = {  # Blender platform -> pip --platform tags (pip picks the best one it finds)
    "linux-x64": [f"manylinux_2_{v}_x86_64" for v in range(GLIBC_MAX, 16, -1)]
                 + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_%d_%d_arm64" % MACOS_MIN],  # pip adds older macOS and universal2
    "macos-x64": ["macosx_%d_%d_x86_64" % MACOS_MIN],
}
# Content of the zip besides the add-on package and the wheels: repo path -> path in the zip.
LIB = "lib"  # addon/enginepath.py looks for the engine here
PAYLOAD = {"engine": f"{LIB}/engine", "presets": f"{LIB}/presets", "LICENSE": "LICENSE"}
# Never in a zip (also listed in the manifest's [build] paths_exclude_pattern, Blender's filter).
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.part.npz", ".*")
FORBIDDEN = re.compile(r"(^|/)(tests?|training|scripts|__pycache__|\.venv|cache)/|(^|/)build_extension\.py$|\.pyc$"
                       r"|(^|/)torch[-_/]|\.pt$|\.pth$|\.ckpt$", re.IGNORECASE)


@dataclass(frozen=True)
class Variant:
    name: str          # zip suffix and --platform value
    platform: str      # Blender platform
    gpu: bool = False
    target: Target = TARGETS["4.2-5.0"]

    @property
    def wheels(self):
        gpu = self.target.gpu_wheel
        return tuple(gpu if self.gpu and n == "onnxruntime" else (n, v) for n, v in self.target.wheels)

    @property
    def python(self):
        return self.target.python


GPU_PLATFORMS = ("linux-x64", "windows-x64")  # onnxruntime-gpu (CUDA 12) exists only there


def variants_for(target):
    """{--platform name: Variant} of a target: one per platform, plus -cuda12 ones."""
    out = {p: Variant(p, p, target=target) for p in target.platforms}
    out.update({f"{p}-cuda12": Variant(f"{p}-cuda12", p, gpu=True, target=target)
                for p in GPU_PLATFORMS if p in target.platforms})
    return out


VARIANTS = variants_for(TARGETS["4.2-5.0"])
DEFAULT_VARIANTS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")
GPU_VARIANTS = ("linux-x64-cuda12", "windows-x64-cuda12")
ALL_VARIANT_NAMES = sorted({n for t in TARGETS.values() for n in variants_for(t)})


def resolve_target(spec):
    """The Target for ``--blender SPEC``: a target name, an alias (5.1+) or a Blender version
    (4.5, 5.2, 5.2.1); BuildError when none covers it."""
    spec = TARGET_ALIASES.get(spec, spec)
    if spec in TARGETS:
        return TARGETS[spec]
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", spec)
    for t in TARGETS.values():
        if m and f"{m.group(1)}.{m.group(2)}" in t.versions:
            return t
    raise BuildError(f"--blender {spec}: not a supported Blender; one of {target_help()}")


def target_help():
    return "; ".join(f"{n} (Blender {', '.join(t.versions)}, Python {t.python})" for n, t in TARGETS.items()) \
        + "; 5.1+ = 5.1-5.3"


class BuildError(RuntimeError):
    pass


# ------------------------------------------------------------------ wheel file names and tags
def normalize(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_wheel(filename):
    """(name, version, python tags, abi tags, platform tags) of a wheel file name, or None."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    name, version, py, abi, plat = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
    return normalize(name), version, py.split("."), abi.split("."), plat.split(".")


def _python_ok(py_tags, abi_tags, python=PYTHON_VERSION):
    major, minor = (int(x) for x in python.split("."))
    cp = f"cp{major}{minor}"
    for abi in abi_tags:
        if abi == cp and cp in py_tags:
            return True
        if abi == "abi3" and any(re.fullmatch(r"cp3(\d+)", t) and int(t[3:]) <= minor for t in py_tags):
            return True
        if abi == "none" and any(t in (cp, f"py{major}", f"py{major}{minor}") for t in py_tags):
            return True
    return False


def platform_tag_score(tag, platform):
    """How well a wheel platform tag fits a Blender platform: None when it does not, else a
    sortable score (specific builds before ``any``, newest allowed OS baseline first)."""
    if tag == "any":
        return (0,)
    if platform == "linux-x64":
        m = re.fullmatch(r"manylinux_2_(\d+)_x86_64", tag)
        legacy = {"manylinux2014_x86_64": 17, "manylinux2010_x86_64": 12, "manylinux1_x86_64": 5}
        glibc = int(m.group(1)) if m else legacy.get(tag)
        return (1, glibc) if glibc is not None and glibc <= GLIBC_MAX else None
    if platform == "windows-x64":
        return (1,) if tag == "win_amd64" else None
    m = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
    if platform.startswith("macos-") and m:
        arch = m.group(3)
        archs = {"macos-arm64": ("arm64", "universal2"), "macos-x64": ("x86_64", "universal2", "intel")}[platform]
        ver = (int(m.group(1)), int(m.group(2)))
        if arch in archs and ver <= MACOS_MIN:
            return (1, arch != "universal2", ver)  # a thin build is smaller than universal2
    return None


def wheel_score(filename, name, version, platform, python=PYTHON_VERSION):
    info = parse_wheel(filename)
    if info is None or info[0] != normalize(name) or info[1] != version or not _python_ok(info[2], info[3], python):
        return None
    scores = [s for s in (platform_tag_score(t, platform) for t in info[4]) if s is not None]
    return max(scores) if scores else None


def select_wheels(dirs, variant):
    """The best wheel file for each requirement of ``variant`` among ``dirs`` (searched
    recursively): ({name: Path}, [missing 'name==version'])."""
    files = []
    for d in dirs:
        d = Path(d)
        if d.is_dir():
            files += sorted(p for p in d.rglob("*.whl") if p.is_file())
    chosen, missing = {}, []
    for name, version in variant.wheels:
        best = None
        for p in files:
            s = wheel_score(p.name, name, version, variant.platform, variant.python)
            if s is not None and (best is None or s > best[0]):
                best = (s, p)
        if best is None:
            missing.append(f"{name}=={version}")
        else:
            chosen[name] = best[1]
    return chosen, missing


def download_wheels(requirements, platform, dest, log=print, python=PYTHON_VERSION):
    """pip download (binary only, no dependencies) for Blender's Python on ``platform``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", "--dest", str(dest),
           "--progress-bar", "off", "--quiet"]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    log(f"  pip download for {platform} (Python {python}): {' '.join(requirements)}")
    r = subprocess.run(cmd + list(requirements), capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"pip download failed for {platform}:\n{r.stdout}{r.stderr}")


def cache_folder(variant):
    """The cache folder of a variant's wheels: the platform's, with the CPython tag past 3.11."""
    return variant.platform if variant.python == PYTHON_VERSION else f"{variant.platform}-{variant.target.cp}"


def gather_wheels(variant, offline=None, cache=WHEEL_CACHE, log=print):
    """Wheel files for ``variant``: from ``offline`` only, else from the cache, downloading what
    the cache lacks."""
    if offline is not None:
        if not Path(offline).is_dir():
            raise BuildError(f"--offline {offline}: no such folder")
        chosen, missing = select_wheels([offline], variant)
        if missing:
            raise BuildError(f"--offline {offline}: no wheel for {variant.platform} ({variant.target.cp}) of "
                             + ", ".join(missing) + ". Run `python build_extension.py` on a machine that can reach "
                             "the registry and copy its .whl/ folder.")
        return chosen
    # One folder per platform holds exactly what pip picked for it (a thin macOS build where
    # there is one, rather than a universal2 wheel that another platform needed).
    folder = Path(cache) / cache_folder(variant)
    chosen, missing = select_wheels([folder], variant)
    if missing:
        download_wheels(missing, variant.platform, folder, log, python=variant.python)
        chosen, missing = select_wheels([folder], variant)
        if missing:
            raise BuildError(f"pip found no usable wheel for {variant.platform}: {', '.join(missing)}")
    return chosen


# ------------------------------------------------------------------ manifest
def manifest_for(variant, wheel_names, source=ROOT / "blender_manifest.toml"):
    """The repository manifest with this variant's ``platforms``, ``wheels`` and its target's
    ``blender_version_min``/``blender_version_max`` as top-level keys (before the first table);
    the repository's own ``blender_version_min`` (the oldest supported) is replaced."""
    text = source.read_text()
    data = tomllib.loads(text)
    t = variant.target
    extra = ["", f"# Generated by build_extension.py for Blender {t.name} ({variant.name}): wheels for Blender's Python {t.python}.",
             f'blender_version_min = "{t.blender_min}"',
             f'blender_version_max = "{t.blender_max}"  # exclusive: Blender {", ".join(t.versions)}',
             f'platforms = ["{variant.platform}"]', "wheels = ["]
    extra += [f'  "./wheels/{w}",' for w in sorted(wheel_names)]
    extra += ["]"]
    for key in ("platforms", "wheels", "blender_version_max"):
        if key in data:
            raise BuildError(f"blender_manifest.toml must not set {key!r}: build_extension.py fills it per target and platform")
    lines = [ln for ln in text.splitlines() if not re.match(r"blender_version_min\s*=", ln)]
    at = next((i for i, ln in enumerate(lines) if re.match(r"\s*\[", ln)), len(lines))
    out = "\n".join(lines[:at] + extra + [""] + lines[at:]) + "\n"
    tomllib.loads(out)  # still valid TOML
    return out


def zip_name(variant, manifest=None):
    manifest = manifest or tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    return (f"{manifest['id']}-{manifest['version']}-blender{variant.target.name}-"
            f"{variant.name.replace('-', '_', 1)}.zip")


# ------------------------------------------------------------------ the pose bundle (mediapipe 1.x)
def pose_models_wheel(offline=None, cache=WHEEL_CACHE, log=print):
    """mediapipe 0.10.21's wheel (whose models the bundle is made of): from ``offline`` (any
    platform's), else the linux-x64 cache, downloading it when absent."""
    probe = Variant("linux-x64", "linux-x64", target=TARGETS["4.2-5.0"])
    name, version = POSE_MODELS_WHEEL
    if offline is not None:
        for platform in ("linux-x64", "windows-x64", "macos-arm64", "macos-x64"):
            hits = [p for p in Path(offline).rglob("*.whl") if wheel_score(p.name, name, version, platform)]
            if hits:
                return sorted(hits)[0]
        raise BuildError(f"--offline {offline}: no {name}=={version} wheel (its pose models go into the "
                         "Blender 5.1+ zips)")
    folder = Path(cache) / cache_folder(probe)
    for attempt in range(2):
        hits = sorted(p for p in folder.glob("*.whl") if wheel_score(p.name, name, version, "linux-x64"))
        if hits:
            return hits[-1]
        if attempt == 0:
            download_wheels([f"{name}=={version}"], "linux-x64", folder, log)
    raise BuildError(f"pip found no {name}=={version} wheel for linux-x64")


def make_pose_bundle(wheel, dest_dir):
    """Write ``pose_landmarker_full.task`` (made by engine.observe.landmarker.build_pose_landmarker_bundle
    from the wheel's two pose models) and the wheel's own Apache-2.0 ``LICENSE`` into ``dest_dir``;
    returns the bundle's path. Needs mediapipe 0.10.x installed (its metadata writer)."""
    sys.path.insert(0, str(ROOT))
    try:
        from engine.observe.landmarker import POSE_BUNDLE_NAME, WHEEL_POSE_MODELS, build_pose_landmarker_bundle
    finally:
        sys.path.remove(str(ROOT))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        models = [z.read(f"mediapipe/{m}") for m in WHEEL_POSE_MODELS]
        lic = [n for n in names if re.fullmatch(r"mediapipe-[^/]+\.dist-info/LICENSE(\.txt)?", n)]
        if not lic:
            raise BuildError(f"{Path(wheel).name} has no LICENSE file")
        licence = z.read(lic[0])
    if b"Apache License" not in licence:
        raise BuildError(f"{Path(wheel).name}: LICENSE is not the Apache-2.0 licence")
    try:
        bundle = build_pose_landmarker_bundle(*models)
    except ImportError as exc:
        raise BuildError(f"the pose bundle needs mediapipe 0.10.x's metadata writer in this Python ({exc}); "
                         "run build_extension.py from the project's .venv") from exc
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    (dest_dir / POSE_BUNDLE_NAME).write_bytes(bundle)
    (dest_dir / "LICENSE").write_bytes(licence)
    (dest_dir / "README.txt").write_text(
        f"{POSE_BUNDLE_NAME}: MediaPipe's pose_detection and pose_landmark_full models from the "
        f"{Path(wheel).name} wheel, with input normalisation metadata added, packed as a Tasks bundle by "
        "build_extension.py (engine.observe.landmarker.build_pose_landmarker_bundle). Licence: Apache-2.0, LICENSE beside this file.\n")
    return dest_dir / POSE_BUNDLE_NAME


# ------------------------------------------------------------------ Blender's extension tool
def find_blender_ext():
    """Path of Blender's ``blender_ext.py`` (env BLENDER_EXT_PY, the installed ``bpy`` wheel, or a
    Blender found on PATH); None when there is none."""
    env = os.environ.get("BLENDER_EXT_PY")
    if env:
        return Path(env) if Path(env).is_file() else None
    import importlib.util
    spec = importlib.util.find_spec("bpy")
    roots = list(spec.submodule_search_locations or []) if spec else []
    blender = shutil.which("blender")
    if blender:
        roots.append(str(Path(blender).resolve().parent))
    for r in roots:
        hits = sorted(Path(r).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    return None


def blender_ext(tool, *args):
    r = subprocess.run([sys.executable, str(tool), *map(str, args)], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


# ------------------------------------------------------------------ staging, build, checks
def _place(src, dst):
    try:
        os.link(src, dst)  # wheels are large: hard links when the file system allows
    except OSError:
        shutil.copy2(src, dst)


def stage(variant, wheels, stage_dir, pose_bundle=None):
    """Lay the extension out as it is installed: add-on package at the top, engine in lib/
    (with the pose bundle's folder, ``pose_bundle``, as lib/engine/data/mediapipe/ when given)."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ROOT / "addon", stage_dir, ignore=IGNORE)
    for rel, dst in PAYLOAD.items():
        src, dst = ROOT / rel, stage_dir / dst
        if src.is_dir():
            shutil.copytree(src, dst, ignore=IGNORE)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    if pose_bundle is not None:
        shutil.copytree(Path(pose_bundle).parent, stage_dir / POSE_BUNDLE_DIR)
    (stage_dir / "wheels").mkdir()
    for p in wheels.values():
        _place(p, stage_dir / "wheels" / p.name)
    (stage_dir / "blender_manifest.toml").write_text(manifest_for(variant, [p.name for p in wheels.values()]))
    return stage_dir


def check_zip(path, variant, wheels):
    """What must (not) be in the zip; returns the member names."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    bad = [n for n in names if FORBIDDEN.search(n) and not n.startswith("wheels/")]
    bad += [n for n in names if n.startswith("wheels/") and normalize(n[7:].split("-")[0]) in ("torch", "numpy", "jax", "jaxlib")]
    if bad:
        raise BuildError(f"{path.name} contains what must not ship: {bad[:10]}")
    need = ["__init__.py", "enginepath.py", "blender_manifest.toml", f"{LIB}/engine/__init__.py",
            f"{LIB}/engine/pipeline.py", f"{LIB}/engine/data/open_body.npz",
            f"{LIB}/engine/data/temporal/temporal.onnx", f"{LIB}/engine/data/temporal/prvipe.onnx",
            f"{LIB}/engine/data/temporal/d2a.onnx", "LICENSE"]
    need += [p.relative_to(ROOT / "addon").as_posix() for p in (ROOT / "addon").rglob("*.py")
             if "__pycache__" not in p.parts]  # the add-on with its sub-packages (ui/, scene/, retarget/)
    need += [f"wheels/{p.name}" for p in wheels.values()]
    if variant.target.pose_bundle:
        need += [f"{POSE_BUNDLE_DIR}/pose_landmarker_full.task", f"{POSE_BUNDLE_DIR}/LICENSE"]
    need += [f"{LIB}/presets/{p.relative_to(ROOT / 'presets').as_posix()}" for p in (ROOT / "presets").rglob("*.json")]
    if any(n.startswith(("engine/", "presets/")) for n in names):
        raise BuildError(f"{path.name}: engine/presets must be under {LIB}/ (addon/enginepath.py)")
    missing = [n for n in need if n not in names]
    if missing:
        raise BuildError(f"{path.name} lacks {missing}")
    if manifest.get("platforms") != [variant.platform] or sorted(manifest.get("wheels", [])) != \
            sorted(f"./wheels/{p.name}" for p in wheels.values()):
        raise BuildError(f"{path.name}: manifest platforms/wheels do not match the bundled wheels")
    t = variant.target
    if (manifest.get("blender_version_min"), manifest.get("blender_version_max")) != (t.blender_min, t.blender_max):
        raise BuildError(f"{path.name}: manifest Blender range is not {t.blender_min}-{t.blender_max}")
    foreign = [n for n in names if n.startswith("wheels/") and re.search(r"-cp3\d+-", n) and f"-{t.cp}-" not in n
               and "-abi3-" not in n]
    if foreign:
        raise BuildError(f"{path.name}: wheels for another Python than {t.python}: {foreign}")
    return names


def size_report(path):
    """{'zip': bytes, 'wheels': {file: bytes}, 'extension': bytes (everything else, compressed)}."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    wheels = {i.filename[7:]: i.compress_size for i in infos if i.filename.startswith("wheels/")}
    rest = sum(i.compress_size for i in infos if not i.filename.startswith("wheels/"))
    return {"zip": path.stat().st_size, "wheels": wheels, "extension": rest}


def _mb(n):
    return f"{n / 1e6:7.1f} MB"


def format_report(reports):
    lines = []
    for name, r in reports.items():
        lines.append(f"{name}: {_mb(r['zip'])}  (extension code + data {_mb(r['extension']).strip()}, "
                     f"{len(r['wheels'])} wheels {_mb(sum(r['wheels'].values())).strip()})")
        for w, s in sorted(r["wheels"].items(), key=lambda kv: -kv[1]):
            lines.append(f"    {_mb(s)}  {w}")
    return "\n".join(lines)


@dataclass
class Result:
    variant: Variant
    zip: Path
    wheels: dict
    size: dict = field(default_factory=dict)
    validated: bool = False


def build_variant(variant, out=DIST, offline=None, cache=WHEEL_CACHE, validate=True, tool=None, log=print,
                  pose_bundle=None):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wheels = gather_wheels(variant, offline=offline, cache=cache, log=log)
    if variant.target.pose_bundle and pose_bundle is None:
        pose_bundle = make_pose_bundle(pose_models_wheel(offline, cache, log), out / ".pose-bundle")
    tool = tool or find_blender_ext()
    if tool is None:
        raise BuildError("Blender's extension tool (bl_pkg/cli/blender_ext.py) was not found: install the `bpy` "
                         "wheel (requirements-dev.txt), put `blender` on PATH or set BLENDER_EXT_PY")
    stage_root = out / f".stage-{variant.name}"
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    src = stage(variant, wheels, stage_root / manifest["id"], pose_bundle if variant.target.pose_bundle else None)
    path = out / zip_name(variant, manifest)
    try:
        rc, msg = blender_ext(tool, "build", "--source-dir", src, "--output-filepath", path)
        if rc != 0:
            raise BuildError(f"blender_ext.py build failed for {variant.name}:\n{msg}")
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    check_zip(path, variant, wheels)
    res = Result(variant, path, wheels, size_report(path))
    if validate:
        rc, msg = blender_ext(tool, "validate", path)
        if rc != 0 or "Success" not in msg:
            raise BuildError(f"Blender's validator rejected {path.name}:\n{msg}")
        res.validated = True
    log(f"  built {path.relative_to(out.parent) if out.parent in path.parents else path}"
        f"{' (validated by blender_ext.py)' if res.validated else ''}")
    return res


def build(names=DEFAULT_VARIANTS, out=DIST, offline=None, cache=WHEEL_CACHE, validate=True, log=print,
          targets=("4.2-5.0",)):
    """Build ``names`` (platform variants) for each of ``targets``; a name a target has no zip
    for (macos-x64 for 5.1+) is skipped for it, one no target has is an error."""
    results, bundle = [], None
    targets = [resolve_target(t) for t in targets]
    for n in names:
        if not any(n in variants_for(t) for t in targets):
            raise BuildError(f"unknown platform {n!r} for Blender {', '.join(t.name for t in targets)}; "
                             f"one of {', '.join(sorted({v for t in targets for v in variants_for(t)}))}")
    for t in targets:
        for n in names:
            variant = variants_for(t).get(n)
            if variant is None:
                continue
            log(f"Blender {t.name}, {n}:")
            if t.pose_bundle and bundle is None:
                bundle = make_pose_bundle(pose_models_wheel(offline, cache, log), Path(out) / ".pose-bundle")
            results.append(build_variant(variant, out=out, offline=offline, cache=cache, validate=validate,
                                         log=log, pose_bundle=bundle))
    if bundle is not None:
        shutil.rmtree(bundle.parent, ignore_errors=True)
    reports = {r.zip.name: r.size for r in results}
    (Path(out) / "sizes.json").write_text(json.dumps(reports, indent=1))
    (Path(out) / "sizes.txt").write_text(format_report(reports) + "\n")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blender", action="append", metavar="TARGET",
                    help=f"build only for these Blender targets (repeatable): {target_help()}; "
                         "or a Blender version (4.5, 5.2) for the target that covers it; default: every target")
    ap.add_argument("--platform", action="append", choices=ALL_VARIANT_NAMES, metavar="NAME",
                    help=f"build only these (repeatable): {', '.join(ALL_VARIANT_NAMES)} "
                         "(macos-x64 only for 4.2-5.0: Blender 5 has no Intel Mac build)")
    ap.add_argument("--gpu", action="store_true",
                    help="also build the onnxruntime-gpu (CUDA 12, cuDNN 9) variants for linux-x64 and windows-x64")
    ap.add_argument("--offline", metavar="DIR", type=Path,
                    help="take wheels from DIR only (searched recursively); never contact a registry")
    ap.add_argument("--wheel-cache", metavar="DIR", type=Path, default=WHEEL_CACHE,
                    help=f"download cache (default {WHEEL_CACHE.relative_to(ROOT) if ROOT in WHEEL_CACHE.parents else WHEEL_CACHE})")
    ap.add_argument("--out", metavar="DIR", type=Path, default=DIST, help="where the zips go (default dist/)")
    ap.add_argument("--no-validate", action="store_true", help="skip the validate step (Blender's builder still makes the zip)")
    ap.add_argument("--requirements", metavar="TARGET",
                    help="print the target's pinned run-time wheels as name==version lines, build nothing")
    ap.add_argument("--pose-bundle", metavar="FILE", type=Path,
                    help="only write the pose .task bundle (from mediapipe 0.10.21's models) to FILE, with its "
                         "LICENSE beside it")
    a = ap.parse_args(argv)
    names = list(a.platform or DEFAULT_VARIANTS)
    if a.gpu:
        names += [n for n in GPU_VARIANTS if n not in names]
    try:
        if a.requirements:
            print("\n".join(f"{n}=={v}" for n, v in resolve_target(a.requirements).wheels))
            return 0
        if a.pose_bundle:
            path = make_pose_bundle(pose_models_wheel(a.offline, a.wheel_cache), a.pose_bundle.parent)
            if path != a.pose_bundle:
                path.replace(a.pose_bundle)
            print(f"wrote {a.pose_bundle} ({a.pose_bundle.stat().st_size / 1e6:.1f} MB) and LICENSE beside it")
            return 0
        targets = [resolve_target(t).name for t in (a.blender or TARGETS)]
        results = build(names, out=a.out, offline=a.offline, cache=a.wheel_cache, validate=not a.no_validate,
                        targets=targets)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\nSizes (also in %s):" % (Path(a.out) / "sizes.txt"))
    print(format_report({r.zip.name: r.size for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
