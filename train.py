"""Train (and evaluate) a model: `python train.py [group=option ...] [key=value ...]` (Hydra)."""

from __future__ import annotations

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from lightning_modules import runtime

runtime.register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model = runtime.instantiate_data_and_model(cfg)
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=runtime.instantiate_callbacks(cfg), logger=runtime.instantiate_loggers(cfg) or False
    )
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {name: value for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
    if cfg.test:
        # test_ckpt "best": the checkpoint with the best validation score; "last": the weights as trained.
        use_best = cfg.get("test_ckpt", "best") == "best" and trainer.checkpoint_callback and cfg.train
        best = trainer.checkpoint_callback.best_model_path if use_best else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({n: v for n, v in trainer.callback_metrics.items() if n.startswith("test/")})
    if trainer.is_global_zero:
        runtime.write_metrics(metrics, cfg.paths.output_dir)
    return float(metrics["val/balanced_acc"]) if "val/balanced_acc" in metrics else None


if __name__ == "__main__":
    main()
