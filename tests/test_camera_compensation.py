"""Camera motion compensation: a panning/zooming camera becomes a rotating camera in the
Motion's extrinsics, so a walking subject walks through the world instead of staying put."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.estimate.baseline import fit
from engine.estimate.camera import CAMERA_TO_WORLD
from engine.observe.camera_motion import camera_rotations
from training.data.noise import load_noise_model
from training.data.capsule_body import capsule_body
from training.data.synth import Synthesizer, homographies, to_observations


def _K(f, w=1920, h=1080):
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def test_rotations_and_zoom_recovered_from_exact_homographies():
    T = 50
    rng = np.random.default_rng(0)
    steps = Rotation.from_rotvec(np.c_[rng.normal(0, 0.002, T), 0.01 + rng.normal(0, 0.002, T),
                                       rng.normal(0, 0.003, T)])  # pan ~0.6°/frame, tilt, roll
    R = np.zeros((T, 3, 3)); R[0] = CAMERA_TO_WORLD.T
    for t in range(1, T):
        R[t] = steps[t].as_matrix() @ R[t - 1]
    f = 1500.0 * np.exp(np.linspace(0, 0.3, T))                 # a 35 % zoom-in
    Ks = np.stack([_K(v) for v in f])
    E = np.tile(np.eye(4), (T, 1, 1)); E[:, :3, :3] = R
    H = homographies(Ks, E)
    R_est, f_est = camera_rotations(H, Ks[0], R[0])
    ang = Rotation.from_matrix(np.swapaxes(R_est, 1, 2) @ R).magnitude()
    assert np.degrees(ang).max() < 1e-3
    np.testing.assert_allclose(f_est, f, rtol=1e-6)
    # a missing homography is taken as no motion, not a failure
    H[10] = np.nan
    R_gap, _ = camera_rotations(H, Ks[0], R[0], zoom=False)
    assert np.isfinite(R_gap).all()


def _quiet_noise():
    n = load_noise_model()
    n["sigma_rel"] = np.zeros_like(n["sigma_rel"])
    for k in ("outlier_rate", "swap_rate", "dropout_rate", "blur_gain"):
        n[k] = 0.0
    n["world_sigma_m"] = 0.0 * np.asarray(n["world_sigma_m"])
    n["world_depth_scale"] = n["world_scale"] = (1.0, 1.0)
    return n


def test_a_panning_camera_does_not_make_the_body_slide():
    body = capsule_body()
    T = 45
    poses = np.zeros((T, 72)); poses[:, :3] = Rotation.from_euler("x", 90, degrees=True).as_rotvec()
    trans = np.zeros((T, 3)); trans[:, 0] = np.linspace(0, 3.0, T); trans[:, 2] = 0.95
    s = Synthesizer(body, noise=_quiet_noise())(poses, trans, np.zeros(10), np.random.default_rng(5),
                                                camera="broadcast_side")   # follows, and zooms out
    obs = to_observations(s)
    obs.homographies = s["homographies"]
    f_true = float(s["K"][0, 0, 0])
    truth = s["joints"][:, 0].astype(np.float64)
    err = {}
    for comp in (True, False):
        p = fit(obs, body, focal=f_true, compensate_camera=comp)
        v = p["valid"]
        if comp:  # the camera model is consistent: camera-frame joints are the observed ones
            E = p["camera_extrinsics"]
            cam = np.einsum("tij,tnj->tni", E[:, :3, :3], p["joints"]) + E[:, None, :3, 3]
            np.testing.assert_allclose(cam[v, 0], s["joints_cam"][v, 0], atol=0.01 * s["joints_cam"][v, 0, 2].mean())
        # the world path, up to the world's orientation (our first camera is level)
        a, b = p["joints"][v, 0] - p["joints"][v, 0].mean(0), truth[v] - truth[v].mean(0)
        u, _, vt = np.linalg.svd(a.T @ b)
        Rk = (u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt).T
        err[comp] = np.linalg.norm(a @ Rk.T - b, axis=1).mean()
    walked = np.linalg.norm(truth[-1] - truth[0])
    assert err[True] < 0.05 * walked
    assert err[False] > 5 * err[True]  # without it the camera's pan and zoom move the body
