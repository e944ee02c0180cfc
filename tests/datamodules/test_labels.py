import pytest

from datamodules.labels import (
    FALL_CLASSES,
    PROCEDURAL_TO_SHARED,
    SHARED_CLASSES,
    UNSAFE_CLASSES,
    LabelSchema,
    check_shared,
    fall_label,
    safety_of,
)
from motion.procedural import ACTIVITIES, SAFETY

# By hand: the five classes of harm to a person; everything else is safe.
EXPECTED_SAFETY = {
    "walking": "safe",
    "running": "safe",
    "stairs": "safe",
    "sit_stand": "safe",
    "lying": "safe",
    "jumping": "safe",
    "falling": "unsafe",
    "stumbling": "unsafe",
    "fighting": "unsafe",
    "dragging": "unsafe",
    "fainting": "unsafe",
    "other": "safe",
}


def test_shared_classes_are_distinct_and_the_special_sets_are_subsets():
    assert len(set(SHARED_CLASSES)) == len(SHARED_CLASSES) == 12
    assert UNSAFE_CLASSES <= set(SHARED_CLASSES)
    assert FALL_CLASSES == {"falling", "fainting"} and FALL_CLASSES <= UNSAFE_CLASSES


@pytest.mark.parametrize("label", SHARED_CLASSES)
def test_safety_of_every_shared_class(label):
    assert safety_of(label) == EXPECTED_SAFETY[label]


@pytest.mark.parametrize("label", SHARED_CLASSES)
def test_fall_label_is_one_exactly_for_falling_and_fainting(label):
    assert fall_label(label) == int(label in ("falling", "fainting"))


@pytest.mark.parametrize("function", [check_shared, safety_of, fall_label])
def test_unknown_class_is_rejected_with_its_name(function):
    with pytest.raises(ValueError, match="'falls' is not a shared class"):
        function("falls")


def test_procedural_to_shared_covers_every_procedural_activity_and_keeps_its_safety():
    assert set(PROCEDURAL_TO_SHARED) == set(ACTIVITIES)
    for activity, label in PROCEDURAL_TO_SHARED.items():
        check_shared(label)
        assert safety_of(label) == SAFETY[activity], activity
    # By hand: the groups the shared space merges.
    assert PROCEDURAL_TO_SHARED["stairs_up"] == PROCEDURAL_TO_SHARED["stairs_down"] == "stairs"
    assert PROCEDURAL_TO_SHARED["sit_down"] == PROCEDURAL_TO_SHARED["stand_up"] == "sit_stand"
    assert {PROCEDURAL_TO_SHARED[f"fall_{kind}"] for kind in ("forward", "backward", "sideways")} == {"falling"}


def test_default_schema_keeps_every_class_in_order():
    schema = LabelSchema()
    assert schema.classes == SHARED_CLASSES and schema.unlisted == "drop"
    assert [schema.index(label) for label in SHARED_CLASSES] == list(range(len(SHARED_CLASSES)))


def test_subset_with_unlisted_drop_returns_none_for_the_rest():
    schema = LabelSchema(classes=["falling", "walking"], unlisted="drop")
    assert schema.classes == ("falling", "walking")  # a list becomes a tuple, order kept
    assert schema.index("falling") == 0 and schema.index("walking") == 1
    assert schema.index("running") is None and schema.index("other") is None


def test_subset_with_unlisted_other_folds_the_rest_into_other():
    schema = LabelSchema(classes=("walking", "other", "falling"), unlisted="other")
    assert schema.index("walking") == 0 and schema.index("falling") == 2
    for label in ("running", "stairs", "fainting", "other"):
        assert schema.index(label) == 1, label


def test_schema_index_rejects_a_name_outside_the_shared_space():
    with pytest.raises(ValueError, match="'jogging' is not a shared class"):
        LabelSchema().index("jogging")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ()}, "classes must be a non-empty list"),
        ({"classes": ("walking", "walking")}, "classes must be a non-empty list without repeats"),
        ({"classes": ("walking", "jogging")}, "'jogging' is not a shared class"),
        ({"classes": ("walking",), "unlisted": "ignore"}, "unlisted must be 'other' or 'drop'"),
        ({"classes": ("walking", "falling"), "unlisted": "other"}, "unlisted='other' needs 'other' among classes"),
    ],
)
def test_bad_schemas_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LabelSchema(**kwargs)
