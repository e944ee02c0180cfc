"""Labelled AMASS motion files as a map-style clip set, each clip with a sensor on the SMPL body surface.

`AMASSClipSet` crops and labels like `BVHClipSet` (both are `CroppedClipSet`s); every file is posed by
its SMPL-family body model (`motion.smpl.load_amass_surface`), so besides the 22 joints a clip carries
the trajectory of a sensor fixed to the mesh (`virtual_imu.surface`), which the on-the-fly pipeline
simulates instead of its joint-based preset (`virtual_imu.pipeline.WristIMUPipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from motion import skeleton as sk
from motion.bvh_clips import CroppedClipSet, foot_contact
from motion.procedural.dataset import MotionClip
from motion.smpl import load_amass_surface
from virtual_imu.surface import SurfaceSensor


@dataclass(frozen=True, eq=False)
class SurfaceMotionClip(MotionClip):
    """A `MotionClip` with the trajectory of a sensor on the body surface, in the joints' world.

    Attributes:
        trajectory_positions: `[T, 3]` float32 sensor positions (m).
        trajectory_orientations: `[T, 4]` float32 sensor-to-world unit quaternions (w, x, y, z).
    """

    trajectory_positions: np.ndarray
    trajectory_orientations: np.ndarray

    def __post_init__(self):
        super().__post_init__()
        for name, width in (("trajectory_positions", 3), ("trajectory_orientations", 4)):
            if np.shape(getattr(self, name)) != (self.num_frames, width):
                raise ValueError(f"{name} must have shape [{self.num_frames}, {width}], got {np.shape(getattr(self, name))}")


class AMASSClipSet(CroppedClipSet):
    """`CroppedClipSet` of labelled AMASS `.npz` motion files with a sensor on the SMPL body surface.

    Item i is a `SurfaceMotionClip`: float32 joints `[T, 22, 3]` (m, y up, `motion.smpl.load_amass`'s),
    foot contacts by `foot_contact`, the crop of the sensor trajectory `trajectory_positions` `[T, 3]` and
    `trajectory_orientations` `[T, 4]` (placed on the mesh resampled to `fps`, see `load_amass_surface`), the
    entry's activity, its safety and a caption.

    Args:
        model_path: the SMPL-family body model file, or a folder searched for each motion's gender
            (`motion.smpl.resolve_model_file`); the files are not redistributable (`motion.smpl`).
        model_type: "smpl", "smplh" (AMASS's SMPL+H releases) or "smplx"; must match the files' pose width.
        sensor: the surface sensor: a name in `virtual_imu.surface.SMPL_PRESETS` (e.g. "left_wrist") or a
            `SurfaceSensor` on the model's mesh.
        device: where the body model poses the mesh (the clips are numpy arrays on the CPU).
        The others: `CroppedClipSet`'s.
    """

    clip_type = SurfaceMotionClip

    def __init__(self, *, entries: Sequence[tuple[str | Path, str]], safety_of: Callable[[str], str],
                 model_path: str | Path, model_type: str = "smplh", sensor: str | SurfaceSensor = "left_wrist",
                 fps: float = sk.FPS, duration_s: float = 4.0, stride_s: float = 2.0, min_duration_s: float = 2.0,
                 activities: Sequence[str] | None = None, cache: bool = True, device: str = "cpu"):
        self.model_path = Path(model_path)
        self.model_type = model_type
        self.sensor = sensor
        self.device = device
        super().__init__(entries=entries, safety_of=safety_of, fps=fps, duration_s=duration_s, stride_s=stride_s,
                         min_duration_s=min_duration_s, activities=activities, cache=cache)

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        joints, positions, orientations = load_amass_surface(
            path, model_path=self.model_path, model_type=self.model_type, sensor=self.sensor, fps=self.fps,
            device=self.device,
        )
        return {
            "joints": joints,
            "foot_contact": foot_contact(joints, self.fps),
            "trajectory_positions": positions,
            "trajectory_orientations": orientations,
        }
