"""Glue between the Hydra config and Lightning objects, shared by `train.py` and `evaluate.py`."""

from __future__ import annotations

import json
import logging
import math
import netrc
import os
from pathlib import Path

import hydra
import torch
from lightning import Callback, LightningDataModule, LightningModule
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def wandb_offline() -> bool:
    """True unless W&B credentials exist (WANDB_API_KEY or a netrc entry); WANDB_MODE overrides."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)


def instantiate_data_and_model(cfg: DictConfig) -> tuple[LightningDataModule, LightningModule]:
    """The datamodule decides what the model is built for (`datamodule.model_kwargs()`: e.g. the classes
    and input channels of a classifier), merged into the model config.

    With `init_from` set, the model starts from that checkpoint's weights and the datamodule from its
    normalisation statistics (fine-tuning; unlike `ckpt_path`, the optimizer and epochs start fresh).
    """
    datamodule = hydra.utils.instantiate(cfg.data)
    # _convert_="all": plain lists/dicts in the hyperparameters, so checkpoints load with weights_only=True.
    model = hydra.utils.instantiate(cfg.model, **datamodule.model_kwargs(), _convert_="all")
    init_from = cfg.get("init_from")
    if init_from:
        if not Path(init_from).is_file():
            raise FileNotFoundError(f"init_from {init_from!r} is not a checkpoint file")
        checkpoint = torch.load(init_from, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["state_dict"])
        # The weights expect the inputs normalised as in their training run: keep that run's statistics.
        data_state = checkpoint.get(type(datamodule).__qualname__)
        if data_state is not None:
            datamodule.load_state_dict(data_state)
        log.info("model weights (and data normalisation: %s) initialised from %s", data_state is not None, init_from)
    return datamodule, model


def instantiate_group(group: DictConfig | None, kind: type) -> list:
    """Instantiate every `_target_` entry of a config group (callbacks, loggers); null entries are skipped."""
    objects = []
    for name, entry in (group or {}).items():
        if entry is None:
            continue
        if "_target_" not in entry:
            raise ValueError(f"config entry {name!r} has no _target_")
        obj = hydra.utils.instantiate(entry)
        if not isinstance(obj, kind):
            raise ValueError(f"config entry {name!r} built a {type(obj).__name__}, not a {kind.__name__}")
        objects.append(obj)
    return objects


def instantiate_callbacks(cfg: DictConfig) -> list[Callback]:
    return instantiate_group(cfg.get("callbacks"), Callback)


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    return instantiate_group(cfg.get("logger"), Logger)


def write_metrics(metrics: dict, output_dir: str | Path) -> Path:
    """Write `{name: float}` to `<output_dir>/metrics.json`, print them, and return the path."""
    values = {name: float(value) for name, value in metrics.items()}
    non_finite = [name for name, value in values.items() if not math.isfinite(value)]
    if non_finite:
        log.warning("non-finite metrics: %s", non_finite)
    path = Path(output_dir) / "metrics.json"
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    width = max((len(name) for name in values), default=0)
    print("\n".join(f"{name:<{width}}  {value:.4f}" for name, value in sorted(values.items())))
    print(f"metrics written to {path}")
    return path
