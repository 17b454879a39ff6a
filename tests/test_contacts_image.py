"""Contacts from the image: a foot that stands still in the video is support, at any height."""
import numpy as np

from engine.clean.contacts import CONTACT_JOINTS, CONTACT_KEYPOINTS, image_still_contacts


def _scene(T=30, fps=30.0, pan_deg_per_frame=0.0):
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    E = np.tile(np.eye(4), (T, 1, 1))
    ang = np.radians(pan_deg_per_frame) * np.arange(T)
    c, s = np.cos(ang), np.sin(ang)
    E[:, 0, 0], E[:, 0, 2], E[:, 2, 0], E[:, 2, 2] = c, s, -s, c          # camera yaw (pan)
    kp = np.zeros((T, 33, 3))
    kp[..., 2] = 1.0
    kp[:, 0, :2] = [640, 100]                                                # head: height 400 px
    # a static world point seen by the panning camera: each foot keypoint is projected
    feet = np.array([[-0.2, 1.0, 5.0], [-0.2, 1.0, 4.8], [0.2, 1.0, 5.0], [0.2, 1.0, 4.8]])
    for t in range(T):
        p = feet @ E[t, :3, :3].T
        kp[t, CONTACT_KEYPOINTS, :2] = p[:, :2] / p[:, 2:] * 1000 + [640, 360]
    kp[:, 1, :2] = [640, 500]
    kp[:, 1, 1] = kp[:, CONTACT_KEYPOINTS, 1].max(1)  # keep the 2D height defined by head and feet
    joints = np.zeros((T, 24, 3))
    joints[:, CONTACT_JOINTS, 2] = [0.48, 0.43, 0.48, 0.43]                  # all on a 40 cm box
    return kp, joints, K, E, fps


def test_still_feet_on_a_box_are_contacts_even_with_a_panning_camera():
    kp, joints, K, E, fps = _scene(pan_deg_per_frame=0.5)
    c = image_still_contacts(kp, joints, K, E, fps, np.ones(len(kp), bool))
    assert c[3:-3].all()


def test_moving_or_lifted_feet_are_not():
    kp, joints, K, E, fps = _scene()
    kp[:, CONTACT_KEYPOINTS[2:], 0] += 6.0 * np.arange(len(kp))[:, None]     # right foot slides 6 px/frame
    joints[:, CONTACT_JOINTS[0:2], 2] += 0.3                                 # left foot held 30 cm up
    c = image_still_contacts(kp, joints, K, E, fps, np.ones(len(kp), bool))
    assert not c[:, 2:].any()                                                # 0.45 heights/s: moving
    assert not c[:, :2].any()                                                # still, but not support
    kp2, joints2, K, E, fps = _scene()
    kp2[10:20, CONTACT_KEYPOINTS, 2] = 0.1                                   # unseen feet: unknown
    c = image_still_contacts(kp2, joints2, K, E, fps, np.ones(len(kp2), bool))
    assert not c[10:20].any() and c[3:7].all()
