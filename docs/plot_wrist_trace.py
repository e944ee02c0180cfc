"""Regenerate docs/wrist_trace.png: a procedural clip and its simulated left-wrist IMU."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motion.procedural import generate_clip  # noqa: E402
from virtual_imu.pipeline import WristIMUPipeline  # noqa: E402


def main(activities=("walking", "fall_forward"), seed: int = 3) -> Path:
    pipeline = WristIMUPipeline(placement="left_wrist", motion_fps=20.0, target_hz=50.0)
    figure, axes = plt.subplots(2, len(activities), figsize=(5.5 * len(activities), 5.5), sharex=True, squeeze=False)
    for column, activity in enumerate(activities):
        clip = generate_clip(activity, np.random.default_rng(seed), duration_s=4.0, fps=20.0)
        imu = pipeline(torch.from_numpy(clip.joints)).numpy()
        time = np.arange(imu.shape[0]) / pipeline.target_hz
        for row, (name, unit, offset) in enumerate((("accelerometer", "m/s²", 0), ("gyroscope", "rad/s", 3))):
            axis = axes[row, column]
            for k, label in enumerate("xyz"):
                axis.plot(time, imu[:, offset + k], label=label, linewidth=1.2)
            axis.set_ylabel(f"{name} [{unit}]")
            axis.grid(alpha=0.3)
            axis.legend(loc="upper right", fontsize=8)
        axes[0, column].set_title(f"{activity}: {clip.caption}", fontsize=9)
        axes[1, column].set_xlabel("time [s]")
    figure.suptitle("Virtual left-wrist smartwatch (x → 3 o'clock, y → 12 o'clock, z out of the screen), 50 Hz")
    figure.tight_layout()
    path = Path(__file__).with_name("wrist_trace.png")
    figure.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    print(main())
