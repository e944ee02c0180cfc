"""LightningModule: train or fine-tune MDM with the acceleration loss (seed paper, eq. 2–6).

    L = L_simple + λ_pos·L_pos + λ_vel·L_vel + λ_foot·L_foot + λ_acc·L_acc

every term masked by the true clip length and normalised per sample like MDM's masked L2
(`networks.losses`), then averaged over the batch. L_vel and L_acc are first / second temporal
differences on the normalised features (`loss_space="features"`, as in the paper) or on joint positions
recovered from the un-normalised features (`loss_space="positions"`, differentiable `recover_from_ric`);
L_pos and L_foot (ground-truth foot contacts of joints 7, 10, 8, 11) always use positions.

Batch contract (`datamodules.text_motion.TextMotionDataModule`):
    motion   [B, 263, 1, T] normalised features, padded frames zero
    lengths  [B] long, valid frames per clip
    text     list of B captions
    contacts [B, T, 4] ground-truth foot contacts

The text encoder is frozen and not stored in checkpoints (it is rebuilt from the config); with
`ema_decay`, an exponential moving average of the network is kept, used for validation, testing and
sampling, and saved.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics import MeanMetric

from lightning_modules.nonfinite import NonFiniteGuardedModule
from motion.humanml3d import FEATURE_DIM, recover_from_ric
from networks.diffusion import GaussianDiffusion
from networks.losses import acceleration_loss, foot_contact_loss, frame_mask, masked_l2, position_loss, velocity_loss
from networks.mdm import MDM

LOSS_SPACES = ("features", "positions")
TERMS = ("simple", "pos", "vel", "foot", "acc")
STAGES = ("train", "val", "test")


def _as_mdm_layout(joints: torch.Tensor) -> torch.Tensor:
    """Joints `[B, T, J, 3]` → `[B, J·3, 1, T]`, the layout of the temporal losses."""
    return joints.flatten(2).transpose(1, 2).unsqueeze(2)


class MDMModule(NonFiniteGuardedModule):
    """Text-to-motion diffusion training with the seed paper's loss terms.

    Args:
        net: the MDM (`networks.mdm.MDM`, or `MDM.from_original_checkpoint(path)` to fine-tune).
        diffusion: the noise schedule (`networks.diffusion.GaussianDiffusion`); training draws t uniformly.
        text_encoder: frozen captions → the condition `net` expects (`networks.text_encoders`).
        optimizer: `functools.partial` of a torch optimizer (Hydra `_partial_: true`), completed with `params=`.
        lambda_pos, lambda_vel, lambda_foot, lambda_acc: weights of the terms (0 switches a term off).
        loss_space: "features" or "positions" for L_vel and L_acc.
        ema_decay: decay of the network's exponential moving average (MDM: 0.9999), or None.
        fps: frame rate of the motion (Hz), for L_foot's speeds.
        guidance_scale: classifier-free guidance scale s of `sample` (MDM: 2.5).
        nonfinite_loss: "raise" or "skip" (`lightning_modules.nonfinite`).
    """

    def __init__(
        self,
        *,
        net: MDM,
        diffusion: GaussianDiffusion,
        text_encoder: nn.Module,
        optimizer: functools.partial,
        lambda_pos: float = 0.0,
        lambda_vel: float = 0.0,
        lambda_foot: float = 0.0,
        lambda_acc: float = 1.0,
        loss_space: str = "features",
        ema_decay: float | None = 0.9999,
        fps: float = 20.0,
        guidance_scale: float = 2.5,
        nonfinite_loss: str = "raise",
    ) -> None:
        super().__init__(nonfinite_loss=nonfinite_loss)
        self.save_hyperparameters(ignore=["net", "diffusion", "text_encoder", "optimizer"], logger=False)
        if loss_space not in LOSS_SPACES:
            raise ValueError(f"loss_space must be one of {LOSS_SPACES}, got {loss_space!r}")
        self.weights = {"pos": lambda_pos, "vel": lambda_vel, "foot": lambda_foot, "acc": lambda_acc}
        for name, weight in self.weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
                raise ValueError(f"lambda_{name} must be a finite number ≥ 0, got {weight!r}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {ema_decay!r}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.net = net
        self.diffusion = diffusion
        self.text_encoder = text_encoder
        self.optimizer = optimizer
        self.loss_space = loss_space
        self.ema = None
        if ema_decay is not None:
            self.ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)
        # Feature statistics of the data the network is trained on: to recover joint positions. Set from
        # the datamodule in `setup` and saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))
        self.register_buffer("timestep_map", torch.as_tensor(diffusion.timestep_map, dtype=torch.long), persistent=False)
        # Keys "<stage>_terms": a ModuleDict key "train" would clash with nn.Module.train.
        self.metrics = nn.ModuleDict(
            {f"{stage}_terms": nn.ModuleDict({name: MeanMetric() for name in ("loss", *TERMS)}) for stage in STAGES}
        )

    # ------------------------------------------------------------------ setup

    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        if mean is not None and std is not None:
            self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    # The frozen text encoder is rebuilt from the config, not stored: checkpoints hold what was trained.
    def state_dict(self, *args, **kwargs) -> dict[str, Any]:
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "") + "text_encoder."
        return type(state)((key, value) for key, value in state.items() if not key.startswith(prefix))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        own = {f"text_encoder.{key}": value for key, value in self.text_encoder.state_dict().items()}
        return super().load_state_dict({**own, **state_dict}, strict=strict, assign=assign)

    # ------------------------------------------------------------------ steps

    @property
    def sampling_net(self) -> MDM:
        """The network used to evaluate and sample: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.net

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        """`[B, 263, 1, T]` normalised → un-normalised features `[B, T, 263]`."""
        return motion[:, :, 0].transpose(1, 2) * self.feature_std + self.feature_mean

    def joints(self, motion: torch.Tensor) -> torch.Tensor:
        """`[B, 263, 1, T]` normalised → joint positions `[B, T, 22, 3]` (m), differentiable."""
        return recover_from_ric(self.denormalize(motion))

    def loss_terms(
        self, batch: dict[str, Any], net: MDM, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-sample terms `[B]` at uniformly drawn diffusion steps, and their weighted sum under "loss"."""
        x0, lengths = batch["motion"], batch["lengths"]
        batch_size, frames = x0.shape[0], x0.shape[-1]
        t = torch.randint(0, self.diffusion.num_timesteps, (batch_size,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = self.diffusion.q_sample(x0, t, noise)
        prediction = net(x_t, self.timestep_map[t], self.text_encoder(batch["text"]), frame_mask=frame_mask(lengths, frames))

        terms = {"simple": masked_l2(x0, prediction, lengths)}
        uses_positions = self.loss_space == "positions" or self.weights["pos"] > 0 or self.weights["foot"] > 0
        if uses_positions:
            true_joints, predicted_joints = self.joints(x0), self.joints(prediction)
        target, predicted = (
            (_as_mdm_layout(true_joints), _as_mdm_layout(predicted_joints))
            if self.loss_space == "positions"
            else (x0, prediction)
        )
        terms["vel"] = velocity_loss(target, predicted, lengths)
        terms["acc"] = acceleration_loss(target, predicted, lengths)
        if uses_positions:
            terms["pos"] = position_loss(true_joints, predicted_joints, lengths)
            terms["foot"] = foot_contact_loss(predicted_joints, batch["contacts"], lengths, self.hparams.fps)
        terms["loss"] = terms["simple"] + sum(self.weights[name] * terms[name] for name in terms if name in self.weights)
        return terms

    def _log(self, stage: str, terms: dict[str, torch.Tensor]) -> None:
        metrics = self.metrics[f"{stage}_terms"]
        for name, values in terms.items():
            metrics[name].update(values.detach().mean(), weight=values.shape[0])
            key = f"{stage}/loss" if name == "loss" else f"{stage}/L_{name}"
            self.log(key, metrics[name], on_step=False, on_epoch=True, prog_bar=name in ("loss", "acc"))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        terms = self.loss_terms(batch, self.net)
        loss = terms["loss"].mean()
        if not self.training_loss_is_finite(loss, batch_idx):
            return self.handle_nonfinite_loss(loss, batch_idx)
        self._log("train", terms)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def _evaluate(self, stage: str, batch: dict[str, Any], batch_idx: int) -> None:
        # The same diffusion steps and noise for a batch at every evaluation: epochs compare like with like.
        generator = torch.Generator(device=batch["motion"].device).manual_seed(batch_idx)
        self._log(stage, self.loss_terms(batch, self.sampling_net, generator))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    # --------------------------------------------------------------- sampling

    @torch.no_grad()
    def sample(
        self,
        captions: Sequence[str],
        lengths: torch.Tensor,
        *,
        scale: float | None = None,
        ddim_steps: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        progress=None,
    ) -> torch.Tensor:
        """Normalised motions `[B, 263, 1, max(lengths)]` for `captions` with classifier-free guidance.

        Ancestral DDPM over every step of the schedule, or DDIM (η = 0) over `ddim_steps` of them. Frames past
        a clip's length are masked out of attention and zeroed. `generator`: one for the batch, or one per
        caption (a sample then does not depend on its batchmates); None: seed 0.
        """
        net = self.sampling_net.eval()
        lengths = torch.as_tensor(lengths, device=self.device)
        frames = int(lengths.max())
        mask = frame_mask(lengths, frames)
        # Nothing padded: the network's unmasked attention path gives the same result, faster.
        attention_mask = None if bool(mask.all()) else mask
        condition = self.text_encoder(list(captions))
        scale = self.hparams.guidance_scale if scale is None else scale

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return net.guided(x_t, t, condition, scale=scale, frame_mask=attention_mask)

        shape = (len(captions), FEATURE_DIM, 1, frames)
        generator = generator or torch.Generator(device=self.device).manual_seed(0)
        if ddim_steps is None:
            motion = self.diffusion.p_sample_loop(model_fn, shape, generator=generator, progress=progress)
        else:
            motion = self.diffusion.ddim_sample_loop(model_fn, shape, steps=ddim_steps, generator=generator, progress=progress)
        return motion * mask[:, None, None, :]

    # -------------------------------------------------------------- optimizer

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.net.parameters())
