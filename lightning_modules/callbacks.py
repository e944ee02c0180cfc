"""Callbacks that make runs reproducible across interruptions."""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning import Callback


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
