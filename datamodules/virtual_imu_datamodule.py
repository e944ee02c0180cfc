"""On-the-fly virtual IMU data: motion clips in the DataLoader, the simulator on the training device.

The DataLoader carries motion only. `on_after_batch_transfer` runs, batched on the device the batch
landed on: sensor placement → simulation → resampling to the sensor rate → noise → 2 s windows with
50 % overlap → per-channel normalisation with statistics of the training set. The batch that reaches
the LightningModule is
`{"imu": [N, W, 6], "label": [N], "safety": [N], "clip_index": [N]}` with N = clips × windows per clip.
"""

from __future__ import annotations

from typing import Sequence

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from datamodules.body_variation import BodyShapeVariation
from datamodules.loaders import SplitLoaders
from datamodules.motion_dataset import MotionClipDataset, MotionSet
from virtual_imu.pipeline import WristIMUPipeline, sliding_windows


class VirtualIMUDataModule(SplitLoaders, LightningDataModule):
    """Virtual wrist IMU windows simulated on the fly from motion sets.

    Args:
        train_motion, val_motion, test_motion: motion sets (e.g. `ProceduralMotionSet` with distinct seeds,
            so validation and test clips are held out). They share class names (`activities`).
        pipeline: the simulator pipeline (placement, rates, noise).
        window_s: window length in seconds; overlap: fraction of a window shared with the next one.
        batch_size: clips per batch (each clip yields several windows).
        seed: seed of the per-clip sensor-noise draws and of the training shuffle.
        normalization_clips: number of training clips the channel mean / std are estimated from.
        body_shapes: names from `motion.body_shapes.BODY_SHAPES`; each clip of every split is then worn by
            one of these bodies, drawn per clip (`datamodules.body_variation`). None: the motion's own body.
        reference_body: the body the motion's skeleton has (used with `body_shapes`).
    """

    def __init__(
        self,
        *,
        train_motion: MotionSet,
        val_motion: MotionSet,
        test_motion: MotionSet,
        pipeline: WristIMUPipeline,
        window_s: float = 2.0,
        overlap: float = 0.5,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        normalization_clips: int = 256,
        body_shapes: Sequence[str] | None = None,
        reference_body: str = "male_average",
    ):
        super().__init__()
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        for name, motion in (("val_motion", val_motion), ("test_motion", test_motion)):
            if tuple(motion.activities) != tuple(train_motion.activities):
                raise ValueError(f"{name}.activities {tuple(motion.activities)} differ from train_motion's")
        self.save_hyperparameters(ignore=["train_motion", "val_motion", "test_motion", "pipeline"], logger=False)
        self.motion = {"train": train_motion, "val": val_motion, "test": test_motion}
        if body_shapes is not None:
            body_shapes = [str(name) for name in body_shapes]  # a Hydra ListConfig → plain names
            self.hparams.body_shapes = body_shapes
            self.motion = {
                split: BodyShapeVariation(motion, shapes=body_shapes, reference=reference_body, seed=seed * 3 + k)
                for k, (split, motion) in enumerate(self.motion.items())
            }
        self.pipeline = pipeline
        self.class_names = tuple(train_motion.activities)
        self.window = round(window_s * pipeline.target_hz)
        self.stride = max(1, round(self.window * (1 - overlap)))
        self.datasets: dict[str, MotionClipDataset] = {}
        self.channel_mean: torch.Tensor | None = None
        self.channel_std: torch.Tensor | None = None
        self.class_counts: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def model_kwargs(self) -> dict:
        """What a classifier is built for (merged into the model config by `runtime`): its class names and
        the network's `num_classes` and `in_channels`."""
        return {
            "net": {"num_classes": self.num_classes, "in_channels": self.num_channels},
            "class_names": list(self.class_names),
        }

    @property
    def num_channels(self) -> int:
        """Channels of the windows the model sees (`IMU_CHANNELS`)."""
        return 6

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        frames = self.motion["train"][0].joints.shape[0]
        imu_length = self.pipeline.output_length(frames)
        if imu_length < self.window:
            raise ValueError(
                f"clips of {frames} frames give {imu_length} IMU samples, fewer than one window of {self.window}"
            )
        self.windows_per_clip = (imu_length - self.window) // self.stride + 1
        for split, motion in self.motion.items():
            # Distinct noise streams per split: clip i of val must not reuse clip i of train's noise.
            seed = self.hparams.seed * 3 + ("train", "val", "test").index(split)
            self.datasets[split] = MotionClipDataset(
                motion, class_names=self.class_names, imu_length=imu_length, noise_seed=seed, pipeline=self.pipeline
            )
        train = self.datasets["train"]
        labels = torch.tensor([train.label_of(i) for i in range(len(train))])
        self.class_counts = torch.bincount(labels, minlength=self.num_classes) * self.windows_per_clip
        if self.channel_mean is None:
            self._estimate_normalization()

    def _normalization_samples(self) -> torch.Tensor:
        """`[N, C]` float64 un-normalised window samples of the first `normalization_clips` training clips."""
        train = self.datasets["train"]
        count = min(self.hparams.normalization_clips, len(train))
        loader = DataLoader(torch.utils.data.Subset(train, range(count)), batch_size=64)
        with torch.no_grad():
            return torch.cat([self._windows(batch).double().flatten(0, -2) for batch in loader])

    def _set_statistics(self, samples: torch.Tensor, *, correction: int = 0) -> None:
        """Channel mean and std (Bessel `correction` 0: population) of `[N, C]` samples become the normalisation."""
        std = samples.std(dim=0, correction=correction).clamp_min(1e-6)
        self.channel_mean, self.channel_std = samples.mean(dim=0).float(), std.float()

    def _estimate_normalization(self) -> None:
        self._set_statistics(self._normalization_samples())

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        """Z-normalised `windows` `[..., C]` with the training statistics (on the windows' device)."""
        mean = self.channel_mean.to(windows.device, windows.dtype)
        std = self.channel_std.to(windows.device, windows.dtype)
        return (windows - mean) / std

    def _windows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Un-normalised windows `[B, N, W, 6]` of a motion batch."""
        imu = self.pipeline(batch["joints"], batch)
        return sliding_windows(imu, self.window, self.stride)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            windows = self.normalize(self._windows(batch))
        clips, per_clip = windows.shape[:2]
        return {
            "imu": windows.reshape(clips * per_clip, *windows.shape[2:]),
            "label": batch["label"].repeat_interleave(per_clip),
            "safety": batch["safety"].repeat_interleave(per_clip),
            "clip_index": batch["clip_index"].repeat_interleave(per_clip),
        }

    def state_dict(self) -> dict:
        return {"channel_mean": self.channel_mean, "channel_std": self.channel_std}

    def load_state_dict(self, state_dict: dict) -> None:
        self.channel_mean = state_dict["channel_mean"]
        self.channel_std = state_dict["channel_std"]
