"""Plausibility filter for motion clips (e.g. text-to-motion samples before they become virtual IMU data).

A clip `[T, 22, 3]` (m, y up, HumanML3D joint order) is rejected for each of these reasons:

- "non_finite": NaN or Inf anywhere (then nothing else is measured);
- "foot_skating": a foot slides while it stands on the ground. A foot (ankle + ball joint) is on the
  ground during frame step t → t+1 when both joints stay within `contact_height_m` of their own lowest
  height in the clip (their stance height on a flat floor; per joint, so the ankle's height above the
  sole does not matter) and move vertically slower than `contact_vertical_speed_m_s` (which leaves out
  landing and lift-off); it skates when either joint then moves horizontally faster than
  `skating_speed_m_s`. Rejected when a foot skates in more than `max_skating_fraction` of the steps;
- "bone_length_drift": the coefficient of variation (population std / mean over time) of some bone's
  length exceeds `max_bone_length_cv` (bones of a real body are rigid);
- "joint_speed" / "joint_acceleration": some joint's finite-difference speed |Δx|·fps or acceleration
  |Δ²x|·fps² exceeds what a human body segment reaches (`QualityThresholds` cites the figures);
- "frozen": the joints' mean speed is below `min_mean_joint_speed_m_s` (a statue, not a motion).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import torch

from motion.skeleton import LEFT_ANKLE, LEFT_FOOT, NUM_JOINTS, RIGHT_ANKLE, RIGHT_FOOT, bone_lengths

REASONS = ("non_finite", "foot_skating", "bone_length_drift", "joint_speed", "joint_acceleration", "frozen")
FEET = ((LEFT_ANKLE, LEFT_FOOT), (RIGHT_ANKLE, RIGHT_FOOT))
"""Joints of each foot: ankle and ball of the foot."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of a plausible clip (SI units; speeds and accelerations are finite differences at the clip's fps).

    "The procedural set" below: 440 clips of `ProceduralMotionSet` (seeds 0–9, 44 clips each), all of
    which pass.

    Attributes:
        contact_height_m: a foot joint within this height of its lowest point may be on the ground (5 cm).
            Both joints of a foot must be this low, which a swinging foot is not: its ball passes the floor
            by ~1.3 cm at mid-swing (minimum toe clearance; Winter, Phys Ther 72(1), 1992) but its ankle
            is then well above its stance height.
        contact_vertical_speed_m_s: and it must move vertically slower than this (0.3 m/s = 1.5 cm per
            frame at 20 fps): landing and lift-off steps are not ground contact.
        skating_speed_m_s: horizontal speed of a grounded foot joint that counts as sliding (0.5 m/s =
            2.5 cm per frame at 20 fps).
        max_skating_fraction: largest share of a clip's frame steps in which one foot may slide (0.2). The
            procedural set peaks at 0.076 (running: the step into a flat landing counts as grounded).
        max_bone_length_cv: largest coefficient of variation of a bone's length (0.05). Rigid skeletons
            (mocap, the procedural rig) stay below 1e-5; motion decoded from generated ric positions has
            no rigid skeleton, so its bones breathe, and 5 % marks where that becomes visible.
        max_joint_speed_m_s: 25 m/s, about twice the fastest human running speed (12.4 m/s, Bolt's 2009
            100 m world record; Graubner & Nixdorf, New Studies in Athletics 26(1/2), 2011), because a
            swinging foot moves forward at up to twice the body's speed. The procedural set peaks at 8.9 m/s.
        max_joint_acceleration_m_s2: 300 m/s², about twice 16 g (157 m/s²), the widest range wrist and
            ankle activity trackers record with (e.g. Bosch BMI270 datasheet: ±2/4/8/16 g); a 20 fps
            second difference (a 0.1 s window) smooths impacts further. The procedural set peaks at
            153 m/s² (jump landings, falls).
        min_mean_joint_speed_m_s: mean speed over joints and frames below which a clip is frozen (5 mm/s);
            the calmest procedural activity (sitting down) moves at ≥ 0.13 m/s.
    """

    contact_height_m: float = 0.05
    contact_vertical_speed_m_s: float = 0.3
    skating_speed_m_s: float = 0.5
    max_skating_fraction: float = 0.2
    max_bone_length_cv: float = 0.05
    max_joint_speed_m_s: float = 25.0
    max_joint_acceleration_m_s2: float = 300.0
    min_mean_joint_speed_m_s: float = 0.005

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{field.name} must be a positive finite number, got {value!r}")
        if self.max_skating_fraction > 1:
            raise ValueError(f"max_skating_fraction must be ≤ 1, got {self.max_skating_fraction!r}")


@dataclass(frozen=True)
class MotionMeasures:
    """What `check_motion` compares with the thresholds (see the module docstring).

    Attributes:
        skating_fraction: the larger of the two feet's share of frame steps spent sliding on the ground.
        bone_length_cv: the largest coefficient of variation of a bone's length over the clip.
        max_joint_speed_m_s, max_joint_acceleration_m_s2: over all joints and frames.
        mean_joint_speed_m_s: mean over joints and frame steps.
    """

    skating_fraction: float
    bone_length_cv: float
    max_joint_speed_m_s: float
    max_joint_acceleration_m_s2: float
    mean_joint_speed_m_s: float


def _as_clip(joints, name: str = "joints") -> np.ndarray:
    if isinstance(joints, torch.Tensor):
        joints = joints.detach().cpu().numpy()
    if not isinstance(joints, np.ndarray) or not np.issubdtype(joints.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point numpy array or torch.Tensor, got {type(joints).__name__}")
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape [T, {NUM_JOINTS}, 3], got {joints.shape}")
    if joints.shape[0] < 3:
        frames = joints.shape[0]
        raise ValueError(f"{name} needs at least 3 frames (accelerations are second differences), got {frames}")
    return joints.astype(np.float64)


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf:
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
    return float(fps)


def _check_thresholds(thresholds) -> None:
    if not isinstance(thresholds, QualityThresholds):
        raise ValueError(f"thresholds must be a QualityThresholds, got {type(thresholds).__name__}")


def _skating_fraction(joints: np.ndarray, velocity: np.ndarray, thresholds: QualityThresholds) -> float:
    worst = 0.0
    for foot in FEET:
        height = joints[:, foot, 1] - joints[:, foot, 1].min(axis=0)  # [T, 2] above each joint's lowest point
        low = height <= thresholds.contact_height_m
        slow = np.abs(velocity[:, foot, 1]) <= thresholds.contact_vertical_speed_m_s
        grounded = (low[1:] & low[:-1] & slow).all(-1)
        sliding = (np.linalg.norm(velocity[:, foot][..., [0, 2]], axis=-1) > thresholds.skating_speed_m_s).any(-1)
        worst = max(worst, float((grounded & sliding).mean()))
    return worst


def measure_motion(joints, fps: float, thresholds: QualityThresholds = QualityThresholds()) -> MotionMeasures:
    """The measures of a finite clip `joints` `[T ≥ 3, 22, 3]` (m) at `fps` frames/s.

    `thresholds` supplies the ground-contact definition of the skating measure.
    """
    joints = _as_clip(joints)
    fps = _check_fps(fps)
    _check_thresholds(thresholds)
    if not np.isfinite(joints).all():
        raise ValueError("joints contains non-finite values (NaN or Inf)")
    velocity = np.diff(joints, axis=0) * fps  # [T-1, 22, 3] m/s
    acceleration = np.diff(joints, n=2, axis=0) * fps**2  # [T-2, 22, 3] m/s²
    lengths = bone_lengths(joints)  # [T, 21]
    mean_length = lengths.mean(axis=0)
    # A bone that shrinks to nothing has no meaningful ratio: count it as infinite drift.
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean_length > 1e-9, lengths.std(axis=0) / mean_length, np.inf)
    speed = np.linalg.norm(velocity, axis=-1)
    return MotionMeasures(
        skating_fraction=_skating_fraction(joints, velocity, thresholds),
        bone_length_cv=float(cv.max()),
        max_joint_speed_m_s=float(speed.max()),
        max_joint_acceleration_m_s2=float(np.linalg.norm(acceleration, axis=-1).max()),
        mean_joint_speed_m_s=float(speed.mean()),
    )


def check_motion(joints, fps: float, thresholds: QualityThresholds = QualityThresholds()) -> list[str]:
    """Reasons (in `REASONS` order) to reject the clip `joints` `[T ≥ 3, 22, 3]` (m) at `fps`; [] if plausible."""
    joints = _as_clip(joints)
    _check_fps(fps)
    _check_thresholds(thresholds)
    if not np.isfinite(joints).all():
        return ["non_finite"]
    measures = measure_motion(joints, fps, thresholds)
    failed = {
        "foot_skating": measures.skating_fraction > thresholds.max_skating_fraction,
        "bone_length_drift": measures.bone_length_cv > thresholds.max_bone_length_cv,
        "joint_speed": measures.max_joint_speed_m_s > thresholds.max_joint_speed_m_s,
        "joint_acceleration": measures.max_joint_acceleration_m_s2 > thresholds.max_joint_acceleration_m_s2,
        "frozen": measures.mean_joint_speed_m_s < thresholds.min_mean_joint_speed_m_s,
    }
    return [reason for reason in REASONS if failed.get(reason, False)]


def filter_motions(joints, lengths, fps: float, thresholds: QualityThresholds = QualityThresholds()
                   ) -> tuple[torch.Tensor, Counter]:
    """Which clips of a padded batch to keep, and how often each reason rejected one.

    Args:
        joints: `[B, T, 22, 3]` joint positions (m), numpy or torch; frames past a clip's length are ignored.
        lengths: `[B]` frames of each clip (3 ≤ length ≤ T).
        fps: frame rate (frames/s).
    Returns:
        keep `[B]` bool (CPU tensor), and a Counter of reasons over the batch (a clip rejected for two
        reasons counts under both).
    """
    if isinstance(joints, torch.Tensor):
        joints = joints.detach().cpu().numpy()
    if not isinstance(joints, np.ndarray) or joints.ndim != 4 or joints.shape[2:] != (NUM_JOINTS, 3):
        shape = joints.shape if isinstance(joints, np.ndarray) else type(joints).__name__
        raise ValueError(f"joints must be a batch [B, T, {NUM_JOINTS}, 3], got {shape}")
    lengths = np.asarray(lengths.detach().cpu() if isinstance(lengths, torch.Tensor) else lengths)
    if lengths.shape != joints.shape[:1] or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {joints.shape[0]} integers (one per clip), got {lengths!r}")
    if (lengths < 3).any() or (lengths > joints.shape[1]).any():
        raise ValueError(f"lengths must lie in [3, {joints.shape[1]}] frames, got {lengths.tolist()}")
    reasons = [check_motion(clip[:length], fps, thresholds) for clip, length in zip(joints, lengths)]
    keep = torch.tensor([not found for found in reasons], dtype=torch.bool)
    return keep, Counter(reason for found in reasons for reason in found)
