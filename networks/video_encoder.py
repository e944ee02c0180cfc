"""Frozen video encoders for IMU–video fusion: sparse frames → per-frame patch tokens of chosen layers.

    frames [B, F, 3, H, W], float RGB in [0, 1]  (e.g. F = 16 frames sampled at 2 FPS, `sample_frame_indices`)
      -> normalise with the weights' mean/std
      -> backbone                                 (per frame for a ViT: frames folded into the batch)
      -> VideoFeatures.layers: one [B, F, N, D] per requested layer, N patch tokens per frame
         VideoFeatures.tokens: the last requested layer flattened frame-major, [B, F·N, D]

- `TimmViTVideoEncoder` (default): a timm VisionTransformer applied to each frame on its own;
  the class / register tokens are dropped, so N = (H / patch) · (W / patch).
- `InternVideo2Adapter` (opt-in): an InternVideo2 checkpoint in a local directory, loaded with
  transformers' `AutoModel` and its remote code; see the class for the output contract it expects.

Both are frozen by default: no parameter requires a gradient, the forward pass runs without
autograd, and the module stays in eval mode whatever a parent's `.train()` says (no dropout or
drop-path noise in features that are never trained).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.models import load_state_dict
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_frame_indices(
    num_frames_total: int, fps: float, *, target_frames: int = 16, target_fps: float = 2.0
) -> torch.Tensor:
    """Indices of `target_frames` frames of a clip, `1 / target_fps` seconds apart, centred in the clip.

    Frame k sits at source position start + k · fps / target_fps, rounded half up, with start chosen
    so the sampled span is centred: start = (num_frames_total − 1 − span) / 2, span = (target_frames − 1)
    · fps / target_fps. A clip shorter than the span instead gets `target_frames` positions spread
    evenly from its first to its last frame (linspace, rounded half up), so short clips repeat frames
    rather than being padded. With target_fps > fps frames repeat as well (sampling faster than the
    source).

    Args:
        num_frames_total: frames in the clip (≥ 1).
        fps: frame rate of the clip, frames per second (> 0).
        target_frames: frames to sample (≥ 1).
        target_fps: sampling rate, frames per second (> 0).

    Returns:
        int64 indices `[target_frames]`, non-decreasing, within [0, num_frames_total).
    """
    for name, value in (("num_frames_total", num_frames_total), ("target_frames", target_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    for name, value in (("fps", fps), ("target_fps", target_fps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0 (frames per second), got {value!r}")
    step = fps / target_fps  # source frames between two sampled frames
    span = (target_frames - 1) * step
    k = torch.arange(target_frames, dtype=torch.float64)
    if span <= num_frames_total - 1:
        positions = (num_frames_total - 1 - span) / 2 + k * step
    else:
        positions = k * ((num_frames_total - 1) / max(target_frames - 1, 1))
    # Half up, not torch.round's half-to-even, so indices are easy to check by hand.
    return torch.floor(positions + 0.5).long().clamp_(0, num_frames_total - 1)


@dataclass(frozen=True)
class VideoFeatures:
    """Output of a `VideoEncoder`.

    layers: one `[B, F, N, D]` tensor per requested layer, in the order requested.
    tokens: `layers[-1]` flattened frame-major, `[B, F·N, D]` (frame f's tokens at f·N … (f+1)·N − 1).
    """

    layers: tuple[torch.Tensor, ...]
    tokens: torch.Tensor


class VideoEncoder(nn.Module):
    """Shared frame checks, normalisation and freezing; subclasses implement `_encode`.

    Args:
        image_size: (H, W) the backbone expects.
        mean, std: per-channel RGB normalisation of the [0, 1] inputs: x ↦ (x − mean) / std.
        frozen: freeze the backbone (see the module docstring).
    """

    backbone: nn.Module

    def __init__(
        self, *, image_size: tuple[int, int], mean: Sequence[float], std: Sequence[float], frozen: bool
    ) -> None:
        super().__init__()
        if not isinstance(frozen, bool):
            raise ValueError(f"frozen must be a bool, got {frozen!r}")
        for name, value in (("mean", mean), ("std", std)):
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must hold 3 finite per-channel RGB values, got {value!r}")
        if min(std) <= 0:
            raise ValueError(f"std must be > 0 per channel, got {std!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.frozen = frozen
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[:, None, None], persistent=False)

    def _freeze_if_requested(self) -> None:
        """Call at the end of a subclass constructor, once `backbone` exists."""
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> VideoEncoder:
        # A frozen encoder must not switch dropout / drop-path on when its parent trains.
        return super().train(mode and not self.frozen)

    def _encode(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Normalised `[B, F, 3, H, W]` → one `[B, F, N, D]` per requested layer."""
        raise NotImplementedError

    def forward(self, frames: torch.Tensor) -> VideoFeatures:
        """`[B, F, 3, H, W]` float RGB in [0, 1] → `VideoFeatures` (no gradient when frozen)."""
        if not isinstance(frames, torch.Tensor) or not frames.is_floating_point():
            raise ValueError(
                "frames must be a floating-point tensor with RGB in [0, 1] (convert uint8 frames with / 255), "
                f"got {getattr(frames, 'dtype', type(frames).__name__)}"
            )
        h, w = self.image_size
        if frames.dim() != 5 or tuple(frames.shape[2:]) != (3, h, w) or frames.shape[0] < 1 or frames.shape[1] < 1:
            raise ValueError(f"frames must have shape [B, F, 3, {h}, {w}] with B, F ≥ 1, got {tuple(frames.shape)}")
        x = (frames - self.mean.to(frames.dtype)) / self.std.to(frames.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            layers = self._encode(x)
        last = layers[-1]
        return VideoFeatures(layers=tuple(layers), tokens=last.reshape(last.shape[0], -1, last.shape[-1]))


class TimmViTVideoEncoder(VideoEncoder):
    """A timm VisionTransformer run on every frame: patch tokens of chosen blocks, `[B, F, N, D]` each.

    Each tapped block's output goes through the ViT's final norm (timm's
    `forward_intermediates(norm=True)`), so the last block gives exactly the patch tokens of
    `forward_features`, and all layers share one scale. Frames are encoded independently (a
    per-image model has no temporal mixing); frame order is left to the fusion module.

    Inputs are RGB in [0, 1], normalised with the mean/std of the weights' timm pretrained config
    unless given: ImageNet's (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) for most weights, but
    (0.5, 0.5, 0.5) / (0.5, 0.5, 0.5) for the default `vit_base_patch16_224` (augreg) weights.

    Args:
        model_name: a timm model name building a VisionTransformer.
        pretrained_path: local weights file (timm / PyTorch state dict or .safetensors, nested
            "state_dict" / "model" entries and DDP prefixes accepted); None = random init (nothing is
            downloaded). It goes through timm's ViT checkpoint filter (original-format keys,
            position-embedding resampling to `img_size`), the classifier head is dropped, and any other
            missing or unexpected key is an error rather than a silently random weight.
        layers: block indices to return, negative from the end ((-1,) = the last block; (-4, -1) = the
            fourth-last and the last); distinct.
        frozen: freeze the ViT (module docstring).
        mean, std: override the normalisation.
        model_kwargs: extra `timm.create_model` arguments (e.g. img_size, patch_size, depth).
    """

    def __init__(
        self,
        *,
        model_name: str = "vit_base_patch16_224",
        pretrained_path: str | Path | None = None,
        layers: Sequence[int] = (-1,),
        frozen: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        model_kwargs: dict | None = None,
    ) -> None:
        if not isinstance(model_name, str) or not timm.is_model(model_name):
            raise ValueError(f"model_name must be a timm model name, got {model_name!r}")
        vit = timm.create_model(model_name, pretrained=False, num_classes=0, **(model_kwargs or {}))
        if not isinstance(vit, VisionTransformer):
            raise ValueError(
                f"model_name must build a timm VisionTransformer, {model_name!r} builds {type(vit).__name__}"
            )
        cfg = vit.pretrained_cfg
        super().__init__(
            image_size=vit.patch_embed.img_size,
            mean=cfg.get("mean", IMAGENET_MEAN) if mean is None else mean,
            std=cfg.get("std", IMAGENET_STD) if std is None else std,
            frozen=frozen,
        )
        depth = len(vit.blocks)
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise ValueError(f"layers must be a non-empty sequence of block indices, got {layers!r}")
        if any(isinstance(i, bool) or not isinstance(i, int) or not -depth <= i < depth for i in layers):
            raise ValueError(f"layers must be ints in [-{depth}, {depth}) for this {depth}-block ViT, got {layers!r}")
        self.layer_indices = tuple(i % depth for i in layers)
        if len(set(self.layer_indices)) != len(self.layer_indices):
            raise ValueError(f"layers must be distinct blocks, got {layers!r} (= blocks {self.layer_indices})")
        if pretrained_path is not None:
            _load_vit_weights(vit, Path(pretrained_path))
        self.backbone = vit
        self._freeze_if_requested()

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    @property
    def tokens_per_frame(self) -> int:
        return self.backbone.patch_embed.num_patches

    def _encode(self, frames: torch.Tensor) -> list[torch.Tensor]:
        b, f = frames.shape[:2]
        out = self.backbone.forward_intermediates(
            frames.flatten(0, 1),
            indices=sorted(self.layer_indices),
            norm=True,
            output_fmt="NLC",
            intermediates_only=True,  # prefix (class / register) tokens dropped
        )
        by_block = dict(zip(sorted(self.layer_indices), out))
        return [by_block[i].reshape(b, f, *by_block[i].shape[1:]) for i in self.layer_indices]


def _load_vit_weights(vit: VisionTransformer, path: Path) -> None:
    """Load a local weights file strictly (but for the classifier head) into `vit`."""
    if not path.is_file():
        raise ValueError(f"pretrained_path must be an existing weights file, got {str(path)!r}")
    state = checkpoint_filter_fn(load_state_dict(str(path)), vit)
    result = vit.load_state_dict(state, strict=False)
    # The encoder has no classifier (num_classes=0): ImageNet heads in the file are expected extras.
    unexpected = [k for k in result.unexpected_keys if not k.startswith(("head.", "head_dist."))]
    if result.missing_keys or unexpected:
        raise ValueError(
            f"pretrained_path {str(path)!r} does not fit this ViT: missing keys {result.missing_keys}, "
            f"unexpected keys {unexpected}"
        )


def tokens_from_backbone_output(output: object, *, num_frames: int, num_prefix_tokens: int) -> torch.Tensor:
    """InternVideo2 backbone output (see `InternVideo2Adapter`) → per-frame tokens `[B, F, N, D]`.

    Accepts `[B, P + F·N, D]` (P = num_prefix_tokens leading class-like tokens, dropped; the rest
    frame-major), a `[B, F, N, D]` tensor (returned as is), or a tuple / list / object with
    `last_hidden_state` whose first entry is one of those.
    """
    if hasattr(output, "last_hidden_state"):
        output = output.last_hidden_state
    elif isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        raise ValueError(f"backbone output must be a float tensor, got {type(output).__name__}")
    if output.dim() == 4:
        if output.shape[1] != num_frames:
            raise ValueError(f"backbone output [B, F, N, D] must have F = {num_frames}, got {tuple(output.shape)}")
        return output
    if output.dim() != 3 or (output.shape[1] - num_prefix_tokens) % num_frames or output.shape[1] <= num_prefix_tokens:
        raise ValueError(
            f"backbone output must be [B, {num_prefix_tokens} + F·N, D] with F = {num_frames}, "
            f"got {tuple(output.shape)}"
        )
    tokens = output[:, num_prefix_tokens:]
    return tokens.reshape(tokens.shape[0], num_frames, -1, tokens.shape[-1])


class InternVideo2Adapter(VideoEncoder):
    """Opt-in InternVideo2 video encoder from a local directory (transformers `AutoModel`, remote code).

    Expected contract (checked at run time; this adapter has not been run on the real checkpoint):
    the directory holds a transformers config + weights whose remote code builds a model with the
    video backbone at attribute `backbone_attr` ("" = the model itself), called as `backbone(x)` with
    x `[B, 3, F, H, W]` (channels before time, normalised with `mean` / `std`) and returning
    `[B, P + F·N, D]` (P = `num_prefix_tokens` class-like tokens first, then patch tokens frame-major,
    i.e. a tubelet size of 1), `[B, F, N, D]`, or a tuple / model output whose first entry is one of
    those. Only the final layer is exposed: `VideoFeatures.layers` has one entry.

    Args:
        path: local directory (nothing is downloaded).
        trust_remote_code: needed, InternVideo2 is not a transformers built-in architecture.
        backbone_attr: dotted attribute path of the video backbone inside the loaded model.
        num_prefix_tokens: leading non-patch tokens of the backbone output (1: a class token).
        image_size: (H, W) the checkpoint expects.
        mean, std: normalisation of the [0, 1] inputs (InternVideo2 uses ImageNet's).
        frozen: freeze the backbone (module docstring).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        trust_remote_code: bool = True,
        backbone_attr: str = "vision_encoder",
        num_prefix_tokens: int = 1,
        image_size: tuple[int, int] = (224, 224),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        frozen: bool = True,
    ) -> None:
        super().__init__(image_size=image_size, mean=mean, std=std, frozen=frozen)
        directory = Path(path)
        if not directory.is_dir() or not (directory / "config.json").is_file():
            raise ValueError(
                f"path must be a local directory holding an InternVideo2 config.json and weights, got {str(path)!r}"
            )
        if isinstance(num_prefix_tokens, bool) or not isinstance(num_prefix_tokens, int) or num_prefix_tokens < 0:
            raise ValueError(f"num_prefix_tokens must be an int ≥ 0, got {num_prefix_tokens!r}")
        from transformers import AutoModel  # only this opt-in encoder needs transformers

        model = AutoModel.from_pretrained(str(directory), trust_remote_code=trust_remote_code, local_files_only=True)
        backbone = model
        for name in filter(None, backbone_attr.split(".")):
            if not hasattr(backbone, name):
                raise ValueError(f"backbone_attr {backbone_attr!r}: the loaded {type(model).__name__} has no {name!r}")
            backbone = getattr(backbone, name)
        self.backbone = backbone
        self.num_prefix_tokens = num_prefix_tokens
        self._freeze_if_requested()

    def _encode(self, frames: torch.Tensor) -> list[torch.Tensor]:
        output = self.backbone(frames.transpose(1, 2))
        tokens = tokens_from_backbone_output(
            output, num_frames=frames.shape[1], num_prefix_tokens=self.num_prefix_tokens
        )
        return [tokens]
