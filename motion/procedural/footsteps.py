"""Foot trajectories of a cyclic gait: planted feet that roll heel -> flat -> toe, C1 swing in between.

Footsteps are numbered n = ..., -1, 0, 1, ...; even steps are the left foot's, odd the right's. Step n
strikes at `first_strike_s + n * step_period_s`; `FootPlan.flat_ankle(n)` gives where its ankle sits
with the foot flat. Within a stance (s = stance time fraction):

- heel landing: the foot lands toes-up and rotates about the ankle (ankle in contact) until flat;
  toe landing (stair descent): it lands toes-down and rotates about the ball (ball in contact).
- flat phase: ankle and ball both in contact, both fixed.
- push-off: the heel rises, the foot rotating about the fixed ball (ball in contact) until toe-off.

The swing is a cubic Hermite from the toe-off state (position, velocity, pitch rate) to the landing
state of the same foot two steps later (at rest), plus a sin² lift, so ankle and ball velocities are
continuous through toe-off and landing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from motion.procedural.assembly import ankle_from_ball, ball_from_ankle, foot_rotation
from motion.procedural.rig import Rig
from motion.procedural.timing import bump, hermite, smoothstep


@dataclass(frozen=True)
class StepCycle:
    """Timing and foot-roll style of a gait.

    Attributes:
        step_period_s: time between consecutive foot strikes (half a stride).
        duty: stance fraction of the stride (> 0.5 walking: double support; < 0.5 running: flight).
        first_strike_s: strike time of step 0 (left foot).
        loading_fraction: stance fraction from strike to foot flat.
        heel_off_fraction: stance fraction at which the heel rises (> loading_fraction).
        landing: "heel" or "toe".
        landing_pitch_rad: heel landing: toes-up angle at strike; toe landing: toes-down angle (> 0).
        push_off_pitch_rad: toes-down angle at toe-off (> 0).
        lift_m: extra ankle lift at mid-swing.
        lift_timing: exponent warping the lift peak earlier (< 1) or later (> 1) in the swing.
        vertical_lead: in [-1, 1]; > 0 the foot rises before it moves forward (stair ascent),
            < 0 it moves forward before it descends (stair descent).
    """

    step_period_s: float
    duty: float
    first_strike_s: float
    loading_fraction: float
    heel_off_fraction: float
    landing: str
    landing_pitch_rad: float
    push_off_pitch_rad: float
    lift_m: float
    lift_timing: float = 1.0
    vertical_lead: float = 0.0

    @property
    def stride_s(self) -> float:
        return 2.0 * self.step_period_s

    @property
    def stance_s(self) -> float:
        return self.duty * self.stride_s

    @property
    def swing_s(self) -> float:
        return self.stride_s - self.stance_s


@dataclass(frozen=True)
class FootPlan:
    """Where footsteps go: `flat_ankle(n [N]) -> [N, 3]` and `yaw(n [N]) -> [N]` (toe-out, left +)."""

    flat_ankle: Callable[[np.ndarray], np.ndarray]
    yaw: Callable[[np.ndarray], np.ndarray]


@dataclass
class FootTrajectory:
    """One foot over the clip: ankle `[T, 3]`, orientation `[T, 3, 3]`, yaw `[T]`, contacts `[T, 2]` (ankle, ball)."""

    ankle: np.ndarray
    rotation: np.ndarray
    yaw: np.ndarray
    contact: np.ndarray


def _stance_pitch(cycle: StepCycle, s: np.ndarray) -> np.ndarray:
    """Foot pitch (toes up +) over the stance fraction s in [0, 1)."""
    a, b = cycle.loading_fraction, cycle.heel_off_fraction
    landing = cycle.landing_pitch_rad * (1.0 if cycle.landing == "heel" else -1.0)
    loading = landing * (1.0 - smoothstep(s / a))
    push = -cycle.push_off_pitch_rad * np.clip((s - b) / (1.0 - b), 0.0, 1.0) ** 2
    return np.where(s < a, loading, np.where(s < b, 0.0, push))


def _landing_state(rig: Rig, cycle: StepCycle, flat_ankle: np.ndarray, yaw: np.ndarray):
    """Ankle position `[N, 3]` and pitch `[N]` at the instant of a strike."""
    if cycle.landing == "heel":
        return flat_ankle, np.full(len(yaw), cycle.landing_pitch_rad)
    ball = ball_from_ankle(rig, flat_ankle, foot_rotation(yaw, 0.0))
    pitch = np.full(len(yaw), -cycle.landing_pitch_rad)
    return ankle_from_ball(rig, ball, foot_rotation(yaw, pitch)), pitch


def foot_trajectory(rig: Rig, cycle: StepCycle, plan: FootPlan, foot: int, t: np.ndarray) -> FootTrajectory:
    """Trajectory of foot 0 (left) or 1 (right) at times `t [T]` (s)."""
    stride = cycle.stride_s
    relative = t - cycle.first_strike_s - foot * cycle.step_period_s
    cycle_index = np.floor(relative / stride)
    step = (2 * cycle_index + foot).astype(np.int64)
    tau = relative - cycle_index * stride
    in_stance = tau < cycle.stance_s

    # Stance of step n.
    s = np.clip(tau / cycle.stance_s, 0.0, 1.0)
    flat = plan.flat_ankle(step)
    yaw_now = plan.yaw(step)
    ball = ball_from_ankle(rig, flat, foot_rotation(yaw_now, 0.0))
    pitch = _stance_pitch(cycle, s)
    rolling = ankle_from_ball(rig, ball, foot_rotation(yaw_now, pitch))
    about_ball = (s >= cycle.heel_off_fraction) | ((s < cycle.loading_fraction) & (cycle.landing == "toe"))
    stance_ankle = np.where(about_ball[:, None], rolling, flat)

    # Swing from toe-off of step n to the strike of step n + 2.
    a_off = -cycle.push_off_pitch_rad
    rate_off = -2.0 * cycle.push_off_pitch_rad / ((1.0 - cycle.heel_off_fraction) * cycle.stance_s)
    off_ankle = ankle_from_ball(rig, ball, foot_rotation(yaw_now, a_off))
    epsilon = 1e-4
    off_velocity = (off_ankle - ankle_from_ball(rig, ball, foot_rotation(yaw_now, a_off - epsilon))) / epsilon * rate_off
    next_flat = plan.flat_ankle(step + 2)
    next_yaw = plan.yaw(step + 2)
    land_ankle, land_pitch = _landing_state(rig, cycle, next_flat, next_yaw)
    sigma = np.clip((tau - cycle.stance_s) / cycle.swing_s, 0.0, 1.0)
    zeros = np.zeros_like(off_ankle)
    # Time warps with unit slope at toe-off (velocity stays continuous) that advance one coordinate
    # and delay the other; the end slope does not matter as the landing velocity is zero.
    lead = cycle.vertical_lead * sigma**2 * (1.0 - sigma)
    warp = np.stack([sigma - lead, sigma + lead, sigma - lead], axis=-1)  # x, y, z
    swing_ankle = hermite(off_ankle, off_velocity, land_ankle, zeros, warp, cycle.swing_s)
    swing_ankle[:, 1] += cycle.lift_m * bump(sigma**cycle.lift_timing)
    swing_pitch = hermite(a_off, rate_off, land_pitch, 0.0, sigma, cycle.swing_s)
    swing_yaw = yaw_now + (next_yaw - yaw_now) * smoothstep(sigma)

    ankle = np.where(in_stance[:, None], stance_ankle, swing_ankle)
    foot_pitch = np.where(in_stance, pitch, swing_pitch)
    yaw = np.where(in_stance, yaw_now, swing_yaw)
    ankle_contact = in_stance & ~about_ball
    ball_contact = in_stance & ((s >= cycle.loading_fraction) | (cycle.landing == "toe"))
    return FootTrajectory(
        ankle=ankle,
        rotation=foot_rotation(yaw, foot_pitch),
        yaw=yaw,
        contact=np.stack([ankle_contact, ball_contact], axis=-1),
    )
