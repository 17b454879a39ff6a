"""Uncertainty-aware smoothing of a motion: a Rauch–Tung–Striebel smoother per joint.

Rotations are smoothed on the rotation manifold, never by averaging Euler angles: each
joint's local rotation becomes a unit quaternion with its sign chosen so consecutive frames lie
in one hemisphere (a continuous path on S³, the double cover of SO(3)); the 4-vector path is
smoothed with a constant-velocity Kalman model and renormalised (the chordal approximation of
smoothing on SO(3), accurate below ~90° per frame). The root translation is smoothed the same
way in metres.

A joint's observation noise comes from its σ (``joint_sigma``, metres) divided by the length
of the bone it drives, so confident frames move little and uncertain ones lean on their
neighbours. With ``keep_peaks`` a frame whose innovation is improbable under the model
(normalised innovation² above ``peak_gate``; with ``peak_groups`` the mean over a joint's four
quaternion components) gets its process noise raised for that step (a standard
manoeuvre-adaptive filter, our choice): fast real events such as a pitcher's arm stay sharp.
It applies to rotations only; the root's observation noise is anisotropic (depth along the
camera ray, ``translation_variance``). Invalid frames are skipped (the filter predicts across
them) and stay invalid.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.rotations import continuous_quaternions

PRESET_DIR = Path(__file__).resolve().parents[2] / "presets" / "smoothing"
PRESETS = ("none", "light", "animation", "analysis")


@dataclass
class SmoothingSettings:
    rotation_accel: float = 400.0     # process noise: angular acceleration std (rad/s²)
    translation_accel: float = 20.0   # process noise: root acceleration std (m/s²)
    min_angle_sigma: float = 0.02     # floor on a joint's angular observation noise (rad)
    depth_sigma_ratio: float = 0.08   # root depth noise as a share of camera distance (our estimate)
    keep_peaks: bool = False
    peak_gate: float = 16.0           # normalised innovation² that marks a real fast event
    peak_groups: bool = False         # test a joint's mean NIS over its 4 quaternion components


def load_preset(name):
    """Settings of a named preset from presets/smoothing/NAME.json (None for 'none')."""
    if name in (None, "none"):
        return None
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown smoothing preset '{name}' (choose from {', '.join(PRESETS)})")
    data = json.loads(path.read_text())
    data.pop("description", None)
    return SmoothingSettings(**data)


def rts_smooth(obs, obs_var, dt, accel_std, valid=None, keep_peaks=False, peak_gate=16.0, groups=None):
    """Constant-velocity RTS smoother over time for N independent scalar series.

    obs (T,N), obs_var (T,N) measurement variances, accel_std (N,) or scalar process noise.
    Returns the smoothed positions (T,N). Rows where ``valid`` is False are not measured.
    ``groups`` (N,) ints: with ``keep_peaks`` the manoeuvre test uses the mean normalised
    innovation² of each group (e.g. a joint's 4 quaternion components) instead of each series'.
    """
    T, N = obs.shape
    valid = np.ones(T, bool) if valid is None else valid
    q = np.broadcast_to(np.asarray(accel_std, float) ** 2, (N,))
    F01 = dt
    Q = np.array([dt ** 4 / 4, dt ** 3 / 2, dt ** 2])  # q·[[Q00,Q01],[Q01,Q11]]
    xp = np.zeros((T, N, 2)); Pp = np.zeros((T, N, 3))  # predicted (P as p00, p01, p11)
    xf = np.zeros((T, N, 2)); Pf = np.zeros((T, N, 3))
    first = int(np.argmax(valid)) if valid.any() else 0
    x = np.stack([obs[first], np.zeros(N)], -1)
    P = np.stack([obs_var[first], np.zeros(N), np.full(N, 1e2)], -1)
    for t in range(T):
        if t > 0:
            x = np.stack([x[:, 0] + F01 * x[:, 1], x[:, 1]], -1)
            P = np.stack([P[:, 0] + 2 * F01 * P[:, 1] + F01 ** 2 * P[:, 2] + q * Q[0],
                          P[:, 1] + F01 * P[:, 2] + q * Q[1], P[:, 2] + q * Q[2]], -1)
        if valid[t]:
            S = P[:, 0] + obs_var[t]
            innov = obs[t] - x[:, 0]
            if keep_peaks and t > 0:
                # A manoeuvre: where the innovation is improbable (NIS > gate), add process
                # noise of the model's shape until the innovation is one standard deviation.
                nis = innov ** 2 / S
                if groups is not None:
                    g_nis = np.bincount(groups, nis) / np.bincount(groups)
                    trig = g_nis[groups] > peak_gate
                    extra = np.where(trig, np.maximum(g_nis[groups] - 1.0, 0.0) * S / Q[0], 0.0)
                else:
                    extra = np.where(nis > peak_gate, (innov ** 2 - S) / Q[0], 0.0)
                P = P + extra[:, None] * Q
                S = P[:, 0] + obs_var[t]
            xp[t], Pp[t] = x, P
            k0, k1 = P[:, 0] / S, P[:, 1] / S
            x = np.stack([x[:, 0] + k0 * innov, x[:, 1] + k1 * innov], -1)
            P = np.stack([(1 - k0) * P[:, 0], (1 - k0) * P[:, 1], P[:, 2] - k1 * P[:, 1]], -1)
        else:
            xp[t], Pp[t] = x, P
        xf[t], Pf[t] = x, P
    xs = xf.copy()
    for t in range(T - 2, -1, -1):
        # C = Pf F^T Pp^-1 (2×2 per series)
        pf, pp = Pf[t], Pp[t + 1]
        a00 = pf[:, 0] + F01 * pf[:, 1]; a01 = pf[:, 1]
        a10 = pf[:, 1] + F01 * pf[:, 2]; a11 = pf[:, 2]
        det = pp[:, 0] * pp[:, 2] - pp[:, 1] ** 2
        i00, i01, i11 = pp[:, 2] / det, -pp[:, 1] / det, pp[:, 0] / det
        c00 = a00 * i00 + a01 * i01; c01 = a00 * i01 + a01 * i11
        c10 = a10 * i00 + a11 * i01; c11 = a10 * i01 + a11 * i11
        d = xs[t + 1] - xp[t + 1]
        xs[t] = xf[t] + np.stack([c00 * d[:, 0] + c01 * d[:, 1], c10 * d[:, 0] + c11 * d[:, 1]], -1)
    return xs[..., 0]


def rts_smooth_frames(obs, obs_var, idx, dt, accel_std, **kw):
    """``rts_smooth`` of series measured only at the sorted frames ``idx``: obs and obs_var
    (len(idx), ...) the measurements and their variances. The filter runs over every frame from
    idx[0] to idx[-1], predicting across the gaps, and returns the smoothed values at ``idx``
    in obs's shape; ``kw`` goes to ``rts_smooth``."""
    grid = np.arange(idx[0], idx[-1] + 1)
    measured = np.isin(grid, idx)
    x = np.zeros((len(grid), int(np.prod(obs.shape[1:]))))
    var = np.ones_like(x)
    x[measured] = np.reshape(obs, (len(idx), -1))
    var[measured] = np.reshape(obs_var, (len(idx), -1))
    return rts_smooth(x, var, dt, accel_std, valid=measured, **kw)[measured].reshape(np.shape(obs))


def smooth_rotations(rotvecs, angle_sigma, valid, fps, settings):
    """Smooth (T,J,3) local rotation vectors given per-joint angular σ (T,J) in radians.

    Each joint's rotations become hemisphere-continuous unit quaternions, which are smoothed
    as a 4-vector path and renormalised: the chordal approximation of smoothing on SO(3),
    accurate while a joint turns less than ~90° between frames (at 30 fps, 2,700°/s).
    A quaternion component's noise is half the angular noise (|dq| ≈ |dθ|/2).
    """
    T, J, _ = rotvecs.shape
    out = rotvecs.copy()
    idx = np.flatnonzero(valid)
    if len(idx) < 3:
        return out
    q = continuous_quaternions(Rotation.from_rotvec(rotvecs[idx].reshape(-1, 3)).as_quat().reshape(-1, J, 4))
    var = np.broadcast_to((0.5 * np.maximum(angle_sigma[idx], settings.min_angle_sigma))[..., None] ** 2, q.shape)
    sm = rts_smooth_frames(q, var, idx, 1.0 / fps, 0.5 * settings.rotation_accel,
                           keep_peaks=settings.keep_peaks, peak_gate=settings.peak_gate,
                           groups=np.repeat(np.arange(J), 4) if settings.peak_groups else None)
    sm /= np.linalg.norm(sm, axis=-1, keepdims=True)
    out[idx] = Rotation.from_quat(sm.reshape(-1, 4)).as_rotvec().reshape(-1, J, 3)
    return out


def angular_sigma(joint_sigma, rest_joints, parents, leaf_length=0.1):
    """Per-joint angular noise (T,J) rad: the σ of the joints a rotation moves over the bone length."""
    J = len(parents)
    kids = [[c for c in range(J) if parents[c] == j] for j in range(J)]
    out = np.empty_like(joint_sigma)
    for j in range(J):
        if kids[j]:
            lengths = np.array([np.linalg.norm(rest_joints[c] - rest_joints[j]) for c in kids[j]])
            out[:, j] = np.mean(joint_sigma[:, kids[j]] / np.maximum(lengths, 0.03), axis=1)
        else:
            out[:, j] = joint_sigma[:, j] / leaf_length
    return out


def translation_variance(motion, idx, lateral_sigma, settings):
    """Per-axis variance (N,3) of the root: monocular depth along the camera ray is far less
    certain than the lateral position. Diagonal of σ_lat²·I + (σ_depth² − σ_lat²)·d dᵀ, with d
    the unit ray from the camera to the pelvis and σ_depth = ratio × distance."""
    ext = motion.camera_extrinsics[idx].astype(np.float64)
    centre = -np.einsum("nji,nj->ni", ext[:, :3, :3], ext[:, :3, 3])  # −Rᵀt
    ray = motion.joints[idx, 0].astype(np.float64) - centre
    dist = np.linalg.norm(ray, axis=-1)
    d = ray / np.maximum(dist, 1e-6)[:, None]
    lat2 = lateral_sigma[:, None] ** 2
    depth2 = np.maximum((settings.depth_sigma_ratio * dist) ** 2, lateral_sigma ** 2)[:, None]
    return lat2 + (depth2 - lat2) * d ** 2


def smooth_root(motion, translation_accel, settings=None):
    """The root translation (T,3) RTS-smoothed with process noise ``translation_accel`` (m/s²)
    and the anisotropic (depth-along-the-ray) observation noise; invalid frames stay NaN.
    Used with a small ``translation_accel`` to judge foot speeds without the root's jitter."""
    settings = settings or SmoothingSettings()
    valid = motion.valid.astype(bool)
    idx = np.flatnonzero(valid)
    out = np.array(motion.trans, np.float64)
    if len(idx) < 3:
        return out
    sig = np.nan_to_num(motion.joint_sigma[:, 0].astype(np.float64), nan=1.0)
    out[idx] = rts_smooth_frames(motion.trans[idx], translation_variance(motion, idx, sig[idx], settings), idx,
                                 1.0 / motion.fps, translation_accel)
    return out


def smooth_motion(motion, rest_joints, settings, parents=None):
    """Return a copy of ``motion`` with smoothed poses, trans and joints (None: unchanged)."""
    import copy

    from ..body.kinematics import axis_angle_to_matrix, forward_kinematics
    from ..body.skeleton import PARENTS
    if settings is None:
        return motion
    parents = PARENTS if parents is None else parents
    m = copy.deepcopy(motion)
    valid = m.valid.astype(bool)
    idx = np.flatnonzero(valid)
    if len(idx) < 3:
        return m
    T = m.num_frames
    sig = np.nan_to_num(m.joint_sigma.astype(np.float64), nan=1.0)
    rot = smooth_rotations(np.nan_to_num(m.poses.reshape(T, 24, 3).astype(np.float64)),
                           angular_sigma(sig, rest_joints, parents), valid, m.fps, settings)
    # keep_peaks is for rotations only: a root "manoeuvre" is far more often a depth outlier
    # (monocular depth) than a real event, and following it makes the body jump.
    trans = smooth_root(m, settings.translation_accel, settings)[idx]
    m.poses[idx] = rot[idx].reshape(-1, 72)
    m.trans[idx] = trans
    m.joints[idx] = forward_kinematics(axis_angle_to_matrix(rot[idx]), rest_joints, trans, parents)
    return m
