"""Validation 2 machinery (scripts/validate_pitch_pipeline.py) and the video-side helpers."""
import importlib.util

import numpy as np
import pytest
from conftest import ROOT, shared_path

from engine.pitch import analyze
from engine.pitch.joints import camera_azimuth


def test_camera_azimuth_is_the_horizontal_view_direction():
    # OpenCV camera looking along world +y, level: rows of R are x_cam, y_cam, z_cam in world
    E = np.eye(4)
    E[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    assert camera_azimuth(np.repeat(E[None], 3, 0)) == pytest.approx(90.0)
    tilt = np.radians(10)                       # pitched down 10°: same azimuth
    E[:3, :3] = [[1, 0, 0], [0, -np.sin(tilt), -np.cos(tilt)], [0, np.cos(tilt), -np.sin(tilt)]]
    assert camera_azimuth(E[None]) == pytest.approx(90.0)
    assert camera_azimuth(np.full((2, 4, 4), np.nan)) is None


def _script():
    spec = importlib.util.spec_from_file_location("validate_pitch_pipeline",
                                                  ROOT / "scripts" / "validate_pitch_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validation2_one_run_through_the_pipeline():
    obp = shared_path("data", "obp")
    V = _script()
    pitch, cam, s, t0, body = next(V.observe_pitches(60.0, 1, 0, obp, ["1097_2"]))
    motion = V.run_pipeline(s, body)
    assert motion.num_frames == len(s["valid"]) and motion.valid.mean() > 0.8
    from engine.pitch import from_motion
    js = from_motion(motion)
    js.t0 = t0
    res = analyze(js, home_azimuth_deg="camera")
    assert res.handedness == "R"
    assert res.clip_frame("pkh") == res.first_frame + res.events["pkh"]
    rows, poi, meta = V.V1.load(obp)
    ev, me = V.compare(res, pitch, rows, poi)
    assert abs(ev["pkh"]) < 0.1                  # measured: within a few frames (docs)
    assert set(me) == set(V.V1.METRICS)


def test_validation2_runs_the_learned_estimator_too():
    """--estimator temporal: the same run through the shipped temporal model (its Motion says so)."""
    obp = shared_path("data", "obp")
    V = _script()
    pitch, cam, s, t0, body = next(V.observe_pitches(60.0, 1, 0, obp, ["1097_2"]))
    base, learned = V.run_pipeline(s, body), V.run_pipeline(s, body, estimator="temporal")
    assert learned.estimator == "temporal" and base.estimator == "baseline"
    assert learned.num_frames == base.num_frames and learned.valid.mean() > 0.8
    assert not np.allclose(np.nan_to_num(learned.poses), np.nan_to_num(base.poses))
