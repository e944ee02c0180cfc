"""Text–motion pairs for training a text-to-motion diffusion model (MDM: Tevet et al., ICLR 2023).

Two sources: a HumanML3D folder (`motion.humanml3d_dataset.HumanML3DDataset`: its 263-d features,
captions and Mean/Std files), or motion sets whose clips carry a caption — the procedural set
(`motion.procedural.ProceduralMotionSet`) is the embedded default that needs no download. Clips of a
motion set become HumanML3D features with `extract_features` (HumanML3D's floor / origin / facing
canonicalisation included, the clip's own bone lengths kept) and are normalised with the per-channel mean
and population standard deviation (floored at `min_std`) of the training split.

Both sources keep MDM's length rule: items of min_frames ≤ T ≤ max_source_frames feature frames (40 and
199), cropped to at most max_frames (196) at an offset drawn from (seed, item).

The DataLoader yields `pad_collate` batches of un-normalised features; `on_after_batch_transfer`
normalises them on the device and lays them out as MDM expects:
`{"motion": [B, 263, 1, T] normalised, "lengths": [B] long, "text": list[str], "activity": list[str],
"contacts": [B, T, 4] foot contacts (0/1) of joints 7, 10, 8, 11}`, every padded frame zero.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Subset

from datamodules.loaders import SplitLoaders
from datamodules.motion_dataset import MotionSet
from motion.humanml3d import FEATURE_DIM, FOOT_CONTACTS, extract_features
from motion.humanml3d_dataset import (
    MDM_MAX_FRAMES,
    MDM_MAX_SOURCE_FRAMES,
    MDM_MIN_FRAMES,
    HumanML3DDataset,
    _check_count,
    pad_collate,
)
from motion.skeleton import FPS

SPLITS = ("train", "val", "test")
UNKNOWN_ACTIVITY = "unknown"
"""`activity` of HumanML3D items, which have captions but no activity labels."""


class CaptionedMotionDataset(Dataset):
    """Clips of a motion set → un-normalised HumanML3D features with their caption.

    Item i: `features` `[T, 263]` float32 (T = frames − 1, cropped to `max_frames`), `length` (T),
    `text` (the clip's caption), `activity` (the clip's activity name).
    """

    def __init__(self, motion_set: MotionSet, *, name: str, min_frames: int, max_frames: int | None,
                 max_source_frames: int, seed: int):
        self.motion_set = motion_set
        self.name = name
        self.min_frames = min_frames
        self.max_frames = max_frames
        self.max_source_frames = max_source_frames
        self.seed = seed

    def __len__(self) -> int:
        return len(self.motion_set)

    def __getitem__(self, index: int) -> dict:
        clip = self.motion_set[index]
        where = f"{self.name} clip {index}"
        if not math.isclose(clip.fps, FPS):
            raise ValueError(f"{where} has {clip.fps} fps; HumanML3D features are defined at {FPS} fps")
        caption = getattr(clip, "caption", None)
        if not isinstance(caption, str) or not caption:
            raise ValueError(f"{where} has no caption (a text-motion pair needs one)")
        features = extract_features(np.asarray(clip.joints, dtype=np.float64))
        total = features.shape[0]
        if not self.min_frames <= total <= self.max_source_frames:
            raise ValueError(
                f"{where} gives {total} feature frames, outside MDM's [{self.min_frames}, {self.max_source_frames}]"
            )
        length = total if self.max_frames is None else min(total, self.max_frames)
        offset = int(np.random.default_rng([self.seed, index]).integers(total - length + 1))
        window = features[offset : offset + length].astype(np.float32)
        return {"features": torch.from_numpy(window), "length": length, "text": caption, "activity": clip.activity}


class HumanML3DTextMotion(Dataset):
    """`HumanML3DDataset` items (un-normalised) under the keys of `CaptionedMotionDataset`."""

    def __init__(self, dataset: HumanML3DDataset):
        if dataset.normalize:
            raise ValueError("dataset must be built with normalize=False (the DataModule normalises)")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"features": item["features"], "length": item["length"], "text": item["caption"],
                "activity": UNKNOWN_ACTIVITY}


class TextMotionDataModule(SplitLoaders, LightningDataModule):
    """Captioned motion in MDM's layout, from a HumanML3D folder or from captioned motion sets.

    Args:
        train_motion, val_motion, test_motion: motion sets whose clips have `joints` `[T, 22, 3]` (m, y up,
            HumanML3D joint order) at 20 fps, `caption` and `activity` (e.g. `ProceduralMotionSet`s with
            distinct seeds). Give all three, or `humanml3d_root` instead.
        humanml3d_root: a HumanML3D folder (`motion.humanml3d_dataset` describes the layout); its
            Mean.npy / Std.npy are the normalisation.
        batch_size: items per batch. num_workers: DataLoader worker processes.
        seed: seed of the crops, of HumanML3D's caption choice and of the training shuffle.
        normalization_clips: training clips of a motion set the mean / std are computed from (None: all).
        min_std: floor of the per-channel standard deviation (feature units: m, m/frame, rad/frame, 1).
        min_frames, max_frames, max_source_frames: MDM's length rule (see the module docstring).
    """

    collate_fn = staticmethod(pad_collate)  # padded batches of un-normalised features

    def __init__(
        self,
        *,
        train_motion: MotionSet | None = None,
        val_motion: MotionSet | None = None,
        test_motion: MotionSet | None = None,
        humanml3d_root: str | Path | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        normalization_clips: int | None = None,
        min_std: float = 1e-3,
        min_frames: int = MDM_MIN_FRAMES,
        max_frames: int | None = MDM_MAX_FRAMES,
        max_source_frames: int = MDM_MAX_SOURCE_FRAMES,
    ):
        super().__init__()
        motion = {"train": train_motion, "val": val_motion, "test": test_motion}
        given = [split for split, value in motion.items() if value is not None]
        if humanml3d_root is not None and given:
            raise ValueError("give either humanml3d_root or train_motion/val_motion/test_motion, not both")
        if humanml3d_root is None and len(given) != len(SPLITS):
            missing = [f"{split}_motion" for split in SPLITS if motion[split] is None]
            raise ValueError(f"{', '.join(missing)} missing: give all three motion sets, or humanml3d_root")
        if humanml3d_root is not None and not Path(humanml3d_root).is_dir():
            raise ValueError(f"humanml3d_root {humanml3d_root} is not a folder")
        _check_count("batch_size", batch_size, 1)
        _check_count("num_workers", num_workers, 0)
        _check_count("seed", seed, 0)
        if normalization_clips is not None:
            _check_count("normalization_clips", normalization_clips, 1)
        if isinstance(min_std, bool) or not isinstance(min_std, (int, float)) or not 0 < min_std < math.inf:
            raise ValueError(f"min_std must be a positive number, got {min_std!r}")
        _check_count("min_frames", min_frames, 2)
        _check_count("max_source_frames", max_source_frames, min_frames)
        if max_frames is not None:
            _check_count("max_frames", max_frames, min_frames)
        self.save_hyperparameters(ignore=["train_motion", "val_motion", "test_motion"], logger=False)
        self.motion = motion
        self.datasets: dict[str, Dataset] = {}
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    @property
    def feature_dim(self) -> int:
        return FEATURE_DIM

    def model_kwargs(self) -> dict:
        """Nothing to add to the model config: MDM's layout is fixed (its statistics reach it in `setup`)."""
        return {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        rule = dict(min_frames=self.hparams.min_frames, max_frames=self.hparams.max_frames,
                    max_source_frames=self.hparams.max_source_frames, seed=self.hparams.seed)
        root = self.hparams.humanml3d_root
        for split in SPLITS:
            if root is None:
                self.datasets[split] = CaptionedMotionDataset(self.motion[split], name=f"{split}_motion", **rule)
            else:
                self.datasets[split] = HumanML3DTextMotion(
                    HumanML3DDataset(root=root, split=split, normalize=False, **rule)
                )
        if self.mean is None:
            if root is None:
                self._estimate_normalization()
            else:
                train = self.datasets["train"].dataset
                self.mean, self.std = torch.from_numpy(train.mean), torch.from_numpy(train.std)

    def _estimate_normalization(self) -> None:
        """Per-channel mean and population std over every frame of the first training clips."""
        train = self.datasets["train"]
        count = min(self.hparams.normalization_clips or len(train), len(train))
        loader = DataLoader(Subset(train, range(count)), batch_size=None, num_workers=self.hparams.num_workers)
        frames = torch.cat([item["features"].double() for item in loader])
        self.mean = frames.mean(dim=0).float()
        self.std = frames.std(dim=0, correction=0).clamp_min(self.hparams.min_std).float()

    def _statistics(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            raise RuntimeError("no normalisation statistics yet: call setup() or load_state_dict() first")
        return self.mean.to(like.device, like.dtype), self.std.to(like.device, like.dtype)

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """Z-normalised `features` `[..., 263]` (un-normalised HumanML3D features) on their device."""
        mean, std = self._statistics(features)
        return (features - mean) / std

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        """MDM output `[B, 263, 1, T]` (normalised) → un-normalised features `[B, T, 263]` for `recover_from_ric`."""
        if not isinstance(motion, torch.Tensor) or motion.dim() != 4 or motion.shape[1:3] != (FEATURE_DIM, 1):
            shape = tuple(motion.shape) if isinstance(motion, torch.Tensor) else type(motion).__name__
            raise ValueError(f"motion must be a tensor [B, {FEATURE_DIM}, 1, T], got {shape}")
        features = motion[:, :, 0].transpose(1, 2)
        mean, std = self._statistics(features)
        return features * std + mean

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        features, mask = batch["features"], batch["mask"]
        real = mask[..., None].to(features.dtype)
        # Padding is zero in the normalised space too: MDM masks it, and zeros keep it inert if it does not.
        motion = self.normalize(features) * real
        return {
            "motion": motion.transpose(1, 2).unsqueeze(2),
            "lengths": batch["length"],
            "text": batch["text"],
            "activity": batch["activity"],
            "contacts": features[..., FOOT_CONTACTS] * real,
        }

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state_dict: dict) -> None:
        self.mean = state_dict["mean"]
        self.std = state_dict["std"]

