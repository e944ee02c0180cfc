"""Each activity does what its name says (end states, speeds, ballistic flight, stairs)."""

from functools import lru_cache

import numpy as np
import pytest

from motion import generate_clip, generate_clip_with_floor
from motion import skeleton as sk
from motion.procedural.gait import RUN_SPEED_RANGE_MPS, WALK_SPEED_RANGE_MPS
from motion.procedural.stairs import GOING_RANGE_M, RISE_RANGE_M

SEEDS = range(10)
GRAVITY = 9.81


@lru_cache(maxsize=None)
def joints_of(activity):
    return [generate_clip(activity, np.random.default_rng([77, seed])) for seed in SEEDS]


def _stature(clip):
    return float(sk.estimate_stature_m(clip.joints[0].astype(np.float64)))


@pytest.mark.parametrize("activity", ["fall_forward", "fall_backward", "fall_sideways"])
def test_falls_start_upright_and_end_lying(activity):
    for clip in joints_of(activity):
        pelvis, head = clip.joints[:, sk.PELVIS, 1], clip.joints[:, sk.HEAD, 1]
        assert pelvis[0] > 0.45 * _stature(clip)  # standing or walking before the fall
        assert pelvis[-1] < 0.35 and head[-1] < 0.5
        # The fall itself: from 80 % of the initial pelvis height to the floor within 1.5 s.
        start = np.argmax(pelvis < 0.8 * pelvis[0])
        down = np.argmax(pelvis < 0.4)
        assert 0 < down - start <= 1.5 * clip.fps
        assert np.max(-np.diff(pelvis)) * clip.fps > 1.5  # dropping fast, unlike lying down


def test_fall_directions():
    """The head lands in front of / behind / beside where the pelvis was when the fall began."""

    def travel(clip):
        j = clip.joints.astype(np.float64)
        pelvis = j[:, sk.PELVIS, 1]
        onset = int(np.argmax(pelvis < 0.9 * pelvis[0]))
        left = (j[onset, sk.LEFT_HIP] - j[onset, sk.RIGHT_HIP])[[0, 2]]
        left /= np.linalg.norm(left)
        forward = np.array([-left[1], left[0]])  # (x, z): left +x -> forward +z
        head = j[-1, sk.HEAD, [0, 2]] - j[onset, sk.PELVIS, [0, 2]]
        return float(head @ forward), float(head @ left)

    for clip in joints_of("fall_forward"):
        ahead, aside = travel(clip)
        assert ahead > 0.5 and abs(aside) < 0.5 * ahead
    for clip in joints_of("fall_backward"):
        ahead, aside = travel(clip)
        assert ahead < -0.5 and abs(aside) < 0.5 * abs(ahead)
    for clip in joints_of("fall_sideways"):
        ahead, aside = travel(clip)
        assert abs(aside) > 0.5 and abs(aside) > 2 * abs(ahead)


def test_sit_down_ends_on_a_chair_with_thighs_roughly_horizontal():
    for clip in joints_of("sit_down"):
        j = clip.joints[-1].astype(np.float64)
        assert clip.joints[0, sk.PELVIS, 1] > 0.8 * 0.915 * _stature(clip) / 1.70  # starts standing
        assert 0.38 <= j[sk.PELVIS, 1] <= 0.62
        for hip, knee in ((sk.LEFT_HIP, sk.LEFT_KNEE), (sk.RIGHT_HIP, sk.RIGHT_KNEE)):
            thigh = j[knee] - j[hip]
            assert np.degrees(np.arctan2(abs(thigh[1]), np.linalg.norm(thigh[[0, 2]]))) < 20.0


def test_stand_up_ends_upright():
    for clip in joints_of("stand_up"):
        assert clip.joints[0, sk.PELVIS, 1] < 0.62  # starts seated
        assert clip.joints[-1, sk.PELVIS, 1] > 0.8 * _stature(clip) / 1.70
        assert clip.joints[-1, sk.HEAD, 1] > 0.85 * _stature(clip)


def test_lie_down_is_slow_and_ends_on_the_back():
    for clip in joints_of("lie_down"):
        pelvis = clip.joints[:, sk.PELVIS, 1]
        assert pelvis[0] > 0.45 * _stature(clip)
        assert pelvis[-1] < 0.25 and clip.joints[-1, sk.HEAD, 1] < 0.4
        assert np.max(np.abs(np.diff(pelvis))) * clip.fps < 1.2  # controlled, no free fall
        # On the back: the chest faces up (spine forward axis ~ +y).
        j = clip.joints[-1].astype(np.float64)
        across = j[sk.LEFT_SHOULDER] - j[sk.RIGHT_SHOULDER]
        up_spine = j[sk.NECK] - j[sk.SPINE1]
        chest = np.cross(across, up_spine)  # left × up = forward of the trunk
        assert chest[1] / np.linalg.norm(chest) > 0.7


def test_jumping_flight_is_ballistic():
    for clip in joints_of("jumping"):
        airborne = ~clip.foot_contact.any(axis=1)
        triples = airborne[:-2] & airborne[1:-1] & airborne[2:]
        assert triples.sum() >= 3
        pelvis = clip.joints[:, sk.PELVIS, 1].astype(np.float64)
        acceleration = np.diff(pelvis, 2) * clip.fps**2
        np.testing.assert_allclose(acceleration[triples], -GRAVITY, atol=0.5)
        assert np.all(clip.joints[airborne][:, list(sk.FOOT_JOINTS), 1].min(axis=1) > -1e-3)


@pytest.mark.parametrize("activity, speeds", [("walking", WALK_SPEED_RANGE_MPS), ("running", RUN_SPEED_RANGE_MPS)])
def test_gait_speed_within_the_configured_range(activity, speeds):
    for clip in joints_of(activity):
        pelvis = clip.joints[:, sk.PELVIS].astype(np.float64)
        speed = np.linalg.norm(pelvis[-1, [0, 2]] - pelvis[0, [0, 2]]) / ((len(pelvis) - 1) / clip.fps)
        assert speeds[0] - 0.03 <= speed <= speeds[1] + 0.03


def test_running_has_flight_and_walking_double_support():
    for clip in joints_of("running"):
        assert (~clip.foot_contact.any(axis=1)).mean() > 0.1
    for clip in joints_of("walking"):
        left = clip.foot_contact[:, :2].any(axis=1)
        right = clip.foot_contact[:, 2:].any(axis=1)
        assert (left | right).all() and (left & right).mean() > 0.08


def test_arm_swing_opposes_the_legs_in_walking():
    for clip in joints_of("walking"):
        j = clip.joints.astype(np.float64)
        forward = np.cross(j[:, sk.LEFT_HIP] - j[:, sk.RIGHT_HIP], [0.0, 1.0, 0.0])
        forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
        leg_lead = np.sum((j[:, sk.LEFT_ANKLE] - j[:, sk.RIGHT_ANKLE]) * forward, -1)
        arm_lead = np.sum((j[:, sk.LEFT_WRIST] - j[:, sk.RIGHT_WRIST]) * forward, -1)
        assert np.corrcoef(leg_lead, arm_lead)[0, 1] < -0.5


@pytest.mark.parametrize("activity, direction", [("stairs_up", 1), ("stairs_down", -1)])
def test_stairs_climb_one_tread_per_step(activity, direction):
    for seed in SEEDS:
        clip, floor = generate_clip_with_floor(activity, np.random.default_rng([78, seed]))
        pelvis = clip.joints[:, sk.PELVIS].astype(np.float64)
        climb = pelvis[-1, 1] - pelvis[0, 1]
        run = np.linalg.norm(pelvis[-1, [0, 2]] - pelvis[0, [0, 2]])
        slope = direction * climb / run
        assert RISE_RANGE_M[0] / GOING_RANGE_M[1] - 0.1 < slope < RISE_RANGE_M[1] / GOING_RANGE_M[0] + 0.1
        treads = np.unique(np.round(floor[clip.foot_contact[:, 1], sk.LEFT_FOOT], 4))
        steps = np.diff(treads)
        assert len(treads) >= 2 and np.all(steps > 2 * RISE_RANGE_M[0] - 1e-3)  # the left foot uses every other tread
        assert np.all(steps < 2 * RISE_RANGE_M[1] + 1e-3)
