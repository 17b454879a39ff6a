#!/usr/bin/env python3
"""Build the installable extension zips: one per platform, its run-time wheels inside.

    python build.py                          # linux-x64, windows-x64, macos-arm64, macos-x64
    python build.py --gpu                    # ... plus linux-x64-cuda12, windows-x64-cuda12
    python build.py --platform linux-x64     # only some (repeatable; a CUDA variant by its name)
    python build.py --offline DIR            # wheels from DIR only (no registry), e.g. a copied .whl/

Each zip holds the manifest (a copy with ``platforms``, ``wheels`` and ``blender_version_max``
filled in for that platform), the add-on package (``addon/*`` at the zip root), ``lib/engine/``
(code, the open body, shipped weights) and ``lib/presets/`` (``addon/enginepath.py`` puts only
``lib/`` on sys.path), ``LICENSE`` and ``wheels/``. Blender installs
the wheels into its extensions site-packages when the extension is enabled; numpy is Blender's own
and never shipped. Every zip is built and then validated by Blender's own extension tool
(``bl_pkg/cli/blender_ext.py`` from the ``bpy`` wheel or a Blender install; it is called, not
copied), checked for what must not ship (torch, tests, training code, caches), and measured.

Wheels are downloaded once into a cache (``.whl/<platform>/``, gitignored) with
``pip download --only-binary=:all: --no-deps --python-version 3.11 --platform ...`` and reused;
zips go to ``dist/`` (gitignored).
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

# Blender 4.2 to 5.0 embed Python 3.11; 5.1 moved to 3.13, where these cp311 wheels cannot load.
PYTHON_VERSION = "3.11"
BLENDER_VERSION_MAX = "5.1.0"  # exclusive
MACOS_MIN = (13, 0)  # opencv-python-headless 4.11 and onnxruntime 1.20 ship macOS 13 wheels only
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
)
# CUDA variants swap onnxruntime for onnxruntime-gpu (same `onnxruntime` package inside; the two
# must never be installed together). PyPI's onnxruntime-gpu 1.20.x is built for CUDA 12.x and
# cuDNN 9.x; 1.20.1 was not published for GPU, 1.20.2 is the matching patch release.
ONNXRUNTIME_GPU = ("onnxruntime-gpu", "1.20.2")

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
FORBIDDEN = re.compile(r"(^|/)(tests?|training|__pycache__|\.venv|cache)/|\.pyc$|(^|/)torch[-_/]|\.pt$|\.pth$|\.ckpt$",
                       re.IGNORECASE)


@dataclass(frozen=True)
class Variant:
    name: str          # zip suffix and --platform value
    platform: str      # Blender platform
    gpu: bool = False

    @property
    def wheels(self):
        return tuple(ONNXRUNTIME_GPU if self.gpu and n == "onnxruntime" else (n, v) for n, v in WHEELS)


VARIANTS = {v.name: v for v in (
    Variant("linux-x64", "linux-x64"), Variant("windows-x64", "windows-x64"),
    Variant("macos-arm64", "macos-arm64"), Variant("macos-x64", "macos-x64"),
    Variant("linux-x64-cuda12", "linux-x64", gpu=True), Variant("windows-x64-cuda12", "windows-x64", gpu=True),
)}
DEFAULT_VARIANTS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")
GPU_VARIANTS = ("linux-x64-cuda12", "windows-x64-cuda12")


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


def _python_ok(py_tags, abi_tags):
    major, minor = (int(x) for x in PYTHON_VERSION.split("."))
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


def wheel_score(filename, name, version, platform):
    info = parse_wheel(filename)
    if info is None or info[0] != normalize(name) or info[1] != version or not _python_ok(info[2], info[3]):
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
            s = wheel_score(p.name, name, version, variant.platform)
            if s is not None and (best is None or s > best[0]):
                best = (s, p)
        if best is None:
            missing.append(f"{name}=={version}")
        else:
            chosen[name] = best[1]
    return chosen, missing


def download_wheels(requirements, platform, dest, log=print):
    """pip download (binary only, no dependencies) for Blender's Python on ``platform``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", PYTHON_VERSION, "--implementation", "cp", "--dest", str(dest),
           "--progress-bar", "off", "--quiet"]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    log(f"  pip download for {platform}: {' '.join(requirements)}")
    r = subprocess.run(cmd + list(requirements), capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"pip download failed for {platform}:\n{r.stdout}{r.stderr}")


def gather_wheels(variant, offline=None, cache=WHEEL_CACHE, log=print):
    """Wheel files for ``variant``: from ``offline`` only, else from the cache, downloading what
    the cache lacks."""
    if offline is not None:
        if not Path(offline).is_dir():
            raise BuildError(f"--offline {offline}: no such folder")
        chosen, missing = select_wheels([offline], variant)
        if missing:
            raise BuildError(f"--offline {offline}: no wheel for {variant.platform} (cp311) of "
                             + ", ".join(missing) + ". Run `python build.py` on a machine that can reach "
                             "the registry and copy its .whl/ folder.")
        return chosen
    # One folder per platform holds exactly what pip picked for it (a thin macOS build where
    # there is one, rather than a universal2 wheel that another platform needed).
    folder = Path(cache) / variant.platform
    chosen, missing = select_wheels([folder], variant)
    if missing:
        download_wheels(missing, variant.platform, folder, log)
        chosen, missing = select_wheels([folder], variant)
        if missing:
            raise BuildError(f"pip found no usable wheel for {variant.platform}: {', '.join(missing)}")
    return chosen


# ------------------------------------------------------------------ manifest
def manifest_for(variant, wheel_names, source=ROOT / "blender_manifest.toml"):
    """The repository manifest with this variant's ``platforms``, ``wheels`` and
    ``blender_version_max`` added as top-level keys (before the first table)."""
    text = source.read_text()
    data = tomllib.loads(text)
    extra = ["", f"# Generated by build.py for {variant.name}: wheels for Blender's Python {PYTHON_VERSION}.",
             f'platforms = ["{variant.platform}"]', "wheels = ["]
    extra += [f'  "./wheels/{w}",' for w in sorted(wheel_names)]
    extra += ["]"]
    if "blender_version_max" not in data:
        extra += [f'blender_version_max = "{BLENDER_VERSION_MAX}"  # Blender {BLENDER_VERSION_MAX} uses Python 3.13']
    for key in ("platforms", "wheels"):
        if key in data:
            raise BuildError(f"blender_manifest.toml must not set {key!r}: build.py fills it per platform")
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if re.match(r"\s*\[", ln)), len(lines))
    out = "\n".join(lines[:at] + extra + [""] + lines[at:]) + "\n"
    tomllib.loads(out)  # still valid TOML
    return out


def zip_name(variant, manifest=None):
    manifest = manifest or tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    return f"{manifest['id']}-{manifest['version']}-{variant.name.replace('-', '_', 1)}.zip"


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


def stage(variant, wheels, stage_dir):
    """Lay the extension out as it is installed: add-on package at the top, engine in lib/."""
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
    need += [f"wheels/{p.name}" for p in wheels.values()]
    need += [f"{LIB}/presets/{p.relative_to(ROOT / 'presets').as_posix()}" for p in (ROOT / "presets").rglob("*.json")]
    if any(n.startswith(("engine/", "presets/")) for n in names):
        raise BuildError(f"{path.name}: engine/presets must be under {LIB}/ (addon/enginepath.py)")
    missing = [n for n in need if n not in names]
    if missing:
        raise BuildError(f"{path.name} lacks {missing}")
    if manifest.get("platforms") != [variant.platform] or sorted(manifest.get("wheels", [])) != \
            sorted(f"./wheels/{p.name}" for p in wheels.values()):
        raise BuildError(f"{path.name}: manifest platforms/wheels do not match the bundled wheels")
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


def build_variant(variant, out=DIST, offline=None, cache=WHEEL_CACHE, validate=True, tool=None, log=print):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wheels = gather_wheels(variant, offline=offline, cache=cache, log=log)
    tool = tool or find_blender_ext()
    if tool is None:
        raise BuildError("Blender's extension tool (bl_pkg/cli/blender_ext.py) was not found: install the `bpy` "
                         "wheel (requirements-dev.txt), put `blender` on PATH or set BLENDER_EXT_PY")
    stage_root = out / f".stage-{variant.name}"
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    src = stage(variant, wheels, stage_root / manifest["id"])
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


def build(names=DEFAULT_VARIANTS, out=DIST, offline=None, cache=WHEEL_CACHE, validate=True, log=print):
    results = []
    for n in names:
        if n not in VARIANTS:
            raise BuildError(f"unknown platform {n!r}; one of {', '.join(VARIANTS)}")
        log(f"{n}:")
        results.append(build_variant(VARIANTS[n], out=out, offline=offline, cache=cache, validate=validate, log=log))
    reports = {r.zip.name: r.size for r in results}
    (Path(out) / "sizes.json").write_text(json.dumps(reports, indent=1))
    (Path(out) / "sizes.txt").write_text(format_report(reports) + "\n")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--platform", action="append", choices=sorted(VARIANTS), metavar="NAME",
                    help=f"build only these (repeatable): {', '.join(VARIANTS)}")
    ap.add_argument("--gpu", action="store_true",
                    help="also build the onnxruntime-gpu (CUDA 12, cuDNN 9) variants for linux-x64 and windows-x64")
    ap.add_argument("--offline", metavar="DIR", type=Path,
                    help="take wheels from DIR only (searched recursively); never contact a registry")
    ap.add_argument("--wheel-cache", metavar="DIR", type=Path, default=WHEEL_CACHE,
                    help=f"download cache (default {WHEEL_CACHE.relative_to(ROOT) if ROOT in WHEEL_CACHE.parents else WHEEL_CACHE})")
    ap.add_argument("--out", metavar="DIR", type=Path, default=DIST, help="where the zips go (default dist/)")
    ap.add_argument("--no-validate", action="store_true", help="skip the validate step (Blender's builder still makes the zip)")
    a = ap.parse_args(argv)
    names = list(a.platform or DEFAULT_VARIANTS)
    if a.gpu:
        names += [n for n in GPU_VARIANTS if n not in names]
    try:
        results = build(names, out=a.out, offline=a.offline, cache=a.wheel_cache, validate=not a.no_validate)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    print("\nSizes (also in %s):" % (Path(a.out) / "sizes.txt"))
    print(format_report({r.zip.name: r.size for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
