"""Sim-to-real: train on virtual IMU simulated on the fly, test on a real dataset's recordings.

The virtual side is `VirtualIMUDataModule` unchanged (motion in the DataLoader, simulation on the
device). Real recordings become fixed-length windows (`RealWindowDataset`) for the test split and,
optionally, for training: `train_on="real"` trains on a seeded stratified `calibration_fraction` of
`real_train` (fine-tuning a synthetic checkpoint, or a real-only baseline). `quantile_mapping` maps the
virtual windows per channel onto the distribution of that real calibration fraction instead.

Both domains pass through the same preprocessing: an optional zero-phase low-pass at `imu_lowpass_hz`
(matching the bandwidth of a noisy motion source such as Kinect), the channel subset `channels`, and
z-normalisation with the statistics of the training domain.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader

from datamodules.motion_dataset import MotionSet
from datamodules.quantile_mapping import QuantileMap
from datamodules.readers.base import IMURecording, LoadReport
from datamodules.real_windows import RealWindowDataset, stratified_fraction
from datamodules.virtual_imu_datamodule import VirtualIMUDataModule
from virtual_imu.filters import lowpass
from virtual_imu.pipeline import WristIMUPipeline

TRAIN_DOMAINS = ("virtual", "real")


def _recordings(source: LoadReport | Sequence[IMURecording]) -> list[IMURecording]:
    return list(source.recordings if isinstance(source, LoadReport) else source)


class Sim2RealDataModule(VirtualIMUDataModule):
    """Virtual training data, real test data (see the module docstring).

    Args (beyond `VirtualIMUDataModule`'s; its `test_motion` is not needed):
        real_test: recordings (or a reader's `LoadReport`) to test on.
        real_train: real recordings for calibration / real-only training; None for pure synthetic.
        label_key: what a real recording's class is: "activity", "label" (shared class) or "fall".
        real_placement: window placement in real recordings ("centre", "event", "sliding").
        train_on: "virtual" or "real".
        calibration_fraction: fraction of `real_train` (stratified by class, seeded by `seed`) used.
        quantile_mapping: map virtual windows onto the calibration fraction's per-channel distribution.
        imu_lowpass_hz: zero-phase low-pass of both domains' IMU, or None.
        channels: indices into `IMU_CHANNELS` the model sees (e.g. [0, 1, 2] for acc only).
    """

    def __init__(
        self,
        *,
        train_motion: MotionSet,
        val_motion: MotionSet,
        pipeline: WristIMUPipeline,
        real_test: LoadReport | Sequence[IMURecording],
        real_train: LoadReport | Sequence[IMURecording] | None = None,
        label_key: str = "activity",
        real_placement: str = "centre",
        train_on: str = "virtual",
        calibration_fraction: float = 1.0,
        quantile_mapping: bool = False,
        imu_lowpass_hz: float | None = None,
        channels: Sequence[int] = (0, 1, 2, 3, 4, 5),
        window_s: float = 2.0,
        overlap: float = 0.5,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        normalization_clips: int = 256,
    ):
        super().__init__(
            train_motion=train_motion,
            val_motion=val_motion,
            test_motion=val_motion,
            pipeline=pipeline,
            window_s=window_s,
            overlap=overlap,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            normalization_clips=normalization_clips,
        )
        if train_on not in TRAIN_DOMAINS:
            raise ValueError(f"train_on must be one of {TRAIN_DOMAINS}, got {train_on!r}")
        if (train_on == "real" or quantile_mapping) and real_train is None:
            raise ValueError("train_on='real' and quantile_mapping need real_train recordings")
        if imu_lowpass_hz is not None and not 0 < imu_lowpass_hz < pipeline.target_hz / 2:
            raise ValueError(f"imu_lowpass_hz must lie in (0, {pipeline.target_hz / 2}), got {imu_lowpass_hz}")
        channels = tuple(int(c) for c in channels)
        if not channels or any(not 0 <= c < 6 for c in channels) or len(set(channels)) != len(channels):
            raise ValueError(f"channels must be distinct indices in 0..5, got {channels}")
        self.channels = channels
        # Recordings are data, not settings: kept out of the hyperparameters, so checkpoints stay small and
        # loadable with torch.load(weights_only=True) (`init_from`); `channels` is stored as the int tuple.
        self.save_hyperparameters(
            ignore=["train_motion", "val_motion", "pipeline", "real_test", "real_train"], logger=False
        )
        self.real_sources = {"test": _recordings(real_test)}
        if real_train is not None:
            self.real_sources["train"] = stratified_fraction(
                _recordings(real_train), calibration_fraction, label_key=label_key, seed=seed
            )
        self.real_datasets: dict[str, RealWindowDataset] = {}
        self.quantile_map: QuantileMap | None = None

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    def _preprocess(self, imu: torch.Tensor) -> torch.Tensor:
        """Low-pass and channel selection of `[..., W, 6]`, shared by both domains."""
        if self.hparams.imu_lowpass_hz is not None:
            imu = lowpass(imu, self.hparams.imu_lowpass_hz, self.pipeline.target_hz)
        return imu[..., list(self.channels)]

    def _windows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        windows = self._preprocess(super()._windows(batch))
        return self.quantile_map(windows) if self.quantile_map is not None else windows

    def setup(self, stage: str | None = None) -> None:
        if self.real_datasets:
            return
        for split, recordings in self.real_sources.items():
            self.real_datasets[split] = RealWindowDataset(
                recordings,
                class_names=self.class_names,
                label_key=self.hparams.label_key,
                window=self.window,
                placement=self.hparams.real_placement,
                overlap=self.hparams.overlap,
            )
        real_only = self.hparams.train_on == "real"
        if real_only and self.channel_mean is None:
            self._set_statistics(self._real_training_samples(), correction=1)
        if self.hparams.quantile_mapping:
            self.channel_mean = self.channel_std = None  # statistics of the mapped virtual data
        super().setup(stage)  # virtual datasets (validation; training when train_on="virtual")
        if real_only:
            counts = torch.bincount(self.real_datasets["train"].labels, minlength=self.num_classes)
            self.class_counts = counts

    def _real_training_samples(self) -> torch.Tensor:
        """`[N, C]` float64 preprocessed samples of the real calibration windows."""
        return self._preprocess(self.real_datasets["train"].imu).double().flatten(0, -2)

    def _estimate_normalization(self) -> None:
        if not self.hparams.quantile_mapping:
            return super()._estimate_normalization()
        # One simulation pass serves both the map and the statistics of the mapped virtual data.
        virtual = self._normalization_samples()
        self.quantile_map = QuantileMap(virtual, self._real_training_samples())
        self._set_statistics(self.quantile_map(virtual))

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        if "imu_raw" not in batch:
            return super().on_after_batch_transfer(batch, dataloader_idx)
        with torch.no_grad():
            windows = self.normalize(self._preprocess(batch["imu_raw"]))
        return {
            "imu": windows,
            "label": batch["label"],
            "safety": batch["safety"],
            "clip_index": batch["clip_index"],
        }

    def _real_loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.real_datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(self.hparams.seed),
        )

    def train_dataloader(self) -> DataLoader:
        if self.hparams.train_on == "real":
            return self._real_loader("train", shuffle=True)
        return super().train_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self._real_loader("test", shuffle=False)
