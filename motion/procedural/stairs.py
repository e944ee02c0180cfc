"""A straight staircase in the path frame (walking along +z): one tread per footstep.

Tread n (n = ..., -1, 0, 1, ...) spans z in [z_riser(n), z_riser(n) + going) at height
`direction * rise * n`, so footstep n of a stair gait lands on tread n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RISE_RANGE_M = (0.15, 0.18)
GOING_RANGE_M = (0.26, 0.31)
BALL_TO_NOSING_M = 0.035
"""Gap between the ball-of-foot joint and the front edge of its tread (where the next riser starts)."""


@dataclass(frozen=True)
class Staircase:
    """Attributes: rise_m (tread height step), going_m (tread depth), direction +1 up / -1 down,
    first_riser_z (z where tread 0 starts)."""

    rise_m: float
    going_m: float
    direction: int
    first_riser_z: float

    def tread_height(self, index) -> np.ndarray:
        """Height (m) of tread `index`."""
        return self.direction * self.rise_m * np.asarray(index, dtype=np.float64)

    def floor_height(self, z) -> np.ndarray:
        """Height of the floor under points at path coordinate `z [...]` (m)."""
        index = np.floor((np.asarray(z, dtype=np.float64) - self.first_riser_z) / self.going_m)
        return self.tread_height(index)

    def ramp_height(self, z) -> np.ndarray:
        """A smooth (linear) version of `floor_height`, equal to it at the middle of every tread."""
        return self.tread_height((np.asarray(z, dtype=np.float64) - self.first_riser_z) / self.going_m - 0.5)


def staircase_for_steps(rise_m: float, going_m: float, direction: int, step0_ankle_z: float, ball_ahead_of_ankle_m: float) -> Staircase:
    """The staircase whose tread 0 holds footstep 0 (flat ankle at `step0_ankle_z`) with its ball
    `BALL_TO_NOSING_M` behind the tread's front edge."""
    front_edge = step0_ankle_z + ball_ahead_of_ankle_m + BALL_TO_NOSING_M
    return Staircase(rise_m=rise_m, going_m=going_m, direction=direction, first_riser_z=front_edge - going_m)
