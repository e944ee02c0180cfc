"""Global hierarchical interaction (GHI) fusion of IMU patch tokens with video tokens.

Two granularities of the video meet the motion: every motion token looks at the fine video tokens
(F·N patch tokens), and coarse per-frame queries (each frame's mean token) look at the motion. A
gate then mixes the two refined streams per motion token.

    imu   [B, N_i, imu_dim]       -> Linear -> motion tokens m                        [B, N_i, D]
    video [B, F, N, video_dim]    -> Linear + sinusoidal frame-index embedding
                                  -> video tokens v (flattened frame-major)           [B, F·N, D]
                                  -> frame queries q: masked mean over each frame     [B, F, D]

    GHIBlock, repeated num_blocks times (v stays fixed, m and q are updated):
      motion-to-vision  r_m = LN(m + Drop(MHA(query m, key/value v)))                [B, N_i, D]
      vision-to-motion  r_v = LN(q + Drop(MHA(query q, key/value m)))                [B, F, D]
      gate              s_v = masked mean of r_v over frames                         [B, 1, D]
                        g   = sigmoid(MLP([r_m ; s_v]))                              [B, N_i, 1]
                        u   = g · r_m + (1 − g) · s_v                                [B, N_i, D]
          (per motion token: its vision-refined self vs the clip's motion-aware vision summary)
      FFN               m ← LN(u + Drop(FFN(u))),  q ← LN(r_v + Drop(FFN'(r_v)))

    output tokens = [m ; q]  [B, N_i + F, D] with padding mask [B, N_i + F] (True = padding)

Missing modalities:
- video None: IMU-only path, r_m = LN(m), g ≡ 1, output `[B, N_i, D]`.
- imu None: video-only path, r_v = LN(q), no gate, output `[B, F, D]`.
- per sample, inside a batch: a sample whose video is all padding gets exactly the IMU-only
  computation (its motion-to-vision term is zero and g = 1; its frame queries are all padding), and
  one whose IMU is all padding the video-only one. A sample with neither is an error.

Padded tokens are zeroed on entry and masked as keys and in every pooling, so their values never
reach a valid output; the outputs at padded positions are meaningless (marked in the padding mask).
IMU tokens are expected to carry their own positional information (from the IMU encoder); the
frame-index embedding gives the video's time order, which a per-frame image encoder lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from networks.mdm import PositionalEncoding


@dataclass(frozen=True)
class GHIOutput:
    """Output of `GHIFusion`.

    tokens: fused tokens `[B, N_out, D]`: the N_i motion tokens, then the F frame queries (either
        part absent with its modality).
    padding_mask: bool `[B, N_out]`, True = padding (padded inputs, and every frame query of a
        sample without video).
    gates: one `[B, N_i]` tensor per block, the weight g ∈ [0, 1] of the motion-side stream r_m
        (1 − g goes to the vision summary); 1 for samples without video; empty without IMU. Entries
        at padded IMU tokens are meaningless.
    num_imu_tokens: N_i, where the frame queries start in `tokens` (0 without IMU).
    """

    tokens: torch.Tensor
    padding_mask: torch.Tensor
    gates: tuple[torch.Tensor, ...]
    num_imu_tokens: int


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `[..., S, D]` over the valid entries of `[..., S]`; zeros where none is valid."""
    total = torch.where(valid[..., None], x, 0.0).sum(dim=-2)
    return total / valid.sum(dim=-1, keepdim=True).clamp(min=1).to(x.dtype)


def _attend(
    attention: nn.MultiheadAttention,
    query: torch.Tensor,
    keys: torch.Tensor,
    key_padding: torch.Tensor,
    has_keys: torch.Tensor,
) -> torch.Tensor:
    """`attention(query, keys, keys)` `[B, Q, D]`, zero for samples without any valid key.

    A softmax over keys that are all masked is NaN in some attention kernels (PyTorch's math path
    among them), and NaN would reach the gradients, so such samples attend to all their keys and
    the result is discarded.
    """
    safe_padding = key_padding & has_keys[:, None]
    out = attention(query, keys, keys, key_padding_mask=safe_padding, need_weights=False)[0]
    return torch.where(has_keys[:, None, None], out, 0.0)


class GHIBlock(nn.Module):
    """One motion ↔ vision interaction with a gated mix (see the module docstring for the formulas).

    Args:
        dim: token width D (divisible by num_heads).
        num_heads: attention heads of both cross-attentions.
        dropout: attention-weight, residual and FFN dropout.
        ffn_dim: hidden width of both feed-forward networks.
    """

    def __init__(self, *, dim: int, num_heads: int, dropout: float, ffn_dim: int) -> None:
        super().__init__()
        self.motion_to_vision = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.vision_to_motion = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_motion = nn.LayerNorm(dim)
        self.norm_vision = nn.LayerNorm(dim)
        self.gate = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.ffn_motion = _feed_forward(dim, ffn_dim, dropout)
        self.ffn_vision = _feed_forward(dim, ffn_dim, dropout)
        self.norm_motion_out = nn.LayerNorm(dim)
        self.norm_vision_out = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        motion: torch.Tensor | None,
        queries: torch.Tensor | None,
        *,
        video: torch.Tensor | None,
        motion_padding: torch.Tensor | None,
        video_padding: torch.Tensor | None,
        query_padding: torch.Tensor | None,
        has_motion: torch.Tensor,
        has_video: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Motion `[B, N_i, D]` / frame queries `[B, F, D]` (None when absent) → updated both, gate `[B, N_i, 1]`.

        `video` `[B, F·N, D]` with its padding; `has_motion` / `has_video` `[B]` bool: the sample has
        at least one valid token of that modality (all False when the modality is None).
        """
        # Both cross-attentions read the block's input tokens, so neither direction sees the other's update.
        r_m = r_v = None
        if motion is not None:
            r_m = motion
            if video is not None:
                r_m = r_m + self.dropout(_attend(self.motion_to_vision, motion, video, video_padding, has_video))
            r_m = self.norm_motion(r_m)
        if queries is not None:
            r_v = queries
            if motion is not None:
                r_v = r_v + self.dropout(_attend(self.vision_to_motion, queries, motion, motion_padding, has_motion))
            r_v = self.norm_vision(r_v)

        gate = None
        if r_m is not None:
            if r_v is None:
                gate, mixed = torch.ones_like(r_m[..., :1]), r_m
            else:
                summary = _masked_mean(r_v, ~query_padding)[:, None].expand_as(r_m)  # zeros without video
                gate = torch.sigmoid(self.gate(torch.cat((r_m, summary), dim=-1)))
                gate = torch.where(has_video[:, None, None], gate, 1.0)
                mixed = gate * r_m + (1.0 - gate) * summary
            motion = self.norm_motion_out(mixed + self.dropout(self.ffn_motion(mixed)))
        if r_v is not None:
            queries = self.norm_vision_out(r_v + self.dropout(self.ffn_vision(r_v)))
        return motion, queries, gate


def _feed_forward(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class GHIFusion(nn.Module):
    """A stack of `GHIBlock`s fusing IMU tokens and video tokens into tokens for an LLM projector.

    Args:
        dim: fused token width D (even, divisible by num_heads).
        num_heads: attention heads.
        num_blocks: stacked GHI blocks.
        imu_dim: width of the incoming IMU tokens (linearly projected to D).
        video_dim: width of the incoming video tokens (linearly projected to D); for several encoder
            layers, concatenate them along the last axis and pass the summed width.
        dropout: dropout everywhere in the blocks.
        ffn_dim: feed-forward hidden width (default 4·dim).
        max_frames: longest video, in frames (rows of the frame-index embedding).
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        num_blocks: int,
        imu_dim: int,
        video_dim: int,
        dropout: float = 0.1,
        ffn_dim: int | None = None,
        max_frames: int = 64,
    ) -> None:
        super().__init__()
        ffn_dim = 4 * dim if ffn_dim is None else ffn_dim
        for name, value in (
            ("dim", dim),
            ("num_heads", num_heads),
            ("num_blocks", num_blocks),
            ("imu_dim", imu_dim),
            ("video_dim", video_dim),
            ("ffn_dim", ffn_dim),
            ("max_frames", max_frames),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if dim % 2 or dim % num_heads:
            raise ValueError(
                f"dim must be even (sin/cos frame embedding) and divisible by num_heads={num_heads}, got {dim}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dim = dim
        self.imu_dim = imu_dim
        self.video_dim = video_dim
        self.max_frames = max_frames
        self.imu_proj = nn.Linear(imu_dim, dim)
        self.video_proj = nn.Linear(video_dim, dim)
        self.frame_embedding = PositionalEncoding(d_model=dim, dropout=0.0, max_len=max_frames)
        self.blocks = nn.ModuleList(
            GHIBlock(dim=dim, num_heads=num_heads, dropout=float(dropout), ffn_dim=ffn_dim) for _ in range(num_blocks)
        )

    def forward(
        self,
        *,
        imu: torch.Tensor | None,
        video: torch.Tensor | None,
        imu_padding_mask: torch.Tensor | None = None,
        video_padding_mask: torch.Tensor | None = None,
    ) -> GHIOutput:
        """Fuse one batch.

        Args:
            imu: `[B, N_i, imu_dim]` IMU patch tokens, or None (video-only path).
            video: `[B, F, N, video_dim]` per-frame video tokens (e.g. `VideoFeatures.layers[-1]`),
                F ≤ max_frames, or None (IMU-only path).
            imu_padding_mask: bool `[B, N_i]`, True = padding; None = all valid.
            video_padding_mask: bool `[B, F]` (padded frames) or `[B, F, N]` (padded tokens), True =
                padding; None = all valid.

        Returns:
            `GHIOutput` (tokens `[B, N_i + F, D]`, fewer parts with a missing modality).
        """
        motion_padding, b = self._check_imu(imu, imu_padding_mask)
        video_padding, b_video = self._check_video(video, video_padding_mask)
        if imu is None and video is None:
            raise ValueError("imu and video cannot both be None")
        if imu is not None and video is not None and b != b_video:
            raise ValueError(f"imu and video must have the same batch size, got {b} and {b_video}")
        batch = b if imu is not None else b_video
        device = (imu if imu is not None else video).device
        has_motion = torch.zeros(batch, dtype=torch.bool, device=device)
        has_video = torch.zeros_like(has_motion)

        motion = queries = tokens = query_padding = None
        if imu is not None:
            # Zeroing padded inputs keeps even non-finite padding values out of every valid output.
            motion = self.imu_proj(torch.where(motion_padding[..., None], 0.0, imu))
            has_motion = (~motion_padding).any(dim=1)
        if video is not None:
            f = video.shape[1]
            projected = self.video_proj(torch.where(video_padding[..., None], 0.0, video))
            projected = projected + self.frame_embedding.pe[:f, 0][None, :, None, :]
            queries = _masked_mean(projected, ~video_padding)  # [B, F, D]
            query_padding = video_padding.all(dim=2)  # a frame without valid tokens
            tokens = projected.flatten(1, 2)  # [B, F·N, D], frame-major
            video_padding = video_padding.flatten(1, 2)
            has_video = (~video_padding).any(dim=1)
        if not (has_motion | has_video).all():
            missing = (~(has_motion | has_video)).nonzero().flatten().tolist()
            raise ValueError(
                f"imu_padding_mask / video_padding_mask leave samples {missing} with neither IMU nor video"
            )

        gates = []
        for block in self.blocks:
            motion, queries, gate = block(
                motion,
                queries,
                video=tokens,
                motion_padding=motion_padding,
                video_padding=video_padding,
                query_padding=query_padding,
                has_motion=has_motion,
                has_video=has_video,
            )
            if gate is not None:
                gates.append(gate[..., 0])

        parts = [(x, pad) for x, pad in ((motion, motion_padding), (queries, query_padding)) if x is not None]
        return GHIOutput(
            tokens=torch.cat([x for x, _ in parts], dim=1),
            padding_mask=torch.cat([pad for _, pad in parts], dim=1),
            gates=tuple(gates),
            num_imu_tokens=0 if imu is None else imu.shape[1],
        )

    def _check_imu(self, imu: torch.Tensor | None, padding: torch.Tensor | None) -> tuple[torch.Tensor | None, int]:
        """Validated IMU padding mask `[B, N_i]` (all False when not given) and B."""
        if imu is None:
            if padding is not None:
                raise ValueError("imu_padding_mask was given without imu")
            return None, 0
        if not isinstance(imu, torch.Tensor) or not imu.is_floating_point():
            raise ValueError(f"imu must be a floating-point tensor, got {getattr(imu, 'dtype', type(imu).__name__)}")
        if imu.dim() != 3 or imu.shape[2] != self.imu_dim or imu.shape[0] < 1 or imu.shape[1] < 1:
            raise ValueError(
                f"imu must have shape [B, N_i, imu_dim={self.imu_dim}] with B, N_i ≥ 1, got {tuple(imu.shape)}"
            )
        return _check_padding("imu_padding_mask", padding, imu.shape[:2], imu.device), imu.shape[0]

    def _check_video(self, video: torch.Tensor | None, padding: torch.Tensor | None) -> tuple[torch.Tensor | None, int]:
        """Validated video padding mask `[B, F, N]` (all False when not given) and B."""
        if video is None:
            if padding is not None:
                raise ValueError("video_padding_mask was given without video")
            return None, 0
        if not isinstance(video, torch.Tensor) or not video.is_floating_point():
            raise ValueError(
                f"video must be a floating-point tensor, got {getattr(video, 'dtype', type(video).__name__)}"
            )
        if video.dim() != 4 or video.shape[3] != self.video_dim or min(video.shape[:3]) < 1:
            raise ValueError(
                f"video must have shape [B, F, N, video_dim={self.video_dim}] with B, F, N ≥ 1, "
                f"got {tuple(video.shape)}"
            )
        if video.shape[1] > self.max_frames:
            raise ValueError(f"video has {video.shape[1]} frames, more than max_frames={self.max_frames}")
        if isinstance(padding, torch.Tensor) and padding.dim() == 2:
            padding = _check_padding("video_padding_mask", padding, video.shape[:2], video.device)
            padding = padding[:, :, None].expand(-1, -1, video.shape[2])
        return _check_padding("video_padding_mask", padding, video.shape[:3], video.device), video.shape[0]


def _check_padding(name: str, padding: torch.Tensor | None, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """`padding` checked as a bool mask of `shape` (True = padding); all False when None."""
    if padding is None:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    if not isinstance(padding, torch.Tensor) or padding.dtype != torch.bool or padding.shape != shape:
        raise ValueError(
            f"{name} must be a bool tensor of shape {tuple(shape)} (True = padding), "
            f"got {getattr(padding, 'dtype', type(padding).__name__)} {tuple(getattr(padding, 'shape', ()))}"
        )
    return padding
