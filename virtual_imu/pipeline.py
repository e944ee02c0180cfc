"""Joints → wrist IMU: placement, simulation, resampling, MEMS sensor model (batched, pure torch).

This is what the on-the-fly DataModule runs on the training device for every batch; it is also the unit
the throughput benchmark measures. Every random quantity is drawn per clip by `draw` (in a DataLoader
worker, seeded by the clip) and applied here, so a clip is identical on any device and in any batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import torch

from virtual_imu import quaternion
from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.filters import lowpass, resample
from virtual_imu.kinematics import simulate
from virtual_imu.mems import MEMSIMU
from virtual_imu.mounting import MountJitter, rotate_imu
from virtual_imu.presets import preset
from virtual_imu.randomization import MIRRORED_PLACEMENT, PlacementRandomization, yaw_motion, yaw_rotation
from virtual_imu.validation import check_rate

IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""Channel order of every IMU tensor `[..., 6]`: specific force (m/s²) then angular rate (rad/s)."""

_IDENTITY = (1.0, 0.0, 0.0, 0.0)
TRAJECTORY_KEYS = ("trajectory_positions", "trajectory_orientations")
"""Keys of a clip's own sensor trajectory in a batch (see `WristIMUPipeline`)."""


@dataclass(frozen=True)
class WristIMUPipeline:
    """Simulates a wrist-worn IMU from joint positions.

    Attributes:
        placement: a preset name from `virtual_imu.presets.PRESETS` (e.g. "left_wrist").
        motion_fps: frame rate of the joint positions, Hz.
        target_hz: output data rate of the virtual sensor, Hz.
        sensor: the MEMS sensor model (errors, range, resolution, on-chip low-pass, sample-time jitter);
            `virtual_imu.devices.device(name)` gives datasheet presets.
        lowpass_hz: optional zero-phase low-pass on sensor positions before differentiation.
        up_axis, gravity: world conventions of the motion (see `virtual_imu.simulate`).
        mount_rotation: fixed (w, x, y, z) rotation of the sensor relative to the preset's mounting
            (e.g. a dataset's watch orientation, estimated with `virtual_imu.mounting.estimate_mount_rotation`
            or `virtual_imu.fit`).
        mount_jitter: random extra rotation per clip (augmentation for an unknown mounting), or None.
        randomization: per-clip placement variation (offset, other wrist, upside down, yaw, random
            rotation), or None.

    A clip may bring its own sensor trajectory instead (`trajectory_positions` `[..., T, 3]` (m) and
    `trajectory_orientations` `[..., T, 4]` (w, x, y, z, sensor-to-world) among the draws, e.g. a sensor on
    the SMPL body surface from `motion.amass_clips`): it replaces `placement`, and global yaw turns it
    with the joints. The mount rotation, mount jitter, upside-down and random rotations and the sensor
    model apply to it as to a preset; the preset's own variations (`randomization.offset_along_m` along
    the forearm, `randomization.other_wrist_probability`, a `body_girth_scale` draw) cannot move a
    precomputed trajectory and raise a ValueError.
    """

    placement: str = "left_wrist"
    motion_fps: float = 20.0
    target_hz: float = 50.0
    sensor: MEMSIMU = field(default_factory=MEMSIMU)
    lowpass_hz: float | None = None
    up_axis: str = "y"
    gravity: float = STANDARD_GRAVITY
    mount_rotation: tuple[float, float, float, float] = _IDENTITY
    mount_jitter: MountJitter | None = None
    randomization: PlacementRandomization | None = None

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
        """The random draws of one clip, keyed like `__call__`'s `draws` (without the batch dim)."""
        draws = self.sensor.draw(imu_length, generator)
        if self.mount_jitter is not None:
            draws["mount_jitter"] = self.mount_jitter.draw((), generator)
        if self.randomization is not None:
            draws.update(self.randomization.draw(generator))
        return draws

    def __call__(self, joints: torch.Tensor, draws: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """IMU signals `[..., T_out, 6]` (acc m/s², gyro rad/s) from joints `[..., T, J, 3]` (metres).

        `draws` holds the batched per-clip draws of `draw` (extra keys are ignored, so a whole collated
        batch can be passed), and the clips' own sensor trajectory when they have one (see the class
        docstring). Without them the sensor is ideal apart from its range and resolution and the
        placement is the nominal one.
        """
        randomized = self.randomization is not None and draws is not None
        positions, orientations = self._place(joints, draws)
        acc, gyro = simulate(
            positions, orientations, self.motion_fps, gravity=self.gravity, up_axis=self.up_axis, lowpass_hz=self.lowpass_hz
        )
        imu = torch.cat((acc, gyro), dim=-1)
        rotation = self._sensor_rotation(imu, draws, randomized)
        if rotation is not None:
            imu = rotate_imu(imu, rotation)
        bandwidth = self.sensor.bandwidth_hz
        if bandwidth is not None and bandwidth < self.motion_fps / 2:  # above it the motion holds nothing to remove
            imu = lowpass(imu, bandwidth, self.motion_fps)
        jitter = self.sensor.time_offsets_s(draws) if draws is not None and self.sensor.time_jitter_std_s > 0 else None
        imu = resample(imu, self.motion_fps, self.target_hz, time_offset_s=jitter)
        return self.sensor.measure(imu, self.target_hz, draws)

    def _place(self, joints: torch.Tensor, draws: Mapping[str, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sensor positions `[..., T, 3]` and orientations `[..., T, 4]`, with the drawn yaw, offset and wrist.

        A `body_girth_scale` draw `[...]` (a thicker or thinner limb than the preset's) scales the
        sensor's stand-off from the bone, the offset's y and z. A given trajectory (`TRAJECTORY_KEYS` in
        `draws`) replaces the preset.
        """
        randomized = self.randomization is not None and draws is not None
        girth = None if draws is None else draws.get("body_girth_scale")
        if draws is not None and any(key in draws for key in TRAJECTORY_KEYS):
            return self._given_trajectory(joints, draws, randomized, girth)
        if randomized and self.randomization.global_yaw:
            joints = yaw_motion(joints, draws["placement_yaw_rad"], self.up_axis)
        if not randomized and girth is None:
            return preset(self.placement).place(joints)

        def placed(name: str):
            offset = joints.new_tensor(preset(name).mount.offset_m).expand(*joints.shape[:-3], 3)
            if girth is not None:
                offset = offset * torch.stack((torch.ones_like(girth), girth, girth), dim=-1).to(joints.dtype)
            if randomized:
                along = draws["placement_offset_along_m"].to(joints.dtype)
                offset = offset + torch.stack((along, torch.zeros_like(along), torch.zeros_like(along)), dim=-1)
            return preset(name).place(joints, offset_m=offset)

        positions, orientations = placed(self.placement)
        if randomized and self.randomization.other_wrist_probability > 0:
            other = draws["placement_other_wrist"][..., None, None]
            other_positions, other_orientations = placed(MIRRORED_PLACEMENT[self.placement])
            positions = torch.where(other, other_positions, positions)
            orientations = torch.where(other, other_orientations, orientations)
        return positions, orientations

    def _given_trajectory(
        self, joints: torch.Tensor, draws: Mapping[str, torch.Tensor], randomized: bool, girth: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The clips' own trajectory from `draws`, in the joints' dtype and device, turned by the drawn yaw."""
        missing = [key for key in TRAJECTORY_KEYS if key not in draws]
        if missing:
            raise ValueError(f"a given sensor trajectory needs both {TRAJECTORY_KEYS}; missing {missing}")
        fixed = [f"randomization.{name} > 0" for name in ("offset_along_m", "other_wrist_probability")
                 if randomized and getattr(self.randomization, name) > 0]
        fixed += [] if girth is None else ["a body_girth_scale draw"]
        if fixed:
            raise ValueError(
                f"the joint-based preset's placement variations cannot move a given sensor trajectory "
                f"({', '.join(TRAJECTORY_KEYS)}): turn off {', '.join(fixed)}"
            )
        positions = draws["trajectory_positions"].to(joints.device, joints.dtype)
        orientations = draws["trajectory_orientations"].to(joints.device, joints.dtype)
        frames = joints.shape[:-2]  # [..., T]
        if positions.shape != (*frames, 3) or orientations.shape != (*frames, 4):
            raise ValueError(
                f"trajectory_positions and trajectory_orientations must have shapes [..., T, 3] and [..., T, 4] with the "
                f"joints' [..., T] = {list(frames)}, got {list(positions.shape)} and {list(orientations.shape)}"
            )
        if randomized and self.randomization.global_yaw:
            turn = yaw_rotation(draws["placement_yaw_rad"], self.up_axis, dtype=joints.dtype)[..., None, :]
            positions = quaternion.rotate(turn.expand(*positions.shape[:-1], 4), positions)
            orientations = quaternion.multiply(turn.expand_as(orientations), orientations)
        return positions, orientations

    def _sensor_rotation(
        self, imu: torch.Tensor, draws: Mapping[str, torch.Tensor] | None, randomized: bool
    ) -> torch.Tensor | None:
        """New-sensor-to-preset rotation `[..., 4]`: mount ⊗ jitter ⊗ upside-down ⊗ random, or None for identity."""
        parts = [] if self.mount_rotation == _IDENTITY else [imu.new_tensor(self.mount_rotation)]
        if self.mount_jitter is not None and draws is not None:
            parts.append(draws["mount_jitter"].to(imu.dtype))
        if randomized:
            extra = PlacementRandomization.extra_rotation(draws["placement_upside_down"], draws["placement_rotation"])
            parts.append(extra.to(imu.dtype))
        if not parts:
            return None
        rotation = parts[0]
        for part in parts[1:]:
            rotation = quaternion.multiply(*torch.broadcast_tensors(rotation, part))
        return rotation


def sliding_windows(signal: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Windows `[..., N, window, C]` of `signal` `[..., T, C]` starting at 0, stride, 2·stride, …

    The tail that does not fill a whole window is dropped.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be ≥ 1, got window={window}, stride={stride}")
    if signal.shape[-2] < window:
        raise ValueError(f"signal has T = {signal.shape[-2]} samples, fewer than one window of {window}")
    return signal.unfold(-2, window, stride).transpose(-1, -2)
