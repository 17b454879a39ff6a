"""The synthetic observation generator: shapes, determinism, noise, mirroring, homographies."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from engine.body import kinematics as K
from engine.body.skeleton import JOINT_INDEX as J, PARENTS
from engine.observe import LM, NUM_LANDMARKS
from training.data.noise import PROVISIONAL, load_noise_model, sg_jitter_ratio, world_noise_sigma
from training.data.capsule_body import capsule_body
from training.data.synth import (Synthesizer, _ar1, apply_detector_noise, arm_angle_motion,
                                 augment_motion, change_speed, homographies, look_at, mirror_motion,
                                 sample_camera, to_observations)

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


def test_speed_augmentation_resamples_the_motion():
    poses, trans = _motion(40, seed=4)
    fast, tf = change_speed(poses, trans, 1.25)
    slow, ts = change_speed(poses, trans, 0.8)
    assert len(fast) == 32 and len(slow) == 49          # (T − 1) / speed + 1 frames at the same fps
    np.testing.assert_allclose(fast[0], poses[0], atol=1e-9)
    np.testing.assert_allclose(tf[8], trans[10], atol=1e-9)    # the same path, in less time
    np.testing.assert_allclose(fast[8], poses[10], atol=1e-9)
    s = Synthesizer(BODY)(poses, trans, np.zeros(10), np.random.default_rng(0), camera="tripod", speed=1.25)
    assert s["keypoints"].shape[0] == 32 and s["speed"] == 1.25


def test_arm_angle_turns_the_arm_about_the_chest_forward_axis():
    T = 3
    poses, trans = _motion(T, seed=5)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out = arm_angle_motion(poses, 30.0, side)
        g = BODY.joints(poses, None, trans)
        h = BODY.joints(out, None, trans)
        changed = [k for k in range(24) if not np.allclose(g[:, k], h[:, k], atol=1e-9)]
        assert set(changed) == {J[f"{side}_{n}"] for n in ("elbow", "wrist", "hand")}
        rot = K.axis_angle_to_matrix(poses.reshape(T, 24, 3))
        G = rot.copy()
        for j in range(1, 24):
            G[:, j] = G[:, PARENTS[j]] @ rot[:, j]
        fwd = G[:, J["spine3"]] @ np.array([0, 0, 1.0])      # the chest's forward axis (world)
        sh = g[:, J[f"{side}_shoulder"]]
        a, b = g[:, J[f"{side}_wrist"]] - sh, h[:, J[f"{side}_wrist"]] - sh
        R = Rotation.from_rotvec(fwd * np.radians(30) * sign).as_matrix()
        np.testing.assert_allclose(np.einsum("tij,tj->ti", R, a), b, atol=1e-9)
    rng = np.random.default_rng(0)
    p2, t2, info = augment_motion(poses, trans, rng)
    assert 0.8 <= info["speed"] <= 1.25 and all(abs(x) <= 25 for x in info["arm_angles"])


def test_world_landmark_noise_is_temporally_correlated_and_calibrated():
    m = load_noise_model()
    rho = m["world_temporal_rho"]
    assert 0 < rho < 1
    sigma = world_noise_sigma(m)
    if m.get("world_sigma_is_jitter"):       # measured file: calibrated to its SG-residual jitter
        assert np.all(sigma > np.asarray(m["world_sigma_m"]))
    # the same measurement as scripts/measure_detector_noise.py gives back the jitter it is fed
    rng = np.random.default_rng(3)
    x = _ar1(rng, (20000,), 0.6) * 0.05 / sg_jitter_ratio(0.6)
    e = np.array([-0.0909, 0.0606, 0.1688, 0.2338, 0.2554, 0.2338, 0.1688, 0.0606, -0.0909])  # SG(9,2) centre
    resid = x[4:-4] - np.convolve(x, e[::-1], "valid")
    est = 1.4826 * np.median(np.abs(resid - np.median(resid))) / np.sqrt(0.7446)
    assert abs(est / 0.05 - 1) < 0.05
    lag1 = np.corrcoef(x[1:], x[:-1])[0, 1]
    assert abs(lag1 - 0.6) < 0.03
    # in the generator: world-landmark errors of consecutive frames are correlated
    poses, trans = _motion(120, seed=6)
    nz = dict(load_noise_model(), world_depth_scale=[1.0, 1.0], world_scale=[1.0, 1.0])
    s = Synthesizer(BODY, noise=nz)(poses, trans, np.zeros(10), np.random.default_rng(1), camera="tripod",
                                    render=False)
    R, tc = s["extrinsics"][:, :3, :3], s["extrinsics"][:, :3, 3]
    lm_cam = np.einsum("tij,tnj->tni", R, s["landmarks3d"]) + tc[:, None]
    hip = 0.5 * (lm_cam[:, LM["left_hip"]] + lm_cam[:, LM["right_hip"]])
    ok = s["valid"][1:] & s["valid"][:-1]
    e3 = s["world"] - (lm_cam - hip[:, None])
    c = np.corrcoef(e3[1:][ok].ravel(), e3[:-1][ok].ravel())[0, 1]
    assert 0.4 < c < 0.8


def test_multiview_noise_reference_changes_only_what_it_measured():
    """reference="multiview": 2D σ, outliers and world depth error from the multi-view block;
    visibility, blur, swaps and the world x/y noise stay as in the self-consistency model."""
    import json
    from training.data.noise import NOISE_PATH, load_noise_model, world_noise_sigma
    block = json.loads(NOISE_PATH.read_text())["multiview_reference"]
    sc, mv = load_noise_model(), load_noise_model(reference="multiview")
    want = np.mean(np.asarray(block["keypoints2d"]["sigma_per_box_height_detector_estimate"]), axis=1)
    assert np.allclose(mv["sigma_rel"], want) and not np.allclose(sc["sigma_rel"], want)
    assert np.median(mv["sigma_rel"] / sc["sigma_rel"]) > 1.2            # the reference finds more error
    w_sc, w_mv = world_noise_sigma(sc), world_noise_sigma(mv)
    assert np.allclose(w_mv[:, :2], w_sc[:, :2])
    assert np.allclose(w_mv[:, 2], block["depth"]["sigma_m"]) and np.median(w_mv[:, 2]) > 2 * np.median(w_sc[:, 2])
    for k in ("swap_rate", "blur_gain", "vis_visible", "world_temporal_rho", "world_depth_scale"):
        assert mv[k] == sc[k], k
    assert mv["version"].endswith("+multiview")
    with pytest.raises(ValueError, match="unknown noise reference"):
        load_noise_model(reference="mocap")


def test_the_generator_places_landmarks_by_the_chosen_convention():
    """'rules' puts the 12 limb landmarks on the SMPL joints; the default (learned) does not."""
    from engine.body.model import load_body_model
    from engine.observe import LM
    from training.data.synth import Poser
    from engine.body.skeleton import JOINT_INDEX as J
    body = load_body_model()
    poses = np.zeros((2, 72))
    poses[:, 0] = np.pi / 2
    trans = np.zeros((2, 3))
    limbs = [f"{s}_{n}" for s in ("left", "right") for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
    _, joints, lm_rules = Poser(body, None, "rules")(poses, trans)
    _, _, lm_learned = Poser(body, None)(poses, trans)
    i, j = [LM[n] for n in limbs], [J[n] for n in limbs]
    np.testing.assert_allclose(lm_rules[:, i], joints[:, j], atol=1e-5)
    assert np.linalg.norm(lm_learned[:, i] - joints[:, j], axis=-1).max() > 0.02
