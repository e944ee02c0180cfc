"""On-the-fly virtual IMU from a frozen text-to-motion diffusion model (MDM) instead of a motion set.

The DataLoader carries prompts only: clip i of a split is of activity i mod K (the K activities of
`prompts`) with one of that activity's phrasings, its safety label, the pipeline's random draws and a
motion seed, all derived from (seed, split, i). `on_after_batch_transfer` then samples each clip's motion
with the frozen MDM (eval mode, no gradients) on the device the batch landed on, recovers its joints and
runs what `VirtualIMUDataModule` runs: simulation, 2 s windows, normalisation with training statistics.
The batch that reaches the LightningModule is the same
`{"imu": [N, W, 6], "label": [N], "safety": [N], "clip_index": [N]}`.

A clip's generator is seeded by its motion seed and, for training clips with `fresh_every_epoch`, the
trainer's epoch: every epoch trains on new motion, and (seed, epoch, clip) fixes a clip's windows whatever
its batch, worker or rank. Validation and test clips are the same at every epoch (so are training clips
without `fresh_every_epoch`: epoch 0's motion throughout).

The MDM lives in the datamodule and follows the batches' device: it is no part of the HAR model, its
parameters or its checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import hydra
import torch
import yaml
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from datamodules.labels import SHARED_CLASSES, safety_of
from datamodules.motion_dataset import item_seed
from datamodules.virtual_imu_datamodule import VirtualIMUDataModule
from lightning_modules.mdm_module import MDMModule
from motion.procedural.dataset import ACTIVITIES, SAFETY, SAFETY_LABELS
from virtual_imu.pipeline import WristIMUPipeline

SPLITS = ("train", "val", "test")


def load_mdm(run: str | Path, checkpoint: str | Path | None = None) -> MDMModule:
    """The MDM of a `train.py` run folder, frozen and in eval mode, on the CPU.

    Built from the run's `.hydra/config.yaml` (`model`), weights from `checkpoint` (default: the run's
    `checkpoints/last.ckpt`); the text encoder is rebuilt from the config, as `MDMModule` stores it nowhere.
    """
    run = Path(run)
    config_file = run / ".hydra" / "config.yaml"
    if not run.is_dir():
        raise ValueError(f"mdm_run {str(run)!r} is not a folder (a train.py run of an MDM)")
    if not config_file.is_file():
        raise ValueError(f"mdm_run {str(run)!r} has no .hydra/config.yaml (not a train.py run folder)")
    checkpoint = run / "checkpoints" / "last.ckpt" if checkpoint is None else Path(checkpoint)
    if not checkpoint.is_file():
        raise ValueError(f"mdm_ckpt {str(checkpoint)!r} is not a checkpoint file")
    model_config = OmegaConf.load(config_file).get("model")
    target = None if model_config is None else model_config.get("_target_")
    if target != f"{MDMModule.__module__}.{MDMModule.__qualname__}":
        raise ValueError(f"mdm_run {str(run)!r} did not train an MDMModule (its model is {target!r})")
    mdm = hydra.utils.instantiate(model_config, _convert_="all")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"mdm_ckpt {str(checkpoint)!r} is not a Lightning checkpoint (no state_dict)")
    mdm.load_state_dict(state["state_dict"])
    return mdm.eval().requires_grad_(False)


def activity_safety(activity: str) -> str:
    """"safe" or "unsafe" for a procedural activity (`motion.procedural.dataset.ACTIVITIES`) or a shared class."""
    if activity in SAFETY:
        return SAFETY[activity]
    if activity in SHARED_CLASSES:
        return safety_of(activity)
    raise ValueError(
        f"prompts: activity {activity!r} is neither a procedural activity {ACTIVITIES} "
        f"nor a shared class {SHARED_CLASSES}"
    )


def read_prompts(prompts: Mapping | str | Path) -> dict[str, tuple[str, ...]]:
    """Activity → phrasings, from a mapping or from a YAML file holding one.

    Either `{activity: [phrasing, …]}` or the layout of docs/prompts/activities.yaml,
    `{activities: {activity: {safety: safe | unsafe, prompts: [phrasing, …]}}}` (its safety is checked).
    """
    if isinstance(prompts, (str, Path)):
        if not Path(prompts).is_file():
            raise ValueError(f"prompts {str(prompts)!r} is neither a mapping nor a YAML file")
        prompts = yaml.safe_load(Path(prompts).read_text())
    if isinstance(prompts, Mapping) and list(prompts) == ["activities"]:
        prompts = prompts["activities"]
    if not isinstance(prompts, Mapping) or not prompts:
        raise ValueError(f"prompts must be a non-empty mapping activity → list of phrasings, got {prompts!r}")
    table = {}
    for activity, phrasings in prompts.items():
        safety = activity_safety(str(activity))
        if isinstance(phrasings, Mapping):
            if phrasings.get("safety", safety) != safety:
                raise ValueError(
                    f"prompts[{activity!r}] says safety {phrasings['safety']!r}, but {activity} is {safety}"
                )
            phrasings = phrasings.get("prompts")
        if (
            isinstance(phrasings, str)
            or not isinstance(phrasings, Sequence)
            or not phrasings
            or not all(isinstance(phrasing, str) and phrasing.strip() for phrasing in phrasings)
        ):
            raise ValueError(
                f"prompts[{activity!r}] must be a non-empty list of non-empty phrasings, got {phrasings!r}"
            )
        table[str(activity)] = tuple(phrasings)
    return table


class PromptedClipDataset(Dataset):
    """`num_clips` clips to generate, balanced over the activities of `prompts`: item i → dict of tensors.

    Clip i is of activity `activities[i mod K]` with one of its phrasings. Keys: `prompt_index` (into
    `captions`), `label` (index into `activities`), `safety` (0 safe, 1 unsafe), `clip_index`,
    `clip_seed` (int64, the seed of the clip's motion), `fresh` (bool: new motion every epoch) and the
    pipeline's random draws for the clip (`WristIMUPipeline.draw`). Everything comes from (seed, i).
    """

    def __init__(
        self,
        *,
        prompts: Mapping[str, Sequence[str]],
        num_clips: int,
        imu_length: int,
        seed: int,
        pipeline: WristIMUPipeline,
        fresh: bool,
    ):
        self.activities = tuple(prompts)
        self.captions = tuple(phrasing for phrasings in prompts.values() for phrasing in phrasings)
        counts = [len(phrasings) for phrasings in prompts.values()]
        self._phrasings = [(sum(counts[:k]), count) for k, count in enumerate(counts)]  # (first caption, count)
        self._safety = [SAFETY_LABELS.index(activity_safety(activity)) for activity in self.activities]
        self.num_clips = num_clips
        self.imu_length = imu_length
        self.seed = seed
        self.pipeline = pipeline
        self.fresh = fresh

    def __len__(self) -> int:
        return self.num_clips

    def label_of(self, index: int) -> int:
        return index % len(self.activities)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range for {self.num_clips} clips")
        seed = item_seed(self.seed, index)
        label = self.label_of(index)
        first, count = self._phrasings[label]
        return {
            "prompt_index": torch.tensor(first + item_seed(seed, 1) % count),
            "label": torch.tensor(label),
            "safety": torch.tensor(self._safety[label]),
            "clip_index": torch.tensor(index),
            "clip_seed": torch.tensor(item_seed(seed, 0)),
            "fresh": torch.tensor(self.fresh),
            **self.pipeline.draw(self.imu_length, torch.Generator().manual_seed(seed)),
        }


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")


class GeneratedMotionDataModule(VirtualIMUDataModule):
    """Virtual wrist IMU windows simulated on the fly from motion a frozen MDM samples from text prompts.

    Args:
        mdm_run: a `train.py` run folder of an MDM (`.hydra/config.yaml`, `checkpoints/last.ckpt`).
        mdm_ckpt: the checkpoint to load instead of the run's `last.ckpt`, or None.
        prompts: activity (class name: a procedural activity or a shared class) → phrasings, one drawn per
            clip; or the path of a YAML file holding that mapping. Class order is the mapping's.
        pipeline: the simulator pipeline; its `motion_fps` must be the MDM's frame rate, its `up_axis` y.
        clips_per_epoch, val_clips, test_clips: clips of each split (test_clips None: as many as val_clips).
        seconds: length of a generated clip (s).
        ddim_steps: DDIM (η = 0) steps of the sampler, or None for ancestral DDPM over the whole schedule.
        guidance_scale: classifier-free guidance scale, or None for the MDM's own.
        fresh_every_epoch: training clips get new motion every epoch (else epoch 0's, like val and test).
        window_s, overlap, batch_size (clips per batch), num_workers, seed: as `VirtualIMUDataModule`.
        normalization_clips: generated training clips (epoch 0) the channel mean / std are estimated from.
    """

    def __init__(
        self,
        *,
        mdm_run: str | Path,
        prompts: Mapping[str, Sequence[str]] | str | Path,
        pipeline: WristIMUPipeline,
        mdm_ckpt: str | Path | None = None,
        clips_per_epoch: int = 1100,
        val_clips: int = 220,
        test_clips: int | None = None,
        seconds: float = 4.0,
        ddim_steps: int | None = 50,
        guidance_scale: float | None = None,
        fresh_every_epoch: bool = True,
        window_s: float = 2.0,
        overlap: float = 0.5,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        normalization_clips: int = 64,
    ):
        table = read_prompts(prompts)
        test_clips = val_clips if test_clips is None else test_clips
        clips = {"train": clips_per_epoch, "val": val_clips, "test": test_clips}
        for name, count in zip(("clips_per_epoch", "val_clips", "test_clips"), clips.values()):
            _check_count(name, count, 1)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
            raise ValueError(f"seconds must be a positive number, got {seconds!r}")
        if ddim_steps is not None:
            _check_count("ddim_steps", ddim_steps, 2)
        if guidance_scale is not None and (
            isinstance(guidance_scale, bool)
            or not isinstance(guidance_scale, (int, float))
            or not 0 <= guidance_scale < math.inf
        ):
            raise ValueError(f"guidance_scale must be a finite number ≥ 0 or None, got {guidance_scale!r}")
        if not isinstance(fresh_every_epoch, bool):
            raise ValueError(f"fresh_every_epoch must be a bool, got {fresh_every_epoch!r}")
        mdm = load_mdm(mdm_run, mdm_ckpt)
        fps = float(mdm.hparams.fps)
        if not math.isclose(pipeline.motion_fps, fps):
            raise ValueError(f"pipeline.motion_fps {pipeline.motion_fps} must be the MDM's frame rate, {fps} fps")
        if pipeline.up_axis != "y":
            raise ValueError(f"pipeline.up_axis must be 'y' (the MDM's joints are y up), got {pipeline.up_axis!r}")
        if ddim_steps is not None and ddim_steps > mdm.diffusion.num_timesteps:
            raise ValueError(f"ddim_steps {ddim_steps} exceeds the MDM's {mdm.diffusion.num_timesteps} diffusion steps")
        frames = round(seconds * fps)
        imu_length = pipeline.output_length(frames)
        # As VirtualIMUDataModule: distinct streams per split, so val clip i does not repeat train clip i.
        sets = {
            split: PromptedClipDataset(
                prompts=table,
                num_clips=clips[split],
                imu_length=imu_length,
                seed=seed * 3 + k,
                pipeline=pipeline,
                fresh=fresh_every_epoch and split == "train",
            )
            for k, split in enumerate(SPLITS)
        }
        super().__init__(
            train_motion=sets["train"],
            val_motion=sets["val"],
            test_motion=sets["test"],
            pipeline=pipeline,
            window_s=window_s,
            overlap=overlap,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            normalization_clips=normalization_clips,
        )
        if imu_length < self.window:
            raise ValueError(f"seconds {seconds} give {imu_length} IMU samples, fewer than one window of {self.window}")
        # Plain values in the hyperparameters (checkpoints load with weights_only=True).
        self.hparams.update(
            prompts={activity: list(phrasings) for activity, phrasings in table.items()},
            mdm_run=str(mdm_run),
            mdm_ckpt=None if mdm_ckpt is None else str(mdm_ckpt),
            test_clips=test_clips,
        )
        self.mdm = mdm
        self.frames = frames
        self.captions = sets["train"].captions
        self.windows_per_clip = (imu_length - self.window) // self.stride + 1

    @property
    def current_epoch(self) -> int:
        """The trainer's epoch (0 without a trainer): training clips are sampled for it when fresh."""
        return self.trainer.current_epoch if self.trainer is not None else 0

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.datasets = dict(self.motion)
        train = self.datasets["train"]
        labels = torch.tensor([train.label_of(i) for i in range(len(train))])
        self.class_counts = torch.bincount(labels, minlength=self.num_classes) * self.windows_per_clip
        if self.channel_mean is None:
            self._estimate_normalization()

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], *, epoch: int) -> torch.Tensor:
        """Joint positions `[B, T, 22, 3]` (m, y up, T = seconds · fps) of `batch`'s clips, on the batch's device.

        Sampled on the trainer's device (the batch's without a trainer; the normalisation's CPU batches
        too are sampled there) in one batched loop, each clip with its own noise generator, so a clip's
        motion does not depend on its batchmates.
        """
        device = batch["clip_seed"].device
        sampling_device = self.trainer.strategy.root_device if self.trainer is not None else device
        if self.mdm.device != sampling_device:
            self.mdm.to(sampling_device)
        clips = list(zip(batch["prompt_index"].tolist(), batch["clip_seed"].tolist(), batch["fresh"].tolist()))
        generators = [
            torch.Generator(sampling_device).manual_seed(item_seed(seed, epoch if fresh else 0)) for _, seed, fresh in clips
        ]
        motion = self.mdm.sample(
            [self.captions[prompt] for prompt, _, _ in clips],
            torch.full((len(clips),), self.frames),
            scale=self.hparams.guidance_scale,
            ddim_steps=self.hparams.ddim_steps,
            generator=generators,
        )
        return self.mdm.joints(motion).to(device)

    def _windows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Un-normalised windows `[B, N, W, 6]` of the motion the MDM samples for `batch` at the current epoch."""
        return super()._windows({**batch, "joints": self.generate(batch, epoch=self.current_epoch)})
