"""The RTS smoother: removes noise, follows rotations through ±180°, keeps real peaks with keep_peaks."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.clean.smooth import PRESETS, SmoothingSettings, load_preset, rts_smooth, rts_smooth_frames, smooth_rotations


def _angle_err(a, b):
    return np.degrees((Rotation.from_rotvec(a.reshape(-1, 3)).inv() * Rotation.from_rotvec(b.reshape(-1, 3))).magnitude())


def test_rts_reduces_noise_on_a_smooth_signal():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    truth = np.sin(2 * np.pi * 0.5 * t)[:, None]
    obs = truth + rng.normal(scale=0.05, size=truth.shape)
    sm = rts_smooth(obs, np.full_like(obs, 0.05 ** 2), 1 / 30, accel_std=20.0)
    assert np.sqrt(np.mean((sm - truth) ** 2)) < 0.5 * np.sqrt(np.mean((obs - truth) ** 2))


def test_rts_bridges_unmeasured_frames_linearly():
    obs = np.arange(20, dtype=float)[:, None]
    valid = np.ones(20, bool); valid[8:12] = False
    sm = rts_smooth(np.where(valid[:, None], obs, 0.0), np.full_like(obs, 1e-4), 1.0, 1e-3, valid=valid)
    np.testing.assert_allclose(sm[8:12, 0], obs[8:12, 0], atol=1e-2)


def test_rts_on_measured_frames_only_predicts_across_gaps_and_keeps_the_shape():
    rng = np.random.default_rng(2)
    T = 40
    truth = np.stack([np.linspace(0, 1, T), np.linspace(2, -1, T)], -1)[:, None].repeat(3, 1)  # (T,3,2)
    idx = np.r_[3:15, 22:37]                     # unmeasured before, between and after
    obs = truth[idx] + rng.normal(scale=0.01, size=(len(idx), 3, 2))
    var = np.full(obs.shape, 0.01 ** 2)
    sm = rts_smooth_frames(obs, var, idx, 1 / 30, 1.0)
    assert sm.shape == obs.shape
    # the same as the smoother over frames idx[0]..idx[-1] with the gap left unmeasured
    grid = np.arange(idx[0], idx[-1] + 1)
    valid = np.isin(grid, idx)
    full = np.zeros((len(grid), 6)); full[valid] = obs.reshape(len(idx), -1)
    ref = rts_smooth(full, np.full_like(full, 0.01 ** 2), 1 / 30, 1.0, valid=valid)[valid]
    np.testing.assert_allclose(sm.reshape(len(idx), -1), ref, rtol=0, atol=1e-12)
    assert np.abs(sm - truth[idx]).max() < 0.03   # a straight line stays on the line across the gap


def test_rotation_smoothing_follows_a_spin_through_180_degrees():
    rng = np.random.default_rng(1)
    T, fps = 240, 30.0
    angle = np.linspace(0, 4 * np.pi, T)  # two full turns about a tilted axis
    axis = np.array([0.3, 0.9, 0.2]) / np.linalg.norm([0.3, 0.9, 0.2])
    truth = Rotation.from_rotvec(angle[:, None] * axis).as_rotvec()[:, None]
    noisy = (Rotation.from_rotvec(rng.normal(scale=0.05, size=(T, 3))) * Rotation.from_rotvec(truth[:, 0])).as_rotvec()[:, None]
    sm = smooth_rotations(noisy, np.full((T, 1), 0.05), np.ones(T, bool), fps, SmoothingSettings(rotation_accel=50))
    assert _angle_err(sm, truth).mean() < 0.6 * _angle_err(noisy, truth).mean()
    assert _angle_err(sm, truth).max() < 10.0  # a sign flip would show as ~180°


def test_keep_peaks_preserves_a_fast_event():
    # A joint whips through 120° in ~0.05 s (a throwing arm: ~2,400°/s) amid slow motion.
    fps, T = 240.0, 240
    t = np.arange(T) / fps
    angle = np.radians(120) / (1 + np.exp(-(t - 0.5) / 0.008))
    truth = (angle[:, None] * np.array([0, 0, 1.0]))[:, None]
    rng = np.random.default_rng(2)
    noisy = truth + rng.normal(scale=0.01, size=truth.shape)
    sig = np.full((T, 1), 0.01)
    peak = lambda r: np.degrees(np.abs(np.diff(r[:, 0, 2])).max() * fps)  # noqa: E731
    plain = smooth_rotations(noisy, sig, np.ones(T, bool), fps, SmoothingSettings(rotation_accel=100))
    sharp = smooth_rotations(noisy, sig, np.ones(T, bool), fps,
                             SmoothingSettings(rotation_accel=100, keep_peaks=True))
    true_peak = peak(truth)
    assert abs(peak(sharp) - true_peak) < abs(peak(plain) - true_peak)
    assert peak(sharp) > 0.8 * true_peak
    flat = slice(0, 80)  # before the event the noise is still removed
    assert np.abs(sharp - truth)[flat].mean() < 0.5 * np.abs(noisy - truth)[flat].mean()


def test_presets_load():
    assert load_preset("none") is None
    for name in PRESETS[1:]:
        assert isinstance(load_preset(name), SmoothingSettings)
    assert load_preset("analysis").keep_peaks


def test_grouped_peak_gate_keeps_a_whip_at_30_fps():
    # The analysis preset's joint-level manoeuvre test: a 3-D whip of 150° in ~2 frames (a
    # pitcher's arm, ~2,200°/s as sampled at 30 fps) with angular noise keeps ≥ 95 % of its
    # peak speed; the same smoother without keep_peaks loses at least twice as much.
    fps, T = 30.0, 60
    t = np.arange(T) / fps
    angle = np.radians(150) / (1 + np.exp(-(t - 1.0) / 0.008))
    axis = np.array([0.2, 0.3, 0.93]) / np.linalg.norm([0.2, 0.3, 0.93])
    truth = (angle[:, None] * axis)[:, None]
    rng = np.random.default_rng(4)
    noisy = (Rotation.from_rotvec(rng.normal(scale=0.03, size=(T, 3))) * Rotation.from_rotvec(truth[:, 0])).as_rotvec()[:, None]
    sig = np.full((T, 1), 0.05)

    def peak(r):
        rot = Rotation.from_rotvec(r[:, 0])
        return np.degrees((rot[:-1].inv() * rot[1:]).magnitude().max() * fps)
    grouped = smooth_rotations(noisy, sig, np.ones(T, bool), fps, load_preset("analysis"))
    plain = smooth_rotations(noisy, sig, np.ones(T, bool), fps,
                             SmoothingSettings(**{**load_preset("analysis").__dict__, "keep_peaks": False}))
    assert peak(grouped) > 0.95 * peak(truth)
    assert abs(peak(grouped) - peak(truth)) < 0.5 * abs(peak(plain) - peak(truth))
    assert _angle_err(grouped, truth)[:20].mean() < _angle_err(noisy, truth)[:20].mean()  # still smooths


def test_root_does_not_follow_a_depth_outlier_in_analysis():
    from test_clean import _standing_motion_with_root_jitter
    from test_baseline import REST
    from engine.clean.smooth import smooth_motion
    m = _standing_motion_with_root_jitter()
    m.trans[45, 1] += 1.0                    # one frame's depth 1 m off
    m.joints[45] += [0, 1.0, 0]
    out = smooth_motion(m, REST, load_preset("analysis"))
    assert abs(out.trans[45, 1] - np.median(out.trans[:, 1])) < 0.25


def test_presets_order_from_light_to_smooth():
    """light keeps more of the motion's fast moments than animation (lower process noise
    smooths harder); both were tuned on the validation split (docs/clean_motion.md)."""
    assert load_preset("light").rotation_accel > load_preset("animation").rotation_accel
    assert load_preset("light").translation_accel > load_preset("animation").translation_accel


def test_peak_limb_speed_of_a_swinging_wrist():
    from training.tune_smoothing import END_EFFECTORS, peak_limb_speed
    fps, T = 30.0, 300
    t = np.arange(T) / fps
    joints = np.zeros((T, 24, 3))
    joints[:, :, 0] = 2.0 * t[:, None]                       # the whole body walks at 2 m/s
    w = END_EFFECTORS[0]
    joints[:, w, 2] += 0.5 * np.sin(2 * np.pi * t)           # one wrist swings: peak 0.5·2π m/s
    got = peak_limb_speed(joints, fps)
    assert 0.95 * np.pi < got <= np.pi + 1e-9                 # relative to the hips, not the walk
    valid = np.ones(T, bool)
    valid[::2] = False                                       # no two consecutive valid frames
    assert np.isnan(peak_limb_speed(joints, fps, valid))


def test_tune_smoothing_cli_scores_every_setting(monkeypatch, capsys):
    """training.tune_smoothing: the source once, then one cleaned row per (accel, floor), with the
    peak-speed ratio; two tiny synthetic sequences stand in for the val split."""
    from random_motions import smooth_motion
    from training import tune_smoothing
    from training.bench import synthetic as bench
    from training.data.synth import Synthesizer

    def tiny_h1(body, seed=0, split="test", **_):
        assert split == "val"                                   # tuning never reads the test split
        rng = np.random.default_rng(seed)
        out = []
        for i in range(2):
            p, t, b = smooth_motion(24, seed=i)
            s = Synthesizer(body)(p, t, b, rng, camera="tripod")
            s.update(gt_joints_cam=s["joints_cam"], clip=f"13_0{i}", seen_subject=False)
            out.append(s)
        return out
    monkeypatch.setattr(bench, "h1_samples", tiny_h1)
    monkeypatch.setattr(bench, "ESTIMATORS", dict(bench.ESTIMATORS))
    assert tune_smoothing.main(["--source", "baseline", "--rotation-accel", "50,300"]) == 0
    out = capsys.readouterr().out
    for accel in (50, 300):
        assert f"baseline+light[rotation_accel={accel},min_angle_sigma=0.02] | 2 |" in out
    rows = [line for line in out.splitlines() if line.startswith("| baseline") and line.count("|") == 4]
    assert len(rows) == 3                                        # raw + 2 settings in the peak table
    ratios = {r.split("|")[1].strip(): float(r.split("|")[2]) for r in rows}
    assert all(0 < v < 10 for v in ratios.values())
    # harder smoothing keeps less of the peak speed
    assert ratios["baseline+light[rotation_accel=50,min_angle_sigma=0.02]"] < ratios["baseline"]


def test_tune_smoothing_pitch_protocol_varies_the_gate(monkeypatch, capsys):
    """--protocol pitch --peak-gate 0,2: keep_peaks off and on as two rows, scored like H2 with
    the throwing arm's peaks (tiny synthetic stand-ins for the training pitch)."""
    from random_motions import smooth_motion
    from training import tune_smoothing
    from training.bench import synthetic as bench
    from training.data.synth import Synthesizer

    def tiny_pitch(body, seed=0, **_):
        rng = np.random.default_rng(seed)
        out = []
        for i in range(2):
            p, t, b = smooth_motion(24, seed=i)
            s = Synthesizer(body)(p, t, b, rng, camera="broadcast")
            s.update(gt_joints_cam=s["joints_cam"], clip="124_01", seen_subject=False,
                     arm_gt=bench.arm_peaks(s["joints"], float(s["fps"])))
            out.append(s)
        return out
    monkeypatch.setattr(tune_smoothing, "pitch_dev_samples", tiny_pitch)
    monkeypatch.setattr(bench, "ESTIMATORS", dict(bench.ESTIMATORS))
    assert tune_smoothing.main(["--protocol", "pitch", "--source", "baseline", "--base", "analysis",
                                "--rotation-accel", "400", "--peak-gate", "0,2"]) == 0
    out = capsys.readouterr().out
    assert "### Throwing arm" in out and "ground truth" in out
    for gate in (0, 2):
        assert out.count(f"baseline+analysis[rotation_accel=400,min_angle_sigma=0.02,peak_gate={gate}]") == 2
