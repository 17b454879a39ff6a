"""The canonical SMPL-24 skeleton: joint names, order and parent tree.

Canonical body frame (SMPL's): Y up, the body faces +Z, the subject's left is +X, metres.
"""
import numpy as np

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_JOINTS = len(JOINT_NAMES)
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
JOINT_INDEX = {n: i for i, n in enumerate(JOINT_NAMES)}

# Left/right permutation (for mirroring): joint i of the mirrored body is joint MIRROR[i].
MIRROR = np.array([JOINT_INDEX[n.replace("left_", "#").replace("right_", "left_").replace("#", "right_")]
                   for n in JOINT_NAMES])

# The five body parts of split-and-recombine (SEEDS.md, seed 2); the root is in every part.
BODY_PARTS = {
    "torso": (0, 3, 6, 9, 12, 15),
    "left_arm": (0, 13, 16, 18, 20, 22),
    "right_arm": (0, 14, 17, 19, 21, 23),
    "left_leg": (0, 1, 4, 7, 10),
    "right_leg": (0, 2, 5, 8, 11),
}


def children(parents=PARENTS):
    """List of child indices per joint."""
    out = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            out[p].append(j)
    return out
