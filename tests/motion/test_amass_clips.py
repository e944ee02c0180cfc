"""AMASS files → sensors on the SMPL surface → clips → on-the-fly IMU, on synthetic body models and motions.

The body model is test_smpl's synthetic SMPL+H (6890 vertices, so the SMPL presets' vertex ids exist) with
a strip of faces (i, i+1, i+2) that puts every vertex in a face; the motions are smooth sinusoidal poses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf.errors import MissingMandatoryValue
from torch.utils.data import DataLoader

from datamodules.labels import safety_of
from datamodules.motion_dataset import MotionClipDataset
from motion import skeleton as sk
from motion import smpl
from motion.amass_clips import AMASSClipSet, SurfaceMotionClip
from motion.bvh_clips import CroppedClipSet, foot_contact
from tests.motion.test_smpl import SMPL_NUM_VERTICES, write_amass, write_body_model
from virtual_imu import quaternion as Q
from virtual_imu import simulate
from virtual_imu.filters import resample
from virtual_imu.pipeline import WristIMUPipeline
from virtual_imu.surface import LEFT_WRIST, SurfaceSensor

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
FPS_IN = 60.0
STRIP = np.stack([np.arange(SMPL_NUM_VERTICES - 2) + k for k in range(3)], axis=-1)  # face i: (i, i+1, i+2)
CLIPS = dict(duration_s=1.0, stride_s=0.5, min_duration_s=0.5)  # 20-frame crops every 10 frames at 20 fps


def smooth_motion(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SMPL+H poses `[T, 156]` (each angle a 0.3 rad sinusoid) and a walking-speed root path at `FPS_IN`."""
    rng = np.random.default_rng(seed)
    time = np.arange(frames)[:, None] / FPS_IN
    poses = 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, 156) * time + rng.uniform(0, 2 * np.pi, 156))
    trans = np.concatenate((1.2 * time, 0.1 * np.sin(4 * time), 0.9 + 0.02 * np.sin(9 * time)), axis=-1)
    return poses, trans


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("body_models")
    write_body_model(root / "smplh" / "male" / "model.npz", "smplh", replace={"f": STRIP})
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Motions of 121, 45 and 12 frames at 60 fps: 41, 15 and 4 frames (2.05, 0.75, 0.2 s) at 20 fps."""
    folder = tmp_path_factory.mktemp("amass")
    made = {}
    for seed, (name, frames) in enumerate([("walk", 121), ("fall", 45), ("blip", 12)]):
        poses, trans = smooth_motion(frames, seed)
        made[name] = write_amass(folder / f"{name}.npz", poses, trans, betas=np.linspace(-1, 1, 16), fps=FPS_IN)
    return made


def resampled_mesh_and_joints(path: Path, models: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole posed mesh `[T_out, V, 3]` and joints `[T_out, 22, 3]` (float64, y up) resampled to 20 fps."""
    motion = smpl.read_amass(path)
    model = smpl.load_body_model(models, model_type="smplh", gender="male", num_betas=16)
    with torch.no_grad():
        vertices = smpl.smpl_vertices(model, motion.poses, motion.trans, motion.betas)
        joints = smpl.z_up_to_y_up(smpl.smpl_joints(model, motion.poses, motion.trans, motion.betas))
    frames = vertices.shape[0]
    return (resample(vertices.reshape(frames, -1), FPS_IN, 20.0).reshape(-1, SMPL_NUM_VERTICES, 3),
            resample(joints.reshape(frames, -1), FPS_IN, 20.0).reshape(-1, sk.NUM_JOINTS, 3))


def test_surface_sensor_sits_on_the_resampled_mesh(files, models):
    joints, positions, orientations = smpl.load_amass_surface(files["walk"], model_path=models, sensor="left_wrist")
    assert joints.shape == (41, 22, 3) and positions.shape == (41, 3) and orientations.shape == (41, 4)
    assert joints.dtype == positions.dtype == orientations.dtype == np.float32
    np.testing.assert_array_equal(joints, smpl.load_amass(files["walk"], model_path=models))

    vertices, _ = resampled_mesh_and_joints(files["walk"], models)
    anchor = LEFT_WRIST.vertex
    around = torch.as_tensor(STRIP[anchor - 2 : anchor + 1])  # the three strip faces holding the anchor
    a, b, c = vertices[:, around].unbind(-2)
    normal = F.normalize(torch.linalg.cross(b - a, c - a, dim=-1).sum(-2), dim=-1)  # area-weighted vertex normal
    expected = vertices[:, anchor] + LEFT_WRIST.standoff_m * normal
    assert np.abs(positions - expected.numpy()).max() < 1e-6  # measured 1.0e-7 (float32 rounding)
    axes = Q.to_matrix(torch.as_tensor(orientations, dtype=torch.float64))
    assert (axes[..., 2] - normal).abs().max() < 1e-6  # z: the outward normal (identity mount); measured 9.1e-8
    forearm = torch.as_tensor(joints[:, sk.LEFT_WRIST] - joints[:, sk.LEFT_ELBOW], dtype=torch.float64)
    along = F.normalize(forearm - (forearm * normal).sum(-1, keepdim=True) * normal, dim=-1)
    assert (axes[..., 0] - along).abs().max() < 1e-5  # x: the forearm in the tangent plane; measured 8.9e-7
    assert np.abs(np.linalg.norm(orientations, axis=-1) - 1).max() < 1e-6  # measured 6.0e-8


def test_any_surface_sensor_equals_placing_it_on_the_whole_resampled_mesh(files, models):
    """Only the vertices around the anchor are posed and resampled: the result is the whole mesh's."""
    mount = Q.from_axis_angle(torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64), torch.tensor(0.9, dtype=torch.float64))
    sensor = SurfaceSensor(face=4000, barycentric=(0.2, 0.3, 0.5), segment=(sk.RIGHT_HIP, sk.RIGHT_KNEE),
                           mount_rotation=tuple(mount.tolist()), standoff_m=-0.02, name="thigh")
    _, positions, orientations = smpl.load_amass_surface(files["walk"], model_path=models, sensor=sensor, batch_size=7)
    vertices, joints = resampled_mesh_and_joints(files["walk"], models)
    expected_positions, expected_orientations = sensor.place(vertices, joints, torch.as_tensor(STRIP))
    assert np.abs(positions - expected_positions.numpy()).max() < 1e-6  # measured 1.2e-7
    assert np.abs(orientations - expected_orientations.numpy()).max() < 1e-6  # measured 2.9e-8


def test_bad_sensors_are_named(tmp_path, files, models):
    with pytest.raises(ValueError, match="unknown surface sensor placement 'ankle'"):
        smpl.load_amass_surface(files["walk"], model_path=models, sensor="ankle")
    with pytest.raises(ValueError, match="sensor must be a SurfaceSensor or a name in"):
        smpl.load_amass_surface(files["walk"], model_path=models, sensor=3)
    with pytest.raises(ValueError, match="batch_size must be"):
        smpl.load_amass_surface(files["walk"], model_path=models, sensor="chest", batch_size=0)
    with pytest.raises(ValueError, match="unknown surface sensor placement 'ankle'"):
        AMASSClipSet(entries=[(files["walk"], "walking")], safety_of=safety_of, model_path=models, sensor="ankle")
    small = write_body_model(tmp_path / "male" / "model.npz", "smplh", num_vertices=64)
    with pytest.raises(ValueError, match="left_wrist: vertex 1961 is out of range for a mesh of 64 vertices"):
        smpl.load_amass_surface(files["walk"], model_path=small, sensor="left_wrist")


@pytest.fixture(scope="module")
def clip_set(files, models) -> AMASSClipSet:
    entries = [(files["walk"], "walking"), (files["fall"], "falling"), (files["blip"], "walking")]
    with pytest.warns(UserWarning, match=r"blip.npz: 0.20 s is shorter than min_duration_s=0.5 s; skipped"):
        return AMASSClipSet(entries=entries, safety_of=safety_of, model_path=models, sensor="left_wrist", **CLIPS)


def test_clips_are_cropped_and_labelled_like_bvh_clips(clip_set, files, models):
    assert clip_set.skipped == [files["blip"]]
    assert clip_set.crops == [(0, 0), (0, 10), (0, 20), (0, 21), (1, 0)]  # crop_starts(41, 20, 10); 15 frames: one
    assert len(clip_set) == 5 and clip_set.activities == ("falling", "walking")
    joints, positions, orientations = smpl.load_amass_surface(files["walk"], model_path=models, sensor="left_wrist")
    for index, start in zip(range(4), (0, 10, 20, 21)):
        clip = clip_set[index]
        assert isinstance(clip, SurfaceMotionClip) and clip.fps == 20.0
        assert clip.activity == "walking" == clip_set.activity_of(index) and clip.safety == "safe"
        crop = slice(start, start + 20)
        np.testing.assert_array_equal(clip.joints, joints[crop])
        np.testing.assert_array_equal(clip.trajectory_positions, positions[crop])
        np.testing.assert_array_equal(clip.trajectory_orientations, orientations[crop])
        np.testing.assert_array_equal(clip.foot_contact, foot_contact(joints, 20.0)[crop])
        assert clip.trajectory_positions.dtype == clip.trajectory_orientations.dtype == np.float32
    assert clip_set[1].caption == "walk 0.50–1.50 s"
    padded = clip_set[-1]  # 15 frames, the last held for 5 more
    assert padded.activity == "falling" and padded.safety == "unsafe" and padded.caption == "fall 0.00–1.00 s"
    _, positions, orientations = smpl.load_amass_surface(files["fall"], model_path=models, sensor="left_wrist")
    np.testing.assert_array_equal(padded.trajectory_positions, np.concatenate((positions, np.repeat(positions[-1:], 5, 0))))
    np.testing.assert_array_equal(padded.trajectory_orientations[15:], np.broadcast_to(orientations[-1], (5, 4)))
    assert isinstance(clip_set, CroppedClipSet) and repr(clip_set).startswith("AMASSClipSet(files=3, clips=5")


def test_surface_clips_check_their_trajectory_shapes(clip_set):
    clip = clip_set[0]
    fields = dict(joints=clip.joints, fps=20.0, activity="walking", safety="safe", caption="", foot_contact=clip.foot_contact)
    with pytest.raises(ValueError, match=r"trajectory_positions must have shape \[20, 3\], got \(19, 3\)"):
        SurfaceMotionClip(**fields, trajectory_positions=clip.trajectory_positions[1:], trajectory_orientations=clip.trajectory_orientations)
    with pytest.raises(ValueError, match=r"trajectory_orientations must have shape \[20, 4\], got \(20, 3\)"):
        SurfaceMotionClip(**fields, trajectory_positions=clip.trajectory_positions, trajectory_orientations=clip.trajectory_orientations[:, :3])


def test_a_batch_simulates_the_surface_sensor(clip_set):
    pipeline = WristIMUPipeline(motion_fps=20.0, target_hz=50.0)  # ideal sensor: simulate + resample alone
    dataset = MotionClipDataset(clip_set, class_names=clip_set.activities, imu_length=pipeline.output_length(20),
                                noise_seed=0, pipeline=pipeline)
    item = dataset[0]
    assert item["trajectory_positions"].shape == (20, 3) and item["trajectory_orientations"].shape == (20, 4)
    assert item["trajectory_positions"].dtype == item["trajectory_orientations"].dtype == torch.float32
    batch = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    imu = pipeline(batch["joints"], batch)
    assert imu.shape == (5, 48, 6)  # 20 frames at 20 fps → floor(19 · 50 / 20) + 1 samples at 50 Hz
    for index in range(len(clip_set)):
        clip = clip_set[index]
        acc, gyro = simulate(torch.as_tensor(clip.trajectory_positions), torch.as_tensor(clip.trajectory_orientations), 20.0)
        expected = resample(torch.cat((acc, gyro), dim=-1), 20.0, 50.0)
        assert (imu[index] - expected).abs().max() < 1e-5  # measured 0.0: the same float32 arithmetic
    assert (pipeline(batch["joints"]) - imu).abs().max() > 0.1  # not the joint-based preset


def test_the_hydra_config_gives_surface_sensor_batches(files, models):
    entries = f"[['{files['walk']}',walking],['{files['fall']}',falling]]"
    overrides = ["data=amass_surface", f"data.train_motion.model_path='{models}'", "data/sensor=ideal",
                 *(f"data.{split}_motion.entries={entries}" for split in ("train", "val", "test")),
                 "data.train_motion.duration_s=1.0", "data.train_motion.stride_s=0.5", "data.train_motion.min_duration_s=0.5",
                 "data.window_s=0.5", "data.batch_size=4", "data.num_workers=0", "data.normalization_clips=8"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.data.train_motion._target_ == "motion.amass_clips.AMASSClipSet" and cfg.data.test_motion.sensor == "left_wrist"
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    assert isinstance(datamodule.motion["val"], AMASSClipSet) and datamodule.class_names == ("falling", "walking")
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert batch["imu"].shape[1:] == (25, 6) and torch.isfinite(batch["imu"]).all()


def test_the_hydra_config_needs_the_users_files():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=amass_surface"])
    for key in ("entries", "model_path"):
        with pytest.raises(MissingMandatoryValue, match=key):
            getattr(cfg.data.train_motion, key)
