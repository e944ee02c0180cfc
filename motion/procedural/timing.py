"""Smooth time profiles: easing curves, cubic Hermite segments, keyframe splines, soft minimum.

Everything is vectorised over frames. The joint trajectories are differentiated twice downstream
(virtual accelerometer), so profiles are at least C1 (continuous velocity) unless a real impact is
intended.
"""

from __future__ import annotations

import numpy as np


def smoothstep(u) -> np.ndarray:
    """Quintic ease 0 -> 1 on u in [0, 1] (clipped) with zero velocity and acceleration at both ends."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def smoothstep_derivative(u) -> np.ndarray:
    """d smoothstep / du (zero outside [0, 1])."""
    u = np.asarray(u, dtype=np.float64)
    inside = (u > 0.0) & (u < 1.0)
    return np.where(inside, 30.0 * u * u * (u - 1.0) ** 2, 0.0)


def ramp(t, start: float, duration: float) -> np.ndarray:
    """Smoothstep from 0 at time `start` to 1 at `start + duration` (s)."""
    return smoothstep((np.asarray(t, dtype=np.float64) - start) / max(duration, 1e-9))


def bump(u) -> np.ndarray:
    """sin²(πu) on u in [0, 1], 0 outside: a hump with zero value and zero slope at both ends."""
    u = np.asarray(u, dtype=np.float64)
    return np.where((u > 0.0) & (u < 1.0), np.sin(np.pi * u) ** 2, 0.0)


def hermite(p0, v0, p1, v1, u, duration) -> np.ndarray:
    """Cubic Hermite segment at normalised time `u` in [0, 1].

    Args:
        p0, p1: values at the start / end `[..., C]` or scalars.
        v0, v1: rates (per second) at the start / end.
        u: normalised time `[...]` (broadcast against the values' leading shape).
        duration: segment length in seconds (scales the rates to the normalised parameter).
    """
    u = np.asarray(u, dtype=np.float64)
    p0, v0, p1, v1 = (np.asarray(a, dtype=np.float64) for a in (p0, v0, p1, v1))
    extra = max(p0.ndim, p1.ndim, v0.ndim, v1.ndim) - u.ndim
    u = u.reshape(u.shape + (1,) * max(extra, 0))
    duration = np.asarray(duration, dtype=np.float64)
    duration = duration.reshape(duration.shape + (1,) * max(u.ndim - duration.ndim, 0))
    u2, u3 = u * u, u * u * u
    h00 = 2 * u3 - 3 * u2 + 1
    h10 = u3 - 2 * u2 + u
    h01 = -2 * u3 + 3 * u2
    h11 = u3 - u2
    return h00 * p0 + h10 * v0 * duration + h01 * p1 + h11 * v1 * duration


def keyframes(times, values, t, hold=()) -> np.ndarray:
    """Monotone C1 cubic spline through keyframes, constant before the first / after the last key.

    Tangents are PCHIP-like (harmonic mean of neighbouring slopes, zero at local extrema), so the
    curve never overshoots between keys: a pelvis lowered onto a seat never dips below it.

    Args:
        times: `[K]` strictly increasing key times (s).
        values: `[K]` or `[K, C]` key values.
        t: `[T]` query times (s).
        hold: key indices whose tangent is forced to zero (the motion momentarily stops there).
    Returns:
        `[T]` or `[T, C]`.
    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    squeeze = values.ndim == 1
    if squeeze:
        values = values[:, None]
    t = np.asarray(t, dtype=np.float64)
    if np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be strictly increasing, got {times}")
    spans = np.diff(times)[:, None]
    slopes = np.diff(values, axis=0) / spans
    tangents = np.zeros_like(values)
    left, right = slopes[:-1], slopes[1:]
    same_sign = left * right > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = np.where(same_sign, 2.0 / (1.0 / np.where(same_sign, left, 1.0) + 1.0 / np.where(same_sign, right, 1.0)), 0.0)
    tangents[1:-1] = harmonic
    for index in hold:
        tangents[index] = 0.0
    segment = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    u = np.clip((t - times[segment]) / spans[segment, 0], 0.0, 1.0)
    result = hermite(values[segment], tangents[segment], values[segment + 1], tangents[segment + 1], u, spans[segment, 0])
    return result[:, 0] if squeeze else result


def smooth_upper_envelope(values: np.ndarray, radius: int) -> np.ndarray:
    """A smooth curve `[T]` that is everywhere ≥ `values [T]`: running maximum, then a Hann average.

    Every output sample averages running maxima whose windows contain that sample, so it cannot fall
    below the input. Used to smooth how far the pelvis must be lowered for the legs to reach the feet
    without ever lowering it too little.
    """
    values = np.asarray(values, dtype=np.float64)
    if radius < 1:
        return values.copy()
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    running_max = windows.max(axis=-1)
    kernel = np.hanning(2 * radius + 3)[1:-1]
    kernel /= kernel.sum()
    padded_max = np.pad(running_max, radius, mode="edge")
    return np.convolve(padded_max, kernel, mode="valid")


def periodic_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float, frequencies_hz=(0.2, 0.5)) -> np.ndarray:
    """Smooth quasi-random wobble `[T]`: a sum of sines with random phases, peak ≤ `amplitude`."""
    t = np.asarray(t, dtype=np.float64)
    total = np.zeros_like(t)
    weights = rng.uniform(0.5, 1.0, size=len(frequencies_hz))
    weights = weights / weights.sum()
    for weight, frequency in zip(weights, frequencies_hz):
        frequency = frequency * rng.uniform(0.8, 1.25)
        total += weight * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
    return amplitude * total
