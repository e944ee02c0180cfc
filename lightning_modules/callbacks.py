"""Callbacks: reproducible runs across interruptions, and a look at the data a run trains and tests on."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch
from lightning import Callback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.trace_figure import trace_figure

log = logging.getLogger(__name__)


class RNGStateCheckpoint(Callback):
    """Stores the Python, NumPy, torch (and CUDA) RNG states in checkpoints and restores them on resume.

    Lightning restores model, optimizer and loop state but not the random generators; without them a run
    resumed from `last.ckpt` draws different dropout masks than the uninterrupted run and ends elsewhere.
    Each rank keeps its own states (DDP ranks draw different dropout masks). The loaded states are applied
    in `on_train_start`, i.e. after the sanity-check validation of the resumed run, whose data loading
    draws from the global generator and which the uninterrupted run did not do at this point.
    """

    def __init__(self):
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        # Only tensors and Python primitives, so checkpoints load with torch.load(weights_only=True).
        _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
        numpy_state = {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}
        state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        state_dict, self._pending = self._pending, None
        random.setstate(state_dict["python"])
        numpy_state = state_dict["numpy"]
        np.random.set_state(
            ("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
             numpy_state["has_gauss"], numpy_state["cached_gaussian"])
        )
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class RealVsVirtualTraces(Callback):
    """At the start of fit, plots real vs virtual IMU traces of trials whose real recording and motion the
    datamodule both has (`Sim2RealDataModule.paired_trials`: UTD-MHAD's inertial and skeleton data).

    Each of `num_trials` trials becomes a `trace_figure` (acc and gyro, per axis and norm, with Pearson r),
    written to `{dirpath}/trace_{i}_{name}.png` and logged to every `WandbLogger` as an image under `key`.
    The traces depend on the data alone, not on the model, so they are drawn once per run. Only global
    rank 0 draws and logs (the other DDP ranks return at once; nothing here is a collective). A datamodule
    without `paired_trials`, or without any pair, gets one warning and no figure.

    Args:
        num_trials: how many trials, spread over the pairs the datamodule finds.
        dirpath: where the PNGs go; None: `{trainer.default_root_dir}/real_vs_virtual` (the run's output dir).
        key: the W&B image key.
    """

    def __init__(self, *, num_trials: int = 4, dirpath: str | Path | None = None, key: str = "data/real_vs_virtual"):
        if num_trials < 1:
            raise ValueError(f"num_trials must be ≥ 1, got {num_trials}")
        self.num_trials = num_trials
        self.dirpath = dirpath
        self.key = key
        self.written: list[Path] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or self.written:
            return
        paired_trials = getattr(trainer.datamodule, "paired_trials", None)
        pairs = paired_trials(self.num_trials) if paired_trials is not None else []
        if not pairs:
            log.warning(
                "RealVsVirtualTraces: the datamodule %s pairs no real recording with its motion; no trace figures",
                type(trainer.datamodule).__name__,
            )
            return
        folder = Path(self.dirpath if self.dirpath is not None else Path(trainer.default_root_dir) / "real_vs_virtual")
        folder.mkdir(parents=True, exist_ok=True)
        for i, pair in enumerate(pairs):
            filtered = f", low-passed at {pair.lowpass_hz:g} Hz" if pair.lowpass_hz is not None else ""
            title = f"{pair.name}: real vs noise-free virtual IMU, {pair.fs:g} Hz{filtered}"
            path = folder / f"trace_{i}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', pair.name)}.png"
            trace_figure(pair.real, pair.virtual, pair.fs, title).savefig(path, dpi=100)
            self.written.append(path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=self.key, images=[str(path) for path in self.written],
                                 caption=[pair.name for pair in pairs], step=trainer.global_step)
