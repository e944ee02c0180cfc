"""Real vs virtual IMU traces of one trial as a matplotlib Figure (Agg canvas, no pyplot), with per-axis Pearson r.

Built on an explicit Agg canvas like `confusion_figure`, so it works headless (training nodes, DDP
workers) and never touches the host process's pyplot backend or figure registry.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def pearson_r(real: np.ndarray, virtual: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of `[T, C]` with the same column of `[T, C]` (array-likes): `[C]`."""
    real, virtual = np.asarray(real, dtype=np.float64), np.asarray(virtual, dtype=np.float64)
    real, virtual = real - real.mean(axis=0), virtual - virtual.mean(axis=0)
    norms = np.linalg.norm(real, axis=0) * np.linalg.norm(virtual, axis=0)
    if (norms == 0).any():
        raise ValueError(f"channels {np.flatnonzero(norms == 0).tolist()} are constant: Pearson r is undefined")
    return (real * virtual).sum(axis=0) / norms


def _check_pair(real, virtual) -> tuple[np.ndarray, np.ndarray]:
    real, virtual = np.asarray(real, dtype=np.float64), np.asarray(virtual, dtype=np.float64)
    for name, series in (("real", real), ("virtual", virtual)):
        if series.ndim != 2 or series.shape[0] < 2 or series.shape[1] != 6:
            raise ValueError(f"{name} must have shape [T ≥ 2, 6] (acc, gyro), got {series.shape}")
        if not np.isfinite(series).all():
            raise ValueError(f"{name} holds non-finite values")
    if real.shape != virtual.shape:
        raise ValueError(f"real and virtual must have the same shape, got {real.shape} and {virtual.shape}")
    return real, virtual


def trace_figure(real: np.ndarray, virtual: np.ndarray, fs: float, title: str) -> Figure:
    """Real vs virtual `[T, 6]` traces (array-likes, CPU tensors too): rows x, y, z, norm; columns acc (m/s²)
    and gyro (rad/s); time axis from `fs` Hz.

    Each panel's title ends with the Pearson r of its two curves ("r = 0.83"), or says it is undefined when
    either curve is constant. The caller owns the figure.
    """
    if not fs > 0:
        raise ValueError(f"fs must be > 0 Hz, got {fs}")
    real, virtual = _check_pair(real, virtual)
    time = np.arange(real.shape[0]) / fs
    figure = Figure(figsize=(11, 8.5))
    FigureCanvasAgg(figure)  # attaches itself: savefig works headless
    axes = figure.subplots(4, 2, sharex=True)
    for column, (sensor, unit) in enumerate((("acc", "m/s²"), ("gyro", "rad/s"))):
        triad = slice(3 * column, 3 * column + 3)
        real_rows = np.column_stack((real[:, triad], np.linalg.norm(real[:, triad], axis=1)))
        virtual_rows = np.column_stack((virtual[:, triad], np.linalg.norm(virtual[:, triad], axis=1)))
        # A recording without gyroscope holds zeros there (`IMURecording.imu`): no r, but still a figure.
        varies = (np.ptp(real_rows, axis=0) > 0) & (np.ptp(virtual_rows, axis=0) > 0)
        r = np.full(4, np.nan)
        r[varies] = pearson_r(real_rows[:, varies], virtual_rows[:, varies])
        for row, axis_name in enumerate(("x", "y", "z", "|·|")):
            axis = axes[row, column]
            axis.plot(time, real_rows[:, row], color="k", linewidth=1.2, label="real")
            axis.plot(time, virtual_rows[:, row], color="tab:orange", linewidth=1.2, label="virtual")
            correlation = f"r = {r[row]:.2f}" if varies[row] else "r undefined (constant)"
            axis.set_title(f"{sensor} {axis_name}   {correlation}", fontsize=9)
            axis.set_ylabel(unit)
            axis.grid(alpha=0.3)
        axes[-1, column].set_xlabel("time [s]")
    axes[0, 0].legend(loc="best", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
