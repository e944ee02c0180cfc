"""Fit the simulator to a real recording of the same movement (paired data), many trials at once.

Forward model of one trial (`simulate_with`), differentiable in every parameter:

    position, orientation = place(joints, offset_m, preset mount ⊗ r)       (`LimbSensorPreset.place`)
    acc, gyro = simulate(position, orientation)                             (motion rate)
    imu(k) = the above at motion time k / output_hz + τ                     (`resample`, linear)
    imu = (acc · (1 + acc_scale) + acc_bias, gyro · (1 + gyro_scale) + gyro_bias)

r is the sensor's rotation relative to the preset's mounting, new-to-preset as in `rotate_imu`, so it
means what `WristIMUPipeline.mount_rotation` means and a fitted rotation goes straight into a pipeline
config. τ is the recording's clock offset: its sample k is the movement at k / output_hz + τ (τ > 0: the
recording started τ seconds after the first motion frame).

`fit_to_recording` minimises, per trial, the masked mean squared error of the six channels, each
triad normalised by the real triad's variance (acc and gyro weigh alike; one variance per triad keeps
the loss invariant to rotating the sensor frame, which a per-axis weight would not). The per-trial
losses are summed, so each trial's parameters get their own gradient, and Adam's per-element steps make
a batched fit the same as fitting each trial alone. Start (`_start_per_trial`): the time offset from a
grid search on the gyro magnitude (which no rotation changes), the rotation by Wahba's method on the
accelerations, the biases as the mean residual, each kept only where it lowers the trial's loss; then
Adam on everything in `fit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Collection, Sequence

import torch

from virtual_imu import quaternion
from virtual_imu.filters import lowpass, resample
from virtual_imu.kinematics import simulate
from virtual_imu.mounting import estimate_mount_rotation
from virtual_imu.presets import preset
from virtual_imu.validation import UNIT_QUATERNION_TOLERANCE, check_rate

FIT_NAMES = ("rotation", "offset", "time", "bias", "scale")
"""Parameter groups `fit_to_recording` can fit; the others stay at their starting values."""

STEP_UNITS = {"rotation": 0.05, "offset": 0.01, "time": 0.01, "bias": (0.1, 0.01), "scale": 0.01}
"""Adam works on each group in these units (rad, m, s, (m/s², rad/s), relative), so one learning rate
moves every parameter by a comparable physical amount: a step of lr = 0.3 is about 0.9°, 3 mm, 3 ms."""

PRIOR_STD = {"offset": 0.05, "scale": 0.1}
"""Prior σ of the weakly observable groups around their starting values: offset (m per axis; the lever
arm shows only through ω × (ω × o) + α × o, small next to gravity), scale (relative)."""

VARIANCE_FLOOR = (0.1**2, 0.01**2)
"""Smallest triad variance ((m/s²)², (rad/s)²) a trial is normalised by: a still trial would otherwise
weight sensor noise without bound."""

WAHBA_PRIOR_FRACTION = 0.01
"""Weight of the starting rotation in the Wahba start, relative to the data: it settles the rotation
about gravity when a trial's accelerations all point one way, and shifts a well-posed estimate little."""

GRID_STEPS_PER_SAMPLE = 4
"""Time-offset grid: this many candidates per output sample period."""


@dataclass(frozen=True)
class FittedParameters:
    """Per-trial simulator parameters (batch B).

    Attributes:
        rotation: `[B, 4]` (w, x, y, z) sensor rotation relative to the preset's mounting, new-to-preset.
        offset_m: `[B, 3]` sensor position in the segment frame (m), replacing the preset's `offset_m`.
        time_offset_s: `[B]` clock offset τ (s): real sample k is the movement at k / output_hz + τ.
        acc_bias, gyro_bias: `[B, 3]` additive calibration (m/s², rad/s).
        acc_scale, gyro_scale: `[B, 3]` relative scale error (0 = none): out = in · (1 + scale) + bias.
    """

    rotation: torch.Tensor
    offset_m: torch.Tensor
    time_offset_s: torch.Tensor
    acc_bias: torch.Tensor
    gyro_bias: torch.Tensor
    acc_scale: torch.Tensor
    gyro_scale: torch.Tensor

    def __post_init__(self):
        batch = self.rotation.shape[0] if isinstance(self.rotation, torch.Tensor) and self.rotation.dim() else None
        for item in fields(self):
            value = getattr(self, item.name)
            expected = (batch,) if item.name == "time_offset_s" else (batch, 4 if item.name == "rotation" else 3)
            if not isinstance(value, torch.Tensor) or not value.is_floating_point() or tuple(value.shape) != expected:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(
                    f"{item.name} must be a floating tensor of shape {list(expected)} (B from rotation), got {got}"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"{item.name} contains non-finite values")
        deviation = (self.rotation.detach().norm(dim=-1) - 1).abs().max().item()
        if deviation > UNIT_QUATERNION_TOLERANCE:
            raise ValueError(
                f"rotation must be unit quaternions (w, x, y, z); the largest | ‖q‖ − 1 | is {deviation:.3g}"
            )

    @classmethod
    def nominal(
        cls,
        batch: int,
        placement: str,
        *,
        rotation: Sequence[float] | torch.Tensor = (1.0, 0.0, 0.0, 0.0),
        dtype: torch.dtype = torch.float64,
    ) -> FittedParameters:
        """The preset as it is, turned by `rotation` (`[4]` or `[B, 4]`): its offset, no time offset, no calibration."""
        rotation = torch.as_tensor(rotation, dtype=dtype)
        if rotation.shape not in ((4,), (batch, 4)):
            raise ValueError(f"rotation must be [4] or [B = {batch}, 4] quaternions, got {tuple(rotation.shape)}")
        offset = torch.tensor(preset(placement).mount.offset_m, dtype=dtype)
        return cls(
            rotation=rotation.expand(batch, 4).clone(),
            offset_m=offset.expand(batch, 3).clone(),
            time_offset_s=torch.zeros(batch, dtype=dtype),
            **{name: torch.zeros(batch, 3, dtype=dtype)
               for name in ("acc_bias", "gyro_bias", "acc_scale", "gyro_scale")},
        )


@dataclass(frozen=True)
class FitResult:
    """What `fit_to_recording` found.

    Attributes:
        parameters: the fitted `FittedParameters` (batch B).
        loss_before: `[B]` each trial's data loss (normalised MSE, no prior) at the starting point:
            `initial_rotation`, the preset's offset, no time offset, no calibration.
        loss_after: `[B]` the same at the fitted parameters.
    """

    parameters: FittedParameters
    loss_before: torch.Tensor
    loss_after: torch.Tensor


def _imu_at_motion_rate(joints: torch.Tensor, rotation: torch.Tensor, offset_m: torch.Tensor, placement: str,
                        motion_fps: float) -> torch.Tensor:
    """Uncalibrated IMU `[B, T, 6]` at the motion's frame rate."""
    chosen = preset(placement)
    mount = quaternion.multiply(rotation.new_tensor(chosen.mount.mount_rotation).expand_as(rotation), rotation)
    positions, orientations = chosen.place(joints, offset_m=offset_m, mount_rotation=mount)
    return torch.cat(simulate(positions, orientations, motion_fps), dim=-1)


def _calibrate(imu: torch.Tensor, params: FittedParameters) -> torch.Tensor:
    scale = 1 + torch.cat((params.acc_scale, params.gyro_scale), dim=-1)
    bias = torch.cat((params.acc_bias, params.gyro_bias), dim=-1)
    return imu * scale[:, None].to(imu.dtype) + bias[:, None].to(imu.dtype)


def _check_joints(joints: torch.Tensor) -> None:
    valid = isinstance(joints, torch.Tensor) and joints.is_floating_point()
    if not valid or joints.dim() != 4 or joints.shape[-1] != 3:
        got = tuple(joints.shape) if isinstance(joints, torch.Tensor) else type(joints).__name__
        raise ValueError(f"joints must be a floating tensor [B, T, J, 3] (metres), got {got}")


def _available_length(frames: int, motion_fps: float, output_hz: float) -> int:
    """Output samples `resample` makes from `frames` motion frames (same time span)."""
    return math.floor((frames - 1) * output_hz / motion_fps + 1e-9) + 1


def simulate_with(
    joints: torch.Tensor,
    params: FittedParameters,
    *,
    placement: str,
    motion_fps: float,
    output_hz: float,
    output_length: int,
) -> torch.Tensor:
    """Simulated IMU `[B, output_length, 6]` (acc m/s², gyro rad/s) of joints `[B, T, J, 3]` under `params`.

    `output_length` may not exceed what the clip spans (`floor((T − 1) · output_hz / motion_fps) + 1`);
    samples whose shifted time falls outside the clip hold its first / last value.
    """
    _check_joints(joints)
    check_rate("motion_fps", motion_fps)
    check_rate("output_hz", output_hz)
    if params.rotation.shape[0] != joints.shape[0]:
        raise ValueError(f"params hold {params.rotation.shape[0]} trials, joints {joints.shape[0]}")
    available = _available_length(joints.shape[1], motion_fps, output_hz)
    if not isinstance(output_length, int) or not 1 <= output_length <= available:
        raise ValueError(
            f"output_length must be an int in [1, {available}] for T = {joints.shape[1]} frames, got {output_length!r}"
        )
    dtype = joints.dtype
    imu = _imu_at_motion_rate(joints, params.rotation.to(dtype), params.offset_m.to(dtype), placement, motion_fps)
    imu = resample(imu, motion_fps, output_hz, time_offset_s=params.time_offset_s.to(dtype)[:, None])
    return _calibrate(imu[:, :output_length], params)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of `[..., B, T, C]` at the valid samples of `mask` `[B, T]`: `[..., B, C]`."""
    weight = mask[..., None].to(values.dtype)
    return (values * weight).sum(-2) / weight.sum(-2)


def _triad_weights(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Loss weights `[B, T, 6]`: valid samples / (6 · n · variance of the real triad), floored."""
    centred = target - _masked_mean(target, mask)[:, None]
    variance = _masked_mean(centred**2, mask)  # [B, 6]
    floor = variance.new_tensor(VARIANCE_FLOOR)
    triad = torch.stack((variance[:, :3].mean(-1), variance[:, 3:].mean(-1)), dim=-1).maximum(floor)  # [B, 2]
    per_channel = triad.repeat_interleave(3, dim=-1)  # [B, 6]
    count = mask.sum(-1, keepdim=True).to(target.dtype)
    return mask[..., None].to(target.dtype) / (6 * count * per_channel)[:, None]


def _masked_correlation(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pearson r over the valid samples of `mask` `[B, T]` of `x` `[..., B, T]` with `y` `[B, T]`: `[..., B]`."""
    weight = mask.to(x.dtype)
    x = (x - _masked_mean(x[..., None], mask)) * weight
    y = (y - _masked_mean(y[..., None], mask)) * weight
    return (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1)).sqrt().clamp_min(1e-12)


def _check_inputs(
    joints, real, mask, motion_fps, output_hz, fit, steps, lr, lowpass_hz, max_time_offset_s, prior_weight
) -> None:
    _check_joints(joints)
    check_rate("motion_fps", motion_fps)
    check_rate("output_hz", output_hz)
    batch = joints.shape[0]
    if not isinstance(real, torch.Tensor) or real.dim() != 3 or real.shape[0] != batch or real.shape[-1] != 6:
        got = tuple(real.shape) if isinstance(real, torch.Tensor) else type(real).__name__
        raise ValueError(f"real must be a tensor [B = {batch}, T_out, 6] (acc m/s², gyro rad/s), got {got}")
    available = _available_length(joints.shape[1], motion_fps, output_hz)
    if real.shape[1] > available:
        raise ValueError(
            f"real has T_out = {real.shape[1]} samples; joints of T = {joints.shape[1]} frames span {available}"
        )
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != real.shape[:2]:
        got = (mask.dtype, tuple(mask.shape)) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor [B, T_out] = {list(real.shape[:2])}, got {got}")
    lengths = mask.sum(-1)
    prefix = torch.arange(mask.shape[1]) < lengths[:, None]
    if not torch.equal(mask, prefix):
        raise ValueError("mask must mark each trial's valid samples as a prefix (True … True False … False)")
    if lengths.min() < 3:
        raise ValueError(f"mask must leave every trial ≥ 3 valid samples, got {lengths.min().item()}")
    if not torch.isfinite(real[mask]).all():
        raise ValueError("real contains non-finite values at valid samples")
    if isinstance(fit, str) or not all(isinstance(name, str) for name in fit):
        raise ValueError(f"fit must be a collection of names from {FIT_NAMES}, got {fit!r}")
    unknown = sorted(set(fit) - set(FIT_NAMES))
    if unknown:
        raise ValueError(f"fit names unknown parameter groups {unknown}; choose from {FIT_NAMES}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if lowpass_hz is not None and (not isinstance(lowpass_hz, (int, float)) or not 0 < lowpass_hz < output_hz / 2):
        raise ValueError(f"lowpass_hz must be None or lie in (0, output_hz/2 = {output_hz / 2}) Hz, got {lowpass_hz!r}")
    if not isinstance(max_time_offset_s, (int, float)) or not 0 <= max_time_offset_s < math.inf:
        raise ValueError(f"max_time_offset_s must be a finite number ≥ 0, got {max_time_offset_s!r}")
    if not isinstance(prior_weight, (int, float)) or not 0 <= prior_weight < math.inf:
        raise ValueError(f"prior_weight must be a finite number ≥ 0, got {prior_weight!r}")


def _grid_time_offset(imu: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, compare, motion_fps: float,
                      output_hz: float, max_time_offset_s: float) -> torch.Tensor:
    """τ `[B]` maximising the correlation of simulated with real gyro magnitude on a grid within ±max."""
    step = 1.0 / (GRID_STEPS_PER_SAMPLE * output_hz)
    count = math.floor(max_time_offset_s / step + 1e-9)
    candidates = torch.arange(-count, count + 1, dtype=imu.dtype) * step  # [K], 0 included
    gyro = resample(imu[..., 3:], motion_fps, output_hz, time_offset_s=candidates[:, None, None])  # [K, B, L, 3]
    speed = compare(gyro[..., : target.shape[1], :]).norm(dim=-1)
    score = _masked_correlation(speed, target[..., 3:].norm(dim=-1), mask)  # [K, B]
    return candidates[score.argmax(0)]


def _wahba_rotation(virtual_acc: torch.Tensor, real_acc: torch.Tensor, mask: torch.Tensor,
                    start: torch.Tensor) -> torch.Tensor:
    """Per trial the rotation `[B, 4]` taking `virtual_acc` `[B, T, 3]` (preset frame) to `real_acc`.

    Three pseudo-samples (eₖ, start⁻¹·eₖ), weighted `WAHBA_PRIOR_FRACTION` of the data, pull toward `start`.
    """
    rotations = []
    for virtual, real, valid, prior in zip(virtual_acc, real_acc, mask, start):
        virtual, real = virtual[valid], real[valid]
        basis = torch.eye(3, dtype=virtual.dtype) * (WAHBA_PRIOR_FRACTION * (virtual**2).sum() / 3).sqrt()
        pulled = quaternion.rotate_inverse(prior.expand(3, 4), basis)
        rotations.append(estimate_mount_rotation(torch.cat((virtual, basis)), torch.cat((real, pulled))))
    return torch.stack(rotations).to(virtual_acc.dtype)


def _start_per_trial(
    joints, target, mask, start, fit, data_loss, compare, options, max_time_offset_s
) -> FittedParameters:
    """The starting point of the descent, per trial the best by `data_loss` of a few candidates.

    Candidates: time offset 0 or the gyro-magnitude grid's (if "time" is fitted) × rotation `start`'s or
    Wahba's at that offset (if "rotation" is fitted), each with the mean residual as bias (if "bias" is
    fitted). Keeping `start` among them means a trial whose skeleton the sensor barely resembles (then
    the grid and Wahba estimates are arbitrary) starts no worse than the nominal setting.
    """
    placement, motion_fps, output_hz, length = (
        options[k] for k in ("placement", "motion_fps", "output_hz", "output_length")
    )
    identity = start.rotation.new_tensor([1.0, 0.0, 0.0, 0.0]).expand_as(start.rotation)
    imu = _imu_at_motion_rate(joints, identity, start.offset_m, placement, motion_fps)
    times = [start.time_offset_s]
    if "time" in fit:
        times.append(_grid_time_offset(imu, target, mask, compare, motion_fps, output_hz, max_time_offset_s))
    candidates = []
    for time_offset in times:
        rotations = [start.rotation]
        if "rotation" in fit:
            virtual = compare(resample(imu, motion_fps, output_hz, time_offset_s=time_offset[:, None])[:, :length])
            rotations.append(_wahba_rotation(virtual[..., :3], target[..., :3], mask, start.rotation))
        for rotation in rotations:
            candidate = replace(start, rotation=rotation, time_offset_s=time_offset)
            if "bias" in fit:
                residual = _masked_mean(target - compare(simulate_with(joints, candidate, **options)), mask)
                candidate = replace(candidate, acc_bias=residual[:, :3], gyro_bias=residual[:, 3:])
            candidates.append(candidate)
    best = torch.stack([data_loss(candidate) for candidate in candidates]).argmin(0)  # [B], first of equals
    rows = torch.arange(len(best))
    return FittedParameters(
        **{name: torch.stack([vars(c)[name] for c in candidates])[best, rows] for name in vars(start)}
    )


def fit_to_recording(
    joints: torch.Tensor,
    real: torch.Tensor,
    mask: torch.Tensor,
    *,
    placement: str,
    motion_fps: float,
    output_hz: float,
    initial_rotation: Sequence[float] | torch.Tensor = (1.0, 0.0, 0.0, 0.0),
    fit: Collection[str] = FIT_NAMES,
    steps: int = 200,
    lr: float = 0.3,
    lowpass_hz: float | None = None,
    max_time_offset_s: float = 0.5,
    prior_weight: float = 0.01,
) -> FitResult:
    """Per-trial simulator parameters that make the simulation of `joints` match `real`.

    Args:
        joints: `[B, T, J, 3]` joint positions (m) at `motion_fps`; they must span `real`.
        real: `[B, T_out, 6]` the recorded IMU (acc m/s², gyro rad/s) at `output_hz`.
        mask: `[B, T_out]` bool, each trial's valid samples, a prefix of its row (trials differ in length).
        placement: the sensor preset (`virtual_imu.presets.PRESETS`).
        initial_rotation: `[4]` or `[B, 4]` the starting rotation relative to the preset (e.g. a dataset's
            known mounting); kept when "rotation" is not fitted.
        fit: the parameter groups to fit, from `FIT_NAMES`; the others keep their starting values
            (`FittedParameters.nominal`).
        steps, lr: Adam steps (cosine-annealed learning rate) in the units of `STEP_UNITS`.
        lowpass_hz: if given, simulation and recording are both compared after `lowpass` at this cut-off
            (what lies above it, sensor and skeleton noise, is not modelled).
        max_time_offset_s: |τ| bound of the grid search and of the fit.
        prior_weight: strength of the Gaussian prior (`PRIOR_STD`) holding offset and scale near their
            starting values: the descent minimises L + prior_weight · L̂ · Σ(Δ/σ)², L the trial's data loss
            and L̂ its current value held fixed. That is the gradient of the profile likelihood
            (N/2)·log L + ½Σ(Δ/σ)² with prior_weight = 1/N, N the effective number of independent residuals:
            the prior barely acts where the simulation explains the recording down to its noise, and holds
            offset and scale where the residual is mostly what the skeleton gets wrong, which they would
            otherwise absorb.

    Deterministic: same inputs, same result.
    """
    _check_inputs(
        joints, real, mask, motion_fps, output_hz, fit, steps, lr, lowpass_hz, max_time_offset_s, prior_weight
    )
    batch, length, dtype = real.shape[0], real.shape[1], joints.dtype
    options = {"placement": placement, "motion_fps": motion_fps, "output_hz": output_hz, "output_length": length}
    start = FittedParameters.nominal(batch, placement, rotation=initial_rotation, dtype=dtype)

    def compare(signal: torch.Tensor) -> torch.Tensor:
        return signal if lowpass_hz is None else lowpass(signal, lowpass_hz, output_hz)

    # Past its end a trial holds its last sample, so the filter sees no padding values.
    last = real.to(dtype)[torch.arange(batch), mask.sum(-1) - 1]
    target = compare(torch.where(mask[..., None], real.to(dtype), last[:, None]))
    weights = _triad_weights(target, mask)

    def data_loss(params: FittedParameters) -> torch.Tensor:
        return ((compare(simulate_with(joints, params, **options)) - target) ** 2 * weights).sum((1, 2))

    with torch.no_grad():
        loss_before = data_loss(start)
        initial = _start_per_trial(joints, target, mask, start, fit, data_loss, compare, options, max_time_offset_s)

    free = {name: torch.zeros(batch, 6 if name in ("bias", "scale") else 1 if name == "time" else 3, dtype=dtype,
                              requires_grad=True) for name in FIT_NAMES if name in fit}
    bias_unit = torch.tensor(STEP_UNITS["bias"], dtype=dtype).repeat_interleave(3)

    def current() -> FittedParameters:
        values = vars(initial).copy()
        if "rotation" in free:
            turn = quaternion.from_rotation_vector(STEP_UNITS["rotation"] * free["rotation"])
            values["rotation"] = quaternion.multiply(initial.rotation, turn)
        if "offset" in free:
            values["offset_m"] = initial.offset_m + STEP_UNITS["offset"] * free["offset"]
        if "time" in free:
            values["time_offset_s"] = initial.time_offset_s + STEP_UNITS["time"] * free["time"][:, 0]
        if "scale" in free:
            scale = STEP_UNITS["scale"] * free["scale"]
            values["acc_scale"], values["gyro_scale"] = scale[:, :3], scale[:, 3:]
        if "bias" in free:
            bias = torch.cat((initial.acc_bias, initial.gyro_bias), dim=-1) + bias_unit * free["bias"]
            values["acc_bias"], values["gyro_bias"] = bias[:, :3], bias[:, 3:]
        return FittedParameters(**values)

    def prior(params: FittedParameters) -> torch.Tensor:
        offset = ((params.offset_m - start.offset_m) / PRIOR_STD["offset"]) ** 2
        scale = (torch.cat((params.acc_scale, params.gyro_scale), dim=-1) / PRIOR_STD["scale"]) ** 2
        return offset.sum(-1) + scale.sum(-1)

    if free and steps:
        optimizer = torch.optim.Adam(free.values(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        if "time" in free:  # projected steps: keep |τ| ≤ max_time_offset_s
            low = ((-max_time_offset_s - initial.time_offset_s) / STEP_UNITS["time"])[:, None]
            high = ((max_time_offset_s - initial.time_offset_s) / STEP_UNITS["time"])[:, None]
        for _ in range(steps):
            optimizer.zero_grad()
            params = current()
            data = data_loss(params)
            # The prior's weight follows the trial's misfit L̂ (see `prior_weight`), held fixed within the step.
            (data + prior_weight * data.detach() * prior(params)).sum().backward()
            optimizer.step()
            schedule.step()
            if "time" in free:
                with torch.no_grad():
                    free["time"].copy_(free["time"].clamp(low, high))
    with torch.no_grad():
        fitted = current()
        return FitResult(parameters=fitted, loss_before=loss_before, loss_after=data_loss(fitted))
