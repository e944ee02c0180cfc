"""The procedural rig: forward kinematics on the scaled rest skeleton and analytic two-bone IK.

Every generated frame is FK of joint rotations on the scaled template (`motion.skeleton`), so bone
lengths are constant by construction. Rotations follow SMPL: the rotation stored at joint j turns the
bones to j's children, `global[j] = global[parent] @ local[j]` and
`position[child] = position[j] + global[j] @ offset[child]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from motion import skeleton as sk
from motion.procedural.rotations import frame_from_axes, normalize

_CHILDREN = tuple(j for j in range(1, sk.NUM_JOINTS))


@dataclass(frozen=True)
class Rig:
    """The template skeleton scaled to a body of height `stature_m` (m)."""

    stature_m: float

    @property
    def scale(self) -> float:
        """Body size relative to the 1.70 m template."""
        return self.stature_m / sk.TEMPLATE_STATURE_M

    @cached_property
    def offsets(self) -> np.ndarray:
        """Parent-to-joint offsets `[22, 3]` (m) in the T-pose."""
        return sk.rest_offsets(self.stature_m)

    def length(self, joint: int) -> float:
        """Length (m) of the bone from `joint`'s parent to `joint`."""
        return float(np.linalg.norm(self.offsets[joint]))

    @property
    def thigh_m(self) -> float:
        return self.length(sk.LEFT_KNEE)

    @property
    def shank_m(self) -> float:
        return self.length(sk.LEFT_ANKLE)

    @property
    def leg_m(self) -> float:
        """Hip-to-ankle length with the knee straight."""
        return self.thigh_m + self.shank_m

    @property
    def ankle_height_m(self) -> float:
        """Ankle height above the floor with the foot flat (the ball of the foot on the floor)."""
        return float(-self.offsets[sk.LEFT_FOOT, 1])

    @property
    def standing_pelvis_height_m(self) -> float:
        """Pelvis height standing straight with the feet flat."""
        return sk.TEMPLATE_PELVIS_HEIGHT_M * self.scale


def forward_kinematics(
    offsets: np.ndarray, root_position: np.ndarray, local_rotations: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and global rotations from local joint rotations.

    Args:
        offsets: `[22, 3]` rest offsets (m).
        root_position: `[T, 3]` pelvis positions (m).
        local_rotations: `[T, 22, 3, 3]`; entry 0 is the pelvis' global orientation.
    Returns:
        positions `[T, 22, 3]` (m), global rotations `[T, 22, 3, 3]`.
    """
    frames = local_rotations.shape[0]
    positions = np.empty((frames, sk.NUM_JOINTS, 3))
    global_rotations = np.empty_like(local_rotations)
    positions[:, 0] = root_position
    global_rotations[:, 0] = local_rotations[:, 0]
    for joint in _CHILDREN:
        parent = sk.PARENTS[joint]
        positions[:, joint] = positions[:, parent] + global_rotations[:, parent] @ offsets[joint]
        global_rotations[:, joint] = global_rotations[:, parent] @ local_rotations[:, joint]
    return positions, global_rotations


@dataclass(frozen=True)
class LimbGeometry:
    """A straight two-bone limb in the rest pose: which way its bones point and which way it bends.

    `rest_direction` is the common direction of both bones in the T-pose; `rest_hinge` the axis (in
    the same T-pose frame) about which a positive flexion of the middle joint turns the lower bone.
    """

    rest_direction: tuple[float, float, float]
    rest_hinge: tuple[float, float, float]

    @cached_property
    def rest_frame(self) -> np.ndarray:
        return frame_from_axes(np.asarray(self.rest_direction, float), np.asarray(self.rest_hinge, float))


LEG = LimbGeometry(rest_direction=(0.0, -1.0, 0.0), rest_hinge=(1.0, 0.0, 0.0))
LEFT_ARM = LimbGeometry(rest_direction=(1.0, 0.0, 0.0), rest_hinge=(0.0, -1.0, 0.0))
RIGHT_ARM = LimbGeometry(rest_direction=(-1.0, 0.0, 0.0), rest_hinge=(0.0, 1.0, 0.0))


def two_bone_ik(
    base: np.ndarray,
    target: np.ndarray,
    upper_m: float,
    lower_m: float,
    bend_towards: np.ndarray,
    limb: LimbGeometry,
    max_extension: float = 0.9995,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global rotations of a hinge limb (hip-knee-ankle, shoulder-elbow-wrist) reaching for a target.

    The middle joint is placed in the plane of base, target and `bend_towards` (e.g. the knee goes
    forward), on the side `bend_towards` points to. If the target is out of reach the limb stretches
    to `max_extension` of its length along the base→target line (the caller is expected to keep
    targets reachable; that is where foot-locking is decided).

    Args:
        base, target: `[T, 3]` positions (m) of the limb's root joint and the wanted end-joint position.
        upper_m, lower_m: bone lengths (m).
        bend_towards: `[T, 3]` or `[3]` direction the middle joint should be displaced to.
        limb: rest geometry, to turn directions into rotations of the T-pose bones.
    Returns:
        upper and lower bone global rotations `[T, 3, 3]`, and the middle joint position `[T, 3]`.
    """
    reach = target - base
    distance = np.linalg.norm(reach, axis=-1)
    along = reach / np.maximum(distance, 1e-9)[:, None]
    distance = np.clip(distance, abs(upper_m - lower_m) + 1e-4, (upper_m + lower_m) * max_extension)
    bend = np.broadcast_to(np.asarray(bend_towards, dtype=np.float64), reach.shape)
    bend = bend - np.sum(bend * along, axis=-1, keepdims=True) * along
    bend = normalize(bend)
    # Law of cosines: distance from base to the foot of the middle joint's perpendicular.
    foot = (upper_m**2 - lower_m**2 + distance**2) / (2.0 * distance)
    height = np.sqrt(np.maximum(upper_m**2 - foot**2, 0.0))
    middle = base + foot[:, None] * along + height[:, None] * bend
    end = base + distance[:, None] * along
    hinge = np.cross(bend, along)
    rest_inverse = limb.rest_frame.T
    upper = frame_from_axes(middle - base, hinge) @ rest_inverse
    lower = frame_from_axes(end - middle, hinge) @ rest_inverse
    return upper, lower, middle


def local_from_global(parent_global: np.ndarray, child_global: np.ndarray) -> np.ndarray:
    """Local rotation `[T, 3, 3]` that gives `child_global` under `parent_global`."""
    return np.swapaxes(parent_global, -1, -2) @ child_global
