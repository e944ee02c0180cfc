"""Real IMU recordings → fixed-length labelled windows, for testing (and calibrating) on real sensors.

Window placement:
    "centre"  one window per recording, the recording centred in it (edges held when it is shorter):
              whole-trial classification (UTD-MHAD); `UTDSkeletonSet` centres the virtual clips the same way.
    "event"   one window per recording, centred on its "fall" event when it has one, else on the peak of
              ‖acc‖ (where an impact-triggered fall detector would look): fall-vs-ADL per trial.
    "sliding" windows every `window·(1 − overlap)` samples.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.labels import FALL_CLASSES, SAFETY_LABELS
from datamodules.readers.base import IMURecording
from datamodules.readers.utd_mhad import pad_to_length

PLACEMENTS = ("centre", "event", "sliding")
LABEL_KEYS = ("activity", "label", "fall")
FALL_CLASS_NAMES = ("adl", "fall")
"""Class names of label_key="fall"."""


def class_of(recording: IMURecording, label_key: str) -> str:
    """The class name of a recording: its dataset activity, its shared label, or "fall"/"adl"."""
    if label_key == "activity":
        return recording.activity
    if label_key == "label":
        return recording.label
    if label_key == "fall":
        return FALL_CLASS_NAMES[int(recording.label in FALL_CLASSES)]
    raise ValueError(f"label_key must be one of {LABEL_KEYS}, got {label_key!r}")


def stratified_fraction(
    recordings: Sequence[IMURecording], fraction: float, *, label_key: str, seed: int
) -> list[IMURecording]:
    """A seeded subset with `fraction` of each class's recordings (at least one per class)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, recording in enumerate(recordings):
        by_class.setdefault(class_of(recording, label_key), []).append(i)
    chosen = []
    for indices in by_class.values():
        count = max(1, round(fraction * len(indices)))
        chosen.extend(rng.choice(indices, size=count, replace=False).tolist())
    return [recordings[i] for i in sorted(chosen)]


def _event_centre(recording: IMURecording) -> int:
    if "fall" in recording.events:
        start, end = recording.events["fall"]
        return round(0.5 * (start + end) * recording.fs)
    return int(np.argmax(np.linalg.norm(recording.acc, axis=1)))


def recording_windows(recording: IMURecording, window: int, placement: str, overlap: float = 0.5) -> np.ndarray:
    """`[N, window, 6]` windows of one recording."""
    imu = recording.imu
    if placement == "centre":
        return pad_to_length(imu, window)[None]
    if placement == "event":
        padded = np.concatenate((np.repeat(imu[:1], window, 0), imu, np.repeat(imu[-1:], window, 0)))
        centre = min(max(_event_centre(recording), 0), imu.shape[0] - 1)  # an interval may overrun the end
        start = centre + window - window // 2
        return padded[start : start + window][None]
    if placement == "sliding":
        stride = max(1, round(window * (1 - overlap)))
        if imu.shape[0] < window:
            return pad_to_length(imu, window)[None]
        starts = range(0, imu.shape[0] - window + 1, stride)
        return np.stack([imu[s : s + window] for s in starts])
    raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")


class RealWindowDataset(Dataset):
    """Labelled real windows; item → {"imu_raw": [W, 6] (m/s², rad/s), "label", "safety", "clip_index"}.

    Recordings whose class is not in `class_names` are left out (`dropped` counts them).
    """

    def __init__(
        self,
        recordings: Sequence[IMURecording],
        *,
        class_names: Sequence[str],
        label_key: str,
        window: int,
        placement: str,
        overlap: float = 0.5,
    ):
        self.class_names = tuple(class_names)
        windows, labels, safety, clip = [], [], [], []
        self.dropped = 0
        for index, recording in enumerate(recordings):
            name = class_of(recording, label_key)
            if name not in self.class_names:
                self.dropped += 1
                continue
            chunk = recording_windows(recording, window, placement, overlap)
            windows.append(chunk)
            labels += [self.class_names.index(name)] * len(chunk)
            safety += [SAFETY_LABELS.index(recording.safety)] * len(chunk)
            clip += [index] * len(chunk)
        if not windows:
            raise ValueError(f"no recording has a class among {self.class_names} (label_key={label_key!r})")
        self.imu = torch.from_numpy(np.concatenate(windows).astype(np.float32))
        self.labels = torch.tensor(labels)
        self.safety = torch.tensor(safety)
        self.clip_index = torch.tensor(clip)

    def __len__(self) -> int:
        return self.imu.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "imu_raw": self.imu[index],
            "label": self.labels[index],
            "safety": self.safety[index],
            "clip_index": self.clip_index[index],
        }
