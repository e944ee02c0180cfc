"""Sensor mounting beyond the nominal preset: a fixed extra rotation, random jitter, and its estimate.

A sensor rotated by r (new-sensor-to-old-sensor) relative to where the preset puts it measures the same
specific force and angular rate expressed in its own frame: f' = r⁻¹ f, ω' = r⁻¹ ω (the sensor is rigid,
so a pure rotation changes nothing else). Real datasets rarely document how a watch was worn, hence
(a) `MountJitter`, random rotations drawn per clip for augmentation, and (b) `estimate_mount_rotation`,
the least-squares rotation between paired virtual and real accelerations (Wahba's problem, solved by SVD
as in the Kabsch algorithm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from virtual_imu import quaternion


def rotate_imu(imu: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """IMU `[..., T, 6]` (acc, gyro) of a sensor rotated by `rotation` `[..., 4]` (new-to-old, wxyz).

    `rotation` broadcasts over time: one quaternion per clip.
    """
    if imu.shape[-1] != 6:
        raise ValueError(f"imu must be [..., T, 6], got {tuple(imu.shape)}")
    if rotation.shape[-1] != 4:
        raise ValueError(f"rotation must be [..., 4] quaternions, got {tuple(rotation.shape)}")
    r = rotation.to(imu.dtype).unsqueeze(-2).expand(*imu.shape[:-1], 4)
    acc = quaternion.rotate_inverse(r, imu[..., :3])
    gyro = quaternion.rotate_inverse(r, imu[..., 3:])
    return torch.cat((acc, gyro), dim=-1)


@dataclass(frozen=True)
class MountJitter:
    """Random sensor rotations: a roll about one sensor axis plus a tilt about a random perpendicular axis.

    Attributes:
        roll_deg: the roll angle is uniform in [−roll_deg, roll_deg] (180 = any roll).
        tilt_deg: the tilt angle is uniform in [0, tilt_deg].
        roll_axis: the sensor axis of the roll (for a watch: x, along the forearm).
    """

    roll_deg: float = 0.0
    tilt_deg: float = 0.0
    roll_axis: tuple[float, float, float] = (1.0, 0.0, 0.0)

    def __post_init__(self):
        if not 0 <= self.roll_deg <= 180:
            raise ValueError(f"roll_deg must lie in [0, 180], got {self.roll_deg}")
        if not 0 <= self.tilt_deg <= 180:
            raise ValueError(f"tilt_deg must lie in [0, 180], got {self.tilt_deg}")
        if len(self.roll_axis) != 3 or not 1e-9 <= math.hypot(*self.roll_axis) < math.inf:  # NaN fails too
            raise ValueError(f"roll_axis must be a non-zero 3-vector, got {self.roll_axis}")

    def draw(self, batch_shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """Rotations `[*batch_shape, 4]` (wxyz), reproducible from `generator`."""
        axis = torch.tensor(self.roll_axis, dtype=torch.float64)
        axis = axis / axis.norm()
        uniform = torch.rand((*batch_shape, 3), generator=generator, dtype=torch.float64)
        roll = (2 * uniform[..., 0] - 1) * math.radians(self.roll_deg)
        tilt = uniform[..., 1] * math.radians(self.tilt_deg)
        # Tilt axis: perpendicular to the roll axis at a uniform azimuth.
        helper = torch.tensor([0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [0.0, 1.0, 0.0], dtype=torch.float64)
        first = torch.linalg.cross(axis, helper)
        first = first / first.norm()
        second = torch.linalg.cross(axis, first)
        azimuth = uniform[..., 2:3] * 2 * math.pi
        tilt_axis = torch.cos(azimuth) * first + torch.sin(azimuth) * second
        q_roll = quaternion.from_axis_angle(axis.expand(*batch_shape, 3), roll)
        q_tilt = quaternion.from_axis_angle(tilt_axis, tilt)
        return quaternion.multiply(q_tilt, q_roll).float()


def estimate_mount_rotation(virtual_acc: torch.Tensor, real_acc: torch.Tensor) -> torch.Tensor:
    """The rotation r `[4]` (wxyz) minimising Σ‖r⁻¹·v − f‖² over paired samples.

    Args:
        virtual_acc: `[N, 3]` simulated specific force in the preset's sensor frame (m/s²).
        real_acc: `[N, 3]` measured specific force of the same instants (m/s²). Low-pass both first:
            the estimate should rest on gravity and slow motion, where the simulation is trustworthy.

    Returns r such that `rotate_imu(virtual, r)` best matches the real sensor.
    """
    if virtual_acc.shape != real_acc.shape or virtual_acc.dim() != 2 or virtual_acc.shape[-1] != 3:
        raise ValueError(
            f"virtual_acc and real_acc must both be [N, 3], got {tuple(virtual_acc.shape)}, {tuple(real_acc.shape)}"
        )
    if virtual_acc.shape[0] < 3:
        raise ValueError(f"need ≥ 3 paired samples, got {virtual_acc.shape[0]}")
    if not (torch.isfinite(virtual_acc).all() and torch.isfinite(real_acc).all()):
        raise ValueError("virtual_acc and real_acc must be finite")
    # Wahba: maximise tr(M·Σ v fᵀ) over rotations M = R(r)ᵀ (f ≈ M v); M = V diag(1, 1, d) Uᵀ.
    covariance = virtual_acc.double().T @ real_acc.double()
    u, _, vh = torch.linalg.svd(covariance)
    d = torch.sign(torch.linalg.det(vh.T @ u.T))
    m = vh.T @ torch.diag(torch.stack((torch.ones_like(d), torch.ones_like(d), d))) @ u.T
    return quaternion.from_matrix(m.T).float()
