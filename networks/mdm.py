"""Motion Diffusion Model denoiser (MDM; Tevet et al., ICLR 2023, arXiv:2209.14916).

Predicts the clean motion x̂₀ from a noised one x_t, the diffusion step t and a text embedding.
Submodule and parameter names follow the original implementation (GuyTevet/motion-diffusion-model,
`model/mdm.py`), so its checkpoints load unchanged (`MDM.from_original_checkpoint`) and
`state_dict()` has the original's keys; the code here is written independently, batch-first.

    x [B, 263, 1, T]  ->  input_process.poseEmbedding            [B, T, d] frame tokens
    t [B]             ->  embed_timestep: pe[t] -> Linear–SiLU–Linear        [B, d]
    text              ->  embed_text(text, zeroed when dropped for CFG) + time embedding

    trans_enc: [cond token ; frames] + positional encoding -> TransformerEncoder -> drop cond token
               (text = one CLIP embedding [B, 512]: one conditioning token)
    trans_dec: frames (optionally preceded by the time embedding, `emb_trans_dec`) + positional
               encoding -> TransformerDecoder cross-attending to the text memory [B, L, d]
               (text = DistilBERT tokens with their padding mask, or one CLIP embedding as L = 1)

    -> output_process.poseFinal -> x̂₀ [B, 263, 1, T]

Classifier-free guidance (Ho & Salimans, 2022): in training the raw text embedding of each sample
is replaced by zeros with probability `cond_mask_prob`; `guided` mixes the conditional and the
unconditional prediction, uncond + s·(cond − uncond).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

TextEmbed = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""A `[B, D]` pooled embedding (CLIP) or (`[B, L, D]` token states, `[B, L]` bool, True = padding)."""

ARCHS = ("trans_enc", "trans_dec")
ACTIVATIONS = ("gelu", "relu")
TEXT_EMBED_DIMS = {"clip": 512, "bert": 768}
"""Text embedding width per original `text_encoder_type`: CLIP ViT-B/32, DistilBERT-base."""
DATASET_NJOINTS = {"humanml": 263, "kit": 251}
"""Feature channels per original `dataset` (the HumanML3D vector, `hml_vec`; KIT-ML's 21-joint one)."""


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal table (Vaswani et al., 2017), added to seq tokens and indexed by diffusion step.

    pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(p / 10000^(2i/d)). The buffer keeps the
    original's `[max_len, 1, d]` layout so state-dict keys and shapes match.
    """

    def __init__(self, *, d_model: int, dropout: float, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * inv_freq)
        pe[:, 1::2] = torch.cos(position * inv_freq)
        self.register_buffer("pe", pe[:, None, :])
        self.dropout = nn.Dropout(dropout)

    @property
    def max_len(self) -> int:
        return self.pe.shape[0]

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """`[B, S, d]` → `[B, S, d]`: position s gets pe[s], then dropout."""
        return self.dropout(seq + self.pe[: seq.shape[1], 0])


class TimestepEmbedder(nn.Module):
    """Diffusion step t → `[B, d]`: the sinusoid row pe[t] through Linear–SiLU–Linear.

    Holds the model's `PositionalEncoding` as a child (shared, not a copy) because the original
    does: its table therefore also appears as `embed_timestep.sequence_pos_encoder.pe`.
    """

    def __init__(self, *, latent_dim: int, sequence_pos_encoder: PositionalEncoding) -> None:
        super().__init__()
        self.sequence_pos_encoder = sequence_pos_encoder
        self.time_embed = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.SiLU(), nn.Linear(latent_dim, latent_dim))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.time_embed(self.sequence_pos_encoder.pe[timesteps, 0])


class FrameEmbedding(nn.Module):
    """`[B, J, F, T]` motion → `[B, T, d]` tokens, one linear map of the J·F features per frame."""

    def __init__(self, *, input_feats: int, latent_dim: int) -> None:
        super().__init__()
        self.poseEmbedding = nn.Linear(input_feats, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, j, f, t = x.shape
        # Joint-major, feature-minor flattening, as the original's permute(3, 0, 1, 2).reshape.
        return self.poseEmbedding(x.permute(0, 3, 1, 2).reshape(b, t, j * f))


class FrameReadout(nn.Module):
    """`[B, T, d]` tokens → `[B, J, F, T]` motion, the inverse layout of `FrameEmbedding`."""

    def __init__(self, *, latent_dim: int, njoints: int, nfeats: int) -> None:
        super().__init__()
        self.njoints = njoints
        self.nfeats = nfeats
        self.poseFinal = nn.Linear(latent_dim, njoints * nfeats)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, _ = h.shape
        return self.poseFinal(h).reshape(b, t, self.njoints, self.nfeats).permute(0, 2, 3, 1)


class MDM(nn.Module):
    """Text-conditioned motion denoiser predicting x̂₀ (MDM).

    Args:
        njoints: feature channels J of the motion (263 for HumanML3D vectors).
        nfeats: features per channel F (1 for HumanML3D vectors).
        latent_dim: transformer width d (original release: 512). Even, divisible by num_heads.
        ff_size: feed-forward width of each transformer layer (original: 1024).
        num_layers: transformer layers (original: 8).
        num_heads: attention heads (original: 4).
        dropout: dropout of the positional encoding and inside the transformer layers (original: 0.1).
        activation: "gelu" (original) or "relu" in the feed-forward blocks.
        arch: "trans_enc" (text+time as one prepended token, self-attention only) or "trans_dec"
            (frames cross-attend to the text memory).
        text_embed_dim: width D of the text embedding (512 CLIP, 768 DistilBERT).
        cond_mask_prob: probability of dropping a sample's text in training (CFG; original 0.1).
        max_len: rows of the sinusoid table (original `pos_embed_max_len`, default 5000); bounds
            both the number of tokens per sequence and the diffusion step index.
        emb_trans_dec: trans_dec only; also feed the time embedding as a first decoder token
            (dropped from the output), the original's `emb_trans_dec`.
    """

    def __init__(
        self,
        *,
        njoints: int = 263,
        nfeats: int = 1,
        latent_dim: int = 512,
        ff_size: int = 1024,
        num_layers: int = 8,
        num_heads: int = 4,
        dropout: float = 0.1,
        activation: str = "gelu",
        arch: str = "trans_enc",
        text_embed_dim: int = 512,
        cond_mask_prob: float = 0.1,
        max_len: int = 5000,
        emb_trans_dec: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("njoints", njoints),
            ("nfeats", nfeats),
            ("latent_dim", latent_dim),
            ("ff_size", ff_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("text_embed_dim", text_embed_dim),
            ("max_len", max_len),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if latent_dim % 2 or latent_dim % num_heads:
            raise ValueError(
                f"latent_dim must be even (sin/cos pairs) and divisible by num_heads={num_heads}, got {latent_dim}"
            )
        if max_len < 2:
            raise ValueError(f"max_len must hold at least a condition token and one frame, got {max_len}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not 0.0 <= cond_mask_prob <= 1.0:
            raise ValueError(f"cond_mask_prob must be in [0, 1], got {cond_mask_prob!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        if emb_trans_dec and arch != "trans_dec":
            raise ValueError("emb_trans_dec is only meaningful with arch='trans_dec'")

        self.njoints = njoints
        self.nfeats = nfeats
        self.latent_dim = latent_dim
        self.arch = arch
        self.text_embed_dim = text_embed_dim
        self.cond_mask_prob = float(cond_mask_prob)
        self.emb_trans_dec = bool(emb_trans_dec)

        # Attribute names below are the original's state-dict prefixes.
        self.input_process = FrameEmbedding(input_feats=njoints * nfeats, latent_dim=latent_dim)
        self.sequence_pos_encoder = PositionalEncoding(d_model=latent_dim, dropout=dropout, max_len=max_len)
        layer_kwargs = dict(
            d_model=latent_dim,
            nhead=num_heads,
            dim_feedforward=ff_size,
            dropout=dropout,
            activation=activation,
            batch_first=True,  # same parameters as the original's seq-first layers
        )
        if arch == "trans_enc":
            # No nested tensors: they would zero the padded frames' outputs, which the original computes.
            self.seqTransEncoder = nn.TransformerEncoder(
                nn.TransformerEncoderLayer(**layer_kwargs), num_layers=num_layers, enable_nested_tensor=False
            )
        else:
            self.seqTransDecoder = nn.TransformerDecoder(
                nn.TransformerDecoderLayer(**layer_kwargs), num_layers=num_layers
            )
        self.embed_timestep = TimestepEmbedder(latent_dim=latent_dim, sequence_pos_encoder=self.sequence_pos_encoder)
        self.embed_text = nn.Linear(text_embed_dim, latent_dim)
        self.output_process = FrameReadout(latent_dim=latent_dim, njoints=njoints, nfeats=nfeats)

    @property
    def max_len(self) -> int:
        return self.sequence_pos_encoder.max_len

    @property
    def max_frames(self) -> int:
        """Longest motion accepted: the table must cover the frames plus a leading condition/time token."""
        has_leading_token = self.arch == "trans_enc" or self.emb_trans_dec
        return self.max_len - int(has_leading_token)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        text_embed: TextEmbed,
        *,
        frame_mask: torch.Tensor | None = None,
        force_uncond: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Predict x̂₀.

        Args:
            x: x_t `[B, njoints, nfeats, T]`.
            timesteps: `[B]` integer diffusion steps.
            text_embed: a `[B, text_embed_dim]` pooled embedding (trans_enc, or trans_dec as a
                one-token memory) or, for trans_dec only, a tuple (`[B, L, text_embed_dim]` token
                states, `[B, L]` bool key-padding mask, True = padding, at least one False per row).
            frame_mask: optional `[B, T]` bool, True = valid frame; padded frames become attention
                keys nobody attends to (the original's `mask_frames`). None: all frames attend.
            force_uncond: use the null condition for the whole batch (the original's `uncond`).
            generator: RNG for the training-time condition drop, on x's device (default: torch's
                global RNG).
        Returns:
            x̂₀ `[B, njoints, nfeats, T]`.
        """
        self._check_x(x)
        b, _, _, t = x.shape
        self._check_timesteps(timesteps, b)
        tokens, text_padding = self._text_tokens(text_embed, b)
        key_padding = None if frame_mask is None else ~self._check_frame_mask(frame_mask, b, t)

        time_emb = self.embed_timestep(timesteps)  # [B, d]
        tokens = self._drop_condition(tokens, force_uncond, generator)
        memory = self.embed_text(tokens) + time_emb[:, None]  # [B, L, d]
        frames = self.input_process(x)  # [B, T, d]

        if self.arch == "trans_enc":
            seq = self.sequence_pos_encoder(torch.cat((memory, frames), dim=1))
            out = self.seqTransEncoder(seq, src_key_padding_mask=self._lead(key_padding))[:, 1:]
        else:
            seq = torch.cat((time_emb[:, None], frames), dim=1) if self.emb_trans_dec else frames
            seq = self.sequence_pos_encoder(seq)
            out = self.seqTransDecoder(
                seq,
                memory,
                tgt_key_padding_mask=self._lead(key_padding) if self.emb_trans_dec else key_padding,
                memory_key_padding_mask=text_padding,
            )
            if self.emb_trans_dec:
                out = out[:, 1:]
        return self.output_process(out)

    def guided(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        text_embed: TextEmbed,
        scale: float | torch.Tensor = 2.5,
        *,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Classifier-free guided x̂₀ = uncond + s·(cond − uncond) (the original's cfg_sampler).

        Meant for sampling in eval mode (in training mode the "conditional" pass drops text too).

        Args:
            x, timesteps, text_embed, frame_mask: as in `forward`.
            scale: guidance s, a float or a `[B]` tensor (one per sample); 1 = plain conditional.
        Returns:
            `[B, njoints, nfeats, T]`.
        """
        if isinstance(scale, torch.Tensor):
            if scale.dim() != 1 or scale.shape[0] != x.shape[0]:
                raise ValueError(f"scale must be a float or a [B] tensor, got shape {tuple(scale.shape)}")
            scale = scale.to(x)[:, None, None, None]
        elif isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"scale must be a float or a [B] tensor, got {type(scale).__name__}")
        cond = self(x, timesteps, text_embed, frame_mask=frame_mask)
        uncond = self(x, timesteps, text_embed, frame_mask=frame_mask, force_uncond=True)
        return uncond + scale * (cond - uncond)

    @classmethod
    def from_original_checkpoint(cls, path: str | Path, *, use_ema: bool | None = None) -> MDM:
        """Build and load an MDM from the original code's `model*.pt` with its `args.json` beside it.

        The file is a plain state dict or, for models trained with EMA, {"model": …, "model_avg": …}.
        Text-encoder weights the original may store (`clip_model.*`, `bert_model.*`) are dropped, and
        so are the sinusoid tables, which are fixed and recomputed (as the original's loader does).

        args.json keys read (original names and defaults): dataset ("humanml" → 263 channels,
        "kit" → 251), arch ("trans_enc"), latent_dim (512), layers (8), cond_mask_prob (0.1),
        text_encoder_type ("clip" → 512, "bert" → 768), emb_trans_dec (False), pos_embed_max_len
        (5000), use_ema (False). The original hard-codes ff_size 1024, 4 heads and dropout 0.1;
        "ff_size" and "heads" are read when present. Variants this class does not implement
        (unconstrained, gru, prefix completion, target conditioning, concat emb_policy) raise.

        Args:
            path: the checkpoint file.
            use_ema: load "model_avg" (True) or "model" (False) from an EMA checkpoint; None follows
                args.json's use_ema, as the original's sampler does.
        Returns:
            the model in eval mode.
        Raises:
            ValueError: unsupported args, or the state dict does not fit the architecture from
                args.json (missing, unexpected and wrongly shaped keys are listed).
        """
        path = Path(path)
        args_path = path.parent / "args.json"
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} not found")
        if not args_path.is_file():
            raise FileNotFoundError(f"{args_path} not found: the original saves args.json beside model*.pt")
        args = json.loads(args_path.read_text())
        model = cls(**_model_kwargs_from_original_args(args))
        if use_ema is None:
            use_ema = bool(args.get("use_ema", False))

        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if "model" in checkpoint or "model_avg" in checkpoint:
            key = "model_avg" if use_ema else "model"
            if key not in checkpoint:
                raise ValueError(f"checkpoint {path} has no {key!r} state dict (keys: {sorted(checkpoint)})")
            checkpoint = checkpoint[key]
        elif use_ema:
            raise ValueError(f"use_ema=True but checkpoint {path} is a plain state dict without 'model_avg'")

        state = {
            k: v
            for k, v in checkpoint.items()
            if not k.startswith(("clip_model.", "bert_model.")) and not k.endswith("sequence_pos_encoder.pe")
        }
        own = {k: v for k, v in model.state_dict().items() if not k.endswith("sequence_pos_encoder.pe")}
        missing = sorted(own.keys() - state.keys())
        unexpected = sorted(state.keys() - own.keys())
        wrong_shape = sorted(
            f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
            for k in own.keys() & state.keys()
            if state[k].shape != own[k].shape
        )
        if missing or unexpected or wrong_shape:
            raise ValueError(
                f"checkpoint {path} does not match the architecture in {args_path}: "
                f"missing keys {missing}, unexpected keys {unexpected}, shape mismatches (file vs model) {wrong_shape}"
            )
        model.load_state_dict(state, strict=False)
        return model.eval()

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 4 or x.shape[1] != self.njoints or x.shape[2] != self.nfeats or x.shape[0] < 1 or x.shape[3] < 1:
            raise ValueError(
                f"x must have shape [B, {self.njoints}, {self.nfeats}, T] with B, T ≥ 1, got {tuple(x.shape)}"
            )
        if x.shape[3] > self.max_frames:
            raise ValueError(f"x has {x.shape[3]} frames, more than max_frames={self.max_frames} (raise max_len)")

    def _check_timesteps(self, timesteps: torch.Tensor, b: int) -> None:
        if not isinstance(timesteps, torch.Tensor) or timesteps.is_floating_point() or timesteps.dtype == torch.bool:
            raise ValueError(f"timesteps must be an integer tensor, got {getattr(timesteps, 'dtype', timesteps)}")
        if timesteps.shape != (b,):
            raise ValueError(f"timesteps must have shape [B] = ({b},), got {tuple(timesteps.shape)}")
        if timesteps.min() < 0 or timesteps.max() >= self.max_len:
            raise ValueError(f"timesteps must lie in [0, max_len={self.max_len}), got {timesteps.tolist()}")

    def _text_tokens(self, text_embed: TextEmbed, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text as memory tokens `[B, L, D]` and their key-padding mask `[B, L]` (None: all valid)."""
        if isinstance(text_embed, torch.Tensor):
            if text_embed.shape != (b, self.text_embed_dim) or not text_embed.is_floating_point():
                raise ValueError(
                    f"text_embed must be a float tensor [B, {self.text_embed_dim}] = ({b}, {self.text_embed_dim}), "
                    f"got {text_embed.dtype} {tuple(text_embed.shape)}"
                )
            return text_embed[:, None], None
        if not isinstance(text_embed, tuple):
            raise ValueError(
                f"text_embed must be a tensor or a (states, padding mask) tuple, got {type(text_embed).__name__}"
            )
        if self.arch != "trans_dec":
            raise ValueError(
                "text_embed must be a [B, D] tensor for arch='trans_enc' (one condition token); "
                "per-token (states, padding mask) tuples need arch='trans_dec'"
            )
        if len(text_embed) != 2 or not all(isinstance(e, torch.Tensor) for e in text_embed):
            raise ValueError("text_embed tuple must be (states [B, L, D], padding mask [B, L])")
        states, padding = text_embed
        if states.dim() != 3 or states.shape[0] != b or states.shape[2] != self.text_embed_dim or states.shape[1] < 1:
            raise ValueError(
                f"text_embed states must have shape [B, L, {self.text_embed_dim}] with B = {b}, "
                f"got {tuple(states.shape)}"
            )
        if not states.is_floating_point():
            raise ValueError(f"text_embed states must be floating point, got {states.dtype}")
        if padding.dtype != torch.bool or padding.shape != states.shape[:2]:
            raise ValueError(
                f"text_embed padding mask must be bool [B, L] = {tuple(states.shape[:2])}, "
                f"got {padding.dtype} {tuple(padding.shape)}"
            )
        if padding.all(dim=1).any():
            raise ValueError("text_embed padding mask must leave at least one token per sample (True = padding)")
        return states, padding

    @staticmethod
    def _check_frame_mask(frame_mask: torch.Tensor, b: int, t: int) -> torch.Tensor:
        if not isinstance(frame_mask, torch.Tensor) or frame_mask.dtype != torch.bool or frame_mask.shape != (b, t):
            raise ValueError(
                f"frame_mask must be a bool tensor [B, T] = ({b}, {t}), True = valid, "
                f"got {getattr(frame_mask, 'dtype', type(frame_mask).__name__)} "
                f"{tuple(getattr(frame_mask, 'shape', ()))}"
            )
        if not frame_mask.any(dim=1).all():
            raise ValueError("frame_mask must mark at least one valid frame per sample")
        return frame_mask

    @staticmethod
    def _lead(key_padding: torch.Tensor | None) -> torch.Tensor | None:
        """Key-padding mask with a leading never-masked column for the condition/time token."""
        if key_padding is None:
            return None
        return torch.cat((torch.zeros_like(key_padding[:, :1]), key_padding), dim=1)

    def _drop_condition(
        self, tokens: torch.Tensor, force_uncond: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Zero the raw text of all samples (force_uncond) or, in training, of each with p = cond_mask_prob.

        The null condition is zeros *before* embed_text, so the model sees embed_text's bias: the
        original's `mask_cond` order, which its checkpoints were trained with.
        """
        if not isinstance(force_uncond, bool):
            raise ValueError(f"force_uncond must be a bool, got {type(force_uncond).__name__}")
        if force_uncond:
            return torch.zeros_like(tokens)
        if self.training and self.cond_mask_prob > 0.0:
            p = torch.full((tokens.shape[0],), self.cond_mask_prob, device=tokens.device)
            drop = torch.bernoulli(p, generator=generator)
            return tokens * (1.0 - drop).to(tokens.dtype)[:, None, None]
        return tokens


def _model_kwargs_from_original_args(args: dict) -> dict:
    """MDM keyword arguments from the original's args.json (see `MDM.from_original_checkpoint`)."""
    unsupported = {
        "unconstrained": "unconditional models",
        "multi_target_cond": "target-location conditioning",
        "context_len": "prefix completion",
        "pred_len": "prefix completion",
    }
    for key, what in unsupported.items():
        if args.get(key):
            raise ValueError(f"args.json has {key}={args[key]!r}: {what} are not supported")
    if args.get("emb_policy", "add") != "add":
        raise ValueError(f"args.json has emb_policy={args['emb_policy']!r}: only 'add' is supported")
    dataset = args.get("dataset", "humanml")
    if dataset not in DATASET_NJOINTS:
        raise ValueError(f"args.json has dataset={dataset!r}: supported are {sorted(DATASET_NJOINTS)}")
    encoder = args.get("text_encoder_type", "clip")
    if encoder not in TEXT_EMBED_DIMS:
        raise ValueError(f"args.json has text_encoder_type={encoder!r}: supported are {sorted(TEXT_EMBED_DIMS)}")
    arch = args.get("arch", "trans_enc")
    if encoder == "bert" and arch != "trans_dec":
        raise ValueError(f"args.json pairs text_encoder_type='bert' with arch={arch!r}; the original needs trans_dec")
    return dict(
        njoints=DATASET_NJOINTS[dataset],
        nfeats=1,
        latent_dim=args.get("latent_dim", 512),
        ff_size=args.get("ff_size", 1024),
        num_layers=args.get("layers", 8),
        num_heads=args.get("heads", 4),
        dropout=0.1,
        activation="gelu",
        arch=arch,
        text_embed_dim=TEXT_EMBED_DIMS[encoder],
        cond_mask_prob=args.get("cond_mask_prob", 0.1),
        max_len=args.get("pos_embed_max_len", 5000),
        emb_trans_dec=bool(args.get("emb_trans_dec", False)) and arch == "trans_dec",
    )
