"""The HumanML3D 22-joint skeleton (the SMPL body joints without the hands).

Conventions (HumanML3D): metres, **y up**, the body initially faces **+z** and its **left is +x**;
motions are sampled at 20 fps. Joint order, parents and kinematic chains are HumanML3D's.

The template rest skeleton is a T-pose of a 1.70 m adult with SMPL-like proportions, laid out so that
the procedural rig stays simple: legs hang straight down (-y), arms point straight out (±x), and the
foot bone (ankle -> "foot", i.e. the ball of the foot) points forward and 4 cm down, so with the foot
flat the "foot" joint is on the floor (y = 0, like HumanML3D's floor = lowest joint) and the ankle
4 cm above it.
"""

from __future__ import annotations

import numpy as np

FPS = 20.0
"""HumanML3D frame rate, frames per second."""

JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
"""Parent joint index of every joint (-1 for the root, the pelvis)."""

KINEMATIC_CHAINS = (
    [0, 2, 5, 8, 11],  # right leg
    [0, 1, 4, 7, 10],  # left leg
    [0, 3, 6, 9, 12, 15],  # spine to head
    [9, 14, 17, 19, 21],  # right arm
    [9, 13, 16, 18, 20],  # left arm
)

_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

PELVIS, LEFT_HIP, RIGHT_HIP, SPINE1 = 0, 1, 2, 3
LEFT_KNEE, RIGHT_KNEE, SPINE2 = 4, 5, 6
LEFT_ANKLE, RIGHT_ANKLE, SPINE3 = 7, 8, 9
LEFT_FOOT, RIGHT_FOOT, NECK = 10, 11, 12
LEFT_COLLAR, RIGHT_COLLAR, HEAD = 13, 14, 15
LEFT_SHOULDER, RIGHT_SHOULDER = 16, 17
LEFT_ELBOW, RIGHT_ELBOW = 18, 19
LEFT_WRIST, RIGHT_WRIST = 20, 21

FOOT_JOINTS = (LEFT_ANKLE, LEFT_FOOT, RIGHT_ANKLE, RIGHT_FOOT)
"""Joints of `foot_contact` columns: left ankle, left foot (ball), right ankle, right foot."""

TEMPLATE_STATURE_M = 1.70
"""Standing height (floor to top of the head) of the template skeleton."""

# Offset of every joint from its parent in the T-pose, metres, for a 1.70 m adult (SMPL-like).
_TEMPLATE_OFFSETS_M = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis (root; its height comes from the legs: 0.915 m standing)
        [0.065, -0.09, 0.0],  # left_hip
        [-0.065, -0.09, 0.0],  # right_hip
        [0.0, 0.12, -0.02],  # spine1
        [0.0, -0.385, 0.0],  # left_knee   (thigh)
        [0.0, -0.385, 0.0],  # right_knee
        [0.0, 0.135, 0.01],  # spine2
        [0.0, -0.40, 0.0],  # left_ankle  (shank)
        [0.0, -0.40, 0.0],  # right_ankle
        [0.0, 0.055, 0.01],  # spine3
        [0.0, -0.04, 0.125],  # left_foot   (ball of the foot)
        [0.0, -0.04, 0.125],  # right_foot
        [0.0, 0.225, -0.02],  # neck
        [0.075, 0.115, -0.01],  # left_collar
        [-0.075, 0.115, -0.01],  # right_collar
        [0.0, 0.10, 0.05],  # head (top of the head is ~0.15 m above this joint)
        [0.115, 0.04, -0.01],  # left_shoulder
        [-0.115, 0.04, -0.01],  # right_shoulder
        [0.27, 0.0, 0.0],  # left_elbow  (upper arm)
        [-0.27, 0.0, 0.0],  # right_elbow
        [0.255, 0.0, 0.0],  # left_wrist  (forearm)
        [-0.255, 0.0, 0.0],  # right_wrist
    ]
)
_TEMPLATE_OFFSETS_M.setflags(write=False)

TEMPLATE_PELVIS_HEIGHT_M = 0.915
"""Pelvis height of the template standing straight in the rest pose, feet flat (foot joints at y = 0)."""


def joint_index(name: str) -> int:
    """Index of the joint called `name` in `JOINT_NAMES`."""
    if name not in _INDEX:
        raise ValueError(f"name must be one of {JOINT_NAMES}, got {name!r}")
    return _INDEX[name]


def _check_stature(stature_m: float) -> float:
    stature_m = float(stature_m)
    if not np.isfinite(stature_m) or stature_m <= 0:
        raise ValueError(f"stature_m must be a positive number of metres, got {stature_m}")
    return stature_m


def rest_offsets(stature_m: float = TEMPLATE_STATURE_M) -> np.ndarray:
    """Parent-to-joint offsets `[22, 3]` (m) of the T-pose template scaled to a body of height `stature_m`."""
    return _TEMPLATE_OFFSETS_M * (_check_stature(stature_m) / TEMPLATE_STATURE_M)


def rest_joints(stature_m: float = TEMPLATE_STATURE_M) -> np.ndarray:
    """Joint positions `[22, 3]` (m) of the scaled T-pose standing on the floor, pelvis above the origin."""
    offsets = rest_offsets(stature_m)
    positions = np.zeros_like(offsets)
    positions[PELVIS] = [0.0, TEMPLATE_PELVIS_HEIGHT_M * stature_m / TEMPLATE_STATURE_M, 0.0]
    for joint in range(1, NUM_JOINTS):
        positions[joint] = positions[PARENTS[joint]] + offsets[joint]
    return positions


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length (m) of the bone from each non-root joint to its parent.

    Args:
        joints: `[..., 22, 3]` joint positions.
    Returns:
        `[..., 21]`, bone `k` ending at joint `k + 1`.
    """
    joints = np.asarray(joints)
    if joints.ndim < 2 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape [..., {NUM_JOINTS}, 3], got {joints.shape}")
    children = np.arange(1, NUM_JOINTS)
    parents = np.asarray(PARENTS[1:])
    return np.linalg.norm(joints[..., children, :] - joints[..., parents, :], axis=-1)


_TEMPLATE_TOTAL_BONE_LENGTH_M = float(np.linalg.norm(_TEMPLATE_OFFSETS_M, axis=-1).sum())


def estimate_stature_m(joints: np.ndarray) -> np.ndarray:
    """Standing height (m) implied by the skeleton's size: total bone length relative to the template's.

    Exact for the (uniformly scaled) procedural skeletons; an approximation for captured ones.

    Args:
        joints: `[..., 22, 3]` joint positions.
    Returns:
        `[...]` estimated stature in metres.
    """
    total = bone_lengths(joints).sum(axis=-1)
    return total * (TEMPLATE_STATURE_M / _TEMPLATE_TOTAL_BONE_LENGTH_M)
