"""Map-style dataset of motion clips for on-the-fly IMU simulation.

Items carry motion only (joints, labels) plus the unit-variance sensor-noise draws for that clip. Every
random number of item i comes from seeds derived from (seed, i), so an item is identical whichever
worker, rank or batch loads it — DDP sharding and reproducibility need nothing else.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from motion.procedural.dataset import SAFETY_LABELS
from virtual_imu.pipeline import TRAJECTORY_KEYS, WristIMUPipeline


class MotionSet(Protocol):
    """What a motion source provides: `activities` (class names) and clips with `joints`, `activity`, `safety`."""

    activities: Sequence[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int): ...


def item_seed(seed: int, index: int) -> int:
    """A 63-bit seed for item `index` of a set seeded by `seed` (independent streams via SeedSequence)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class MotionClipDataset(Dataset):
    """Wraps a motion set; item i → dict of tensors.

    Keys: `joints` `[T, J, 3]` float32 (m), `label` (index into `class_names`), `safety` (0 safe, 1 unsafe),
    `clip_index`, and the pipeline's random draws for the clip (`WristIMUPipeline.draw`: sensor errors,
    mounting jitter, placement randomisation) and, for clips worn by a drawn body, `body_girth_scale`.
    A clip that carries its own sensor trajectory (e.g. on the SMPL surface, `motion.amass_clips`) adds
    `trajectory_positions` `[T, 3]` and `trajectory_orientations` `[T, 4]` float32, which the pipeline then
    simulates instead of its joint-based placement.
    """

    def __init__(
        self,
        motion_set: MotionSet,
        *,
        class_names: Sequence[str],
        imu_length: int,
        noise_seed: int,
        pipeline: WristIMUPipeline,
    ):
        self.motion_set = motion_set
        self.class_names = tuple(class_names)
        self.imu_length = imu_length
        self.noise_seed = noise_seed
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.motion_set)

    def label_of(self, index: int) -> int:
        activity_of = getattr(self.motion_set, "activity_of", None)
        activity = activity_of(index) if activity_of else self.motion_set[index].activity
        return self.class_names.index(activity)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip = self.motion_set[index]
        if clip.activity not in self.class_names:
            raise ValueError(f"clip {index} has activity {clip.activity!r}, not one of class_names {self.class_names}")
        generator = torch.Generator().manual_seed(item_seed(self.noise_seed, index))
        item = {
            "joints": torch.as_tensor(np.asarray(clip.joints, dtype=np.float32)),
            "label": torch.tensor(self.class_names.index(clip.activity)),
            "safety": torch.tensor(SAFETY_LABELS.index(clip.safety)),
            "clip_index": torch.tensor(index),
            **self.pipeline.draw(self.imu_length, generator),
        }
        if hasattr(clip, "girth_scale"):  # a body-shape variation (datamodules.body_variation)
            item["body_girth_scale"] = torch.tensor(clip.girth_scale, dtype=torch.float32)
        for key in TRAJECTORY_KEYS:
            if hasattr(clip, key):
                item[key] = torch.as_tensor(np.asarray(getattr(clip, key), dtype=np.float32))
        return item
