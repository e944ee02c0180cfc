"""Falls forward, backward and sideways from standing or walking, then lying with small movements.

- Pre-fall: a standing or walking track (0.3–1.2 s), ended at a frame where one foot is flat on the
  ground: that foot becomes the pivot (its ball for forward falls, its ankle otherwise).
- Fall: the whole body turns about the pivot by θ(t), an inverted pendulum θ'' = (g/L)·sin θ plus a
  short smooth push (trip, slip or loss of balance), so the rotation accelerates under gravity until
  the body lies on the ground (θ = θ_end, ~0.6–1.2 s) and stops there: the impact. Meanwhile the
  posture cross-fades from the pre-fall motion to protective keyframes (arms reaching to break the
  fall, knees buckling, head tucked) and then to a lying posture with small movements.
- Placement: the pivot joint keeps its horizontal position; vertically the body rests on whatever is
  lowest (each joint has a tissue clearance), so nothing goes through the floor and the pivot lifts
  off naturally once hands, knees, buttocks or trunk take the weight.
"""

from __future__ import annotations

import numpy as np

from motion import skeleton as sk
from motion.procedural.assembly import Track
from motion.procedural.body import Body
from motion.procedural.gait import gait_track
from motion.procedural.planted import standing_track
from motion.procedural.poses import local_rotations_from_angles
from motion.procedural.rig import forward_kinematics
from motion.procedural.rotations import blend_rotations, rot_x, rot_z
from motion.procedural.timing import keyframes, periodic_noise, ramp

FALL_KINDS = ("fall_forward", "fall_backward", "fall_sideways")
MIN_DURATION_S = 2.0
GRAVITY = 9.81
deg = np.radians

# Distance (m, 1.70 m body) from each joint centre to the skin on the side it would touch the floor.
_CLEARANCE_M = np.array([
    0.10, 0.09, 0.09, 0.10, 0.05, 0.05, 0.11, 0.04, 0.04, 0.11, 0.0,
    0.0, 0.07, 0.08, 0.08, 0.09, 0.06, 0.06, 0.04, 0.04, 0.03, 0.03,
])


def clearances(body: Body) -> np.ndarray:
    """Per-joint floor clearance `[22]` (m) for this body; the ankle's equals its flat-foot height."""
    return _CLEARANCE_M * body.scale


def _pendulum(body: Body, rng: np.random.Generator, push_rad_s: float, theta_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Fall angle θ (rad) on a fine time grid from the onset: (times [N], θ [N]), ending at θ_end."""
    length = 0.55 * body.stature_m  # pivot to centre of mass
    push_time = rng.uniform(0.15, 0.3)
    dt = 0.004
    for _ in range(6):
        theta, omega, times, angles = 0.0, 0.0, [0.0], [0.0]
        step = 0
        while theta < theta_end and step < 1000:
            time = step * dt
            # Smooth push: a sin² pulse whose integral is push_rad_s.
            push = push_rad_s * 2.0 / push_time * np.sin(np.pi * time / push_time) ** 2 if time < push_time else 0.0
            omega += (GRAVITY / length * np.sin(theta) + push) * dt
            theta += omega * dt
            step += 1
            times.append(step * dt)
            angles.append(min(theta, theta_end))
        duration = times[-1]
        if duration > 1.2:
            push_rad_s *= 1.5
        elif duration < 0.6:
            push_rad_s *= 0.6
        else:
            break
    return np.asarray(times), np.asarray(angles)


def _pose_keys(kind: str, body: Body, rng: np.random.Generator, down_side: str) -> list[dict]:
    """Four angle sets (rad): reaction, just before impact, absorbing the impact, lying at rest."""
    u = rng.uniform
    keys = [dict() for _ in range(4)]
    dominant = body.dominant

    def arms(key, side, flex, abd, rot, elbow):
        keys[key].update({f"{side}_shoulder_flex": deg(flex), f"{side}_shoulder_abd": deg(abd),
                          f"{side}_shoulder_rot": deg(rot), f"{side}_elbow_flex": deg(elbow)})

    def legs(key, hip, knee, other_hip=None, other_knee=None):
        keys[key].update({"left_hip_flex": deg(hip), "left_knee_flex": deg(knee),
                          "right_hip_flex": deg(hip if other_hip is None else other_hip),
                          "right_knee_flex": deg(knee if other_knee is None else other_knee)})

    if kind == "fall_forward":
        buckle = u(10, 45)
        for side in ("left", "right"):
            reach = 1.0 if side == dominant else u(0.8, 1.0)
            arms(0, side, 60 * reach, 15, 10, 30)
            arms(1, side, u(105, 130) * reach, u(15, 25), 10, u(15, 25))
            arms(2, side, 80, 50, -40, u(60, 80))
            # Prone "goal-post" arms: abducted, externally rotated, forearms on the floor beside the head.
            arms(3, side, u(10, 40), u(70, 100), u(-90, -70), u(70, 110))
        legs(0, 10, 15)
        legs(1, u(15, 30), buckle)
        legs(2, 10, buckle * 0.5 + 10)
        legs(3, u(-5, 8), u(5, 35), u(-5, 8), u(5, 35))
        for key, ankle in ((2, -20.0), (3, u(-50, -30))):  # prone: toes point backwards, not into the floor
            keys[key].update({"left_ankle_dorsi": deg(ankle), "right_ankle_dorsi": deg(ankle)})
        turn = deg(u(40, 70)) * (1 if rng.uniform() < 0.5 else -1)
        for key, (spine, neck, twist) in enumerate([(10, -15, 0), (10, -30, 0), (5, -35, turn * 0.5), (0, -25, turn)]):
            keys[key].update({"spine_flex": deg(spine), "neck_flex": deg(neck), "neck_twist": twist})
    elif kind == "fall_backward":
        for side in ("left", "right"):
            main = side == dominant
            arms(0, side, u(40, 70), 25, 10, 35)
            arms(1, side, -20 if main else 40, 35 if main else 25, 5, 20 if main else 45)
            arms(2, side, 0, 45, 5, 30)
            arms(3, side, u(0, 30), u(30, 80), u(-10, 20), u(20, 45))
        legs(0, 30, 35)
        legs(1, u(60, 80), u(60, 90))
        legs(2, 50, 60)
        # Each leg ends either stretched out or hooked with the foot flat (knee ≈ 2 × hip flexion).
        rest = []
        for _ in range(2):
            hip = u(0, 10) if rng.uniform() < 0.5 else u(40, 55)
            rest += [hip, 2 * hip + u(5, 15) if hip > 20 else u(5, 15)]
        legs(3, *rest)
        for key, (spine, neck) in enumerate([(15, 25), (20, 30), (10, 20), (0, u(5, 15))]):
            keys[key].update({"spine_flex": deg(spine), "neck_flex": deg(neck)})
    else:
        sign = 1.0 if down_side == "left" else -1.0  # + when falling onto the left side
        up_side = "right" if down_side == "left" else "left"
        arms(0, down_side, 20, 60, 0, 20)
        arms(1, down_side, 20, u(90, 110), 0, 15)
        arms(2, down_side, 25, 105, 0, 60)
        arms(3, down_side, u(80, 100), u(-5, 5), u(0, 20), u(30, 80))  # along the floor in front
        keys[3].update({f"{down_side}_collar_protract": deg(u(20, 30)), f"{down_side}_collar_elev": deg(u(5, 15))})
        arms(0, up_side, 30, 20, 10, 40)
        arms(1, up_side, 40, 10, 15, 50)
        arms(2, up_side, 45, 5, 20, 70)
        arms(3, up_side, u(30, 60), 0, u(10, 30), u(60, 90))
        legs(0, 15, 20)
        legs(1, 30, 40)
        legs(2, 35, 45)
        hip, knee = u(30, 50), u(40, 70)
        legs(3, hip, knee, hip + u(-10, 10), knee + u(-10, 10))
        for key, (bend, neck_bend) in enumerate([(-15, -20), (-15, -25), (-8, -15), (0, -10)]):
            keys[key].update({"spine_bend": sign * deg(bend), "neck_bend": sign * deg(neck_bend), "spine_flex": deg(8)})
    return keys


def _fall_rotation(kind: str, down_side: str, theta: np.ndarray) -> np.ndarray:
    """Whole-body rotation `[T, 3, 3]` about the pivot for fall angle θ `[T]`."""
    if kind == "fall_forward":
        return rot_x(theta)
    if kind == "fall_backward":
        return rot_x(-theta)
    return rot_z(-theta if down_side == "left" else theta)  # onto the left side: the head goes to +x


def _pre_fall(body: Body, rng: np.random.Generator, t: np.ndarray, duration: float):
    """Pre-fall track, onset frame and the planted foot (0 left, 1 right) that becomes the pivot."""
    fps = 1.0 / (t[1] - t[0])
    wanted = rng.uniform(0.3, min(1.2, duration - 1.6))
    if rng.uniform() < 0.5:
        walk = gait_track("walking", body, rng, t)
        flat = walk.foot_contact[:, [0, 2]] & walk.foot_contact[:, [1, 3]]  # ankle and ball down
        steady = flat[1:] & flat[:-1]
        first = int(np.ceil(wanted * fps))
        candidates = [f for f in range(first, len(t)) if steady[f - 1].any()]
        if candidates and t[candidates[0]] <= min(1.4, duration - 1.5):
            onset = candidates[0]
            return walk, onset, int(np.argmax(steady[onset - 1])), True
    stand = standing_track(body, rng, t)
    onset = int(round(wanted * fps))
    return stand, onset, 0 if rng.uniform() < 0.5 else 1, False


def fall_track(kind: str, body: Body, rng: np.random.Generator, t: np.ndarray) -> Track:
    """A fall clip at times `t [T]` (s, uniform) in the path frame."""
    if kind not in FALL_KINDS:
        raise ValueError(f"kind must be one of {FALL_KINDS}, got {kind!r}")
    frames = len(t)
    duration = float(t[-1] - t[0]) + (t[1] - t[0])
    pre, onset, foot, walking = _pre_fall(body, rng, t, duration)
    down_side = ("left" if rng.uniform() < 0.5 else "right") if kind == "fall_sideways" else ""
    pivot = (sk.LEFT_FOOT, sk.RIGHT_FOOT)[foot] if kind == "fall_forward" else (sk.LEFT_ANKLE, sk.RIGHT_ANKLE)[foot]
    t_onset = t[onset]

    if kind == "fall_forward" and walking:
        push = 1.2 / (0.55 * body.stature_m) * rng.uniform(0.6, 0.9)  # a trip: walking momentum carries on
    else:
        push = rng.uniform(0.5, 1.2)
    fine_t, fine_theta = _pendulum(body, rng, push, theta_end=deg(rng.uniform(84, 90)))
    fall_time = fine_t[-1]
    theta = np.interp(t - t_onset, fine_t, fine_theta, left=0.0, right=fine_theta[-1])
    impact = t_onset + fall_time

    keys = _pose_keys(kind, body, rng, down_side)
    key_times = [t_onset + 0.35 * fall_time, impact - 0.05, impact + 0.25, impact + 0.8]
    names = sorted(set().union(*keys))
    table = np.array([[key.get(name, 0.0) for name in names] for key in keys])
    curves = keyframes(np.asarray(key_times), table, t)
    angles = {name: curves[:, i] for i, name in enumerate(names)}
    # Lying still is never perfectly still: breathing, head and limb adjustments.
    settle = ramp(t, impact + 0.5, 0.6)
    for name, amplitude in (("neck_twist", 8), ("neck_flex", 4), ("spine_flex", 2), ("left_knee_flex", 5),
                            ("right_knee_flex", 5), (f"{body.dominant}_shoulder_flex", 6), (f"{body.dominant}_elbow_flex", 6)):
        angles[name] = angles.get(name, 0.0) + settle * periodic_noise(rng, t, deg(amplitude), frequencies_hz=(0.15, 0.4))
    fall_local = local_rotations_from_angles(angles, frames)

    weight = ramp(t, t_onset, 0.3)
    local = blend_rotations(pre.local_rotations, fall_local, weight)
    local[:, sk.PELVIS] = _fall_rotation(kind, down_side, theta) @ local[:, sk.PELVIS]
    relative, _ = forward_kinematics(body.rig.offsets, np.zeros((frames, 3)), local)

    lift = np.max(clearances(body)[None] - relative[..., 1], axis=1)  # rest on the lowest body part
    anchor = pre.joints[onset, pivot]
    root = np.stack([anchor[0] - relative[:, pivot, 0], lift, anchor[2] - relative[:, pivot, 2]], axis=-1)
    before = t < t_onset
    root[before] = pre.joints[before, sk.PELVIS]
    joints = relative + root[:, None, :]

    contact = pre.foot_contact.copy()
    contact[~before] = False
    pivot_column = sk.FOOT_JOINTS.index(pivot)
    on_floor = joints[:, pivot, 1] <= clearances(body)[pivot] + 1e-3
    contact[~before, pivot_column] = on_floor[~before]
    return Track(joints=joints, local_rotations=local, foot_contact=contact,
                 details=dict(walking=walking, side=down_side, fall_time=fall_time, onset=t_onset))
