"""Draw a Motion's skeleton over its video frames (opencv), for checking a fit by eye."""
import cv2
import numpy as np

from engine.body.skeleton import PARENTS
from engine.observe.types import LM
from engine.estimate.camera import project, world_to_camera
from engine.video.decode import iter_frames


def projected_joints(motion, t):
    """Pixel positions (24,2) of frame t's joints through the Motion's camera."""
    cam = world_to_camera(motion.joints[t][None].astype(np.float64),
                          motion.camera_extrinsics[t][None].astype(np.float64))[0]
    return project(cam, motion.camera_intrinsics.astype(np.float64))


LANDMARK_BONES = tuple((LM[a], LM[b]) for a, b in (
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"), ("left_ankle", "left_foot_index"), ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"), ("right_ankle", "right_foot_index")))  # MediaPipe's body, joined


def draw_landmarks(image, kp, color=(0, 255, 0), min_vis=0.5, thickness=2, radius=3):
    """MediaPipe keypoints (33,3: x, y, visibility) of visibility ≥ ``min_vis``, limbs joined."""
    ok = np.isfinite(kp[:, :2]).all(1) & (kp[:, 2] >= min_vis)
    for a, b in LANDMARK_BONES:
        if ok[a] and ok[b]:
            cv2.line(image, (int(kp[a, 0]), int(kp[a, 1])), (int(kp[b, 0]), int(kp[b, 1])), color, thickness, cv2.LINE_AA)
    for x, y in kp[ok, :2]:
        cv2.circle(image, (int(x), int(y)), radius, color, -1, cv2.LINE_AA)
    return image


def draw_skeleton(image, px, color=(0, 255, 0)):
    for j, p in enumerate(PARENTS):
        if p >= 0:
            cv2.line(image, tuple(int(v) for v in px[p]), tuple(int(v) for v in px[j]), color, 3, cv2.LINE_AA)
    for q in px:
        cv2.circle(image, tuple(int(v) for v in q), 5, (0, 0, 255), -1, cv2.LINE_AA)
    return image


def overlay_frames(motion, video_path, frames, masks=None, width=640):
    """Side-by-side strip of the chosen frames with the skeleton drawn (and the mask tinted)."""
    first = motion.source.get("frame_range", [0])[0]
    wanted = set(int(f) + first for f in frames)
    tiles = []
    for i, _, bgr in iter_frames(video_path, (min(wanted), max(wanted) + 1)):
        if i not in wanted:
            continue
        t = i - first
        img = bgr.copy()
        if masks is not None:
            m = cv2.resize(masks[t], (img.shape[1], img.shape[0])) > 127
            img[m] = (0.6 * img[m] + 0.4 * np.array([255, 128, 0])).astype(np.uint8)
        if motion.valid[t]:
            draw_skeleton(img, projected_joints(motion, t))
        s = width / img.shape[1]
        tiles.append(cv2.resize(img, (width, int(img.shape[0] * s))))
    return np.concatenate(tiles, axis=1)
