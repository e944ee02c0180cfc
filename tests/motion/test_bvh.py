from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motion.bvh import BVHJoint, elementary_rotation, format_bvh, read_bvh

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CMU_FILES = sorted((DATA / "bvh").glob("*.bvh")) + sorted((DATA / "cmu_bvh").glob("*.bvh"))
BANDAI_FILES = sorted((DATA / "bandai_namco_bvh").glob("*.bvh"))[::16]
needs_data = pytest.mark.skipif(not CMU_FILES or not BANDAI_FILES, reason=f"shared BVH data not found under {DATA}")

# Root at (1, 2, 3) turned +90° about z, a 2-long bone along +y, then a joint turned +90° about x with an
# end site 1 along +y. By hand: Rz90·(0, 2, 0) = (−2, 0, 0), so the child sits at (−1, 2, 3); the end site
# offset (0, 1, 0) goes to Rz90·Rx90·(0, 1, 0) = Rz90·(0, 0, 1) = (0, 0, 1), so it sits at (−1, 2, 4).
CHAIN = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT knee
  {
    OFFSET 0 2 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 90 0 0 0 90 0
1 2 3 0 0 0 0 0 0
"""


def write(tmp_path: Path, text: str, name: str = "clip.bvh", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("ascii"))
    return path


def test_two_bone_chain_matches_the_hand_computed_pose(tmp_path):
    motion = read_bvh(write(tmp_path, CHAIN))
    positions, rotations = motion.forward_kinematics()
    assert motion.names == ("hips", "knee", "knee_end") and motion.parents == (-1, 0, 1)
    assert motion.num_frames == 2 and motion.fps == 2.0 and motion.duration_s == 1.0
    np.testing.assert_allclose(positions[0], [[1, 2, 3], [-1, 2, 3], [-1, 2, 4]], atol=1e-9)
    np.testing.assert_allclose(positions[1], [[1, 2, 3], [1, 4, 3], [1, 5, 3]], atol=1e-9)  # rest pose
    expected = Rotation.from_euler("ZX", [90, 90], degrees=True).as_matrix()
    np.testing.assert_allclose(rotations[0, 2], expected, atol=1e-12)  # end site follows its parent


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_channel_order_composes_intrinsic_rotations_in_file_order(tmp_path, order):
    angles = np.array([[30.0, -50.0, 75.0], [-120.0, 10.0, 200.0]])
    text = CHAIN.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 3 " + " ".join(f"{a}rotation" for a in order))
    text = text.split("MOTION")[0] + "MOTION\nFrames: 2\nFrame Time: 0.5\n" + "".join(
        f"0 0 0 0 0 0 {' '.join(map(str, row))}\n" for row in angles)
    _, rotations = read_bvh(write(tmp_path, text)).forward_kinematics()
    # scipy's upper-case sequences are intrinsic: R = R_first · R_second · R_third
    np.testing.assert_allclose(rotations[:, 1], Rotation.from_euler(order, angles, degrees=True).as_matrix(), atol=1e-12)


def knee_turned(tmp_path: Path, channels: str, values: str) -> np.ndarray:
    """End-site position minus knee position of CHAIN with the root at rest and the knee's channels replaced."""
    text = CHAIN.replace("CHANNELS 3 Zrotation Xrotation Yrotation", f"CHANNELS 2 {channels}")
    text = text.split("MOTION")[0] + f"MOTION\nFrames: 1\nFrame Time: 0.5\n0 0 0 0 0 0 {values}\n"
    positions, _ = read_bvh(write(tmp_path, text, channels.replace(" ", "_") + ".bvh")).forward_kinematics()
    return positions[0, 2] - positions[0, 1]


def test_order_matters_z_then_x_versus_x_then_z(tmp_path):
    # Rz90·Rx90·(0, 1, 0) = Rz90·(0, 0, 1) = (0, 0, 1);  Rx90·Rz90·(0, 1, 0) = Rx90·(−1, 0, 0) = (−1, 0, 0)
    np.testing.assert_allclose(knee_turned(tmp_path, "Zrotation Xrotation", "90 90"), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(knee_turned(tmp_path, "Xrotation Zrotation", "90 90"), [-1, 0, 0], atol=1e-12)


def test_elementary_rotations_are_right_handed():
    np.testing.assert_allclose(elementary_rotation(2, np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(elementary_rotation(0, np.pi / 2) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
    np.testing.assert_allclose(elementary_rotation(1, np.pi / 2) @ [0, 0, 1], [1, 0, 0], atol=1e-15)


def test_position_channels_replace_the_offset_on_their_axes_only(tmp_path):
    text = CHAIN.replace("OFFSET 0 2 0\n    CHANNELS 3 Zrotation Xrotation Yrotation",
                         "OFFSET 5 2 7\n    CHANNELS 4 Yposition Zrotation Xrotation Yrotation")
    text = text.split("MOTION")[0] + "MOTION\nFrames: 1\nFrame Time: 0.5\n0 0 0 0 0 0 4 0 0 0\n"
    positions, _ = read_bvh(write(tmp_path, text)).forward_kinematics()
    np.testing.assert_allclose(positions[0, 1], [5, 4, 7], atol=1e-12)  # x, z from OFFSET, y from the channel


def test_six_channel_joint_below_the_root(tmp_path):
    text = CHAIN.replace("CHANNELS 3 Zrotation Xrotation Yrotation",
                         "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
    text = text.split("MOTION")[0] + "MOTION\nFrames: 1\nFrame Time: 0.5\n0 0 0 0 0 0 0 3 0 90 0 0\n"
    positions, _ = read_bvh(write(tmp_path, text)).forward_kinematics()
    np.testing.assert_allclose(positions[0], [[0, 0, 0], [0, 3, 0], [-1, 3, 0]], atol=1e-12)


def test_scale_applies_to_lengths_not_angles(tmp_path):
    metres = read_bvh(write(tmp_path, CHAIN), scale=0.01).forward_kinematics()[0]
    np.testing.assert_allclose(metres[0], np.array([[1, 2, 3], [-1, 2, 3], [-1, 2, 4]]) * 0.01, atol=1e-12)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_crlf_and_mixed_line_endings_read_the_same(tmp_path, newline):
    reference = read_bvh(write(tmp_path, CHAIN, "lf.bvh"))
    lines = CHAIN.split("\n")
    mixed = "".join(line + (newline if i % 2 else "\r\n") for i, line in enumerate(lines[:-1]))
    other = read_bvh(write(tmp_path, mixed, "mixed.bvh"))
    assert other.names == reference.names
    np.testing.assert_array_equal(other.values, reference.values)


def test_format_bvh_round_trips(tmp_path):
    motion = read_bvh(write(tmp_path, CHAIN))
    again = read_bvh(write(tmp_path, format_bvh(motion.joints, motion.frame_time_s, motion.values), "again.bvh"))
    assert again.names == motion.names and again.frame_time_s == motion.frame_time_s
    np.testing.assert_array_equal(again.values, motion.values)
    with pytest.raises(ValueError, match="values"):
        format_bvh(motion.joints, 0.5, motion.values[:, :3])
    orphan = BVHJoint(name="b", parent=-1, offset=np.zeros(3), channels=())
    with pytest.raises(ValueError, match="one root"):
        format_bvh((motion.joints[0], orphan), 0.5, motion.values[:, :6])


BAD_FILES = {
    "truncated motion line": (CHAIN.replace("1 2 3 0 0 0 0 0 0\n", "1 2 3 0 0\n"), r"line 20: motion line has 5 values"),
    "missing frames": (CHAIN.replace("1 2 3 0 0 0 0 0 0\n", ""), "truncated: Frames says 2, found 1"),
    "extra frames": (CHAIN + "1 2 3 0 0 0 0 0 0\n", "too long"),
    "channel count": (CHAIN.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation"), r"line 9: CHANNELS of 'knee' announces 4"),
    "missing Frame Time": (CHAIN.replace("Frame Time: 0.5\n", ""), r"expected 'Frame Time: <number>'"),
    "zero Frame Time": (CHAIN.replace("Frame Time: 0.5", "Frame Time: 0"), "Frame Time must be a positive"),
    "unknown channel": (CHAIN.replace("Xrotation Yrotation\n  JOINT", "Wrotation Yrotation\n  JOINT"), "unknown channel name"),
    "not a number": (CHAIN.replace("90 0 0 0 90 0", "90 0 0 0 ninety 0"), r"line 19: motion values must be numbers"),
    "bad offset": (CHAIN.replace("OFFSET 0 2 0", "OFFSET 0 2"), r"line 8: expected 'OFFSET x y z'"),
    "missing brace": (CHAIN.replace("    End Site\n    {", "    End Site\n"), "expected '{'"),
    "no MOTION": (CHAIN.split("MOTION")[0], "unexpected end of file, expected MOTION"),
    "not BVH": ("hello\n", "starts with HIERARCHY"),
    "nan": (CHAIN.replace("90 0 0 0 90 0", "90 0 0 0 nan 0"), "non-finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_value_error_naming_file_and_line(tmp_path, case):
    text, message = BAD_FILES[case]
    path = write(tmp_path, text, "bad_file.bvh")
    with pytest.raises(ValueError, match=message) as error:
        read_bvh(path)
    assert "bad_file.bvh" in str(error.value)


def test_missing_file_and_bad_scale(tmp_path):
    with pytest.raises(ValueError, match="nowhere.bvh"):
        read_bvh(tmp_path / "nowhere.bvh")
    with pytest.raises(ValueError, match="scale"):
        read_bvh(write(tmp_path, CHAIN), scale=0.0)


@needs_data
@pytest.mark.parametrize("path", CMU_FILES + BANDAI_FILES, ids=lambda path: path.name)
def test_real_files_parse_and_keep_bones_rigid(path):
    motion = read_bvh(path)
    positions, rotations = motion.forward_kinematics()
    # CMU captured at 120 Hz, Bandai-Namco at 30 fps (their published rates)
    assert motion.fps == pytest.approx(30.0 if "bandai" in str(path) else 120.0, rel=1e-4)
    assert positions.shape == (motion.num_frames, len(motion.joints), 3) and np.isfinite(positions).all()
    identity = np.broadcast_to(np.eye(3), rotations.shape)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, -1, -2), identity, atol=1e-12)
    # every bone without position channels keeps its OFFSET length in every frame
    for index, joint in enumerate(motion.joints[1:], 1):
        if not any(channel.endswith("position") for channel in joint.channels):
            length = np.linalg.norm(positions[:, index] - positions[:, joint.parent], axis=-1)
            np.testing.assert_allclose(length, np.linalg.norm(joint.offset), atol=1e-9)
