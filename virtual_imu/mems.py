"""MEMS IMU error model: what a real accelerometer + gyroscope add to the ideal signal.

Per triaxial sensor, at the output data rate fs (dt = 1/fs), sample k:

    y[k] = (I + diag(s) + C) · x[k]  (+ G · f[k], gyroscope only)  + b + r[k] + m[k] + w[k]

then saturation at ±full_scale and quantisation to LSB = 2·full_scale / 2**bits. Here s is the per-axis
scale-factor error, C the off-diagonal cross-axis coupling (misalignment), G the gyroscope's
g-sensitivity acting on the true specific force f, b the turn-on bias (constant per clip), r a rate random
walk r[k] = r[k−1] + K·√dt·n[k], m a first-order Gauss–Markov drift and w white noise of σ = N·√fs (N the
continuous-time noise density, the convention of Kalibr's IMU noise model; it gives the Allan deviation
N/√τ). Saturation and quantisation are straight-through: exact forward values, gradient 1.

Randomness enters only through unit-variance draws (`MEMSIMU.draw`, one clip at a time, e.g. in a
DataLoader worker seeded by the clip index) that `MEMSIMU.measure` scales on the training device, so the
result does not depend on the device or the batching. Every key is always drawn, whatever the settings:
batches collate, and one seed gives the same draws for every device preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from virtual_imu.validation import check_rate, check_series

DRAW_PREFIX = "sensor_"


def draw_shapes(length: int) -> dict[str, tuple[int, ...]]:
    """Shape (without batch dims) of each unit-variance draw of a clip of `length` output samples."""
    return {
        "sensor_white": (length, 6),
        "sensor_bias": (6,),
        "sensor_random_walk": (length, 6),
        "sensor_gauss_markov": (length, 6),
        "sensor_scale": (6,),
        "sensor_cross_axis": (2, 3, 3),  # accelerometer, gyroscope; the diagonal is unused
        "sensor_g_sensitivity": (3, 3),
        "sensor_time_jitter": (length,),
    }


def _check_non_negative(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")


def _straight_through(value: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """`exact` in the forward pass, identity gradient with respect to `value`.

    `value − value.detach()` is exactly 0, so the forward result is bit-exact (unlike value + (exact − value)).
    """
    return exact.detach() + (value - value.detach())


def gauss_markov(unit: torch.Tensor, std: float, tau_s: float, dt_s: float) -> torch.Tensor:
    """Stationary first-order Gauss–Markov sequences `[..., T, C]` from standard-normal draws `unit` `[..., T, C]`.

    b[0] = σ·n[0], b[k] = a·b[k−1] + σ·√(1 − a²)·n[k] with a = exp(−dt/τ). Unrolled, b is a causal
    convolution of n with the kernel a^j, computed for all T at once by FFT in float64 (no recurrence,
    nothing that grows like a^−k).
    """
    length = unit.shape[-2]
    ratio = dt_s / tau_s
    gain = math.sqrt(-math.expm1(-2 * ratio))  # √(1 − a²), accurate when a is close to 1
    kernel = torch.exp(-ratio * torch.arange(length, dtype=torch.float64, device=unit.device))  # a^j
    noise = unit.to(torch.float64).transpose(-1, -2)  # [..., C, T]
    size = 2 * length  # zero padding turns the circular convolution into the linear one
    convolved = torch.fft.irfft(torch.fft.rfft(noise, size) * torch.fft.rfft(kernel, size), size)[..., :length]
    # The convolution weights n[0] by √(1 − a²) too; the stationary start weights it by 1.
    drift = gain * convolved + (1 - gain) * kernel * noise[..., :1]
    return (std * drift).transpose(-1, -2).to(unit.dtype)


@dataclass(frozen=True)
class TriaxialErrors:
    """Error parameters of one triaxial sensor (accelerometer: m/s² units; gyroscope: rad/s units).

    Attributes:
        noise_density: white-noise density N, unit/√Hz; per-sample σ = N·√fs.
        bias_std: σ of the turn-on bias per axis, constant within a clip.
        bias_random_walk: rate-random-walk coefficient K, unit/s/√Hz: r[k] = r[k−1] + K·√dt·n[k], r[−1] = 0.
        gauss_markov_std: stationary σ of the first-order Gauss–Markov drift (bias instability).
        gauss_markov_tau_s: its correlation time, s.
        scale_error_std: σ of each axis' scale-factor error (fraction).
        cross_axis_std: σ of each off-diagonal coupling term (fraction ≈ misalignment angle in rad).
        full_scale: output range ±full_scale (inf: no saturation).
        bits: ADC resolution, LSB = 2·full_scale / 2**bits, signed codes −2**(bits−1) … 2**(bits−1) − 1
            (None: no quantisation).
    """

    noise_density: float = 0.0
    bias_std: float = 0.0
    bias_random_walk: float = 0.0
    gauss_markov_std: float = 0.0
    gauss_markov_tau_s: float = 100.0
    scale_error_std: float = 0.0
    cross_axis_std: float = 0.0
    full_scale: float = math.inf
    bits: int | None = None

    def __post_init__(self):
        for name in (
            "noise_density", "bias_std", "bias_random_walk", "gauss_markov_std", "scale_error_std", "cross_axis_std"
        ):  # fmt: skip
            _check_non_negative(name, getattr(self, name))
        tau = self.gauss_markov_tau_s
        if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0 < tau < math.inf:
            raise ValueError(f"gauss_markov_tau_s must be a finite positive number of seconds, got {tau!r}")
        scale = self.full_scale
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
            raise ValueError(f"full_scale must be a positive number (inf: no saturation), got {scale!r}")
        if self.bits is not None:
            if not isinstance(self.bits, int) or isinstance(self.bits, bool) or self.bits < 2:
                raise ValueError(f"bits must be None or an integer ≥ 2, got {self.bits!r}")
            if not math.isfinite(scale):
                raise ValueError(f"bits = {self.bits} needs a finite full_scale to quantise, got {scale}")

    @property
    def lsb(self) -> float | None:
        """Quantisation step (None without quantisation)."""
        return None if self.bits is None else 2 * self.full_scale / 2**self.bits

    def sensitivity(self, scale: torch.Tensor, cross_axis: torch.Tensor) -> torch.Tensor | None:
        """I + diag(scale_error_std·scale) + cross_axis_std·offdiag(cross_axis) `[..., 3, 3]` (None: identity).

        `scale` `[..., 3]` and `cross_axis` `[..., 3, 3]` are unit-variance draws.
        """
        if self.scale_error_std == 0 and self.cross_axis_std == 0:
            return None
        eye = torch.eye(3, dtype=scale.dtype, device=scale.device)
        return eye + torch.diag_embed(self.scale_error_std * scale) + self.cross_axis_std * (1 - eye) * cross_axis

    def additive_error(
        self,
        bias: torch.Tensor,
        random_walk: torch.Tensor,
        gauss_markov_draws: torch.Tensor,
        white: torch.Tensor,
        output_hz: float,
    ) -> torch.Tensor | None:
        """Additive error `[..., T, 3]` from unit-variance draws: `bias` `[..., 3]`, the rest `[..., T, 3]`.

        None when every additive term is off.
        """
        dt = 1.0 / output_hz
        terms = []
        if self.bias_std:
            terms.append(self.bias_std * bias.unsqueeze(-2))
        if self.bias_random_walk:
            terms.append(self.bias_random_walk * math.sqrt(dt) * torch.cumsum(random_walk, dim=-2))
        if self.gauss_markov_std:
            terms.append(gauss_markov(gauss_markov_draws, self.gauss_markov_std, self.gauss_markov_tau_s, dt))
        if self.noise_density:
            terms.append(self.noise_density * math.sqrt(output_hz) * white)
        return sum(terms[1:], terms[0]).expand_as(white) if terms else None

    def digitize(self, value: torch.Tensor) -> torch.Tensor:
        """Saturate at ±full_scale, then quantise (the top code is full_scale − LSB); straight-through gradient."""
        if math.isinf(self.full_scale):
            return value
        exact = value.clamp(-self.full_scale, self.full_scale)
        if self.bits is not None:
            top_code = 2 ** (self.bits - 1)
            exact = torch.round(exact / self.lsb).clamp(-top_code, top_code - 1) * self.lsb
        return _straight_through(value, exact)


@dataclass(frozen=True)
class MEMSIMU:
    """A 6-axis MEMS IMU: accelerometer and gyroscope errors plus what couples or times them.

    Attributes:
        accelerometer, gyroscope: per-sensor error parameters.
        gyro_g_sensitivity_std: σ of each entry of the gyroscope's g-sensitivity matrix G, rad/s per m/s²
            (gyro error += G·f, f the true specific force).
        bandwidth_hz: on-chip digital low-pass cut-off, Hz (None: none). The pipeline applies it (with
            `virtual_imu.filters.lowpass`) before resampling to the output data rate.
        time_jitter_std_s: σ of each output sample's time error, s (see `time_offsets_s`).
    """

    accelerometer: TriaxialErrors = field(default_factory=TriaxialErrors)
    gyroscope: TriaxialErrors = field(default_factory=TriaxialErrors)
    gyro_g_sensitivity_std: float = 0.0
    bandwidth_hz: float | None = None
    time_jitter_std_s: float = 0.0

    def __post_init__(self):
        for name in ("accelerometer", "gyroscope"):
            if not isinstance(getattr(self, name), TriaxialErrors):
                raise ValueError(f"{name} must be a TriaxialErrors, got {type(getattr(self, name)).__name__}")
        _check_non_negative("gyro_g_sensitivity_std", self.gyro_g_sensitivity_std)
        _check_non_negative("time_jitter_std_s", self.time_jitter_std_s)
        if self.bandwidth_hz is not None:
            check_rate("bandwidth_hz", self.bandwidth_hz)
            if math.isinf(self.bandwidth_hz):
                raise ValueError("bandwidth_hz must be finite (None: no on-chip low-pass)")

    def draw(self, length: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Standard-normal float32 draws of one clip of `length` output samples (shapes in `draw_shapes`)."""
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ValueError(f"length must be a positive integer number of samples, got {length!r}")
        return {key: torch.randn(shape, generator=generator) for key, shape in draw_shapes(length).items()}

    def time_offsets_s(self, draws: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sample-time errors `[..., T]`, s, from `draws["sensor_time_jitter"]` `[..., T]` (for the resampler)."""
        jitter = draws.get("sensor_time_jitter") if isinstance(draws, Mapping) else None
        if not isinstance(jitter, torch.Tensor) or jitter.dim() < 1:
            raise ValueError("draws must hold a tensor sensor_time_jitter [..., T] (see MEMSIMU.draw)")
        return self.time_jitter_std_s * jitter

    def measure(
        self, imu: torch.Tensor, output_hz: float, draws: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Sensor output `[..., T, 6]` from the true signal `imu` `[..., T, 6]` (acc m/s², gyro rad/s) at `output_hz`.

        `draws` are this clip's (or batch's) unit-variance draws, batched like `imu`'s leading dims (as a
        DataLoader collates `draw`'s output); None: no random errors (saturation and quantisation still apply).
        """
        check_series("imu", imu, 6, min_length=1)
        check_rate("output_hz", output_hz)
        acc, gyro = imu[..., :3], imu[..., 3:]
        if draws is not None:
            d = self._checked(draws, imu)
            true_acc = acc
            sensors = []
            for index, (errors, signal) in enumerate(((self.accelerometer, acc), (self.gyroscope, gyro))):
                axes = slice(3 * index, 3 * index + 3)
                matrix = errors.sensitivity(d["sensor_scale"][..., axes], d["sensor_cross_axis"][..., index, :, :])
                if matrix is not None:
                    signal = signal @ matrix.mT
                additive = errors.additive_error(
                    d["sensor_bias"][..., axes],
                    d["sensor_random_walk"][..., axes],
                    d["sensor_gauss_markov"][..., axes],
                    d["sensor_white"][..., axes],
                    output_hz,
                )
                sensors.append(signal if additive is None else signal + additive)
            acc, gyro = sensors
            if self.gyro_g_sensitivity_std:
                gyro = gyro + true_acc @ (self.gyro_g_sensitivity_std * d["sensor_g_sensitivity"]).mT
        return torch.cat((self.accelerometer.digitize(acc), self.gyroscope.digitize(gyro)), dim=-1)

    @staticmethod
    def _checked(draws: Mapping[str, torch.Tensor], imu: torch.Tensor) -> dict[str, torch.Tensor]:
        """The sensor draws, shape-checked against `imu` `[..., T, 6]` and cast to its dtype and device."""
        if not isinstance(draws, Mapping):
            raise ValueError(f"draws must be a mapping of tensors (see MEMSIMU.draw), got {type(draws).__name__}")
        lead, length = tuple(imu.shape[:-2]), imu.shape[-2]
        expected = draw_shapes(length)
        unknown = sorted(k for k in draws if isinstance(k, str) and k.startswith(DRAW_PREFIX) and k not in expected)
        if unknown:
            raise ValueError(f"draws has unknown sensor keys {unknown}; expected {sorted(expected)}")
        checked = {}
        for key, shape in expected.items():
            value = draws.get(key)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"draws lacks the tensor {key} (see MEMSIMU.draw)")
            if tuple(value.shape) != (*lead, *shape):
                raise ValueError(
                    f"draws[{key!r}] must have shape {(*lead, *shape)} for imu of shape {tuple(imu.shape)}, "
                    f"got {tuple(value.shape)}"
                )
            checked[key] = value.to(dtype=imu.dtype, device=imu.device)
        return checked
