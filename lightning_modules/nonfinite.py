"""Non-finite loss / gradient policy shared by the project's LightningModules.

"raise" stops with a FloatingPointError naming the global step, epoch and batch; "skip" drops the batch
(or its gradients) and counts it in `train/skipped_batches`. Every rank takes the same decision (one
collective per step), so DDP never hangs on a batch one rank skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning import LightningModule

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("raise", "skip")


class NonFiniteGuardedModule(LightningModule):
    """Base class: call `training_loss_is_finite(loss, batch_idx)` in `training_step` and return
    `handle_nonfinite_loss(loss, batch_idx)` when it is False; gradients are checked before every step.

    Args:
        nonfinite_loss: "raise" (FloatingPointError) or "skip" (drop the batch) when the training loss or
            the gradients are not finite.
    """

    def __init__(self, *, nonfinite_loss: str = "raise") -> None:
        super().__init__()
        if nonfinite_loss not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite_loss must be one of {NONFINITE_POLICIES}, got {nonfinite_loss!r}")
        self.nonfinite_loss = nonfinite_loss
        # Kept out of the state_dict (see on_save_checkpoint) so a skipped batch
        # does not show up as a "parameter change".
        self.skipped_batches = 0
        # Set when a batch was skipped under a multi-process strategy: the
        # gradients of the dummy loss must not reach the optimizer.
        self._drop_grads_before_step = False
        self._batch_idx: int | None = None

    def training_loss_is_finite(self, loss: torch.Tensor, batch_idx: int) -> bool:
        """True iff the loss is finite on every rank."""
        self._batch_idx = batch_idx  # for messages from on_before_optimizer_step
        # One collective per step so every rank takes the same branch: if ranks
        # disagreed, some would enter backward (and the DDP all-reduce) while
        # others would not, and training would hang.
        # (bool() syncs with the device once per step: the price of the policy.)
        return self._all_ranks(bool(torch.isfinite(loss)))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Logged here, after the optimizer step, so both skip paths (loss in
        # training_step, gradients in on_before_optimizer_step) are counted.
        # "max" because the counter is cumulative over the run.
        self.log("train/skipped_batches", float(self.skipped_batches), on_step=False, on_epoch=True, reduce_fx="max")

    def _all_ranks(self, flag: bool) -> bool:
        """True iff `flag` is True on every process (plain `flag` outside a Trainer)."""
        if self._trainer is None:
            return flag
        return bool(self.trainer.strategy.reduce_boolean_decision(flag, all=True))

    def _where(self, batch_idx: int | None = None) -> str:
        where = f"global step {self.global_step}, epoch {self.current_epoch}"
        return where if batch_idx is None else f"{where}, batch index {batch_idx}"

    def handle_nonfinite_loss(self, loss: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        what = (
            f"Non-finite training loss at {self._where(batch_idx)} "
            f"(loss on this rank: {loss.item()}; a non-finite loss on any rank counts)"
        )
        if self.nonfinite_loss == "raise":
            raise FloatingPointError(what + ". Set nonfinite_loss='skip' to drop such batches.")
        self.skipped_batches += 1
        log.warning("%s; skipping the batch (%d skipped so far).", what, self.skipped_batches)
        if self._trainer is None or self.trainer.world_size == 1:
            # Lightning skips backward and the optimizer step for a None output.
            return None
        # Lightning refuses a None output under multi-process strategies (DDP
        # expects every rank to run backward). Backpropagate an exact zero that
        # touches every trainable parameter instead, so the gradient all-reduce
        # completes, then drop those zero gradients before the optimizer step.
        self._drop_grads_before_step = True
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self._drop_grads_before_step:
            self._drop_grads_before_step = False
            if self.trainer.accumulate_grad_batches == 1:
                optimizer.zero_grad(set_to_none=True)
                return
            # With accumulation the dummy loss contributed exactly zero to the
            # accumulated gradient: keep the other micro-batches' gradients and
            # check them as usual.

        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            # fp16 AMP: inf/NaN gradients are the GradScaler's normal signal to
            # lower the loss scale; it already skips those steps itself.
            return

        grads = [p.grad for p in self.parameters() if p.grad is not None]
        local_finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        # Reduced across ranks because sharded strategies (FSDP) hold different
        # gradient shards per rank; under DDP it is merely redundant.
        if self._all_ranks(local_finite):
            return
        what = f"Non-finite gradients at {self._where(self._batch_idx)} (a non-finite gradient on any rank counts)"
        if self.nonfinite_loss == "raise":
            raise FloatingPointError(what + ". Set nonfinite_loss='skip' to drop such steps.")
        self.skipped_batches += 1
        log.warning("%s; dropping the gradients (%d skipped so far).", what, self.skipped_batches)
        # Limitation: the optimizer step itself still runs after this hook.
        # Grads set to None make torch's built-in optimizers skip the parameters
        # entirely, but optimizers that treat a missing grad as zero (or a
        # zero_grad(set_to_none=False)) still apply momentum and weight decay, and
        # LR schedulers / step counters advance. So "skip" guarantees only that
        # this batch's gradient causes no update, not that the step is a no-op.
        optimizer.zero_grad()


    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["skipped_batches"] = self.skipped_batches

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_batches = int(checkpoint.get("skipped_batches", 0))
