import math

import numpy as np
import pytest
import scipy.io

from motion.kinect import KINECT_V1_JOINTS, kinect_to_humanml3d, read_utd_skeleton, skeleton_fps
from motion.skeleton import JOINT_NAMES, joint_index
from tests.motion.kinect_fixtures import to_kinect_camera, world_skeleton

EXACT = 1e-9
"""m: the conversion is rotations, a mirror and shifts of float64 data."""

# HumanML3D joint ← Kinect joint, or the midpoint of two Kinect joints (by hand from the two joint lists).
SOURCES = {
    "pelvis": ("hip_center",),
    "spine1": ("hip_center", "spine"),
    "spine2": ("spine",),
    "spine3": ("spine", "shoulder_center"),
    "neck": ("shoulder_center",),
    "head": ("head",),
    "left_collar": ("shoulder_center", "left_shoulder"),
    "right_collar": ("shoulder_center", "right_shoulder"),
    **{
        f"{side}_{part}": (f"{side}_{part}",)
        for side in ("left", "right")
        for part in ("hip", "knee", "ankle", "foot", "shoulder", "elbow", "wrist")
    },
}


def expected_humanml3d(world: np.ndarray) -> np.ndarray:
    """World Kinect joints `[T, 20, 3]` → HumanML3D joints, floor (lowest foot) at 0, first pelvis at x = z = 0."""
    kinect = {name: world[:, i] for i, name in enumerate(KINECT_V1_JOINTS)}
    joints = np.stack([np.mean([kinect[s] for s in SOURCES[name]], axis=0) for name in JOINT_NAMES], axis=1)
    floor = min(kinect["left_foot"][:, 1].min(), kinect["right_foot"][:, 1].min())
    return joints - np.array([joints[0, 0, 0], floor, joints[0, 0, 2]])


def test_every_humanml3d_joint_has_a_source():
    assert set(SOURCES) == set(JOINT_NAMES) and len(KINECT_V1_JOINTS) == 20


@pytest.mark.parametrize("pitch_deg", [-10.0, 0.0, 15.0, 27.0])
def test_tilted_camera_is_levelled_and_the_subject_turned_to_face_plus_z(pitch_deg):
    world = world_skeleton(30)
    out = kinect_to_humanml3d(to_kinect_camera(world, pitch_deg=pitch_deg))
    assert out.shape == (30, 22, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected_humanml3d(world), rtol=0, atol=EXACT)


def test_orientation_floor_and_origin_of_the_converted_skeleton():
    out = kinect_to_humanml3d(to_kinect_camera(world_skeleton(30), pitch_deg=15.0))
    first = out[0]
    spine = first[joint_index("neck")] - first[joint_index("pelvis")]
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0.0, 1.0, 0.0], rtol=0, atol=EXACT)
    left = first[joint_index("left_shoulder")] - first[joint_index("right_shoulder")]
    assert left[0] > 0.3  # left shoulder at +x
    facing = np.cross(left, [0.0, 1.0, 0.0])
    assert facing[2] / np.linalg.norm(facing) > 0.99  # faces +z (within 8°: the shoulders are not level)
    feet = out[:, [joint_index("left_foot"), joint_index("right_foot")], 1]
    assert abs(feet.min()) < EXACT
    np.testing.assert_allclose(first[joint_index("pelvis")][[0, 2]], 0.0, rtol=0, atol=EXACT)
    # The body moves at 0.4 m/s toward its left (+x) and leans forward (+z) after frame 4.
    assert out[-1, joint_index("pelvis"), 0] == pytest.approx(0.4 * 29 / 15.0, abs=EXACT)
    assert out[-1, joint_index("head"), 2] > out[4, joint_index("head"), 2] + 0.2


def test_midpoint_joints_are_exact_midpoints():
    out = kinect_to_humanml3d(to_kinect_camera(world_skeleton(8), pitch_deg=20.0))

    def joint(name):
        return out[:, joint_index(name)]

    np.testing.assert_allclose(joint("spine1"), 0.5 * (joint("pelvis") + joint("spine2")), rtol=0, atol=EXACT)
    np.testing.assert_allclose(joint("spine3"), 0.5 * (joint("spine2") + joint("neck")), rtol=0, atol=EXACT)
    for side in ("left", "right"):
        midpoint = 0.5 * (joint("neck") + joint(f"{side}_shoulder"))
        np.testing.assert_allclose(joint(f"{side}_collar"), midpoint, rtol=0, atol=EXACT)


def test_without_levelling_the_camera_tilt_stays():
    out = kinect_to_humanml3d(to_kinect_camera(world_skeleton(8), pitch_deg=15.0), level=False)
    spine = out[0, joint_index("neck")] - out[0, joint_index("pelvis")]
    assert math.degrees(math.acos(spine[1] / np.linalg.norm(spine))) == pytest.approx(15.0, abs=1e-9)


@pytest.mark.parametrize("shape", [(10, 22, 3), (10, 20), (10, 20, 2)])
def test_kinect_to_humanml3d_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"joints must have shape \[T, 20, 3\]"):
        kinect_to_humanml3d(np.zeros(shape))


def test_read_utd_skeleton_transposes_20_x_3_x_t(tmp_path):
    joints = np.random.default_rng(0).normal(size=(7, 20, 3))
    path = tmp_path / "a1_s1_t1_skeleton.mat"
    scipy.io.savemat(path, {"d_skel": joints.transpose(1, 2, 0)})  # d_skel[j, c, t]
    np.testing.assert_array_equal(read_utd_skeleton(path), joints)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"skeleton": np.zeros((20, 3, 5))}, r"no 'd_skel' variable \(found \['skeleton'\]\)"),
        ({"d_skel": np.zeros((25, 3, 5))}, r"d_skel must be 20 × 3 × T with T ≥ 3, got \(25, 3, 5\)"),
        ({"d_skel": np.zeros((20, 3, 2))}, r"d_skel must be 20 × 3 × T with T ≥ 3, got \(20, 3, 2\)"),
        ({"d_skel": np.full((20, 3, 5), np.nan)}, "d_skel contains NaN or infinite values"),
    ],
)
def test_read_utd_skeleton_rejects_bad_content_naming_the_file(tmp_path, content, message):
    path = tmp_path / "a1_s1_t1_skeleton.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(ValueError, match=f"a1_s1_t1_skeleton.mat: {message}"):
        read_utd_skeleton(path)


def test_read_utd_skeleton_rejects_unreadable_files(tmp_path):
    path = tmp_path / "a1_s1_t1_skeleton.mat"
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="a1_s1_t1_skeleton.mat: not a readable .mat file"):
        read_utd_skeleton(path)
    with pytest.raises(ValueError, match="missing_skeleton.mat: not a readable .mat file"):
        read_utd_skeleton(tmp_path / "missing_skeleton.mat")


@pytest.mark.parametrize(
    ("frames", "samples", "fps"), [(41, 126, 16.0), (61, 151, 20.0), (2, 2, 50.0), (46, 151, 15.0)]
)
def test_skeleton_fps_spreads_the_frames_over_the_inertial_span(frames, samples, fps):
    # Closed form: (frames − 1) / fps = (samples − 1) / 50 Hz.
    assert skeleton_fps(frames, samples, 50.0) == pytest.approx(fps, rel=1e-12)
    assert (frames - 1) / skeleton_fps(frames, samples, 50.0) == pytest.approx((samples - 1) / 50.0, rel=1e-12)


@pytest.mark.parametrize(("frames", "samples"), [(1, 100), (50, 1)])
def test_skeleton_fps_needs_two_of_each(frames, samples):
    with pytest.raises(ValueError, match="need ≥ 2 skeleton frames and inertial samples"):
        skeleton_fps(frames, samples, 50.0)
