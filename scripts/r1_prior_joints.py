"""R1 with some of the temporal model's joint rotations replaced by its own IK-prior input: an
experiment (docs/benchmarks.md, "The trunk from the IK prior"), not a pipeline option.

    PRIOR_JOINTS=0,3,6,9,13,14 .venv/bin/python scripts/r1_prior_joints.py --rows default,default+no-refine

``PRIOR_JOINTS``: SMPL joint indices whose rotation (6D, the root in the camera frame) is taken
from ``engine.estimate.network_inputs.ik_prior`` on frames with world landmarks; every other
argument goes to ``python -m training.bench r1``.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.estimate import temporal  # noqa: E402
from engine.estimate.network_inputs import ik_prior  # noqa: E402

_network = temporal.predict_observations


def predict_with_prior_joints(obs, runner, focal_px, joints):
    """``temporal.predict_observations`` (the network alone) with ``joints``' rotations from the IK prior."""
    out = _network(obs, runner, focal_px, prior_blend=0.0)
    prior = ik_prior(obs.world, np.asarray(obs.keypoints)[..., 2]).reshape(-1, 24, 6)
    seen = np.isfinite(np.asarray(obs.world)).all((-1, -2))
    rot = out["rot6d"].copy()
    for j in joints:
        rot[seen, j] = prior[seen, j]
    out["rot6d"] = rot
    return out


def main(argv=None):
    spec = os.environ.get("PRIOR_JOINTS", "")
    try:
        joints = [int(j) for j in spec.split(",") if j.strip()]
    except ValueError:
        joints = None
    if not joints or any(not 0 <= j < 24 for j in joints):
        print(f"error: PRIOR_JOINTS must be comma-separated SMPL joint indices 0-23, got '{spec}'", file=sys.stderr)
        return 2
    temporal.predict_observations = lambda obs, runner, focal_px, prior_blend=0.0: \
        predict_with_prior_joints(obs, runner, focal_px, joints)
    from training.bench import r1
    return r1.main(argv)


if __name__ == "__main__":
    sys.exit(main())
