"""Placement randomisation: each variation against its closed form, seeded and batched."""

import math

import numpy as np
import pytest
import torch

from motion.procedural import generate_clip
from motion.skeleton import JOINT_NAMES
from virtual_imu import quaternion
from virtual_imu.mems import MEMSIMU
from virtual_imu.mounting import rotate_imu
from virtual_imu.pipeline import WristIMUPipeline
from virtual_imu.presets import preset
from virtual_imu.randomization import PlacementRandomization, yaw_motion

F64 = torch.float64


@pytest.fixture(scope="module")
def walking_joints() -> torch.Tensor:
    """`[3, 40, 22, 3]` three 2 s walking clips at 20 fps (m)."""
    clips = [generate_clip("walking", np.random.default_rng(seed), duration_s=2.0) for seed in (0, 1, 2)]
    return torch.from_numpy(np.stack([clip.joints for clip in clips]))


def batched_draws(pipeline: WristIMUPipeline, clips: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-clip draws stacked like a DataLoader collates them (the default sensor is ideal: no errors)."""
    generator = torch.Generator().manual_seed(seed)
    per_clip = [pipeline.draw(length, generator) for _ in range(clips)]
    return {key: torch.stack([draws[key] for draws in per_clip]) for key in per_clip[0]}


def test_draws_have_the_same_keys_whatever_the_settings_and_repeat_with_the_seed():
    plain = PlacementRandomization().draw(torch.Generator().manual_seed(3))
    full = PlacementRandomization(0.05, 0.5, 0.5, True, True)
    first, again = full.draw(torch.Generator().manual_seed(3)), full.draw(torch.Generator().manual_seed(3))
    assert set(plain) == set(first)
    for key in first:
        assert torch.equal(first[key], again[key])
    assert plain["placement_offset_along_m"] == 0 and not plain["placement_other_wrist"]
    assert torch.equal(plain["placement_rotation"], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_probabilities_and_ranges_of_the_draws():
    randomization = PlacementRandomization(offset_along_m=0.04, other_wrist_probability=0.3, upside_down_probability=0.7)
    generator = torch.Generator().manual_seed(0)
    draws = [randomization.draw(generator) for _ in range(4000)]
    offsets = torch.stack([d["placement_offset_along_m"] for d in draws])
    assert offsets.abs().max() <= 0.04 and offsets.std().item() == pytest.approx(0.04 / math.sqrt(3), rel=0.05)
    assert torch.stack([d["placement_other_wrist"] for d in draws]).float().mean().item() == pytest.approx(0.3, abs=0.025)
    assert torch.stack([d["placement_upside_down"] for d in draws]).float().mean().item() == pytest.approx(0.7, abs=0.025)


def test_random_rotations_are_uniform_on_so3():
    randomization = PlacementRandomization(random_rotation=True)
    generator = torch.Generator().manual_seed(1)
    rotations = torch.stack([randomization.draw(generator)["placement_rotation"] for _ in range(4000)]).double()
    torch.testing.assert_close(rotations.norm(dim=-1), torch.ones(4000, dtype=F64), atol=1e-6, rtol=0)
    # A uniformly rotated unit vector has mean 0 and covariance I/3 (tolerance ≈ 4 standard errors).
    turned = quaternion.rotate(rotations, torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand(4000, 3))
    assert turned.mean(0).abs().max() < 0.04
    torch.testing.assert_close(torch.cov(turned.T), torch.eye(3, dtype=F64) / 3, atol=0.02, rtol=0)


def test_offset_along_the_forearm_adds_its_centripetal_acceleration():
    """A forearm turning at ω about the vertical through the elbow: |a| = ω²·ρ, ρ the sensor's radius."""
    fps, omega, length, frames = 200.0, 2.0, 0.26, 400
    t = torch.arange(frames, dtype=F64) / fps
    joints = torch.zeros(frames, len(JOINT_NAMES), 3, dtype=F64)
    index = {name: i for i, name in enumerate(JOINT_NAMES)}
    joints[:, index["left_shoulder"]] = torch.tensor([0.0, 0.3, 0.0], dtype=F64)
    joints[:, index["right_shoulder"]] = torch.tensor([-0.4, 0.3, 0.0], dtype=F64)
    joints[:, index["left_wrist"]] = torch.stack((length * torch.cos(omega * t), 0 * t, length * torch.sin(omega * t)), -1)
    pipeline = WristIMUPipeline(motion_fps=fps, target_hz=fps, gravity=0.0,
                                randomization=PlacementRandomization(offset_along_m=0.05))
    draws = batched_draws(pipeline, 1, frames)
    along = draws["placement_offset_along_m"].double().item()
    acc = pipeline(joints[None], draws)[0, 20:-20, :3].double()
    nominal = preset("left_wrist").mount.offset_m
    radius = math.hypot(length + nominal[0] + along, nominal[1])
    torch.testing.assert_close(acc.norm(dim=-1), torch.full((frames - 40,), omega**2 * radius, dtype=F64), atol=2e-4, rtol=0)
    assert abs(along) > 0.01  # the draw did move the sensor


def test_other_wrist_and_upside_down_equal_their_fixed_counterparts(walking_joints):
    pipeline = WristIMUPipeline(randomization=PlacementRandomization(other_wrist_probability=0.5, upside_down_probability=0.5))
    draws = batched_draws(pipeline, 3, 98, seed=4)
    out = pipeline(walking_joints, draws)
    left, right = WristIMUPipeline()(walking_joints), WristIMUPipeline(placement="right_wrist")(walking_joints)
    flip = torch.tensor([-1.0, -1.0, 1.0, -1.0, -1.0, 1.0])  # 180° about the screen axis z
    for clip in range(3):
        expected = right[clip] if draws["placement_other_wrist"][clip] else left[clip]
        if draws["placement_upside_down"][clip]:
            expected = expected * flip
        torch.testing.assert_close(out[clip], expected, atol=1e-5, rtol=0)
    assert draws["placement_other_wrist"].any() and not draws["placement_other_wrist"].all()


def test_random_rotation_turns_acc_and_gyro_together(walking_joints):
    pipeline = WristIMUPipeline(randomization=PlacementRandomization(random_rotation=True))
    draws = batched_draws(pipeline, 3, 98, seed=5)
    base = WristIMUPipeline()(walking_joints)
    torch.testing.assert_close(pipeline(walking_joints, draws), rotate_imu(base, draws["placement_rotation"]), atol=1e-5, rtol=0)


def test_global_yaw_turns_the_motion_and_leaves_body_frame_readings_unchanged(walking_joints):
    yaw = torch.tensor([0.7, -2.0, 3.0])
    turned = yaw_motion(walking_joints, yaw, "y")
    # Heights unchanged, horizontal positions turned by the yaw about y: x' = x cos + z sin, z' = −x sin + z cos.
    torch.testing.assert_close(turned[..., 1], walking_joints[..., 1], atol=1e-6, rtol=0)
    c, s = torch.cos(yaw)[:, None, None], torch.sin(yaw)[:, None, None]
    x, z = walking_joints[..., 0], walking_joints[..., 2]
    torch.testing.assert_close(turned[..., 0], x * c + z * s, atol=1e-6, rtol=0)
    pipeline = WristIMUPipeline(randomization=PlacementRandomization(global_yaw=True))
    draws = batched_draws(pipeline, 3, 98, seed=6)
    assert draws["placement_yaw_rad"].abs().min() > 0
    joints = walking_joints.double()  # float64: the check is about physics, not float32 rounding
    torch.testing.assert_close(pipeline(joints, draws), WristIMUPipeline()(joints), atol=1e-9, rtol=0)


def test_batched_equals_one_clip_at_a_time(walking_joints):
    pipeline = WristIMUPipeline(
        sensor=MEMSIMU(), randomization=PlacementRandomization(0.03, 0.5, 0.5, True, True)
    )
    draws = batched_draws(pipeline, 3, 98, seed=7)
    together = pipeline(walking_joints, draws)
    for clip in range(3):
        alone = pipeline(walking_joints[clip], {key: value[clip] for key, value in draws.items()})
        torch.testing.assert_close(alone, together[clip], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "kwargs,name",
    [({"offset_along_m": -0.01}, "offset_along_m"), ({"offset_along_m": math.nan}, "offset_along_m"),
     ({"other_wrist_probability": 1.5}, "other_wrist_probability"), ({"upside_down_probability": -0.1}, "upside_down_probability")],
)
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PlacementRandomization(**kwargs)
