"""First sensor-error stage: constant per-axis bias plus white noise (the full MEMS model comes later).

Noise is drawn as standard-normal tensors from a `torch.Generator` and scaled afterwards, so a caller
can also draw the unit-variance draws elsewhere (e.g. per clip in a DataLoader worker, seeded by the
clip index) and apply them on the training device — identical results on any device and batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WhiteNoiseBias:
    """Standard deviations of the error terms, per axis.

    Attributes:
        acc_noise_std: white-noise σ of the accelerometer at the output rate, m/s².
        acc_bias_std: σ of the constant accelerometer bias (one draw per clip and axis), m/s².
        gyro_noise_std: white-noise σ of the gyroscope at the output rate, rad/s.
        gyro_bias_std: σ of the constant gyroscope bias, rad/s.
    """

    acc_noise_std: float = 0.0
    acc_bias_std: float = 0.0
    gyro_noise_std: float = 0.0
    gyro_bias_std: float = 0.0

    def __post_init__(self):
        for name in ("acc_noise_std", "acc_bias_std", "gyro_noise_std", "gyro_bias_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    @staticmethod
    def draw(shape: tuple[int, ...], generator: torch.Generator | None = None, dtype=torch.float32, device=None):
        """Unit-variance draws for signals of shape `[..., T, 6]`: white `[..., T, 6]`, bias `[..., 1, 6]`."""
        white = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        bias = torch.randn((*shape[:-2], 1, shape[-1]), generator=generator, dtype=dtype, device=device)
        return white, bias

    def apply(
        self, acc: torch.Tensor, gyro: torch.Tensor, white: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add scaled draws to `acc`, `gyro` `[..., T, 3]`; `white` `[..., T, 6]`, `bias` `[..., 1, 6]`."""
        noise_std = acc.new_tensor([self.acc_noise_std] * 3 + [self.gyro_noise_std] * 3)
        bias_std = acc.new_tensor([self.acc_bias_std] * 3 + [self.gyro_bias_std] * 3)
        error = white * noise_std + bias * bias_std
        return acc + error[..., :3], gyro + error[..., 3:]

    def __call__(
        self, acc: torch.Tensor, gyro: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy copies of `acc`, `gyro` `[..., T, 3]`, drawing from `generator` (seeded → reproducible)."""
        if acc.shape != gyro.shape or acc.shape[-1] != 3:
            raise ValueError(f"acc and gyro must both be [..., T, 3], got {tuple(acc.shape)} and {tuple(gyro.shape)}")
        white, bias = self.draw((*acc.shape[:-1], 6), generator, acc.dtype, acc.device)
        return self.apply(acc, gyro, white, bias)
