"""One label space for every dataset: shared activity classes plus a binary safety label.

Each reader maps its dataset's own activity codes onto `SHARED_CLASSES`; an experiment then picks the
subset it trains on with a `LabelSchema` (classes outside the subset fold into "other" or are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from motion.procedural.dataset import SAFETY_LABELS

SHARED_CLASSES = (
    "walking",
    "running",
    "stairs",
    "sit_stand",  # sitting down / standing up transitions
    "lying",  # lying down / getting up from lying
    "jumping",
    "falling",
    "stumbling",  # stumbling, losing balance without falling
    "fighting",  # fighting, punching, shoving
    "dragging",
    "fainting",
    "other",
)
UNSAFE_CLASSES = frozenset({"falling", "stumbling", "fighting", "dragging", "fainting"})
FALL_CLASSES = frozenset({"falling", "fainting"})
"""Classes counted as a fall in fall-vs-ADL detection (fainting ends on the floor too)."""

PROCEDURAL_TO_SHARED = {
    "walking": "walking",
    "running": "running",
    "stairs_up": "stairs",
    "stairs_down": "stairs",
    "sit_down": "sit_stand",
    "stand_up": "sit_stand",
    "lie_down": "lying",
    "jumping": "jumping",
    "fall_forward": "falling",
    "fall_backward": "falling",
    "fall_sideways": "falling",
}
"""The procedural motion set's activities (`motion.procedural.ACTIVITIES`) in the shared space."""


def check_shared(label: str) -> str:
    if label not in SHARED_CLASSES:
        raise ValueError(f"{label!r} is not a shared class; choose one of {SHARED_CLASSES}")
    return label


def safety_of(label: str) -> str:
    """"unsafe" for the unsafe shared classes, else "safe" (values of `SAFETY_LABELS`)."""
    return SAFETY_LABELS[int(check_shared(label) in UNSAFE_CLASSES)]


@dataclass(frozen=True)
class LabelSchema:
    """The class subset an experiment uses.

    Attributes:
        classes: shared classes to keep, in output-index order.
        unlisted: what happens to a shared class not in `classes`: "other" maps it to the class "other"
            (which must then be listed), "drop" removes the sample.
    """

    classes: tuple[str, ...] = SHARED_CLASSES
    unlisted: str = "drop"

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        for label in self.classes:
            check_shared(label)
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ValueError(f"classes must be a non-empty list without repeats, got {self.classes}")
        if self.unlisted not in ("other", "drop"):
            raise ValueError(f"unlisted must be 'other' or 'drop', got {self.unlisted!r}")
        if self.unlisted == "other" and "other" not in self.classes:
            raise ValueError("unlisted='other' needs 'other' among classes")

    def index(self, label: str) -> int | None:
        """Output index of shared class `label`, or None when the sample is dropped."""
        check_shared(label)
        if label in self.classes:
            return self.classes.index(label)
        return self.classes.index("other") if self.unlisted == "other" else None


def fall_label(label: str) -> int:
    """1 when shared class `label` is a fall (falling, fainting), else 0."""
    return int(check_shared(label) in FALL_CLASSES)
