"""Building blocks of the procedural generator: rotations, FK, IK, smooth profiles."""

import numpy as np
import pytest

from motion import skeleton as sk
from motion.procedural.poses import MIN_ELBOW_FLEX_RAD, local_rotations_from_angles
from motion.procedural.rig import LEFT_ARM, LEG, Rig, forward_kinematics, local_from_global, two_bone_ik
from motion.procedural.rotations import (
    blend_rotations, matrix_to_quaternion, quaternion_to_matrix, rot_x, rot_y, rot_z,
)
from motion.procedural.timing import keyframes, smooth_upper_envelope


def _random_rotations(rng, n):
    return rot_z(rng.uniform(-np.pi, np.pi, n)) @ rot_y(rng.uniform(-np.pi, np.pi, n)) @ rot_x(rng.uniform(-np.pi, np.pi, n))


def test_axis_rotation_directions():
    assert rot_x(np.pi / 2) @ np.array([0, 1, 0]) == pytest.approx([0, 0, 1])  # trunk forward
    assert rot_y(np.pi / 2) @ np.array([0, 0, 1]) == pytest.approx([1, 0, 0])  # turn left
    assert rot_z(np.pi / 2) @ np.array([1, 0, 0]) == pytest.approx([0, 1, 0])


def test_quaternion_round_trip_and_blend_end_points():
    rng = np.random.default_rng(1)
    rotations = _random_rotations(rng, 500)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rotations)), rotations, atol=1e-9)
    others = _random_rotations(rng, 500)
    np.testing.assert_allclose(blend_rotations(rotations, others, np.zeros(500)), rotations, atol=1e-9)
    np.testing.assert_allclose(blend_rotations(rotations, others, np.ones(500)), others, atol=1e-9)
    halfway = blend_rotations(rotations, others, np.full(500, 0.5))
    np.testing.assert_allclose(halfway @ np.swapaxes(halfway, -1, -2), np.broadcast_to(np.eye(3), (500, 3, 3)), atol=1e-9)


def test_forward_kinematics_of_identity_rotations_is_the_rest_pose():
    rig = Rig(1.8)
    rest = sk.rest_joints(1.8)
    local = np.broadcast_to(np.eye(3), (3, 22, 3, 3)).copy()
    joints, _ = forward_kinematics(rig.offsets, np.repeat(rest[:1], 3, axis=0), local)
    np.testing.assert_allclose(joints, np.broadcast_to(rest, (3, 22, 3)), atol=1e-12)


def test_forward_kinematics_keeps_bone_lengths_for_any_rotations():
    rng = np.random.default_rng(2)
    rig = Rig(1.6)
    local = _random_rotations(rng, 50 * 22).reshape(50, 22, 3, 3)
    joints, _ = forward_kinematics(rig.offsets, rng.normal(size=(50, 3)), local)
    np.testing.assert_allclose(sk.bone_lengths(joints), np.broadcast_to(sk.bone_lengths(sk.rest_joints(1.6)), (50, 21)), atol=1e-12)


def test_two_bone_ik_reaches_reachable_targets_with_a_hinge():
    rng = np.random.default_rng(3)
    frames = 200
    base = rng.normal(size=(frames, 3))
    direction = rng.normal(size=(frames, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    target = base + rng.uniform(0.1, 0.77, size=(frames, 1)) * direction
    upper_rot, lower_rot, middle = two_bone_ik(base, target, 0.40, 0.38, np.array([0.0, 0.0, 1.0]), LEG)
    np.testing.assert_allclose(np.linalg.norm(middle - base, axis=1), 0.40, atol=1e-9)
    end = middle + lower_rot @ np.array([0.0, -0.38, 0.0])
    np.testing.assert_allclose(end, target, atol=1e-9)
    np.testing.assert_allclose(base + upper_rot @ np.array([0.0, -0.40, 0.0]), middle, atol=1e-9)
    # The knee is a hinge: the local rotation only turns about the rest hinge axis (x).
    hinge = local_from_global(upper_rot, lower_rot)
    np.testing.assert_allclose(hinge[:, 0], np.broadcast_to([1.0, 0.0, 0.0], (frames, 3)), atol=1e-9)


def test_arm_ik_bends_the_elbow_the_anatomical_way():
    # Arm hanging with the wrist in front of the hip: the elbow must point backwards.
    shoulder = np.array([[0.2, 1.4, 0.0]])
    wrist = np.array([[0.2, 1.0, 0.25]])
    upper, lower, elbow = two_bone_ik(shoulder, wrist, 0.27, 0.255, np.array([0.0, 0.0, -1.0]), LEFT_ARM)
    assert elbow[0, 2] < 0.05
    # Same posture through the anatomical angle path: elbow flexion bends the forearm forward (+z).
    local = local_rotations_from_angles({"left_elbow_flex": np.radians(60.0)}, 1)
    _, globals_ = forward_kinematics(Rig(1.7).offsets, np.zeros((1, 3)), local)
    forearm = globals_[0, sk.LEFT_ELBOW] @ np.array([1.0, 0.0, 0.0])
    assert forearm[2] > 0.8 and forearm[1] < 0


def test_elbow_flexion_never_below_minimum():
    local = local_rotations_from_angles({"left_elbow_flex": 0.0, "right_elbow_flex": np.zeros(4)}, 4)
    for joint in (sk.LEFT_ELBOW, sk.RIGHT_ELBOW):
        angle = np.arccos(np.clip(local[:, joint, 0, 0], -1, 1))  # rotation about y
        assert np.all(angle >= MIN_ELBOW_FLEX_RAD - 1e-12)


def test_keyframes_are_monotone_between_keys_and_c1():
    t = np.linspace(-0.5, 3.5, 4001)
    values = keyframes([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.2, 0.2], t)
    assert values.min() >= -1e-12 and values.max() <= 1.0 + 1e-12  # no overshoot
    between = (t >= 2.0) & (t <= 3.0)
    np.testing.assert_allclose(values[between], 0.2, atol=1e-12)  # flat keys stay flat
    velocity = np.diff(values) / np.diff(t)
    assert np.max(np.abs(np.diff(velocity))) < 0.01  # no velocity jumps (C1)


def test_smooth_upper_envelope_bounds_its_input():
    rng = np.random.default_rng(4)
    values = np.maximum(rng.normal(size=300), 0.0)
    smooth = smooth_upper_envelope(values, radius=3)
    assert np.all(smooth >= values - 1e-12)
    assert np.abs(np.diff(smooth, 2)).max() < np.abs(np.diff(values, 2)).max()
