"""Joints → wrist IMU windows: placement, simulation, resampling, sensor noise, windowing (batched, pure torch).

This is what the on-the-fly DataModule runs on the training device for every batch; it is also the unit
the throughput benchmark measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from virtual_imu import quaternion
from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.filters import resample
from virtual_imu.kinematics import simulate
from virtual_imu.mounting import MountJitter, rotate_imu
from virtual_imu.noise import WhiteNoiseBias
from virtual_imu.presets import preset
from virtual_imu.validation import check_rate

IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""Channel order of every IMU tensor `[..., 6]`: specific force (m/s²) then angular rate (rad/s)."""


@dataclass(frozen=True)
class WristIMUPipeline:
    """Simulates a wrist-worn IMU from joint positions.

    Attributes:
        placement: a preset name from `virtual_imu.presets.PRESETS` (e.g. "left_wrist").
        motion_fps: frame rate of the joint positions, Hz.
        target_hz: output data rate of the virtual sensor, Hz.
        noise: sensor error model applied at the output rate.
        lowpass_hz: optional zero-phase low-pass on sensor positions before differentiation.
        up_axis, gravity: world conventions of the motion (see `virtual_imu.simulate`).
        mount_rotation: fixed (w, x, y, z) rotation of the sensor relative to the preset's mounting
            (e.g. a dataset's watch orientation, estimated with `virtual_imu.mounting.estimate_mount_rotation`).
        mount_jitter: random extra rotation per clip (augmentation for an unknown mounting), or None.
    """

    placement: str = "left_wrist"
    motion_fps: float = 20.0
    target_hz: float = 50.0
    noise: WhiteNoiseBias = field(default_factory=WhiteNoiseBias)
    lowpass_hz: float | None = None
    up_axis: str = "y"
    gravity: float = STANDARD_GRAVITY
    mount_rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    mount_jitter: MountJitter | None = None

    def __post_init__(self):
        preset(self.placement)  # validates the name
        object.__setattr__(self, "mount_rotation", tuple(float(v) for v in self.mount_rotation))
        if len(self.mount_rotation) != 4 or not abs(math.hypot(*self.mount_rotation) - 1) <= 1e-3:  # NaN fails too
            raise ValueError(f"mount_rotation must be a unit quaternion (w, x, y, z), got {self.mount_rotation}")
        check_rate("motion_fps", self.motion_fps)
        check_rate("target_hz", self.target_hz)

    def output_length(self, motion_frames: int) -> int:
        """Number of output samples for a clip of `motion_frames` frames (same time span)."""
        return math.floor((motion_frames - 1) * self.target_hz / self.motion_fps + 1e-9) + 1

    def draw(self, imu_length: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The random draws of one clip, keyed like the arguments of `__call__` (without the batch dim)."""
        white, bias = WhiteNoiseBias.draw((imu_length, 6), generator)
        draws = {"noise_white": white, "noise_bias": bias}
        if self.mount_jitter is not None:
            draws["mount_jitter"] = self.mount_jitter.draw((), generator)
        return draws

    def __call__(
        self,
        joints: torch.Tensor,
        noise_white: torch.Tensor | None = None,
        noise_bias: torch.Tensor | None = None,
        mount_jitter: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """IMU signals `[..., T_out, 6]` (acc m/s², gyro rad/s) from joints `[..., T, J, 3]` (metres).

        `noise_white` `[..., T_out, 6]` and `noise_bias` `[..., 1, 6]` are unit-variance draws
        (see `WhiteNoiseBias.draw`); without them the output is noise-free. `mount_jitter` `[..., 4]`
        rotates each clip's sensor further (see `draw`).
        """
        positions, orientations = preset(self.placement).place(joints)
        acc, gyro = simulate(
            positions, orientations, self.motion_fps, gravity=self.gravity, up_axis=self.up_axis, lowpass_hz=self.lowpass_hz
        )
        imu = torch.cat((acc, gyro), dim=-1)
        rotation = None if self.mount_rotation == (1.0, 0.0, 0.0, 0.0) else imu.new_tensor(self.mount_rotation)
        if mount_jitter is not None:
            # Jitter turns the already-mounted sensor: one composed rotation, new-to-preset = mount ⊗ jitter.
            jitter = mount_jitter.to(imu.dtype)
            rotation = jitter if rotation is None else quaternion.multiply(rotation.expand_as(jitter), jitter)
        if rotation is not None:
            imu = rotate_imu(imu, rotation)
        imu = resample(imu, self.motion_fps, self.target_hz)
        if noise_white is not None:
            if noise_bias is None or noise_white.shape != imu.shape:
                raise ValueError(
                    f"noise_white must have the output's shape {tuple(imu.shape)} and come with noise_bias, got "
                    f"{tuple(noise_white.shape)}"
                )
            acc_noisy, gyro_noisy = self.noise.apply(imu[..., :3], imu[..., 3:], noise_white, noise_bias)
            imu = torch.cat((acc_noisy, gyro_noisy), dim=-1)
        return imu


def sliding_windows(signal: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Windows `[..., N, window, C]` of `signal` `[..., T, C]` starting at 0, stride, 2·stride, …

    The tail that does not fill a whole window is dropped.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be ≥ 1, got window={window}, stride={stride}")
    if signal.shape[-2] < window:
        raise ValueError(f"signal has T = {signal.shape[-2]} samples, fewer than one window of {window}")
    return signal.unfold(-2, window, stride).transpose(-1, -2)
