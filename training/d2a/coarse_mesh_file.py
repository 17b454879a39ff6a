"""The coarse vertex set of the per-frame refinement network and its fixed upsampling (numpy).

The refinement network (D2A-HMR, ``training/d2a/model.py``) predicts 431 coarse vertices of
the open body; ``upsample`` turns them into the full 13,348-vertex mesh with a fixed sparse
matrix: each full vertex is an affine combination of 6 coarse ones. The file
``training/d2a/coarse_mesh.npz`` is built by ``python -m training.d2a.coarse_mesh`` (how the
vertices and weights are chosen is described there).
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COARSE_MESH_PATH = Path(__file__).resolve().parent / "coarse_mesh.npz"


@dataclass
class CoarseMesh:
    indices: np.ndarray        # (n,) full-mesh indices of the coarse vertices
    up_index: np.ndarray       # (V,k) coarse neighbours of every full vertex
    up_weight: np.ndarray      # (V,k) their weights (each row sums to 1)
    num_vertices: int
    stats: dict = field(default_factory=dict)

    def upsample(self, coarse):
        """Coarse vertices (..., n, 3) → full mesh (..., V, 3)."""
        c = np.asarray(coarse)
        return np.einsum("vk,...vkc->...vc", self.up_weight, c[..., self.up_index.astype(np.int64), :])

    def save(self, path):
        np.savez_compressed(path, indices=self.indices.astype(np.int32), up_index=self.up_index.astype(np.int16),
                            up_weight=self.up_weight.astype(np.float32), num_vertices=np.int64(self.num_vertices),
                            stats=np.array(json.dumps(self.stats)))


def load_coarse_mesh(path=None):
    path = Path(path) if path else COARSE_MESH_PATH
    if not path.is_file():
        raise FileNotFoundError(f"coarse mesh file not found: {path} (build it: python -m training.d2a.coarse_mesh)")
    with np.load(path, allow_pickle=False) as z:
        stats = json.loads(str(z["stats"])) if "stats" in z.files else {}
        return CoarseMesh(z["indices"].astype(np.int64), z["up_index"].astype(np.int64),
                          z["up_weight"].astype(np.float32), int(z["num_vertices"]), stats)
