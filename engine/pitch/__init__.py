"""Pitch analysis on joint centres: delivery events and OBP-style biomechanics metrics.

``analyze(from_motion(motion))`` gives a :class:`PitchAnalysis`; ``report`` writes JSON, CSV and
PNG plots; ``python -m engine.pitch`` runs it on Motion files. A motion without a pitching
delivery raises :class:`NotAPitch`; implausible values are listed in ``PitchAnalysis.flags``.
Pure numpy/scipy (matplotlib only for the plots); never imports bpy.
"""
from .analysis import PitchAnalysis, analyze, detect_handedness
from .joints import JointSet, from_motion, from_obp_landmarks, from_smpl_joints, read_obp_csv
from .plausibility import NotAPitch

__all__ = ["PitchAnalysis", "analyze", "detect_handedness", "JointSet", "from_motion",
           "from_obp_landmarks", "from_smpl_joints", "read_obp_csv", "NotAPitch"]
