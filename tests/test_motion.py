"""The Motion file: round trip, validation, clear errors for wrong or truncated files."""
import numpy as np
import pytest

from engine.errors import EngineError
from engine.motion import FORMAT_VERSION, Motion, load_motion


def make_motion(T=12, K=33):
    rng = np.random.default_rng(0)
    valid = np.ones(T, bool)
    valid[3] = False
    poses = rng.normal(scale=0.2, size=(T, 72))
    trans = rng.normal(size=(T, 3))
    joints = rng.normal(size=(T, 24, 3))
    for a in (poses, trans, joints):
        a[~valid] = np.nan
    return Motion(poses=poses, trans=trans, betas=np.zeros(10), fps=30.0, joints=joints,
                  joint_sigma=np.full((T, 24), 0.05), valid=valid,
                  keypoints2d=rng.random((T, K, 3)), contacts=np.zeros((T, 4), bool),
                  camera_intrinsics=np.eye(3), camera_extrinsics=np.tile(np.eye(4), (T, 1, 1)),
                  frame_size=np.array([640, 360]), source={"video": "x.mp4", "frame_range": [0, T]})


def test_round_trip(tmp_path):
    m = make_motion()
    m.save(tmp_path / "m.npz")
    r = load_motion(tmp_path / "m.npz")
    np.testing.assert_allclose(r.poses, m.poses.astype(np.float32), equal_nan=True)
    assert r.poses.dtype == np.float32 and r.valid.dtype == bool
    assert r.source["frame_range"] == [0, 12] and r.format_version == FORMAT_VERSION
    assert not r.valid[3] and np.isnan(r.poses[3]).all()
    with np.load(tmp_path / "m.npz") as z:  # plain numpy can read it
        assert z["poses"].shape == (12, 72)


def test_truncated_file_gives_one_clear_error(tmp_path):
    make_motion().save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EngineError, match="not a readable Motion file"):
        load_motion(tmp_path / "cut.npz")


def test_wrong_file_and_shapes(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(EngineError, match="missing"):
        load_motion(tmp_path / "other.npz")
    m = make_motion()
    m.joints = m.joints[:, :20]
    with pytest.raises(EngineError, match="joints"):
        m.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_nan_on_a_valid_frame_is_rejected(tmp_path):
    m = make_motion()
    m.poses[0, 5] = np.nan
    with pytest.raises(EngineError, match="non-finite"):
        m.save(tmp_path / "m.npz")


def test_newer_format_is_refused(tmp_path):
    m = make_motion()
    m.format_version = FORMAT_VERSION + 1
    m.save(tmp_path / "m.npz")
    with pytest.raises(EngineError, match="update"):
        load_motion(tmp_path / "m.npz")
