"""Motion plausibility filter: closed-form measures, procedural clips pass, constructed failures trip their reason."""

from collections import Counter

import numpy as np
import pytest
import torch

from motion.procedural import ACTIVITIES, ProceduralMotionSet, generate_clip
from motion.quality import QualityThresholds, check_motion, filter_motions, measure_motion
from motion.skeleton import LEFT_ELBOW, LEFT_WRIST, rest_joints

FPS = 20.0
FRAMES = 81  # 80 frame steps


def still(frames: int = FRAMES) -> np.ndarray:
    """`[T, 22, 3]` the rest skeleton standing on the floor, not moving."""
    return np.repeat(rest_joints()[None], frames, axis=0)


def moved(joints: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Every joint shifted by `displacement` `[T, 3]` (a rigid translation: bones unchanged)."""
    return joints + displacement[:, None, :]


def seated_clip(seed: int = 0) -> np.ndarray:
    """A plausible clip whose feet stay planted throughout: sitting down, `[80, 22, 3]` float64."""
    return generate_clip("sit_down", np.random.default_rng(seed)).joints.astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_procedural_clip_passes(seed):
    motion = ProceduralMotionSet(num_clips=2 * len(ACTIVITIES), seed=seed)
    clips = np.stack([motion[i].joints for i in range(len(motion))])
    keep, reasons = filter_motions(clips, [clips.shape[1]] * len(clips), FPS)
    assert keep.all() and reasons == Counter()


def test_rigid_constant_velocity_measures_in_closed_form():
    step = np.array([0.03, 0.0, 0.04])  # m per frame: 5 cm/frame = 1 m/s, horizontal
    joints = moved(still(), np.arange(FRAMES)[:, None] * step)
    measures = measure_motion(joints, FPS)
    assert measures.max_joint_speed_m_s == pytest.approx(1.0, abs=1e-12)
    assert measures.mean_joint_speed_m_s == pytest.approx(1.0, abs=1e-12)
    assert measures.max_joint_acceleration_m_s2 == pytest.approx(0.0, abs=1e-9)
    assert measures.bone_length_cv == pytest.approx(0.0, abs=1e-12)
    assert measures.skating_fraction == 1.0  # feet flat on the floor, gliding every step
    assert check_motion(joints, FPS) == ["foot_skating"]


@pytest.mark.parametrize("gliding_steps,skates", [(16, False), (17, True), (40, True)])
def test_skating_fraction_counts_gliding_steps(gliding_steps, skates):
    """Glide at 1 m/s for the first k of 80 steps, then stand: fraction k / 80 against the 0.2 limit."""
    speed = np.minimum(np.arange(FRAMES), gliding_steps) * (1.0 / FPS)
    joints = moved(still(), np.stack([np.zeros(FRAMES), np.zeros(FRAMES), speed], axis=-1))
    assert measure_motion(joints, FPS).skating_fraction == pytest.approx(gliding_steps / 80, abs=1e-12)
    assert check_motion(joints, FPS) == (["foot_skating"] if skates else [])


def test_a_foot_lifted_above_the_contact_height_does_not_skate():
    """The same glide with the whole body bobbing 30 cm every other frame: feet never stay low two frames."""
    glide = np.arange(FRAMES) * (1.0 / FPS)
    bob = 0.3 * (np.arange(FRAMES) % 2)
    joints = moved(still(), np.stack([np.zeros(FRAMES), bob, glide], axis=-1))
    assert measure_motion(joints, FPS).skating_fraction == 0.0


def test_vertical_shaking_measures_twice_the_amplitude_times_fps_squared():
    """y = A·sin(2π·(fps/4)·t) samples 0, A, 0, −A: speed A·fps, second difference 2A at the peaks."""
    amplitude = 0.4
    bob = amplitude * np.round(np.sin(np.pi / 2 * np.arange(FRAMES)))
    joints = moved(still(), np.stack([np.zeros(FRAMES), bob, np.zeros(FRAMES)], axis=-1))
    measures = measure_motion(joints, FPS)
    assert measures.max_joint_speed_m_s == pytest.approx(amplitude * FPS, abs=1e-9)  # 8 m/s: allowed
    assert measures.max_joint_acceleration_m_s2 == pytest.approx(2 * amplitude * FPS**2, abs=1e-9)  # 320 m/s²
    assert check_motion(joints, FPS) == ["joint_acceleration"]


def test_flying_up_faster_than_any_body_segment_trips_speed_only():
    rise = np.arange(FRAMES) * (26.0 / FPS)  # 26 m/s > 25 m/s, no acceleration
    joints = moved(still(), np.stack([np.zeros(FRAMES), rise, np.zeros(FRAMES)], axis=-1))
    assert measure_motion(joints, FPS).max_joint_speed_m_s == pytest.approx(26.0, abs=1e-9)
    assert check_motion(joints, FPS) == ["joint_speed"]


def test_a_teleporting_body_trips_speed_and_acceleration():
    """One glitch frame 1.5 m up: speed 1.5·20 = 30 m/s, acceleration 2·1.5·400 = 1200 m/s²."""
    joints = still()
    joints[40] += [0.0, 1.5, 0.0]
    measures = measure_motion(joints, FPS)
    assert measures.max_joint_speed_m_s == pytest.approx(30.0, abs=1e-9)
    assert measures.max_joint_acceleration_m_s2 == pytest.approx(1200.0, abs=1e-9)
    assert check_motion(joints, FPS) == ["joint_speed", "joint_acceleration"]
    # A single joint cannot teleport without stretching its bones: the drift check catches it too.
    alone = seated_clip()
    alone[40, LEFT_WRIST] += [0.0, 1.5, 0.0]
    assert check_motion(alone, FPS) == ["bone_length_drift", "joint_speed", "joint_acceleration"]


def test_stretching_forearm_gives_the_coefficient_of_variation_of_its_lengths():
    joints = seated_clip()
    forearm = joints[:, LEFT_WRIST] - joints[:, LEFT_ELBOW]
    growth = 1.0 + 0.6 * np.linspace(0.0, 1.0, len(joints))  # the forearm grows to 1.6× over the clip
    joints[:, LEFT_WRIST] = joints[:, LEFT_ELBOW] + forearm * growth[:, None]
    lengths = np.linalg.norm(forearm, axis=-1) * growth
    assert measure_motion(joints, FPS).bone_length_cv == pytest.approx(lengths.std() / lengths.mean(), rel=1e-9)
    assert check_motion(joints, FPS) == ["bone_length_drift"]


def test_constructed_failures_of_a_real_clip_trip_exactly_their_reason():
    clip = seated_clip()
    frames = len(clip)
    glide = moved(clip, np.stack([np.zeros(frames), np.zeros(frames), np.arange(frames) / FPS], axis=-1))
    statue = np.repeat(clip[:1], frames, axis=0)
    assert check_motion(clip, FPS) == []
    assert check_motion(glide, FPS) == ["foot_skating"]  # planted feet dragged along at 1 m/s
    assert check_motion(statue, FPS) == ["frozen"]
    assert measure_motion(statue, FPS).mean_joint_speed_m_s == 0.0


def test_non_finite_values_are_a_reason_not_an_error():
    joints = seated_clip()
    joints[10, 3, 1] = np.nan
    assert check_motion(joints, FPS) == ["non_finite"]
    with pytest.raises(ValueError, match="joints contains non-finite values"):
        measure_motion(joints, FPS)


def test_filter_counts_reasons_and_ignores_padding():
    clip = seated_clip()
    frames = len(clip)
    teleport = clip.copy()
    teleport[30] += [0.0, 1.5, 0.0]
    glide = moved(clip, np.stack([np.zeros(frames), np.zeros(frames), np.arange(frames) / FPS], axis=-1))
    statue = np.repeat(clip[:1], frames, axis=0)
    short = np.full_like(clip, np.nan)
    short[:50] = clip[:50]  # NaN padding past its length must not count
    batch = torch.from_numpy(np.stack([clip, glide, statue, teleport, statue, short])).float()
    keep, reasons = filter_motions(batch, torch.tensor([frames] * 5 + [50]), FPS)
    assert keep.tolist() == [True, False, False, False, False, True]
    assert reasons == Counter({"frozen": 2, "foot_skating": 1, "joint_speed": 1, "joint_acceleration": 1})


def test_thresholds_change_the_verdict():
    clip = seated_clip()
    peak = measure_motion(clip, FPS).max_joint_speed_m_s
    assert check_motion(clip, FPS, QualityThresholds(max_joint_speed_m_s=0.9 * peak)) == ["joint_speed"]
    assert check_motion(clip, FPS, QualityThresholds(max_joint_speed_m_s=1.1 * peak)) == []


@pytest.mark.parametrize(
    "joints,fps,match",
    [
        (np.zeros((80, 21, 3)), FPS, r"joints must have shape \[T, 22, 3\]"),
        (np.zeros((2, 22, 3)), FPS, "joints needs at least 3 frames"),
        (np.zeros((80, 22, 3), dtype=np.int64), FPS, "joints must be a floating-point"),
        ([[0.0] * 3] * 22, FPS, "joints must be a floating-point"),
        (np.zeros((80, 22, 3)), 0.0, "fps must be a positive number"),
        (np.zeros((80, 22, 3)), float("nan"), "fps must be a positive number"),
        (np.zeros((80, 22, 3)), True, "fps must be a positive number"),
        (np.zeros((80, 22, 3)), "20", "fps must be a positive number"),
    ],
)
def test_bad_clip_inputs_are_named(joints, fps, match):
    with pytest.raises(ValueError, match=match):
        check_motion(joints, fps)


def test_bad_thresholds_and_batches_are_named():
    with pytest.raises(ValueError, match="contact_height_m must be a positive finite number"):
        QualityThresholds(contact_height_m=0.0)
    with pytest.raises(ValueError, match="max_joint_speed_m_s must be a positive finite number"):
        QualityThresholds(max_joint_speed_m_s=float("inf"))
    with pytest.raises(ValueError, match="max_skating_fraction must be ≤ 1"):
        QualityThresholds(max_skating_fraction=1.5)
    with pytest.raises(ValueError, match="thresholds must be a QualityThresholds"):
        check_motion(still(), FPS, thresholds={"max_joint_speed_m_s": 25.0})
    with pytest.raises(ValueError, match="thresholds must be a QualityThresholds"):
        measure_motion(still(), FPS, thresholds=None)
    batch = np.stack([still(), still()])
    with pytest.raises(ValueError, match=r"joints must be a batch \[B, T, 22, 3\]"):
        filter_motions(still(), [FRAMES], FPS)
    with pytest.raises(ValueError, match="lengths must be 2 integers"):
        filter_motions(batch, [FRAMES], FPS)
    with pytest.raises(ValueError, match="lengths must be 2 integers"):
        filter_motions(batch, [80.0, 80.0], FPS)
    with pytest.raises(ValueError, match=r"lengths must lie in \[3, 81\]"):
        filter_motions(batch, [FRAMES, FRAMES + 1], FPS)
    with pytest.raises(ValueError, match=r"lengths must lie in \[3, 81\]"):
        filter_motions(batch, torch.tensor([2, FRAMES]), FPS)
