"""A small BVH reader (numpy) and forward kinematics for it.

Handles any channel order per joint (CMU's ``bvh/`` uses Z Y X, the Daz layout Z X Y), end
sites, and the root's position channels. Rotations are intrinsic in the listed order, as BVH
defines them: for ``Zrotation Yrotation Xrotation`` the local rotation is R = Rz·Ry·Rx.
"""
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass
class BVH:
    names: list            # joint names (end sites are named "<parent>_end")
    parents: np.ndarray    # (J,) parent index, -1 for the root
    offsets: np.ndarray    # (J,3) rest offsets from the parent, file units
    channels: list         # per joint: list of channel names (empty for end sites)
    frame_time: float
    motion: np.ndarray     # (T, C) raw channel values
    is_end: np.ndarray = field(default=None)  # (J,) bool

    @property
    def num_frames(self):
        return self.motion.shape[0]

    @property
    def fps(self):
        return 1.0 / self.frame_time

    def index(self, name):
        return self.names.index(name)

    def local_rotations(self):
        """(T,J,3,3) local rotation matrices (identity for end sites)."""
        T, J = self.num_frames, len(self.names)
        R = np.tile(np.eye(3), (T, J, 1, 1))
        col = 0
        for j, ch in enumerate(self.channels):
            rot_axes = [c[0].upper() for c in ch if c.lower().endswith("rotation")]
            rot_cols = [col + k for k, c in enumerate(ch) if c.lower().endswith("rotation")]
            if rot_axes:
                R[:, j] = Rotation.from_euler("".join(rot_axes), self.motion[:, rot_cols],
                                              degrees=True).as_matrix()
            col += len(ch)
        return R

    def root_positions(self):
        """(T,3) root position channels (file units), zeros if the root has none."""
        ch = self.channels[0]
        out = np.zeros((self.num_frames, 3))
        for k, c in enumerate(ch):
            if c.lower().endswith("position"):
                out[:, "xyz".index(c[0].lower())] = self.motion[:, k]
        return out

    def forward(self, frames=None, identity_joints=()):
        """Global rotations (T,J,3,3) and positions (T,J,3) in file units and axes.

        ``identity_joints``: names whose channels are ignored (e.g. CMU's uncaptured fingers)."""
        R = self.local_rotations()
        for n in identity_joints:
            if n in self.names:
                R[:, self.names.index(n)] = np.eye(3)
        root = self.root_positions()
        if frames is not None:
            R, root = R[frames], root[frames]
        T, J = R.shape[:2]
        G = np.empty_like(R)
        P = np.empty((T, J, 3))
        for j in range(J):
            p = self.parents[j]
            if p < 0:
                G[:, j] = R[:, j]
                P[:, j] = root + self.offsets[j]
            else:
                G[:, j] = G[:, p] @ R[:, j]
                P[:, j] = P[:, p] + G[:, p] @ self.offsets[j]
        return G, P


def read_bvh(path):
    """Parse a BVH file into a :class:`BVH`."""
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    head, _, motion = text.partition("MOTION")
    if not motion:
        raise ValueError(f"{path}: no MOTION section")
    tokens = head.split()
    names, parents, offsets, channels, is_end = [], [], [], [], []
    stack = []
    i = 0
    pending = None
    while i < len(tokens):
        t = tokens[i]
        if t in ("ROOT", "JOINT"):
            pending = tokens[i + 1]
            i += 2
        elif t == "End":
            pending = f"{names[stack[-1]]}_end"
            i += 2
        elif t == "{":
            if pending is not None:
                names.append(pending)
                parents.append(stack[-1] if stack else -1)
                offsets.append(np.zeros(3))
                channels.append([])
                is_end.append(pending.endswith("_end") and tokens[i - 2] == "End")
                stack.append(len(names) - 1)
                pending = None
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            offsets[stack[-1]] = np.array([float(x) for x in tokens[i + 1:i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tokens[i + 1])
            channels[stack[-1]] = tokens[i + 2:i + 2 + n]
            i += 2 + n
        else:
            i += 1
    lines = motion.strip().splitlines()
    n_frames = int(lines[0].split(":")[1])
    frame_time = float(lines[1].split(":")[1])
    data = np.array(" ".join(lines[2:2 + n_frames]).split(), dtype=np.float64)
    n_ch = sum(len(c) for c in channels)
    data = data.reshape(n_frames, n_ch)
    return BVH(names, np.array(parents), np.array(offsets), channels, frame_time, data,
               np.array(is_end))
