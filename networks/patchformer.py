"""IMU-Patchformer: a patch transformer for windows of wrist IMU data, after PatchTST (Nie et al., ICLR 2023,
arXiv:2211.14730) with RevIN (Kim et al., ICLR 2022) and a channel-attention stage in front.

    x [B, T, C]                     acc xyz (m/s²), gyro xyz (rad/s), as the datamodule normalised them
      -> RevIN                      per sample and channel: (x − mean_T) / std_T · γ_c + β_c
      -> ChannelAttention           self-attention over the C channel tokens of each time step, residual
      -> patches [B, N, P·C]        P = patch_len steps every `stride` steps (end padded, see below)
      -> Linear(P·C, D) + learned positional embedding -> TransformerEncoder (pre-norm) -> LayerNorm
      -> tokens [B, N, D], pooled = mean over patches [B, D]

Patching: N = ceil((T − P) / S) + 1 patches. When (T − P) is not a multiple of S, the end is padded by
repeating the last sample (PatchTST's ReplicationPad1d) just far enough for the last patch to end at or
after T; PatchTST always pads by S, here nothing is padded when T fits. The padding is applied after
RevIN, so the statistics come from the real samples only.

`IMUPatchformerClassifier` puts a linear head on the pooled vector, for `HARModule`; with `pretrained`, its
encoder starts from a masked-patch pretraining checkpoint (`lightning_modules.masked_patch_module`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

CHECKPOINT_CONFIG_KEY = "encoder_config"
"""Checkpoint entry where `MaskedPatchModule` stores its encoder's `config`."""
CHECKPOINT_PREFIX = "encoder."
"""State-dict prefix of the encoder in a `MaskedPatchModule` checkpoint (its attribute `encoder`)."""
FREE_ARGUMENTS = ("dropout",)
"""Encoder arguments a fine-tuning run may change from the pretraining run's."""


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class RevIN(nn.Module):
    """Reversible instance normalisation: per sample and channel, over time, with a learnable affine.

    x_n = (x − mean) / std · weight + bias, std = sqrt(var + eps) (population variance). With the identity
    affine (the initial state), x_n does not change when a channel of x is scaled by a > 0 or offset.

    Args:
        num_channels: C.
        eps: added to the variance (keeps a constant channel finite).
    """

    def __init__(self, *, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        _positive_int("num_channels", num_channels)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, C] -> (x_n [B, T, C], mean [B, 1, C], std [B, 1, C])."""
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return (x - mean) / std * self.weight + self.bias, mean, std

    def denormalize(self, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Inverse of `forward` for values y [B, ..., C] in normalised units (e.g. reconstructed patches)."""
        shape = (y.shape[0],) + (1,) * (y.dim() - 2) + (y.shape[-1],)
        return (y - self.bias) / self.weight * std.reshape(shape) + mean.reshape(shape)


class ChannelAttention(nn.Module):
    """Self-attention across the C channels of each time step, added to the input: x [B, T, C] -> [B, T, C].

    Sample x[b, t, c] becomes the token x·w + b + e_c (e_c a learned channel embedding, so attention knows
    which sensor axis a token is); one head attends over the C tokens of the same time step; a linear
    read-out gives one value per channel. Time steps never interact here, so the module commutes with any
    permutation of the time steps (and with the end padding).

    Args:
        in_channels: C.
        dim: token width.
        dropout: attention dropout.
    """

    def __init__(self, *, in_channels: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.value = nn.Linear(1, dim)
        self.channel = nn.Parameter(nn.init.trunc_normal_(torch.empty(in_channels, dim), std=0.02))
        # One head: with six tokens, several heads of a few dimensions each would gain nothing.
        self.attention = nn.MultiheadAttention(dim, num_heads=1, dropout=dropout, batch_first=True)
        self.out = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        tokens = self.value(x.reshape(b * t, c, 1)) + self.channel  # [B·T, C, dim]
        mixed, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + self.out(mixed).reshape(b, t, c)


class IMUPatchformer(nn.Module):
    """Patch-transformer encoder for IMU windows.

    Args:
        in_channels: sensor channels C (6: acc xyz, gyro xyz).
        patch_len: samples per patch P.
        stride: samples between patch starts S (≤ patch_len, so no sample is skipped).
        d_model: token width D.
        num_layers: transformer encoder layers.
        num_heads: attention heads (must divide d_model).
        ff: feed-forward width of the transformer layers.
        dropout: dropout of the embeddings, attention and feed-forward layers.
        revin: per-instance normalisation in front (`RevIN`); False passes x through unchanged.
        max_patches: length of the learned positional embedding, i.e. the most patches a window may give.
        channel_dim: token width of the channel attention.
    """

    def __init__(
        self,
        *,
        in_channels: int = 6,
        patch_len: int = 32,
        stride: int = 16,
        d_model: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        ff: int = 256,
        dropout: float = 0.1,
        revin: bool = True,
        max_patches: int = 64,
        channel_dim: int = 16,
    ) -> None:
        super().__init__()
        # The constructor arguments: stored with pretraining checkpoints, compared when fine-tuning.
        self.config = dict(
            in_channels=in_channels, patch_len=patch_len, stride=stride, d_model=d_model, num_layers=num_layers,
            num_heads=num_heads, ff=ff, dropout=dropout, revin=revin, max_patches=max_patches,
            channel_dim=channel_dim,
        )
        for name in ("in_channels", "patch_len", "stride", "d_model", "num_layers", "num_heads", "ff",
                     "max_patches", "channel_dim"):
            _positive_int(name, self.config[name])
        if stride > patch_len:
            raise ValueError(f"stride must be ≤ patch_len ({patch_len}) so no sample is skipped, got {stride}")
        if d_model % num_heads:
            raise ValueError(f"num_heads must divide d_model ({d_model}), got {num_heads}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not isinstance(revin, bool):
            raise ValueError(f"revin must be a bool, got {revin!r}")

        self.in_channels = in_channels
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.max_patches = max_patches
        self.revin = RevIN(num_channels=in_channels) if revin else None
        self.channel_attention = ChannelAttention(in_channels=in_channels, dim=channel_dim, dropout=dropout)
        self.patch_embedding = nn.Linear(patch_len * in_channels, d_model)
        self.position = nn.Parameter(nn.init.trunc_normal_(torch.empty(max_patches, d_model), std=0.02))
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward=ff, dropout=dropout, activation="gelu", batch_first=True,
            norm_first=True,  # pre-norm: stable without warm-up; hence the final LayerNorm
        )
        self.transformer = nn.TransformerEncoder(
            layer, num_layers=num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )

    # --------------------------------------------------------------- patching

    def num_patches(self, length: int) -> int:
        """N = ceil((T − P) / S) + 1 patches from T ≥ P samples."""
        return -(-(length - self.patch_len) // self.stride) + 1

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, C] -> patches [B, N, P·C], each flattened time-major (P steps of C values).

        The end is padded by repeating x[:, -1] when T does not fit (see the module docstring).
        """
        length = x.shape[1]
        padding = (self.num_patches(length) - 1) * self.stride + self.patch_len - length
        if padding:
            x = torch.cat([x, x[:, -1:].expand(-1, padding, -1)], dim=1)
        return x.unfold(1, self.patch_len, self.stride).transpose(2, 3).flatten(2)  # [B, N, C, P] -> [B, N, P·C]

    # ----------------------------------------------------------------- stages

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Check x [B, T, C] and RevIN-normalise it: (x_n [B, T, C], mean [B, 1, C], std [B, 1, C]).

        Without RevIN, x_n is x, mean 0 and std 1.
        """
        if x.dim() != 3:
            raise ValueError(f"x must be 3-D [B, T, C], got shape {tuple(x.shape)}")
        b, t, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels (last dim), got shape {tuple(x.shape)}")
        if t < self.patch_len:
            raise ValueError(f"x must have at least patch_len={self.patch_len} time steps, got shape {tuple(x.shape)}")
        if self.num_patches(t) > self.max_patches:
            raise ValueError(
                f"x has {t} time steps, giving {self.num_patches(t)} patches, more than max_patches={self.max_patches}"
            )
        if self.revin is None:
            ones = x.new_ones(b, 1, c)
            return x, torch.zeros_like(ones), ones
        return self.revin(x)

    def denormalize(self, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Values y [B, ..., C] in normalised units back to input units (inverse of `normalize`)."""
        return y if self.revin is None else self.revin.denormalize(y, mean, std)

    def embed(self, x_n: torch.Tensor) -> torch.Tensor:
        """Normalised x_n [B, T, C] -> patch embeddings [B, N, D] (channel attention, patches, linear)."""
        return self.patch_embedding(self.patchify(self.channel_attention(x_n)))

    def encode(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch embeddings [B, N, D] -> (tokens [B, N, D], pooled [B, D]): positions, transformer, mean."""
        tokens = self.transformer(self.dropout(embeddings + self.position[: embeddings.shape[1]]))
        return tokens, tokens.mean(dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, C] with C == in_channels, T ≥ patch_len -> (tokens [B, N, D], pooled [B, D])."""
        x_n, _, _ = self.normalize(x)
        return self.encode(self.embed(x_n))


def load_pretrained_encoder(encoder: IMUPatchformer, path: str | Path) -> None:
    """Load the encoder weights of a `MaskedPatchModule` checkpoint into `encoder`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not such a checkpoint, an encoder built with other arguments (any but `FREE_ARGUMENTS`),
            or state-dict keys / shapes that differ.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretrained {str(path)!r} is not a checkpoint file")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    config, state = checkpoint.get(CHECKPOINT_CONFIG_KEY), checkpoint.get("state_dict")
    if config is None or state is None:
        raise ValueError(
            f"pretrained {str(path)!r} is not a MaskedPatchModule checkpoint (no {CHECKPOINT_CONFIG_KEY!r} or state_dict)"
        )
    differ = {
        name: (config.get(name), value)
        for name, value in encoder.config.items()
        if name not in FREE_ARGUMENTS and config.get(name) != value
    }
    if differ:
        described = ", ".join(f"{name}={ours!r} (pretrained: {theirs!r})" for name, (theirs, ours) in differ.items())
        raise ValueError(f"pretrained {str(path)!r} has an encoder built with other arguments: {described}")
    weights = {key[len(CHECKPOINT_PREFIX):]: value for key, value in state.items() if key.startswith(CHECKPOINT_PREFIX)}
    own = encoder.state_dict()
    missing, unexpected = sorted(own.keys() - weights.keys()), sorted(weights.keys() - own.keys())
    mismatched = sorted(key for key in own.keys() & weights.keys() if own[key].shape != weights[key].shape)
    if missing or unexpected or mismatched:
        raise ValueError(
            f"pretrained {str(path)!r} does not match the encoder: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatches {mismatched}"
        )
    encoder.load_state_dict(weights)
    log.info("patchformer encoder weights from %s", path)


class IMUPatchformerClassifier(nn.Module):
    """IMU-Patchformer with a linear head on the pooled patch tokens: x [B, T, C] -> logits [B, num_classes].

    Args:
        in_channels: sensor channels C.
        num_classes: number of output logits.
        pretrained: path of a `MaskedPatchModule` checkpoint to start the encoder from, or None.
        **encoder_kwargs: the other `IMUPatchformer` arguments.
    """

    def __init__(self, *, in_channels: int, num_classes: int, pretrained: str | None = None, **encoder_kwargs: Any) -> None:
        super().__init__()
        _positive_int("num_classes", num_classes)
        self.encoder = IMUPatchformer(in_channels=in_channels, **encoder_kwargs)
        self.head = nn.Sequential(
            nn.Dropout(self.encoder.config["dropout"]), nn.Linear(self.encoder.d_model, num_classes)
        )
        if pretrained is not None:
            load_pretrained_encoder(self.encoder, pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, pooled = self.encoder(x)
        return self.head(pooled)
