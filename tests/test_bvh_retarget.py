"""BVH parsing and CMU → SMPL retargeting on real CMU files (skip without ../shared)."""
import numpy as np

from conftest import shared_path
from engine.body.skeleton import JOINT_INDEX as J
from training.data.bvh import read_bvh
from training.data.retarget import MAJOR_JOINTS, retarget_bvh
from training.data.splits import SUBJECT_SPLIT, split_of
from training.data.standin import capsule_body


def test_parse_cmu_pitch_file():
    b = read_bvh(shared_path("data", "cmu", "bvh", "124", "124_01.bvh"))
    assert b.num_frames == 644 and abs(b.fps - 120) < 0.01
    assert len([n for n in b.names if not n.endswith("_end")]) == 31
    assert b.motion.shape[1] == 96
    G, P = b.forward([0])
    hips = P[0, b.index("Hips"), 1] * 0.056444
    assert 0.77 < hips < 0.97                     # README: hips 0.77–0.96 m above the floor
    # frame 0 is the T-pose: arms horizontal-ish along ±X, legs straight down
    arm = P[0, b.index("LeftHand")] - P[0, b.index("LeftArm")]
    assert arm[0] > 0 and abs(arm[1]) < 0.2 * arm[0]


def test_retarget_follows_cmu_bones_and_limbs():
    b = read_bvh(shared_path("data", "cmu", "bvh", "124", "124_01.bvh"))
    res = retarget_bvh(b, capsule_body())
    assert res["poses"].shape == (161, 72) and abs(res["fps"] - 30) < 0.01
    assert np.nanmax(res["bone_angle_deg"]) < 0.01          # every bone points along CMU's
    d = np.linalg.norm(res["joints"] - res["cmu_joints"], axis=-1)
    legs = [J[n] for n in MAJOR_JOINTS if n.endswith(("hip", "knee", "ankle"))]
    assert d[:, legs].mean() < 0.06                           # legs within a few cm
    assert d[:, [J[n] for n in MAJOR_JOINTS]].mean() < 0.15   # proportions differ in the trunk
    assert np.all(res["joints"][..., 2].min(axis=1) > -0.1)   # nobody under the floor


def test_splits_are_fixed_and_subject_disjoint():
    seen = {}
    for split, subjects in SUBJECT_SPLIT.items():
        for s in subjects:
            assert s not in seen, s
            seen[s] = split
    assert split_of("124_01") == "train" and split_of("124_03") == "val" and split_of("124_02") == "test"
    assert split_of("06_14") == "train" and split_of("16_15") == "test"
