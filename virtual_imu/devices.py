"""Named MEMS IMU presets built from published datasheet figures.

Figures are "typ." values in the datasheets' own units (comments), converted to SI here. Bosch
Sensortec specifies typical values as ±1σ of the production spread (min / max as ±3σ; Bosch's answer in
the community thread "BMI270 gyroscope x axis zero-rate offset out of spec"), so a "±x typ." becomes a
standard deviation x. Datasheets do not give bias instability or rate random walk; those use the order
of magnitude that Allan-variance characterisations of consumer MEMS IMUs report (bias instability of a
few °/h and ~0.1 mg, rate random walk ~1e-4 per √s), and say so. A 4 s clip barely sees them: the turn-on
bias dominates.
"""

from __future__ import annotations

import math

from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.mems import MEMSIMU, TriaxialErrors

G = STANDARD_GRAVITY
DEG = math.radians(1.0)

# Bosch Sensortec BMI270 data sheet (BST-BMI270-DS000, rev. 1.x): smartwatch-class 6-axis IMU.
BMI270 = MEMSIMU(
    accelerometer=TriaxialErrors(
        noise_density=160e-6 * G,  # output noise density 160 µg/√Hz typ.
        bias_std=20e-3 * G,  # zero-g offset ±20 mg typ. (25 °C, soldered, over lifetime)
        bias_random_walk=10e-6 * G,  # assumed order: 10 µg/√s rate random walk
        gauss_markov_std=0.1e-3 * G,  # assumed order: 0.1 mg bias instability …
        gauss_markov_tau_s=100.0,  # … correlated over ~100 s
        scale_error_std=0.004,  # sensitivity error ±0.4 % typ.
        cross_axis_std=0.005,  # cross-axis sensitivity ±0.5 % typ.
        full_scale=16 * G,  # ±16 g range
        bits=16,
    ),
    gyroscope=TriaxialErrors(
        noise_density=0.007 * DEG,  # output noise density 0.007 °/s/√Hz typ. (performance mode)
        bias_std=0.5 * DEG,  # zero-rate offset ±0.5 °/s typ.
        bias_random_walk=3e-4 * DEG,  # assumed order: 3e-4 °/s/√s rate random walk
        gauss_markov_std=2e-3 * DEG,  # assumed order: 2e-3 °/s ≈ 7 °/h bias instability …
        gauss_markov_tau_s=100.0,  # … correlated over ~100 s
        scale_error_std=0.004,  # sensitivity error ±0.4 % typ. (after component retrimming, CRT)
        cross_axis_std=0.005,  # cross-axis sensitivity ±0.5 % typ.
        full_scale=2000 * DEG,  # ±2000 °/s range
        bits=16,
    ),
    gyro_g_sensitivity_std=0.1 * DEG / G,  # sensitivity to linear acceleration 0.1 °/s/g typ.
    bandwidth_hz=20.0,  # normal filter mode: 3 dB cut-off ≈ 0.4·ODR, here for a 50 Hz ODR
    time_jitter_std_s=0.0,  # FIFO samples are spaced by the sensor's own ODR clock
)

# A consumer smartphone IMU, Bosch BMI160 class (BST-BMI160-DS000-07 data sheet), at the ±8 g range.
CONSUMER_PHONE = MEMSIMU(
    accelerometer=TriaxialErrors(
        noise_density=180e-6 * G,  # output noise density 180 µg/√Hz typ. (normal mode)
        bias_std=40e-3 * G,  # zero-g offset ±40 mg typ.
        bias_random_walk=20e-6 * G,  # assumed order: 20 µg/√s rate random walk
        gauss_markov_std=0.2e-3 * G,  # assumed order: 0.2 mg bias instability …
        gauss_markov_tau_s=100.0,  # … correlated over ~100 s
        scale_error_std=0.01,  # sensitivity tolerance ±1 % typ.
        cross_axis_std=0.01,  # cross-axis sensitivity ±1 % typ.
        full_scale=8 * G,  # ±8 g range
        bits=16,
    ),
    gyroscope=TriaxialErrors(
        noise_density=0.008 * DEG,  # output noise density 0.008 °/s/√Hz typ.
        bias_std=3.0 * DEG,  # zero-rate offset ±3 °/s typ. (without fast offset compensation)
        bias_random_walk=5e-4 * DEG,  # assumed order: 5e-4 °/s/√s rate random walk
        gauss_markov_std=5e-3 * DEG,  # assumed order: 5e-3 °/s ≈ 18 °/h bias instability …
        gauss_markov_tau_s=100.0,  # … correlated over ~100 s
        scale_error_std=0.01,  # sensitivity tolerance ±1 % typ.
        cross_axis_std=0.01,  # cross-axis sensitivity ±1 % typ.
        full_scale=2000 * DEG,  # ±2000 °/s range
        bits=16,
    ),
    gyro_g_sensitivity_std=0.1 * DEG / G,  # sensitivity to linear acceleration 0.1 °/s/g typ.
    bandwidth_hz=20.0,  # normal filter mode: 3 dB cut-off ≈ 0.4·ODR, here for a 50 Hz ODR
    time_jitter_std_s=0.5e-3,  # assumed order: ~0.5 ms timestamp jitter of OS-delivered sensor events
)

DEVICES: dict[str, MEMSIMU] = {"ideal": MEMSIMU(), "bmi270": BMI270, "consumer_phone": CONSUMER_PHONE}


def device(name: str) -> MEMSIMU:
    """The preset called `name` (one of `DEVICES`)."""
    if not isinstance(name, str) or name not in DEVICES:
        raise ValueError(f"unknown IMU device {name!r}; choose one of {sorted(DEVICES)}")
    return DEVICES[name]
