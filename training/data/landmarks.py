"""Body → MediaPipe landmarks: lives in ``engine.body.landmarks`` (the runtime uses it too)."""
from engine.body.landmarks import (JOINT_LANDMARKS, MIRROR, LandmarkModel, landmark_spec,  # noqa: F401
                                   landmarks_from_body, spec_matrix)
