"""LightningModule for window-level human-activity recognition.

Wraps any `net: [N, W, C] -> logits [N, K]` with class-weighted cross-entropy,
balanced-accuracy / macro-F1 metrics, confusion-matrix figures and a policy
for non-finite losses or gradients.

Batch contract (built on the device by the DataModule's `on_after_batch_transfer`):
    imu        FloatTensor [N, W, C]  normalised windows
    label      LongTensor  [N]        class index in [0, K)
    safety     LongTensor  [N]        0 safe / 1 unsafe (unused here)
    clip_index LongTensor  [N]        source clip (unused here)
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from lightning_modules.confusion_figure import confusion_matrix_figure
from lightning_modules.nonfinite import NonFiniteGuardedModule

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


def weights_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency class weights total / (K * count), normalised so a balanced set gets all ones.

    Classes with no training windows get weight 0 (they cannot be learned, and
    1/0 would poison the loss).

    Args:
        counts: [K] non-negative training-window counts.

    Returns:
        [K] float32 weights.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if counts.numel() == 0 or bool((counts < 0).any()):
        raise ValueError(f"counts must be a non-empty vector of non-negative counts, got {counts.tolist()}")
    total = counts.sum()
    k = counts.numel()
    weights = torch.where(counts > 0, total / (k * counts.clamp_min(1)), torch.zeros_like(counts))
    return weights.to(torch.float32)


class HARModule(NonFiniteGuardedModule):
    """Activity classifier.

    Args:
        net: network mapping [N, W, C] windows to [N, K] logits.
        optimizer: `functools.partial` of a torch optimizer (Hydra `_partial_: true`),
            completed with `params=`.
        scheduler: optional partial of a torch LR scheduler, completed with `optimizer=`;
            stepped per epoch on `val/loss`.
        class_names: K class names (fixes the number of classes).
        class_weights: K cross-entropy weights. None: derived in `setup` from the
            datamodule's `class_counts` if it has them, else uniform.
        nonfinite_loss: "raise" (FloatingPointError) or "skip" (drop the batch)
            when the training loss or the gradients are not finite.
    """

    def __init__(
        self,
        *,
        net: nn.Module,
        optimizer: functools.partial,
        scheduler: functools.partial | None = None,
        class_names: Sequence[str],
        class_weights: Sequence[float] | None = None,
        nonfinite_loss: str = "raise",
    ) -> None:
        super().__init__(nonfinite_loss=nonfinite_loss)
        # `net` is an nn.Module already stored in the checkpoint's state_dict; the optimizer and scheduler
        # partials would make checkpoints unloadable with torch.load(weights_only=True) (the default), and
        # the full Hydra config that built them is logged by train.py anyway.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.optimizer = optimizer
        self.scheduler = scheduler

        names = [str(n) for n in class_names]
        if len(names) < 2:
            raise ValueError(f"class_names must name at least 2 classes, got {names}")
        k = len(names)

        self.net = net
        self.class_names = names
        self.num_classes = k

        # Always a [K] buffer (uniform until told otherwise) so the state_dict
        # keys do not depend on whether weights were given or derived, and the
        # derived weights travel with the checkpoint and the device.
        self._weights_given = class_weights is not None
        if class_weights is not None:
            weights = torch.as_tensor(list(class_weights), dtype=torch.float32)
            if weights.shape != (k,):
                raise ValueError(f"class_weights must have {k} entries (one per class), got {weights.numel()}")
            if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
                raise ValueError(f"class_weights must be finite and non-negative, got {weights.tolist()}")
        else:
            weights = torch.ones(k)
        self.register_buffer("class_weights", weights)

        # Separate metric objects per stage: torchmetrics keeps state, and
        # sharing one object would mix train and val predictions.
        # (Attribute names avoid nn.Module.train, which a ModuleDict key "train" would shadow.)
        self.train_metrics = self._make_metrics(k)
        self.val_metrics = self._make_metrics(k)
        self.test_metrics = self._make_metrics(k)
        self.val_confmat = MulticlassConfusionMatrix(num_classes=k)
        self.test_confmat = MulticlassConfusionMatrix(num_classes=k)

    @staticmethod
    def _make_metrics(k: int) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "loss": MeanMetric(),
                # Macro-averaged recall == balanced accuracy.
                "balanced_acc": MulticlassAccuracy(num_classes=k, average="macro"),
                "macro_f1": MulticlassF1Score(num_classes=k, average="macro"),
                "acc": MulticlassAccuracy(num_classes=k, average="micro"),
            }
        )

    # ------------------------------------------------------------------ setup

    def setup(self, stage: str) -> None:
        if self._weights_given:
            return
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        counts = getattr(datamodule, "class_counts", None)
        if counts is None:
            return  # keep uniform weights
        counts = torch.as_tensor(counts).flatten()
        if counts.numel() != self.num_classes:
            raise ValueError(
                f"datamodule.class_counts has {counts.numel()} entries but class_names has {self.num_classes}"
            )
        empty = [self.class_names[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
        if empty:
            log.warning("Classes without training windows get loss weight 0: %s", empty)
        self.class_weights.copy_(weights_from_counts(counts).to(self.class_weights.device))

    # ---------------------------------------------------------------- forward

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        """imu [N, W, C] -> logits [N, K]."""
        return self.net(imu)

    def compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Class-weighted cross-entropy, sum_i w[y_i] * nll_i / sum_i w[y_i].

        This is `F.cross_entropy(weight=...)`'s definition, except that a batch
        whose targets all have weight 0 gives 0 instead of 0/0 = NaN (such a batch
        carries no signal; it must not trip the non-finite-loss policy).
        """
        weighted_nll = F.cross_entropy(logits, target, weight=self.class_weights, reduction="none")
        denominator = self.class_weights[target].sum()
        return weighted_nll.sum() / denominator.clamp_min(torch.finfo(weighted_nll.dtype).tiny)

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (loss [], logits [N, K], labels [N])."""
        labels = batch["label"]
        logits = self(batch["imu"])
        return self.compute_loss(logits, labels), logits, labels

    def _update_and_log(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        metrics: nn.ModuleDict = getattr(self, f"{stage}_metrics")
        n = labels.shape[0]
        preds = logits.argmax(dim=-1)
        metrics["loss"].update(loss.detach(), weight=n)
        for name in ("balanced_acc", "macro_f1", "acc"):
            metrics[name].update(preds, labels)
        # Logging the metric objects lets Lightning compute (and DDP-sync) them
        # once at epoch end and reset them afterwards.
        for name, metric in metrics.items():
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name in ("loss", "balanced_acc"))

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        loss, logits, labels = self.model_step(batch)
        if not self.training_loss_is_finite(loss, batch_idx):
            return self.handle_nonfinite_loss(loss, batch_idx)
        self._update_and_log("train", loss, logits, labels)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits, labels = self.model_step(batch)
        self._update_and_log("val", loss, logits, labels)
        self.val_confmat.update(logits.argmax(dim=-1), labels)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits, labels = self.model_step(batch)
        self._update_and_log("test", loss, logits, labels)
        self.test_confmat.update(logits.argmax(dim=-1), labels)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities [N, K]."""
        return torch.softmax(self(batch["imu"]), dim=-1)

    # ----------------------------------------------------- confusion matrices

    def on_validation_epoch_end(self) -> None:
        self._confusion_epoch_end("val", self.val_confmat)

    def on_test_epoch_end(self) -> None:
        self._confusion_epoch_end("test", self.test_confmat)

    def _confusion_epoch_end(self, stage: str, confmat: MulticlassConfusionMatrix) -> None:
        if self.trainer.sanity_checking:
            # Sanity batches must not leak into the first real epoch's matrix.
            confmat.reset()
            return
        # compute() and log_dir are collectives: every rank calls them.
        matrix = confmat.compute()
        confmat.reset()
        out_dir = self.trainer.log_dir or self.trainer.default_root_dir
        if not self.trainer.is_global_zero:
            return
        fig = confusion_matrix_figure(matrix, self.class_names, normalize=True)
        try:
            self._log_figure(f"{stage}/confusion_matrix", fig)
            os.makedirs(out_dir, exist_ok=True)
            fig.savefig(os.path.join(out_dir, f"confusion_matrix_{stage}_epoch{self.current_epoch}.png"))
        finally:
            # The figure was never registered with pyplot (see confusion_figure),
            # so clearing it is the whole of "closing" it: no global figure
            # registry to leak into over hundreds of epochs.
            fig.clear()

    def _log_figure(self, key: str, fig: Any) -> None:
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[fig], step=self.global_step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(key, fig, global_step=self.global_step, close=False)

    # -------------------------------------------------------------- optimizer

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": self.scheduler(optimizer=optimizer),
                "monitor": "val/loss",
                "interval": "epoch",
            },
        }
