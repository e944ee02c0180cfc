"""The DataLoader every DataModule of the project builds: seeded, sharded, resumable."""

from __future__ import annotations

from typing import Callable

import torch
from lightning import Trainer
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def seeded_loader(
    dataset: Dataset,
    *,
    trainer: Trainer | None,
    train: bool,
    batch_size: int,
    num_workers: int,
    seed: int,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """A loader over `dataset` for this process's rank, shuffled (when `train`) as a function of (seed, epoch).

    Our own DistributedSampler, also for one process: Lightning leaves it in place and calls set_epoch, so
    the order depends on (seed, epoch) alone and a resumed run sees the same order. The loader draws its
    workers' base seed from its own generator, not from the global one, so loading never shifts the global
    stream (dropout): a resumed run stays on the same stream.
    """
    world_size = trainer.world_size if trainer is not None else 1
    rank = trainer.global_rank if trainer is not None else 0
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=train, seed=seed, drop_last=train and world_size > 1
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


class SplitLoaders:
    """Mixin for a LightningDataModule with `datasets[split]` and hparams `batch_size`, `num_workers`, `seed`:
    every split's loader is a `seeded_loader` (with the class's `collate_fn`, None: torch's default)."""

    collate_fn: Callable | None = None

    def _loader(self, split: str) -> DataLoader:
        return seeded_loader(
            self.datasets[split],
            trainer=self.trainer,
            train=split == "train",
            batch_size=self.hparams.batch_size,
            num_workers=self.hparams.num_workers,
            seed=self.hparams.seed,
            collate_fn=type(self).collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
