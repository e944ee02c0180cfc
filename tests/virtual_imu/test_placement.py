import math

import pytest
import torch

from motion.skeleton import JOINT_NAMES
from virtual_imu import STANDARD_GRAVITY, simulate
from virtual_imu import quaternion as Q
from virtual_imu.placement import SensorMount, limb_frame
from virtual_imu.presets import LEFT_WRIST, RIGHT_WRIST, preset

F64 = torch.float64
BODY_RIGHT = torch.tensor([-1.0, 0.0, 0.0], dtype=F64)  # HumanML3D: the body faces +z, its left is +x


def bent_arm(side: float):
    """Arm hanging at the side (x = side · 0.2 m), elbow bent 90° so the forearm points forward (+z)."""
    shoulder = torch.tensor([0.2 * side, 1.4, 0.0], dtype=F64)
    elbow = torch.tensor([0.2 * side, 1.1, 0.0], dtype=F64)
    wrist = torch.tensor([0.2 * side, 1.1, 0.25], dtype=F64)
    return shoulder, elbow, wrist


def test_forearm_frame_of_a_bent_arm():
    frame = Q.to_matrix(limb_frame(*bent_arm(+1), BODY_RIGHT))
    expected = torch.tensor([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=F64)  # columns x, y, z
    torch.testing.assert_close(frame, expected, atol=1e-12, rtol=0)


def test_straight_arm_frame_is_defined_and_continuous():
    frames = []
    for degrees in [0.0, 0.5, 1.0, 2.0, 4.0]:
        a = math.radians(degrees)
        shoulder = torch.tensor([0.2, 1.4, 0.0], dtype=F64)
        elbow = torch.tensor([0.2, 1.1, 0.0], dtype=F64)
        wrist = elbow + 0.25 * torch.tensor([0.0, -math.cos(a), math.sin(a)], dtype=F64)
        frames.append(Q.to_matrix(limb_frame(shoulder, elbow, wrist, BODY_RIGHT)))
    straight = frames[0]
    torch.testing.assert_close(straight @ straight.T, torch.eye(3, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(straight[:, 1], BODY_RIGHT, atol=1e-12, rtol=0)
    for a, b in zip(frames, frames[1:]):
        assert (a - b).abs().max() < 0.1  # a few degrees of elbow flexion never flips the frame


@pytest.mark.parametrize(
    "side,mount_preset,offset_world,axes_world",
    [
        # left watch: 3 o'clock (x) to the hand, face (z) lateral = +x world, 12 o'clock (y) down
        (+1, LEFT_WRIST, (0.02, 0.0, -0.03), ((0, 0, 1), (0, -1, 0), (1, 0, 0))),
        # right watch: 3 o'clock to the elbow, face lateral = −x world, 12 o'clock down
        (-1, RIGHT_WRIST, (-0.02, 0.0, -0.03), ((0, 0, -1), (0, -1, 0), (-1, 0, 0))),
    ],
)
def test_wrist_watch_presets(side, mount_preset, offset_world, axes_world):
    shoulder, elbow, wrist = bent_arm(side)
    joints = torch.zeros(5, 22, 3, dtype=F64)
    index = {name: i for i, name in enumerate(JOINT_NAMES)}
    prefix = "left" if side > 0 else "right"
    other = "right" if side > 0 else "left"
    joints[:, index[f"{prefix}_shoulder"]] = shoulder
    joints[:, index[f"{prefix}_elbow"]] = elbow
    joints[:, index[f"{prefix}_wrist"]] = wrist
    joints[:, index[f"{other}_shoulder"]] = shoulder * torch.tensor([-1.0, 1, 1], dtype=F64)
    positions, orientations = mount_preset.place(joints)
    torch.testing.assert_close(positions[0], wrist + torch.tensor(offset_world, dtype=F64), atol=1e-12, rtol=0)
    sensor_axes = Q.to_matrix(orientations[0])
    torch.testing.assert_close(sensor_axes, torch.tensor(axes_world, dtype=F64).T, atol=1e-12, rtol=0)
    acc, gyro = simulate(positions, orientations, fps=20.0)
    torch.testing.assert_close(acc[0], torch.tensor([0.0, -STANDARD_GRAVITY, 0.0], dtype=F64), atol=1e-9, rtol=0)
    assert gyro.abs().max() < 1e-12


def test_mount_offset_rotates_with_the_segment():
    mount = SensorMount(offset_m=(0.1, 0.0, 0.0))
    quarter_y = Q.from_axis_angle(torch.tensor([0.0, 1, 0], dtype=F64), torch.tensor(math.pi / 2, dtype=F64))
    position, orientation = mount.attach(torch.zeros(1, 3, dtype=F64), quarter_y[None])
    torch.testing.assert_close(position[0], torch.tensor([0.0, 0.0, -0.1], dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(orientation[0], quarter_y)


def test_placement_is_differentiable_in_the_joints():
    g = torch.Generator().manual_seed(0)
    joints = (torch.randn(6, 22, 3, dtype=F64, generator=g) * 0.3).requires_grad_(True)

    def run(j):
        return simulate(*LEFT_WRIST.place(j), fps=20.0)

    assert torch.autograd.gradcheck(run, (joints,), eps=1e-6, atol=1e-5)


def test_bad_placement_inputs():
    with pytest.raises(ValueError, match="joints must have shape"):
        LEFT_WRIST.place(torch.zeros(5, 21, 3))
    with pytest.raises(ValueError, match="unknown sensor placement"):
        preset("ankle")
