"""Per-channel quantile mapping: make one domain's value distribution match another's (distribution mapping).

Fit on samples of both domains, the map sends each channel's source value x to F_target⁻¹(F_source(x)),
piecewise linear between matched quantiles and linearly extrapolated (with the outermost segment's
slope) beyond them. Used to map virtual IMU onto the statistics of a small real calibration set.
"""

from __future__ import annotations

import torch


class QuantileMap:
    """Monotone per-channel map fitted from samples `source` and `target` `[N, C]` (N may differ)."""

    def __init__(self, source: torch.Tensor, target: torch.Tensor, *, num_quantiles: int = 101):
        if source.dim() != 2 or target.dim() != 2 or source.shape[1] != target.shape[1]:
            raise ValueError(f"source and target must be [N, C] with equal C, got {tuple(source.shape)}, {tuple(target.shape)}")
        if num_quantiles < 2:
            raise ValueError(f"num_quantiles must be ≥ 2, got {num_quantiles}")
        if source.shape[0] < num_quantiles or target.shape[0] < num_quantiles:
            raise ValueError(f"need ≥ num_quantiles={num_quantiles} samples per domain")
        if not (torch.isfinite(source).all() and torch.isfinite(target).all()):
            raise ValueError("source and target must be finite (NaN would make every quantile NaN)")
        levels = torch.linspace(0, 1, num_quantiles, dtype=torch.float64)
        self.source_quantiles = torch.quantile(source.double(), levels, dim=0).T.contiguous()  # [C, Q]
        self.target_quantiles = torch.quantile(target.double(), levels, dim=0).T.contiguous()
        # Ties (e.g. a saturated or constant channel) would make the map ill-defined: spread them minimally.
        eps = 1e-9 * (1 + self.source_quantiles.abs())
        self.source_quantiles = torch.cummax(self.source_quantiles + eps * torch.arange(num_quantiles), dim=1).values

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """Mapped copy of `values` `[..., C]`."""
        channels = self.source_quantiles.shape[0]
        if values.shape[-1] != channels:
            raise ValueError(f"values must have {channels} channels, got {tuple(values.shape)}")
        source = self.source_quantiles.to(values.device)
        target = self.target_quantiles.to(values.device)
        flat = values.reshape(-1, channels).double().T.contiguous()  # [C, M]
        index = torch.searchsorted(source, flat).clamp(1, source.shape[1] - 1)
        low_x, high_x = source.gather(1, index - 1), source.gather(1, index)
        low_y, high_y = target.gather(1, index - 1), target.gather(1, index)
        mapped = low_y + (flat - low_x) * (high_y - low_y) / (high_x - low_x)
        return mapped.T.reshape(values.shape).to(values.dtype)
