"""The PoseLandmarker bundle on either mediapipe: a shipped ``.task`` file (the Blender 5.1+ zips,
mediapipe 1.x) or one built from mediapipe 0.10.x's own models, and the detector running on it."""
import os
import zipfile

import numpy as np
import pytest

import engine.observe.landmarker as observe   # the bundle lookup and its module state
from engine.observe import detect_people
from engine.errors import EngineError
from conftest import DEMO_VIDEO

mp = pytest.importorskip("mediapipe")
ENV_BUNDLE = os.environ.get("MOCAP_POSE_BUNDLE")  # read before the fixture clears it
HAS_WHEEL_MODELS = all((observe.Path(mp.__file__).parent / m).is_file() for m in observe.WHEEL_POSE_MODELS)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No cached bundle, no MOCAP_POSE_BUNDLE, and no shipped bundle beside the engine."""
    monkeypatch.setattr(observe, "_BUNDLE", None)
    monkeypatch.setattr(observe, "_BUNDLE_FILE", None)
    monkeypatch.delenv("MOCAP_POSE_BUNDLE", raising=False)
    monkeypatch.setattr(observe, "SHIPPED_POSE_BUNDLE", tmp_path / "absent" / observe.POSE_BUNDLE_NAME)
    monkeypatch.setenv("MOCAP_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path
    observe._BUNDLE = None


def test_bundle_found_from_env_then_beside_the_engine(fresh, monkeypatch):
    assert observe.find_pose_bundle() is None
    shipped = fresh / "data" / observe.POSE_BUNDLE_NAME
    shipped.parent.mkdir()
    shipped.write_bytes(b"shipped")
    monkeypatch.setattr(observe, "SHIPPED_POSE_BUNDLE", shipped)
    assert observe.find_pose_bundle() == shipped
    assert observe.pose_landmarker_bundle() == b"shipped"  # read, not rebuilt
    other = fresh / "other.task"
    other.write_bytes(b"env")
    monkeypatch.setenv("MOCAP_POSE_BUNDLE", str(other))
    assert observe.find_pose_bundle() == other
    monkeypatch.setenv("MOCAP_POSE_BUNDLE", str(fresh / "missing.task"))
    with pytest.raises(FileNotFoundError, match="MOCAP_POSE_BUNDLE=.*missing.task: no such file"):
        observe.find_pose_bundle()


def test_mediapipe_without_models_and_no_bundle_says_what_to_do(fresh, monkeypatch):
    monkeypatch.setattr(observe, "WHEEL_POSE_MODELS", ("modules/none/absent.tflite",) * 2)
    with pytest.raises(EngineError, match=r"ships no pose models .*build_extension\.py --pose-bundle"):
        observe.pose_landmarker_bundle()


def test_bundle_made_once_for_threads_that_ask_together(fresh, monkeypatch):
    """The survey starts two landmarkers side by side: the bundle is built once, not by both."""
    import threading
    import time
    made = []

    def slow_build():
        made.append(1)
        time.sleep(0.2)
        return b"bundle", None

    monkeypatch.setattr(observe, "built_pose_bundle", slow_build)
    got = []
    threads = [threading.Thread(target=lambda: got.append(observe.pose_landmarker_bundle())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1] and got == [b"bundle"] * 4


@pytest.mark.skipif(not HAS_WHEEL_MODELS, reason="this mediapipe ships no pose models (1.x)")
def test_built_bundle_kept_in_the_cache_folder_and_a_broken_copy_rebuilt(fresh, monkeypatch):
    import io

    def members(data):   # a rebuilt bundle's zip headers carry the time it was made
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return {n: z.read(n) for n in z.namelist()}
    builds = []
    real = observe.build_pose_landmarker_bundle
    monkeypatch.setattr(observe, "build_pose_landmarker_bundle", lambda *a: builds.append(1) or real(*a))
    first = observe.pose_landmarker_bundle()
    cached = list((fresh / "cache").glob("pose_landmarker_*.task"))
    assert len(builds) == 1 and len(cached) == 1 and cached[0].read_bytes() == first
    observe._BUNDLE = None                         # a new process: read back, not built
    assert observe.pose_landmarker_bundle() == first and len(builds) == 1
    cached[0].write_bytes(first[:1000])            # a broken copy: built again, and replaced
    observe._BUNDLE = None
    again = observe.pose_landmarker_bundle()
    assert members(again) == members(first) and len(builds) == 2
    assert cached[0].read_bytes() == again and not list((fresh / "cache").glob("*.part"))
    # landmarkers are made from that file (cheaper to start), or from the bytes without one
    opts = observe.pose_bundle_options()
    assert opts.model_asset_path == str(cached[0]) and opts.model_asset_buffer is None
    blocked = fresh / "not_a_folder"               # a cache folder that cannot be made: built
    blocked.write_text("x")
    monkeypatch.setenv("MOCAP_CACHE_DIR", str(blocked))
    observe._BUNDLE = None
    last = observe.pose_landmarker_bundle()
    assert members(last) == members(first) and len(builds) == 3
    opts = observe.pose_bundle_options()
    assert opts.model_asset_path is None and opts.model_asset_buffer == last


@pytest.mark.skipif(not HAS_WHEEL_MODELS, reason="this mediapipe ships no pose models (1.x)")
def test_bundle_built_from_the_wheel_models_holds_both_with_metadata(fresh):
    data = observe.pose_landmarker_bundle()
    import io
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    assert set(members) == {"pose_detector.tflite", "pose_landmarks_detector.tflite"}
    # MediaPipe's own reader: each model carries its name and the input normalisation
    import json
    from mediapipe.tasks.python.metadata import metadata as md
    want = {"pose_detector.tflite": ("pose_detector", 127.5, 127.5),
            "pose_landmarks_detector.tflite": ("pose_landmarks_detector", 0.0, 255.0)}
    for name, (title, mean, std) in want.items():
        meta = json.loads(md.MetadataDisplayer.with_model_buffer(members[name]).get_metadata_json())
        unit = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]
        assert meta["name"] == title and unit["options_type"] == "NormalizationOptions"
        assert unit["options"] == {"mean": [mean], "std": [std]}


@pytest.mark.slow
def test_landmarker_runs_on_a_bundle_file(fresh, monkeypatch):
    """The shipped-file path end to end: write a bundle (the wheel's, or MOCAP_POSE_BUNDLE's
    under mediapipe 1.x) to a file, load it from there, and find the demo's jumper."""
    if HAS_WHEEL_MODELS:
        data = observe.pose_landmarker_bundle()
    elif ENV_BUNDLE:
        data = observe.Path(ENV_BUNDLE).read_bytes()
    else:
        pytest.skip("mediapipe 1.x without MOCAP_POSE_BUNDLE (scripts/test_stacks.sh sets it)")
    path = fresh / observe.POSE_BUNDLE_NAME
    path.write_bytes(data)
    observe._BUNDLE = None
    monkeypatch.setenv("MOCAP_POSE_BUNDLE", str(path))
    from engine.video.decode import iter_frames, open_video
    cap, info = open_video(DEMO_VIDEO)
    cap.release()
    det = observe.MediaPipePoseLandmarker(num_poses=2)
    d = detect_people(iter_frames(DEMO_VIDEO, (0, 24), max_side=640), (info.width, info.height),
                              info.fps, detector=det, camera_motion=False)
    assert len(np.unique(d.frame_of)) >= 12, d.frame_of
    kp = d.keypoints
    assert np.isfinite(kp).all() and (kp[..., 2] >= 0).all() and (kp[..., 2] <= 1).all()
    inside = (kp[..., 0] > -0.1 * info.width) & (kp[..., 0] < 1.1 * info.width)
    assert inside.mean() > 0.95
    assert (np.abs(d.world) < 2.0).all()  # metres around the hips
    assert ("-mp" in det.cache_key) == (mp.__version__ != "0.10.21")
