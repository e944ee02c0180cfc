"""Input checks shared by the simulator's public functions: clear errors naming the argument."""

from __future__ import annotations

import torch

UNIT_QUATERNION_TOLERANCE = 1e-3
"""Largest accepted | ‖q‖ − 1 |; quaternions inside it are renormalised, outside it rejected."""


def check_series(name: str, value: torch.Tensor, last_dim: int, *, min_length: int = 3) -> None:
    """`value` must be a finite floating tensor `[..., T, last_dim]` with T ≥ min_length."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() < 2 or value.shape[-1] != last_dim:
        raise ValueError(f"{name} must have shape [..., T, {last_dim}], got {tuple(value.shape)}")
    if value.shape[-2] < min_length:
        raise ValueError(f"{name} needs at least T = {min_length} samples, got T = {value.shape[-2]}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains non-finite values (NaN or Inf)")


def check_rate(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value != value:
        raise ValueError(f"{name} must be a positive number in Hz, got {value!r}")


def normalized_quaternions(name: str, quaternions: torch.Tensor) -> torch.Tensor:
    """Reject zero / non-unit quaternions beyond the tolerance, renormalise the rest."""
    norm = quaternions.norm(dim=-1, keepdim=True)
    deviation = (norm - 1).abs().max().item()
    if deviation > UNIT_QUATERNION_TOLERANCE:
        raise ValueError(
            f"{name} must be unit quaternions (w, x, y, z); the largest | ‖q‖ − 1 | is {deviation:.3g} "
            f"(tolerance {UNIT_QUATERNION_TOLERANCE})"
        )
    return quaternions / norm
