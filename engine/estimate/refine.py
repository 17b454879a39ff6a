"""Seed-0 D2A-HMR refinement at run time (numpy + onnxruntime; no torch).

The per-frame refinement network (``training/d2a/model.py``, exported as ``d2a.onnx`` by
``python -m training.d2a.export``) sits on top of the seed-2 temporal estimate: for each
detected frame it takes the frame's features (``engine.estimate.network_inputs.frame_features``, the same as
the temporal model's), the observed person mask cropped around the detected keypoints
(``silhouette_crop``) and the temporal estimate (6D rotations with the root in the camera frame,
shape, weak-perspective camera), and returns refined joints (camera frame, relative to the
temporal estimate's pelvis) with a per-joint σ (metres). ``engine.estimate.joint_fit.fit_sequence``
then turns those joints, weighted by 1/σ, into SMPL-24 rotations started from (and held to)
the temporal rotations, so the output stays an SMPL sequence. The refined body keeps the
temporal estimate's hip-midpoint position and camera (``repose``).

The temporal estimate comes as ``engine.estimate.temporal.fit``'s dict: its Motion fields (the
rotations, root turned back into the camera frame by its extrinsics, and the shape) and the
model's weak-perspective camera (``weak_camera``), the network's camera input.

``d2a.onnx`` lives in the same weights folder as the temporal model
(``engine.estimate.onnx_runtime.weights_dir``: ``$MOCAP_TEMPORAL_WEIGHTS`` or the shipped
``engine/data/temporal/``, which holds the trained full model, training/MODEL_CARD_d2a.md). A
folder without it: ``refine`` raises an EngineError saying so, and the pipeline skips the stage.

The crop convention (``crop_boxes``) is shared with training (``training.d2a.data`` calls these
same functions on the synthetic observations), so the network sees at run time the crop it was
trained on.
"""
import warnings

import numpy as np

from ..errors import EngineError
from .network_inputs import MIN_VIS, matrix_to_rot6d
from .onnx_runtime import cached_runner, weights_dir, weights_found

D2A_FILE = "d2a.onnx"
SIL_SIZE = 56
CROP_SCALE = 1.2            # crop side = 1.2 × the longer side of the keypoints' box (synth's convention)
MAX_BATCH = 64              # frames per onnxruntime call (speed and memory: docs/performance.md)
CHUNK = 1024                # frames whose silhouette crops exist at once (the crop's gather needs ~60 KB/frame)
D2A_INPUTS = ("features", "silhouette", "init_rot6d", "init_betas", "init_cam")
D2A_OUTPUTS = ("joints", "sigma", "vertices", "rot6d", "betas", "cam")


# ---------------------------------------------------------------- the silhouette crop
def crop_boxes(keypoints, min_visibility=MIN_VIS, scale=CROP_SCALE):
    """Square crop boxes (T,4) x0, y0, x1, y1 in full-frame pixels from keypoints (T,33,3).

    Centred on the box of the keypoints seen with visibility > ``min_visibility`` (all finite
    keypoints when fewer than 4 are), side ``scale`` × that box's longer side. Synth centres
    its own crop on the true landmarks' box with the same side; at run time only the detected
    keypoints exist, so both sides use these (the visibility filter is ours: it keeps a wild
    low-confidence landmark from blowing the box up). NaN rows where nothing was detected."""
    kp = np.asarray(keypoints, np.float64)
    xy = kp[..., :2]
    fin = np.isfinite(xy).all(-1)
    seen = fin & (np.nan_to_num(kp[..., 2]) > min_visibility)
    use = np.where((seen.sum(1) >= 4)[:, None], seen, fin)
    ok = use.any(1)
    lo = np.where(use[..., None], xy, np.inf).min(1)
    hi = np.where(use[..., None], xy, -np.inf).max(1)
    lo[~ok], hi[~ok] = 0.0, 0.0
    ctr = 0.5 * (lo + hi)
    half = 0.5 * scale * np.max(hi - lo, axis=1, keepdims=True)
    half = np.maximum(half, 1.0)                      # a degenerate box still has a pixel
    boxes = np.concatenate([ctr - half, ctr + half], 1)
    boxes[~ok] = np.nan
    return boxes


def silhouette_crops(masks, frame_size, keypoints, size=SIL_SIZE):
    """(T,size,size) float32 in [0,1]: each frame's person mask (T,h,w) (uint8 0..255, the
    downsampled full frame ``engine.observe`` keeps) resampled bilinearly inside its
    ``crop_boxes`` box; outside the frame and on undetected frames 0."""
    m = np.asarray(masks)
    T, mh, mw = m.shape
    w, h = frame_size
    boxes = crop_boxes(keypoints)
    ok = np.isfinite(boxes).all(1)
    out = np.zeros((T, size, size), np.float32)
    if not ok.any():
        return out
    b = boxes[ok]
    side = (b[:, 2] - b[:, 0])[:, None]
    c = (np.arange(size) + 0.5) / size                                   # pixel centres in [0,1]
    xs = (b[:, :1] + c[None] * side) * (mw / w) - 0.5                    # mask pixel coordinates
    ys = (b[:, 1:2] + c[None] * side) * (mh / h) - 0.5
    pad = np.zeros((len(b), mh + 2, mw + 2), np.float32)                # zero border = outside
    pad[:, 1:-1, 1:-1] = m[ok].astype(np.float32) / 255.0
    x0 = np.floor(xs)
    y0 = np.floor(ys)
    fx, fy = (xs - x0)[:, None, :], (ys - y0)[:, :, None]
    xi = np.clip(x0.astype(np.int64) + 1, 0, mw + 1)
    xj = np.clip(x0.astype(np.int64) + 2, 0, mw + 1)
    yi = np.clip(y0.astype(np.int64) + 1, 0, mh + 1)
    yj = np.clip(y0.astype(np.int64) + 2, 0, mh + 1)
    n = np.arange(len(b))[:, None, None]
    g = lambda yy, xx: pad[n, yy[:, :, None], xx[:, None, :]]           # noqa: E731
    val = ((1 - fy) * ((1 - fx) * g(yi, xi) + fx * g(yi, xj)) + fy * ((1 - fx) * g(yj, xi) + fx * g(yj, xj)))
    out[ok] = np.clip(val, 0.0, 1.0)
    return out


def silhouette_crop(mask, frame_size, keypoints, size=SIL_SIZE):
    """One frame: mask (h,w) uint8, keypoints (33,3) → (size,size) float32 (``silhouette_crops``)."""
    return silhouette_crops(np.asarray(mask)[None], frame_size, np.asarray(keypoints)[None], size)[0]


# ---------------------------------------------------------------- the ONNX runner
def find_weights(path=None):
    """The weights folder holding ``d2a.onnx``, or an EngineError saying how to get one."""
    d = weights_dir(path)
    if not (d / D2A_FILE).is_file():
        raise EngineError(
            f"the D2A refinement needs trained weights ({D2A_FILE}) next to the temporal model, and none "
            f"were found in {d}. The extension ships one in engine/data/temporal; for "
            f"another folder, export one (python -m training.d2a.export) into it.")
    return d


def available(path=None):
    return weights_found(find_weights, path)


class D2ARunner:
    """The ONNX session; ``predict`` runs frames in batches of ``MAX_BATCH``."""

    def __init__(self, path=None, device=None):
        from .onnx_runtime import create_session
        self.session = create_session(find_weights(path) / D2A_FILE, device)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        if "depth_map" in self.inputs:
            raise EngineError(f"{D2A_FILE} expects a depth render input (use_depth_map), which the engine "
                              "does not produce; export a model without it")
        s = self.inputs["silhouette"].shape[-1]
        self.size = s if isinstance(s, int) else SIL_SIZE
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.sigma_scale = float(meta.get("sigma_scale", 1.0))   # network σ → metres per coordinate

    def predict(self, features, silhouette, init_rot6d, init_betas, init_cam, batch=MAX_BATCH):
        """Arrays over N frames → dict of outputs (N, ...) (``D2A_OUTPUTS``)."""
        arrays = [np.asarray(a, np.float32) for a in (features, silhouette, init_rot6d, init_betas, init_cam)]
        N = len(arrays[0])
        res = {k: [] for k in self.outputs}
        for a in range(0, N, batch):
            feed = {n: x[a:a + batch] for n, x in zip(D2A_INPUTS, arrays)}
            for k, v in zip(self.outputs, self.session.run(self.outputs, feed)):
                res[k].append(v)
        return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in res.items()}


def get_runner(path=None, device=None):
    """The ``D2ARunner`` of a weights folder and device, built once."""
    return cached_runner(D2ARunner, path, device)


# ---------------------------------------------------------------- inputs from the temporal model
def camera_frame_rot6d(poses, extrinsics):
    """Motion poses (T,72) (root in the world, as ``engine.estimate.temporal.fit`` gives them) and its
    world→camera extrinsics (T,4,4) → (rotation matrices (T,24,3,3) with the root in the
    camera frame, their 6D (T,24,6)), what the temporal model predicted. NaN rows → identity."""
    from ..body.kinematics import axis_angle_to_matrix
    p = np.asarray(poses, np.float64).reshape(len(poses), 24, 3)
    p = np.where(np.isfinite(p).all((-1, -2), keepdims=True), p, 0.0)
    R = axis_angle_to_matrix(p)
    R[:, 0] = np.asarray(extrinsics, np.float64)[:, :3, :3] @ R[:, 0]
    return R, matrix_to_rot6d(R)


def repose(R_cam, betas, body, temporal):
    """Refined rotations (T,24,3,3), root in the camera frame → poses, trans, joints in the
    temporal estimate's world: the root turned by its extrinsics, the hip midpoint kept where
    the temporal estimate placed it (its 2D–3D solve and camera model), so the camera
    fields carry over unchanged (ours: the translation is not re-solved for the refined limbs)."""
    from ..body.kinematics import forward_kinematics, matrix_to_axis_angle
    from ..body.skeleton import JOINT_INDEX as J
    T = len(R_cam)
    R = np.array(R_cam, np.float64)
    E = np.asarray(temporal["camera_extrinsics"], np.float64)
    R[:, 0] = np.swapaxes(E[:, :3, :3], -1, -2) @ R[:, 0]
    rel = forward_kinematics(R, body.rest_joints(betas))
    hips = [J["left_hip"], J["right_hip"]]
    trans = np.asarray(temporal["joints"], np.float64)[:, hips].mean(1) - rel[:, hips].mean(1)
    return dict(poses=matrix_to_axis_angle(R).reshape(T, 72), trans=trans, joints=rel + trans[:, None])


def motion_sigma(relative_sigma, temporal_sigma):
    """The Motion's per-joint σ (T,24), metres per coordinate: for every joint but the pelvis
    the network's calibrated σ of its position relative to the pelvis — what the rotation
    smoother (σ / bone length) and the contact detection (heel and toe around a hard-smoothed
    root) take as noise; for the pelvis, whose relative σ is ~1 mm by construction, the temporal
    estimate's own root σ (``temporal_sigma[:, 0]``: the refined body keeps the temporal hip
    position), which the root-translation smoother reads.

    Ours: the alternative, the root σ added to every joint, is compared in
    training/MODEL_CARD_d2a.md."""
    out = np.array(relative_sigma, np.float64)
    out[:, 0] = np.asarray(temporal_sigma, np.float64)[:, 0]
    return out


# ---------------------------------------------------------------- the whole step
def refine(obs, body, temporal, device=None, weights=None, runner=None, prior_sigma=None,
           max_nfev=100, progress=None):
    """Observations + the temporal estimate (``engine.estimate.temporal.fit``'s dict, its
    ``weak_camera`` included) → dict of Motion fields (``engine.estimate.motion_fields``):
    poses, trans, betas, joints, joint_sigma (``motion_sigma``: the network's σ × its export's
    ``sigma_scale``, a per-coordinate std in metres, ``training.d2a.export``; the pelvis
    keeps the temporal root's σ; the fit weighs by the raw σ), valid, camera_intrinsics/extrinsics.

    The network starts from the temporal rotations (root turned back into the camera frame by
    the temporal extrinsics) and shape; its features use the temporal intrinsics' focal; its
    camera input is the temporal model's weak-perspective camera (``temporal["weak_camera"]``).
    Refined joints → rotations by ``engine.estimate.joint_fit.fit_sequence`` (σ-weighted, prior
    ``prior_sigma`` radians towards the temporal rotations), then ``repose``. Frames the temporal
    estimate marks invalid stay NaN."""
    from ..body.kinematics import axis_angle_to_matrix
    from .joint_fit import PRIOR_SIGMA, fit_sequence
    from .network_inputs import frame_features

    if "weak_camera" not in temporal:
        raise EngineError("the refinement needs the temporal estimate's weak_camera "
                          "(engine.estimate.temporal.fit's output)")
    runner = runner or get_runner(weights, device)
    T = obs.num_frames
    w, h = obs.frame_size
    K = np.asarray(temporal["camera_intrinsics"], np.float64)
    valid = np.asarray(temporal["valid"], bool) & np.asarray(obs.valid, bool)
    kp = np.asarray(obs.keypoints, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        feats = frame_features(kp, obs.world, (w, h), K[0, 0])
    betas = np.zeros(10)
    nb = min(len(temporal["betas"]), 10)
    betas[:nb] = np.asarray(temporal["betas"], np.float64)[:nb]
    R0, rot6d = camera_frame_rot6d(temporal["poses"], temporal["camera_extrinsics"])
    joints = np.full((T, 24, 3), np.nan)
    sigma = np.full((T, 24), np.nan)
    cam = np.asarray(temporal["weak_camera"], np.float64)
    idx = np.flatnonzero(valid)
    for a in range(0, len(idx), CHUNK):     # crops and network in chunks: memory stays flat on long clips
        i = idx[a:a + CHUNK]
        sil = silhouette_crops(obs.masks[i], (w, h), kp[i], runner.size)
        out = runner.predict(feats[i], sil, rot6d[i], np.repeat(betas[None], len(i), 0), cam[i])
        joints[i] = out["joints"]
        sigma[i] = out["sigma"]
    fit = fit_sequence(joints, sigma, R0, body.rest_joints(betas), valid,
                       PRIOR_SIGMA if prior_sigma is None else prior_sigma, max_nfev=max_nfev, progress=progress)
    res = repose(axis_angle_to_matrix(fit["poses"].reshape(T, 24, 3)), betas, body, temporal)
    for a in res.values():
        a[~valid] = np.nan
    return dict(poses=res["poses"], trans=res["trans"], betas=betas, joints=res["joints"],
                joint_sigma=motion_sigma(sigma * getattr(runner, "sigma_scale", 1.0), temporal["joint_sigma"]),
                valid=valid, camera_intrinsics=temporal["camera_intrinsics"],
                camera_extrinsics=temporal["camera_extrinsics"])
