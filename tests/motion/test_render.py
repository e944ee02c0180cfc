"""Stick-figure rendering: framing and colours checked at hand-computed pixels of the T-pose; frame sampling."""

import math

import numpy as np
import pytest

from motion import skeleton as sk
from motion.procedural import ProceduralMotionSet
from motion.render import (
    BACKGROUND_RGB,
    HEAD_RGB,
    LEFT_RGB,
    RIGHT_RGB,
    Framing,
    face_camera,
    project,
    render_stick_figure,
    sample_frame_indices,
    sample_frames,
)


def rotation_y(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])


def test_shapes_dtype_and_determinism():
    joints = ProceduralMotionSet(num_clips=1, seed=3)[0].joints[::20]  # 4 frames of a walk
    frames = render_stick_figure(joints, view="side", size=(64, 96))
    assert frames.shape == (4, 64, 96, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, render_stick_figure(joints, view="side", size=(64, 96)))
    assert not np.array_equal(frames[0], frames[-1])  # the figure moves


def test_t_pose_front_view_by_hand():
    """Front view of the T-pose in 100 × 100 px. Extent: wrists at x = ±(0.075 + 0.115 + 0.27 + 0.255) = ±0.715 m,
    feet at y = 0, head joint at y = 0.915 + 0.12 + 0.135 + 0.055 + 0.225 + 0.10 = 1.55 m; plus the 0.1 m head
    radius and the 0.15 m margin: u ∈ [−0.965, 0.965], v ∈ [−0.25, 1.80], so 100 / 2.05 = 48.78 px/m centred on
    (0, 0.775). The head joint lands at column 50, row 50 − (1.55 − 0.775)·48.78 = 12.2."""
    frame = render_stick_figure(sk.rest_joints()[None], view="front", size=(100, 100))[0]
    scale = 100 / 2.05
    assert scale == pytest.approx(48.78, abs=0.01)
    row = 50 - (1.55 - 0.775) * scale
    assert row == pytest.approx(12.2, abs=0.05)
    for dr, dc in ((0, 0), (-3, 0), (3, 0), (0, -3), (0, 3)):  # inside the 4.9 px head disc
        assert tuple(frame[int(row) + dr, 50 + dc]) == HEAD_RGB
    # Forearms at y = 0.915 + 0.12 + 0.135 + 0.055 + 0.115 + 0.04 = 1.38 m (row 50 − 0.605·48.78 = 20.5, 2 px thick);
    # forearm midpoints at x = ±(0.46 + 0.715) / 2 = ±0.5875 m (columns 50 ± 28.7). Facing the camera, the
    # person's left (+x, blue) is on the picture's right.
    arm_row = 50 - (1.38 - 0.775) * scale
    assert arm_row == pytest.approx(20.5, abs=0.05)
    assert tuple(frame[20, int(50 + 0.5875 * scale)]) == LEFT_RGB
    assert tuple(frame[20, int(50 - 0.5875 * scale)]) == RIGHT_RGB
    assert tuple(frame[0, 0]) == tuple(frame[99, 99]) == BACKGROUND_RGB


def test_head_disc_on_the_projected_head_of_a_clip():
    joints = ProceduralMotionSet(num_clips=9, seed=1)[8].joints[::10]  # a forward fall, 8 frames
    frames = render_stick_figure(joints, view="side", size=(96, 128))
    points = project(face_camera(joints), "side")
    framing = Framing.fit(np.concatenate((points - 0.1, points + 0.1)).reshape(-1, 2), (96, 128))
    for frame, head in zip(frames, framing.pixels(points[:, sk.HEAD])):
        column, row = np.floor(head).astype(int)
        assert tuple(frame[row, column]) == HEAD_RGB


def test_face_camera_undoes_a_turn_about_the_pelvis():
    rest = sk.rest_joints()[None].repeat(2, axis=0)
    shift = np.array([1.0, 0.0, 2.0])
    turned = rest @ rotation_y(1.1).T + shift  # the pelvis is above the origin, so it moves to the shift
    assert np.allclose(face_camera(turned), rest + shift, atol=1e-12)
    with pytest.raises(ValueError, match="hips"):
        face_camera(np.zeros((1, sk.NUM_JOINTS, 3)))


def test_project_views():
    point = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(project(point, "front"), [1.0, 2.0])
    assert np.array_equal(project(point, "side"), [-3.0, 2.0])


def test_sample_frame_indices():
    assert sample_frame_indices(80, 20.0, target_frames=16, target_fps=2.0).tolist() == list(range(5, 80, 10))
    assert sample_frame_indices(80, 20.0, target_frames=16, target_fps=10.0).tolist() == [
        math.floor((k + 0.5) * 5) for k in range(16)]  # capped at 16: one every 5 frames
    assert sample_frame_indices(5, 20.0).tolist() == [2]  # 0.25 s at 2 fps: still one frame
    frames = np.arange(80 * 2).reshape(80, 2)
    assert np.array_equal(sample_frames(frames, 20.0), frames[5::10])


@pytest.mark.parametrize("call, match", [
    (lambda: render_stick_figure(np.zeros((2, 21, 3))), "joints"),
    (lambda: render_stick_figure(np.full((1, 22, 3), np.nan)), "non-finite"),
    (lambda: render_stick_figure(sk.rest_joints()[None], view="top"), "view"),
    (lambda: render_stick_figure(sk.rest_joints()[None], size=(8, 64)), "size"),
    (lambda: sample_frame_indices(0, 20.0), "num_frames"),
    (lambda: sample_frame_indices(10, 0.0), "fps"),
    (lambda: sample_frame_indices(10, 20.0, target_frames=0), "target_frames"),
    (lambda: sample_frame_indices(10, 20.0, target_fps=-1.0), "target_fps"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
