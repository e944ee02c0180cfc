"""Per-clip random body: stature, handedness, arm-swing style, and where the clip is placed in the world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion.procedural.rig import Rig
from motion.procedural.rotations import rot_y

STATURE_RANGE_M = (1.50, 1.95)
"""Standing heights of the generated people (m)."""

START_AREA_HALF_WIDTH_M = 2.0
"""Clips start anywhere in a 4 m × 4 m square around the origin."""


@dataclass(frozen=True)
class Body:
    """Who moves: the scaled rig plus style parameters shared by all activities.

    Attributes:
        rig: skeleton scaled to `stature_m`.
        dominant: "left" or "right", the arm that leads (swings more, reaches first, pushes).
        arm_swing: multiplier (0.6–1.4) of the activity's arm-swing amplitude.
        elbow_rest_rad: relaxed elbow flexion of this person (rad).
    """

    rig: Rig
    dominant: str
    arm_swing: float
    elbow_rest_rad: float

    @property
    def stature_m(self) -> float:
        return self.rig.stature_m

    @property
    def scale(self) -> float:
        return self.rig.scale

    @property
    def other(self) -> str:
        """The non-dominant side."""
        return "left" if self.dominant == "right" else "right"

    def side_gain(self, side: str, dominance: float) -> float:
        """1 + dominance for the dominant side, 1 for the other."""
        return 1.0 + dominance if side == self.dominant else 1.0


def sample_body(rng: np.random.Generator) -> Body:
    """A random adult: stature uniform in `STATURE_RANGE_M`, 85 % right-handed."""
    stature = rng.uniform(*STATURE_RANGE_M)
    return Body(
        rig=Rig(stature_m=float(stature)),
        dominant="right" if rng.uniform() < 0.85 else "left",
        arm_swing=float(rng.uniform(0.6, 1.4)),
        elbow_rest_rad=float(np.radians(rng.uniform(14.0, 28.0))),
    )


def place_in_world(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate path-frame joints `[T, 22, 3]` by a random heading about y and move them to a random start.

    Equivalent to composing the heading into the FK root: bone lengths and heights are unchanged.
    """
    heading = rng.uniform(0.0, 2.0 * np.pi)
    start = rng.uniform(-START_AREA_HALF_WIDTH_M, START_AREA_HALF_WIDTH_M, size=2)
    rotated = joints @ rot_y(heading).T
    rotated[..., 0] += start[0]
    rotated[..., 2] += start[1]
    return rotated
