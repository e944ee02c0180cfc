"""Overlapping Allan deviation: how a sensor's noise averages down with the averaging time τ.

For cluster size m (τ = m/fs) and the running sum S[k] = Σ_{i<k} y[i] (S[0] = 0), the overlapping Allan
variance (IEEE Std 952, annex C) is

    σ²(τ) = Σ_{k=0}^{T−2m} (S[k+2m] − 2·S[k+m] + S[k])² / (2·m²·(T − 2m + 1)),

half the mean squared difference of adjacent m-sample averages, taken at every start k. On a log-log plot
white noise of density N has slope −1/2 (σ = N/√τ), rate random walk K slope +1/2 (σ = K·√(τ/3)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from virtual_imu.validation import check_rate

_PER_DECADE = 10


def default_cluster_sizes(length: int) -> list[int]:
    """Log-spaced cluster sizes, 10 per decade, from 1 to length // 10 (at least [1])."""
    largest = max(1, length // 10)
    count = math.floor(_PER_DECADE * math.log10(largest)) + 1
    return sorted({round(10 ** (i / _PER_DECADE)) for i in range(count)} | {largest})


def allan_deviation(
    signal: torch.Tensor, fs_hz: float, cluster_sizes: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaging times τ `[M]` (s) and overlapping Allan deviations `[M]` (signal `[T]`) or `[M, C]` (`[T, C]`).

    `cluster_sizes`: samples per average, each in 1 … T // 2 (default: `default_cluster_sizes(T)`).
    Computed in float64; the signal's mean is removed first (the Allan variance ignores it, the running
    sum's rounding does not).
    """
    if not isinstance(signal, torch.Tensor) or not signal.is_floating_point() or signal.dim() not in (1, 2):
        got = type(signal).__name__
        if isinstance(signal, torch.Tensor):
            got = f"shape {tuple(signal.shape)}, dtype {signal.dtype}"
        raise ValueError(f"signal must be a floating-point tensor [T] or [T, C], got {got}")
    length = signal.shape[0]
    if length < 2:
        raise ValueError(f"signal needs at least T = 2 samples, got T = {length}")
    if not torch.isfinite(signal).all():
        raise ValueError("signal contains non-finite values (NaN or Inf)")
    check_rate("fs_hz", fs_hz)
    if cluster_sizes is None:
        cluster_sizes = default_cluster_sizes(length)
    sizes = list(cluster_sizes)
    if not sizes or any(not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= length // 2 for m in sizes):
        raise ValueError(
            f"cluster_sizes must be a non-empty sequence of integers in 1 … T // 2 = {length // 2}, got {sizes}"
        )

    y = signal.to(torch.float64)
    y = y - y.mean(0)
    running_sum = torch.cat((y.new_zeros(1, *y.shape[1:]), torch.cumsum(y, 0)))  # [T + 1, ...]
    variances = []
    for m in sizes:
        second_difference = running_sum[2 * m :] - 2 * running_sum[m:-m] + running_sum[: -2 * m]
        variances.append(second_difference.square().mean(0) / (2 * m**2))
    taus = torch.tensor(sizes, dtype=torch.float64, device=signal.device) / fs_hz
    return taus, torch.stack(variances).sqrt()
