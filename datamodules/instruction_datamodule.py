"""LightningDataModule for instruction tuning of MHIA: (IMU, video, instruction, response) items in batches.

A batch (`collate_instructions`) is a list of B samples over C ≥ B clips: a comparative item brings its
second clip right after its own, so the model sees both (`MHIA.forward(clips_per_sample=...)`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning import LightningDataModule
from torch.utils.data import Dataset

from datamodules.instructions.answers import comparison_safety
from datamodules.instructions.schema import non_negative_int, positive_int
from datamodules.loaders import SplitLoaders

SPLITS = ("train", "val", "test")
_FRAME_KEYS = ("frames", "compared_frames")


class CachedItems(Dataset):
    """A deterministic map-style set with its items kept after the first access (frames stored as uint8).

    For sets whose items are costly to make and identical every epoch (`ToyMultimodalDataset` renders and
    simulates each item). Frames in [0, 1] that came from 8-bit images are stored as uint8, exactly, and
    returned as float32 again: a quarter of the memory.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._items: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        if index not in self._items:
            item = dict(self.dataset[index])
            for key in _FRAME_KEYS:
                if key in item:
                    item[key] = (item[key] * 255.0).round().to(torch.uint8)
            self._items[index] = item
        item = dict(self._items[index])
        for key in _FRAME_KEYS:
            if key in item:
                item[key] = item[key].float() / 255.0
        return item


def _stack(name: str, tensors: list[torch.Tensor], ids: list[str]) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"{name} of the items {ids} have different shapes {sorted(shapes)}; "
                         "this collate needs clips of one length and frame size")
    return torch.stack(tensors)


def collate_instructions(items: Sequence[dict]) -> dict:
    """Items of `ToyMultimodalDataset` (or any set with the same keys) → one batch.

    Returns a dict with
        imu `[C, T, 6]` (m/s², rad/s) and frames `[C, F, 3, H, W]` of the C clips, a comparative item's
        second clip right after its first; video_padding_mask: `[C, F]` bool, True for every frame of a
        clip whose item says `has_video` (`compared_has_video`) False, or None when all clips have video;
        clips_per_sample: B ints (1, or 2 for a comparison);
        ids, prompt_types, instructions, responses: B str each;
        activity: B shared classes (the first clip's); answer_safety: B "safe"/"unsafe", the verdict the
        answer should state (for a comparison: unsafe when either clip is).
    """
    if not items:
        raise ValueError("items must not be empty")
    ids = [item["id"] for item in items]
    imu, frames, has_video, clips_per_sample, answer_safety = [], [], [], [], []
    for item in items:
        imu.append(item["imu"])
        frames.append(item["frames"])
        has_video.append(item.get("has_video", True))
        if "compared_imu" in item:
            imu.append(item["compared_imu"])
            frames.append(item["compared_frames"])
            has_video.append(item.get("compared_has_video", True))
            answer_safety.append(comparison_safety(item["activity"], item["compared_activity"]))
        else:
            answer_safety.append(item["safety"])
        clips_per_sample.append(len(imu) - sum(clips_per_sample))
    frames = _stack("frames", frames, ids)
    # Clips without video (`has_video` False): every frame is padding, so they get no <video>.
    video_padding_mask = ~torch.tensor(has_video)[:, None].expand(frames.shape[:2]) if not all(has_video) else None
    return {
        "imu": _stack("imu", imu, ids),
        "frames": frames,
        "video_padding_mask": video_padding_mask,
        "clips_per_sample": clips_per_sample,
        "ids": ids,
        "prompt_types": [item["prompt_type"] for item in items],
        "instructions": [item["instruction"] for item in items],
        "responses": [item["response"] for item in items],
        "activity": [item["activity"] for item in items],
        "answer_safety": answer_safety,
    }


class InstructionDataModule(SplitLoaders, LightningDataModule):
    """Train/val/test instruction sets (e.g. three `ToyMultimodalDataset`s of different seeds), each kept in
    memory after its first pass (`CachedItems`), in seeded, DDP-sharded loaders of `collate_instructions`.

    Args:
        train_set, val_set, test_set: map-style sets of instruction items (see `collate_instructions`).
        batch_size: samples per batch (a comparison counts once but brings two clips).
        num_workers: DataLoader workers (each worker keeps its own cache; 0 for the toy set).
        seed: shuffling seed.
    """

    collate_fn = staticmethod(collate_instructions)

    def __init__(self, *, train_set: Dataset, val_set: Dataset, test_set: Dataset, batch_size: int = 8,
                 num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        positive_int("batch_size", batch_size)
        non_negative_int("num_workers", num_workers)
        non_negative_int("seed", seed)
        sets = {"train": train_set, "val": val_set, "test": test_set}
        for split, dataset in sets.items():
            if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__") or len(dataset) == 0:
                raise ValueError(f"{split}_set must be a non-empty map-style dataset, got {dataset!r}")
        self.save_hyperparameters(ignore=["train_set", "val_set", "test_set"], logger=False)
        self.datasets = {split: CachedItems(dataset) for split, dataset in sets.items()}

    def model_kwargs(self) -> dict:
        """Nothing: the model's vocabulary comes from its language model, not from the data."""
        return {}
