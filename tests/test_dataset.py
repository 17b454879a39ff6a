"""Seed-2 training windows: shapes, camera-frame targets, normalisation, splits."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.estimate.network_inputs import NUM_FEATURES  # noqa: E402
from training.data.capsule_body import capsule_body  # noqa: E402
from training.temporal.dataset import (SyntheticWindows, WindowSampler, collate, fixed_windows,  # noqa: E402
                              load_clips)
from training.geometry import JointShapeModel, forward_kinematics  # noqa: E402
from training.prvipe.model import PrVIPE  # noqa: E402
from random_motions import smooth_motion, write_cache  # noqa: E402

BODY = capsule_body()
CFG = dict(window=16, seq_len=24, views=2, windows_per_view=2, shuffle=4)


def _clips():
    return [(f"0{i}_01", *smooth_motion(40, seed=i)) for i in range(2)]


def test_batch_shapes_and_dtypes():
    prv = PrVIPE(width=32).eval()
    it = iter(SyntheticWindows(_clips(), BODY, prv, seed=0, **CFG))
    b = collate([next(it) for _ in range(3)])
    T = CFG["window"]
    want = {"features": (3, T, NUM_FEATURES), "homography": (3, T, 135), "prvipe_mu": (3, T, 32),
            "prvipe_sigma": (3, T, 32), "rotmats": (3, T, 24, 3, 3), "betas": (3, 10),
            "joints2d": (3, T, 24, 2), "joints2d_vis": (3, T, 24), "joints_cam": (3, T, 24, 3), "valid": (3, T),
            "ik_prior": (3, T, 144), "keypoints99": (3, T, 99)}
    assert {k: tuple(v.shape) for k, v in b.items()} == want
    for k, v in b.items():
        assert v.dtype == (torch.bool if k == "valid" else torch.float32), k
        assert torch.isfinite(v.float()).all(), k
    R = b["rotmats"].double()
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(R), atol=1e-5)
    assert set(np.unique(b["joints2d_vis"].numpy())) <= {0.0, 1.0}
    assert (b["prvipe_sigma"] > 0).all() and b["prvipe_mu"].abs().sum() > 0


def test_targets_are_in_the_camera_frame_and_normalised_like_the_input():
    s = WindowSampler(_clips(), BODY, **CFG)
    w = s.sequence(np.random.default_rng(3))[0]
    # FK of the camera-frame rotations reproduces the camera-frame joints (root-centred)
    jm = JointShapeModel(BODY)
    betas = torch.as_tensor(w["betas"])[None]
    j = forward_kinematics(torch.as_tensor(w["rotmats"])[None].double(), jm(betas).double())[0].numpy()
    gt = w["joints_cam"].astype(np.float64)
    np.testing.assert_allclose(j - j[:, :1], gt - gt[:, :1], atol=2e-3)
    # the 2D target of the hips lands where the (noisy) input hip keypoints are, in the same units
    ok = w["valid"]
    kp_hips = w["features"][ok][:, [23 * 3, 23 * 3 + 1, 24 * 3, 24 * 3 + 1]].reshape(-1, 2, 2)
    j_hips = w["joints2d"][ok][:, [1, 2]]
    assert np.median(np.linalg.norm(kp_hips - j_hips, axis=-1)) < 0.05


def test_no_prvipe_gives_neutral_embedding_and_fixed_windows_are_deterministic():
    a = fixed_windows(_clips(), BODY, 2, seed=5, **CFG)
    b = fixed_windows(_clips(), BODY, 2, seed=5, **CFG)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["features"], y["features"])
    assert (a[0]["prvipe_mu"] == 0).all() and (a[0]["prvipe_sigma"] == 1).all()


def test_load_clips_by_split(tmp_path):
    cache = write_cache(tmp_path / "cache")
    assert [c[0] for c in load_clips(cache, "train")] == ["01_01", "02_01"]
    assert [c[0] for c in load_clips(cache, "val")] == ["13_01"]
    with pytest.raises(FileNotFoundError):
        load_clips(tmp_path / "nothing", "train")


def test_a_stale_retarget_cache_is_refused(tmp_path):
    """Clips retargeted by an older retargeter would train the model on other joints than the
    benchmarks score: loading them fails with the rebuild command."""
    from random_motions import write_cache
    from training.temporal.dataset import load_clips
    cache = write_cache(tmp_path / "c")
    assert len(load_clips(cache, "train")) == 2
    z = dict(np.load(cache / "01_01.npz"))
    z.pop("retarget_version")
    np.savez(cache / "01_01.npz", **z)
    with pytest.raises(ValueError, match="rebuild the cache"):
        load_clips(cache, "train")


def test_speed_augmentation_plays_motions_faster():
    """speed_range: windows keep their length; at 3× the same 16 frames span more motion."""
    clips = [(f"0{i}_01", *smooth_motion(120, seed=i)) for i in range(2)]
    slow = WindowSampler(clips, BODY, **{**CFG, "speed_range": (1.0, 1.0)})
    fast = WindowSampler(clips, BODY, **{**CFG, "speed_range": (2.9, 3.0)})
    ws, wf = slow.sequence(np.random.default_rng(0)), fast.sequence(np.random.default_rng(0))
    assert wf and all(w["features"].shape[0] == CFG["window"] for w in wf)
    step = lambda w: np.linalg.norm(np.diff(w["joints_cam"] - w["joints_cam"][:, :1], axis=0), axis=-1).mean()  # noqa: E731
    assert np.mean([step(w) for w in wf]) > 2 * np.mean([step(w) for w in ws])


def test_body_scale_augmentation_grows_the_world_landmarks_not_the_targets():
    """body_scale_range: the observed world landmarks grow with the body; the rotation and
    shape targets (what the model predicts) do not change."""
    clips = _clips()
    cfg = {**CFG, "views": 1, "windows_per_view": 1}
    plain = WindowSampler(clips, BODY, **cfg).sequence(np.random.default_rng(3))[0]
    tall = WindowSampler(clips, BODY, **{**cfg, "body_scale_range": (1.3, 1.3)}).sequence(np.random.default_rng(3))[0]
    np.testing.assert_allclose(tall["rotmats"], plain["rotmats"], atol=1e-6)
    np.testing.assert_array_equal(tall["betas"], plain["betas"])
    spread = lambda w: np.nanmean(np.abs(w["features"][:, 99:198]))  # noqa: E731
    assert 1.15 < spread(tall) / spread(plain) < 1.45


def test_pose_augmentation_changes_joint_angles_and_keeps_hinges():
    """perturb_pose: listed ball joints turn, knees/elbows keep their flexion axis, joints not
    listed (wrists, ankles, neck) are untouched; with probability 0 nothing changes."""
    from engine.body.kinematics import axis_angle_to_matrix
    from engine.body.skeleton import JOINT_INDEX as J
    from training.data.synth import perturb_pose
    from training.temporal.dataset import draw_body_variation
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (30, 72))
    out = perturb_pose(poses, np.random.default_rng(1)).reshape(30, 24, 3)
    p = poses.reshape(30, 24, 3)
    for name in ("left_wrist", "right_ankle", "neck", "head"):
        np.testing.assert_array_equal(out[:, J[name]], p[:, J[name]])
    for name in ("left_knee", "right_elbow"):      # same axis, another angle
        a, b = p[:, J[name]], out[:, J[name]]
        np.testing.assert_allclose(np.cross(a, b), 0, atol=1e-9)
        assert not np.allclose(a, b)
    R0, R1 = axis_angle_to_matrix(p[:, J["right_shoulder"]]), axis_angle_to_matrix(out[:, J["right_shoulder"]])
    turn = np.degrees(np.arccos(np.clip((np.trace(R1 @ np.swapaxes(R0, 1, 2), axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert 0.5 < turn.mean() < 90 and turn.std() > 0       # an offset that drifts over the sequence
    scale, same = draw_body_variation(np.random.default_rng(2), poses, {})
    assert scale == 1.0 and same is poses
