"""The public set: balance, determinism, validation, speed."""

import time
from collections import Counter

import numpy as np
import pytest

import motion
from motion import ACTIVITIES, MIN_DURATION_S, SAFETY, MotionClip, ProceduralMotionSet, generate_clip


def test_public_api_is_re_exported():
    import motion.procedural as procedural

    for name in ("ACTIVITIES", "SAFETY", "MotionClip", "ProceduralMotionSet", "generate_clip"):
        assert getattr(motion, name) is getattr(procedural, name)


def test_activity_and_safety_tables():
    assert ACTIVITIES == ("walking", "running", "stairs_up", "stairs_down", "sit_down", "stand_up", "lie_down",
                          "jumping", "fall_forward", "fall_backward", "fall_sideways")
    assert {a for a, s in SAFETY.items() if s == "unsafe"} == {"fall_forward", "fall_backward", "fall_sideways"}
    assert set(SAFETY) == set(ACTIVITIES) and set(SAFETY.values()) == {"safe", "unsafe"}


def test_labels_are_balanced():
    dataset = ProceduralMotionSet(num_clips=110, seed=3)
    counts = Counter(dataset.activity_of(i) for i in range(len(dataset)))
    assert counts == {activity: 10 for activity in ACTIVITIES}
    assert [dataset[i].activity for i in range(11)] == list(ACTIVITIES)
    subset = ProceduralMotionSet(num_clips=7, seed=3, activities=("walking", "fall_forward"))
    assert [subset.activity_of(i) for i in range(7)] == ["walking", "fall_forward"] * 3 + ["walking"]
    assert subset[1].safety == "unsafe" and subset[0].safety == "safe"


def test_items_are_deterministic_per_seed_and_index():
    first = ProceduralMotionSet(num_clips=30, seed=11)
    second = ProceduralMotionSet(num_clips=30, seed=11)
    order = [29, 3, 14]
    a = {i: first[i] for i in order}
    b = {i: second[i] for i in reversed(order)}  # other call order, fresh object
    for i in order:
        np.testing.assert_array_equal(a[i].joints, b[i].joints)
        np.testing.assert_array_equal(a[i].foot_contact, b[i].foot_contact)
        assert a[i].caption == b[i].caption
    np.testing.assert_array_equal(first[-1].joints, first[29].joints)
    # Different index (same activity) or different seed: different motion.
    assert not np.allclose(first[3].joints, first[14].joints)
    assert not np.allclose(first[3].joints, ProceduralMotionSet(num_clips=30, seed=12)[3].joints)


def test_index_errors():
    dataset = ProceduralMotionSet(num_clips=4, seed=0)
    with pytest.raises(IndexError):
        dataset[4]
    with pytest.raises(IndexError):
        dataset[-5]
    with pytest.raises(TypeError):
        dataset["1"]
    assert len(dataset) == 4 and len(list(iter(dataset))) == 4


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_clips=0, seed=0), "num_clips"),
    (dict(num_clips=-3, seed=0), "num_clips"),
    (dict(num_clips=2.5, seed=0), "num_clips"),
    (dict(num_clips=5, seed=-1), "seed"),
    (dict(num_clips=5, seed=0, duration_s=0.0), "duration_s"),
    (dict(num_clips=5, seed=0, duration_s=-1.0), "duration_s"),
    (dict(num_clips=5, seed=0, fps=0.0), "fps"),
    (dict(num_clips=5, seed=0, fps=-20.0), "fps"),
    (dict(num_clips=5, seed=0, activities=("walking", "swimming")), "activity"),
    (dict(num_clips=5, seed=0, activities=()), "activities"),
])
def test_set_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ProceduralMotionSet(**kwargs)


def test_generate_clip_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="activity"):
        generate_clip("swimming", rng)
    with pytest.raises(ValueError, match="duration_s"):
        generate_clip("walking", rng, duration_s=0.0)
    with pytest.raises(ValueError, match="fps"):
        generate_clip("walking", rng, fps=0.0)
    with pytest.raises(ValueError, match="rng"):
        generate_clip("walking", 3)


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_too_short_clips_name_the_minimum(activity):
    minimum = MIN_DURATION_S[activity]
    with pytest.raises(ValueError, match=rf"{activity}.*at least {minimum} s"):
        generate_clip(activity, np.random.default_rng(0), duration_s=0.99 * minimum)
    clip = generate_clip(activity, np.random.default_rng(0), duration_s=minimum)
    assert clip.joints.shape[0] == round(minimum * 20)
    with pytest.raises(ValueError, match="lie_down.*3.0 s"):
        ProceduralMotionSet(num_clips=5, seed=0, duration_s=2.5)


def test_motion_clip_validates_shapes():
    joints = np.zeros((10, 22, 3), np.float32)
    with pytest.raises(ValueError, match="foot_contact"):
        MotionClip(joints, 20.0, "walking", "safe", "x", np.zeros((10, 3), bool))
    with pytest.raises(ValueError, match="joints"):
        MotionClip(np.zeros((10, 21, 3)), 20.0, "walking", "safe", "x", np.zeros((10, 4), bool))
    with pytest.raises(ValueError, match="safety"):
        MotionClip(joints, 20.0, "walking", "maybe", "x", np.zeros((10, 4), bool))


def test_generation_is_fast_enough_for_an_on_the_fly_dataloader():
    dataset = ProceduralMotionSet(num_clips=110, seed=5)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    per_clip = (time.perf_counter() - start) / len(dataset)
    assert per_clip < 0.02  # s; 1000 clips well under 10 s even on a slow core (measured ~3 ms)
