"""Physical plausibility of every activity over several seeds (tolerances in metres / seconds)."""

from functools import lru_cache

import numpy as np
import pytest

from motion import ACTIVITIES, generate_clip_with_floor
from motion import skeleton as sk
from motion.procedural.body import STATURE_RANGE_M

SEEDS = range(8)
DURATION_S, FPS = 4.0, 20.0


@lru_cache(maxsize=None)
def clips(activity):
    return [generate_clip_with_floor(activity, np.random.default_rng([2024, seed]), duration_s=DURATION_S, fps=FPS)
            for seed in SEEDS]


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_shape_dtype_and_labels(activity):
    for clip, floor in clips(activity):
        assert clip.joints.shape == (round(DURATION_S * FPS), 22, 3)
        assert clip.joints.dtype == np.float32
        assert np.all(np.isfinite(clip.joints))
        assert clip.foot_contact.shape == (80, 4) and clip.foot_contact.dtype == bool
        assert floor.shape == (80, 22)
        assert clip.fps == FPS and clip.activity == activity
        assert clip.safety == ("unsafe" if activity.startswith("fall_") else "safe")
        assert isinstance(clip.caption, str) and len(clip.caption.split()) >= 4


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_bone_lengths_are_constant(activity):
    for clip, _ in clips(activity):
        lengths = sk.bone_lengths(clip.joints.astype(np.float64))
        assert np.abs(lengths - lengths[0]).max() <= 1e-4


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_body_height_within_the_randomised_range(activity):
    statures = [float(sk.estimate_stature_m(clip.joints[0].astype(np.float64))) for clip, _ in clips(activity)]
    assert min(statures) >= STATURE_RANGE_M[0] - 1e-3
    assert max(statures) <= STATURE_RANGE_M[1] + 1e-3
    assert max(statures) - min(statures) > 0.05  # actually randomised


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_feet_do_not_slide_or_float_while_in_contact(activity):
    for clip, floor in clips(activity):
        joints, contact = clip.joints.astype(np.float64), clip.foot_contact
        for column, joint in enumerate(sk.FOOT_JOINTS):
            both = contact[1:, column] & contact[:-1, column]
            step = np.linalg.norm(np.diff(joints[:, joint, [0, 2]], axis=0), axis=-1)
            assert np.all(step[both] <= 0.002), f"{sk.JOINT_NAMES[joint]} slides {step[both].max():.4f} m"
            height = joints[contact[:, column], joint, 1] - floor[contact[:, column], joint]
            assert np.all(height <= 0.05), f"{sk.JOINT_NAMES[joint]} floats {height.max():.3f} m"


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_contacts_are_enforced_where_expected(activity):
    fraction = np.mean([clip.foot_contact.any(axis=1).mean() for clip, _ in clips(activity)])
    if activity == "jumping" or activity == "running":
        assert 0.2 < fraction < 0.95  # flight phases
    elif activity.startswith("fall_"):
        assert fraction > 0.05
    elif activity == "lie_down":
        assert fraction > 0.7  # the legs may slide out straight at the end (no contact then)
    else:
        assert fraction > 0.95  # always at least one foot on the ground


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_nothing_goes_through_the_floor(activity):
    for clip, floor in clips(activity):
        assert np.all(clip.joints[..., 1] >= floor - 0.02)


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_motion_is_smooth(activity):
    for clip, _ in clips(activity):
        joints = clip.joints.astype(np.float64)
        speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * clip.fps
        assert speed.max() < 12.0  # m/s; nothing teleports between frames
        if activity in ("walking", "stairs_up", "stairs_down", "sit_down", "stand_up", "lie_down"):
            # No impacts in these: accelerations stay physiological everywhere above the feet.
            acceleration = np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1) * clip.fps**2
            assert acceleration[:, [sk.PELVIS, sk.HEAD]].max() < 15.0
            assert acceleration[:, [sk.LEFT_WRIST, sk.RIGHT_WRIST]].max() < 40.0


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_elbows_keep_some_flexion(activity):
    for clip, _ in clips(activity):
        j = clip.joints.astype(np.float64)
        for shoulder, elbow, wrist in ((16, 18, 20), (17, 19, 21)):
            upper, lower = j[:, elbow] - j[:, shoulder], j[:, wrist] - j[:, elbow]
            cosine = np.sum(upper * lower, -1) / np.linalg.norm(upper, axis=-1) / np.linalg.norm(lower, axis=-1)
            assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).min() >= 10.0


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_other_frame_rates_and_durations(activity):
    clip, floor = generate_clip_with_floor(activity, np.random.default_rng(5), duration_s=3.5, fps=30.0)
    assert clip.joints.shape == (105, 22, 3) and clip.fps == 30.0
    lengths = sk.bone_lengths(clip.joints.astype(np.float64))
    assert np.abs(lengths - lengths[0]).max() <= 1e-4
    assert np.all(clip.joints[..., 1] >= floor - 0.02)
    for column, joint in enumerate(sk.FOOT_JOINTS):
        both = clip.foot_contact[1:, column] & clip.foot_contact[:-1, column]
        step = np.linalg.norm(np.diff(clip.joints[:, joint, [0, 2]].astype(np.float64), axis=0), axis=-1)
        assert np.all(step[both] <= 0.002)
