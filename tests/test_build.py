"""build_extension.py: per-platform extension zips with bundled wheels, validated by Blender's own tool,
installed into bpy and used for a real Import Video with nothing but what the zip holds."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import DEMO_VIDEO, ROOT

import build_extension  # noqa: E402  (the repository's packager; conftest puts the root on sys.path)


# ------------------------------------------------------------------ fast checks (no network)
@pytest.mark.parametrize("filename, platform, ok", [
    ("mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl", "linux-x64", True),
    ("scipy-1.13.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "linux-x64", True),
    ("onnxruntime-1.20.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "linux-x64", True),
    ("foo-1.0-cp311-cp311-manylinux_2_34_x86_64.whl", "linux-x64", False),      # newer glibc than Blender's
    ("foo-1.0-cp311-cp311-manylinux_2_28_aarch64.whl", "linux-x64", False),
    ("foo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", "linux-x64", False),       # other Python
    ("opencv_python_headless-4.11.0.86-cp37-abi3-win_amd64.whl", "windows-x64", True),
    ("opencv_python_headless-4.11.0.86-cp37-abi3-win_amd64.whl", "linux-x64", False),
    ("onnxruntime-1.20.1-cp311-cp311-macosx_13_0_universal2.whl", "macos-arm64", True),
    ("onnxruntime-1.20.1-cp311-cp311-macosx_13_0_universal2.whl", "macos-x64", True),
    ("scipy-1.13.1-cp311-cp311-macosx_14_0_arm64.whl", "macos-arm64", False),    # above macOS 13
    ("scipy-1.13.1-cp311-cp311-macosx_12_0_arm64.whl", "macos-x64", False),
    ("tqdm-4.67.1-py3-none-any.whl", "macos-x64", True),
    ("six-1.17.0-py2.py3-none-any.whl", "windows-x64", True),
])
def test_wheel_fits_platform(filename, platform, ok):
    name, version = filename.split("-")[:2]
    assert (build_extension.wheel_score(filename, name, version, platform) is not None) == ok


def test_select_prefers_thin_builds_and_reports_missing(tmp_path):
    for f in ("mediapipe-0.10.21-cp311-cp311-macosx_11_0_universal2.whl",
              "mediapipe-0.10.21-cp311-cp311-macosx_11_0_x86_64.whl",
              "tqdm-4.67.1-py3-none-any.whl"):
        (tmp_path / f).write_bytes(b"")
    chosen, missing = build_extension.select_wheels([tmp_path], build_extension.VARIANTS["macos-x64"])
    assert chosen["mediapipe"].name.endswith("macosx_11_0_x86_64.whl")
    assert chosen["tqdm"].name == "tqdm-4.67.1-py3-none-any.whl"
    assert "onnxruntime==1.20.1" in missing and "scipy==1.13.1" in missing
    chosen, _ = build_extension.select_wheels([tmp_path], build_extension.VARIANTS["macos-arm64"])
    assert chosen["mediapipe"].name.endswith("universal2.whl")


def test_runtime_wheels_exclude_numpy_torch_jax_and_gpu_variant_swaps_onnxruntime():
    cpu = dict(build_extension.VARIANTS["linux-x64"].wheels)
    gpu = dict(build_extension.VARIANTS["windows-x64-cuda12"].wheels)
    assert not {"numpy", "torch", "jax", "jaxlib"} & set(cpu)  # numpy is Blender's own
    assert cpu["mediapipe"] == "0.10.21" and "onnxruntime-gpu" not in cpu
    assert "onnxruntime" not in gpu and gpu["onnxruntime-gpu"].startswith("1.20.")
    # the pins follow requirements.txt
    lines = (ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines())
    pins = dict(ln.split("==") for ln in lines if "==" in ln)
    for name, version in cpu.items():
        if name in pins:
            assert pins[name] == version, name


def test_manifest_copy_gets_platforms_wheels_and_max(tmp_path):
    text = build_extension.manifest_for(build_extension.VARIANTS["linux-x64"], ["b-1-py3-none-any.whl", "a-1-py3-none-any.whl"])
    m = tomllib.loads(text)
    repo = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert m["platforms"] == ["linux-x64"]
    assert m["wheels"] == ["./wheels/a-1-py3-none-any.whl", "./wheels/b-1-py3-none-any.whl"]
    assert m["blender_version_max"] == build_extension.BLENDER_VERSION_MAX and m["blender_version_min"] == "4.2.0"
    assert m["build"] == repo["build"] and m["permissions"] == repo["permissions"] and m["id"] == repo["id"]
    assert "platforms" not in repo and "wheels" not in repo  # the repo's manifest stays generic
    pats = repo["build"]["paths_exclude_pattern"]
    assert {"/tests/", "/training/", "/cache/", "__pycache__/"} <= set(pats)


# ------------------------------------------------------------------ Blender targets (4.2-5.0, 5.1+)
@pytest.mark.parametrize("spec, target", [
    ("4.2-5.0", "4.2-5.0"), ("4.2", "4.2-5.0"), ("4.5", "4.2-5.0"), ("4.5.15", "4.2-5.0"), ("5.0", "4.2-5.0"),
    ("5.1+", "5.1-5.3"), ("5.1", "5.1-5.3"), ("5.2", "5.1-5.3"), ("5.3.0", "5.1-5.3"), ("5.1-5.3", "5.1-5.3"),
    ("4.1", None), ("5.4", None), ("6.0", None), ("latest", None),
])
def test_blender_version_picks_its_target(spec, target):
    if target is None:
        with pytest.raises(build_extension.BuildError, match=f"--blender {spec}: not a supported Blender"):
            build_extension.resolve_target(spec)
    else:
        assert build_extension.resolve_target(spec).name == target


@pytest.mark.parametrize("filename, python, ok", [
    ("scipy-1.17.1-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "3.13", True),
    ("scipy-1.17.1-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "3.11", False),
    ("scipy-1.13.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.13", False),
    ("opencv_python_headless-4.13.0.92-cp37-abi3-manylinux_2_28_x86_64.whl", "3.13", True),
    ("mediapipe-1.2.2-py3-none-manylinux_2_28_x86_64.whl", "3.13", True),   # one wheel for every Python 3
    ("mediapipe-1.2.2-py3-none-manylinux_2_28_x86_64.whl", "3.11", True),
])
def test_wheel_fits_the_targets_python(filename, python, ok):
    name, version = filename.split("-")[:2]
    assert (build_extension.wheel_score(filename, name, version, "linux-x64", python) is not None) == ok


def test_targets_wheels_manifests_and_zip_names():
    old, new = build_extension.TARGETS["4.2-5.0"], build_extension.TARGETS["5.1-5.3"]
    assert (old.python, old.blender_min, old.blender_max) == ("3.11", "4.2.0", "5.1.0")
    assert (new.python, new.blender_min, new.blender_max) == ("3.13", "5.1.0", "5.4.0")
    assert old.blender_max == new.blender_min  # no gap, no overlap
    v = build_extension.variants_for(new)
    assert set(v) == {"linux-x64", "windows-x64", "macos-arm64", "linux-x64-cuda12", "windows-x64-cuda12"}
    cpu, gpu = dict(v["linux-x64"].wheels), dict(v["windows-x64-cuda12"].wheels)
    assert cpu["mediapipe"].startswith("1.2.") and not {"numpy", "torch", "jax", "jaxlib", "protobuf"} & set(cpu)
    assert "onnxruntime" not in gpu and gpu["onnxruntime-gpu"] == cpu["onnxruntime"]
    assert {"certifi", "matplotlib", "flatbuffers", "absl-py"} <= set(cpu)  # what mediapipe 1.x imports
    names = {build_extension.zip_name(x) for t in build_extension.TARGETS.values() for x in build_extension.variants_for(t).values()}
    assert len(names) == 11 and "video_mocap-0.1.0-blender5.1-5.3-macos_arm64.zip" in names
    m = tomllib.loads(build_extension.manifest_for(v["macos-arm64"], ["a-1-py3-none-any.whl"]))
    assert (m["blender_version_min"], m["blender_version_max"], m["platforms"]) == ("5.1.0", "5.4.0", ["macos-arm64"])
    # the add-on never goes online: the manifest asks for files only
    assert set(m["permissions"]) == {"files"}


def test_cli_lists_targets_and_rejects_unknown_ones_in_one_line(capsys):
    assert build_extension.main(["--requirements", "5.1+"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [f"{n}=={v}" for n, v in build_extension.TARGETS["5.1-5.3"].wheels]
    assert build_extension.main(["--blender", "6.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --blender 6.0: not a supported Blender; one of 4.2-5.0")
    with pytest.raises(build_extension.BuildError, match="unknown platform 'macos-x64' for Blender 5.1-5.3"):
        build_extension.build(["macos-x64"], targets=("5.1+",), log=lambda *a: None)
    r = subprocess.run([sys.executable, str(ROOT / "build_extension.py"), "--help"], capture_output=True, text=True)
    assert "4.2-5.0 (Blender 4.2, 4.3, 4.4, 4.5, 5.0, Python 3.11)" in " ".join(r.stdout.split())
    assert "5.1-5.3 (Blender 5.1, 5.2, 5.3, Python 3.13)" in " ".join(r.stdout.split())


def _fake_models_wheel(folder, licence=b"Apache License\nVersion 2.0, January 2004\n"):
    """A stand-in mediapipe 0.10.21 wheel holding the installed mediapipe's two pose models."""
    mp = pytest.importorskip("mediapipe")
    from engine.observe.landmarker import WHEEL_POSE_MODELS
    pkg = Path(mp.__file__).parent
    if not all((pkg / m).is_file() for m in WHEEL_POSE_MODELS):
        pytest.skip("this mediapipe ships no pose models (1.x)")
    wheel = folder / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for m in WHEEL_POSE_MODELS:
            z.writestr(f"mediapipe/{m}", (pkg / m).read_bytes())
        z.writestr("mediapipe-0.10.21.dist-info/LICENSE", licence)
    return wheel


def test_pose_bundle_from_the_wheel_with_its_licence(tmp_path):
    import io
    from engine.observe import build_pose_landmarker_bundle, pose_landmarker_bundle
    wheel = _fake_models_wheel(tmp_path)
    assert build_extension.pose_models_wheel(offline=tmp_path) == wheel
    path = build_extension.make_pose_bundle(wheel, tmp_path / "out")
    assert path.name == "pose_landmarker_full.task"
    assert (path.parent / "LICENSE").read_bytes().startswith(b"Apache License")
    assert wheel.name in (path.parent / "README.txt").read_text()
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(io.BytesIO(pose_landmarker_bundle())) as b:
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(build_extension.BuildError, match="not the Apache-2.0 licence"):
        build_extension.make_pose_bundle(_fake_models_wheel(bad, licence=b"All rights reserved"), tmp_path / "x")
    with pytest.raises(build_extension.BuildError, match=r"--offline .*no mediapipe==0\.10\.21 wheel"):
        build_extension.pose_models_wheel(offline=tmp_path / "out")
    assert build_pose_landmarker_bundle  # the one implementation build_extension.py calls


def test_offline_without_the_wheels_fails_with_a_clear_message(tmp_path):
    with pytest.raises(build_extension.BuildError, match=r"--offline .*onnxruntime==1\.20\.1"):
        build_extension.gather_wheels(build_extension.VARIANTS["linux-x64"], offline=tmp_path)
    with pytest.raises(build_extension.BuildError, match="no such folder"):
        build_extension.gather_wheels(build_extension.VARIANTS["linux-x64"], offline=tmp_path / "absent")


# ------------------------------------------------------------------ the real linux-x64 zip
def _registry_reachable():
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/tqdm/"
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            return r.status == 200
    except Exception:
        return False


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory):
    """The linux-x64 zip built into a temporary folder; wheels come from (and stay in) the shared
    download cache, so only the first run downloads."""
    if build_extension.find_blender_ext() is None:
        pytest.skip("Blender's extension tool (bl_pkg/cli/blender_ext.py) not found: the bpy wheel is not installed")
    variant = build_extension.VARIANTS["linux-x64"]
    _, missing = build_extension.select_wheels([build_extension.WHEEL_CACHE], variant)
    if missing and not _registry_reachable():
        pytest.skip(f"the package registry is unreachable and the wheel cache {build_extension.WHEEL_CACHE} lacks "
                    f"{', '.join(missing)}")
    out = tmp_path_factory.mktemp("dist")
    res = build_extension.build(["linux-x64"], out=out, log=lambda *a: None)[0]
    return res


@pytest.mark.slow
def test_linux_zip_is_validated_and_ships_only_runtime(linux_zip):
    assert linux_zip.validated and linux_zip.zip.name == "video_mocap-0.1.0-blender4.2-5.0-linux_x64.zip"
    with zipfile.ZipFile(linux_zip.zip) as z:
        names = z.namelist()
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    code = [n for n in names if not n.startswith("wheels/")]
    assert not [n for n in names if "torch" in n.lower()]
    assert not [n for n in code if n.startswith(("tests/", "training/", "cache/", "scripts/", "assets/"))
                or "__pycache__" in n or n.endswith(".pyc")]
    assert {"__init__.py", "enginepath.py", "lib/engine/__init__.py", "lib/engine/data/open_body.npz",
            "lib/engine/data/landmark_convention.json",
            "lib/presets/smoothing/light.json", "LICENSE"} <= set(names)
    # the add-on's sub-packages, every module of the checkout's addon/, and nothing else beside them
    addon = {p.relative_to(ROOT / "addon").as_posix() for p in (ROOT / "addon").rglob("*.py")
             if "__pycache__" not in p.parts}
    assert {"ui/__init__.py", "ui/import_panel.py", "ui/pitch_panel.py", "ui/retarget_panel.py",
            "scene/__init__.py", "scene/build_scene.py", "scene/convert.py", "scene/keyreduce.py", "scene/pitch.py",
            "retarget/__init__.py", "retarget/solve.py", "retarget/presets.py", "retarget/names.py",
            "retarget/apply.py", "retarget/export.py"} <= addon <= set(names)
    assert {n for n in code if n.endswith(".py") and not n.startswith("lib/")} == addon
    assert not {"build_extension.py", "build.py", "retarget.py", "retarget_math.py"} & set(names)
    # no dev tool or training data beside the runtime: the speed bench, scoring, multi-view and
    # overlay helpers, the coarse mesh and the detector-noise model live in training/
    engine = [n[len("lib/engine/"):] for n in names if n.startswith("lib/engine/")]
    assert not [n for n in engine if n.split("/")[-1] in ("bench.py", "bench_speed.py", "eval.py",
                                                          "multiview.py", "overlay.py", "coarse_mesh.py",
                                                          "coarse_mesh.npz", "detector_noise.json")], engine
    assert {"pipeline.py", "observe/detect.py", "estimate/temporal.py", "clean/smooth.py", "align/image_fit.py",
            "video/decode.py", "body/rotations.py"} <= set(engine)
    wheels = sorted(n for n in names if n.startswith("wheels/"))
    assert sorted(w[2:] for w in manifest["wheels"]) == wheels and manifest["platforms"] == ["linux-x64"]
    tops = {build_extension.normalize(w[7:].split("-")[0]) for w in wheels}
    assert {"onnxruntime", "mediapipe", "opencv_python_headless", "scipy", "protobuf"} <= tops
    assert not {"numpy", "jax", "jaxlib", "torch", "onnxruntime_gpu"} & tops
    # Blender's own validator, called directly on the zip once more
    rc, msg = build_extension.blender_ext(build_extension.find_blender_ext(), "validate", linux_zip.zip)
    assert rc == 0 and "Success" in msg, msg
    # size report
    size = json.loads((linux_zip.zip.parent / "sizes.json").read_text())[linux_zip.zip.name]
    assert size["zip"] == linux_zip.zip.stat().st_size and len(size["wheels"]) == len(wheels)
    assert 50e6 < size["zip"] < 250e6


@pytest.mark.slow
def test_blender51_linux_zip_is_validated_with_cp313_wheels_and_the_pose_bundle(tmp_path):
    """The 5.1+ zip: Python 3.13 wheels only, mediapipe 1.x, the pose bundle and its licence
    in lib/engine/data/mediapipe/ (where engine.observe looks), Blender range 5.1.0-5.4.0."""
    if build_extension.find_blender_ext() is None:
        pytest.skip("Blender's extension tool (bl_pkg/cli/blender_ext.py) not found: the bpy wheel is not installed")
    variant = build_extension.variants_for(build_extension.TARGETS["5.1-5.3"])["linux-x64"]
    _, missing = build_extension.select_wheels([build_extension.WHEEL_CACHE / build_extension.cache_folder(variant)], variant)
    if missing and not _registry_reachable():
        pytest.skip(f"the package registry is unreachable and the wheel cache lacks {', '.join(missing)}")
    res = build_extension.build(["linux-x64"], out=tmp_path, targets=("5.1+",), log=lambda *a: None)[0]
    assert res.validated and res.zip.name == "video_mocap-0.1.0-blender5.1-5.3-linux_x64.zip"
    with zipfile.ZipFile(res.zip) as z:
        names = z.namelist()
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        bundle = z.read("lib/engine/data/mediapipe/pose_landmarker_full.task")
        licence = z.read("lib/engine/data/mediapipe/LICENSE")
    assert (manifest["blender_version_min"], manifest["blender_version_max"]) == ("5.1.0", "5.4.0")
    wheels = [n[7:] for n in names if n.startswith("wheels/")]
    assert sorted("./wheels/" + w for w in wheels) == sorted(manifest["wheels"])
    binary = [w for w in wheels if "-none-any" not in w and "py2.py3-none" not in w]
    assert binary and all("-cp313-cp313-" in w or "-abi3-" in w or "-py3-none-manylinux" in w for w in binary), binary
    tops = {build_extension.normalize(w.split("-")[0]): w.split("-")[1] for w in wheels}
    assert tops["mediapipe"].startswith("1.2.") and not {"numpy", "protobuf", "jax", "torch"} & set(tops)
    assert licence.startswith(b"Apache License") or b"Apache License" in licence[:200]
    with zipfile.ZipFile(__import__("io").BytesIO(bundle)) as b:
        assert set(b.namelist()) == {"pose_detector.tflite", "pose_landmarks_detector.tflite"}
    assert not (tmp_path / ".pose-bundle").exists()  # the build's own scratch folder is removed
    rc, msg = build_extension.blender_ext(build_extension.find_blender_ext(), "validate", res.zip)
    assert rc == 0 and "Success" in msg, msg


# Runs in a fresh interpreter started with -S -s: no site-packages at all. sys.path is the standard
# library plus a folder holding links to only `bpy` and `numpy` (numpy is part of Blender's own
# Python), so the engine, mediapipe, opencv, scipy, onnxruntime, ... can only come from the
# installed extension and the wheels Blender unpacked for it.
PROBE = textwrap.dedent(r'''
    import json, os, sys
    shim, zip_path, video, user = sys.argv[1:5]
    sys.path[:] = [p for p in sys.path[1:] if "site-packages" not in p] + [shim]
    import bpy
    r = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert r == {"FINISHED"}, r
    pkg = "bl_ext.user_default.video_mocap"
    assert pkg in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    bpy.ops.wm.read_homefile(use_empty=True)
    r = bpy.ops.mocap.import_video(filepath=video, save_motion=False, first_frame=0, last_frame=15)
    assert r == {"FINISHED"}, r
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    action = arms[0].animation_data.action if arms and arms[0].animation_data else None
    import engine.pipeline, cv2, mediapipe, scipy, onnxruntime, matplotlib, numpy
    origins = {m.__name__: os.path.abspath(m.__file__)
               for m in (engine, engine.pipeline, cv2, mediapipe, scipy, onnxruntime, matplotlib, numpy)}
    stdlib = os.path.dirname(os.__file__)
    outside = sorted(name for name, m in list(sys.modules.items())
                     if isinstance(getattr(m, "__file__", None), str) and os.path.isabs(m.__file__)
                     and name != "__main__"
                     and not os.path.abspath(m.__file__).startswith((stdlib, shim, user)))
    import addon_utils
    print("PROBE " + json.dumps(dict(
        origins=origins, outside=outside, armature=arms[0].name if arms else None,
        frame_range=list(action.frame_range) if action else None,
        addon_file=sys.modules[pkg].__file__,
        sys_path_in_ext=[p for p in sys.path if os.path.abspath(p).startswith(
            os.path.dirname(sys.modules[pkg].__file__))],
        warnings=addon_utils._extensions_warnings_get().get(pkg, []))))
''')


def _shim(folder):
    """A folder with links to the venv's bpy and numpy only."""
    folder.mkdir()
    for mod in ("bpy", "numpy"):
        spec = importlib.util.find_spec(mod)
        if spec is None:
            pytest.skip(f"{mod} is not installed")
        pkg = Path(spec.origin).parent
        for p in (pkg, pkg.parent / f"{mod}.libs"):
            if p.exists():
                os.symlink(p, folder / p.name)
    return folder


@pytest.mark.slow
@pytest.mark.blender
def test_installed_zip_runs_import_video_from_its_own_files(linux_zip, tmp_path):
    pytest.importorskip("bpy")
    shim = _shim(tmp_path / "shim")
    user = tmp_path / "blender-user"
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(BLENDER_USER_RESOURCES=str(user), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               MOCAP_CACHE_DIR=str(tmp_path / "mocap-cache"), HOME=str(tmp_path / "home"))
    r = subprocess.run([sys.executable, "-S", "-s", "-B", str(probe), str(shim), str(linux_zip.zip),
                        str(DEMO_VIDEO), str(user)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("PROBE ")]
    assert r.returncode == 0 and lines, (r.stdout + r.stderr)[-4000:]
    res = json.loads(lines[-1][6:])
    ext_dir = user / "extensions" / "user_default" / "video_mocap"
    wheels_dir = user / "extensions" / ".local" / "lib" / "python3.11" / "site-packages"
    assert Path(res["addon_file"]).parent == ext_dir
    for name in ("engine", "engine.pipeline"):
        assert Path(res["origins"][name]).is_relative_to(ext_dir / "lib"), res["origins"]
    # only lib/ went on sys.path: the add-on's own modules are not importable as top-level ones
    assert res["sys_path_in_ext"] == [str(ext_dir / "lib")], res["sys_path_in_ext"]
    for name in ("cv2", "mediapipe", "scipy", "onnxruntime", "matplotlib"):
        assert Path(res["origins"][name]).is_relative_to(wheels_dir), res["origins"]
    assert Path(res["origins"]["numpy"]).is_relative_to(shim)  # Blender's own numpy
    assert res["outside"] == [], res["outside"]  # nothing from the repo or the test's site-packages
    assert not str(ROOT) in json.dumps(res["origins"])
    assert res["armature"] == DEMO_VIDEO.stem
    start, end = res["frame_range"]
    assert round(end - start) + 1 == 15, res["frame_range"]
