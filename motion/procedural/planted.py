"""Motions on two planted feet: the stance, idle standing and keyframed whole-body transitions.

The feet stay where they are (flat, both foot joints in contact); the legs follow the pelvis by IK.
Keyframed channels (pelvis position/tilt, trunk, arms) are interpolated with `timing.keyframes`, so a
transition is C1 and the planted feet cannot slide as long as the pelvis stays within reach (checked
by the callers' designs and by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion.procedural.assembly import REACH_FRACTION, LegTargets, Track, assemble, foot_rotation, hip_offsets
from motion.procedural.body import Body
from motion.procedural.poses import arm_angles, pelvis_orientation
from motion.procedural.rotations import apply, rot_x
from motion.procedural.timing import periodic_noise


@dataclass(frozen=True)
class Stance:
    """Two planted feet: flat ankle positions `[2, 3]` (left first) and toe-out yaws `[2]` (rad)."""

    ankles: np.ndarray
    yaw: np.ndarray

    def legs(self, frames: int, knee_direction: np.ndarray) -> LegTargets:
        """IK targets holding both feet still; `knee_direction` `[T, 3]` or `[3]` for both knees."""
        direction = np.broadcast_to(np.asarray(knee_direction, dtype=np.float64), (frames, 3))
        return LegTargets(
            ankle=np.repeat(self.ankles[:, None], frames, axis=1),
            foot_rotation=np.repeat(foot_rotation(self.yaw, 0.0)[:, None], frames, axis=1),
            knee_direction=np.stack([direction, direction]),
        )


def sample_stance(body: Body, rng: np.random.Generator) -> Stance:
    """Feet hip-width apart (ankles 0.14–0.24 m·scale), toes out 4–12°, one foot up to 6 cm ahead."""
    s = body.scale
    half_width = rng.uniform(0.07, 0.12) * s
    stagger = rng.uniform(-0.06, 0.06) * s
    ankles = np.array([[half_width, body.rig.ankle_height_m, stagger / 2], [-half_width, body.rig.ankle_height_m, -stagger / 2]])
    toe_out = np.radians(rng.uniform(4, 12, size=2))
    return Stance(ankles=ankles, yaw=np.array([toe_out[0], -toe_out[1]]))


def standing_pelvis_height(body: Body, stance: Stance, pelvis_z: float, pitch: float, knee_slack: float = 0.985) -> float:
    """Pelvis height (m) standing over `stance` with legs at `knee_slack` of full reach (slightly soft knees)."""
    hips = hip_offsets(body.rig, rot_x(np.array([pitch])))[:, 0]
    reach = knee_slack * REACH_FRACTION * body.rig.leg_m
    heights = []
    for leg in range(2):
        dx = hips[leg, 0] - stance.ankles[leg, 0]
        dz = pelvis_z + hips[leg, 2] - stance.ankles[leg, 2]
        heights.append(stance.ankles[leg, 1] + np.sqrt(reach**2 - dx**2 - dz**2) - hips[leg, 1])
    return float(min(heights))


def knee_direction_forward(angles, frames: int, up: float = 0.3) -> np.ndarray:
    """Knees point along the pelvis' facing, tipped `up` towards vertical: `[T, 3]`."""
    facing = apply(pelvis_orientation(angles, frames), np.array([0.0, 0.0, 1.0]))
    return facing + np.array([0.0, up, 0.0])


def idle_sway(body: Body, rng: np.random.Generator, t: np.ndarray, amount: float = 1.0) -> dict[str, np.ndarray]:
    """Small quasi-random postural sway (rad) of the trunk, head and arms, scaled by `amount`."""
    deg = np.radians
    angles = {
        "spine_flex": periodic_noise(rng, t, deg(1.5) * amount),
        "spine_bend": periodic_noise(rng, t, deg(1.0) * amount),
        "spine_twist": periodic_noise(rng, t, deg(2.0) * amount),
        "neck_flex": periodic_noise(rng, t, deg(3.0) * amount),
        "neck_twist": periodic_noise(rng, t, deg(6.0) * amount, frequencies_hz=(0.1, 0.3)),
    }
    for side in ("left", "right"):
        angles[f"{side}_shoulder_flex"] = periodic_noise(rng, t, deg(3.0) * amount)
        angles[f"{side}_elbow_flex"] = periodic_noise(rng, t, deg(4.0) * amount)
    return angles


def hanging_arms(body: Body, rng: np.random.Generator) -> dict[str, float]:
    """Relaxed arms at the sides (constant angles, rad)."""
    angles: dict[str, float] = {}
    for side in ("left", "right"):
        angles.update(arm_angles(
            side,
            flex=np.radians(rng.uniform(0, 8)),
            abd=np.radians(rng.uniform(6, 12)),
            rot=np.radians(rng.uniform(10, 25)),
            elbow=body.elbow_rest_rad + np.radians(rng.uniform(-3, 3)),
        ))
    return angles


def add_angles(*tracks: dict) -> dict:
    """Sum of angle tracks, channel by channel (missing channels count as 0)."""
    total: dict = {}
    for track in tracks:
        for name, value in track.items():
            total[name] = total.get(name, 0.0) + value
    return total


def standing_track(body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """Quiet standing: planted feet, soft knees, a little postural sway of pelvis, trunk, head and arms."""
    frames = len(t)
    stance = sample_stance(body, rng)
    pitch = np.radians(rng.uniform(2, 6))
    height = standing_pelvis_height(body, stance, 0.0, pitch, knee_slack=0.975)
    s = body.scale
    root = np.stack([periodic_noise(rng, t, 0.008 * s), height + periodic_noise(rng, t, 0.003 * s),
                     periodic_noise(rng, t, 0.01 * s)], axis=-1)
    angles = add_angles({"pelvis_pitch": pitch}, hanging_arms(body, rng), idle_sway(body, rng, t))
    joints, local = assemble(body.rig, root, angles, stance.legs(frames, knee_direction_forward(angles, frames)))
    return Track(joints=joints, local_rotations=local, foot_contact=np.ones((frames, 4), dtype=bool))
