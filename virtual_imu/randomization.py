"""Placement randomisation: how a worn sensor differs from clip to clip (seeded, batched).

People wear a watch higher or lower on the forearm, on either wrist, sometimes upside down, and a phone
or an unknown device can sit in any orientation. `PlacementRandomization` draws these per clip; the
pipeline applies them on the device together with the mount rotation and `MountJitter` (roll about the
forearm and tilt), so every variation is one composed rotation of the sensor plus a per-clip offset:

    new-sensor-to-preset = mount_rotation ⊗ jitter ⊗ upside_down ⊗ random_rotation.

Global yaw turns the whole motion about the world's up axis. Body-frame readings (specific force and
angular rate in the sensor frame) do not change under it — gravity is along up — so it matters only for
world-frame outputs; the test suite checks that invariance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from virtual_imu import quaternion
from virtual_imu.conventions import up_vector

UPSIDE_DOWN = (0.0, 0.0, 0.0, 1.0)
"""A watch worn upside down: 180° about its screen axis z (3 o'clock ↔ 9 o'clock, 12 ↔ 6)."""

MIRRORED_PLACEMENT = {"left_wrist": "right_wrist", "right_wrist": "left_wrist"}
"""The preset worn on the other side of the body."""


@dataclass(frozen=True)
class PlacementRandomization:
    """Per-clip placement variation.

    Attributes:
        offset_along_m: the sensor slides along its segment (forearm) by U(−offset_along_m, +offset_along_m) m.
        other_wrist_probability: probability that a clip is simulated on the mirrored preset (left ↔ right).
        upside_down_probability: probability that the watch is worn rotated 180° about its screen axis.
        global_yaw: turn each clip's motion by a uniform heading about the up axis.
        random_rotation: rotation-invariant augmentation: a uniform random rotation (SO(3)) of the sensor
            per clip, applied to acc and gyro together.
    """

    offset_along_m: float = 0.0
    other_wrist_probability: float = 0.0
    upside_down_probability: float = 0.0
    global_yaw: bool = False
    random_rotation: bool = False

    def __post_init__(self):
        if not 0 <= self.offset_along_m < math.inf:  # NaN fails too
            raise ValueError(f"offset_along_m must be a non-negative distance in metres, got {self.offset_along_m!r}")
        for name in ("other_wrist_probability", "upside_down_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}")

    def draw(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One clip's draws (same keys whatever the settings, so a DataLoader collates them).

        `placement_offset_along_m` `[]` (m), `placement_other_wrist` and `placement_upside_down` `[]` bool,
        `placement_yaw_rad` `[]`, `placement_rotation` `[4]` (wxyz; identity unless `random_rotation`).
        """
        uniform = torch.rand(4, generator=generator, dtype=torch.float64)
        gaussian = torch.randn(4, generator=generator, dtype=torch.float64)
        # A normalised 4-D Gaussian is uniform on S³, i.e. a uniformly random rotation (Shoemake 1992).
        rotation = gaussian / gaussian.norm() if self.random_rotation else torch.tensor([1.0, 0.0, 0.0, 0.0])
        return {
            "placement_offset_along_m": ((2 * uniform[0] - 1) * self.offset_along_m).float(),
            "placement_other_wrist": uniform[1] < self.other_wrist_probability,
            "placement_upside_down": uniform[2] < self.upside_down_probability,
            "placement_yaw_rad": (uniform[3] * 2 * math.pi if self.global_yaw else torch.zeros((), dtype=torch.float64)).float(),
            "placement_rotation": rotation.float(),
        }

    @staticmethod
    def extra_rotation(upside_down: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
        """New-to-preset rotations `[..., 4]` of the upside-down flag `[...]` and the random rotation `[..., 4]`."""
        flip = rotation.new_tensor(UPSIDE_DOWN)
        identity = rotation.new_tensor((1.0, 0.0, 0.0, 0.0))
        worn = torch.where(upside_down[..., None], flip, identity)
        return quaternion.multiply(worn, rotation)


def yaw_rotation(yaw_rad: torch.Tensor, up_axis: str, *, dtype: torch.dtype) -> torch.Tensor:
    """Quaternions `[..., 4]` turning by `yaw_rad` `[...]` about the world's up axis."""
    up = up_vector(up_axis, dtype=dtype, device=yaw_rad.device)
    return quaternion.from_axis_angle(up.expand(*yaw_rad.shape, 3), yaw_rad.to(dtype))


def yaw_motion(joints: torch.Tensor, yaw_rad: torch.Tensor, up_axis: str) -> torch.Tensor:
    """Joints `[..., T, J, 3]` turned by `yaw_rad` `[...]` about the world's up axis through the origin."""
    turn = yaw_rotation(yaw_rad, up_axis, dtype=joints.dtype)
    return quaternion.rotate(turn[..., None, None, :].expand(*joints.shape[:-1], 4), joints)
