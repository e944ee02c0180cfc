"""The one definition of the project's physical conventions (see docs/conventions.md).

- Units: metres, seconds, m/s² for acceleration / specific force, rad/s for angular rate.
- Quaternions are (w, x, y, z), Hamilton product, and an orientation quaternion is
  **sensor-to-world**: v_world = q ⊗ v_sensor ⊗ q*.
- World frames are right-handed with one "up" axis, "y" (HumanML3D, BVH) or "z" (AMASS, robotics).
- Gravity points down: g_world = −gravity · up. An accelerometer measures specific force
  f = R(q)ᵀ (a_world − g_world), so a resting sensor aligned with the world reads +gravity on the up axis.
"""

from __future__ import annotations

import torch

STANDARD_GRAVITY = 9.80665
"""Standard gravity in m/s² (CGPM 1901)."""

UP_AXES = ("y", "z")


def up_vector(up_axis: str, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Unit vector `[3]` of the world's up axis."""
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    vector = torch.zeros(3, dtype=dtype, device=device)
    vector[UP_AXES.index(up_axis) + 1] = 1.0
    return vector
