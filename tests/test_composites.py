"""The composite clips (tests/data/composites, made by scripts/make_composites.py) agree with
their ground truth: frame count and size, one entry per copy per frame, boxes inside the frame,
each copy's landmarks inside its own box, the crossing crosses and the batter covers the pitcher."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from engine.observe.track import iou_matrix
from engine.observe.types import mask_size

ROOT = Path(__file__).resolve().parent.parent
COMPOSITES = ROOT / "tests" / "data" / "composites"
CLIPS = ("pair_side_by_side", "crossing", "strip4", "broadcast_like")


def _meta(name):
    path = COMPOSITES / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"needs {path} (made by scripts/make_composites.py)")
    return json.loads(path.read_text())


def _script():
    spec = importlib.util.spec_from_file_location("make_composites", ROOT / "scripts" / "make_composites.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", CLIPS)
def test_clip_matches_its_ground_truth(name):
    from engine.video.decode import iter_frames, open_video
    meta = _meta(name)
    cap, info = open_video(COMPOSITES / f"{name}.mp4")
    cap.release()
    W, H = meta["size"]
    assert (info.width, info.height) == (W, H) and info.fps == pytest.approx(meta["fps"])
    assert sum(1 for _ in iter_frames(COMPOSITES / f"{name}.mp4")) == meta["frames"] == len(meta["per_frame"])
    P = len(meta["copies"])
    masks = np.load(COMPOSITES / f"{name}_masks.npz")
    mw, mh = mask_size(W, H)
    assert masks["visible"].shape == (meta["frames"], P, mh, mw)
    assert masks["keypoints"].shape == (meta["frames"], P, 33, 3)
    for t, f in enumerate(meta["per_frame"]):
        assert f["frame"] == t and sorted(f["order"]) == list(range(P))
        assert [p["id"] for p in f["people"]] == list(range(P))
        for p in f["people"]:
            x0, y0, x1, y1 = p["box"]
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert 0 < p["visible_fraction"] <= 1
            A = np.array(p["transform"])
            assert A.shape == (2, 3) and abs(A[0, 1]) == 0 and abs(A[0, 0]) == pytest.approx(A[1, 1])
            assert 62 <= p["source_frame"] < 186
            kp = masks["keypoints"][t, p["id"]]
            vis = kp[:, 2] > 0.5
            g = 0.05 * (y1 - y0)  # landmarks are joint centres, the box is the silhouette's
            inside = ((kp[vis, 0] >= x0 - g) & (kp[vis, 0] <= x1 + g) & (kp[vis, 1] >= y0 - g) & (kp[vis, 1] <= y1 + g))
            assert inside.mean() >= 0.95, (name, t, p["id"])
        vis_area = masks["visible"][t].astype(float).sum((1, 2))
        assert (vis_area > 0).all()


def test_crossing_crosses_once_with_the_mirrored_copy_in_front():
    meta = _meta("crossing")
    cx = np.array([[(p["box"][0] + p["box"][2]) / 2 for p in f["people"]] for f in meta["per_frame"]])
    side = np.sign(cx[:, 0] - cx[:, 1])
    assert np.count_nonzero(np.diff(side)) == 1  # one crossing
    assert all(f["order"] == [0, 1] for f in meta["per_frame"])  # copy 1 in front throughout
    vis = np.array([[p["visible_fraction"] for p in f["people"]] for f in meta["per_frame"]])
    assert (vis[:, 1] == 1).all() and vis[:, 0].min() < 0.9  # the back copy is partly hidden


def test_broadcast_batter_covers_the_pitcher_for_about_a_third():
    meta = _meta("broadcast_like")
    f = meta["per_frame"]
    covered = np.array([p["people"][0]["visible_fraction"] < 0.99 for p in f])
    assert 0.2 <= covered.mean() <= 0.5, covered.mean()
    assert min(p["people"][0]["visible_fraction"] for p in f) > 0.3  # partly, never wholly
    h = [[p["box"][3] - p["box"][1] for p in fr["people"]] for fr in f]
    assert all(b > 1.3 * a for a, b in h)  # the batter is the larger


def test_strip_has_four_small_people_side_by_side():
    meta = _meta("strip4")
    W, H = meta["size"]
    assert W / H == pytest.approx(1768 / 496, rel=0.01)
    for f in meta["per_frame"]:
        boxes = np.array([p["box"] for p in f["people"]], float)
        assert len(boxes) == 4 and (iou_matrix(boxes, boxes) - np.eye(4)).max() == 0
        assert ((boxes[:, 3] - boxes[:, 1]) < 0.7 * H).all()


def test_affine_and_compositing_helpers():
    mod = _script()
    A = mod.affine(0.5, True, (100.0, 200.0), (40.0, 60.0))
    np.testing.assert_allclose(A @ [100, 200, 1], [40, 60])
    np.testing.assert_allclose(A @ [110, 200, 1], [35, 60])  # mirrored, half size
    plate = np.zeros((4, 4, 3), np.uint8)
    a_back = np.zeros((4, 4), np.float32)
    a_back[:, :3] = 1
    a_front = np.zeros((4, 4), np.float32)
    a_front[:, 2:] = 1
    img, vis = mod.compose(plate, [(np.full((4, 4, 3), 100.0), a_back), (np.full((4, 4, 3), 200.0), a_front)])
    assert img[0, 0, 0] == 100 and img[0, 2, 0] == 200 and img[0, 3, 0] == 200
    assert mod.alpha_box(vis[0]) == [0, 0, 2, 4] and mod.alpha_box(vis[1]) == [2, 0, 4, 4]
