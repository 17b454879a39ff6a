"""Body models: the SMPL-24 skeleton, kinematics, and SMPL-layout model files."""
from .skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, JOINT_INDEX, BODY_PARTS, MIRROR  # noqa: F401
from .model import BodyModel, load_body_model, OPEN_BODY_PATH  # noqa: F401
