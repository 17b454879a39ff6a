"""The Motion file: the engine ↔ add-on contract (one ``.npz`` per subject per clip).

Readable with plain numpy (``np.load(path)``); AMASS-like names. World frame: right-handed,
Z up, metres (Blender's). ``poses[:, :3]`` is the global orientation that maps the body
model's canonical frame (SMPL's: Y up, facing +Z) into that world, as in AMASS; so the
identity orientation lies the body on its back. Joint positions follow SMPL:
``joints = FK(poses, rest_joints(betas)) + trans``.

Frames where the subject was not seen have ``valid == False`` and NaN in ``poses``, ``trans``,
``joints`` and ``joint_sigma``: they are marked, never invented; consumers skip them.

Camera: ``camera_intrinsics`` (3,3) pixels; ``camera_extrinsics`` (T,4,4) world → camera in
OpenCV axes (x right, y down, z forward).

``reprojection`` (T,) (format 2): per frame, the median distance between the body's
MediaPipe-convention landmarks projected through that camera and the detected keypoints, in
percent of the person's 2D height (``engine.align.reprojection``); NaN where not measured. Its summary
(median, p90) is in ``source["reprojection"]``. Format-1 files load with NaN there.
"""
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import __version__
from .errors import EngineError

FORMAT_VERSION = 2
NUM_JOINTS = 24


@dataclass
class Motion:
    poses: np.ndarray                     # (T,72) float32 axis-angle, SMPL joint order
    trans: np.ndarray                     # (T,3) float32 metres
    betas: np.ndarray                     # (10,) float32
    fps: float
    joints: np.ndarray                    # (T,24,3) float32 world joint positions
    joint_sigma: np.ndarray               # (T,24) float32 metres, per-joint uncertainty
    valid: np.ndarray                     # (T,) bool
    keypoints2d: np.ndarray               # (T,K,3) float32 pixels x, y and confidence
    contacts: np.ndarray                  # (T,4) bool: left heel, left toe, right heel, right toe
    camera_intrinsics: np.ndarray         # (3,3) float32
    camera_extrinsics: np.ndarray         # (T,4,4) float32 world → camera (OpenCV axes)
    frame_size: np.ndarray                # (2,) int32 width, height in pixels
    reprojection: np.ndarray | None = None  # (T,) float32 % of the person's height (format 2)
    body_model: str = "open_body"
    source: dict = field(default_factory=dict)   # {"video": path, "frame_range": [a, b], ...}
    estimator: str = ""
    engine_version: str = __version__
    format_version: int = FORMAT_VERSION

    def astype_file(self):
        """Cast arrays to the file's dtypes (float32, bool, int32) in place; returns self."""
        if self.reprojection is None:
            self.reprojection = np.full(len(self.poses), np.nan, np.float32)
        for name, (kind, _) in _SPEC.items():
            dtype = {"f": np.float32, "b": bool, "i": np.int32}[kind]
            setattr(self, name, np.asarray(getattr(self, name), dtype=dtype))
        return self

    @property
    def num_frames(self):
        return int(self.poses.shape[0])

    def save(self, path):
        """Write atomically: a failed or cancelled run never leaves a partial file."""
        self.astype_file()
        validate(self)
        path = Path(path)
        tmp = path.with_name(path.name + ".part.npz")
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        arrays["source"] = json.dumps(self.source)
        for k in ("body_model", "estimator", "engine_version"):
            arrays[k] = np.array(arrays[k])
        arrays["fps"] = np.float64(self.fps)
        arrays["format_version"] = np.int32(self.format_version)
        try:
            np.savez_compressed(tmp, **arrays)
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()


_SPEC = {  # name: (dtype kind, shape with 'T'/'K' symbols)
    "poses": ("f", ("T", 72)), "trans": ("f", ("T", 3)), "betas": ("f", (None,)),
    "joints": ("f", ("T", NUM_JOINTS, 3)), "joint_sigma": ("f", ("T", NUM_JOINTS)),
    "valid": ("b", ("T",)), "keypoints2d": ("f", ("T", "K", 3)), "contacts": ("b", ("T", 4)),
    "camera_intrinsics": ("f", (3, 3)), "camera_extrinsics": ("f", ("T", 4, 4)),
    "frame_size": ("i", (2,)), "reprojection": ("f", ("T",)),
}
OPTIONAL = {"reprojection"}  # absent from older formats: filled with NaN on load


def _check_shape(name, arr, T):
    kind, shape = _SPEC[name]
    if arr.dtype.kind != kind and not (kind == "i" and arr.dtype.kind == "u"):
        raise EngineError(f"Motion file field '{name}' has dtype {arr.dtype}, expected kind '{kind}'")
    if len(shape) != arr.ndim or any(s not in (None, "K") and (T if s == "T" else s) != d
                                     for s, d in zip(shape, arr.shape)):
        raise EngineError(f"Motion file field '{name}' has shape {arr.shape}, expected {shape} with T={T}")


def validate(m):
    """Check shapes, dtypes and the NaN-only-where-invalid rule; raise EngineError if wrong."""
    T = m.poses.shape[0] if m.poses.ndim else -1
    for name in _SPEC:
        if name in OPTIONAL and getattr(m, name) is None:
            continue
        _check_shape(name, np.asarray(getattr(m, name)), T)
    ok = m.valid
    for name in ("poses", "trans", "joints"):
        arr = getattr(m, name).reshape(T, -1)
        if not np.isfinite(arr[ok]).all():
            raise EngineError(f"Motion file field '{name}' has non-finite values on valid frames")
    if not np.isfinite(m.fps) or m.fps <= 0:
        raise EngineError(f"Motion file fps must be positive, got {m.fps}")


def load_motion(path):
    """Read and validate a Motion file; one clear EngineError for a wrong or truncated file."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"Motion file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise EngineError(f"{path.name} is not a readable Motion file ({type(exc).__name__}: {exc})") from exc
    missing = [f.name for f in fields(Motion) if f.name not in data and f.name not in OPTIONAL]
    if missing:
        raise EngineError(f"{path.name} is not a Motion file: missing {', '.join(missing)}")
    version = int(data["format_version"])
    if version > FORMAT_VERSION:
        raise EngineError(f"{path.name} is Motion format v{version}; this engine reads up to "
                          f"v{FORMAT_VERSION} — update the extension")
    kw = {}
    for f in fields(Motion):
        if f.name not in data:
            continue
        v = data[f.name]
        if f.name == "source":
            kw[f.name] = json.loads(str(v))
        elif f.name in ("body_model", "estimator", "engine_version"):
            kw[f.name] = str(v)
        elif f.name == "fps":
            kw[f.name] = float(v)
        elif f.name == "format_version":
            kw[f.name] = int(v)
        else:
            kw[f.name] = v
    m = Motion(**kw).astype_file() if "reprojection" not in kw else Motion(**kw)
    validate(m)
    return m
