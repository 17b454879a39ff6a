"""Shared fixtures. Data from ../shared is optional: tests that need it skip with a reason."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOCAP_SHARED", ROOT.parent / "shared"))
ARTIFACTS = ROOT / "tests" / "artifacts"
DEMO_VIDEO = ROOT / "assets" / "demo" / "sports2d_demo.mp4"

# Blender must never write to the user's home from the tests.
_tmp = Path(tempfile.mkdtemp(prefix="mocap-tests-"))
os.environ.setdefault("BLENDER_USER_RESOURCES", str(_tmp / "blender"))
os.environ.setdefault("XDG_CACHE_HOME", str(_tmp / "cache"))
os.environ.setdefault("MOCAP_CACHE_DIR", str(_tmp / "mocap-cache"))
sys.path.insert(0, str(ROOT))


def shared_path(*parts):
    """A path under ../shared, or skip the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the project's shared data, absent in a fresh clone)")
    return p


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ---------------------------------------------------------------- Blender add-on test helpers
# A toy SMPL-layout body (one box per bone, rigidly skinned) and synthetic Motion files, so the
# add-on tests run without the baked open body and without the engine's detector.
_TOY_OFFSETS = {  # joint: (parent-relative offset) in SMPL's canonical frame (Y up, facing +Z)
    0: (0.003, -0.22, 0.028), 1: (0.06, -0.09, -0.01), 2: (-0.06, -0.09, -0.01), 3: (0.0, 0.11, -0.02),
    4: (0.04, -0.38, 0.0), 5: (-0.04, -0.38, 0.0), 6: (0.0, 0.13, 0.01), 7: (-0.01, -0.40, -0.04),
    8: (0.01, -0.40, -0.04), 9: (0.0, 0.05, 0.0), 10: (0.02, -0.05, 0.12), 11: (-0.02, -0.05, 0.12),
    12: (0.0, 0.22, -0.03), 13: (0.07, 0.12, -0.01), 14: (-0.07, 0.12, -0.01), 15: (0.0, 0.09, 0.05),
    16: (0.11, 0.03, -0.01), 17: (-0.11, 0.03, -0.01), 18: (0.26, -0.01, -0.02), 19: (-0.26, -0.01, -0.02),
    20: (0.25, 0.01, 0.0), 21: (-0.25, 0.01, 0.0), 22: (0.08, -0.01, -0.01), 23: (-0.08, -0.01, -0.01),
}


def make_toy_body(num_betas=10, seed=0):
    import numpy as np
    from engine.body.model import BodyModel
    from engine.body.skeleton import PARENTS
    J = len(PARENTS)
    joints = np.zeros((J, 3))
    for j in range(J):
        joints[j] = (joints[PARENTS[j]] if PARENTS[j] >= 0 else 0) + np.array(_TOY_OFFSETS[j])
    kids = {j: [c for c in range(J) if PARENTS[c] == j] for j in range(J)}
    main = {0: 3, 9: 12}
    verts, faces, weights, jreg = [], [], [], np.zeros((J, 0))
    rows = []
    for j in range(J):
        if kids[j]:
            end = joints[main.get(j, kids[j][0])]
        else:
            end = joints[j] + 0.6 * (joints[j] - joints[PARENTS[j]])
        d = end - joints[j]
        n = d / np.linalg.norm(d)
        a = np.cross(n, [0.0, 0.0, 1.0] if abs(n[2]) < 0.9 else [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(n, a)
        r = 0.09 if j in (0, 3, 6, 9) else 0.045
        base = len(verts)
        for p in (joints[j], end):
            for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                verts.append(p + r * (sa * a + sb * b))
        q = [[0, 1, 2, 3], [7, 6, 5, 4], [0, 4, 5, 1], [1, 5, 6, 2], [2, 6, 7, 3], [3, 7, 4, 0]]
        for f in q:
            faces += [[base + f[0], base + f[1], base + f[2]], [base + f[0], base + f[2], base + f[3]]]
        w = np.zeros((8, J))
        w[:, j] = 1.0
        weights.append(w)
        rows.append((j, base))
    v = np.array(verts)
    V = len(v)
    jreg = np.zeros((J, V))
    for j, base in rows:
        jreg[j, base:base + 4] = 0.25
    rng = np.random.default_rng(seed)
    shapedirs = rng.normal(0, 0.003, (V, 3, num_betas))
    shapedirs[:, :, 0] = 0.04 * v  # beta 0: overall size
    return BodyModel(v, shapedirs, jreg, np.concatenate(weights), np.array(faces), PARENTS.copy(), None, "toy_body")


def make_motion(body, T=300, fps=30.0, invalid=(), seed=1, video=None, frame_size=(1280, 720)):
    """A synthetic Motion: smooth random joint rotations, a turning, walking root, a static camera
    5 m in front of the subject looking at it (world Z up)."""
    import numpy as np
    from scipy.spatial.transform import Rotation
    from engine.motion import Motion
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    amp = rng.uniform(0.1, 0.6, (24, 3))
    freq = rng.uniform(0.2, 1.5, (24, 3))
    phase = rng.uniform(0, 2 * np.pi, (24, 3))
    aa = amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)
    yaw = 1.5 * np.sin(2 * np.pi * 0.1 * t)
    upright = Rotation.from_euler("x", 90, degrees=True)
    root = (Rotation.from_euler("z", yaw[:, None]) * upright * Rotation.from_rotvec(0.3 * aa[:, 0])).as_rotvec()
    aa[:, 0] = root
    poses = aa.reshape(T, 72)
    betas = rng.normal(0, 1, 10)
    trans = np.stack([0.5 * np.sin(0.3 * t), 0.3 * t - 1.0, np.full(T, 1.0)], 1)
    joints = body.joints(poses, betas, trans)
    W, H = frame_size
    f = float(max(W, H))
    K = np.array([[f, 0, W / 2 + 7.0], [0, f, H / 2 - 5.0], [0, 0, 1]])
    # camera at (0,-6,1.2) looking along +Y (world), OpenCV axes: x right, y down, z forward
    R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    c = np.array([0.0, -6.0, 1.2])
    E = np.eye(4)
    E[:3, :3] = R
    E[:3, 3] = -R @ c
    ext = np.repeat(E[None], T, 0)
    cam = np.einsum("ij,tnj->tni", R, joints) + (-R @ c)
    uv = cam[..., :2] / cam[..., 2:3] * f + K[:2, 2]
    kp = np.concatenate([uv, np.ones((T, 24, 1))], -1)
    valid = np.ones(T, bool)
    valid[list(invalid)] = False
    for arr in (poses, trans, joints):
        arr[~valid] = np.nan
    sigma = np.full((T, 24), 0.02)
    sigma[~valid] = np.nan
    src = {"video": str(video) if video else "", "frame_range": [0, T]}
    return Motion(poses=poses, trans=trans, betas=betas, fps=fps, joints=joints, joint_sigma=sigma,
                  valid=valid, keypoints2d=kp, contacts=np.zeros((T, 4), bool), camera_intrinsics=K,
                  camera_extrinsics=ext, frame_size=np.array([W, H]), body_model=body.name,
                  source=src, estimator="synthetic").astype_file()


@pytest.fixture
def toy_body():
    return make_toy_body()


@pytest.fixture
def blender_addon():
    """The add-on registered on a fresh empty file; unregistered afterwards."""
    bpy = pytest.importorskip("bpy")
    import addon
    bpy.ops.wm.read_homefile(use_empty=True)
    addon.register()
    yield addon
    addon.unregister()


@pytest.fixture
def torch_one_thread():
    """Small torch models: one thread is faster than two on a shared machine (no slower alone)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
