"""The seed-2 temporal estimator at run time (numpy + onnxruntime; no torch).

Loads ``temporal.onnx`` (the part-based uncertainty-aware temporal model) and ``prvipe.onnx``
(its frozen view-invariant pose embedding) from the networks' weights folder
(``engine.estimate.onnx_runtime.weights_dir``: ``$MOCAP_TEMPORAL_WEIGHTS`` when set, else the
shipped ``engine/data/temporal/``, trained on CMU through synthetic observations:
``training/MODEL_CARD_temporal.md``). Export a trained checkpoint with
``python -m training.temporal.export``.

Per clip: the per-frame features (``engine.estimate.network_inputs``, the same code as in
training), the Pr-VIPE embedding of the normalised 2D keypoints, and the 135-d camera-motion
feature (``engine.observe.camera_motion``, from the clip's background homographies) go through
the model in sliding windows (the training window length, half-window overlap, all windows in
one batched run), stitched by a triangular weight (a frame counts most from the window it is
central in) and re-orthonormalised. 6D rotations → rotation matrices → axis-angle; the root
orientation is in the camera frame and is turned into the Z-up world with the camera model
(``engine.estimate.camera.camera_model``: level at the first frame, then panning/zooming as the
background homographies say, so a panning camera does not make the body slide).
Shape = the mean of the windows' predictions. Root translation: per frame, 2D–3D least squares
(``engine.estimate.camera.solve_translation``) between the FK joints of the 12 limb joints
MediaPipe also reports (hips, knees, ankles, shoulders, elbows, wrists) and their detected
pixels, weighted by visibility, with each frame's focal length. ``joint_sigma`` comes from the
model when it has such an output, else from visibility (``engine.estimate.ik.visibility_sigma``).
Frames where the subject was not detected stay NaN / invalid (the model still sees them as
context). The estimate also carries the model's weak-perspective camera (``weak_camera``), the
refinement's input (``engine.estimate.refine``).
"""
import os
import warnings

import numpy as np

from ..errors import EngineError
from .network_inputs import rot6d_to_matrix
from .onnx_runtime import SHIPPED_DIR, WEIGHTS_ENV, cached_runner, weights_dir, weights_found  # noqa: F401

TEMPORAL_FILE, PRVIPE_FILE = "temporal.onnx", "prvipe.onnx"
INPUTS = ("features", "prvipe_mu", "prvipe_sigma", "homography", "ik_prior")
MAX_WINDOWS_PER_RUN = 64
# (SMPL joint, MediaPipe landmark) pairs that are the same point in training's synthetic data
TRANSLATION_JOINTS = tuple((f"{s}_{n}", f"{s}_{n}") for s in ("left", "right")
                           for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"))


def find_weights(path=None):
    """The weights folder, or an EngineError saying how to get one."""
    d = weights_dir(path)
    if not (d / TEMPORAL_FILE).is_file():
        src = f"${WEIGHTS_ENV}={d}" if (path or os.environ.get(WEIGHTS_ENV)) else f"the shipped folder {d}"
        raise EngineError(
            f"the 'temporal' estimator needs trained weights ({TEMPORAL_FILE}, {PRVIPE_FILE}) and none were "
            f"found in {src}. The extension ships them in engine/data/temporal (a partial install?); "
            f"use --estimator baseline, or export your own (python -m training.temporal.export) and set "
            f"{WEIGHTS_ENV} to its folder.")
    return d


def available(path=None):
    return weights_found(find_weights, path)


def providers(device="auto"):
    """onnxruntime execution providers for ``device`` (auto | gpu | cpu): the engine's shared
    rule (``engine.estimate.onnx_runtime``): CUDA when this onnxruntime has it, else the CPU;
    ``gpu`` without CUDA is an error."""
    from .onnx_runtime import select_providers
    return [p[0] if isinstance(p, tuple) else p for p in select_providers(device)]


def window_starts(T, window, overlap):
    """Window start frames covering 0..T-1 (the last window ends at T)."""
    if T <= window:
        return [0]
    step = max(window - overlap, 1)
    starts = list(range(0, T - window + 1, step))
    if starts[-1] != T - window:
        starts.append(T - window)
    return starts


class TemporalRunner:
    """The ONNX sessions and the windowing; ``predict`` is the model on a whole clip."""

    def __init__(self, path=None, device=None):
        from .onnx_runtime import create_session
        d = find_weights(path)
        self.session = create_session(d / TEMPORAL_FILE, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.window = int(meta.get("window", 32))
        self.overlap = int(meta.get("overlap", self.window // 2))
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.uses_prvipe = meta.get("uses_prvipe", "1") != "0"
        self.prvipe = None
        if self.uses_prvipe:
            if not (d / PRVIPE_FILE).is_file():
                raise EngineError(f"{d} has {TEMPORAL_FILE} but not {PRVIPE_FILE}, which this model needs")
            self.prvipe = create_session(d / PRVIPE_FILE, device)
        # an ablation's unused inputs are dropped by the exporter: feed only what the graph has
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        dim = self.inputs["prvipe_mu"].shape[-1] if "prvipe_mu" in self.inputs else 32
        self.embed_dim = dim if isinstance(dim, int) else 32
        self.providers = self.session.get_providers()

    def embed(self, keypoints99):
        """Pr-VIPE (μ, σ) per frame for normalised keypoints (T,99)."""
        T = len(keypoints99)
        if self.prvipe is None:
            return np.zeros((T, self.embed_dim), np.float32), np.ones((T, self.embed_dim), np.float32)
        mu, sig = self.prvipe.run(["mu", "sigma"], {"keypoints": np.asarray(keypoints99, np.float32)})
        return mu, sig

    @property
    def uses_ik_prior(self):
        return "ik_prior" in self.inputs

    def predict(self, features, mu, sigma, homography, ik_prior=None):
        """Stitched per-frame outputs: rot6d (T,24,6), cam (T,3), betas (10,), and joint_sigma
        (T,24) when the model has it. ``ik_prior`` (T,144) is needed when ``uses_ik_prior``."""
        T = len(features)
        W = min(self.window, T)
        starts = window_starts(T, W, min(self.overlap, W - 1))
        if ik_prior is None:
            if self.uses_ik_prior:
                raise EngineError("this temporal model needs the IK prior input (engine.estimate.network_inputs.ik_prior)")
            ik_prior = np.zeros((T, 144), np.float32)
        arrays = [np.asarray(a, np.float32) for a in (features, mu, sigma, homography, ik_prior)]
        wt = np.minimum(np.arange(W) + 1, W - np.arange(W)).astype(np.float64)   # triangular
        acc = {}
        norm = np.zeros(T)
        betas = []
        for c in range(0, len(starts), MAX_WINDOWS_PER_RUN):
            chunk = starts[c:c + MAX_WINDOWS_PER_RUN]
            feed = {n: np.stack([a[s:s + W] for s in chunk]) for n, a in zip(INPUTS, arrays) if n in self.inputs}
            res = dict(zip(self.outputs, self.session.run(self.outputs, feed)))
            betas.append(res["betas"])
            for i, s in enumerate(chunk):
                for k in ("rot6d", "cam", "joint_sigma"):
                    if k in res:
                        v = res[k][i].astype(np.float64)
                        acc.setdefault(k, np.zeros((T,) + v.shape[1:]))
                        acc[k][s:s + W] += wt.reshape((W,) + (1,) * (v.ndim - 1)) * v
                norm[s:s + W] += wt
        out = {k: v / norm.reshape((T,) + (1,) * (v.ndim - 1)) for k, v in acc.items()}
        out["betas"] = np.concatenate(betas).mean(0)
        return out


def get_runner(path=None, device=None):
    """The ``TemporalRunner`` of a weights folder and device, built once."""
    return cached_runner(TemporalRunner, path, device)


PRIOR_BLEND = 0.5  # the network's rotations are moved this far toward its IK prior (see below)


def blend_toward_prior(rot6d, prior6d, weight, rows):
    """6D rotations (T, 24·6) moved ``weight`` of the way (geodesically, per joint) toward
    ``prior6d`` on the frames ``rows`` (bool (T,)); the other frames as they are.

    Why: the temporal model predicts a correction on top of the analytic IK of the world
    landmarks, learned on synthetic observations; on real video part of that correction is
    wrong (the sim-to-real gap), and the rotations halfway between the network's and the
    prior's are better on R1 than either (docs/benchmarks.md, "Halfway to the IK prior"). On
    synthetic H1 the network alone is better. The weight is our choice: the middle; 0.3–0.7
    all measured within 0.6 mm of each other on R1."""
    from scipy.spatial.transform import Rotation
    from .network_inputs import matrix_to_rot6d
    out = np.array(rot6d, np.float32, copy=True)
    rows = np.asarray(rows, bool)
    if weight <= 0 or not rows.any():
        return out
    T = len(out)
    Rn = rot6d_to_matrix(out.reshape(T, 24, 6)[rows])
    Rp = rot6d_to_matrix(np.asarray(prior6d).reshape(T, 24, 6)[rows])
    a = Rotation.from_matrix(Rn.reshape(-1, 3, 3))
    step = (a.inv() * Rotation.from_matrix(Rp.reshape(-1, 3, 3))).as_rotvec() * float(weight)
    R = (a * Rotation.from_rotvec(step)).as_matrix().reshape(Rn.shape)
    blended = out.reshape(T, 24, 6)
    blended[rows] = matrix_to_rot6d(R)
    return blended.reshape(out.shape)


def predict_observations(obs, runner, focal_px, prior_blend=PRIOR_BLEND):
    """The network's stitched raw outputs on ``obs``, its inputs built by the same functions as
    in training (features, Pr-VIPE embedding, IK prior, camera-motion feature); its rotations
    then moved ``prior_blend`` of the way toward the IK prior on frames with world landmarks
    (``blend_toward_prior``; 0: the network alone)."""
    from ..observe.camera_motion import FEATURE_DIM, homography_feature
    from .network_inputs import frame_features, ik_prior, normalized_keypoints
    T = obs.num_frames
    w, h = obs.frame_size
    kp = np.asarray(obs.keypoints, np.float64)
    with warnings.catch_warnings():          # undetected frames are NaN: their features are zeros
        warnings.simplefilter("ignore", RuntimeWarning)
        feats = frame_features(kp, obs.world, (w, h), focal_px)
        nk = normalized_keypoints(kp).reshape(T, -1)
    hom = homography_feature(obs.homographies, (w, h)) if obs.homographies is not None \
        else np.zeros((T, FEATURE_DIM), np.float32)
    mu, sig = runner.embed(nk)
    prior = ik_prior(obs.world, kp[..., 2]) if runner.uses_ik_prior else None
    out = runner.predict(feats, mu, sig, hom, prior)
    if prior is not None and prior_blend > 0:
        seen = np.isfinite(np.asarray(obs.world)).all((-1, -2))
        out["rot6d"] = blend_toward_prior(out["rot6d"], prior, prior_blend, seen)
    return out


def fit(obs, body, focal=None, device=None, weights=None, runner=None, min_visibility=0.5,
        compensate_camera=True, prior_blend=PRIOR_BLEND):
    """Observations → dict of Motion fields (``engine.estimate.motion_fields``, as
    ``engine.estimate.baseline.fit``) from the temporal model, plus ``weak_camera`` (T,3) when
    the model predicts one (the exported models do): the network's stitched weak-perspective
    camera, which the refinement takes as its input. ``prior_blend``: as in
    ``predict_observations``."""
    from ..body.kinematics import forward_kinematics, matrix_to_axis_angle
    from ..body.skeleton import JOINT_INDEX as J, NUM_JOINTS
    from ..observe import LM
    from .camera import camera_model, rotation_extrinsics, solve_translation_per_focal
    from .ik import smpl_targets_from_landmarks, visibility_sigma

    runner = runner or get_runner(weights, device)
    T = obs.num_frames
    valid = np.asarray(obs.valid, bool).copy()
    kp = np.asarray(obs.keypoints, np.float64)
    # level at the first frame, then panning/zooming as the background says
    K, Rcam, focals = camera_model(obs, focal, compensate_camera)   # world → camera per frame
    pred = predict_observations(obs, runner, K[0, 0], prior_blend)

    betas = np.zeros(10)
    nb = min(len(pred["betas"]), 10)
    betas[:nb] = pred["betas"][:nb]
    rest = body.rest_joints(betas)
    R = rot6d_to_matrix(pred["rot6d"])
    R[:, 0] = np.swapaxes(Rcam, -1, -2) @ R[:, 0]  # camera-frame root → Z-up world
    rel = forward_kinematics(R, rest)              # (T,24,3) world axes, root at rest[0]
    hip_mid = 0.5 * (rel[:, J["left_hip"]] + rel[:, J["right_hip"]])
    rel_cam = np.einsum("tij,tnj->tni", Rcam, rel - hip_mid[:, None])   # world → camera axes
    jj = [J[a] for a, _ in TRANSLATION_JOINTS]
    ll = [LM[b] for _, b in TRANSLATION_JOINTS]
    vis = np.nan_to_num(kp[:, ll, 2])
    wts = np.where(vis > min_visibility, vis, 0.0)
    pix = np.nan_to_num(kp[:, ll, :2])
    t_cam = solve_translation_per_focal(rel_cam[:, jj], pix, wts, K, focals)  # hip midpoint, camera axes
    solid = valid & ((wts > 0).sum(1) >= 3)
    if solid.any() and not solid.all():         # too few points: interpolate the neighbours
        idx = np.flatnonzero(solid)
        for ax in range(3):
            t_cam[~solid, ax] = np.interp(np.flatnonzero(~solid), idx, t_cam[idx, ax])
    hip_world = np.einsum("tj,tjk->tk", t_cam, Rcam)   # Rᵀ·t
    trans = hip_world - hip_mid
    joints = rel + trans[:, None]
    poses = matrix_to_axis_angle(R).reshape(T, 72)
    if "joint_sigma" in pred:
        sigma = pred["joint_sigma"].astype(np.float64)
    else:
        _, conf = smpl_targets_from_landmarks(np.zeros((T, 33, 3)), np.nan_to_num(kp[..., 2]))
        sigma = visibility_sigma(conf)
    for a in (poses, trans, joints, sigma):
        a[~valid] = np.nan
    assert joints.shape == (T, NUM_JOINTS, 3)
    out = dict(poses=poses, trans=trans, betas=betas, joints=joints, joint_sigma=sigma,
               valid=valid, camera_intrinsics=K, camera_extrinsics=rotation_extrinsics(Rcam))
    if "cam" in pred:
        out["weak_camera"] = np.asarray(pred["cam"], np.float64)
    return out
