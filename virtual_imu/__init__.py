"""Differentiable, batched virtual IMU simulator (pure torch; no Lightning or Hydra imports)."""

from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.kinematics import simulate

__all__ = ["STANDARD_GRAVITY", "simulate"]
