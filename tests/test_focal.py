"""Per-clip focal from perspective (engine.estimate.focal): a known focal recovered from synthetic
observations with MediaPipe-like noise, the default when it cannot be, invalid frames ignored;
R1 (real video with a calibration) within the error bound docs/focal.md reports."""
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.estimate.focal import FocalEstimate, estimate_focal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from measure_focal import DATA, r1_rows, synthetic_observations  # noqa: E402

# Tolerances: over 8 seeds (scripts/measure_focal.py, docs/focal.md) the largest cost-minimum
# error is 5.1 % at 0.7×/4 m, 7.0 % at 1×/5 m and 8.3 % at 2×/8 m (2D noise 1 % of the height,
# world-landmark noise 4 cm per axis); the bounds leave about 1.5× that.
CASES = [(0.7, 4.0, 0.08), (1.0, 5.0, 0.10), (2.0, 8.0, 0.13)]


@pytest.mark.parametrize("factor,distance,tol", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_a_known_focal_from_noisy_synthetic_observations(factor, distance, tol, seed):
    obs, f = synthetic_observations(factor, distance, seed=seed)
    est = estimate_focal(obs)
    assert isinstance(est, FocalEstimate)
    assert est.method == "perspective", est.reason
    assert abs(est.focal_px / f - 1) < tol
    assert est.factor == pytest.approx(est.focal_px / 1920)
    assert est.frames_used == 60
    assert 0 < est.spread < 0.15                 # measured 0.02-0.11
    # off-centre and portrait: the same bound
    obs, f = synthetic_observations(factor, distance, seed=seed, offset=(0.25, -0.1), size=(1080, 1920))
    assert abs(estimate_focal(obs).focal_px / f - 1) < tol


def test_the_cost_has_its_minimum_at_the_true_focal_without_noise():
    obs, f = synthetic_observations(1.3, 5.0, pixel_noise=0.0, world_noise=0.0, offset=(0.2, 0.1))
    assert estimate_focal(obs).focal_px == pytest.approx(f, rel=2e-3)
    # camera-aligned world landmarks: exact with the ray rotation off, biased with it on
    obs, f = synthetic_observations(1.3, 5.0, pixel_noise=0.0, world_noise=0.0, offset=(0.3, 0.0),
                                    ray_aligned=False)
    assert estimate_focal(obs, ray=False).focal_px == pytest.approx(f, rel=2e-3)
    assert abs(estimate_focal(obs).best_factor / 1.3 - 1) > 0.05


@pytest.mark.parametrize("factor,distance", [(1.0, 40.0), (3.0, 60.0)])
@pytest.mark.parametrize("seed", range(4))
def test_a_far_small_person_gives_the_default(factor, distance, seed):
    obs, _ = synthetic_observations(factor, distance, seed=seed)
    est = estimate_focal(obs)
    assert est.method == "default" and est.focal_px == 1920.0 and est.factor == 1.0
    assert est.reason
    assert est.frames_used == 60


def test_the_search_range_bounds_the_estimate():
    obs, _ = synthetic_observations(3.0, 12.0, seed=0)     # the truth outside [0.5, 2]
    est = estimate_focal(obs, lo=0.5, hi=2.0)
    assert est.method == "default" and "no minimum" in est.reason
    with pytest.raises(ValueError):
        estimate_focal(obs, lo=1.2, hi=4.0)


def _subset(obs, keep):
    return SimpleNamespace(keypoints=obs.keypoints[keep], world=obs.world[keep], valid=obs.valid[keep],
                           frame_size=obs.frame_size, fps=obs.fps)


def test_invalid_frames_are_ignored():
    obs, f = synthetic_observations(1.0, 5.0, frames=80, seed=3)
    rng = np.random.default_rng(0)
    bad = rng.random(80) < 0.4
    noisy = SimpleNamespace(**vars(obs))
    noisy.keypoints = obs.keypoints.copy()
    noisy.world = obs.world.copy()
    noisy.keypoints[bad, :, :2] = rng.uniform(0, 1920, size=(bad.sum(), 33, 2))  # garbage …
    noisy.world[bad] = np.nan
    noisy.world[np.flatnonzero(bad)[::2]] = 5.0
    noisy.valid = ~bad                                                          # … marked invalid
    a, b = estimate_focal(noisy), estimate_focal(_subset(obs, ~bad))
    assert a.frames_used == b.frames_used == int((~bad).sum())
    assert a.focal_px == b.focal_px and a.spread == b.spread
    assert abs(a.focal_px / f - 1) < 0.10
    # a frame without enough seen keypoints counts as invalid too
    few = SimpleNamespace(**vars(obs))
    few.keypoints = obs.keypoints.copy()
    few.keypoints[:5, 11:, 2] = 0.1
    assert estimate_focal(few).frames_used == 75
    # too few usable frames: the default, with the reason
    none = SimpleNamespace(**vars(obs))
    none.valid = np.zeros(80, bool)
    none.valid[:5] = True
    est = estimate_focal(none)
    assert est.method == "default" and est.frames_used == 5 and "usable frames" in est.reason


def test_long_clips_are_fast():
    obs, _ = synthetic_observations(1.0, 5.0, frames=300, seed=0)
    estimate_focal(obs)
    t0 = time.perf_counter()
    est = estimate_focal(obs)
    assert time.perf_counter() - t0 < 0.5                  # ~20 ms on the 2-core machine
    assert est.frames_used == 300 and est.method == "perspective"


@pytest.mark.slow
def test_r1_error_bound():
    """R1 (4 real cameras, calibrated focal ≈ 0.875 × the long side): the estimate is within the
    bound docs/focal.md reports (every camera within 40 %, the mean within 22 %; measured 38.5 % and 19.8 %) — worse than the default's
    14-15 %, which the docs say plainly; it stays a sane value inside the search range."""
    if not (DATA / "calibration" / "Calib.qca.txt").exists():
        pytest.skip(f"needs {DATA} (Pose2Sim Demo_SinglePerson): run "
                    "scripts/measure_detector_noise_multiview.py --fetch")
    rows = r1_rows()
    errs = []
    for name, obs, true, dflt, est, dt in rows:
        assert 0.5 * dflt <= est.focal_px <= 4.0 * dflt
        assert est.frames_used >= 90, name
        errs.append(abs(est.focal_px / true - 1))
    assert max(errs) < 0.40 and np.mean(errs) < 0.22, errs


def test_the_pipeline_records_the_focal_it_used_and_auto_is_opt_in():
    from engine.argtypes import focal_length
    from engine.errors import EngineError
    from engine.pipeline import PipelineOptions, choose_focal
    obs, f = synthetic_observations(0.7, 4.0, seed=1)
    default = float(max(obs.frame_size))
    assert choose_focal(obs, None) == (None, {"px": default, "method": "default"})
    assert choose_focal(obs, 1234.0) == (1234.0, {"px": 1234.0, "method": "given"})
    px, info = choose_focal(obs, "auto")
    assert info["method"] == "perspective" and abs(px / f - 1) < 0.1 and info["px"] == pytest.approx(px, abs=0.1)
    far, _ = synthetic_observations(1.0, 60.0, seed=0)
    assert choose_focal(far, "auto")[0] is None                        # not identifiable: the default
    assert PipelineOptions(focal="auto").check().focal == "auto"
    with pytest.raises(EngineError, match="focal length must be a number of pixels > 0 or 'auto'"):
        PipelineOptions(focal="wide").check()
    assert focal_length("AUTO") == "auto" and focal_length("1500") == 1500.0


def test_cli_focal_argument_errors_are_one_line(capsys):
    from engine.cli import main
    with pytest.raises(SystemExit) as e:
        main(["nothing.mp4", "--focal", "abc"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--focal: must be a number of pixels > 0 or 'auto', got abc" in err[0]
