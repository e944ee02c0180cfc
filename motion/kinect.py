"""Kinect v1 skeletons (20 joints, as in UTD-MHAD's `d_skel`) → the 22-joint HumanML3D skeleton.

Kinect v1 camera space: metres, y up (the camera's up, tilted by the camera's elevation), z pointing
from the camera into the scene, x to the camera's left; a subject facing the camera looks along −z with
their left at −x. `kinect_to_humanml3d` turns the subject to face +z (left at +x, HumanML3D's
convention), levels the camera tilt with the subject's own upright spine, and maps joints:

    pelvis ← hip_center, spine2 ← spine (mid-back), neck ← shoulder_center, head ← head,
    spine1 / spine3 ← midpoints of hip_center–spine / spine–shoulder_center,
    collars ← midpoints of shoulder_center–shoulder, limbs ← the same-named Kinect joints.

The Kinect hand joints are dropped: the 22-joint wrist sensor presets place a watch from shoulder,
elbow and wrist (the forearm's roll is taken from the elbow's flexion plane), which Kinect tracks far
more steadily than the hand tip.

UTD-MHAD stores no skeleton timestamps; its skeleton frames span the same time as the inertial
recording (Chen et al. 2015), so `skeleton_fps` spreads them evenly over that duration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from motion.skeleton import JOINT_NAMES

KINECT_V1_JOINTS = (
    "head",
    "shoulder_center",
    "spine",
    "hip_center",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
)
"""Joint order of UTD-MHAD's `d_skel` (its Skeleton_joint_order.txt), 0-based."""

_SAME_NAME = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot",
              "right_foot", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
              "left_wrist", "right_wrist")
_MIDPOINTS = {
    "spine1": ("hip_center", "spine"),
    "spine3": ("spine", "shoulder_center"),
    "left_collar": ("shoulder_center", "left_shoulder"),
    "right_collar": ("shoulder_center", "right_shoulder"),
}
_RENAMED = {"pelvis": "hip_center", "spine2": "spine", "neck": "shoulder_center"}

UPRIGHT_FRAMES = 5
"""Frames at the start of a trial whose mean spine direction defines "up" (trials start standing)."""


def read_utd_skeleton(path: str | Path) -> np.ndarray:
    """UTD-MHAD `…_skeleton.mat` (`d_skel`, 20 × 3 × T) → `[T, 20, 3]` metres, Kinect camera space."""
    path = Path(path)
    try:
        content = scipy.io.loadmat(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .mat file ({error})") from None
    if "d_skel" not in content:
        raise ValueError(f"{path}: no 'd_skel' variable (found {sorted(k for k in content if not k.startswith('__'))})")
    skeleton = np.asarray(content["d_skel"], dtype=np.float64)
    if skeleton.ndim != 3 or skeleton.shape[:2] != (20, 3) or skeleton.shape[2] < 3:
        raise ValueError(f"{path}: d_skel must be 20 × 3 × T with T ≥ 3, got {skeleton.shape}")
    if not np.isfinite(skeleton).all():
        raise ValueError(f"{path}: d_skel contains NaN or infinite values")
    return skeleton.transpose(2, 0, 1)


def skeleton_fps(skeleton_frames: int, inertial_samples: int, inertial_hz: float) -> float:
    """Frame rate (Hz) that makes `skeleton_frames` span the inertial recording (first to last sample)."""
    if skeleton_frames < 2 or inertial_samples < 2:
        raise ValueError(f"need ≥ 2 skeleton frames and inertial samples, got {skeleton_frames}, {inertial_samples}")
    return (skeleton_frames - 1) * inertial_hz / (inertial_samples - 1)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3×3 rotation taking unit vector `a` onto unit vector `b` (Rodrigues; a ≠ −b)."""
    axis = np.cross(a, b)
    sine, cosine = np.linalg.norm(axis), float(np.dot(a, b))
    if sine < 1e-12:
        return np.eye(3)
    k = axis / sine
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + sine * skew + (1 - cosine) * skew @ skew


def kinect_to_humanml3d(joints: np.ndarray, *, level: bool = True) -> np.ndarray:
    """`[T, 20, 3]` Kinect v1 camera-space joints → `[T, 22, 3]` HumanML3D-convention joints (m, y up).

    The subject is turned to face +z; with `level` the camera tilt is removed by rotating the mean spine
    direction (hip_center → shoulder_center) of the first `UPRIGHT_FRAMES` frames onto +y. The lowest
    foot joint over the trial is put at y = 0 and the first frame's pelvis at x = z = 0.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (20, 3):
        raise ValueError(f"joints must have shape [T, 20, 3] (Kinect v1), got {joints.shape}")
    turned = joints * np.array([-1.0, 1.0, -1.0])  # 180° about y: facing −z → +z, left −x → +x
    kinect = {name: turned[:, i] for i, name in enumerate(KINECT_V1_JOINTS)}
    if level:
        spine = (kinect["shoulder_center"] - kinect["hip_center"])[:UPRIGHT_FRAMES].mean(axis=0)
        rotation = _rotation_between(spine / np.linalg.norm(spine), np.array([0.0, 1.0, 0.0]))
        kinect = {name: position @ rotation.T for name, position in kinect.items()}
    out = {name: kinect[name] for name in _SAME_NAME}
    out.update({name: kinect[source] for name, source in _RENAMED.items()})
    out.update({name: 0.5 * (kinect[a] + kinect[b]) for name, (a, b) in _MIDPOINTS.items()})
    result = np.stack([out[name] for name in JOINT_NAMES], axis=1)
    floor = min(result[:, JOINT_NAMES.index(name), 1].min() for name in ("left_foot", "right_foot"))
    origin = result[0, JOINT_NAMES.index("pelvis")]
    return result - np.array([origin[0], floor, origin[2]])
