"""The synthetic observation generator: shapes, determinism, noise, mirroring, homographies."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.body.skeleton import JOINT_INDEX as J
from engine.observe import LM, NUM_LANDMARKS
from training.data.noise import PROVISIONAL, load_noise_model
from training.data.standin import capsule_body
from training.data.synth import (Synthesizer, apply_detector_noise, homographies, look_at,
                                 mirror_motion, sample_camera, to_observations)

BODY = capsule_body()


def _motion(T=24, seed=0):
    rng = np.random.default_rng(seed)
    poses = rng.normal(scale=0.15, size=(T, 72))
    poses[:, :3] = Rotation.from_euler("x", 90, degrees=True).as_rotvec()  # stand up (Y-up → Z-up)
    trans = np.zeros((T, 3))
    trans[:, 0] = np.linspace(0, 1, T)
    trans[:, 2] = 0.95
    return poses, trans


def test_shapes_dtypes_and_determinism():
    poses, trans = _motion()
    S = Synthesizer(BODY)
    a = S(poses, trans, np.zeros(10), np.random.default_rng(7))
    b = S(poses, trans, np.zeros(10), np.random.default_rng(7))
    T = len(poses)
    assert a["keypoints"].shape == (T, NUM_LANDMARKS, 3) and a["keypoints"].dtype == np.float32
    assert a["world"].shape == (T, NUM_LANDMARKS, 3)
    assert a["camera_motion"].shape == (T, 135)
    assert a["silhouette"].shape == (T, 64, 64) and a["silhouette"].dtype == np.uint8
    assert a["depth"].shape == (T, 64, 64)
    assert a["valid"].dtype == bool and a["joints"].shape == (T, 24, 3)
    assert (a["silhouette"] > 0).mean() > 0.05
    for k in ("keypoints", "world", "silhouette", "depth", "camera_motion", "K", "extrinsics"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    obs = to_observations(a)
    assert obs.num_frames == T and obs.masks.shape[0] == T


def test_noise_model_is_applied():
    rng = np.random.default_rng(1)
    T = 200
    true = np.tile(np.linspace([500, 200], [700, 800], NUM_LANDMARKS)[None], (T, 1, 1))
    occ = np.zeros((T, NUM_LANDMARKS), bool)
    occ[:, LM["left_wrist"]] = True
    inside = np.ones((T, NUM_LANDMARKS), bool)
    noise = dict(PROVISIONAL, sigma_rel=np.asarray(PROVISIONAL["sigma_rel"]))
    kp, valid = apply_detector_noise(rng, true, occ, inside, (1920, 1080), noise)
    ok = valid
    err = np.linalg.norm(kp[ok, :, :2] - true[ok], axis=-1)
    assert 1.0 < np.median(err) < 30.0                   # a few pixels on a 600 px person
    assert kp[ok, LM["left_wrist"], 2].mean() < 0.6 < kp[ok, LM["nose"], 2].mean()
    assert err[:, LM["left_wrist"]].mean() > err[:, LM["right_wrist"]].mean()   # occluded: noisier
    assert PROVISIONAL["version"].startswith("provisional")
    m = load_noise_model()                  # measured file when present, else provisional
    assert m["sigma_rel"].shape == (NUM_LANDMARKS,) and np.all(m["sigma_rel"] > 0)


def test_mirror_variant_swaps_left_and_right():
    poses, trans = _motion(8, seed=3)
    mp, mt = mirror_motion(poses, trans, BODY)
    j = BODY.joints(poses, None, trans)
    jm = BODY.joints(mp, None, mt)
    reflect = np.array([-1.0, 1, 1])
    np.testing.assert_allclose(jm[:, J["left_wrist"]], j[:, J["right_wrist"]] * reflect, atol=1e-6)
    np.testing.assert_allclose(jm[:, J["right_knee"]], j[:, J["left_knee"]] * reflect, atol=1e-6)
    S = Synthesizer(BODY)
    s = S(poses, trans, np.zeros(10), np.random.default_rng(0), mirror=True, camera="tripod")
    assert s["mirrored"]
    np.testing.assert_allclose(s["joints"][:, J["left_ankle"]], j[:, J["right_ankle"]] * reflect, atol=1e-5)


def test_homographies_of_a_synthetic_pan_map_points_at_infinity():
    rng = np.random.default_rng(2)
    pelvis = np.stack([np.linspace(0, 3, 30), np.zeros(30), np.full(30, 1.0)], 1)
    K, E, (w, h), kind = sample_camera(rng, pelvis, "tripod")
    E[:, :3, :3] = look_at(np.zeros((30, 3)) + [0, -8, 1.5], pelvis)  # a pan
    H = homographies(K, E)
    d = np.array([[0.3, 1.0, 0.2], [-0.5, 1.0, -0.1], [0.1, 1.0, 0.05]])  # far directions
    for t in range(1, 30):
        x0 = (K[t - 1] @ E[t - 1, :3, :3] @ d.T).T
        x1 = (K[t] @ E[t, :3, :3] @ d.T).T
        p = (H[t] @ x0.T).T
        np.testing.assert_allclose(p[:, :2] / p[:, 2:], x1[:, :2] / x1[:, 2:], atol=1e-6)
    assert not np.allclose(H[15], np.eye(3))
