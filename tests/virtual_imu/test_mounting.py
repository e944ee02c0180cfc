import math

import numpy as np
import pytest
import torch

from motion.procedural import generate_clip
from virtual_imu import quaternion
from virtual_imu.mounting import MountJitter, estimate_mount_rotation, rotate_imu
from virtual_imu.pipeline import WristIMUPipeline

SQRT_HALF = math.sqrt(0.5)
Z_90 = torch.tensor([SQRT_HALF, 0.0, 0.0, SQRT_HALF], dtype=torch.float64)
Y_180 = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)


def axis_angle(axis, degrees: float, dtype=torch.float64) -> torch.Tensor:
    axis = torch.tensor(axis, dtype=dtype)
    return quaternion.from_axis_angle(axis / axis.norm(), torch.tensor(math.radians(degrees), dtype=dtype))


def angle_between_deg(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Rotation angle of p⁻¹q (degrees), by atan2: well conditioned near 0 (acos of the dot product is not)."""
    relative = quaternion.multiply(quaternion.conjugate(p.double()), q.double())
    return torch.rad2deg(2 * torch.atan2(relative[..., 1:].norm(dim=-1), relative[..., 0].abs()))


# ---------------------------------------------------------------- rotate_imu


def test_rotate_imu_90_degrees_about_z_by_hand():
    # The new sensor's x axis is the old y axis: a force along old x reads −y, along old y reads +x.
    imu = torch.tensor(
        [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 9.8, 3.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    expected = torch.tensor(
        [[0.0, -1.0, 0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 9.8, 0.0, -3.0, 0.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(rotate_imu(imu, Z_90), expected, rtol=0, atol=1e-12)


def test_rotate_imu_180_degrees_about_y_flips_x_and_z():
    imu = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype=torch.float64)
    expected = torch.tensor([[-1.0, 2.0, -3.0, -4.0, 5.0, -6.0]], dtype=torch.float64)
    torch.testing.assert_close(rotate_imu(imu, Y_180), expected, rtol=0, atol=1e-12)


def test_rotate_imu_is_the_transposed_rotation_matrix_per_clip():
    generator = torch.Generator().manual_seed(0)
    imu = torch.randn(3, 50, 6, generator=generator, dtype=torch.float64)
    rotations = MountJitter(roll_deg=180, tilt_deg=180).draw((3,), generator).double()
    rotations = rotations / rotations.norm(dim=-1, keepdim=True)
    out = rotate_imu(imu, rotations)
    matrices = quaternion.to_matrix(rotations)  # [3, 3, 3], columns: the new axes in old coordinates
    for clip in range(3):
        # f' = Rᵀ f, i.e. row vectors times R.
        torch.testing.assert_close(out[clip, :, :3], imu[clip, :, :3] @ matrices[clip], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[clip, :, 3:], imu[clip, :, 3:] @ matrices[clip], rtol=0, atol=1e-12)
    # Two mountings in a row compose as a ⊗ b.
    a, b = axis_angle((1.0, 2.0, 3.0), 40.0), axis_angle((0.0, -1.0, 1.0), 75.0)
    torch.testing.assert_close(rotate_imu(rotate_imu(imu, a), b), rotate_imu(imu, quaternion.multiply(a, b)),
                               rtol=0, atol=1e-12)


def test_rotate_imu_follows_the_imu_dtype():
    out = rotate_imu(torch.ones(4, 6), Z_90)
    assert out.dtype == torch.float32 and out.shape == (4, 6)


@pytest.mark.parametrize(
    ("imu_shape", "rotation_shape", "message"),
    [((10, 5), (4,), r"imu must be \[..., T, 6\], got \(10, 5\)"),
     ((10, 6), (3,), r"rotation must be \[..., 4\] quaternions, got \(3,\)")],
)
def test_rotate_imu_rejects_bad_shapes(imu_shape, rotation_shape, message):
    with pytest.raises(ValueError, match=message):
        rotate_imu(torch.zeros(imu_shape), torch.zeros(rotation_shape))


# ---------------------------------------------------------------- MountJitter


def roll_and_tilt_deg(q: torch.Tensor, axis) -> tuple[torch.Tensor, torch.Tensor]:
    """Swing–twist split q = swing ⊗ twist about unit `axis`: the twist angle (roll, signed) and the angle
    the axis itself is turned by (tilt)."""
    q = q.double()
    q = torch.where(q[..., :1] < 0, -q, q)
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    roll = 2 * torch.atan2((q[..., 1:] * axis).sum(-1), q[..., 0])
    roll = torch.remainder(roll + math.pi, 2 * math.pi) - math.pi
    turned = quaternion.rotate(q, axis.expand(*q.shape[:-1], 3))
    tilt = torch.acos((turned * axis).sum(-1).clamp(-1.0, 1.0))
    return torch.rad2deg(roll), torch.rad2deg(tilt)


@pytest.mark.parametrize(
    ("roll_deg", "tilt_deg", "roll_axis"),
    [
        (30.0, 15.0, (1.0, 0.0, 0.0)),
        (180.0, 5.0, (0.0, 0.0, 1.0)),
        (10.0, 90.0, (1.0, 1.0, 0.0)),
        (0.0, 20.0, (0.0, 1.0, 0.0)),
    ],
)
def test_jitter_draws_unit_quaternions_within_the_roll_and_tilt_limits(roll_deg, tilt_deg, roll_axis):
    draws = MountJitter(roll_deg=roll_deg, tilt_deg=tilt_deg, roll_axis=roll_axis).draw(
        (40, 50), torch.Generator().manual_seed(1)
    )
    assert draws.shape == (40, 50, 4) and draws.dtype == torch.float32
    torch.testing.assert_close(draws.norm(dim=-1), torch.ones(40, 50), rtol=0, atol=1e-6)
    roll, tilt = roll_and_tilt_deg(draws, roll_axis)
    tol = 1e-3  # degrees: float32 quaternions
    assert roll.abs().max() <= roll_deg + tol and tilt.max() <= tilt_deg + tol and tilt.min() >= 0
    # Uniform draws: 2000 of them reach within 5 % of each limit.
    assert roll.max() >= 0.95 * roll_deg and roll.min() <= -0.95 * roll_deg and tilt.max() >= 0.95 * tilt_deg


def test_zero_jitter_is_the_identity():
    draws = MountJitter().draw((5,), torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 5), rtol=0, atol=0)


def test_jitter_is_reproducible_from_the_generator_seed():
    jitter = MountJitter(roll_deg=45.0, tilt_deg=10.0)
    first = jitter.draw((8,), torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, jitter.draw((8,), torch.Generator().manual_seed(3)), rtol=0, atol=0)
    assert not torch.equal(first, jitter.draw((8,), torch.Generator().manual_seed(4)))
    assert jitter.draw((), torch.Generator().manual_seed(3)).shape == (4,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"roll_deg": -1.0}, r"roll_deg must lie in \[0, 180\], got -1.0"),
        ({"roll_deg": 181.0}, r"roll_deg must lie in \[0, 180\]"),
        ({"roll_deg": math.nan}, r"roll_deg must lie in \[0, 180\]"),
        ({"tilt_deg": 200.0}, r"tilt_deg must lie in \[0, 180\], got 200.0"),
        ({"roll_axis": (0.0, 0.0, 0.0)}, "roll_axis must be a non-zero 3-vector"),
        ({"roll_axis": (1.0, 0.0)}, "roll_axis must be a non-zero 3-vector"),
        ({"roll_axis": (math.nan, 0.0, 1.0)}, "roll_axis must be a non-zero 3-vector"),
        ({"roll_axis": (math.inf, 0.0, 1.0)}, "roll_axis must be a non-zero 3-vector"),
    ],
)
def test_jitter_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MountJitter(**kwargs)


# ---------------------------------------------------------------- estimate_mount_rotation


def paired_accelerations(rotation: torch.Tensor, noise_m_s2: float, samples: int = 400):
    """Virtual specific force (gravity in many sensor orientations plus motion) and the real sensor's
    reading of it through `rotation`, with white noise."""
    generator = torch.Generator().manual_seed(7)
    directions = torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    virtual = 9.81 * directions / directions.norm(dim=-1, keepdim=True)
    virtual = virtual + torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    imu = torch.cat((virtual, torch.zeros_like(virtual)), dim=-1)
    noise = noise_m_s2 * torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    real = rotate_imu(imu, rotation)[:, :3] + noise
    return virtual, real


@pytest.mark.parametrize(
    "rotation", [axis_angle((1.0, 2.0, -0.5), 70.0), Y_180, Z_90, axis_angle((0.0, 1.0, 0.0), 0.0)]
)
def test_estimate_recovers_a_known_mounting(rotation):
    virtual, real = paired_accelerations(rotation, noise_m_s2=0.0)
    exact = estimate_mount_rotation(virtual, real)
    assert exact.shape == (4,) and exact.dtype == torch.float32 and exact[0] >= 0
    assert angle_between_deg(exact, rotation) < 1e-3  # float32 output
    # 0.5 m/s² noise on 400 pairs of ~10 m/s²: about 0.05 / √400 rad = 0.14° per axis; bound 0.75°
    # (measured 0.09–0.31°).
    noisy = estimate_mount_rotation(*paired_accelerations(rotation, noise_m_s2=0.5))
    assert angle_between_deg(noisy, rotation) < 0.75
    # The estimate maps the virtual readings onto the real ones: rotate_imu(virtual, r) ≈ real.
    fitted = rotate_imu(torch.cat((virtual, virtual), dim=-1), exact.double())[:, :3]
    torch.testing.assert_close(fitted, real, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("virtual", "real", "message"),
    [
        (torch.zeros(10, 3), torch.zeros(9, 3), "must both be \\[N, 3\\], got \\(10, 3\\), \\(9, 3\\)"),
        (torch.zeros(10, 2), torch.zeros(10, 2), "must both be \\[N, 3\\]"),
        (torch.zeros(2, 10, 3), torch.zeros(2, 10, 3), "must both be \\[N, 3\\]"),
        (torch.ones(2, 3), torch.ones(2, 3), "need ≥ 3 paired samples, got 2"),
        (torch.full((5, 3), math.nan), torch.ones(5, 3), "virtual_acc and real_acc must be finite"),
        (torch.ones(5, 3), torch.tensor([[1.0, 1.0, math.inf]] * 5), "must be finite"),
    ],
)
def test_estimate_rejects_bad_input(virtual, real, message):
    with pytest.raises(ValueError, match=message):
        estimate_mount_rotation(virtual, real)


# ---------------------------------------------------------------- WristIMUPipeline mounting


@pytest.fixture(scope="module")
def walking_joints() -> torch.Tensor:
    """`[2, 40, 22, 3]` two 2 s walking clips at 20 fps (m)."""
    clips = [generate_clip("walking", np.random.default_rng(seed), duration_s=2.0) for seed in (0, 1)]
    return torch.from_numpy(np.stack([clip.joints for clip in clips]))


MOUNT_TOL = 1e-5
"""m/s², rad/s: rotating before or after the (linear) resampling differs only by float32 rounding."""


def test_pipeline_mount_rotation_equals_rotating_its_output(walking_joints):
    base = WristIMUPipeline()(walking_joints)
    mount = axis_angle((0.3, -1.0, 0.4), 65.0)
    rotated = WristIMUPipeline(mount_rotation=tuple(mount.tolist()))(walking_joints)
    torch.testing.assert_close(rotated, rotate_imu(base, mount), rtol=0, atol=MOUNT_TOL)
    flipped = WristIMUPipeline(mount_rotation=(0.0, 0.0, 1.0, 0.0))(walking_joints)
    torch.testing.assert_close(flipped, base * torch.tensor([-1.0, 1.0, -1.0, -1.0, 1.0, -1.0]), rtol=0, atol=MOUNT_TOL)


def test_pipeline_jitter_rotates_each_clip_after_the_fixed_mounting(walking_joints):
    base = WristIMUPipeline()(walking_joints)
    mount = axis_angle((0.0, 1.0, 0.0), 180.0)
    jitter_model = MountJitter(roll_deg=30.0, tilt_deg=15.0)
    jitter = jitter_model.draw((2,), torch.Generator().manual_seed(0))
    pipeline = WristIMUPipeline(mount_rotation=tuple(mount.tolist()), mount_jitter=jitter_model)
    ideal_sensor = {key: value.expand(2, *value.shape) for key, value in pipeline.sensor.draw(98).items()}
    out = pipeline(walking_joints, {**ideal_sensor, "mount_jitter": jitter})
    expected = rotate_imu(rotate_imu(base, mount), jitter)
    torch.testing.assert_close(out, expected, rtol=0, atol=MOUNT_TOL)
    assert not torch.allclose(out[0], rotate_imu(rotate_imu(base[0], mount), jitter[1]), atol=1e-2)


@pytest.mark.parametrize(
    "mount_rotation", [(1.0, 0.0, 0.0), (2.0, 0.0, 0.0, 0.0), (0.9, 0.0, 0.0, 0.0), (math.nan, 0.0, 0.0, 1.0)]
)
def test_pipeline_rejects_a_mount_rotation_that_is_not_a_unit_quaternion(mount_rotation):
    with pytest.raises(ValueError, match="mount_rotation must be a unit quaternion"):
        WristIMUPipeline(mount_rotation=mount_rotation)


def test_pipeline_draw_keys_and_reproducibility():
    plain = WristIMUPipeline().draw(30, torch.Generator().manual_seed(5))
    assert all(key.startswith("sensor_") for key in plain)
    assert plain["sensor_white"].shape == (30, 6)
    jittered = WristIMUPipeline(mount_jitter=MountJitter(roll_deg=20.0)).draw(30, torch.Generator().manual_seed(5))
    assert set(jittered) == {*plain, "mount_jitter"} and jittered["mount_jitter"].shape == (4,)
    # The jitter is drawn after the sensor errors: adding it leaves the sensor stream unchanged.
    for key in plain:
        torch.testing.assert_close(jittered[key], plain[key], rtol=0, atol=0)
    again = WristIMUPipeline(mount_jitter=MountJitter(roll_deg=20.0)).draw(30, torch.Generator().manual_seed(5))
    torch.testing.assert_close(again["mount_jitter"], jittered["mount_jitter"], rtol=0, atol=0)
