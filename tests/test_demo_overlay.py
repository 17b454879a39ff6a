"""Both estimators on the real demo clip: projected joints fall inside the person's mask on 3
frames (the overlay PNGs land in tests/artifacts for a look)."""
import cv2
import numpy as np
import pytest

from conftest import DEMO_VIDEO
from engine.estimate import baseline, temporal
from engine.body.model import load_body_model
from engine.estimate.motion_fields import to_motion
from engine.observe import observe_frames
from training.eval.overlay import overlay_frames, projected_joints
from engine.video.decode import iter_frames, open_video

FRAMES = (30, 60, 90)


@pytest.fixture(scope="module")
def demo_obs():
    cap, info = open_video(DEMO_VIDEO)
    cap.release()
    return observe_frames(iter_frames(DEMO_VIDEO, (0, max(FRAMES) + 1)), (info.width, info.height), info.fps), info


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["baseline", "temporal"])
def test_projected_joints_lie_in_the_person_mask(artifacts, demo_obs, estimator):
    obs, info = demo_obs
    assert obs.valid[list(FRAMES)].all()
    if estimator == "temporal":
        fields = temporal.fit(obs, load_body_model(), weights=temporal.SHIPPED_DIR, device="cpu")
    else:
        fields = baseline.fit(obs, load_body_model())
    m = to_motion(fields, obs, "open_body", source={"video": str(DEMO_VIDEO), "frame_range": [0, obs.num_frames]})
    inside = total = 0
    for t in FRAMES:
        px = projected_joints(m, t)
        mask = cv2.resize(obs.masks[t], (info.width, info.height), interpolation=cv2.INTER_NEAREST) > 127
        # The stored mask is coarse (one cell ≈ width/160 px): judge at that resolution, i.e.
        # a joint within one mask cell of the silhouette counts as on it.
        cell = int(np.ceil(info.width / obs.masks.shape[2]))
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((2 * cell + 1, 2 * cell + 1), np.uint8)) > 0
        # joints the detector saw (visibility > 0.5 on the landmarks the joint comes from; both
        # estimators report σ by the same visibility rule)
        seen = m.joint_sigma[t] < 0.03 + 0.15 * 0.5
        xy = np.round(px[seen]).astype(int)
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < info.width) & (xy[:, 1] >= 0) & (xy[:, 1] < info.height)
        hit = np.zeros(len(xy), bool)
        hit[ok] = mask[xy[ok, 1], xy[ok, 0]]
        inside += hit.sum()
        total += len(xy)
    cv2.imwrite(str(artifacts / f"demo_overlay_{estimator}.png"),
                overlay_frames(m, DEMO_VIDEO, FRAMES, masks=obs.masks, width=600))
    assert total >= 3 * 15, total
    assert inside / total >= 0.8, f"{inside}/{total} visible joints inside the mask"
