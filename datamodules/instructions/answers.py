"""Labels read back from free-text answers: the activity and the safety verdict a (generated) response states.

Used to score generated answers against the clip's labels (activity accuracy, safety accuracy). The
rules match the templated toy responses exactly and common phrasings of a teacher model's answers:

- activity: the shared class of the earliest keyword in the text, the longest keyword winning at one
  position ("walking on stairs" is stairs, not walking). Answers state the clip's activity first and
  mention alternatives afterwards ("The person is walking … If the person were running instead …"), and
  a comparison names the first clip first. None when no keyword occurs.
- safety: "unsafe" when the text calls something unsafe, not safe, dangerous or hazardous, else "safe"
  (so "Nothing in the clip suggests a safety risk." is safe). For a comparison, "unsafe" means at least
  one of the clips is (`comparison_safety`).
"""

from __future__ import annotations

import re

from datamodules.labels import check_shared, safety_of

ACTIVITY_KEYWORDS = {
    "walking": ("walking", "walks", "walked", "walk"),
    "running": ("running", "runs", "ran", "jogging", "jogs"),
    "stairs": ("walking on stairs", "walking up stairs", "walking down stairs", "walking up the stairs",
               "walking down the stairs", "climbing stairs", "climbs stairs", "stairs", "staircase"),
    "sit_stand": ("sitting down or standing up", "sitting down", "sits down", "sat down", "standing up",
                  "stands up", "stood up", "sit-to-stand"),
    "lying": ("lying down", "lies down", "lay down", "lying"),
    "jumping": ("jumping", "jumps", "jumped"),
    "falling": ("falling", "falls", "fell"),
    "stumbling": ("stumbling", "stumbles", "stumbled", "losing balance", "loses balance", "lost balance",
                  "loss of balance"),
    "fighting": ("fighting", "fights", "punching", "punches", "shoving", "shoves"),
    "dragging": ("dragging", "drags", "dragged"),
    "fainting": ("fainting", "faints", "fainted"),
    "other": ("some other activity", "another activity", "other activity"),
}
"""Keywords per shared class."""

_KEYWORD_CLASS = {keyword: label for label, keywords in ACTIVITY_KEYWORDS.items() for keyword in keywords}
# Longest first: at one position, regex alternation takes the first alternative that matches.
_ACTIVITY_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(k) for k in sorted(_KEYWORD_CLASS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_UNSAFE_PATTERN = re.compile(r"\b(unsafe|not safe|dangerous|hazardous)\b", re.IGNORECASE)


def parse_activity(text: str) -> str | None:
    """The shared class the answer states first (module docstring), or None when it names none."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    match = _ACTIVITY_PATTERN.search(text)
    return None if match is None else _KEYWORD_CLASS[match.group(1).lower()]


def parse_safety(text: str) -> str:
    """"unsafe" when the answer calls something unsafe (module docstring), else "safe"."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return "unsafe" if _UNSAFE_PATTERN.search(text) else "safe"


def comparison_safety(*activities: str) -> str:
    """Safety label of an answer about several clips: "unsafe" when any of their activities is."""
    if not activities:
        raise ValueError("activities must name at least one shared class")
    return "unsafe" if any(safety_of(check_shared(a)) == "unsafe" for a in activities) else "safe"
