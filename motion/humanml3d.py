"""The HumanML3D 263-d motion representation and its decoding back to joint positions.

One feature row per frame t = 0 … T−1 of a clip of T + 1 joint frames (the last frame only supplies
velocities). With J = 22 joints (12·J − 1 = 263 channels), in this order:

| slice                      | size | content                                                               |
|----------------------------|------|-----------------------------------------------------------------------|
| `ROOT_ANGULAR_VELOCITY`    | 1    | heading change from frame t to t+1 about +y, as **half** the angle:   |
|                            |      | asin of the y part of q_{t+1} ⊗ q_t⁻¹, rad/frame (the heading turns    |
|                            |      | by twice this value)                                                  |
| `ROOT_LINEAR_VELOCITY`     | 2    | root (x, z) displacement t → t+1, m/frame, in the heading frame of t+1|
| `ROOT_HEIGHT`              | 1    | root y at t, m above the floor                                        |
| `RIC_POSITIONS`            | 63   | joints 1…21 relative to the root's (x, z), in the heading frame, m     |
| `ROTATIONS_6D`             | 126  | joints 1…21 local rotations, first two columns of each matrix         |
| `LOCAL_VELOCITIES`         | 66   | displacement t → t+1 of all 22 joints, m/frame, heading frame of t    |
| `FOOT_CONTACTS`            | 4    | 1.0 when the joint moves < threshold: joints 7, 10, 8, 11             |

"Heading frame" is the world frame turned about +y so that the body faces +z: q_t maps world
vectors into it. Decoding integrates the heading from q_0 = identity and the root (x, z) from 0, so
decoded clips start at the origin facing +z (as HumanML3D's clips do after their normalisation).
Motion is at 20 fps (`motion.skeleton.FPS`). Reference for the layout and conventions: HumanML3D,
Guo et al., CVPR 2022 (github.com/EricGuo5513/HumanML3D, `motion_representation.ipynb`).
The forward direction, `extract_features`, lives in `motion.humanml3d_extract` and is re-exported here.
"""

from __future__ import annotations

import torch

from motion.humanml3d_extract import canonicalize_joints, extract_features, offsets_from_joints
from motion.skeleton import FOOT_JOINTS, NUM_JOINTS
from virtual_imu import quaternion

__all__ = [
    "CONTACT_JOINTS",
    "FEATURE_DIM",
    "FOOT_CONTACTS",
    "LOCAL_VELOCITIES",
    "RIC_POSITIONS",
    "ROOT_ANGULAR_VELOCITY",
    "ROOT_HEIGHT",
    "ROOT_LINEAR_VELOCITY",
    "ROTATIONS_6D",
    "canonicalize_joints",
    "extract_features",
    "feature_dim",
    "offsets_from_joints",
    "recover_from_ric",
    "recover_root_rot_pos",
]

ROOT_ANGULAR_VELOCITY = slice(0, 1)
ROOT_LINEAR_VELOCITY = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
RIC_POSITIONS = slice(4, 4 + 3 * (NUM_JOINTS - 1))
ROTATIONS_6D = slice(RIC_POSITIONS.stop, RIC_POSITIONS.stop + 6 * (NUM_JOINTS - 1))
LOCAL_VELOCITIES = slice(ROTATIONS_6D.stop, ROTATIONS_6D.stop + 3 * NUM_JOINTS)
FOOT_CONTACTS = slice(LOCAL_VELOCITIES.stop, LOCAL_VELOCITIES.stop + 4)
FEATURE_DIM = FOOT_CONTACTS.stop
"""263 channels for the 22-joint skeleton."""

CONTACT_JOINTS = FOOT_JOINTS
"""Joints of the `FOOT_CONTACTS` columns: left ankle, left foot, right ankle, right foot."""


def feature_dim(joints_num: int) -> int:
    """Channels of the representation for a skeleton of `joints_num` joints: 4 + 9(J−1) + 3J + 4."""
    return 12 * joints_num - 1


def _check_features(features: torch.Tensor, joints_num: int) -> None:
    if not isinstance(joints_num, int) or isinstance(joints_num, bool) or joints_num < 2:
        raise ValueError(f"joints_num must be an integer ≥ 2, got {joints_num!r}")
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if not features.is_floating_point():
        raise ValueError(f"features must be a floating-point tensor, got dtype {features.dtype}")
    if features.dim() < 2 or features.shape[-2] < 1:
        raise ValueError(f"features must have shape [..., T, {feature_dim(joints_num)}], got {tuple(features.shape)}")
    channels = features.shape[-1]
    if channels != feature_dim(joints_num):
        implied = (channels + 1) / 12
        hint = f" (that is the size for joints_num={int(implied)})" if implied.is_integer() else ""
        raise ValueError(
            f"features has {channels} channels{hint}, but joints_num={joints_num} needs {feature_dim(joints_num)}"
        )
    if not torch.isfinite(features).all():
        raise ValueError("features contains non-finite values (NaN or Inf)")


def _heading_quaternion(half_angle: torch.Tensor) -> torch.Tensor:
    """(cos a, 0, sin a, 0): a turn by 2a about +y, `[...]` → `[..., 4]`."""
    zero = torch.zeros_like(half_angle)
    return torch.stack((torch.cos(half_angle), zero, torch.sin(half_angle), zero), dim=-1)


def recover_root_rot_pos(features: torch.Tensor, joints_num: int = NUM_JOINTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Heading quaternions and root positions by integrating the root channels.

    Args:
        features: `[..., T, 12·joints_num − 1]` un-normalised HumanML3D features.
        joints_num: number of joints of the skeleton (22 for HumanML3D).
    Returns:
        `heading` `[..., T, 4]`: q_t, world → heading frame (a rotation about +y; q_0 = identity), and
        `root` `[..., T, 3]`: root position in m (x, z integrated from 0, y = the root height channel).
    """
    _check_features(features, joints_num)
    half_angle_step = features[..., :-1, ROOT_ANGULAR_VELOCITY.start]
    half_angle = torch.cat((torch.zeros_like(features[..., :1, 0]), torch.cumsum(half_angle_step, dim=-1)), dim=-1)
    heading = _heading_quaternion(half_angle)
    # Displacement t → t+1 is stored in the heading frame of t+1: back to world with q_{t+1}⁻¹.
    local_step = features[..., :-1, ROOT_LINEAR_VELOCITY]
    step_xyz = torch.stack((local_step[..., 0], torch.zeros_like(local_step[..., 0]), local_step[..., 1]), dim=-1)
    world_step = quaternion.rotate_inverse(heading[..., 1:, :], step_xyz)
    root_xz = torch.cat((torch.zeros_like(world_step[..., :1, :]), torch.cumsum(world_step, dim=-2)), dim=-2)
    root = torch.stack((root_xz[..., 0], features[..., ROOT_HEIGHT.start], root_xz[..., 2]), dim=-1)
    return heading, root


def recover_from_ric(features: torch.Tensor, joints_num: int = NUM_JOINTS) -> torch.Tensor:
    """Joint positions from the root channels and the rotation-invariant (ric) positions.

    Differentiable and batched over any leading dims; the inverse of `extract_features` up to its
    floor / origin / facing normalisation.

    Args:
        features: `[..., T, 12·joints_num − 1]` un-normalised HumanML3D features.
        joints_num: number of joints (22 for HumanML3D).
    Returns:
        `[..., T, joints_num, 3]` joint positions in m, y up, starting at the origin facing +z.
    """
    heading, root = recover_root_rot_pos(features, joints_num)
    ric = features[..., 4 : 4 + 3 * (joints_num - 1)].unflatten(-1, (joints_num - 1, 3))
    world = quaternion.rotate_inverse(heading[..., None, :].expand(*ric.shape[:-1], 4), ric)
    root_xz = root * root.new_tensor([1.0, 0.0, 1.0])
    return torch.cat((root[..., None, :], world + root_xz[..., None, :]), dim=-2)
