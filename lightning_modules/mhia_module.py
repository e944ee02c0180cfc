"""LightningModule: instruction tuning of MHIA (IMU + video → LoRA LLaMA answers) and scoring its answers.

Training: the causal-LM loss on the response tokens (`MHIA.forward`). Validation and test: the same loss,
and greedy answers generated for every sample, scored against the clip's labels and the reference:
activity accuracy and safety accuracy of the labels parsed from the answer
(`datamodules.instructions.answers`), corpus BLEU-4 and ROUGE-L F1 against the reference response.
The test answers go to `<output_dir>/test_generations.jsonl` and, as a table, to every W&B logger.

Checkpoints hold the trainable weights only (LoRA adapters, IMU encoder unless frozen, GHI fusion,
projector; `MHIA.trainable_state_dict`): a LLaMA-3-8B base would add 16 GB per checkpoint. Loading one
(`ckpt_path`, `evaluate.py`, `init_from`) takes the frozen weights from the model as built, i.e. from the
same base LLM and video encoder weights.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.loggers import WandbLogger
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.text import BLEUScore, ROUGEScore

from datamodules.instructions.answers import parse_activity, parse_safety
from datamodules.instructions.schema import non_negative_int, positive_int
from lightning_modules.nonfinite import NonFiniteGuardedModule
from networks.mhia import MHIA

STAGES = ("train", "val", "test")
EVAL_STAGES = ("val", "test")
GENERATION_COLUMNS = ("id", "prompt_type", "instruction", "reference", "answer", "activity", "answer_activity",
                      "safety", "answer_safety")


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """LR factor at optimizer step `step`: linear warm-up from 1/(warmup_steps+1) to 1 over `warmup_steps`,
    then a cosine decay to 0 at `total_steps` (LLaVA's schedule)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _gather_objects(objects: list) -> list:
    """Every rank's list, concatenated in rank order (the list itself outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return objects
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, objects)
    return [obj for part in parts for obj in part]


class MHIAModule(NonFiniteGuardedModule):
    """Trains and evaluates an `MHIA` on batches of `datamodules.instruction_datamodule.collate_instructions`.

    Args:
        net: the MHIA model (its LLM frozen but for the LoRA adapters).
        optimizer: partial of a torch optimizer (Hydra `_partial_: true`), completed with the trainable
            parameters only (the frozen base LLM needs no optimizer state).
        warmup_ratio: fraction of the run's optimizer steps spent warming the LR up, then a cosine decay
            to 0 (`warmup_cosine`); None: constant LR.
        max_new_tokens: length limit of the generated answers (tokens).
        num_logged_examples: test answers logged to W&B as a table (all of them go to the JSONL file).
        nonfinite_loss: "raise" or "skip" (`lightning_modules.nonfinite`).
    """

    def __init__(self, *, net: MHIA, optimizer: functools.partial, warmup_ratio: float | None = 0.03,
                 max_new_tokens: int = 96, num_logged_examples: int = 32, nonfinite_loss: str = "raise") -> None:
        super().__init__(nonfinite_loss=nonfinite_loss)
        if not isinstance(net, MHIA):
            raise ValueError(f"net must be an MHIA, got {type(net).__name__}")
        if warmup_ratio is not None and (isinstance(warmup_ratio, bool) or not 0.0 <= warmup_ratio < 1.0):
            raise ValueError(f"warmup_ratio must be in [0, 1) or None, got {warmup_ratio!r}")
        positive_int("max_new_tokens", max_new_tokens)
        non_negative_int("num_logged_examples", num_logged_examples)
        self.save_hyperparameters(ignore=["net", "optimizer"], logger=False)
        self.net = net
        self.optimizer = optimizer
        self.metrics = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in STAGES})
        for stage in EVAL_STAGES:
            self.metrics[f"{stage}_activity_acc"] = MeanMetric()
            self.metrics[f"{stage}_safety_acc"] = MeanMetric()
            self.metrics[f"{stage}_bleu"] = BLEUScore(n_gram=4)
            self.metrics[f"{stage}_rouge"] = ROUGEScore(rouge_keys=("rougeL",))
        self._generations: list[dict] = []

    # ------------------------------------------------------------------ steps

    def _forward(self, batch: Mapping[str, Any]):
        return self.net(imu=batch["imu"], video=batch["frames"], instructions=batch["instructions"],
                        responses=batch["responses"], video_padding_mask=batch.get("video_padding_mask"),
                        clips_per_sample=batch["clips_per_sample"])

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss = self._forward(batch).loss
        if not self.training_loss_is_finite(loss, batch_idx):
            return self.handle_nonfinite_loss(loss, batch_idx)
        self.metrics["train_loss"].update(loss.detach(), weight=len(batch["instructions"]))
        self.log("train/loss", self.metrics["train_loss"], on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def generate(self, batch: Mapping[str, Any]) -> list[str]:
        """Greedy answers to the batch's instructions."""
        return self.net.generate(imu=batch["imu"], video=batch["frames"], instructions=batch["instructions"],
                                 max_new_tokens=self.hparams.max_new_tokens,
                                 video_padding_mask=batch.get("video_padding_mask"),
                                 clips_per_sample=batch["clips_per_sample"])

    def _evaluate(self, stage: str, batch: Mapping[str, Any]) -> None:
        size = len(batch["instructions"])
        self.metrics[f"{stage}_loss"].update(self._forward(batch).loss, weight=size)
        self.log(f"{stage}/loss", self.metrics[f"{stage}_loss"], on_step=False, on_epoch=True, prog_bar=True)
        answers = self.generate(batch)
        rows = [
            dict(id=id_, prompt_type=kind, instruction=instruction, reference=reference, answer=answer,
                 activity=activity, answer_activity=parse_activity(answer), safety=safety,
                 answer_safety=parse_safety(answer))
            for id_, kind, instruction, reference, answer, activity, safety in zip(
                batch["ids"], batch["prompt_types"], batch["instructions"], batch["responses"], answers,
                batch["activity"], batch["answer_safety"])
        ]
        device = self.device
        self.metrics[f"{stage}_activity_acc"].update(
            torch.tensor([float(r["answer_activity"] == r["activity"]) for r in rows], device=device))
        self.metrics[f"{stage}_safety_acc"].update(
            torch.tensor([float(r["answer_safety"] == r["safety"]) for r in rows], device=device))
        self.metrics[f"{stage}_bleu"].update(answers, [[reference] for reference in batch["responses"]])
        self.metrics[f"{stage}_rouge"].update(answers, list(batch["responses"]))
        if stage == "test":
            self._generations += rows

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _log_answer_scores(self, stage: str) -> None:
        for name in ("activity_acc", "safety_acc", "bleu"):
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{name}"].compute())
            self.metrics[f"{stage}_{name}"].reset()
        rouge = self.metrics[f"{stage}_rouge"]
        self.log(f"{stage}/rougeL", rouge.compute()["rougeL_fmeasure"])
        rouge.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_answer_scores("val")

    def on_test_epoch_start(self) -> None:
        self._generations = []

    def on_test_epoch_end(self) -> None:
        self._log_answer_scores("test")
        # One row per sample: the distributed sampler repeats samples to even out the ranks.
        rows = list({row["id"]: row for row in _gather_objects(self._generations)}.values())
        self._generations = []
        if not self.trainer.is_global_zero:
            return
        path = Path(self.trainer.default_root_dir) / "test_generations.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        shown = [[row[column] for column in GENERATION_COLUMNS] for row in rows[: self.hparams.num_logged_examples]]
        for logger in self.loggers:
            if isinstance(logger, WandbLogger) and shown:
                logger.log_table(key="test/generations", columns=list(GENERATION_COLUMNS), data=shown)

    # ------------------------------------------------------------- checkpoint

    def trainable_keys(self) -> set[str]:
        return {f"net.{key}" for key in self.net.trainable_keys()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        keys = self.trainable_keys()
        checkpoint["state_dict"] = {key: value for key, value in checkpoint["state_dict"].items() if key in keys}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load a checkpoint's trainable weights; the frozen ones stay as built (module docstring).

        Raises:
            ValueError (strict): a trainable weight is missing, or a key is not one of this model's.
        """
        own = super().state_dict()
        if strict:
            missing = sorted(self.trainable_keys() - state_dict.keys())
            unexpected = sorted(state_dict.keys() - own.keys())
            if missing or unexpected:
                raise ValueError(f"checkpoint state does not match this MHIA: missing trainable weights {missing}, "
                                 f"unexpected keys {unexpected}")
        return super().load_state_dict({**own, **state_dict}, strict=strict, assign=assign)

    # -------------------------------------------------------------- optimizer

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(params=[p for p in self.parameters() if p.requires_grad])
        if self.hparams.warmup_ratio is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        schedule = functools.partial(warmup_cosine, warmup_steps=int(self.hparams.warmup_ratio * total),
                                     total_steps=total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
