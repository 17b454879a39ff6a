"""SMPL-layout body models: load from ``.npz`` or the official ``.pkl`` (without chumpy), pose them.

Array layout (SMPL's; the open body uses the same keys):
``v_template`` (V,3) · ``shapedirs`` (V,3,S) · ``J_regressor`` (24,V) · ``weights`` (V,24) ·
``kintree_table`` (2,24) · ``f`` (F,3) · optional ``posedirs`` (V,3,207 or 207,V*3).
Canonical frame: Y up, facing +Z, subject's left at +X, metres.
"""
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EngineError
from . import kinematics as K
from .skeleton import NUM_JOINTS, PARENTS

OPEN_BODY_PATH = Path(__file__).resolve().parent.parent / "data" / "open_body.npz"


@dataclass
class BodyModel:
    """A linear body model in SMPL's layout (no pose-dependent state; pure arrays)."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    faces: np.ndarray
    parents: np.ndarray = field(default_factory=lambda: PARENTS.copy())
    posedirs: np.ndarray | None = None
    name: str = "body"

    @property
    def num_betas(self):
        return self.shapedirs.shape[-1]

    def shaped_vertices(self, betas=None):
        """Rest (T-pose) vertices (V,3) for shape ``betas`` (missing betas are 0)."""
        v = self.v_template
        if betas is not None:
            b = np.zeros(self.num_betas)
            betas = np.asarray(betas, dtype=np.float64).ravel()[: self.num_betas]
            b[: len(betas)] = betas
            v = v + self.shapedirs @ b
        return v

    def rest_joints(self, betas=None):
        """Rest joint positions (24,3) regressed from the shaped vertices."""
        return self.J_regressor @ self.shaped_vertices(betas)

    def joints(self, poses, betas=None, trans=None):
        """Posed joints (T,24,3) from axis-angle ``poses`` (T,72) and ``trans`` (T,3)."""
        rot = K.axis_angle_to_matrix(np.asarray(poses).reshape(-1, NUM_JOINTS, 3))
        return K.forward_kinematics(rot, self.rest_joints(betas), trans, self.parents)

    def vertices(self, poses, betas=None, trans=None):
        """Posed vertices (T,V,3); pose correctives are applied when the model has them."""
        rot = K.axis_angle_to_matrix(np.asarray(poses).reshape(-1, NUM_JOINTS, 3))
        v_shaped = self.shaped_vertices(betas)
        rest = self.J_regressor @ v_shaped
        v = np.broadcast_to(v_shaped, rot.shape[:1] + v_shaped.shape)
        if self.posedirs is not None:
            v = v + np.einsum("tp,vcp->tvc", K.pose_feature(rot), self.posedirs)
        tf = K.skinning_transforms(K.global_transforms(rot, rest, self.parents), rest)
        out = K.linear_blend_skinning(v, self.weights, tf)
        if trans is not None:
            out = out + np.asarray(trans)[:, None, :]
        return out

    def save(self, path, **meta):
        """Write the model as a SMPL-layout ``.npz`` (plus free-form string metadata)."""
        kintree = np.stack([self.parents, np.arange(len(self.parents))]).astype(np.int64)
        kintree[0, 0] = -1
        arrays = dict(v_template=self.v_template.astype(np.float32),
                      shapedirs=self.shapedirs.astype(np.float32),
                      J_regressor=self.J_regressor.astype(np.float32),
                      weights=self.weights.astype(np.float32),
                      f=self.faces.astype(np.int32), kintree_table=kintree,
                      name=np.array(self.name))
        if self.posedirs is not None:
            arrays["posedirs"] = self.posedirs.astype(np.float32)
        arrays.update({k: np.array(v) for k, v in meta.items()})
        np.savez_compressed(path, **arrays)


class _ChumpyStub:
    """Stands in for chumpy classes while unpickling the official SMPL ``.pkl``."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_state"] = {}

    def __setstate__(self, state):
        self.__dict__["_state"] = state if isinstance(state, dict) else {"x": state}

    def array(self):
        st = self.__dict__.get("_state", {})
        if "x" in st:
            return np.asarray(st["x"])
        if "a" in st:  # chumpy's Select/reshape wrappers keep their input in 'a'
            a = st["a"]
            return a.array() if isinstance(a, _ChumpyStub) else np.asarray(a)
        raise EngineError("the SMPL file holds a chumpy object this loader cannot read")


# What a SMPL ``.pkl`` may contain: numpy arrays and dtypes, scipy.sparse matrices (the joint
# regressor), chumpy arrays (read through the stand-in) and plain containers. Everything else is
# refused *before* it is constructed, so a crafted file cannot run code (pickle's ``__reduce__``
# can call any importable function; the allow-list is the defence, not the later layout check).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    ("builtins", "object"), ("__builtin__", "object"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 encode bytes with it
}
_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


def _allowed_global(module, name):
    if (module, name) in _ALLOWED_GLOBALS:
        return True
    return module.split(".")[:2] == ["scipy", "sparse"] and name in _SPARSE_CLASSES


class BodyModelUnpickler(pickle.Unpickler):
    """Unpickles a SMPL ``.pkl`` from an allow-list; chumpy classes become ``_ChumpyStub``."""

    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        if not _allowed_global(module, name):
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list (its dotted name is the message)."""


def _plain(value):
    if isinstance(value, _ChumpyStub):
        return value.array()
    if hasattr(value, "toarray"):  # scipy.sparse J_regressor
        return np.asarray(value.toarray())
    return np.asarray(value)


def _read_arrays(path):
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"body model file not found: {path}")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile / value errors from a damaged file
            raise EngineError(f"cannot read body model {path.name}: {exc}") from exc
    if path.suffix == ".pkl":
        try:
            raw = BodyModelUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
        except _Refused as exc:
            raise EngineError(f"{path.name} is not a SMPL body model (it contains {exc})") from None
        except Exception as exc:
            raise EngineError(f"cannot read body model {path.name}: {exc}") from exc
        if not isinstance(raw, dict):
            raise EngineError(f"{path.name} is not a SMPL body model (it holds a {type(raw).__name__}, "
                              "not a dict of arrays)")
        return {k: _plain(v) for k, v in raw.items()}
    raise EngineError(f"body model must be a .npz or .pkl file, not {path.name}")


def load_body_model(path=None):
    """Load a SMPL-layout model; ``None`` loads the shipped open body."""
    path = Path(path) if path else OPEN_BODY_PATH
    a = _read_arrays(path)
    missing = [k for k in ("v_template", "shapedirs", "J_regressor", "weights", "f") if k not in a]
    if missing:
        raise EngineError(f"{path.name} is not a SMPL-layout body model (missing {', '.join(missing)})")
    v = a["v_template"].astype(np.float64)
    V = v.shape[0]
    shapedirs = a["shapedirs"].astype(np.float64)
    if shapedirs.ndim == 2:
        shapedirs = shapedirs.reshape(V, 3, -1)
    jreg = a["J_regressor"].astype(np.float64)
    weights = a["weights"].astype(np.float64)
    if jreg.shape != (NUM_JOINTS, V) or weights.shape != (V, NUM_JOINTS):
        raise EngineError(f"{path.name}: expected 24 joints over {V} vertices, got regressor "
                          f"{jreg.shape} and weights {weights.shape}")
    parents = PARENTS.copy()
    if "kintree_table" in a:
        kt = a["kintree_table"].astype(np.int64)
        parents = kt[0].copy()
        parents[0] = -1
        if not np.array_equal(parents, PARENTS):
            raise EngineError(f"{path.name}: joint tree is not SMPL's 24-joint tree")
    posedirs = a.get("posedirs")
    if posedirs is not None:
        posedirs = posedirs.astype(np.float64)
        if posedirs.ndim == 2:  # smplx stores (207, V*3)
            posedirs = posedirs.T.reshape(V, 3, -1) if posedirs.shape[0] == 207 else posedirs.reshape(V, 3, -1)
    name = str(a["name"]) if "name" in a else path.stem
    return BodyModel(v, shapedirs, jreg, weights, a["f"].astype(np.int64), parents, posedirs, name)


def body_model_from_env():
    """The user's SMPL file when ``MOCAP_SMPL_MODEL`` is set, else the open body."""
    return load_body_model(os.environ.get("MOCAP_SMPL_MODEL") or None)
