"""Following the subject on a crop (engine.observe.follow): the survey's frames, the predicted
box, the crop's hysteresis, the identity test, taking over a track after a loss, and on real
footage: the demo clip followed as well as every frame detected, and two people side by side
(one the full-frame detector never finds) each followed in every frame on their own body."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.observe.follow import (SURVEY_EVERY, SubjectPrior, is_subject, keep_crop, predict_box, typical_size,
                                   survey_frames)
from engine.observe.types import Detections

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"
COMPOSITES = ROOT / "tests" / "data" / "composites"


def test_survey_frames_are_even_and_keep_the_last_and_the_point_frame():
    f = survey_frames(0, 100, 1, every=6, extra=[31])
    assert sorted(f)[:4] == [0, 6, 12, 18] and 99 in f and 31 in f
    assert len(f) == len(range(0, 100, 6)) + 2
    assert survey_frames(10, 40, 2, every=3) == {10, 16, 22, 28, 34, 38}
    assert survey_frames(5, 5, 1) == set()


def _survey(people):
    """A Detections of boxes only: ``people`` = {track: {frame: box}} on frames 0, 6, 12, …"""
    frames = sorted({f for p in people.values() for f in p})
    rows = [(frames.index(f), t, np.array(b, np.float32)) for t, p in people.items() for f, b in p.items()]
    n = len(rows)
    kp = np.zeros((n, 33, 3), np.float32)
    for k, (_, _, b) in enumerate(rows):
        kp[k, :, 0] = np.linspace(b[0], b[2], 33)
        kp[k, :, 1] = np.linspace(b[1], b[3], 33)
        kp[k, :, 2] = 1
    app = np.zeros((n, 48), np.float32)
    app[:, 0] = 1
    dets = Detections(frame_index=np.array(frames), timestamps=np.array(frames) / 30.0,
                      homographies=np.tile(np.eye(3), (len(frames), 1, 1)), frame_size=(1000, 600),
                      fps=30.0, frame_of=np.array([r[0] for r in rows]), keypoints=kp,
                      world=np.zeros((n, 33, 3), np.float32), masks=np.zeros((n, 4, 4), np.uint8),
                      bbox=np.array([r[2] for r in rows]), score=np.ones(n, np.float32), appearance=app)
    return dets, np.array([r[1] for r in rows])


def test_predict_box_prefers_the_sighting_then_the_subjects_own_motion_then_interpolates():
    dets, tid = _survey({0: {0: [100, 100, 200, 400], 12: [160, 100, 260, 400]}})
    prior = SubjectPrior(dets, tid, 0)
    assert np.allclose(predict_box(0, prior, [], 30), [100, 100, 200, 400])
    # between sightings, nothing followed: interpolated
    assert np.allclose(predict_box(6, prior, [], 30), [130, 100, 230, 400])
    # followed frames: the centre moves on at half the last step, the size stays
    hist = [(7, np.array([130., 100, 230, 400])), (8, np.array([140., 100, 250, 420]))]
    p = predict_box(9, prior, hist, 30)
    assert np.allclose(p[2] - p[0], 110) and np.allclose(p[3] - p[1], 320)
    assert np.allclose(0.5 * (p[:2] + p[2:]), [195 + 7.5, 260 + 5])
    # a wild last step is capped at half a height per frame
    hist = [(7, np.array([0., 0, 100, 300])), (8, np.array([900., 0, 1000, 300]))]
    p = predict_box(9, prior, hist, 30)
    assert np.linalg.norm(0.5 * (p[:2] + p[2:]) - [950, 150]) <= 0.25 * 300 + 1e-6
    # far from every sighting and followed frame: no prediction
    assert predict_box(60, prior, [], 30) is None


def test_the_crop_moves_only_when_the_prediction_leaves_its_middle_or_changes_size():
    box = np.array([100., 100, 200, 300])
    crop = (0, 30, 340, 370)
    assert keep_crop(crop, box)
    assert keep_crop(crop, box + [50, 0, 50, 0])           # 30 px off: within 12 % of the side
    assert not keep_crop(crop, box + [80, 0, 80, 0])       # 60 px off: beyond
    assert not keep_crop(crop, np.array([100., 0, 200, 400]))  # 1.33× taller
    assert not keep_crop(None, box)


def test_identity_alone_any_plausible_pose_with_someone_near_only_the_subject():
    pred = np.array([100., 100, 200, 400])
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 1

    def pose(b):
        k = kp.copy()
        k[:, 0] = np.linspace(b[0], b[2], 33)
        k[:, 1] = np.linspace(b[1], b[3], 33)
        return k
    # alone: a pose displaced by a stunt is the subject; a tiny pose in the glare is not
    moved = np.array([180., 150, 300, 420])
    assert is_subject(moved, pose(moved), pred)[0]
    tiny = np.array([150., 150, 180, 230])
    assert not is_subject(tiny, pose(tiny), pred)[0]
    # someone beside: the same displaced pose now sits on the other person
    other = [(1, np.array([190., 120, 300, 420]))]
    ok, why = is_subject(moved, pose(moved), pred, others=other)
    assert not ok, why
    # and the subject's own detection still passes
    assert is_subject(pred + 5, pose(pred + 5), pred, others=other)[0]
    # a pose stretched over both (joints far outside the predicted box) is rejected
    wide = np.array([100., 100, 420, 400])
    assert not is_subject(pred, pose(wide), pred, others=[(1, np.array([300., 100, 420, 400]))])[0]


def test_a_pose_that_grows_over_the_background_frame_by_frame_is_stopped():
    """Each frame's prediction is the last kept box, so a pose spreading over foliage a little
    more each frame would pass the size check against it; against the subject's recent size
    (``typical_size``) and mask it does not."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 1
    recent = [(f, 300.0, 200) for f in range(0, 10)]          # (frame, longer side px, mask px)
    assert typical_size(recent, 10, 30.0) == (300.0, 200.0)
    assert typical_size(recent[-2:], 10, 30.0) is None           # too few to say
    assert typical_size(recent, 45, 30.0) is None                # all older than a second
    typical = typical_size(recent, 10, 30.0)
    pred = np.array([100., 100, 400, 400])                       # the last kept box: side 300
    grown = np.array([100., 100, 1000, 400])                     # 900 px wide: 3× the subject
    last_grown = np.array([100., 100, 550, 400])                 # 450: the step before it
    k = kp.copy()
    k[:, 0], k[:, 1] = np.linspace(100, 1000, 33), np.linspace(100, 400, 33)
    assert is_subject(grown, k, last_grown)[0]                   # against the last box alone: passes
    ok, why = is_subject(grown, k, last_grown, typical=typical)
    assert not ok and "size" in why
    assert is_subject(last_grown, k, pred, typical=typical, mask_pixels=700)[0]
    ok, why = is_subject(last_grown, k, pred, typical=typical, mask_pixels=900)  # 4.5× the mask
    assert not ok and "size" in why


def test_a_track_that_starts_after_the_loss_is_taken_over_a_concurrent_one_never():
    dets, tid = _survey({0: {0: [100, 100, 200, 400], 6: [110, 100, 210, 400]},
                         1: {0: [600, 100, 700, 400], 24: [620, 100, 720, 400]},   # seen alongside
                         2: {24: [150, 120, 250, 420], 30: [160, 120, 260, 420]}})  # starts after
    prior = SubjectPrior(dets, tid, 0)
    hist = [(6 + k, np.array([110., 100, 210, 400])) for k in range(4)]
    assert prior.adopt(20, 9, [b for _, b in hist], 30) == 2
    assert 24 in prior.boxes and np.allclose(prior.boxes[30], [160, 120, 260, 420])
    assert all(t != 2 for t, _ in prior.others.get(24, []))
    # nothing more to take over
    assert prior.adopt(40, 30, [prior.boxes[30]], 30) is None


def _mediapipe():
    pytest.importorskip("mediapipe", reason="needs mediapipe (the detector)")


def test_the_demo_is_followed_as_well_as_detecting_every_frame():
    _mediapipe()
    from engine.observe.follow import observe_video
    from engine.observe.track import track_and_select
    from engine.pipeline import PipelineOptions, detect
    obs, survey, tid, stats = observe_video(DEMO, (0, 230))
    ref = track_and_select(detect(DEMO, PipelineOptions())[0])
    assert len(np.unique(survey.frame_index)) <= 230 // SURVEY_EVERY + 2
    # before gap recovery: 201 frames against 195 with mediapipe 0.10.21; with 1.2.2 180 of 201,
    # as the crop's poses that spread over the sunlit tree in the back-flip are rejected
    assert obs.valid.sum() >= 0.85 * ref.valid.sum(), (obs.valid.sum(), ref.valid.sum())
    both = obs.valid & ref.valid
    h = ref.bbox[both, 3] - ref.bbox[both, 1]
    d = np.median(np.linalg.norm(obs.keypoints[both, :, :2] - ref.keypoints[both, :, :2], axis=2), 1) / h
    # where the two differ by more than a tenth of the height (18 of 179 frames with the crops
    # landmarked in IMAGE mode) it is mostly the full frame's pose that is wrong: frames 3-18,
    # its arms and hips collapsed onto the torso while the crop's sit on the limbs (looked at)
    assert np.median(d) < 0.02 and (d < 0.1).mean() > 0.85, (np.median(d), (d < 0.1).mean())
    # the jumper throughout: never the walker (whose box is in the lower half of the frame)
    assert np.nanmax(obs.bbox[obs.valid & (obs.frame_index < 150), 3]) < 600


@pytest.mark.parametrize("pid", [0, 1])
def test_two_people_side_by_side_each_followed_on_their_own_body(pid):
    _mediapipe()
    from engine.observe.follow import observe_video
    meta_path = COMPOSITES / "pair_side_by_side.json"
    if not meta_path.is_file():
        pytest.skip(f"needs {meta_path} (scripts/make_composites.py)")
    meta = json.loads(meta_path.read_text())
    box0 = np.array(meta["per_frame"][0]["people"][pid]["box"], float)
    point = tuple(0.5 * (box0[:2] + box0[2:]))
    obs, *_ = observe_video(COMPOSITES / "pair_side_by_side.mp4", (0, meta["frames"]),
                            subject="point", subject_point=point)
    assert obs.valid.mean() >= 0.95
    for t in np.flatnonzero(obs.valid):
        people = {p["id"]: np.array(p["box"], float) for p in meta["per_frame"][t]["people"]}
        kp = obs.keypoints[t]
        vis = kp[:, 2] > 0.5
        b = people[pid]
        g = 0.1 * (b[3] - b[1])
        inside = ((kp[vis, 0] >= b[0] - g) & (kp[vis, 0] <= b[2] + g) &
                  (kp[vis, 1] >= b[1] - g) & (kp[vis, 1] <= b[3] + g))
        assert inside.mean() >= 0.9, (t, inside.mean())


def test_list_people_with_follow_lists_everyone_on_a_wide_strip():
    _mediapipe()
    import subprocess
    import sys
    clip = COMPOSITES / "strip4.mp4"
    if not clip.is_file():
        pytest.skip(f"needs {clip} (scripts/make_composites.py)")
    r = subprocess.run([sys.executable, "-m", "engine", str(clip), "--list-people", "--follow"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    tracks = [line for line in r.stdout.splitlines() if line.startswith("track ")]
    assert len(tracks) == 4, r.stdout
    boxes = sorted(float(line.split("= [")[1].split(",")[0]) for line in tracks)
    assert np.diff(boxes).min() > 100  # four people side by side, not one person four times


def test_pitcher_rule_prefers_the_central_standing_thrower_over_a_larger_batter_and_a_catcher():
    from engine.observe.track import pitcher_score, select_subject
    T = 30
    rows = []

    def person(track, x0, w, h, wrist_speed=0.0, y0=100):
        for f in range(T):
            kp = np.zeros((33, 3), np.float32)
            kp[:, 0], kp[:, 1], kp[:, 2] = x0 + w / 2, y0 + h / 2, 1
            kp[11, :2] = kp[12, :2] = (x0 + w / 2, y0 + 0.2 * h)
            kp[16, 0] = x0 + w / 2 + wrist_speed * h * np.sin(f / 3.0)  # the throwing wrist swings
            rows.append((f, track, np.array([x0, y0, x0 + w, y0 + h], np.float32), kp))
    person(0, 560, 80, 200, wrist_speed=0.4)   # pitcher: centre of a 1280-wide frame, smaller
    person(1, 150, 150, 380)                   # batter: bigger, at the side
    person(2, 700, 200, 170)                   # catcher: crouched (as wide as tall), near the centre
    n = len(rows)
    dets = Detections(frame_index=np.arange(T), timestamps=np.arange(T) / 30.0,
                      homographies=np.tile(np.eye(3), (T, 1, 1)), frame_size=(1280, 720), fps=30.0,
                      frame_of=np.array([r[0] for r in rows]), keypoints=np.array([r[3] for r in rows]),
                      world=np.zeros((n, 33, 3), np.float32), masks=np.zeros((n, 4, 4), np.uint8),
                      bbox=np.array([r[2] for r in rows]), score=np.ones(n, np.float32),
                      appearance=np.zeros((n, 48), np.float32))
    tid = np.array([r[1] for r in rows])
    assert select_subject(dets, tid, "pitcher") == 0
    assert select_subject(dets, tid, "largest") == 1
    s = [pitcher_score(dets, tid, t) for t in (0, 1, 2)]
    assert s[0] > 1.5 * max(s[1], s[2]), s


def test_broadcast_like_the_pitcher_is_chosen_and_never_swapped_for_the_batter():
    """The batter (larger, in front for about a third of the clip) is never followed instead of
    the pitcher, and the pitcher is kept in every frame: where the batter's box overlaps the
    pitcher's, the batter is greyed out of the crop outside the pitcher's box."""
    _mediapipe()
    from engine.observe.follow import observe_video
    name = "broadcast_like"
    if not (COMPOSITES / f"{name}.json").is_file():
        pytest.skip(f"needs {COMPOSITES / name}.json (scripts/make_composites.py)")
    meta = json.loads((COMPOSITES / f"{name}.json").read_text())
    truth = np.load(COMPOSITES / f"{name}_masks.npz")["keypoints"]
    obs, *_ = observe_video(COMPOSITES / f"{name}.mp4", (0, meta["frames"]), subject="pitcher")
    assert obs.valid.all(), np.flatnonzero(~obs.valid)
    assert _nearest_person(obs, truth) == {0}


def _nearest_person(obs, truth):
    """For each valid frame, whose true landmarks the followed keypoints lie nearest; the set."""
    who = set()
    for t in np.flatnonzero(obs.valid):
        kp = obs.keypoints[t]
        vis = kp[:, 2] > 0.5
        d = [np.median(np.linalg.norm(kp[vis, :2] - truth[t, k, vis, :2], axis=1)) for k in range(truth.shape[1])]
        who.add(int(np.argmin(d)))
    return who


@pytest.mark.parametrize("pid", [0, 1])
def test_a_crossing_keeps_each_person_but_for_at_most_two_frames_at_the_overlap(pid):
    """Two copies of one walker (same colours) cross, one in front. Each is followed from a point
    on frame 0; frames where the keypoints lie nearer the other's true landmarks are counted.
    Detecting every frame and tracking (the default) loses or swaps far more (docs/benchmarks.md);
    at most 2 such frames remain, at the moment of full overlap (the issue asks for none)."""
    _mediapipe()
    from engine.observe.follow import observe_video
    name = "crossing"
    if not (COMPOSITES / f"{name}.json").is_file():
        pytest.skip(f"needs {COMPOSITES / name}.json (scripts/make_composites.py)")
    meta = json.loads((COMPOSITES / f"{name}.json").read_text())
    truth = np.load(COMPOSITES / f"{name}_masks.npz")["keypoints"]
    b = np.array(meta["per_frame"][0]["people"][pid]["box"], float)
    obs, *_ = observe_video(COMPOSITES / f"{name}.mp4", (0, meta["frames"]), subject="point",
                            subject_point=tuple(0.5 * (b[:2] + b[2:])))
    assert obs.valid.mean() >= 0.75, obs.valid.mean()
    wrong = []
    for t in np.flatnonzero(obs.valid):
        kp = obs.keypoints[t]
        vis = kp[:, 2] > 0.5
        d = [np.median(np.linalg.norm(kp[vis, :2] - truth[t, k, vis, :2], axis=1)) for k in range(2)]
        if int(np.argmin(d)) != pid:
            wrong.append(int(t))
    assert len(wrong) <= 2 and all(35 <= t <= 55 for t in wrong), wrong
    # and it is followed on both sides of the crossing
    assert obs.valid[:30].mean() > 0.9 and obs.valid[-10:].mean() >= 0.9


def test_point_on_a_person_the_full_frame_misses_is_followed_from_there():
    """strip4: four small people on a wide strip; the full-frame detector finds none of them on
    frame 30, a closer look around the point does, and that person is followed."""
    _mediapipe()
    from engine.observe.follow import observe_video
    name = "strip4"
    if not (COMPOSITES / f"{name}.json").is_file():
        pytest.skip(f"needs {COMPOSITES / name}.json (scripts/make_composites.py)")
    meta = json.loads((COMPOSITES / f"{name}.json").read_text())
    truth = np.load(COMPOSITES / f"{name}_masks.npz")["keypoints"]
    pid = 2
    b = np.array(meta["per_frame"][30]["people"][pid]["box"], float)
    obs, *_ = observe_video(COMPOSITES / f"{name}.mp4", (0, meta["frames"]), subject="point",
                            subject_point=tuple(0.5 * (b[:2] + b[2:])), subject_frame=30)
    assert obs.valid[30:].mean() >= 0.9, obs.valid.astype(int)
    assert _nearest_person(obs, truth) == {pid}


def test_a_closer_look_at_the_point_adds_the_person_the_survey_missed():
    _mediapipe()
    from engine.errors import EngineError
    from engine.observe.follow import add_person_at_point, survey_video
    from engine.observe.track import iou_matrix, select_subject
    name = "strip4"
    if not (COMPOSITES / f"{name}.json").is_file():
        pytest.skip(f"needs {COMPOSITES / name}.json (scripts/make_composites.py)")
    meta = json.loads((COMPOSITES / f"{name}.json").read_text())
    video = COMPOSITES / f"{name}.mp4"
    survey, tid, _ = survey_video(video, (0, meta["frames"]), extra=[30], tiled=0, use_cache=False)
    b = np.array(meta["per_frame"][30]["people"][1]["box"], float)
    point = tuple(0.5 * (b[:2] + b[2:]))
    with pytest.raises(EngineError):
        select_subject(survey, tid, "point", point, 30)
    survey2, tid2, new = add_person_at_point(survey, tid, video, 30, point)
    d = np.flatnonzero(tid2 == new)
    assert len(d) == 1 and survey2.frame_index[survey2.frame_of[d[0]]] == 30
    assert iou_matrix(survey2.bbox[d], b[None])[0, 0] >= 0.5
    assert select_subject(survey2, tid2, "point", point, 30) == new
    with pytest.raises(EngineError, match="not even on a closer look"):
        add_person_at_point(survey, tid, video, 30, (5.0, 5.0))


def test_the_tiled_search_replaces_a_frame_only_where_it_found_more_people():
    from engine.observe.follow import prefer_more
    main, _ = _survey({0: {0: [0, 0, 10, 10], 6: [0, 0, 10, 10], 12: [5, 5, 15, 15]}})
    tiled, _ = _survey({0: {0: [1, 1, 11, 11], 6: [2, 2, 12, 12]}, 1: {0: [50, 0, 60, 10]}})
    out = prefer_more(main, tiled)
    assert list(out.frame_index) == [0, 6, 12]
    by_frame = {int(out.frame_index[t]): out.bbox[out.frame_of == t].tolist() for t in range(3)}
    assert by_frame[0] == [[1, 1, 11, 11], [50, 0, 60, 10]]  # two found by the tiles: theirs
    assert by_frame[6] == [[0, 0, 10, 10]]                    # as many: the full frame's
    assert by_frame[12] == [[5, 5, 15, 15]]                   # not searched
    assert len(out.appearance) == len(out.masks) == len(out.keypoints) == 4


def test_only_a_steady_track_counts_as_a_bystander_to_grey_where_it_overlaps_the_subject():
    frames = range(0, 108, 6)  # 18 survey frames
    me = {f: [100, 100, 200, 400] for f in frames}
    person = {f: [150, 100, 260, 420] for f in frames[:8]}       # seen on 8 of 18
    clutter = {f: [120, 90, 180, 200] for f in (0, 18, 36)}      # a false box on 3 of 18 (R1 has such)
    prior = SubjectPrior(*_survey({0: me, 1: person, 2: clutter}), 0)
    assert prior.steady(1) and not prior.steady(2) and not prior.steady(0) and not prior.steady(7)


@pytest.mark.slow
def test_gaps_searched_beside_the_second_half_are_what_gap_recovery_finds_afterwards():
    """The first half's thread, done early (its landmarker here is not slowed, the second
    half's is), searches the gaps the second half has left behind it; gap recovery afterwards
    takes those from it and the result is the same as searching every gap afterwards."""
    _mediapipe()
    import copy
    import threading
    import time
    from engine.observe.follow import follow_video, survey_video
    from engine.observe.landmarker import MediaPipePoseLandmarker
    from engine.observe.redetect import recover_gaps
    from engine.observe.track import select_subject
    from engine.video.decode import open_video

    class Landmarker:
        def __init__(self):
            self._lm = MediaPipePoseLandmarker(num_poses=1)
            self._slow = threading.current_thread().name == "second-half"

        def detect_all(self, rgb, ts):
            if self._slow:
                time.sleep(0.02)
            return self._lm.detect_all(rgb, ts)

        def close(self):
            self._lm.close()

    cap, info = open_video(DEMO)
    cap.release()
    survey, tid, _ = survey_video(DEMO, (0, 230))
    prior = SubjectPrior(survey, tid, select_subject(survey, tid))
    obs, stats = follow_video(DEMO, (0, 230), 1, None, (info.width, info.height), info.fps, prior, halves=True,
                              make_landmarker=Landmarker, gap_search_s=1.0)
    early = stats["searched_gaps"]
    assert stats["halves"] is not None and early, stats
    a, b = copy.deepcopy(obs), copy.deepcopy(obs)
    n = recover_gaps(DEMO, a, searched=early)
    assert n == recover_gaps(DEMO, b) > 0
    for name in ("keypoints", "world", "bbox", "masks", "valid", "track_id"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


class _Recording:
    """A landmarker that finds nobody and notes the frames it was asked about."""

    def __init__(self, log, kind):
        self.log, self.kind = log, kind

    def detect_all(self, rgb, timestamp_s):
        self.log.append((self.kind, int(round(30 * timestamp_s))))
        return []

    def close(self):
        pass


def test_crops_use_the_detector_alone_and_mediapipes_tracking_only_while_a_steady_person_is_near(monkeypatch):
    """IMAGE mode (the person detector on each crop) while nobody is near the subject; a
    tracking landmarker from a few frames before a steady other person comes near until they
    part; a one-sighting track on the subject (a false detection, as on R1) starts nothing."""
    from engine.observe import follow
    survey = list(range(0, 49, 6))
    near = {f: [450, 100, 550, 400] if 24 <= f <= 36 else [850, 100, 950, 400] for f in survey}
    dets, tid = _survey({0: {f: [400, 100, 500, 400] for f in survey}, 1: near,
                         2: {0: [420, 120, 480, 300]}})
    assert SubjectPrior(dets, tid, 0).steady(1) and not SubjectPrior(dets, tid, 0).steady(2)

    def run():
        log = []
        frames = ((i, i / 30.0, np.zeros((600, 1000, 3), np.uint8)) for i in range(49))
        _, stats = follow._follow_rows(frames, (1000, 600), 30.0, SubjectPrior(dets, tid, 0), camera_motion=False,
                                       make_landmarker=lambda: _Recording(log, "image"),
                                       make_tracker=lambda: _Recording(log, "tracker"))
        return dict((f, k) for k, f in log), len(log), stats
    kind, calls, stats = run()
    assert calls == 49 and sorted(kind) == list(range(49))       # one landmarker per crop
    tracked = [f for f in range(49) if kind[f] == "tracker"]
    assert set(range(24, 37)) <= set(tracked)                    # all through the overlap
    assert tracked == list(range(tracked[0], tracked[-1] + 1))   # one span, one tracker
    assert stats["tracked_from"] == [tracked[0]]
    assert kind[0] == "image" and all(kind[f] == "image" for f in range(45, 49))
    # it starts that many frames sooner than where the two first come near
    lookahead = follow.TRACK_NEAR[1]
    monkeypatch.setattr(follow, "TRACK_NEAR", (follow.TRACK_NEAR[0], 0))
    kind_now, _, _ = run()
    first_now = min(f for f in range(49) if kind_now[f] == "tracker")
    assert first_now - tracked[0] >= lookahead // 2, (first_now, tracked[0])


def test_the_image_mode_landmarker_keeps_nothing_between_frames():
    _mediapipe()
    from engine.observe.landmarker import MediaPipePoseLandmarker
    cap = cv2.VideoCapture(str(DEMO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(2)]
    cap.release()
    crop = [np.ascontiguousarray(f[0:600, 350:950]) for f in frames]   # the jumper on the box
    lm = MediaPipePoseLandmarker(num_poses=1, tracking=False)
    try:
        assert lm.stateless and lm.cache_key.endswith("-image")
        a = lm.detect_all(crop[0], 0.0)
        lm.detect_all(crop[1], 1 / 30)
        b = lm.detect_all(crop[0], 2 / 30)   # the first crop again, after another: the same pose
    finally:
        lm.close()
    assert len(a) == 1 and len(b) == 1
    assert np.array_equal(a[0].keypoints, b[0].keypoints)
