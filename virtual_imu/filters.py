"""Differentiable zero-phase low-pass filtering and resampling along the time axis (pure torch).

Signals are `[..., T, C]` tensors sampled uniformly at a rate in Hz. The low-pass is a symmetric
(hence zero-phase) Hamming-windowed sinc FIR applied with an odd extension at both ends — the
extension `2·x[0] − x[k]` continues a linear trend, so positions of a body moving at constant
velocity pass through unchanged, edges included (scipy's `filtfilt(padtype="odd")` does the same).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Hamming window: transition width ≈ 3.3·fs/N. We ask for a transition of half the cutoff.
_HAMMING_TRANSITION = 3.3


def lowpass_kernel(cutoff_hz: float, fs_hz: float, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Odd-length, unit-DC-gain windowed-sinc low-pass kernel `[N]`."""
    if not fs_hz > 0:
        raise ValueError(f"fs_hz must be > 0, got {fs_hz}")
    if not 0 < cutoff_hz < fs_hz / 2:
        raise ValueError(f"cutoff_hz must lie in (0, fs/2 = {fs_hz / 2}), got {cutoff_hz}")
    half = max(1, math.ceil(_HAMMING_TRANSITION * fs_hz / (0.5 * cutoff_hz) / 2))
    n = torch.arange(-half, half + 1, dtype=torch.float64)
    normalized_cutoff = cutoff_hz / fs_hz
    kernel = 2 * normalized_cutoff * torch.sinc(2 * normalized_cutoff * n)
    kernel = kernel * torch.hamming_window(2 * half + 1, periodic=False, dtype=torch.float64)
    kernel = kernel / kernel.sum()
    return kernel.to(dtype=dtype, device=device)


def lowpass(signal: torch.Tensor, cutoff_hz: float, fs_hz: float) -> torch.Tensor:
    """Zero-phase low-pass of `signal` `[..., T, C]` sampled at `fs_hz`; same shape out.

    The kernel is shortened when the clip is shorter than it (the odd extension needs T > half-width).
    """
    *lead, length, channels = signal.shape
    kernel = lowpass_kernel(cutoff_hz, fs_hz, dtype=signal.dtype, device=signal.device)
    half = min((kernel.numel() - 1) // 2, length - 1)
    if half < (kernel.numel() - 1) // 2:
        centre = (kernel.numel() - 1) // 2
        kernel = kernel[centre - half : centre + half + 1]
        kernel = kernel / kernel.sum()
    if half == 0:
        return signal
    x = signal.reshape(-1, length, channels).transpose(1, 2)  # [B, C, T]
    first, last = x[..., :1], x[..., -1:]
    head = 2 * first - x[..., 1 : half + 1].flip(-1)
    tail = 2 * last - x[..., -half - 1 : -1].flip(-1)
    padded = torch.cat((head, x, tail), dim=-1).reshape(-1, 1, length + 2 * half)
    filtered = F.conv1d(padded, kernel.view(1, 1, -1))  # symmetric kernel: correlation == convolution
    return filtered.reshape(-1, channels, length).transpose(1, 2).reshape(signal.shape)


def resample(
    signal: torch.Tensor, fs_in_hz: float, fs_out_hz: float, time_offset_s: torch.Tensor | None = None
) -> torch.Tensor:
    """Resample `[..., T, C]` from `fs_in_hz` to `fs_out_hz` over the same time span.

    Output sample k lies at time k / fs_out (k = 0 … floor((T−1)·fs_out/fs_in)), shifted by
    `time_offset_s` when given: seconds, broadcastable to `[..., T_out]` (a clock offset `[..., 1]`, a
    per-sample jitter `[..., T_out]`); times outside the input span hold its first / last sample.
    Linear interpolation, differentiable with respect to the signal and the offset; when downsampling,
    an anti-aliasing low-pass at 0.45·fs_out runs first.
    """
    if not fs_in_hz > 0:
        raise ValueError(f"fs_in_hz must be > 0, got {fs_in_hz}")
    if not fs_out_hz > 0:
        raise ValueError(f"fs_out_hz must be > 0, got {fs_out_hz}")
    if fs_out_hz == fs_in_hz and time_offset_s is None:
        return signal
    if fs_out_hz < fs_in_hz:
        signal = lowpass(signal, 0.45 * fs_out_hz, fs_in_hz)
    length = signal.shape[-2]
    # A tiny epsilon keeps the last sample when (T−1)·ratio is an integer hit by rounding error.
    out_length = math.floor((length - 1) * fs_out_hz / fs_in_hz + 1e-9) + 1
    position = torch.arange(out_length, dtype=torch.float64, device=signal.device) * (fs_in_hz / fs_out_hz)
    if time_offset_s is None:
        left = position.floor().long().clamp(max=length - 2)
        fraction = (position - left).to(signal.dtype)[:, None]
        return signal[..., left, :] * (1 - fraction) + signal[..., left + 1, :] * fraction
    try:
        lead = torch.broadcast_shapes(signal.shape[:-2], time_offset_s.shape[:-1])
        torch.broadcast_shapes(time_offset_s.shape[-1:], (out_length,))
    except (RuntimeError, IndexError) as error:
        raise ValueError(
            f"time_offset_s {tuple(time_offset_s.shape)} must broadcast to [..., T_out] = [..., {out_length}] "
            f"with the leading dims of signal {tuple(signal.shape)}"
        ) from error
    position = position.to(signal.dtype) + time_offset_s.to(signal.dtype) * fs_in_hz
    return _interpolate_at(signal, position.expand(*lead, out_length))


def _interpolate_at(signal: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """`signal` `[..., T, C]` linearly interpolated at fractional sample indices `position` `[*lead, T_out]`."""
    length = signal.shape[-2]
    lead = position.shape[:-1]
    position = position.clamp(0, length - 1)
    left = position.detach().floor().long().clamp(max=length - 2)
    fraction = (position - left)[..., None]
    signal = signal.expand(*lead, *signal.shape[-2:])
    index = left[..., None].expand(*left.shape, signal.shape[-1])
    return torch.gather(signal, -2, index) * (1 - fraction) + torch.gather(signal, -2, index + 1) * fraction
