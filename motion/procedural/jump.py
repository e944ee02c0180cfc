"""Repeated counter-movement jumps, in place or travelling forward, with true ballistic flights.

One cycle: landing on the balls of the feet -> heels down while crouching (counter-movement) ->
push-off with the heels rising -> take-off -> flight, in which the pelvis follows a parabola under
g = 9.81 m/s² exactly, the legs keep their take-off shape (slightly tucked mid-flight) and the feet
swing forward by the distance the pelvis travels over the ground phase, so each landing is exactly
one jump length after the previous one. The ground-phase pelvis height is two cubic Hermite segments
matching the landing and take-off velocities (C1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion.procedural.assembly import (
    LegTargets, Track, assemble, ankle_from_ball, ball_from_ankle, foot_rotation, max_pelvis_height,
)
from motion.procedural.body import Body
from motion.procedural.planted import knee_direction_forward, sample_stance
from motion.procedural.poses import arm_angles, pelvis_orientation
from motion.procedural.timing import bump, hermite, keyframes, smoothstep

GRAVITY = 9.81
MIN_DURATION_S = 1.0
deg = np.radians


@dataclass(frozen=True)
class JumpCycle:
    """Timing (s), heights (m) and speeds (m/s) of one jump cycle, starting at a landing."""

    takeoff_speed: float
    depth: float
    landing: float
    hold: float
    push: float
    toe_pitch: float
    lean: float
    speed: float

    @property
    def flight(self) -> float:
        return 2.0 * self.takeoff_speed / GRAVITY

    @property
    def ground(self) -> float:
        return self.landing + self.hold + self.push

    @property
    def period(self) -> float:
        return self.ground + self.flight

    def pelvis_height(self, tau: np.ndarray, top: float) -> np.ndarray:
        """Pelvis height at time `tau` after the landing; `top` is the take-off (= landing) height."""
        bottom = top - self.depth
        landing = hermite(top, -self.takeoff_speed, bottom, 0.0, np.clip(tau / self.landing, 0, 1), self.landing)
        rise = np.clip((tau - self.landing - self.hold) / self.push, 0, 1)
        push = hermite(bottom, 0.0, top, self.takeoff_speed, rise, self.push)
        airborne = tau - self.ground
        flight = top + self.takeoff_speed * airborne - 0.5 * GRAVITY * airborne**2
        ground = np.where(tau < self.landing, landing, np.where(tau < self.landing + self.hold, bottom, push))
        return np.where(tau >= self.ground, flight, ground)

    def foot_pitch(self, tau: np.ndarray) -> np.ndarray:
        """Foot pitch (toes up +): toes down at landing / take-off / in flight, flat in the crouch."""
        down = smoothstep(tau / (0.6 * self.landing))
        up = smoothstep((tau - self.landing - self.hold) / self.push)
        return np.where(tau >= self.ground, -self.toe_pitch, -self.toe_pitch * (1.0 - down + up))

    def trunk(self, pelvis_height: np.ndarray, top: float) -> dict[str, np.ndarray]:
        """Trunk lean growing with the crouch depth (squared, so C1 at take-off), zero in flight."""
        crouch = np.clip((top - pelvis_height) / self.depth, 0.0, None) ** 2
        angles = {"pelvis_pitch": deg(4) + 0.6 * self.lean * crouch, "spine_flex": 0.4 * self.lean * crouch}
        angles["neck_flex"] = deg(5) - 0.6 * (angles["pelvis_pitch"] + angles["spine_flex"])
        return angles


def _sample_cycle(body: Body, rng: np.random.Generator, forward: bool) -> JumpCycle:
    takeoff_speed = np.sqrt(2 * GRAVITY * rng.uniform(0.12, 0.32))  # jump height 12–32 cm
    depth = rng.uniform(0.16, 0.28) * body.scale
    # Segment lengths ≤ 3·depth/speed keep each Hermite segment monotone (no dip below the crouch).
    return JumpCycle(
        takeoff_speed=float(takeoff_speed), depth=float(depth),
        landing=float(rng.uniform(2.4, 3.0) * depth / takeoff_speed), hold=float(rng.uniform(0.04, 0.2)),
        push=float(rng.uniform(2.4, 3.0) * depth / takeoff_speed), toe_pitch=float(deg(rng.uniform(30, 45))),
        lean=float(deg(rng.uniform(20, 40))), speed=float(rng.uniform(0.4, 1.1) if forward else 0.0),
    )


def jump_track(body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """Jumping clip at times `t [T]` (s) in the path frame; `details` says in place or forward."""
    rig, s = body.rig, body.scale
    frames = len(t)
    forward = rng.uniform() < 0.5
    jump = _sample_cycle(body, rng, forward)
    first_landing = -rng.uniform(0, jump.period)
    travel_on_ground = jump.speed * jump.ground
    stance = sample_stance(body, rng)
    # Flat ankles when the middle of a ground phase is at z = 0: the pelvis is then 2 cm behind them.
    flat_ankles = stance.ankles + np.array([0.0, 0.0, 0.02 * s])
    flat_balls = ball_from_ankle(rig, flat_ankles, foot_rotation(stance.yaw, 0.0))

    # Highest take-off that keeps both planted feet within 98 % reach over a whole ground phase.
    tau_fine = np.linspace(0.0, jump.ground, 200)
    shape = jump.pelvis_height(tau_fine, 0.0)
    ankles_fine = ankle_from_ball(rig, flat_balls[:, None], foot_rotation(stance.yaw[:, None], jump.foot_pitch(tau_fine)[None]))
    pelvis_xz = np.stack([np.zeros_like(tau_fine), jump.speed * (tau_fine - jump.ground / 2)], -1)
    rotation = pelvis_orientation(jump.trunk(shape, 0.0), len(tau_fine))
    limits = max_pelvis_height(rig, pelvis_xz, rotation, ankles_fine, fraction=0.98).min(axis=0)
    top = float(np.min(limits - shape))

    cycle = np.floor((t - first_landing) / jump.period)
    tau = t - first_landing - cycle * jump.period
    mid_ground_z = jump.speed * (first_landing + cycle * jump.period + jump.ground / 2)
    balls = flat_balls[:, None, :] + np.stack([np.zeros(frames), np.zeros(frames), mid_ground_z], -1)[None]
    pelvis_y = jump.pelvis_height(tau, top)
    pelvis = np.stack([np.zeros(frames), pelvis_y, jump.speed * t], -1)
    angles = jump.trunk(pelvis_y, top)

    pitch = jump.foot_pitch(tau)
    rotations = foot_rotation(stance.yaw[:, None], pitch[None])
    in_flight = tau >= jump.ground
    ground_ankles = ankle_from_ball(rig, balls, rotations)
    # In flight the take-off leg shape rides with the pelvis, the feet tuck up and swing forward.
    airborne = np.clip(tau - jump.ground, 0.0, None)
    sigma = airborne / jump.flight
    takeoff_pelvis = np.stack([np.zeros(frames), np.full(frames, top), jump.speed * (t - airborne)], -1)
    tuck = rng.uniform(0.05, 0.12) * s * bump(sigma)
    swing = np.stack([np.zeros(frames), tuck, travel_on_ground * smoothstep(sigma)], -1)
    flight_ankles = ground_ankles + (pelvis - takeoff_pelvis + swing)[None]
    ankles = np.where(in_flight[None, :, None], flight_ankles, ground_ankles)

    # Arms: forward at landing, back in the crouch, swinging up through take-off.
    arm_times = [0.0, jump.landing + 0.5 * jump.hold, jump.ground, jump.ground + jump.flight / 2, jump.period]
    arm_flex = np.array([30, -20 * body.arm_swing, 70 * body.arm_swing, 50, 30], dtype=float)
    for side in ("left", "right"):
        flex = deg(keyframes(arm_times, arm_flex * body.side_gain(side, 0.1), tau))
        angles.update(arm_angles(side, flex=flex, abd=deg(12), rot=deg(15), elbow=deg(25) + 0.15 * np.hypot(flex, 0.2)))  # hypot: a smooth |flex|

    legs = LegTargets(ankle=ankles, foot_rotation=rotations,
                      knee_direction=np.stack([knee_direction_forward(angles, frames)] * 2))
    joints, local = assemble(rig, pelvis, angles, legs)
    flat = ~in_flight & (np.abs(pitch) < 1e-9)
    contact = np.stack([flat, ~in_flight, flat, ~in_flight], axis=-1)
    return Track(joints=joints, local_rotations=local, foot_contact=contact,
                 details=dict(forward=forward, height=jump.takeoff_speed**2 / (2 * GRAVITY), speed=jump.speed))
