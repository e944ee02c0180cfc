"""Evaluate a checkpoint on the test split: `python evaluate.py ckpt_path=PATH [overrides]` (Hydra).

Writes `metrics.json` in the run's output directory and prints the metrics.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from lightning_modules import runtime

runtime.register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> dict[str, float]:
    if not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path {cfg.ckpt_path!r} is not a checkpoint file")
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model = runtime.instantiate_data_and_model(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=runtime.instantiate_loggers(cfg) or False)
    trainer.test(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("test/")}
    if trainer.is_global_zero:
        runtime.write_metrics(metrics, cfg.paths.output_dir)
    return metrics


if __name__ == "__main__":
    main()
