"""Sensor placement: a sensor rigidly attached to a body segment of a skeleton.

A segment frame (orientation `[..., T, 4]`, segment-to-world) comes either from the skeleton's own
rotations or, for joint-position-only skeletons such as HumanML3D, from joint positions via
`limb_frame`. A `SensorMount` then places the sensor at a fixed offset in that frame with a fixed
mounting rotation (sensor-to-segment), so

    p_sensor = p_joint + R_segment · offset,      q_sensor = q_segment ⊗ q_mount.

Limb frame convention (docs/conventions.md): x along the limb from the proximal to the distal joint;
y along the flexion axis (upper × lower limb direction), which for an arm hanging at the side with the
elbow bent forward points to the body's right; z = x × y. When the limb is straight the flexion axis
is undefined, so a body reference axis (the person's right, from the shoulders) is blended in with a
small weight to keep the frame defined and continuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from virtual_imu import quaternion

_STRAIGHT_LIMB_BLEND = 0.1
"""Weight of the body reference axis in the flexion axis: dominates only when sin(elbow angle) < ~0.1."""


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def limb_frame(
    proximal: torch.Tensor, middle: torch.Tensor, distal: torch.Tensor, body_right: torch.Tensor
) -> torch.Tensor:
    """Segment-to-world quaternion `[..., 4]` of the middle→distal segment (e.g. the forearm).

    Args:
        proximal, middle, distal: joint positions `[..., 3]` (shoulder, elbow, wrist).
        body_right: `[..., 3]` a direction pointing to the person's right (e.g. left → right shoulder),
            used only to disambiguate a nearly straight limb.
    """
    along = _unit(distal - middle)
    upper = _unit(middle - proximal)
    flexion = torch.linalg.cross(upper, along, dim=-1)
    flexion = flexion + _STRAIGHT_LIMB_BLEND * _unit(body_right)
    y_axis = _unit(flexion - (flexion * along).sum(-1, keepdim=True) * along)
    z_axis = torch.linalg.cross(along, y_axis, dim=-1)
    return quaternion.from_matrix(torch.stack((along, y_axis, z_axis), dim=-1))


@dataclass(frozen=True)
class SensorMount:
    """A sensor fixed to a segment.

    Attributes:
        offset_m: sensor position in the segment frame, metres, relative to the segment's origin joint.
        mount_rotation: (w, x, y, z) sensor-to-segment rotation.
    """

    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mount_rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def attach(
        self,
        joint_positions: torch.Tensor,
        segment_orientations: torch.Tensor,
        offset_m: torch.Tensor | None = None,
        mount_rotation: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sensor positions `[..., T, 3]` and sensor-to-world orientations `[..., T, 4]`.

        Args:
            joint_positions: `[..., T, 3]` world position of the segment's origin joint (metres).
            segment_orientations: `[..., T, 4]` segment-to-world unit quaternions.
            offset_m, mount_rotation: per-clip `[..., 3]` / `[..., 4]` tensors replacing the mount's fixed
                values (placement randomisation, fitting); they broadcast over time.
        """
        offset = joint_positions.new_tensor(self.offset_m) if offset_m is None else offset_m.unsqueeze(-2)
        mount = segment_orientations.new_tensor(self.mount_rotation) if mount_rotation is None else mount_rotation.unsqueeze(-2)
        positions = joint_positions + quaternion.rotate(segment_orientations, offset.expand_as(joint_positions))
        orientations = quaternion.multiply(segment_orientations, mount.expand_as(segment_orientations))
        return positions, orientations


def _about_x(angle_rad: float) -> tuple[float, float, float, float]:
    return (math.cos(angle_rad / 2), math.sin(angle_rad / 2), 0.0, 0.0)


# Smartwatch axes (Android / Wear OS): x to 3 o'clock, y to 12 o'clock, z out of the screen. The watch
# sits on the dorsal side, 3 cm proximal of the wrist joint, its case ~2 cm above the joint centre. With
# the forearm in neutral rotation (thumb forward) the dorsal side faces laterally: −y of the forearm
# frame on the left arm, +y on the right. Worn the usual way, 3 o'clock points to the hand on the left
# wrist and to the elbow on the right wrist.
LEFT_WRIST_WATCH = SensorMount(offset_m=(-0.03, -0.02, 0.0), mount_rotation=_about_x(math.pi / 2))
"""Left-wrist watch: sensor x = forearm x (distal), y = forearm z, z = −forearm y (dorsal)."""

RIGHT_WRIST_WATCH = SensorMount(offset_m=(-0.03, 0.02, 0.0), mount_rotation=(0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)))
"""Right-wrist watch: sensor x = −forearm x (to the elbow), y = forearm z, z = forearm y (dorsal)."""
