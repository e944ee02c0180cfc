"""The built-in procedural motion set: seeded, balanced, generated on the fly, no downloads.

`generate_clip` draws one clip of an activity; `ProceduralMotionSet` is a map-style set whose item i
is `generate_clip(activities[i % len(activities)], np.random.default_rng([seed, i]))`, so every item
is deterministic per (seed, index) whatever the call order, worker or process.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from motion import skeleton as sk
from motion.procedural.assembly import Track
from motion.procedural.body import Body, place_in_world, sample_body
from motion.procedural.captions import caption
from motion.procedural import falls, gait, jump, transitions
from motion.procedural.falls import FALL_KINDS, fall_track
from motion.procedural.gait import GAIT_KINDS, gait_track
from motion.procedural.jump import jump_track
from motion.procedural.transitions import chair_track, lie_down_track

ACTIVITIES = (
    "walking",
    "running",
    "stairs_up",
    "stairs_down",
    "sit_down",
    "stand_up",
    "lie_down",
    "jumping",
    "fall_forward",
    "fall_backward",
    "fall_sideways",
)
SAFETY = {activity: ("unsafe" if activity in FALL_KINDS else "safe") for activity in ACTIVITIES}
"""Safety label of every activity: the three falls are unsafe, everything else safe."""

SAFETY_LABELS = ("safe", "unsafe")

MIN_DURATION_S = {
    **{kind: gait.MIN_DURATION_S for kind in GAIT_KINDS},
    **transitions.MIN_DURATION_S,
    "jumping": jump.MIN_DURATION_S,
    **{kind: falls.MIN_DURATION_S for kind in FALL_KINDS},
}
"""Shortest clip (s) that still holds the whole activity (lead-in, the movement itself, an end state)."""

_GENERATORS: dict[str, Callable[[Body, np.random.Generator, np.ndarray], Track]] = {
    **{kind: (lambda kind: lambda body, rng, t: gait_track(kind, body, rng, t))(kind) for kind in GAIT_KINDS},
    "sit_down": lambda body, rng, t: chair_track("sit_down", body, rng, t),
    "stand_up": lambda body, rng, t: chair_track("stand_up", body, rng, t),
    "lie_down": lie_down_track,
    "jumping": jump_track,
    **{kind: (lambda kind: lambda body, rng, t: fall_track(kind, body, rng, t))(kind) for kind in FALL_KINDS},
}


@dataclass(frozen=True, eq=False)
class MotionClip:
    """One motion clip (HumanML3D conventions: metres, y up, 22 joints in HumanML3D order).

    Attributes:
        joints: `[T, 22, 3]` float32 joint positions (m).
        fps: frame rate (frames/s).
        activity: activity name (for generated clips one of `ACTIVITIES`).
        safety: "safe" or "unsafe".
        caption: short English description.
        foot_contact: `[T, 4]` bool, contacts of `skeleton.FOOT_JOINTS` (l_ankle, l_foot, r_ankle, r_foot)
            that the generator enforced (a flagged joint does not slide and touches the ground).
    """

    joints: np.ndarray
    fps: float
    activity: str
    safety: str
    caption: str
    foot_contact: np.ndarray

    def __post_init__(self):
        joints = np.asarray(self.joints)
        if joints.ndim != 3 or joints.shape[1:] != (sk.NUM_JOINTS, 3):
            raise ValueError(f"joints must have shape [T, {sk.NUM_JOINTS}, 3], got {joints.shape}")
        contact = np.asarray(self.foot_contact)
        if contact.shape != (joints.shape[0], len(sk.FOOT_JOINTS)):
            raise ValueError(f"foot_contact must have shape [{joints.shape[0]}, 4], got {contact.shape}")
        if self.safety not in SAFETY_LABELS:
            raise ValueError(f"safety must be one of {SAFETY_LABELS}, got {self.safety!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


def _check_activity(activity: str) -> None:
    if activity not in ACTIVITIES:
        raise ValueError(f"activity must be one of {ACTIVITIES}, got {activity!r}")


def _check_timing(activity: str, duration_s: float, fps: float) -> int:
    if not (isinstance(duration_s, numbers.Real) and np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not (isinstance(fps, numbers.Real) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
    minimum = MIN_DURATION_S[activity]
    if duration_s < minimum:
        raise ValueError(f"duration_s={duration_s} is too short for {activity!r}: it needs at least {minimum} s")
    frames = int(round(duration_s * fps))
    if frames < 2:
        raise ValueError(f"duration_s * fps must give at least 2 frames, got duration_s={duration_s}, fps={fps}")
    return frames


def generate_clip_with_floor(
    activity: str, rng: np.random.Generator, *, duration_s: float = 4.0, fps: float = sk.FPS
) -> tuple[MotionClip, np.ndarray]:
    """Like `generate_clip`, also returning the floor height under every joint, `[T, 22]` (m).

    The floor is y = 0 except on stairs, where it is the height of the tread below the joint.
    """
    _check_activity(activity)
    frames = _check_timing(activity, duration_s, fps)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    t = np.arange(frames) / float(fps)
    body = sample_body(rng)
    track = _GENERATORS[activity](body, rng, t)
    joints = place_in_world(track.joints, rng)  # rotation about y and shift: floor heights unchanged
    floor = np.zeros((frames, sk.NUM_JOINTS)) if track.floor_height is None else track.floor_height
    clip = MotionClip(
        joints=joints.astype(np.float32),
        fps=float(fps),
        activity=activity,
        safety=SAFETY[activity],
        caption=caption(activity, body, track.details),
        foot_contact=np.asarray(track.foot_contact, dtype=bool),
    )
    return clip, floor.astype(np.float32)


def generate_clip(activity: str, rng: np.random.Generator, *, duration_s: float = 4.0, fps: float = sk.FPS) -> MotionClip:
    """One random clip of `activity` with exactly `round(duration_s * fps)` frames.

    Args:
        activity: one of `ACTIVITIES`.
        rng: the only source of randomness (body, style, timing, heading, start position).
        duration_s: clip length (s); at least `MIN_DURATION_S[activity]`.
        fps: frame rate (frames/s).
    """
    return generate_clip_with_floor(activity, rng, duration_s=duration_s, fps=fps)[0]


class ProceduralMotionSet:
    """Map-style set of `num_clips` procedural clips, balanced over `activities`.

    Item i has activity `activities[i % len(activities)]` and draws all its randomness from
    `np.random.default_rng([seed, i])`. Needs no torch; clips are generated on every access.
    """

    def __init__(self, *, num_clips: int, seed: int, duration_s: float = 4.0, fps: float = sk.FPS,
                 activities: Sequence[str] = ACTIVITIES):
        if isinstance(num_clips, bool) or not isinstance(num_clips, numbers.Integral) or num_clips <= 0:
            raise ValueError(f"num_clips must be a positive integer, got {num_clips!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(activities, str) or len(activities) == 0:
            raise ValueError(f"activities must be a non-empty sequence of activity names, got {activities!r}")
        for activity in activities:
            _check_activity(activity)
            _check_timing(activity, duration_s, fps)
        self.num_clips = int(num_clips)
        self.seed = int(seed)
        self.duration_s = float(duration_s)
        self.fps = float(fps)
        self.activities = tuple(activities)

    def __len__(self) -> int:
        return self.num_clips

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += self.num_clips
        if not 0 <= index < self.num_clips:
            raise IndexError(f"index out of range for {self.num_clips} clips")
        return index

    def activity_of(self, index: int) -> str:
        """Activity of item `index` without generating it."""
        return self.activities[self._index(index) % len(self.activities)]

    def __getitem__(self, index: int) -> MotionClip:
        index = self._index(index)
        rng = np.random.default_rng([self.seed, index])
        return generate_clip(self.activities[index % len(self.activities)], rng, duration_s=self.duration_s, fps=self.fps)

    def __repr__(self) -> str:
        return (f"ProceduralMotionSet(num_clips={self.num_clips}, seed={self.seed}, duration_s={self.duration_s}, "
                f"fps={self.fps}, activities={len(self.activities)})")
