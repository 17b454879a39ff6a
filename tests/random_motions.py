"""Helpers shared by the seed-2 training/runtime tests: small random motions and caches."""
import numpy as np
from scipy.spatial.transform import Rotation


def smooth_motion(T=48, seed=0):
    """A smooth random SMPL motion standing on the floor (poses (T,72), trans (T,3), betas)."""
    rng = np.random.default_rng(seed)
    knots = rng.normal(scale=0.25, size=(4, 72))
    t = np.linspace(0, 3, T)
    poses = np.stack([np.interp(t, np.arange(4), knots[:, k]) for k in range(72)], 1)
    turn = np.linspace(0, rng.uniform(-1, 1), T)
    poses[:, :3] = (Rotation.from_euler("z", turn[:, None]) * Rotation.from_euler("x", 90, degrees=True)).as_rotvec()
    trans = np.zeros((T, 3))
    trans[:, 0] = np.linspace(0, rng.uniform(-1, 1), T)
    trans[:, 2] = 0.95
    return poses, trans, np.zeros(10)


def write_cache(folder, clips=(("01_01", 60), ("02_01", 50), ("13_01", 50), ("16_01", 40))):
    """A tiny retarget cache (train 01/02, val 13, test 16) of smooth random motions."""
    from training.data.bvh_to_smpl import RETARGET_VERSION
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, T) in enumerate(clips):
        p, t, b = smooth_motion(T, seed=i)
        np.savez(folder / f"{name}.npz", poses=p.astype(np.float32), trans=t.astype(np.float32), betas=b,
                 retarget_version=np.int64(RETARGET_VERSION))
    return folder
