"""Posture transitions on planted feet: sit down on a chair, stand up from it, lie down on the floor.

Each is a short keyframed timeline (pelvis position and tilt, trunk, head, arms; the legs follow by
IK) placed after a random idle lead-in, followed by an idle hold, with small postural sway on top.
"""

from __future__ import annotations

import numpy as np

from motion import skeleton as sk
from motion.procedural.assembly import LegTargets, Track, assemble, foot_rotation
from motion.procedural.body import Body
from motion.procedural.planted import (
    Stance, add_angles, hanging_arms, idle_sway, knee_direction_forward, sample_stance, standing_pelvis_height,
)
from motion.procedural.poses import arm_angles
from motion.procedural.rotations import apply, rot_x
from motion.procedural.timing import keyframes, ramp

TRANSITION_KINDS = ("sit_down", "stand_up", "lie_down")
MIN_DURATION_S = {"sit_down": 2.0, "stand_up": 2.0, "lie_down": 3.0}
deg = np.radians


def _timeline(rng: np.random.Generator, duration_s: float, transition_range_s: tuple[float, float]) -> tuple[float, float]:
    """(start, length) of the transition: a 0.2–1.2 s lead-in, the transition, ≥ 0.2 s hold after."""
    length = min(rng.uniform(*transition_range_s), duration_s - 0.4)
    lead = rng.uniform(0.2, max(0.2, min(1.2, 0.3 * duration_s, duration_s - length - 0.2)))
    return lead, length


def _seated_pelvis(body: Body, stance: Stance, rng: np.random.Generator) -> tuple[float, float, float]:
    """Seated pelvis (z, y, pitch): shanks near vertical, thighs within ~10° of horizontal."""
    rig = body.rig
    shank_tilt = deg(rng.uniform(-5, 15))  # > 0: feet forward of the knees
    thigh_slope = deg(rng.uniform(0, 10))  # > 0: knees above the hips
    pitch = deg(rng.uniform(-8, 2))  # slight posterior pelvic tilt when seated
    ankle = stance.ankles.mean(axis=0)
    knee_y = ankle[1] + rig.shank_m * np.cos(shank_tilt)
    knee_z = ankle[2] - rig.shank_m * np.sin(shank_tilt)
    hip_y = knee_y - rig.thigh_m * np.sin(thigh_slope)
    hip_z = knee_z - rig.thigh_m * np.cos(thigh_slope)
    hip_offset = apply(rot_x(pitch), rig.offsets[sk.LEFT_HIP])
    return float(hip_z - hip_offset[2]), float(hip_y - hip_offset[1]), float(pitch)


def _seated_arms(body: Body, rng: np.random.Generator, style: str) -> dict:
    angles = {}
    for side in ("left", "right"):
        if style == "armrests":
            pose = dict(flex=deg(rng.uniform(5, 15)), abd=deg(rng.uniform(14, 22)), rot=deg(rng.uniform(0, 10)), elbow=deg(rng.uniform(75, 95)))
        else:  # hands resting on the thighs
            pose = dict(flex=deg(rng.uniform(22, 32)), abd=deg(rng.uniform(5, 12)), rot=deg(rng.uniform(15, 30)), elbow=deg(rng.uniform(45, 65)))
        angles.update(arm_angles(side, **pose))
    return angles


def _balance_arms(body: Body, rng: np.random.Generator, style: str) -> dict:
    """Arms while the buttocks travel between seat and standing: reaching for the armrests or forwards."""
    angles = {}
    for side in ("left", "right"):
        gain = body.side_gain(side, 0.2)
        if style == "armrests":
            pose = dict(flex=deg(rng.uniform(-12, 0)), abd=deg(rng.uniform(18, 26)), rot=deg(5), elbow=deg(rng.uniform(35, 55)))
        else:
            pose = dict(flex=deg(rng.uniform(30, 45)) * gain, abd=deg(8), rot=deg(20), elbow=deg(rng.uniform(25, 40)))
        angles.update(arm_angles(side, **pose))
    return angles


def _pose(pelvis_z, pelvis_y, pitch, spine, arms: dict) -> dict:
    pose = {"pelvis_z": pelvis_z, "pelvis_y": pelvis_y, "pelvis_pitch": pitch, "spine_flex": spine,
            "neck_flex": deg(6.0) - 0.45 * (pitch + spine)}  # keep the gaze roughly level
    pose.update(arms)
    return pose


def _run_keys(times: list[float], poses: list[dict], t: np.ndarray) -> dict[str, np.ndarray]:
    names = poses[0].keys()
    values = np.array([[pose[name] for name in names] for pose in poses], dtype=np.float64)
    curves = keyframes(np.asarray(times), values, t)
    return {name: curves[:, i] for i, name in enumerate(names)}


def _finish(body: Body, stance: Stance, channels: dict, sway: dict, t: np.ndarray, legs: LegTargets | None = None,
            knee_up: float = 0.3, contact: np.ndarray | None = None, details: dict | None = None) -> Track:
    frames = len(t)
    root = np.stack([np.zeros(frames), channels.pop("pelvis_y"), channels.pop("pelvis_z")], axis=-1)
    angles = add_angles(channels, sway)
    if legs is None:
        legs = stance.legs(frames, knee_direction_forward(angles, frames, up=knee_up))
    joints, local = assemble(body.rig, root, angles, legs)
    if contact is None:
        contact = np.ones((frames, 4), dtype=bool)
    return Track(joints=joints, local_rotations=local, foot_contact=contact, details=details or {})


def chair_track(kind: str, body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """sit_down (standing -> seated on a chair) or stand_up (the reverse, with a forward trunk lean)."""
    duration = float(t[-1] - t[0]) + (t[1] - t[0])
    stance = sample_stance(body, rng)
    style = "armrests" if rng.uniform() < 0.4 else "thighs"
    stand_z = rng.uniform(-0.03, 0.01) * body.scale
    stand_pitch = deg(rng.uniform(2, 6))
    stand_y = standing_pelvis_height(body, stance, stand_z, stand_pitch)
    seat_z, seat_y, seat_pitch = _seated_pelvis(body, stance, rng)
    start, length = _timeline(rng, duration, (1.8, 2.6) if kind == "sit_down" else (1.5, 2.3))
    standing = _pose(stand_z, stand_y, stand_pitch, deg(rng.uniform(0, 3)), hanging_arms(body, rng))
    seated = _pose(seat_z, seat_y, seat_pitch, deg(rng.uniform(0, 10)), _seated_arms(body, rng, style))
    balance = _balance_arms(body, rng, style)
    s = body.scale
    lean = deg(rng.uniform(22, 38))
    if kind == "sit_down":
        poses = [
            standing,
            _pose(stand_z - 0.08 * s, stand_y - 0.05 * s, lean * 0.5, deg(12), balance),
            _pose(0.6 * seat_z + 0.4 * stand_z, seat_y + 0.12 * s, lean, deg(18), balance),
            _pose(seat_z, seat_y + 0.01 * s, lean * 0.4, deg(8), balance),
            seated,
        ]
        fractions = [0.0, 0.28, 0.58, 0.78, 1.0]
    else:
        poses = [
            seated,
            _pose(seat_z + 0.03 * s, seat_y, lean * 0.8, deg(16), balance),
            _pose(seat_z + 0.12 * s, seat_y + 0.04 * s, lean, deg(18), balance),
            _pose(0.35 * seat_z + 0.65 * stand_z, stand_y - 0.12 * s, lean * 0.45, deg(8), balance),
            standing,
        ]
        fractions = [0.0, 0.3, 0.45, 0.75, 1.0]
    channels = _run_keys([start + f * length for f in fractions], poses, t)
    # Sway is full while standing, small once seated (the chair supports the trunk).
    seated_weight = ramp(t, start + 0.8 * length, 0.2 * length)
    if kind == "stand_up":
        seated_weight = 1.0 - ramp(t, start, 0.3 * length)
    sway = {k: v * (1.0 - 0.6 * seated_weight) for k, v in idle_sway(body, rng, t).items()}
    return _finish(body, stance, channels, sway, t, details=dict(style=style, seat_height=seat_y))


def lie_down_track(body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """Standing -> squat -> sitting on the floor -> reclining -> lying on the back, controlled and slow."""
    duration = float(t[-1] - t[0]) + (t[1] - t[0])
    frames = len(t)
    s = body.scale
    stance = sample_stance(body, rng)
    start, length = _timeline(rng, duration, (2.5, 3.2))
    stand_pitch = deg(rng.uniform(2, 6))
    stand_y = standing_pelvis_height(body, stance, 0.0, stand_pitch)
    floor_z = -rng.uniform(0.38, 0.46) * s  # buttocks behind the heels
    support = body.dominant
    arms_down = hanging_arms(body, rng)
    balance = _balance_arms(body, rng, "forward")
    reach_back = {}
    for side in ("left", "right"):
        main = side == support
        reach_back.update(arm_angles(side, flex=deg(-35 if main else 25), abd=deg(25 if main else 10),
                                     rot=deg(10), elbow=deg(20 if main else 40)))
    elbows_back = {}
    for side in ("left", "right"):
        elbows_back.update(arm_angles(side, flex=deg(-45), abd=deg(20), rot=deg(0), elbow=deg(80)))
    lying_arms = {}
    for side in ("left", "right"):
        lying_arms.update(arm_angles(side, flex=deg(rng.uniform(0, 15)), abd=deg(rng.uniform(10, 30)),
                                     rot=deg(rng.uniform(0, 20)), elbow=deg(rng.uniform(15, 35))))
    poses = [
        _pose(0.0, stand_y, stand_pitch, deg(2), arms_down),
        _pose(-0.12 * s, 0.58 * s, deg(30), deg(22), balance),
        _pose(floor_z, 0.17 * s, deg(-12), deg(22), reach_back),
        _pose(floor_z - 0.03 * s, 0.14 * s, deg(-50), deg(8), elbows_back),
        _pose(floor_z - 0.06 * s, 0.115 * s, deg(-86), deg(-4), lying_arms),
    ]
    fractions = [0.0, 0.27, 0.5, 0.74, 1.0]
    channels = _run_keys([start + f * length for f in fractions], poses, t)
    channels["neck_flex"] = channels["neck_flex"] + deg(20) * ramp(t, start + 0.6 * length, 0.4 * length)
    sway = {k: v * (1.0 - 0.7 * ramp(t, start + 0.3 * length, 0.3 * length)) for k, v in idle_sway(body, rng, t).items()}

    # Optionally stretch the legs out along the floor once lying (the feet slide: no contact then).
    ankles = np.repeat(stance.ankles[:, None], frames, axis=1)
    pitch = np.zeros(frames)
    contact = np.ones((frames, 4), dtype=bool)
    end = start + length
    stretch_time = duration - end
    if rng.uniform() < 0.5 and stretch_time > 0.6:
        slide = ramp(t, end, min(1.2, stretch_time))
        hips_z = floor_z + 0.09 * s
        ankles[..., 2] += slide[None] * (hips_z + 0.93 * body.rig.leg_m - stance.ankles[:, 2:3])
        ankles[..., 1] += slide[None] * 0.03 * s
        pitch = deg(65) * slide
        contact[t >= end] = False
    knee = knee_direction_forward(add_angles(channels, sway), frames, up=1.0)  # knees up when lying
    legs = LegTargets(ankle=ankles, foot_rotation=np.stack([foot_rotation(stance.yaw[i], pitch) for i in range(2)]),
                      knee_direction=np.stack([knee, knee]))
    return _finish(body, stance, channels, sway, t, legs=legs, contact=contact, details=dict(support=support))
