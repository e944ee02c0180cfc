"""Turning a pose description into joint positions: angle tracks + leg IK targets -> FK.

Generators describe a motion in the *path frame* (walking direction +z from the origin, y up); the
random heading and start position are applied to the finished joints (a rotation about y plus a
translation of every frame is the same as composing it into the root of the FK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from motion import skeleton as sk
from motion.procedural.poses import AngleTrack, local_rotations_from_angles, pelvis_orientation
from motion.procedural.rig import LEG, Rig, forward_kinematics, local_from_global, two_bone_ik
from motion.procedural.rotations import apply, rot_x, rot_y

HIP_JOINTS = (sk.LEFT_HIP, sk.RIGHT_HIP)
KNEE_JOINTS = (sk.LEFT_KNEE, sk.RIGHT_KNEE)
ANKLE_JOINTS = (sk.LEFT_ANKLE, sk.RIGHT_ANKLE)
BALL_JOINTS = (sk.LEFT_FOOT, sk.RIGHT_FOOT)

REACH_FRACTION = 0.995
"""Planted feet are kept within this fraction of the leg length from the hip (knee ≥ ~11° flexed)."""


@dataclass
class Track:
    """A generated motion in the path frame.

    Attributes:
        joints: `[T, 22, 3]` positions (m).
        local_rotations: `[T, 22, 3, 3]` the rotations FK turned into `joints`.
        foot_contact: `[T, 4]` bool, enforced contacts of `skeleton.FOOT_JOINTS`.
        floor_height: `[T, 22]` floor height (m) under every joint (stairs), or None for the flat floor y = 0.
        details: generator parameters worth mentioning in a caption (speed, side, ...).
    """

    joints: np.ndarray
    local_rotations: np.ndarray
    foot_contact: np.ndarray
    floor_height: Optional[np.ndarray] = None
    details: dict = field(default_factory=dict)


@dataclass
class LegTargets:
    """Where the feet must be: ankle positions `[2, T, 3]`, foot orientations `[2, T, 3, 3]`, knee directions.

    Index 0 is the left leg. `knee_direction` `[2, T, 3]` (or `[2, 3]`) says where the knees point.
    """

    ankle: np.ndarray
    foot_rotation: np.ndarray
    knee_direction: np.ndarray


def foot_rotation(yaw, pitch) -> np.ndarray:
    """Global foot orientation `[..., 3, 3]`: toes turned by `yaw` (left +) and raised by `pitch` (toes up +)."""
    return rot_y(yaw) @ rot_x(-np.asarray(pitch, dtype=np.float64))


def ball_from_ankle(rig: Rig, ankle: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Ball-of-foot joint position `[..., 3]` for an ankle at `ankle [..., 3]` and foot orientation `[..., 3, 3]`."""
    return ankle + apply(rotation, rig.offsets[sk.LEFT_FOOT])


def ankle_from_ball(rig: Rig, ball: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Ankle position `[..., 3]` for the ball of the foot at `ball` and foot orientation `rotation`."""
    return ball - apply(rotation, rig.offsets[sk.LEFT_FOOT])


def hip_offsets(rig: Rig, pelvis_rotation: np.ndarray) -> np.ndarray:
    """Hip joint positions relative to the pelvis, `[2, T, 3]`, for pelvis orientations `[T, 3, 3]`."""
    return np.stack([apply(pelvis_rotation, rig.offsets[hip]) for hip in HIP_JOINTS])


def max_pelvis_height(
    rig: Rig, pelvis_xz: np.ndarray, pelvis_rotation: np.ndarray, ankle: np.ndarray, fraction: float = REACH_FRACTION
) -> np.ndarray:
    """Highest pelvis `[2, T]` (m) from which each leg still reaches its ankle target.

    Args:
        pelvis_xz: `[T, 2]` horizontal pelvis position (x, z).
        pelvis_rotation: `[T, 3, 3]` pelvis orientation.
        ankle: `[2, T, 3]` ankle targets.
    """
    hips = hip_offsets(rig, pelvis_rotation)
    dx = pelvis_xz[None, :, 0] + hips[..., 0] - ankle[..., 0]
    dz = pelvis_xz[None, :, 1] + hips[..., 2] - ankle[..., 2]
    reach = fraction * rig.leg_m
    vertical = np.sqrt(np.maximum(reach**2 - dx**2 - dz**2, (0.2 * reach) ** 2))
    return ankle[..., 1] + vertical - hips[..., 1]


def assemble(rig: Rig, root_position: np.ndarray, angles: AngleTrack, legs: Optional[LegTargets] = None):
    """FK of an angle track, with the legs solved by IK when `legs` is given.

    Args:
        root_position: `[T, 3]` pelvis positions (m).
        angles: angle track (see `poses`); leg angles are ignored where `legs` is given.
    Returns:
        joints `[T, 22, 3]`, local rotations `[T, 22, 3, 3]`.
    """
    frames = root_position.shape[0]
    local = local_rotations_from_angles(angles, frames)
    if legs is not None:
        pelvis = local[:, sk.PELVIS]
        hips = root_position[None] + hip_offsets(rig, pelvis)
        for leg in range(2):
            thigh, shank, _ = two_bone_ik(
                hips[leg], legs.ankle[leg], rig.thigh_m, rig.shank_m, legs.knee_direction[leg], LEG
            )
            local[:, HIP_JOINTS[leg]] = local_from_global(pelvis, thigh)
            local[:, KNEE_JOINTS[leg]] = local_from_global(thigh, shank)
            local[:, ANKLE_JOINTS[leg]] = local_from_global(shank, legs.foot_rotation[leg])
    joints, _ = forward_kinematics(rig.offsets, root_position, local)
    return joints, local


def knee_directions(angles: AngleTrack, frames: int, foot_yaw: np.ndarray) -> np.ndarray:
    """Knee pointing directions `[2, T, 3]`: between the pelvis' facing and the feet's (toe-out) yaw."""
    facing = apply(pelvis_orientation(angles, frames), np.array([0.0, 0.0, 1.0]))
    facing[:, 1] = 0.0
    directions = []
    for leg in range(2):
        foot_forward = np.stack([np.sin(foot_yaw[leg]), np.zeros(frames), np.cos(foot_yaw[leg])], axis=-1)
        directions.append(facing + foot_forward)
    return np.stack(directions)
