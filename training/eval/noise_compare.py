"""Real detector vs the training-data generator, same poses and cameras (numpy + scipy).

The statistics of MediaPipe's error on the Pose2Sim 4-camera clip (``training.eval.pose2sim_demo``)
and the same statistics of ``training.data.synth``'s observations of the same 3D poses through
the same calibrated cameras (``scripts/compare_detector_noise.py`` runs both; docs/detector_noise.md,
section "Real detector vs the generator"):

- 2D: residual against the leave-one-view-out reference's reprojection, centred per view and
  landmark, in box heights, per landmark group and by visibility decile (``residuals_2d``);
- depth: hip-relative world-landmark z against the 4-view triangulation in each camera
  (``depth_errors``), its correlation across joints within a frame (``cross_joint_correlation``)
  and across frames (``autocorrelation``);
- left/right swaps as runs of consecutive swapped frames (``run_lengths``);
- landmark definitions: triangulated landmarks minus the joints of a body fitted to them, in the
  body's frame (``fit_body``, ``body_frame_offsets``), and limb-length ratios (``limb_ratios``).

The generator side (``generator_views``) poses the fitted body, looks at it through each real
camera (pinhole: the generator has no lens distortion, so its views are scored with
distortion-free copies of the cameras) and runs ``Synthesizer.observe``, the generator's own
projection, occlusion and noise path.
"""
from dataclasses import replace

import numpy as np

from engine.body import kinematics as K
from engine.body.skeleton import JOINT_INDEX as J
from engine.estimate import ik, joint_fit
from engine.observe import LM, NUM_LANDMARKS
from training.eval import multiview as mv

# The landmark groups the detector-noise statistics are reported by: the face (nose to mouth),
# each body pair, the hands (pinky, index, thumb) and the feet (heel, foot index).
GROUPS = {
    "face": list(range(LM["nose"], LM["left_shoulder"])),
    **{f"{n}s": [LM[f"left_{n}"], LM[f"right_{n}"]] for n in ("shoulder", "elbow", "wrist")},
    "hands": list(range(LM["left_pinky"], LM["left_hip"])),
    **{f"{n}s": [LM[f"left_{n}"], LM[f"right_{n}"]] for n in ("hip", "knee", "ankle")},
    "feet": list(range(LM["left_heel"], NUM_LANDMARKS)),
}
OFFSET_LANDMARKS = ("hip", "shoulder", "knee", "ankle")
HIPS = [LM["left_hip"], LM["right_hip"]]
VIS = 0.5


# ------------------------------------------------------------------ generic statistics
def run_lengths(flags):
    """Lengths of the runs of consecutive True values along the last axis, all rows pooled."""
    f = np.atleast_2d(np.asarray(flags, bool))
    out = []
    for row in f.reshape(-1, f.shape[-1]):
        d = np.diff(np.r_[0, row.astype(np.int8), 0])
        out.extend((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).tolist())
    return np.asarray(out, int)


def autocorrelation(x, max_lag=10):
    """Autocorrelation at lags 1..max_lag of series along axis 0 (x: (T,...), NaN = missing),
    each series centred on its own mean, pooled over series: Σ a_t a_{t+k} / √(Σ a_t² Σ a_{t+k}²)
    over the pairs where both are finite."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    x = x - np.nanmean(x, axis=0, keepdims=True)
    out = np.full(max_lag, np.nan)
    for k in range(1, max_lag + 1):
        a, b = x[:-k], x[k:]
        m = np.isfinite(a) & np.isfinite(b)
        if m.sum() > 2:
            a, b = a[m], b[m]
            out[k - 1] = float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return out


def cross_joint_correlation(err, exclude=()):
    """Pearson correlation (J,J) between the columns of err (N,J) (pairwise complete rows) and
    the mean of its off-diagonal entries, leaving out the ``exclude`` columns."""
    err = np.asarray(err, np.float64)
    Jn = err.shape[1]
    C = np.full((Jn, Jn), np.nan)
    for i in range(Jn):
        for j in range(i, Jn):
            m = np.isfinite(err[:, i]) & np.isfinite(err[:, j])
            if m.sum() > 10 and np.std(err[m, i]) > 0 and np.std(err[m, j]) > 0:
                C[i, j] = C[j, i] = np.corrcoef(err[m, i], err[m, j])[0, 1]
    keep = [j for j in range(Jn) if j not in set(exclude)]
    sub = C[np.ix_(keep, keep)]
    off = sub[~np.eye(len(keep), dtype=bool)]
    return C, float(np.nanmean(off))


def sigma_by_visibility(norm, vis, edges=np.linspace(0, 1, 11), min_count=30):
    """Robust scale 1.4826·median(|r|) of residual norms by visibility bin (None: < min_count)."""
    norm, vis = np.ravel(norm), np.ravel(vis)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        k = (vis >= a) & ((vis < b) | (b >= 1)) & np.isfinite(norm)
        out.append(float(1.4826 * np.median(norm[k])) if k.sum() >= min_count else None)
    return out


def group_values(per_landmark, agg=np.nanmedian, groups=None):
    """{group: agg over the group's landmarks (and any trailing axes)} of a (33,...) array;
    ``groups`` defaults to ``GROUPS``."""
    a = np.asarray(per_landmark, np.float64)
    return {g: float(agg(a[idx])) for g, idx in (GROUPS if groups is None else groups).items()}


# ------------------------------------------------------------------ the multi-view statistics
def box_heights(uv):
    """Person height in pixels per view-frame (V,T): the vertical extent of its 33 keypoints."""
    with np.errstate(invalid="ignore"):
        return np.nanmax(uv[..., 1], -1) - np.nanmin(uv[..., 1], -1)


def residuals_2d(cams, uv, vis, vis_ref, box_h, thr=VIS):
    """Detection − leave-one-view-out reference (V,T,33,2), in box heights, centred on each
    view's own per-landmark median (a constant per-view offset, e.g. calibration, is removed);
    references from ``vis_ref``, NaN where the landmark's own visibility ≤ thr."""
    ref = mv.leave_one_out(cams, uv, vis_ref, thr)
    r = (uv - ref) / box_h[..., None, None]
    r = np.where((vis > thr)[..., None], r, np.nan)
    return r - np.nanmedian(r, axis=1, keepdims=True)


def residuals_2d_all(cams, uv, vis, vis_ref, box_h, thr=VIS):
    """As ``residuals_2d`` but at every visibility (for the visibility-decile table), centred
    with the medians of the landmarks seen above ``thr``."""
    ref = mv.leave_one_out(cams, uv, vis_ref, thr)
    r = (uv - ref) / box_h[..., None, None]
    med = np.nanmedian(np.where((vis > thr)[..., None], r, np.nan), axis=1, keepdims=True)
    return r - med


def depth_errors(cams, uv, vis_ref, world, thr=VIS):
    """Hip-relative depth error (V,T,33) of world landmarks (V,T,33,3): per view, its world z
    relative to its hip midpoint × one least-squares scale, minus the 4-view triangulation's
    hip-relative z in that camera. Returns (err, scales (V,))."""
    X = mv.triangulate(cams, uv, np.where(vis_ref > thr, vis_ref, 0.0))
    err, scales = [], []
    for v, c in enumerate(cams):
        Xc = mv.to_camera(c, X)
        zr = Xc[..., 2] - Xc[:, HIPS, 2].mean(1, keepdims=True)
        zm = world[v][..., 2] - world[v][:, HIPS, 2].mean(1, keepdims=True)
        ok = np.isfinite(zr) & np.isfinite(zm)
        s = float(np.sum(zr[ok] * zm[ok]) / np.sum(zm[ok] ** 2))
        scales.append(s)
        err.append(np.where(ok, s * zm - zr, np.nan))
    return np.stack(err), np.asarray(scales)


def swap_flags(cams, uv, vis):
    """(V,T) left/right-swapped detections (``pose2sim_demo.lr_swaps``'s rule)."""
    from training.eval.pose2sim_demo import lr_swaps
    return lr_swaps(cams, uv, vis)


# ------------------------------------------------------------------ body fit and definitions
def fit_body(X, vis, body):
    """Fit the body's joints to triangulated landmarks X (T,33,3), world Z up, metres.

    The body (shape 0) is scaled uniformly to the landmarks' hip-to-ankle and hip-to-shoulder
    lengths; its rotations start from the analytic IK and are fitted by ``joint_fit`` to the
    IK targets (``ik.smpl_targets_from_landmarks``: hips, knees, ankles, shoulders, elbows,
    wrists are the landmarks themselves), σ from visibility. What the fitted joints cannot
    follow (the body's fixed proportions: hip and shoulder width, bone lengths) is the
    landmark-definition offset. Returns dict(poses (T,72), trans (T,3) for the scaled rest,
    scale, rest (24,3) unscaled, joints (T,24,3), root (T,3,3) global pelvis rotation)."""
    rest = body.rest_joints(np.zeros(10))
    scale = float(np.nanmedian(_trunk_leg(X, LM)) / _trunk_leg(rest[None], J)[0])
    rest_s = scale * rest
    tgt, conf = ik.smpl_targets_from_landmarks(X, vis, ik.neck_fraction(rest_s))
    init = ik.rotations_from_joint_positions(tgt, rest_s, ik.head_rotation(X))
    fit = joint_fit.fit_sequence(tgt, ik.visibility_sigma(conf), init, rest_s)
    root = K.axis_angle_to_matrix(fit["poses"][:, :3])
    return dict(poses=fit["poses"], trans=fit["trans"], scale=scale, rest=rest, joints=fit["joints"], root=root)


def _trunk_leg(P, idx):
    """Hip-midpoint→shoulder-midpoint plus mean thigh and shank length of points P (T,N,3)."""
    def d(a, b):
        return np.linalg.norm(P[:, idx[a]] - P[:, idx[b]], axis=-1)
    hip = 0.5 * (P[:, idx["left_hip"]] + P[:, idx["right_hip"]])
    sh = 0.5 * (P[:, idx["left_shoulder"]] + P[:, idx["right_shoulder"]])
    legs = 0.5 * (d("left_hip", "left_knee") + d("left_knee", "left_ankle")
                  + d("right_hip", "right_knee") + d("right_knee", "right_ankle"))
    return np.linalg.norm(sh - hip, axis=-1) + legs


def body_frame_offsets(X, joints, root):
    """Landmark − joint offsets in the body's frame (canonical: x left, y up, z forward), for
    hips, shoulders, knees, ankles of both sides → {"left_hip": (T,3), ...} in metres."""
    out = {}
    for side in ("left", "right"):
        for n in OFFSET_LANDMARKS:
            d = X[:, LM[f"{side}_{n}"]] - joints[:, J[f"{side}_{n}"]]
            out[f"{side}_{n}"] = np.einsum("tji,tj->ti", root, d)      # Rᵀ·d
    return out


def limb_ratios(P, idx):
    """Median forearm/upper-arm and shank/thigh length ratios of points P (T,N,3), both sides
    pooled; ``idx`` maps joint names (LM for landmarks, JOINT_INDEX for body joints)."""
    def length(a, b):
        return np.linalg.norm(P[:, idx[a]] - P[:, idx[b]], axis=-1)
    fa = [length(f"{s}_elbow", f"{s}_wrist") / length(f"{s}_shoulder", f"{s}_elbow") for s in ("left", "right")]
    sk = [length(f"{s}_knee", f"{s}_ankle") / length(f"{s}_hip", f"{s}_knee") for s in ("left", "right")]
    return dict(forearm_upper_arm=float(np.nanmedian(fa)), shank_thigh=float(np.nanmedian(sk)))


# ------------------------------------------------------------------ the generator's views
def pinhole(cams):
    """The cameras without lens distortion (what the generator's projection models)."""
    return [replace(c, dist=np.zeros_like(np.asarray(c.dist, np.float64))) for c in cams]


def generator_views(synth, fit, cams, rng, render=False):
    """The generator's observations of the fitted body through each camera (pinhole, real K,
    R, t, frame size): ``Synthesizer.observe`` with the noise model of ``synth`` →
    uv (V,T,33,2) (NaN where dropped), vis (V,T,33), world (V,T,33,3), occluded (V,T,33)."""
    P = synth.poser(np.zeros(10))
    s = fit["scale"]
    verts, joints, lm3 = P(fit["poses"], fit["trans"] + (s - 1.0) * fit["rest"][0])
    pc = joints[:, :1]
    verts = (pc + s * (verts - pc)).astype(np.float32)
    lm3 = pc + s * (lm3 - pc)
    joints = pc + s * (joints - pc)
    T = len(joints)
    uv, vis, world, occ = [], [], [], []
    for c in cams:
        Ks = np.repeat(np.asarray(c.K, np.float64)[None], T, 0)
        E = np.repeat(np.eye(4)[None], T, 0)
        E[:, :3, :3], E[:, :3, 3] = c.R, c.t
        o = synth.observe(verts, joints, lm3, Ks, E, tuple(c.size), rng, P, render)
        uv.append(o["keypoints"][..., :2])
        vis.append(np.nan_to_num(o["keypoints"][..., 2]))
        world.append(o["world"].astype(np.float64))
        occ.append(o["occluded"])
    return dict(uv=np.stack(uv).astype(np.float64), vis=np.stack(vis).astype(np.float64),
                world=np.stack(world), occluded=np.stack(occ), landmarks3d=lm3, joints=joints)


# ------------------------------------------------------------------ all statistics of one set
def statistics(cams, uv, vis, world, fit, max_lag=10):
    """Every compared statistic of one set of views (real or generated) → dict of arrays.

    Swapped detections are left out of the references (kept in their own view's residuals),
    as in ``scripts/measure_detector_noise_multiview.py``."""
    swaps = swap_flags(cams, uv, vis)
    vis_ref = vis.copy()
    vis_ref[swaps] = 0.0
    bh = box_heights(uv)
    r = residuals_2d(cams, uv, vis, vis_ref, bh)
    r_all = residuals_2d_all(cams, uv, vis, vis_ref, bh)
    sig = mv.robust_sigma(r.reshape(-1, 33, 2))                      # (33,2)
    err, scales = depth_errors(cams, uv, vis_ref, world)
    V, T = err.shape[:2]
    C, mean_corr = cross_joint_correlation(err.reshape(V * T, 33), exclude=HIPS)
    nonhip = [j for j in range(33) if j not in HIPS]
    acf = autocorrelation(err[:, :, nonhip].transpose(1, 0, 2), max_lag)
    X = mv.triangulate(cams, uv, np.where(vis_ref > VIS, vis_ref, 0.0))
    offs = body_frame_offsets(X, fit["joints"], fit["root"])
    seen = vis[np.isfinite(uv[..., 0])]
    return dict(
        residual_acf=autocorrelation(r.transpose(1, 0, 2, 3), max_lag),
        visibility_hist=np.histogram(seen, bins=10, range=(0, 1))[0] / max(seen.size, 1),
        sigma_2d=sig, sigma_2d_group=group_values(sig),
        residual_norm_group={g: np.linalg.norm(r[:, :, idx], axis=-1).ravel() for g, idx in GROUPS.items()},
        residual_group={g: r[:, :, idx].reshape(-1) for g, idx in GROUPS.items()},
        sigma_by_vis=sigma_by_visibility(np.linalg.norm(r_all, axis=-1), vis),
        depth_sigma=mv.robust_sigma(err.reshape(-1, 33)), depth_scales=scales, depth_err=err,
        depth_corr_matrix=C, depth_corr_mean=mean_corr, depth_acf=acf,
        swaps=swaps, swap_runs=run_lengths(swaps),
        offsets={k: np.nanmedian(v, 0) for k, v in offs.items()},
        offsets_sd={k: np.nanstd(v, 0) for k, v in offs.items()},
        limb_ratios=limb_ratios(X, LM), box_h=float(np.nanmedian(bh)))
