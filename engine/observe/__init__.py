"""Per-frame observations from MediaPipe Pose: 0.10.21 (its models ship inside the wheel) or 1.x
(Tasks API only, no models: the extension zips for Blender 5.1+ ship the ``.task`` bundle).

Each person in a frame gives 33 image keypoints (pixels + visibility), 33 metric "world"
landmarks (MediaPipe's frame: origin between the hips, x right, y down, z away from the camera —
the pseudo-depth prior), a person segmentation mask (downsampled) and a bounding box.

Two stages: ``detect_people`` runs a detector over streamed frames and keeps *every* person
(plus the background homographies of ``camera_motion``); ``track.track_and_select`` links them
over time and picks the subject; ``observe_frames`` does both and returns the subject's
``Observations``, frames where the subject is lost marked invalid (never another person).

``detect_people`` streams: a producer thread decodes (and colour-converts) a few frames ahead
while the detector works on the current one, and per-detection arrays are gathered in
fixed-size chunks — memory grows by the detections' own size (~15 KB per person per frame,
mostly the 160-pixel mask), never by whole frames.

Detectors sit behind ``PoseDetector`` so others (e.g. an ONNX ViTPose) can plug in: a
single-person detector implements ``__call__(rgb) -> FrameObservation | None``; a multi-person
one also implements ``detect_all(rgb, timestamp_s) -> list[FrameObservation]``.

Why the Tasks ``PoseLandmarker`` for several people: it runs the same two networks as the pose
solution (``pose_detection`` + ``pose_landmark_full``, from the wheel) but keeps up to
``num_poses`` people, re-using each person's landmarks as the next frame's region of interest
and running the person detector only when fewer than ``num_poses`` are tracked: one landmark
pass per person (its cost: docs/performance.md), whereas the single-person solution on crops
would need a separate multi-person
detector (the solution only returns its best detection) and one graph per crop. The ``.task``
bundle is built in memory from the wheel's models with MediaPipe's own metadata writer (the
wheel's models lack the input normalisation metadata the Tasks API requires); nothing is
downloaded.
"""
from .detect import detect_people, observe_frames
from .landmarker import (POSE_BUNDLE_NAME, MediaPipePoseDetector, MediaPipePoseLandmarker, PoseDetector,
                         build_pose_landmarker_bundle, default_detector, find_pose_bundle, pose_landmarker_bundle)
from .types import (APPEARANCE_BINS, LANDMARK_NAMES, LM, MASK_MAX_SIDE, NUM_LANDMARKS, Detections, FrameObservation,
                    Observations, keypoint_box, mask_size)
