"""Front/back from the face in the image (engine.align.facing) and the yaw-step measures."""
import numpy as np

from engine.align.facing import face_toward_camera, forward_in_camera, in_spin, runs_at_least, yaw_in_camera, yaw_steps
from engine.observe import LM


def _face(T=10, eye_span=30.0, mirrored=False):
    kp = np.zeros((T, 33, 3))
    kp[..., 2] = 0.99
    pts = {"nose": (0, 20), "left_eye": (eye_span / 2, 0), "right_eye": (-eye_span / 2, 0),
           "mouth_left": (8, 40), "mouth_right": (-8, 40)}
    for name, (x, y) in pts.items():
        kp[:, LM[name], :2] = (300 + (-x if mirrored else x), 200 + y)
    return kp


def test_a_frontal_face_is_toward_the_camera_and_its_mirror_image_is_not():
    assert face_toward_camera(_face()).all()
    assert not face_toward_camera(_face(mirrored=True)).any()        # the labels say: seen from behind
    assert not face_toward_camera(_face(eye_span=6.0)).any()          # near profile: eyes overlap
    low = _face()
    low[:, LM["mouth_left"], 2] = 0.2
    assert not face_toward_camera(low).any()                          # a face point not seen


def test_the_face_must_hold_for_three_frames_in_a_row():
    kp = _face(T=12, mirrored=True)
    kp[5] = _face(T=1)[0]                                             # one frontal frame among mirrored ones
    kp[8:11] = _face(T=3)                                             # three in a row
    assert np.array_equal(np.flatnonzero(face_toward_camera(kp)), [8, 9, 10])
    assert np.array_equal(runs_at_least([1, 1, 0, 1, 1, 1, 0, 1], 3), [0, 0, 0, 1, 1, 1, 0, 0])


def test_rolled_heads_are_judged_by_the_triangle_not_the_image_axes():
    kp = _face()
    c = kp[:, :, :2].mean(1, keepdims=True)
    a = np.radians(150)                                               # nearly upside down (a handstand)
    Rm = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    kp[:, :, :2] = (kp[:, :, :2] - c) @ Rm.T + c
    assert face_toward_camera(kp).all()


def test_forward_axes_yaw_and_steps():
    yaw_true = np.array([0.0, 10, 20, 50, 52, 51, 120, 150, 179, -179])
    a = np.radians(yaw_true)
    Rz = np.zeros((len(a), 24, 3, 3))
    Rz[:] = np.eye(3)
    # a body turned by yaw about the camera's vertical (y), starting face-on (forward = -z)
    Rz[:, 0] = [[[np.cos(t), 0, -np.sin(t)], [0, 1, 0], [np.sin(t), 0, np.cos(t)]] for t in a]
    Rz[:, 0] = Rz[:, 0] @ np.diag([-1.0, 1.0, -1.0])                  # face the camera at yaw 0
    f = forward_in_camera(Rz, joints=(0,))[:, 0]
    np.testing.assert_allclose(yaw_in_camera(f), yaw_true, atol=1e-9)
    np.testing.assert_allclose(yaw_steps(yaw_true)[1:], [10, 10, 30, 2, 1, 69, 30, 29, 2], atol=1e-9)
    spin = in_spin(yaw_true)
    assert spin[7] and not spin[3] and not spin[6]                    # 120→150 inside a turn; 20→50 is not
