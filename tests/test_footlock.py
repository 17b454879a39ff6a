"""Foot contacts with hysteresis, the ground plane, and foot locking without pops."""
import numpy as np
from scipy.spatial.transform import Rotation

from engine.body.kinematics import axis_angle_to_matrix, forward_kinematics
from engine.body.skeleton import JOINT_INDEX as J
from engine.clean.contacts import ContactSettings, detect_contacts, fit_ground_plane, ground_transform, hysteresis
from engine.clean.footlock import lock_feet, lock_targets, root_offsets, skating
from test_baseline import REST


def test_hysteresis_does_not_flicker():
    noisy = np.array([0.04, 0.06, 0.04, 0.07, 0.05, 0.12, 0.13, 0.06, 0.04])[:, None]
    state = hysteresis(noisy < 0.05, noisy > 0.09)
    assert state[:, 0].tolist() == [True, True, True, True, True, False, False, False, True]


def test_ground_plane_recovers_a_tilted_floor():
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-2, 2, (200, 2)), np.zeros(200)]
    R = Rotation.from_euler("x", 8, degrees=True).as_matrix()
    n, d = fit_ground_plane(pts @ R.T + [0, 0, 0.3])
    np.testing.assert_allclose(n, R @ [0, 0, 1], atol=1e-9)
    assert abs(d - 0.3 * n[2]) < 1e-9


def _walk_in_place(T=90, fps=30.0, skate=0.1):
    """Legs swinging, with the left foot planted over frames 20–60 but sliding by ``skate`` m/s."""
    rv = np.zeros((T, 24, 3))
    rv[:, 0] = [np.pi / 2, 0, 0]  # stand up in the Z-up world (canonical Y-up → world Z-up)
    phase = np.linspace(0, 2 * np.pi, T)
    rv[:, J["right_hip"], 0] = 0.4 * np.sin(phase)
    rv[:, J["right_knee"], 0] = 0.6 * (1 + np.sin(phase)) / 2
    rv[:, J["left_knee"], 0] = 0.2
    trans = np.zeros((T, 3))
    trans[:, 2] = 0.94
    trans[20:60, 0] = skate * np.arange(40) / fps  # the root drags the planted foot sideways
    trans[60:, 0] = trans[59, 0]
    return rv.reshape(T, 72), trans


def _fk(poses, trans):
    return forward_kinematics(axis_angle_to_matrix(poses.reshape(-1, 24, 3)), REST, trans)


def test_leg_ik_alone_removes_skating_without_pops():
    fps = 30.0
    poses, trans = _walk_in_place()
    contacts = np.zeros((len(poses), 4), bool)
    contacts[20:60, 0] = True
    valid = np.ones(len(poses), bool)
    before = _fk(poses, trans)
    new_poses, new_trans, after = lock_feet(poses, trans, REST, contacts, valid, fps, root=False)
    np.testing.assert_array_equal(new_trans, trans)
    assert skating(after, contacts, fps) < 0.3 * skating(before, contacts, fps)
    # no pop: the ankle's frame-to-frame step stays under 2 cm more than the original's largest
    step = lambda j: np.linalg.norm(np.diff(j[:, J["left_ankle"]], axis=0), axis=-1)  # noqa: E731
    assert step(after).max() < step(before).max() + 0.02
    # the other leg is untouched
    np.testing.assert_allclose(after[:, J["right_ankle"]], before[:, J["right_ankle"]], atol=1e-9)


def test_root_lock_cancels_root_jitter_and_keeps_the_pose():
    # The root jitters (monocular depth noise) while the left foot is planted: moving the root
    # back removes the skating and changes no joint relative to the pelvis.
    fps = 30.0
    rng = np.random.default_rng(0)
    poses, trans = _walk_in_place(skate=0.0)
    noisy = trans + np.c_[rng.normal(0, 0.03, (len(trans), 2)), np.zeros(len(trans))]
    contacts = np.zeros((len(poses), 4), bool)
    contacts[10:70, 0] = True
    valid = np.ones(len(poses), bool)
    before = _fk(poses, noisy)
    new_poses, new_trans, after = lock_feet(poses, noisy, REST, contacts, valid, fps, legs=False)
    np.testing.assert_allclose(new_poses, poses)
    np.testing.assert_allclose(after - after[:, :1], before - before[:, :1], atol=1e-9)
    assert skating(after, contacts, fps) < 0.1 * skating(before, contacts, fps)
    # planted: the heel sits on the floor (sole 8 cm under the ankle joint)
    np.testing.assert_allclose(after[10:70, J["left_ankle"], 2], 0.08, atol=0.01)
    # no pop at contact start/end: the root never jumps more than the jitter's scale
    assert np.abs(np.diff(new_trans[:, :2], axis=0)).max() < 0.15


def test_root_offsets_interpolate_between_contacts():
    pts = np.zeros((40, 1, 3))
    pts[:, 0, 0] = np.linspace(0, 0.39, 40)  # a point drifting 1 cm/frame
    c = np.zeros((40, 1), bool); c[:10] = True; c[30:] = True
    off, anchors = root_offsets(pts, c, floor_z=None)
    held = pts[:, 0] + off
    assert np.ptp(held[:10, 0]) < 0.01 and np.ptp(held[30:, 0]) < 0.01  # still in contact
    assert len(anchors) == 2
    assert np.abs(np.diff(off[:, 0])).max() < 0.03  # no jump: the offset is spread in between


def test_contacts_found_on_a_planted_foot():
    poses, trans = _walk_in_place(skate=0.0)
    joints = forward_kinematics(axis_angle_to_matrix(poses.reshape(-1, 24, 3)), REST, trans)
    R, shift = ground_transform(joints, np.ones((len(joints), 4), bool))
    joints[..., 2] += shift
    c = detect_contacts(joints, 30.0, settings=ContactSettings(enter_height=0.1, exit_height=0.14))
    assert c[:, 0].mean() > 0.8  # the left heel is down nearly all the time
    assert c[:, 2].mean() < c[:, 0].mean()  # the swinging right heel less so


def test_lock_targets_blend_is_continuous():
    ankle = np.c_[np.linspace(0, 1, 30), np.zeros(30), np.zeros(30)]
    contact = np.zeros(30, bool); contact[10:20] = True
    desired, w = lock_targets(ankle, contact, blend_frames=4)
    assert (w[10:20] == 1).all() and w[5] == 0 and 0 < w[8] < 1
    final = ankle + w[:, None] * (desired - ankle)
    assert np.abs(np.diff(final[:, 0])).max() < 2.5 * (1 / 29)  # at most 2.5× the natural step


def test_a_raised_contact_keeps_its_height():
    """A foot planted on a box (40 cm above the floor) is held where it stands, not pulled down
    to the floor; a floor contact still goes to the floor."""
    from engine.clean.footlock import root_offsets
    n = 30
    pts = np.zeros((n, 2, 3))
    pts[:, 0] = [0.0, 0.0, 0.48]        # heel on the box (sole offset 0.08 → sole at 0.40)
    pts[:, 1] = [0.5, 0.0, 0.09]        # a floor heel, 1 cm high
    pts[:, :, 0] += 0.01 * np.sin(np.arange(n))[:, None]  # jitter
    c = np.zeros((n, 2), bool)
    c[:15, 0] = True
    c[15:, 1] = True
    off, anchors = root_offsets(pts, c, floor_z=np.array([0.08, 0.08]))
    z = {k: a[2] for k, _, _, a in anchors}
    assert abs(z[0] - 0.48) < 0.01 and abs(z[1] - 0.08) < 1e-9
    assert np.abs(off[:15, 2]).max() < 0.01          # the box contact does not drag the root down
    assert abs(off[20:, 2].mean() + 0.01) < 0.003     # the floor one lowers it by its 1 cm
