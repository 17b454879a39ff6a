"""The shipped demo clip through the default pipeline, judged on what the video shows: the body
faces the way the face does, turns without one-frame jumps, stands still where the feet do, and
sits on the person in the image."""
from pathlib import Path

import numpy as np
import pytest

from engine.body.model import load_body_model
from engine.align.facing import (face_toward_camera, facing_disagreements, in_spin, motion_forward_in_camera,
                           yaw_in_camera, yaw_steps)
from engine.observe import LM
from engine.align.reprojection import person_height

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"


@pytest.fixture(scope="module")
def demo():
    from engine.pipeline import PipelineOptions, run
    return run(str(DEMO), PipelineOptions()), load_body_model(None)


@pytest.mark.slow
def test_the_body_faces_the_camera_wherever_the_face_is_seen_from_the_front(demo):
    m, body = demo
    face = face_toward_camera(m.keypoints2d)
    # he faces the camera on the box: the face evidence sees it (0.975 of those frames with
    # mediapipe 0.10.21, 0.825 with 1.2.2, whose unsmoothed crop detections jitter more)
    assert face[20:60].mean() >= 0.8
    assert face.sum() >= 60
    bad = facing_disagreements(m, body)
    assert not bad.any(), np.flatnonzero(bad)


@pytest.mark.slow
def test_the_pelvis_never_jumps_more_than_30_degrees_in_a_frame_outside_a_sustained_turn(demo):
    m, body = demo
    yaw = yaw_in_camera(motion_forward_in_camera(m, body)[:, 0])
    steps = np.where(in_spin(yaw), np.nan, yaw_steps(yaw))
    assert np.nanmax(steps) < 30, (np.nanargmax(steps), np.nanmax(steps))


def _still_window(kp, start, tol=0.015):
    """Frames from ``start`` on while both ankles stay within ``tol`` of the person's height of
    where they were at ``start`` in the image."""
    h = person_height(kp, 0.5)
    a = kp[:, [LM["left_ankle"], LM["right_ankle"]], :2]
    d = np.linalg.norm(a - a[start], axis=-1).max(1) / h
    end = start
    while end + 1 < len(kp) and d[end + 1] <= tol:
        end += 1
    return start, end + 1


@pytest.mark.slow
def test_standing_on_the_box_the_feet_are_planted_and_the_ankles_still(demo):
    """Frames 78 on: he stands on the box until he starts to turn for the jump; the image's own
    ankles say for how long (docs/benchmarks.md shows the crops)."""
    m, _ = demo
    kp = m.keypoints2d.astype(np.float64)
    a, b = _still_window(kp, 78)
    assert b - a >= 5, (a, b)           # 78–87 on the default's crops with mediapipe 0.10.21, 78–88
    # with 1.2.2; the crops' detections are not smoothed in time (IMAGE mode), and within 1 % of
    # his height 1.2.2's ankles stay only 78–80
    c = np.asarray(m.contacts, bool)[a:b]
    assert c.any(1).mean() >= 0.9, c.astype(int).T
    # both feet down (heel or toe) until the window's last frame, which may be the lift-off
    assert (c[:-1, :2].any(1) & c[:-1, 2:].any(1)).all(), c.astype(int).T
    # heels and toes all planted: 8 of 9 frames with mediapipe 0.10.21 (the 9th the lift-off);
    # with 1.2.2, since the crops are landmarked in IMAGE mode, 5 of 10 (its heels lift in 5)
    from engine.observe.landmarker import mediapipe_version_tag
    assert c.all(1).mean() >= (0.8 if mediapipe_version_tag() == "" else 0.5), c.astype(int).T
    # while both feet are planted (the window's last frame may already be the lift-off: the
    # image's ankles rise less than 1 % of his height there, the body's 5 cm)
    ankles = m.joints[a:b][c.all(1)][:, [7, 8]].astype(np.float64)
    moved = np.linalg.norm(ankles - ankles.mean(0), axis=-1).max()
    assert moved < 0.03, moved
    # from there he pivots: the image's ankles leave by more than 4 % of his height by frame 95
    d = np.linalg.norm(kp[95, [LM["left_ankle"], LM["right_ankle"]], :2]
                       - kp[78, [LM["left_ankle"], LM["right_ankle"]], :2], axis=-1).max() / person_height(kp, 0.5)[95]
    assert d > 0.04, d


@pytest.mark.slow
def test_the_body_sits_on_the_person_in_the_image(demo):
    m, _ = demo
    rep = m.source["reprojection"]
    assert rep["median"] <= 1.5 and rep["p90"] <= 4.0, rep


@pytest.mark.slow
def test_the_motion_says_how_far_the_temporal_model_was_blended_toward_its_prior(demo):
    m, _ = demo
    assert m.estimator.startswith("temporal") and m.source["prior_blend"] == 0.5
