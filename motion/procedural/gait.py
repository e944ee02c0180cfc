"""Walking, running and stair climbing: planted feet by construction, pelvis height from leg reach.

The pelvis moves at constant speed along +z (path frame) with a small lateral sway. Feet follow
`footsteps` (fixed while in contact); the legs are solved by IK. The pelvis height is a nominal
profile (level for walking, ballistic flight + stance compression for running), lowered wherever a
leg could not reach its foot by a smooth amount that is never less than needed. That produces the
natural lowering in double support and guarantees the planted feet are reachable (so they never slide).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion import skeleton as sk
from motion.procedural.assembly import (
    REACH_FRACTION, LegTargets, Track, assemble, foot_rotation, knee_directions, max_pelvis_height,
)
from motion.procedural.body import Body
from motion.procedural.footsteps import FootPlan, StepCycle, foot_trajectory
from motion.procedural.poses import arm_angles, pelvis_orientation
from motion.procedural.stairs import GOING_RANGE_M, RISE_RANGE_M, Staircase, staircase_for_steps
from motion.procedural.rotations import apply
from motion.procedural.timing import hermite, smooth_upper_envelope

GRAVITY = 9.81
WALK_SPEED_RANGE_MPS = (0.8, 1.6)
RUN_SPEED_RANGE_MPS = (2.2, 4.0)
GAIT_KINDS = ("walking", "running", "stairs_up", "stairs_down")
MIN_DURATION_S = 1.0  # two steps


@dataclass(frozen=True)
class GaitStyle:
    """Sampled parameters of one gait clip (speeds m/s, lengths m, angles rad)."""

    kind: str
    speed: float
    cycle: StepCycle
    step_width: float
    toe_out: float
    ahead_at_strike: float  # ankle ahead of the pelvis (m) at the strike
    nominal_height: float  # pelvis height the gait aims for between reach limits
    sway: float
    pelvis_yaw: float
    pelvis_roll: float
    pelvis_pitch: float
    trunk_lean: float
    thorax_counter: float
    arm_base: float
    arm_amplitude: float
    arm_abduction: float
    arm_rotation: float
    elbow_base: float
    elbow_amplitude: float
    arm_lag: float
    stair_dimensions: tuple[float, float] | None = None  # (rise, going) m


def _double_support_geometry(rig, travel_m: float, push_off_pitch_rad: float) -> tuple[float, float]:
    """Best ankle-ahead distance at the strike for a stance during which the pelvis travels `travel_m`.

    The pelvis is lowest when a leg is stretched furthest: at the strike (ankle ahead, foot flat) or at
    toe-off (ball behind, heel raised). The strike distance that makes both reach limits equal maximises
    the lower of the two. Returns (ahead distance m, reach-limited hip height above the floor m).
    """
    reach = REACH_FRACTION * rig.leg_m
    ball = rig.offsets[sk.LEFT_FOOT]
    ankle_from_ball_at_toe_off = -apply(foot_rotation(0.0, -push_off_pitch_rad), ball)
    ahead = np.linspace(0.0, travel_m, 121)
    at_strike = rig.ankle_height_m + np.sqrt(np.maximum(reach**2 - ahead**2, 0.0))
    behind = ahead - travel_m + ball[2] + ankle_from_ball_at_toe_off[2]
    at_toe_off = ankle_from_ball_at_toe_off[1] + np.sqrt(np.maximum(reach**2 - behind**2, 0.0))
    lower = np.minimum(at_strike, at_toe_off)
    best = int(np.argmax(lower))
    return float(ahead[best]), float(lower[best])


def _sample_style(kind: str, body: Body, rng: np.random.Generator) -> GaitStyle:
    s, rig = body.scale, body.rig
    deg = np.radians
    running = kind == "running"
    stairs = kind.startswith("stairs")
    stair_dimensions = None
    if kind == "walking":
        speed = rng.uniform(*WALK_SPEED_RANGE_MPS)
        step_length = body.stature_m * rng.uniform(0.36, 0.42) * (speed / 1.2) ** 0.45
        step_period = float(np.clip(step_length / speed, 0.42, 0.75))
        duty = 0.63 - 0.03 * (speed - 0.8) / 0.8 + rng.uniform(-0.01, 0.01)
        cycle = dict(loading_fraction=rng.uniform(0.12, 0.16), heel_off_fraction=rng.uniform(0.45, 0.55), landing="heel",
                     landing_pitch_rad=deg(rng.uniform(12, 20)), push_off_pitch_rad=deg(rng.uniform(40, 55)),
                     lift_m=rng.uniform(0.06, 0.09) * s, lift_timing=0.6)
        max_drop = rng.uniform(0.06, 0.085) * s
    elif running:
        speed = rng.uniform(*RUN_SPEED_RANGE_MPS)
        step_period = 1.0 / (rng.uniform(2.55, 3.0) + 0.1 * (speed - 3.0))
        stance = rng.uniform(0.19, 0.25) * (3.0 / speed) ** 0.35
        duty = stance / (2.0 * step_period)
        heel = rng.uniform() < 0.7
        cycle = dict(loading_fraction=rng.uniform(0.15, 0.25), heel_off_fraction=rng.uniform(0.4, 0.5),
                     landing="heel" if heel else "toe", landing_pitch_rad=deg(rng.uniform(5, 12)),
                     push_off_pitch_rad=deg(rng.uniform(40, 55)), lift_m=rng.uniform(0.12, 0.2) * s, lift_timing=0.6)
        max_drop = rng.uniform(0.09, 0.12) * s
    else:
        stair_dimensions = (rng.uniform(*RISE_RANGE_M), rng.uniform(*GOING_RANGE_M))
        step_period = rng.uniform(0.55, 0.75) if kind == "stairs_up" else rng.uniform(0.5, 0.7)
        speed = stair_dimensions[1] / step_period
        duty = rng.uniform(0.62, 0.68)
        if kind == "stairs_up":
            cycle = dict(loading_fraction=rng.uniform(0.08, 0.12), heel_off_fraction=rng.uniform(0.55, 0.62), landing="heel",
                         landing_pitch_rad=deg(rng.uniform(3, 8)), push_off_pitch_rad=deg(rng.uniform(20, 30)),
                         lift_m=stair_dimensions[0] * rng.uniform(0.8, 1.0) + 0.04 * s, lift_timing=0.6,
                         vertical_lead=1.0)
        else:
            cycle = dict(loading_fraction=rng.uniform(0.18, 0.25), heel_off_fraction=rng.uniform(0.68, 0.75), landing="toe",
                         landing_pitch_rad=deg(rng.uniform(15, 25)), push_off_pitch_rad=deg(rng.uniform(10, 18)),
                         lift_m=rng.uniform(0.04, 0.06) * s, lift_timing=0.6, vertical_lead=-1.0)
        max_drop = 0.12 * s
    # Shorten the stance until the legs can span it without the pelvis dropping more than max_drop.
    standing_hip = rig.standing_pelvis_height_m + rig.offsets[sk.LEFT_HIP, 1]
    for _ in range(20):
        ahead, hip_height = _double_support_geometry(rig, speed * duty * 2 * step_period, cycle["push_off_pitch_rad"])
        if standing_hip - hip_height <= max_drop or duty <= (0.2 if running else 0.58):
            break
        duty -= 0.01
    swing_scale = body.arm_swing * (0.35 if stairs else 1.0)
    return GaitStyle(
        kind=kind,
        speed=float(speed),
        cycle=StepCycle(step_period_s=float(step_period), duty=float(duty), first_strike_s=-rng.uniform(0, 2 * step_period), **cycle),
        step_width=rng.uniform(0.07, 0.13) * s,
        toe_out=deg(rng.uniform(3, 10)),
        ahead_at_strike=ahead,
        nominal_height=rig.standing_pelvis_height_m * (rng.uniform(0.93, 0.96) if running else rng.uniform(0.975, 0.99)),
        sway=rng.uniform(0.012, 0.025) * s * (0.5 if running else 1.0),
        pelvis_yaw=deg(rng.uniform(3, 7)) * (1.3 if running else 1.0),
        pelvis_roll=deg(rng.uniform(2, 4)),
        pelvis_pitch=deg(rng.uniform(3, 8) + (6 if running else 0)),
        trunk_lean=deg(rng.uniform(0, 4) + (5 if running else 0) + (6 if kind == "stairs_up" else 0)),
        thorax_counter=deg(rng.uniform(2, 5)),
        arm_base=deg(rng.uniform(0, 6) + (8 if running else 0)),
        arm_amplitude=deg((rng.uniform(22, 32) if running else rng.uniform(9, 14) * speed / 1.2) * swing_scale),
        arm_abduction=deg(rng.uniform(6, 12)),
        arm_rotation=deg(rng.uniform(25, 40) if running else rng.uniform(8, 20)),
        elbow_base=deg(rng.uniform(75, 95)) if running else body.elbow_rest_rad,
        elbow_amplitude=deg(rng.uniform(10, 20)),
        arm_lag=rng.uniform(0.0, 0.06),
        stair_dimensions=stair_dimensions,
    )


def _foot_plan(style: GaitStyle, body: Body) -> tuple[FootPlan, Staircase | None]:
    cycle = style.cycle
    step_length = style.speed * cycle.step_period_s
    z0 = style.speed * cycle.first_strike_s + style.ahead_at_strike
    staircase = None
    if style.stair_dimensions is not None:
        rise, going = style.stair_dimensions
        ball_ahead = float(body.rig.offsets[sk.LEFT_FOOT, 2])
        staircase = staircase_for_steps(rise, going, 1 if style.kind == "stairs_up" else -1, z0, ball_ahead)

    def flat_ankle(step: np.ndarray) -> np.ndarray:
        side = np.where(step % 2 == 0, 1.0, -1.0)  # even steps: left foot, at +x
        height = body.rig.ankle_height_m + (staircase.tread_height(step) if staircase else 0.0)
        return np.stack([side * style.step_width / 2, np.broadcast_to(height, step.shape), z0 + step * step_length], axis=-1)

    def yaw(step: np.ndarray) -> np.ndarray:
        return np.where(step % 2 == 0, 1.0, -1.0) * style.toe_out

    return FootPlan(flat_ankle=flat_ankle, yaw=yaw), staircase


def _running_profile(style: GaitStyle, body: Body, t: np.ndarray) -> np.ndarray:
    """Nominal running pelvis height: ballistic flight (g) joined C1 to a stance compression."""
    cycle = style.cycle
    stance = cycle.stance_s
    flight = max(cycle.step_period_s - stance, 1e-3)
    up_speed = GRAVITY * flight / 2.0
    depth = max(0.03 * body.scale, up_speed * stance / 2.0 / 2.5)
    top = style.nominal_height
    touchdown = top - GRAVITY * flight**2 / 8.0
    low = touchdown - depth
    tau = np.mod(t - cycle.first_strike_s, cycle.step_period_s)
    half = stance / 2.0
    down = hermite(touchdown, -up_speed, low, 0.0, np.clip(tau / half, 0, 1), half)
    up = hermite(low, 0.0, touchdown, up_speed, np.clip((tau - half) / half, 0, 1), half)
    airborne = tau - stance
    ballistic = touchdown + up_speed * airborne - 0.5 * GRAVITY * airborne**2
    return np.where(tau < half, down, np.where(tau < stance, up, ballistic))


def _upper_body(style: GaitStyle, body: Body, t: np.ndarray) -> dict[str, np.ndarray]:
    cycle = style.cycle
    phase = 2 * np.pi * (t - cycle.first_strike_s) / cycle.stride_s  # 0 at a left strike
    mid_left = phase - np.pi * cycle.duty  # 0 at the left foot's mid-stance
    cos = np.cos(phase)
    angles = {
        "pelvis_yaw": -style.pelvis_yaw * cos,  # the left hip leads when the left foot strikes
        "pelvis_roll": -style.pelvis_roll * np.cos(mid_left),  # the swing side drops
        "pelvis_pitch": style.pelvis_pitch + np.radians(1.0) * np.cos(2 * phase),
        "spine_flex": style.trunk_lean - 0.6 * style.pelvis_pitch,
        "spine_twist": (style.pelvis_yaw + style.thorax_counter) * cos,
        "spine_bend": 0.5 * style.pelvis_roll * np.cos(mid_left),
        "neck_twist": -style.thorax_counter * cos,
        "neck_flex": np.radians(8.0) - 0.4 * style.trunk_lean,
    }
    arm_phase = phase - 2 * np.pi * style.arm_lag
    for side, sign in (("left", -1.0), ("right", 1.0)):
        gain = body.side_gain(side, 0.25)
        swing = sign * np.cos(arm_phase)  # +1 when this arm is furthest forward
        angles.update(arm_angles(
            side,
            flex=style.arm_base + gain * style.arm_amplitude * swing,
            abd=style.arm_abduction,
            rot=style.arm_rotation,
            elbow=style.elbow_base + style.elbow_amplitude * gain * (1 + swing) / 2,
        ))
    return angles


def gait_track(kind: str, body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """A walking / running / stair clip at times `t [T]` (s, uniformly spaced) in the path frame."""
    if kind not in GAIT_KINDS:
        raise ValueError(f"kind must be one of {GAIT_KINDS}, got {kind!r}")
    fps = 1.0 / (t[1] - t[0])
    style = _sample_style(kind, body, rng)
    rig = body.rig
    plan, staircase = _foot_plan(style, body)
    feet = [foot_trajectory(rig, style.cycle, plan, foot, t) for foot in (0, 1)]
    ankles = np.stack([f.ankle for f in feet])
    angles = _upper_body(style, body, t)
    frames = len(t)

    pelvis_xz = np.stack([style.sway * np.cos(2 * np.pi * (t - style.cycle.first_strike_s) / style.cycle.stride_s
                                               - np.pi * style.cycle.duty), style.speed * t], axis=-1)
    limits = max_pelvis_height(rig, pelvis_xz, pelvis_orientation(angles, frames), ankles)
    nominal = _running_profile(style, body, t) if kind == "running" else np.full(frames, style.nominal_height)
    if staircase is not None:
        nominal = nominal + staircase.ramp_height(pelvis_xz[:, 1] + style.ahead_at_strike - style.speed * style.cycle.stance_s / 2)
    # Lower the pelvis wherever a leg could not reach its foot, smoothly (a hard minimum would put
    # velocity kinks into every double support) and never by less than needed.
    deficit = np.maximum(nominal - np.minimum(limits[0], limits[1]), 0.0)
    height = nominal - smooth_upper_envelope(deficit, radius=max(1, int(round(0.15 * fps))))
    root = np.stack([pelvis_xz[:, 0], height, pelvis_xz[:, 1]], axis=-1)

    legs = LegTargets(
        ankle=ankles,
        foot_rotation=np.stack([f.rotation for f in feet]),
        knee_direction=knee_directions(angles, frames, np.stack([f.yaw for f in feet])),
    )
    joints, local = assemble(rig, root, angles, legs)
    floor = None if staircase is None else staircase.floor_height(joints[..., 2])
    contact = np.concatenate([feet[0].contact, feet[1].contact], axis=-1)
    return Track(joints=joints, local_rotations=local, foot_contact=contact, floor_height=floor,
                 details=dict(speed=style.speed, arm_amplitude=style.arm_amplitude, kind=kind,
                              step_period=style.cycle.step_period_s, style=style))
