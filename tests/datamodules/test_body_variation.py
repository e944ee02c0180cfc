"""Body-shape variation: per-clip bodies, scaled skeletons, and the girth reaching the sensor."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from datamodules.body_variation import BodyShapeVariation
from datamodules.motion_dataset import MotionClipDataset
from motion.body_shapes import BODY_SHAPES, body_shape, limb_girth_scale
from motion.procedural import ProceduralMotionSet
from motion.skeleton import JOINT_NAMES, PARENTS
from virtual_imu.pipeline import WristIMUPipeline
from virtual_imu.presets import preset


@pytest.fixture(scope="module")
def motion():
    return ProceduralMotionSet(num_clips=40, seed=4, duration_s=4.0, fps=20.0)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(joints[:, j] - joints[:, p], axis=-1) for j, p in enumerate(PARENTS) if p >= 0], -1)


def test_each_clip_gets_a_seeded_body_and_all_eight_occur(motion):
    shaped = BodyShapeVariation(motion, seed=3)
    bodies = [shaped.body_of(i).name for i in range(len(shaped))]
    assert bodies == [BodyShapeVariation(motion, seed=3).body_of(i).name for i in range(len(shaped))]
    assert bodies != [BodyShapeVariation(motion, seed=4).body_of(i).name for i in range(len(shaped))]
    assert set(bodies) == set(BODY_SHAPES)
    assert shaped.activities == motion.activities and shaped.activity_of(5) == motion[5].activity


def test_clips_are_scaled_to_the_drawn_body_and_carry_its_girth(motion):
    shaped = BodyShapeVariation(motion, reference="female_average", seed=1)
    for index in range(6):
        clip, original = shaped[index], motion[index]
        body = body_shape(clip.body)
        ratio = bone_lengths(clip.joints) / bone_lengths(original.joints)
        np.testing.assert_allclose(ratio, body.height_m / 1.63, rtol=1e-5)
        assert clip.girth_scale == pytest.approx(limb_girth_scale(body, body_shape("female_average")), rel=1e-12)
        assert (clip.activity, clip.safety) == (original.activity, original.safety)


def test_the_girth_moves_the_watch_off_the_bone():
    """A forearm turning at ω about the vertical through the elbow: |a| = ω²·ρ with ρ the sensor's radius."""
    fps, omega, length, frames, girth = 200.0, 2.0, 0.26, 400, 2.0
    t = torch.arange(frames, dtype=torch.float64) / fps
    joints = torch.zeros(frames, len(JOINT_NAMES), 3, dtype=torch.float64)
    index = {name: i for i, name in enumerate(JOINT_NAMES)}
    joints[:, index["left_shoulder"]] = torch.tensor([0.0, 0.3, 0.0], dtype=torch.float64)
    joints[:, index["right_shoulder"]] = torch.tensor([-0.4, 0.3, 0.0], dtype=torch.float64)
    joints[:, index["left_wrist"]] = torch.stack((length * torch.cos(omega * t), 0 * t, length * torch.sin(omega * t)), -1)
    pipeline = WristIMUPipeline(motion_fps=fps, target_hz=fps, gravity=0.0)
    draws = {**pipeline.sensor.draw(frames), "body_girth_scale": torch.tensor(girth)}
    acc = pipeline(joints, draws)[20:-20, :3]
    x, y, _ = preset("left_wrist").mount.offset_m
    expected = omega**2 * math.hypot(length + x, girth * y)
    torch.testing.assert_close(acc.norm(dim=-1), torch.full_like(acc[:, 0], expected), atol=2e-4, rtol=0)
    assert abs(expected - omega**2 * math.hypot(length + x, y)) > 10 * 2e-4  # the girth is visible


def test_dataset_items_carry_the_girth_for_the_pipeline(motion):
    pipeline = WristIMUPipeline()
    dataset = MotionClipDataset(BodyShapeVariation(motion, seed=2), class_names=motion.activities,
                                imu_length=pipeline.output_length(80), noise_seed=0, pipeline=pipeline)
    item = dataset[7]
    assert item["body_girth_scale"].item() == pytest.approx(BodyShapeVariation(motion, seed=2)[7].girth_scale, rel=1e-6)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    assert pipeline(batch["joints"], batch).shape == (4, pipeline.output_length(80), 6)


@pytest.mark.parametrize("kwargs,message", [({"shapes": ()}, "shapes"), ({"shapes": ("giant",)}, "giant"),
                                            ({"reference": "nobody"}, "nobody")])
def test_bad_bodies_are_named(motion, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BodyShapeVariation(motion, **kwargs)


def test_the_datamodule_wears_every_split_on_the_chosen_bodies(make_datamodule):
    datamodule = make_datamodule(body_shapes=["female_short", "male_tall"], reference_body="female_average")
    datamodule.setup("fit")
    for split in ("train", "val", "test"):
        shaped = datamodule.motion[split]
        assert isinstance(shaped, BodyShapeVariation) and {b.name for b in shaped.shapes} == {"female_short", "male_tall"}
    assert datamodule.motion["train"].seed != datamodule.motion["val"].seed
    batch = next(iter(datamodule.train_dataloader()))
    assert "body_girth_scale" in batch
    out = datamodule.on_after_batch_transfer(batch, 0)
    assert torch.isfinite(out["imu"]).all()


def test_clips_with_their_own_sensor_trajectory_refuse_a_body_variation(motion):
    class WithTrajectory:
        activities = motion.activities

        def __len__(self):
            return 1

        def __getitem__(self, index):
            clip = motion[index]
            return SimpleNamespace(joints=clip.joints, activity=clip.activity, safety=clip.safety,
                                   trajectory_positions=np.zeros((80, 3), np.float32))

    with pytest.raises(ValueError, match="set body_shapes to null"):
        BodyShapeVariation(WithTrajectory())[0]
