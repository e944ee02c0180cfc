"""A synthetic Kinect v1 skeleton (UTD-MHAD joint order) with known world positions, seen by a tilted camera.

World frame: HumanML3D's (metres, y up, the subject faces +z, their left is +x). The Kinect camera
frame (y up, z from the camera into the scene, x to the camera's left) looks at the subject from the
front: a 180° turn about y, then a shift (the subject stands in front of the camera, below its
height), then the camera's pitch.
"""

from __future__ import annotations

import math

import numpy as np

from motion.kinect import KINECT_V1_JOINTS

STANDING = {
    "head": (0.0, 1.62, 0.03),
    "shoulder_center": (0.0, 1.45, 0.0),
    "spine": (0.0, 1.18, 0.0),
    "hip_center": (0.0, 0.96, 0.0),
    "left_shoulder": (0.19, 1.42, -0.01),
    "left_elbow": (0.23, 1.15, -0.03),
    "left_wrist": (0.25, 0.90, 0.04),
    "left_hand": (0.26, 0.82, 0.06),
    "right_shoulder": (-0.18, 1.41, 0.0),
    "right_elbow": (-0.22, 1.14, 0.02),
    "right_wrist": (-0.24, 0.91, 0.08),
    "right_hand": (-0.25, 0.83, 0.10),
    "left_hip": (0.09, 0.93, 0.0),
    "left_knee": (0.10, 0.51, 0.03),
    "left_ankle": (0.10, 0.09, -0.01),
    "left_foot": (0.11, 0.04, 0.10),
    "right_hip": (-0.09, 0.93, 0.0),
    "right_knee": (-0.10, 0.50, 0.02),
    "right_ankle": (-0.11, 0.08, 0.0),
    "right_foot": (-0.12, 0.03, 0.09),
}
"""World positions (m) of a standing subject; the spine (hip_center → shoulder_center) is exactly vertical."""
UPPER_BODY = ("head", "shoulder_center", "spine", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
              "right_shoulder", "right_elbow", "right_wrist", "right_hand")
CAMERA_OFFSET_M = np.array([0.2, -0.9, 2.8])
"""Subject 2.8 m in front of the camera, whose height is 0.9 m above the floor-relative body origin."""


def rotation_x(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def world_skeleton(frames: int, *, fps: float = 15.0, velocity_m_s=(0.4, 0.0, 0.0), lean_deg_s: float = 20.0):
    """`[T, 20, 3]` world joints: standing for 5 frames, then leaning forward at `lean_deg_s` about the
    hip centre, the whole body moving at `velocity_m_s` from the start."""
    standing = np.array([STANDING[name] for name in KINECT_V1_JOINTS])
    upper = np.array([name in UPPER_BODY for name in KINECT_V1_JOINTS])
    hip = standing[KINECT_V1_JOINTS.index("hip_center")]
    joints = np.repeat(standing[None], frames, axis=0)
    for frame in range(5, frames):
        # A forward lean turns the upper body about +x (the subject's left), +y toward +z.
        rotation = rotation_x(lean_deg_s * (frame - 4) / fps)
        joints[frame, upper] = (standing[upper] - hip) @ rotation.T + hip
    t = np.arange(frames)[:, None, None] / fps
    return joints + t * np.asarray(velocity_m_s)


def to_kinect_camera(world: np.ndarray, *, pitch_deg: float) -> np.ndarray:
    """World joints `[..., 3]` → the camera frame of a Kinect facing the subject, pitched by `pitch_deg`."""
    facing_camera = world * np.array([-1.0, 1.0, -1.0]) + CAMERA_OFFSET_M
    return facing_camera @ rotation_x(pitch_deg).T
