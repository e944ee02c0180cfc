"""The simulator core: sensor trajectory (position + orientation) → ideal accelerometer and gyroscope.

Conventions are in `virtual_imu.conventions` (quaternions (w, x, y, z), sensor-to-world; specific force
f = Rᵀ(a − g) with g = −gravity·up). Derivatives are second-order accurate everywhere: central
differences inside, one-sided differences of the same order at both ends, so the output has the input's
length T.
"""

from __future__ import annotations

import torch

from virtual_imu import quaternion
from virtual_imu.conventions import STANDARD_GRAVITY, up_vector
from virtual_imu.filters import lowpass
from virtual_imu.validation import check_rate, check_series, normalized_quaternions


def second_derivative(signal: torch.Tensor, dt: float) -> torch.Tensor:
    """d²x/dt² of `[..., T, C]` (T ≥ 3) with O(dt²) error at every sample (T ≥ 4).

    Interior: (x[t+1] − 2x[t] + x[t−1]) / dt². Ends: (2x₀ − 5x₁ + 4x₂ − x₃) / dt² and its mirror. With
    T = 3 only the three-point stencil exists; all three samples then share it (first-order at the ends).
    """
    x = signal
    interior = (x[..., 2:, :] - 2 * x[..., 1:-1, :] + x[..., :-2, :]) / dt**2
    if x.shape[-2] == 3:
        return interior.expand_as(x).clone()
    first = (2 * x[..., 0, :] - 5 * x[..., 1, :] + 4 * x[..., 2, :] - x[..., 3, :]) / dt**2
    last = (2 * x[..., -1, :] - 5 * x[..., -2, :] + 4 * x[..., -3, :] - x[..., -4, :]) / dt**2
    return torch.cat((first[..., None, :], interior, last[..., None, :]), dim=-2)


def body_angular_velocity(orientations: torch.Tensor, dt: float) -> torch.Tensor:
    """Body-frame angular velocity `[..., T, 3]` (rad/s) of sensor-to-world unit quaternions `[..., T, 4]`.

    Between consecutive samples the relative rotation in the body frame is Δq = q_t* ⊗ q_{t+1}; for a
    constant body rate ω it equals exp(ω·dt/2), so log(Δq)/dt recovers ω exactly at the half-sample
    t + ½ (the log map picks the w ≥ 0 sign, which settles the q / −q ambiguity). Samples are the mean
    of the two neighbouring half-samples (ends: linear extrapolation), second-order accurate and exact
    for constant ω.
    """
    delta = quaternion.multiply(quaternion.conjugate(orientations[..., :-1, :]), orientations[..., 1:, :])
    half_step = quaternion.to_rotation_vector(delta) / dt  # [..., T-1, 3] at t + ½
    interior = 0.5 * (half_step[..., :-1, :] + half_step[..., 1:, :])
    first = 1.5 * half_step[..., 0, :] - 0.5 * half_step[..., 1, :]
    last = 1.5 * half_step[..., -1, :] - 0.5 * half_step[..., -2, :]
    return torch.cat((first[..., None, :], interior, last[..., None, :]), dim=-2)


def simulate(
    positions: torch.Tensor,
    orientations: torch.Tensor,
    fps: float,
    gravity: float = STANDARD_GRAVITY,
    up_axis: str = "y",
    lowpass_hz: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ideal IMU readings of a sensor moving along a trajectory.

    Args:
        positions: `[..., T, 3]` sensor positions in metres, world frame with `up_axis` up.
        orientations: `[..., T, 4]` unit quaternions (w, x, y, z), sensor-to-world.
        fps: sample rate of the trajectory in Hz.
        gravity: magnitude of gravity in m/s² (≥ 0; 0 gives pure kinematic acceleration).
        up_axis: "y" or "z".
        lowpass_hz: if given, a zero-phase low-pass (cutoff in Hz, below fps/2) on the positions before
            differentiation, e.g. to suppress marker jitter that differentiation would amplify.

    Returns:
        acc: `[..., T, 3]` specific force in the sensor frame, m/s² (f = Rᵀ(a_world − g_world)).
        gyro: `[..., T, 3]` body-frame angular velocity, rad/s.
    """
    check_series("positions", positions, 3)
    check_series("orientations", orientations, 4)
    if positions.shape[:-1] != orientations.shape[:-1]:
        raise ValueError(
            f"positions [..., T, 3] and orientations [..., T, 4] must share leading dims and T, got "
            f"{tuple(positions.shape)} and {tuple(orientations.shape)}"
        )
    if positions.dtype != orientations.dtype:
        raise ValueError(f"positions ({positions.dtype}) and orientations ({orientations.dtype}) differ in dtype")
    check_rate("fps", fps)
    if not isinstance(gravity, (int, float)) or not gravity >= 0:
        raise ValueError(f"gravity must be a non-negative magnitude in m/s², got {gravity!r}")
    up = up_vector(up_axis, dtype=positions.dtype, device=positions.device)
    if lowpass_hz is not None:
        if not isinstance(lowpass_hz, (int, float)) or not 0 < lowpass_hz < fps / 2:
            raise ValueError(f"lowpass_hz must lie in (0, fps/2 = {fps / 2}) Hz, got {lowpass_hz!r}")
        positions = lowpass(positions, lowpass_hz, fps)
    orientations = normalized_quaternions("orientations", orientations)

    dt = 1.0 / fps
    acceleration_world = second_derivative(positions, dt)
    acc = quaternion.rotate_inverse(orientations, acceleration_world + gravity * up)
    gyro = body_angular_velocity(orientations, dt)
    return acc, gyro
