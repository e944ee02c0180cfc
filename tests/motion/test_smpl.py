"""AMASS / SMPL-family loading, checked on synthetic body models whose joints are known by hand.

The synthetic models are written in the formats smplx reads (a pickled dict or an .npz) with the real
key sets and array shapes. Joint j is regressed from vertex j alone, and vertex j sits at
joint j of `motion.skeleton.rest_joints()` (a y-up T-pose), so every posed joint can be computed by hand.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import smplx.joint_names
import torch

from motion import skeleton as sk
from motion import smpl

SMPL_NUM_VERTICES = 6890  # the real count: smplx's forward picks extra keypoints up to vertex 6787
SHAPE_COMPONENTS = {"smpl": 10, "smplh": 16, "smplx": 20}  # smplx reads SMPL-X expressions from 10..19
IGNORED_SHAPE_COMPONENT = 12  # of the SMPL+H model: smplx keeps 10 betas for models with < 300
BETA0_SCALE = 0.1  # beta_0 = 1 scales every joint by 1.1 about the origin
TOLERANCE_M = 1e-6


def _extra_parents(model_type: str) -> list[int]:
    """Parents of the joints past the 22 body joints (hands, jaw, eyes), in smplx's joint order."""

    def hand(wrist: int, first: int) -> list[int]:
        return [parent for finger in range(5) for parent in (wrist, first + 3 * finger, first + 3 * finger + 1)]

    if model_type == "smpl":
        return [sk.LEFT_WRIST, sk.RIGHT_WRIST]
    if model_type == "smplh":
        return hand(sk.LEFT_WRIST, 22) + hand(sk.RIGHT_WRIST, 37)
    return [sk.HEAD, sk.HEAD, sk.HEAD] + hand(sk.LEFT_WRIST, 25) + hand(sk.RIGHT_WRIST, 40)


def _model_arrays(model_type: str, num_vertices: int) -> dict[str, np.ndarray]:
    parents = list(sk.PARENTS) + _extra_parents(model_type)
    num_joints = len(parents)
    joints = np.zeros((num_joints, 3))
    joints[: sk.NUM_JOINTS] = sk.rest_joints()
    for joint in range(sk.NUM_JOINTS, num_joints):
        joints[joint] = joints[parents[joint]] + [0.0, 0.0, 0.02]
    vertices = np.random.default_rng(0).normal(0.0, 0.3, (num_vertices, 3))
    vertices[:num_joints] = joints
    shapedirs = np.zeros((num_vertices, 3, SHAPE_COMPONENTS[model_type]))
    shapedirs[:num_joints, :, 0] = BETA0_SCALE * joints
    if model_type == "smplh":
        shapedirs[:num_joints, 1, IGNORED_SHAPE_COMPONENT] = 1.0
    weights = np.zeros((num_vertices, num_joints))
    weights[np.arange(num_vertices), np.arange(num_vertices) % num_joints] = 1.0
    arrays = {
        "v_template": vertices,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((num_vertices, 3, 9 * (num_joints - 1)), dtype=np.float32),
        "J_regressor": np.eye(num_joints, num_vertices),
        "weights": weights,
        "kintree_table": np.array([[4294967295] + parents[1:], list(range(num_joints))], dtype=np.int64),
        "f": np.array([[0, 1, 2], [1, 2, 3]], dtype=np.int64),
    }
    if model_type == "smplx":  # SMPL-X files carry the MANO hand PCA (AMASS's SMPL+H files do not) and landmarks
        arrays.update(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45))
        arrays.update(hands_meanl=np.zeros(45), hands_meanr=np.zeros(45))
        arrays.update(lmk_faces_idx=np.zeros(1, dtype=np.int64), lmk_bary_coords=np.full((1, 3), 1.0 / 3.0))
    return arrays


def write_body_model(path, model_type: str, num_vertices: int = SMPL_NUM_VERTICES, drop=(), replace=None):
    arrays = {key: value for key, value in _model_arrays(model_type, num_vertices).items() if key not in drop}
    arrays.update(replace or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pkl":
        path.write_bytes(pickle.dumps(arrays))
    else:
        np.savez(path, **arrays)
    return path


def write_amass(path, poses, trans, *, betas=None, gender="male", fps=120.0, frame_rate_key="mocap_framerate", drop=()):
    arrays = {
        "poses": np.asarray(poses, dtype=np.float64),
        "trans": np.asarray(trans, dtype=np.float64),
        "betas": np.zeros(16) if betas is None else np.asarray(betas, dtype=np.float64),
        "gender": np.array(gender),
        frame_rate_key: np.array(fps),
    }
    np.savez(path, **{key: value for key, value in arrays.items() if key not in drop})
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A folder in the three layouts `resolve_model_file` searches: AMASS, smplx flat, smplx per type.

    The SMPL+H model is like AMASS's "Extended SMPL+H" files: .npz, 16 shape components, no hand PCA.
    """
    root = tmp_path_factory.mktemp("body_models")
    write_body_model(root / "smplh" / "male" / "model.npz", "smplh")
    write_body_model(root / "SMPL_MALE.pkl", "smpl")
    write_body_model(root / "smplx" / "SMPLX_FEMALE.npz", "smplx", num_vertices=64)
    return root


@pytest.fixture(scope="module")
def smplh_model(models_dir):
    return smpl.load_body_model(models_dir, model_type="smplh", gender="male", num_betas=16)


def _poses(frames: int, width: int = 156) -> np.ndarray:
    return np.zeros((frames, width))


def test_first_22_smpl_joints_are_the_humanml3d_joints():
    assert tuple(smplx.joint_names.JOINT_NAMES[: sk.NUM_JOINTS]) == sk.JOINT_NAMES


def test_zero_pose_gives_the_template_joints(smplh_model):
    joints = smpl.smpl_joints(smplh_model, _poses(2), np.zeros((2, 3)), np.zeros(16))
    assert joints.shape == (2, sk.NUM_JOINTS, 3)
    np.testing.assert_allclose(joints.numpy(), np.broadcast_to(sk.rest_joints(), (2, 22, 3)), atol=TOLERANCE_M)


def test_betas_shape_the_body_and_only_ten_are_used(smplh_model):
    assert smplh_model.num_betas == 10  # smplx's rule for models with fewer than 300 shape components
    betas = np.zeros(16)
    betas[0] = 1.0
    betas[IGNORED_SHAPE_COMPONENT] = 5.0
    joints = smpl.smpl_joints(smplh_model, _poses(1), np.zeros((1, 3)), betas)[0].numpy()
    np.testing.assert_allclose(joints, (1 + BETA0_SCALE) * sk.rest_joints(), atol=TOLERANCE_M)


def test_root_rotation_about_the_amass_up_axis_and_translation(smplh_model):
    poses = _poses(1)
    poses[0, :3] = [0.0, 0.0, math.pi / 2]  # 90° about z: (x, y, z) → (−y, x, z) around the pelvis
    trans = np.array([[0.5, -1.0, 2.0]])
    joints = smpl.smpl_joints(smplh_model, poses, trans, np.zeros(16))[0].numpy()
    rest = sk.rest_joints()
    offset = rest - rest[sk.PELVIS]
    expected = rest[sk.PELVIS] + np.stack([-offset[:, 1], offset[:, 0], offset[:, 2]], axis=-1) + trans[0]
    np.testing.assert_allclose(joints, expected, atol=TOLERANCE_M)


def test_pose_columns_follow_the_joint_order(smplh_model):
    poses = _poses(1)
    poses[0, 3 * sk.LEFT_ELBOW : 3 * sk.LEFT_ELBOW + 3] = [0.0, math.pi / 2, 0.0]  # 90° about y: +x → −z
    joints = smpl.smpl_joints(smplh_model, poses, np.zeros((1, 3)), np.zeros(16))[0].numpy()
    rest = sk.rest_joints()
    forearm = np.linalg.norm(rest[sk.LEFT_WRIST] - rest[sk.LEFT_ELBOW])
    np.testing.assert_allclose(joints[sk.LEFT_WRIST], rest[sk.LEFT_ELBOW] + [0.0, 0.0, -forearm], atol=TOLERANCE_M)
    np.testing.assert_allclose(joints[: sk.LEFT_WRIST], rest[: sk.LEFT_WRIST], atol=TOLERANCE_M)


def random_pose_and_forward(model, model_type: str, *, frames: int, seed: int):
    """Random AMASS-layout `poses`, `trans`, `betas` and smplx's own forward pass on them."""
    rng = np.random.default_rng(seed)
    poses = torch.as_tensor(rng.normal(0.0, 0.6, (frames, smpl.POSE_WIDTHS[model_type])))
    trans = torch.as_tensor(rng.normal(0.0, 1.0, (frames, 3)))
    betas = torch.as_tensor(rng.normal(0.0, 1.0, 10))
    parts = {"global_orient": poses[:, :3], "body_pose": poses[:, 3:66 if model_type == "smplh" else 72]}
    if model_type == "smplh":
        parts.update(left_hand_pose=poses[:, 66:111], right_hand_pose=poses[:, 111:156])
    with torch.no_grad():
        return poses, trans, betas, model(betas=betas.expand(frames, -1), transl=trans, **parts)


@pytest.mark.parametrize("model_type", ["smplh", "smpl"])
def test_joints_equal_the_smplx_forward_pass(models_dir, model_type):
    model = smpl.load_body_model(models_dir, model_type=model_type, gender="male", num_betas=10)
    poses, trans, betas, output = random_pose_and_forward(model, model_type, frames=5, seed=1)
    forward = output.joints[:, : sk.NUM_JOINTS]
    with torch.no_grad():
        joints = smpl.smpl_joints(model, poses, trans, betas)
    assert torch.allclose(joints, forward, atol=1e-9, rtol=0)


def test_amass_to_y_up_is_a_proper_rotation_taking_z_to_y():
    rotation = smpl.AMASS_TO_Y_UP
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-12)  # right-handed frame kept
    np.testing.assert_allclose(rotation @ [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(smpl.z_up_to_y_up(torch.tensor([[1.0, 2.0, 3.0]])).numpy(), [[-1.0, 3.0, 2.0]])


def test_load_amass_stands_an_amass_body_upright_in_y(tmp_path, models_dir):
    poses = _poses(3)
    poses[:, :3] = [math.pi / 2, 0.0, 0.0]  # how AMASS stands the y-up SMPL body in its z-up world
    trans = np.array([[1.0, 2.0, 0.3]] * 3)
    path = write_amass(tmp_path / "clip.npz", poses, trans, fps=20.0)
    joints = smpl.load_amass(path, model_path=models_dir)
    assert joints.shape == (3, sk.NUM_JOINTS, 3) and joints.dtype == np.float32
    rest = sk.rest_joints()
    offset = rest - rest[sk.PELVIS]
    # rotation about x then z-up → y-up: an offset (x, y, z) becomes (−x, y, −z): upright, facing −z.
    pelvis = smpl.AMASS_TO_Y_UP @ (rest[sk.PELVIS] + trans[0])
    expected = pelvis + offset * [-1.0, 1.0, -1.0]
    np.testing.assert_allclose(joints, np.broadcast_to(expected, joints.shape), atol=TOLERANCE_M)
    assert joints[0, sk.HEAD, 1] - joints[0, sk.PELVIS, 1] == pytest.approx(offset[sk.HEAD, 1], abs=TOLERANCE_M)


@pytest.mark.parametrize(
    "frames, fps_in, frames_out", [(121, 120.0, 21), (100, 60.0, 34), (50, 20.0, 50), (11, 10.0, 21)]
)
def test_load_amass_resamples_to_the_target_rate(tmp_path, models_dir, frames, fps_in, frames_out):
    velocity = np.array([1.2, -0.4, 0.1])  # m/s, AMASS world
    time_in = np.arange(frames) / fps_in
    path = write_amass(tmp_path / "walk.npz", _poses(frames), time_in[:, None] * velocity, fps=fps_in)
    joints = smpl.load_amass(path, model_path=models_dir, fps=20.0)
    assert joints.shape[0] == frames_out == math.floor((frames - 1) * 20.0 / fps_in) + 1
    # Uniform motion passes the anti-aliasing filter and the interpolation unchanged, ends included.
    time_out = np.arange(frames_out) / 20.0
    expected_pelvis = (sk.rest_joints()[sk.PELVIS] + time_out[:, None] * velocity) @ smpl.AMASS_TO_Y_UP.T
    np.testing.assert_allclose(joints[:, sk.PELVIS], expected_pelvis, atol=TOLERANCE_M)


def test_load_amass_removes_vibration_above_the_new_nyquist_rate(tmp_path, models_dir):
    frames, fps_in, vibration_hz, amplitude_m = 241, 120.0, 25.0, 0.01
    time_in = np.arange(frames) / fps_in
    trans = np.zeros((frames, 3))
    trans[:, 2] = amplitude_m * np.sin(2 * np.pi * vibration_hz * time_in)  # would alias to 5 Hz at 20 fps
    path = write_amass(tmp_path / "vibration.npz", _poses(frames), trans, fps=fps_in)
    pelvis_height = smpl.load_amass(path, model_path=models_dir)[:, sk.PELVIS, 1]
    residual = np.abs(pelvis_height - sk.rest_joints()[sk.PELVIS, 2])
    assert residual.max() < 0.01 * amplitude_m  # measured 9e-4; plain decimation would keep ~1


def test_load_amass_processes_in_batches_without_changing_the_result(tmp_path, models_dir):
    rng = np.random.default_rng(2)
    poses, trans = rng.normal(0.0, 0.5, (30, 156)), rng.normal(0.0, 1.0, (30, 3))
    path = write_amass(tmp_path / "random.npz", poses, trans, fps=20.0)
    whole = smpl.load_amass(path, model_path=models_dir)
    batched = smpl.load_amass(path, model_path=models_dir, batch_size=7)
    np.testing.assert_array_equal(batched, whole)


def test_load_amass_reads_smplx_and_smpl_files(tmp_path, models_dir):
    poses = _poses(4, 165)
    poses[:, :3] = [0.0, 0.0, math.pi / 2]
    smplx_path = write_amass(tmp_path / "x.npz", poses, np.zeros((4, 3)), gender="female", fps=20.0,
                             frame_rate_key="mocap_frame_rate")
    smpl_path = write_amass(tmp_path / "s.npz", poses[:, :72], np.zeros((4, 3)), betas=np.zeros(10), fps=20.0)
    from_smplx = smpl.load_amass(smplx_path, model_path=models_dir, model_type="smplx")
    from_smpl = smpl.load_amass(smpl_path, model_path=models_dir / "SMPL_MALE.pkl", model_type="smpl")
    rest = sk.rest_joints()
    offset = rest - rest[sk.PELVIS]
    rotated = rest[sk.PELVIS] + np.stack([-offset[:, 1], offset[:, 0], offset[:, 2]], axis=-1)
    expected = np.broadcast_to(rotated @ smpl.AMASS_TO_Y_UP.T, from_smpl.shape)
    np.testing.assert_allclose(from_smplx, expected, atol=TOLERANCE_M)
    np.testing.assert_allclose(from_smpl, expected, atol=TOLERANCE_M)


GOOD_MOTION = {"poses": _poses(4), "trans": np.zeros((4, 3)), "betas": np.zeros(16), "gender": "male", "fps": 120.0}
BAD_MOTIONS = {
    "missing poses (an AMASS shape.npz)": ({"drop": ("poses", "trans")}, "missing key"),
    "missing frame rate": ({"drop": ("mocap_framerate",)}, "mocap_frame_rate"),
    "missing gender": ({"drop": ("gender",)}, "missing key"),
    "pose width 100": ({"poses": _poses(4, 100)}, "poses must have shape"),
    "one frame": ({"poses": _poses(1), "trans": np.zeros((1, 3))}, "at least 2 frames"),
    "trans length": ({"trans": np.zeros((3, 3))}, "trans must have shape"),
    "betas matrix": ({"betas": np.zeros((4, 16))}, "betas must have shape"),
    "NaN pose": ({"poses": np.full((4, 156), np.nan)}, "poses holds non-finite"),
    "unknown gender": ({"gender": "robot"}, "gender must be one of"),
    "zero frame rate": ({"fps": 0.0}, "positive frame rate"),
}


@pytest.mark.parametrize("case", list(BAD_MOTIONS))
def test_bad_motion_files_raise_errors_naming_the_file(tmp_path, models_dir, case):
    changes, message = BAD_MOTIONS[case]
    motion = {**GOOD_MOTION, **changes}
    path = write_amass(tmp_path / "bad.npz", motion.pop("poses"), motion.pop("trans"), **motion)
    with pytest.raises(ValueError, match=message) as error:
        smpl.load_amass(path, model_path=models_dir)
    assert str(path) in str(error.value)


def test_unreadable_or_absent_motion_files_are_named(tmp_path, models_dir):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        smpl.load_amass(tmp_path / "absent.npz", model_path=models_dir)
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"text\.npz: not a readable \.npz"):
        smpl.load_amass(tmp_path / "text.npz", model_path=models_dir)


def test_pose_width_must_match_the_model_type(tmp_path, models_dir):
    path = write_amass(tmp_path / "h.npz", _poses(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"h\.npz: poses has width 156 \(smplh layout\).*model_type='smplh'"):
        smpl.load_amass(path, model_path=models_dir, model_type="smpl")


def test_missing_body_models_say_where_to_get_them(tmp_path, models_dir):
    path = write_amass(tmp_path / "f.npz", _poses(4), np.zeros((4, 3)), gender="female")
    with pytest.raises(FileNotFoundError, match=r"no smplh body model for gender 'female'.*mano\.is\.tue\.mpg\.de"):
        smpl.load_amass(path, model_path=models_dir)
    with pytest.raises(FileNotFoundError, match=r"model_path .*nowhere does not exist.*smpl\.is\.tue\.mpg\.de"):
        smpl.load_body_model(tmp_path / "nowhere", model_type="smpl")


def test_smplh_files_with_the_hand_pca_give_the_same_joints(tmp_path, smplh_model):
    hands = {"hands_componentsl": np.eye(45)[::-1], "hands_componentsr": np.eye(45)[::-1]}
    hands.update(hands_meanl=np.full(45, 0.3), hands_meanr=np.full(45, -0.3))
    path = write_body_model(tmp_path / "SMPLH_MALE.pkl", "smplh", num_vertices=64, replace=hands)
    model = smpl.load_body_model(path, model_type="smplh", num_betas=16)
    assert not model.pose_mean.any()  # flat hand mean, as AMASS poses hands
    poses = np.random.default_rng(3).normal(0.0, 0.6, (4, 156))
    joints = smpl.smpl_joints(model, poses, np.zeros((4, 3)), np.ones(16))
    assert torch.allclose(joints, smpl.smpl_joints(smplh_model, poses, np.zeros((4, 3)), np.ones(16)), atol=1e-12)


def test_gender_stored_as_bytes_selects_the_model(tmp_path, models_dir):
    path = write_amass(tmp_path / "b.npz", _poses(2), np.zeros((2, 3)), gender=b"Male ", fps=20.0)
    assert smpl.read_amass(path).gender == "male"
    np.testing.assert_allclose(smpl.load_amass(path, model_path=models_dir)[0],
                               sk.rest_joints() @ smpl.AMASS_TO_Y_UP.T, atol=TOLERANCE_M)


def test_bad_body_model_files_are_named(tmp_path):
    broken = write_body_model(tmp_path / "broken" / "model.npz", "smplh", num_vertices=64, drop=("J_regressor",))
    with pytest.raises(ValueError, match=r"broken/model\.npz: not a smplh body model file: missing key.*J_regressor"):
        smpl.load_body_model(broken, model_type="smplh")
    no_landmarks = write_body_model(tmp_path / "x.npz", "smplx", 64, drop=("lmk_faces_idx",))
    with pytest.raises(ValueError, match=r"x\.npz: not a readable smplx body model file.*lmk_faces_idx"):
        smpl.load_body_model(no_landmarks, model_type="smplx")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"garbage\.pkl: not a readable smpl body model file"):
        smpl.load_body_model(tmp_path / "garbage.pkl", model_type="smpl")
    kintree = _model_arrays("smpl", 64)["kintree_table"]
    kintree[0, sk.RIGHT_KNEE] = sk.LEFT_HIP
    not_smpl = write_body_model(tmp_path / "tree.pkl", "smpl", 64, replace={"kintree_table": kintree})
    with pytest.raises(ValueError, match=r"tree\.pkl: its first 22 joints do not form the SMPL body tree"):
        smpl.load_body_model(not_smpl, model_type="smpl")
    (tmp_path / "SMPL_MALE.txt").write_text("")
    with pytest.raises(ValueError, match=r"SMPL_MALE\.txt: body model files are \.npz or \.pkl"):
        smpl.load_body_model(tmp_path / "SMPL_MALE.txt", model_type="smpl")


@pytest.mark.parametrize(
    "options, message",
    [({"model_type": "mano"}, "model_type must be one of"), ({"fps": 0.0}, "fps must be"),
     ({"fps": math.nan}, "fps must be"), ({"batch_size": 0}, "batch_size must be")],
)
def test_bad_arguments_are_named(tmp_path, models_dir, options, message):
    path = write_amass(tmp_path / "ok.npz", _poses(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=message):
        smpl.load_amass(path, model_path=models_dir, **options)


def test_smpl_joints_checks_shapes(smplh_model):
    with pytest.raises(ValueError, match="poses must have shape"):
        smpl.smpl_joints(smplh_model, np.zeros((2, 60)), np.zeros((2, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="trans must have shape"):
        smpl.smpl_joints(smplh_model, np.zeros((2, 66)), np.zeros((3, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="betas must have shape"):
        smpl.smpl_joints(smplh_model, np.zeros((2, 66)), np.zeros((2, 3)), np.zeros((2, 10)))
