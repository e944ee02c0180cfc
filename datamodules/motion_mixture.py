"""Several motion sources as one labelled set in the shared label space (e.g. procedural + CMU + Bandai).

Each source keeps its own activity names; they are mapped to the shared classes (`PROCEDURAL_TO_SHARED`
for the procedural set's names, identity for names that already are shared classes) and then to the
experiment's classes: the shared class itself (`label_key="label"`) or "adl" / "fall"
(`label_key="fall"`). Clips whose class is not in `classes` are left out.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from datamodules.labels import PROCEDURAL_TO_SHARED, SHARED_CLASSES, fall_label
from datamodules.motion_dataset import MotionSet
from datamodules.real_windows import FALL_CLASS_NAMES


def shared_class(activity: str) -> str:
    """The shared class of a motion source's activity name."""
    if activity in PROCEDURAL_TO_SHARED:
        return PROCEDURAL_TO_SHARED[activity]
    if activity in SHARED_CLASSES:
        return activity
    raise ValueError(f"activity {activity!r} is neither a procedural activity nor a shared class")


class SharedLabelMotionSet:
    """Concatenation of motion sets, relabelled (see the module docstring); a `MotionSet` itself.

    Args:
        sources: motion sets with `activities`, `__len__`, `__getitem__` (and optionally `activity_of`).
        label_key: "label" (shared classes) or "fall" ("adl" / "fall").
        classes: the class list, in index order; None: every class that occurs, sorted.
    """

    def __init__(self, *, sources: Sequence[MotionSet], label_key: str = "label", classes: Sequence[str] | None = None):
        if label_key not in ("label", "fall"):
            raise ValueError(f"label_key must be 'label' or 'fall', got {label_key!r}")
        if not sources:
            raise ValueError("sources must list at least one motion set")
        self.sources = list(sources)
        self.label_key = label_key
        self.index: list[tuple[int, int, str]] = []
        for s, source in enumerate(self.sources):
            activity_of = getattr(source, "activity_of", None)
            for i in range(len(source)):
                activity = activity_of(i) if activity_of else source[i].activity
                self.index.append((s, i, self._class(activity)))
        present = sorted({name for _, _, name in self.index})
        self.activities = tuple(classes) if classes is not None else tuple(present)
        self.index = [entry for entry in self.index if entry[2] in self.activities]
        if not self.index:
            raise ValueError(f"no clip of the sources has a class among {self.activities}")

    def _class(self, activity: str) -> str:
        shared = shared_class(activity)
        return FALL_CLASS_NAMES[fall_label(shared)] if self.label_key == "fall" else shared

    def __len__(self) -> int:
        return len(self.index)

    def activity_of(self, index: int) -> str:
        return self.index[index][2]

    def __getitem__(self, index: int):
        source, item, name = self.index[index]
        return dataclasses.replace(self.sources[source][item], activity=name)
