"""A clip's own sensor trajectory in `WristIMUPipeline`, checked against `simulate` on that trajectory."""

from __future__ import annotations

import pytest
import torch

from virtual_imu import quaternion as Q
from virtual_imu import simulate
from virtual_imu.filters import resample
from virtual_imu.mems import MEMSIMU
from virtual_imu.mounting import MountJitter
from virtual_imu.pipeline import WristIMUPipeline
from virtual_imu.randomization import UPSIDE_DOWN, PlacementRandomization

pytestmark = pytest.mark.usefixtures("one_thread")

FPS, TARGET_HZ, FRAMES, CLIPS = 20.0, 50.0, 40, 2
TOLERANCE = 1e-5  # float32 pipeline against float32 simulate: the same arithmetic


def trajectory(dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions `[2, T, 3]` and orientations `[2, T, 4]`: sensors turning about tilted axes while moving."""
    time = torch.arange(FRAMES, dtype=torch.float64) / FPS
    axes = torch.tensor([[0.0, 0.6, 0.8], [1.0, 0.0, 0.0]], dtype=torch.float64)
    rates = torch.tensor([2.0, -1.3], dtype=torch.float64)  # rad/s
    orientations = Q.from_axis_angle(axes[:, None].expand(CLIPS, FRAMES, 3), rates[:, None] * time)
    radius = torch.tensor([0.1, 0.05, -0.2], dtype=torch.float64)
    positions = torch.stack((0.6 * time, 1.0 + 0.1 * torch.sin(3 * time), 0.2 * time**2), dim=-1) + Q.rotate(orientations, radius.expand(CLIPS, FRAMES, 3))
    return positions.to(dtype), orientations.to(dtype)


def batch(pipeline: WristIMUPipeline, seed: int = 0, **extra) -> dict[str, torch.Tensor]:
    """Collated draws of two clips with their trajectories, and joints that have nothing to do with them."""
    generator = torch.Generator().manual_seed(seed)
    draws = [pipeline.draw(pipeline.output_length(FRAMES), generator) for _ in range(CLIPS)]
    positions, orientations = trajectory()
    return {
        "joints": torch.randn(CLIPS, FRAMES, 22, 3, generator=generator),
        **{key: torch.stack([draw[key] for draw in draws]) for key in draws[0]},
        "trajectory_positions": positions,
        "trajectory_orientations": orientations,
        **extra,
    }


def expected_imu(new_to_trajectory: torch.Tensor | None = None, dtype=torch.float32) -> torch.Tensor:
    """`simulate` on the trajectory (its sensor turned by `new_to_trajectory` `[2, 4]`), resampled like the pipeline."""
    positions, orientations = (part.to(dtype) for part in trajectory())  # as the pipeline casts it
    if new_to_trajectory is not None:
        orientations = Q.multiply(orientations, new_to_trajectory.to(dtype)[:, None].expand_as(orientations))
    acc, gyro = simulate(positions, orientations, FPS)
    return resample(torch.cat((acc, gyro), dim=-1), FPS, TARGET_HZ)


def test_a_given_trajectory_replaces_the_preset():
    pipeline = WristIMUPipeline(motion_fps=FPS, target_hz=TARGET_HZ)
    given = batch(pipeline)
    imu = pipeline(given["joints"], given)
    assert imu.shape == (CLIPS, pipeline.output_length(FRAMES), 6) == (CLIPS, 98, 6)
    assert (imu - expected_imu()).abs().max() < TOLERANCE  # measured 0.0
    other_joints = pipeline(torch.zeros_like(given["joints"]), given)
    assert torch.equal(other_joints, imu)  # the joints play no part
    preset = pipeline(given["joints"])
    assert (preset - imu).abs().max() > 1.0


def test_a_float32_trajectory_takes_the_joints_dtype():
    pipeline = WristIMUPipeline(motion_fps=FPS, target_hz=TARGET_HZ)
    given = batch(pipeline)
    imu = pipeline(given["joints"].double(), given)
    assert imu.dtype == torch.float64
    assert (imu - expected_imu(dtype=torch.float64)).abs().max() < 1e-12  # measured 0.0


def test_mounting_upside_down_random_rotation_and_yaw_still_apply():
    mount = Q.from_axis_angle(torch.tensor([0.0, 0.0, 1.0]), torch.tensor(0.4))
    randomization = PlacementRandomization(upside_down_probability=1.0, global_yaw=True, random_rotation=True)
    pipeline = WristIMUPipeline(
        motion_fps=FPS, target_hz=TARGET_HZ, mount_rotation=tuple(mount.tolist()),
        mount_jitter=MountJitter(roll_deg=40.0, tilt_deg=10.0), randomization=randomization,
    )
    given = batch(pipeline, seed=3)
    assert given["placement_yaw_rad"].abs().min() > 0.1
    imu = pipeline(given["joints"].double(), given)  # float64: float32 rounding of the turned positions / dt² ≈ 4e-4 m/s²
    # new-sensor-to-trajectory-sensor = mount ⊗ jitter ⊗ upside down ⊗ random (virtual_imu.randomization)
    parts = (mount.expand(CLIPS, 4), given["mount_jitter"], torch.tensor(UPSIDE_DOWN).expand(CLIPS, 4), given["placement_rotation"])
    composed = parts[0]
    for part in parts[1:]:
        composed = Q.multiply(composed, part)
    # Global yaw turns the trajectory as the joints; it leaves body-frame readings unchanged.
    # measured 1.0e-6 m/s²: the float32 draws are unit to ~1e-7 (|q|² scales rotate_imu's output; simulate renormalises)
    assert (imu - expected_imu(composed, torch.float64)).abs().max() < 1e-5


@pytest.mark.parametrize(
    "randomization, extra, message",
    [
        (PlacementRandomization(offset_along_m=0.02), {}, r"turn off randomization\.offset_along_m > 0$"),
        (PlacementRandomization(other_wrist_probability=0.5), {}, r"turn off randomization\.other_wrist_probability > 0$"),
        (None, {"body_girth_scale": torch.ones(CLIPS)}, "turn off a body_girth_scale draw$"),
        (PlacementRandomization(offset_along_m=0.01, other_wrist_probability=1.0), {"body_girth_scale": torch.ones(CLIPS)},
         r"offset_along_m > 0, randomization\.other_wrist_probability > 0, a body_girth_scale draw$"),
    ],
)
def test_preset_variations_cannot_move_a_given_trajectory(randomization, extra, message):
    pipeline = WristIMUPipeline(motion_fps=FPS, target_hz=TARGET_HZ, randomization=randomization)
    given = batch(pipeline, **extra)
    with pytest.raises(ValueError, match=r"cannot move a given sensor trajectory \(trajectory_positions, trajectory_orientations\).*" + message):
        pipeline(given["joints"], given)


def test_bad_trajectories_are_named():
    pipeline = WristIMUPipeline(motion_fps=FPS, target_hz=TARGET_HZ, sensor=MEMSIMU())
    given = batch(pipeline)
    half = {key: value for key, value in given.items() if key != "trajectory_orientations"}
    with pytest.raises(ValueError, match=r"needs both \('trajectory_positions', 'trajectory_orientations'\); missing \['trajectory_orientations'\]"):
        pipeline(given["joints"], half)
    for key, bad in (("trajectory_positions", given["trajectory_positions"][:, :-1]), ("trajectory_orientations", given["trajectory_orientations"][..., :3])):
        with pytest.raises(ValueError, match=r"must have shapes \[\.\.\., T, 3\] and \[\.\.\., T, 4\] with the joints' \[\.\.\., T\] = \[2, 40\]"):
            pipeline(given["joints"], {**given, key: bad})


def test_yaw_of_a_trajectory_matches_yawing_its_joints_preset():
    """The turn a trajectory gets is the joints' turn: positions about the up axis, axes with them."""
    randomization = PlacementRandomization(global_yaw=True)
    pipeline = WristIMUPipeline(motion_fps=FPS, target_hz=TARGET_HZ, randomization=randomization)
    given = batch(pipeline, seed=5)
    positions, orientations = pipeline._place(given["joints"], given)
    yaw = given["placement_yaw_rad"].double()
    turn = Q.from_axis_angle(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand(CLIPS, 3), yaw)[:, None].expand(CLIPS, FRAMES, 4)
    raw_positions, raw_orientations = trajectory(torch.float64)
    torch.testing.assert_close(positions.double(), Q.rotate(turn, raw_positions), atol=1e-6, rtol=0)  # measured 2.1e-7 (float32)
    difference = Q.multiply(Q.conjugate(orientations.double()), Q.multiply(turn, raw_orientations))
    assert difference[..., 1:].norm(dim=-1).max() < 1e-6  # sin(angle / 2) between them; measured 1.0e-7
