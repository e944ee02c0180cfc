"""Stick-figure video frames of 22-joint clips (Agg canvas, no pyplot), and frame sampling for video models.

The camera is orthographic and fixed over the clip: it frames every joint of every frame (plus the head
disc and a margin), so the figure moves across the picture as it moves in the world. The "front" camera
looks along -z (image right = +x, up = +y), the "side" camera along -x (image right = -z, up = +y). With
`face_camera` the clip is first turned about y so that the body faces +z in its first frame (the procedural
clips start at a random heading): "front" then sees the face, "side" the profile with the body facing left.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from motion import skeleton as sk

VIEWS = ("front", "side")
HEAD_RADIUS_M = 0.1
"""Radius of the disc drawn at the head joint (m)."""
MARGIN_M = 0.15
"""Empty border around everything drawn, in metres of the scene."""

BACKGROUND_RGB = (255, 255, 255)
HEAD_RGB = (255, 127, 14)
LEFT_RGB = (31, 119, 180)
RIGHT_RGB = (214, 39, 40)
CENTRE_RGB = (0, 0, 0)
FLOOR_RGB = (150, 150, 150)

# Bone k joins joint k + 1 to its parent; it takes the side of its child joint.
_BONE_RGB = np.array([LEFT_RGB if name.startswith("left_") else RIGHT_RGB if name.startswith("right_") else CENTRE_RGB
                      for name in sk.JOINT_NAMES[1:]]) / 255.0
_DPI = 100.0


def _check_joints(joints) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[0] < 1 or joints.shape[1:] != (sk.NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape [T ≥ 1, {sk.NUM_JOINTS}, 3], got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints holds non-finite values")
    return joints


def face_camera(joints: np.ndarray) -> np.ndarray:
    """`joints` `[T, 22, 3]` (m, y up) turned about the vertical through the first frame's pelvis so that the body
    faces +z in the first frame (facing = left × up, left = left hip − right hip)."""
    joints = _check_joints(joints)
    left = joints[0, sk.LEFT_HIP] - joints[0, sk.RIGHT_HIP]
    facing_x, facing_z = -left[2], left[0]  # (left × ŷ) for ŷ = (0, 1, 0)
    if math.hypot(facing_x, facing_z) < 1e-9:
        raise ValueError("joints: the hips of the first frame are vertically aligned, the facing is undefined")
    angle = math.atan2(facing_x, facing_z)  # heading of the facing from +z towards +x
    cos, sin = math.cos(angle), math.sin(angle)
    turn = np.array([[cos, 0.0, -sin], [0.0, 1.0, 0.0], [sin, 0.0, cos]])  # rotation by -angle about y
    pivot = joints[0, sk.PELVIS] * np.array([1.0, 0.0, 1.0])
    return (joints - pivot) @ turn.T + pivot


def project(joints: np.ndarray, view: str) -> np.ndarray:
    """Image-plane coordinates `[..., 2]` (m; right, up) of points `[..., 3]` (m, y up) seen by the `view` camera."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    joints = np.asarray(joints, dtype=np.float64)
    right = joints[..., 0] if view == "front" else -joints[..., 2]
    return np.stack((right, joints[..., 1]), axis=-1)


@dataclass(frozen=True)
class Framing:
    """An orthographic camera's picture: `center_m` (right, up) of the scene maps to the centre of a
    `size` = (height, width) pixel image at `pixels_per_m`."""

    center_m: tuple[float, float]
    pixels_per_m: float
    size: tuple[int, int]

    @classmethod
    def fit(cls, points: np.ndarray, size: tuple[int, int], *, margin_m: float = MARGIN_M) -> "Framing":
        """The largest scale showing all image-plane `points` `[..., 2]` (m) with `margin_m` around them, centred."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        low, high = points.min(axis=0) - margin_m, points.max(axis=0) + margin_m
        height, width = size
        scale = min(width / (high[0] - low[0]), height / (high[1] - low[1]))
        center = (low + high) / 2
        return cls(center_m=(float(center[0]), float(center[1])), pixels_per_m=float(scale), size=(height, width))

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates `[..., 2]` (column, row; row 0 at the top, pixel (c, r) covers [c, c+1) × [r, r+1))
        of image-plane points `[..., 2]` (m)."""
        points = np.asarray(points, dtype=np.float64)
        height, width = self.size
        column = width / 2 + (points[..., 0] - self.center_m[0]) * self.pixels_per_m
        row = height / 2 - (points[..., 1] - self.center_m[1]) * self.pixels_per_m
        return np.stack((column, row), axis=-1)


def check_size(size) -> tuple[int, int]:
    if (isinstance(size, str) or not isinstance(size, Sequence) or len(size) != 2
            or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 16 for n in size)):
        raise ValueError(f"size must be (height, width) in pixels, each an integer ≥ 16, got {size!r}")
    return int(size[0]), int(size[1])


def render_stick_figure(joints: np.ndarray, *, view: str = "side", size: tuple[int, int] = (128, 128),
                        turn_to_camera: bool = True) -> np.ndarray:
    """Stick-figure frames `[T, H, W, 3]` uint8 RGB of `joints` `[T, 22, 3]` (m, y up), `size` = (H, W).

    Bones (parents of `motion.skeleton.PARENTS`) are drawn blue on the left side, red on the right, black in
    the middle; a disc of radius `HEAD_RADIUS_M` in `HEAD_RGB` sits on the head joint; a grey floor line at
    the lowest joint height of the clip; white background. `turn_to_camera` applies `face_camera` first.
    The framing (`Framing.fit` over every frame) is the same for all frames. Deterministic.
    """
    joints = _check_joints(joints)
    height, width = check_size(size)
    if turn_to_camera:
        joints = face_camera(joints)
    points = project(joints, view)  # [T, 22, 2]
    floor = points[..., 1].min()
    framing = Framing.fit(np.concatenate((points.reshape(-1, 2) - HEAD_RADIUS_M, points.reshape(-1, 2) + HEAD_RADIUS_M)),
                          (height, width))
    half_width, half_height = width / 2 / framing.pixels_per_m, height / 2 / framing.pixels_per_m

    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor=np.array(BACKGROUND_RGB) / 255.0)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_axis_off()
    axes.set_xlim(framing.center_m[0] - half_width, framing.center_m[0] + half_width)
    axes.set_ylim(framing.center_m[1] - half_height, framing.center_m[1] + half_height)
    line_points = max(1.5, min(height, width) / 50) * 72.0 / _DPI  # ~2.5 px at 128 px
    axes.axhline(floor, color=np.array(FLOOR_RGB) / 255.0, linewidth=line_points)
    bones = LineCollection([], colors=_BONE_RGB, linewidths=line_points, capstyle="round")
    axes.add_collection(bones)
    head = Circle((0.0, 0.0), HEAD_RADIUS_M, color=np.array(HEAD_RGB) / 255.0, zorder=3)
    axes.add_patch(head)

    children = np.arange(1, sk.NUM_JOINTS)
    parents = np.asarray(sk.PARENTS[1:])
    frames = np.empty((len(points), height, width, 3), dtype=np.uint8)
    for t, frame_points in enumerate(points):
        bones.set_segments(np.stack((frame_points[parents], frame_points[children]), axis=1))
        head.center = tuple(frame_points[sk.HEAD])
        canvas.draw()
        frames[t] = np.asarray(canvas.buffer_rgba())[..., :3]
    return frames


def sample_frame_indices(num_frames: int, fps: float, *, target_frames: int = 16, target_fps: float = 2.0) -> np.ndarray:
    """Indices of the frames a video model sees: `n = min(target_frames, max(1, ⌊duration · target_fps⌋))` frames,
    one at the middle of each of n equal spans of the clip (so about `target_fps` frames per second, at most
    `target_frames`); duration = num_frames / fps."""
    for name, value in (("num_frames", num_frames), ("target_frames", target_frames)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("fps", fps), ("target_fps", target_fps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of frames per second, got {value!r}")
    count = min(int(target_frames), max(1, math.floor(num_frames / fps * target_fps + 1e-9)))
    return np.floor((np.arange(count) + 0.5) * num_frames / count).astype(np.int64)


def sample_frames(frames: np.ndarray, fps: float, target_frames: int = 16, target_fps: float = 2.0) -> np.ndarray:
    """`frames` `[T, ...]` at `sample_frame_indices(T, fps, target_frames=…, target_fps=…)`: `[n, ...]`."""
    return frames[sample_frame_indices(len(frames), fps, target_frames=target_frames, target_fps=target_fps)]
