"""Sim-to-real: train on virtual IMU simulated on the fly, test on a real dataset's recordings.

The virtual side is `VirtualIMUDataModule` unchanged (motion in the DataLoader, simulation on the
device). Real recordings become fixed-length windows (`RealWindowDataset`) for the test split and,
optionally, for training: `train_on="real"` trains on a seeded stratified `calibration_fraction` of
`real_train` (fine-tuning a synthetic checkpoint, or a real-only baseline). `quantile_mapping` maps the
virtual windows per channel onto the distribution of that real calibration fraction instead.

Both domains pass through the same preprocessing: an optional zero-phase low-pass at `imu_lowpass_hz`
(matching the bandwidth of a noisy motion source such as Kinect), the channel subset `channels`, and
z-normalisation with the statistics of the training domain.

`paired_trials` pairs real recordings with the motion of the same trials when the motion set names its
clips after them (UTD-MHAD's skeleton and inertial recordings), for looking at real vs virtual traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.motion_dataset import MotionSet
from datamodules.quantile_mapping import QuantileMap
from datamodules.readers.base import IMURecording, LoadReport
from datamodules.real_windows import RealWindowDataset, recording_windows, stratified_fraction
from datamodules.virtual_imu_datamodule import VirtualIMUDataModule
from virtual_imu.filters import lowpass
from virtual_imu.pipeline import WristIMUPipeline

TRAIN_DOMAINS = ("virtual", "real")


def _recordings(source: LoadReport | Sequence[IMURecording]) -> list[IMURecording]:
    return list(source.recordings if isinstance(source, LoadReport) else source)


def trial_name(recording: IMURecording) -> str:
    """The recording's trial as `UTDSkeletonSet` ends its clips' captions: "s{subject}_t{trial}"."""
    return f"s{recording.subject}_t{recording.trial}"


@dataclass(frozen=True)
class PairedTrial:
    """One trial's real and noise-free virtual IMU, time-aligned (see `Sim2RealDataModule.paired_trials`).

    Attributes:
        name: the motion clip's caption, e.g. "UTD-MHAD draw_triangle s1_t1".
        real, virtual: `[T, 6]` float32 (acc m/s², gyro rad/s), same T.
        fs: their sampling rate, Hz.
        lowpass_hz: the low-pass both went through, or None.
    """

    name: str
    real: torch.Tensor
    virtual: torch.Tensor
    fs: float
    lowpass_hz: float | None


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

    def _lowpass(self, imu: torch.Tensor) -> torch.Tensor:
        """`imu_lowpass_hz` applied to `[..., T, 6]` (identity when None)."""
        if self.hparams.imu_lowpass_hz is None:
            return imu
        return lowpass(imu, self.hparams.imu_lowpass_hz, self.pipeline.target_hz)

    def _preprocess(self, imu: torch.Tensor) -> torch.Tensor:
        """Low-pass and channel selection of `[..., W, 6]`, shared by both domains."""
        return self._lowpass(imu)[..., list(self.channels)]

    def paired_trials(self, count: int | None = None) -> list[PairedTrial]:
        """Real recordings next to the noise-free simulation of the same trials' motion.

        A motion clip (of `val_motion`, then `train_motion`) is the motion of a real recording (of the
        calibration fraction of `real_train`, then `real_test`) when it has the recording's activity and
        its caption ends with the recording's `trial_name`. Each pair is built as the model sees the two
        domains, minus the sensor: the clip is simulated by `pipeline` without draws (ideal sensor, nominal
        placement with `mount_rotation`, no jitter), the recording is centred in as many samples
        (`placement="centre"`, as `UTDSkeletonSet` centres its clips), both are low-passed at
        `imu_lowpass_hz`, then trimmed to the recording's own span there (the held edges dropped). All six
        channels, before channel selection, quantile mapping and normalisation.

        Args:
            count: that many pairs, evenly spread over the matches in motion order; None: every match.

        Returns:
            The pairs, each trial once; an empty list when no clip matches a recording.
        """
        if count is not None and count < 1:
            raise ValueError(f"count must be ≥ 1 or None, got {count}")
        recordings: dict[tuple[str, str], IMURecording] = {}
        for split in ("train", "test"):
            for recording in self.real_sources.get(split, ()):
                recordings.setdefault((recording.activity, trial_name(recording)), recording)
        activities = {activity for activity, _ in recordings}
        matches: dict[tuple[str, str], tuple[MotionSet, int]] = {}
        for motion in (self.motion["val"], self.motion["train"]):
            activity_of = getattr(motion, "activity_of", None)
            for index in range(len(motion)):
                # Generating a clip can be costly (procedural motion): only clips of a real activity are.
                if activity_of is not None and activity_of(index) not in activities:
                    continue
                clip = motion[index]
                key = (clip.activity, clip.caption.rsplit(" ", 1)[-1])
                if key in recordings:
                    matches.setdefault(key, (motion, index))
        keys = list(matches)
        if not keys:
            return []
        if count is not None and len(keys) > count:
            keys = [keys[i] for i in np.unique(np.linspace(0, len(keys) - 1, count).round().astype(int))]
        fs = self.pipeline.target_hz
        for key in keys:
            if recordings[key].fs != fs:
                raise ValueError(
                    f"recording {recordings[key].source or key} has fs={recordings[key].fs} Hz, "
                    f"not the pipeline's target_hz={fs} Hz"
                )
        clips = [motion[index] for motion, index in (matches[key] for key in keys)]
        joints = torch.stack([torch.as_tensor(np.asarray(clip.joints, dtype=np.float32)) for clip in clips])
        with torch.no_grad():
            virtual = self._lowpass(self.pipeline(joints))  # [K, L, 6]
        length = virtual.shape[-2]
        real = torch.from_numpy(np.stack([recording_windows(recordings[key], length, "centre")[0] for key in keys]))
        real = self._lowpass(real.float())
        pairs = []
        for clip, key, real_one, virtual_one in zip(clips, keys, real, virtual):
            samples = recordings[key].acc.shape[0]
            start = max(0, (length - samples) // 2)  # where `pad_to_length` put the recording
            span = slice(start, start + min(samples, length))
            pairs.append(PairedTrial(clip.caption, real_one[span], virtual_one[span], fs, self.hparams.imu_lowpass_hz))
        return pairs

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
