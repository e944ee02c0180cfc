"""Labels read back from answers: every toy template states its own activity and safety."""

import pytest
import torch

from datamodules.instructions.answers import ACTIVITY_KEYWORDS, comparison_safety, parse_activity, parse_safety
from datamodules.instructions.toy_set import (
    ACTIVITY_TEXTS,
    causal_response,
    comparative_response,
    description_response,
)
from datamodules.labels import SHARED_CLASSES, safety_of

IMU = torch.tensor([[3.0, 4.0, 0.0, 0.0, 0.0, 1.0]])  # peaks 5 m/s², 1 rad/s


def test_every_shared_class_has_keywords():
    assert set(ACTIVITY_KEYWORDS) == set(SHARED_CLASSES)


@pytest.mark.parametrize("activity", sorted(ACTIVITY_TEXTS))
def test_templated_answers_parse_back_to_their_labels(activity):
    for answer in (description_response(activity, "", IMU), description_response(activity, "a caption", IMU),
                   causal_response(activity)):
        assert parse_activity(answer) == activity, answer
        assert parse_safety(answer) == safety_of(activity), answer
    for other in sorted(ACTIVITY_TEXTS):
        answer = comparative_response(activity, IMU, other, 2 * IMU)
        assert parse_activity(answer) == activity, answer  # the first clip is named first
        assert parse_safety(answer) == comparison_safety(activity, other), answer


@pytest.mark.parametrize(
    "text, activity",
    [
        ("The person is walking on stairs.", "stairs"),  # longest keyword at the earliest position
        ("Someone walking up the stairs, then running.", "stairs"),
        ("The person is walking. If the person were running instead, …", "walking"),
        ("She STUMBLES but catches herself.", "stumbling"),
        ("A man loses balance and falls.", "stumbling"),
        ("He walked in, then fell.", "walking"),
        ("Nothing recognisable here.", None),
        ("crawling", None),  # "crawl…" is no keyword, and no keyword hides inside a word
        ("", None),
    ],
)
def test_parse_activity_by_hand(text, activity):
    assert parse_activity(text) == activity


@pytest.mark.parametrize(
    "text, safety",
    [
        ("This is unsafe: a fall can injure the person.", "unsafe"),
        ("It is not safe to fight.", "unsafe"),
        ("A dangerous situation.", "unsafe"),
        ("Nothing in the clip suggests a safety risk.", "safe"),
        ("Neither clip suggests a safety risk.", "safe"),
        ("The person is safe.", "safe"),
    ],
)
def test_parse_safety_by_hand(text, safety):
    assert parse_safety(text) == safety


def test_bad_inputs():
    with pytest.raises(ValueError, match="text"):
        parse_activity(None)
    with pytest.raises(ValueError, match="text"):
        parse_safety(3)
    with pytest.raises(ValueError, match="activities"):
        comparison_safety()
    with pytest.raises(ValueError, match="shared class"):
        comparison_safety("walking", "juggling")
    assert comparison_safety("walking", "falling") == "unsafe" and comparison_safety("walking", "lying") == "safe"
