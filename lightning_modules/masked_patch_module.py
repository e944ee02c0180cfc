"""LightningModule: masked-patch self-supervised pretraining of the IMU-Patchformer encoder (PatchTST's
self-supervised recipe, Nie et al., ICLR 2023, §3.2).

For each window, `mask_ratio` of its N patches (exactly `num_masked(N, mask_ratio)` per sample, drawn at
random) have their patch embedding replaced by a learned mask token; the encoder sees all N tokens and a
linear head predicts every patch's P·C RevIN-normalised values; the loss is the MSE over the masked patches
only.

Masked patches must not overlap visible ones: with stride < patch_len a masked patch's samples are inside its
neighbours, and reconstruction degenerates into copying. The pretraining config therefore sets
stride = patch_len (as PatchTST does for pretraining); fine-tuning must use the same encoder arguments.
With RevIN, the window's per-channel mean and std (masked samples included) still shape the normalised
visible patches: two numbers per channel, as in PatchTST.

Batch contract: the HAR batches (`batch["imu"]` [N, W, C]); labels are ignored.
The checkpoint holds the encoder under `encoder.` and its constructor arguments under
`networks.patchformer.CHECKPOINT_CONFIG_KEY`: `IMUPatchformerClassifier(pretrained=<ckpt>)` starts from it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric

from lightning_modules.nonfinite import NonFiniteGuardedModule
from networks.patchformer import CHECKPOINT_CONFIG_KEY, IMUPatchformer, IMUPatchformerClassifier

STAGES = ("train", "val", "test")


def num_masked(num_patches: int, mask_ratio: float) -> int:
    """Masked patches per sample: round(mask_ratio · N) (halves up), kept within [1, N − 1] so that every
    sample has something to reconstruct and something to see."""
    if num_patches < 2:
        raise ValueError(f"num_patches must be ≥ 2 (one patch cannot be both masked and visible), got {num_patches}")
    return min(num_patches - 1, max(1, int(mask_ratio * num_patches + 0.5)))


def random_patch_mask(
    batch_size: int, num_patches: int, mask_ratio: float, *, device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[B, N] bool, True = masked: `num_masked(N, mask_ratio)` patches per row, uniformly at random."""
    k = num_masked(num_patches, mask_ratio)
    # The k smallest of N uniform draws are a uniformly random k-subset.
    ranks = torch.rand(batch_size, num_patches, device=device, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks < k


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked patches of each patch's mean squared error.

    Args:
        prediction, target: [B, N, P·C].
        mask: [B, N] bool, True = masked (at least one).
    """
    per_patch = (prediction - target).pow(2).mean(dim=-1)  # [B, N]
    return per_patch[mask].mean()


class MaskedPatchModule(NonFiniteGuardedModule):
    """Masked-patch reconstruction pretraining.

    Args:
        net: the encoder to pretrain: an `IMUPatchformer`, or an `IMUPatchformerClassifier` whose encoder is
            taken (its head is dropped). The classifier form lets the pretraining config share the
            fine-tuning config's `net` block and the `in_channels` / `num_classes` the datamodule supplies.
        optimizer: `functools.partial` of a torch optimizer (Hydra `_partial_: true`), completed with `params=`.
        mask_ratio: fraction of the patches masked per sample, in (0, 1) (PatchTST: 0.4).
        class_names: ignored: the datamodule offers them to every model (`runtime.instantiate_data_and_model`);
            pretraining uses no labels.
        nonfinite_loss: "raise" or "skip" (`lightning_modules.nonfinite`).
    """

    def __init__(
        self,
        *,
        net: IMUPatchformer | IMUPatchformerClassifier,
        optimizer: functools.partial,
        mask_ratio: float = 0.4,
        class_names: Sequence[str] | None = None,
        nonfinite_loss: str = "raise",
    ) -> None:
        super().__init__(nonfinite_loss=nonfinite_loss)
        self.save_hyperparameters(ignore=["net", "optimizer", "class_names"], logger=False)
        if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)) or not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio!r}")
        encoder = net.encoder if isinstance(net, IMUPatchformerClassifier) else net
        if not isinstance(encoder, IMUPatchformer):
            raise ValueError(f"net must be an IMUPatchformer or IMUPatchformerClassifier, got {type(net).__name__}")
        self.encoder = encoder
        self.optimizer = optimizer
        self.mask_ratio = float(mask_ratio)
        self.mask_token = nn.Parameter(nn.init.trunc_normal_(torch.empty(encoder.d_model), std=0.02))
        self.head = nn.Linear(encoder.d_model, encoder.patch_len * encoder.in_channels)
        # Keys "<stage>_loss": a ModuleDict key "train" would clash with nn.Module.train.
        self.metrics = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in STAGES})

    # ---------------------------------------------------------------- forward

    def draw_mask(self, imu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """[B, N] bool patch mask for windows imu [B, T, C] (`random_patch_mask` at `mask_ratio`)."""
        num_patches = self.encoder.num_patches(imu.shape[1])
        return random_patch_mask(imu.shape[0], num_patches, self.mask_ratio, device=imu.device, generator=generator)

    def predict_patches(self, x_n: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalised x_n [B, T, C], mask [B, N] -> predicted normalised patches [B, N, P·C]."""
        embeddings = self.encoder.embed(x_n)
        embeddings = torch.where(mask[..., None], self.mask_token.to(embeddings.dtype), embeddings)
        tokens, _ = self.encoder.encode(embeddings)
        return self.head(tokens)

    def model_step(
        self, imu: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """imu [B, T, C] -> (loss [], prediction [B, N, P·C], target [B, N, P·C], mask [B, N])."""
        x_n, _, _ = self.encoder.normalize(imu)
        mask = self.draw_mask(imu, generator)
        prediction = self.predict_patches(x_n, mask)
        target = self.encoder.patchify(x_n)
        return masked_mse(prediction, target, mask), prediction, target, mask

    @torch.no_grad()
    def reconstruct(
        self, imu: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """imu [B, T, C] -> (reconstructed patches [B, N, P, C] in the units of imu, mask [B, N])."""
        x_n, mean, std = self.encoder.normalize(imu)
        mask = self.draw_mask(imu, generator)
        patches = self.predict_patches(x_n, mask).unflatten(-1, (self.encoder.patch_len, self.encoder.in_channels))
        return self.encoder.denormalize(patches, mean, std), mask

    # ------------------------------------------------------------------ steps

    def _log(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        metric = self.metrics[f"{stage}_loss"]
        metric.update(loss.detach(), weight=batch_size)
        self.log(f"{stage}/loss", metric, on_step=False, on_epoch=True, prog_bar=True)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        # Masks from the global RNG (seeded by `seed_everything`): new ones every epoch.
        loss, *_ = self.model_step(batch["imu"])
        if not self.training_loss_is_finite(loss, batch_idx):
            return self.handle_nonfinite_loss(loss, batch_idx)
        self._log("train", loss, batch["imu"].shape[0])
        return loss

    def _evaluate(self, stage: str, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # The same masks for a batch at every evaluation: epochs compare like with like.
        imu = batch["imu"]
        generator = torch.Generator(device=imu.device).manual_seed(batch_idx)
        loss, *_ = self.model_step(imu, generator)
        self._log(stage, loss, imu.shape[0])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    # ------------------------------------------------------------- checkpoint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[CHECKPOINT_CONFIG_KEY] = dict(self.encoder.config)

    # -------------------------------------------------------------- optimizer

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.parameters())
