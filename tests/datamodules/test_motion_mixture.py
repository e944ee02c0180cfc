import numpy as np
import pytest

from datamodules.motion_mixture import SharedLabelMotionSet, shared_class
from motion.procedural import ACTIVITIES, ProceduralMotionSet
from motion.procedural.dataset import MotionClip


class ListSet:
    """A minimal motion set of shared-class clips (like `BVHClipSet`)."""

    def __init__(self, activities):
        self.clips = [
            MotionClip(np.zeros((80, 22, 3), np.float32), 20.0, a, "safe", a, np.zeros((80, 4), bool)) for a in activities
        ]
        self.activities = tuple(sorted(set(activities)))

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        return self.clips[index]


def test_shared_class_maps_procedural_names_and_passes_shared_ones():
    assert [shared_class(a) for a in ("stairs_up", "fall_sideways", "lie_down")] == ["stairs", "falling", "lying"]
    assert shared_class("stumbling") == "stumbling"
    with pytest.raises(ValueError, match="'skating'"):
        shared_class("skating")


def test_fall_labels_across_sources():
    procedural = ProceduralMotionSet(num_clips=22, seed=0)
    extra = ListSet(["stumbling", "falling", "fighting"])
    mixture = SharedLabelMotionSet(sources=[procedural, extra], label_key="fall", classes=["adl", "fall"])
    assert len(mixture) == 25 and mixture.activities == ("adl", "fall")
    expected = ["fall" if procedural.activity_of(i).startswith("fall") else "adl" for i in range(22)]
    expected += ["adl", "fall", "adl"]
    assert [mixture.activity_of(i) for i in range(25)] == expected
    assert [mixture[i].activity for i in range(22, 25)] == ["adl", "fall", "adl"]
    np.testing.assert_array_equal(mixture[3].joints, procedural[3].joints)


def test_class_subset_drops_other_clips_and_default_lists_present_classes():
    extra = ListSet(["walking", "fighting", "walking", "falling"])
    subset = SharedLabelMotionSet(sources=[extra], classes=["walking", "falling"])
    assert len(subset) == 3 and [subset.activity_of(i) for i in range(3)] == ["walking", "walking", "falling"]
    assert SharedLabelMotionSet(sources=[extra]).activities == ("falling", "fighting", "walking")
    for activity in ACTIVITIES:
        shared_class(activity)


def test_bad_arguments():
    extra = ListSet(["walking"])
    with pytest.raises(ValueError, match="label_key"):
        SharedLabelMotionSet(sources=[extra], label_key="activity")
    with pytest.raises(ValueError, match="sources"):
        SharedLabelMotionSet(sources=[])
    with pytest.raises(ValueError, match="no clip"):
        SharedLabelMotionSet(sources=[extra], classes=["running"])
