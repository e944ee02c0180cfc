"""The simulator against closed-form motions, each with an explicit tolerance."""

import math

import pytest
import torch

from virtual_imu import STANDARD_GRAVITY, simulate
from virtual_imu import quaternion as Q

F64 = torch.float64


def times(n: int, fps: float) -> torch.Tensor:
    return torch.arange(n, dtype=F64) / fps


def random_unit_quaternions(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(n, 4, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return q / q.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("up_axis,up_index", [("y", 1), ("z", 2)])
def test_static_sensor_reads_gravity_rotated_into_sensor_frame(up_axis, up_index):
    n = 10
    orientations = random_unit_quaternions(6)[:, None, :].expand(6, n, 4)
    positions = torch.full((6, n, 3), 0.7, dtype=F64)
    acc, gyro = simulate(positions, orientations, fps=50.0, up_axis=up_axis)
    up = torch.zeros(3, dtype=F64)
    up[up_index] = 1.0
    expected = Q.to_matrix(orientations).transpose(-1, -2) @ (STANDARD_GRAVITY * up)
    torch.testing.assert_close(acc, expected, atol=1e-12, rtol=0)
    assert gyro.abs().max() < 1e-12


@pytest.mark.parametrize("up_axis,up_index", [("y", 1), ("z", 2)])
def test_aligned_sensor_at_rest_reads_plus_g_on_up_axis(up_axis, up_index):
    positions = torch.zeros(5, 3, dtype=F64)
    orientations = torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(5, 4)
    acc, _ = simulate(positions, orientations, fps=20.0, up_axis=up_axis)
    expected = torch.zeros(5, 3, dtype=F64)
    expected[:, up_index] = 9.80665
    torch.testing.assert_close(acc, expected, atol=1e-12, rtol=0)


def test_constant_rotation_about_tilted_axis_gives_exact_body_rate():
    fps, n = 30.0, 40
    body_rate = torch.tensor([0.4, -1.3, 2.2], dtype=F64)  # rad/s, |ω| ≈ 2.6
    start = random_unit_quaternions(1, seed=3)[0]
    q = Q.multiply(start, Q.from_rotation_vector(times(n, fps)[:, None] * body_rate))
    q[1::3] = -q[1::3]  # q and −q are the same orientation: the simulator must not care
    _, gyro = simulate(torch.zeros(n, 3, dtype=F64), q, fps)
    relative_error = (gyro - body_rate).norm(dim=-1) / body_rate.norm()
    assert relative_error.max() <= 1e-6


def test_horizontal_circle_with_yaw_locked_to_phase():
    # Sensor x points radially outward while it circles the vertical (y) axis at Ω: the closed form is
    # f = (−Ω²r, g, 0) in the sensor frame and ω = (0, Ω, 0). Central second differences of a
    # sampled sinusoid scale the acceleration by G = (sin(Ωh/2) / (Ωh/2))².
    fps, n, radius, rate, height = 50.0, 100, 1.5, 2.0, 1.1
    h = 1.0 / fps
    angle = rate * times(n, fps)
    radial = torch.stack((torch.cos(angle), torch.zeros_like(angle), -torch.sin(angle)), dim=-1)
    positions = radius * radial + torch.tensor([0.0, height, 0.0], dtype=F64)
    q = Q.from_axis_angle(torch.tensor([0.0, 1.0, 0.0], dtype=F64).expand(n, 3), angle)
    acc, gyro = simulate(positions, q, fps)

    gain = (math.sin(rate * h / 2) / (rate * h / 2)) ** 2
    centripetal = -(rate**2) * radius
    assert abs(acc[1:-1, 0] - centripetal * gain).max() < 1e-9
    assert abs(acc[:, 0] - centripetal).max() < 3e-3 * abs(centripetal)  # edges: one-sided, O(h²)
    assert abs(acc[:, 1] - STANDARD_GRAVITY).max() < 1e-9
    assert abs(acc[1:-1, 2]).max() < 1e-9
    assert abs(acc[[0, -1], 2]).max() < 3e-3 * abs(centripetal)  # one-sided edge error is tangential too
    torch.testing.assert_close(gyro, torch.tensor([0.0, rate, 0.0], dtype=F64).expand(n, 3), atol=1e-10, rtol=0)


def test_free_fall_reads_zero_specific_force_while_tumbling():
    fps, n = 100.0, 30
    t = times(n, fps)[:, None]
    velocity = torch.tensor([0.5, 2.0, -0.3], dtype=F64)
    gravity_world = torch.tensor([0.0, -STANDARD_GRAVITY, 0.0], dtype=F64)
    positions = torch.tensor([0.0, 10.0, 0.0], dtype=F64) + velocity * t + 0.5 * gravity_world * t**2
    tumbling = Q.from_rotation_vector(t * torch.tensor([3.0, 1.0, -2.0], dtype=F64))
    acc, _ = simulate(positions, tumbling, fps)
    assert acc.abs().max() < 1e-9  # quadratic motion: every stencil (edges too) is exact


def test_sinusoid_has_the_stated_finite_difference_gain():
    # x(t) = A sin(2πft): the central second difference gives −A(2πf)² sin(2πft) · G with
    # G = (sin(πf/fps) / (πf/fps))²; for f = 2 Hz at 100 fps, G = 0.998685.
    fps, n, amplitude, freq = 100.0, 200, 0.05, 2.0
    omega = 2 * math.pi * freq
    t = times(n, fps)
    positions = torch.zeros(n, 3, dtype=F64)
    positions[:, 0] = amplitude * torch.sin(omega * t)
    q = torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4)
    acc, _ = simulate(positions, q, fps, gravity=0.0)
    gain = (math.sin(math.pi * freq / fps) / (math.pi * freq / fps)) ** 2
    assert gain == pytest.approx(0.998685, abs=1e-6)
    expected = -amplitude * omega**2 * torch.sin(omega * t) * gain
    assert abs(acc[1:-1, 0] - expected[1:-1]).max() < 1e-9
    # Edges: one-sided four-point stencil, error (11/12)·h²·|x''''| ≈ 2.4e-3·A·ω⁴/ω² relative.
    assert abs(acc[[0, -1], 0] - expected[[0, -1]] / gain).max() < 0.01 * amplitude * omega**2


def test_three_samples_are_enough():
    positions = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [4.0, 0, 0]], dtype=F64)  # a = 2 m/s² at fps 1
    q = torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(3, 4)
    acc, gyro = simulate(positions, q, fps=1.0, gravity=0.0)
    torch.testing.assert_close(acc[:, 0], torch.full((3,), 2.0, dtype=F64))
    assert gyro.shape == (3, 3)


def test_batched_equals_looped_and_float32_matches_float64():
    n = 25
    t = times(n, 20.0)
    positions = torch.stack([torch.stack((torch.sin(k * t), t**2, torch.cos(t)), -1) for k in range(1, 7)]).view(2, 3, n, 3)
    q = Q.from_rotation_vector(torch.stack([t * k for k in range(1, 7)])[..., None] * torch.tensor([0.2, 0.5, -0.1], dtype=F64))
    q = q.view(2, 3, n, 4)
    acc, gyro = simulate(positions, q, 20.0)
    for i in range(2):
        for j in range(3):
            a, g = simulate(positions[i, j], q[i, j], 20.0)
            torch.testing.assert_close(acc[i, j], a, atol=1e-12, rtol=0)
            torch.testing.assert_close(gyro[i, j], g, atol=1e-12, rtol=0)
    acc32, gyro32 = simulate(positions.float(), q.float(), 20.0)
    assert acc32.dtype == gyro32.dtype == torch.float32
    torch.testing.assert_close(acc32.double(), acc, atol=2e-3, rtol=1e-4)
    torch.testing.assert_close(gyro32.double(), gyro, atol=2e-4, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    n = 50
    t = times(n, 20.0)
    positions = torch.stack((torch.sin(t), t, t**2), -1)
    q = Q.from_rotation_vector(t[:, None] * torch.tensor([0.3, 0.1, 2.0], dtype=F64))
    acc, gyro = simulate(positions, q, 20.0)
    acc_gpu, gyro_gpu = simulate(positions.cuda(), q.cuda(), 20.0)
    torch.testing.assert_close(acc_gpu.cpu(), acc, atol=1e-10, rtol=0)
    torch.testing.assert_close(gyro_gpu.cpu(), gyro, atol=1e-10, rtol=0)


@pytest.mark.parametrize("lowpass_hz", [None, 4.0])
def test_gradcheck_positions_and_orientations(lowpass_hz):
    n = 8
    g = torch.Generator().manual_seed(1)
    positions = torch.randn(2, n, 3, dtype=F64, generator=g, requires_grad=True)
    rotvec = torch.cumsum(0.3 * torch.randn(2, n, 3, dtype=F64, generator=g), dim=1)
    orientations = Q.from_rotation_vector(rotvec).detach().requires_grad_(True)

    def run(p, q):
        return simulate(p, q, fps=20.0, lowpass_hz=lowpass_hz)

    assert torch.autograd.gradcheck(run, (positions, orientations), eps=1e-6, atol=1e-5)


def test_gradient_is_finite_for_a_motionless_sensor():
    positions = torch.zeros(6, 3, dtype=F64, requires_grad=True)
    orientations = torch.tensor([1.0, 0, 0, 0], dtype=F64).repeat(6, 1).requires_grad_(True)
    acc, gyro = simulate(positions, orientations, 20.0)
    (acc.sum() + gyro.sum()).backward()
    assert torch.isfinite(positions.grad).all() and torch.isfinite(orientations.grad).all()


def test_lowpass_keeps_constant_velocity_and_removes_jitter():
    fps, n = 50.0, 150
    t = times(n, fps)[:, None]
    positions = torch.tensor([0.1, 1.0, 0.2], dtype=F64) + torch.tensor([1.2, 0.0, -0.4], dtype=F64) * t
    q = torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4)
    acc, _ = simulate(positions, q, fps, lowpass_hz=5.0)
    assert (acc - torch.tensor([0.0, STANDARD_GRAVITY, 0.0], dtype=F64)).abs().max() < 1e-9

    slow = 0.1 * torch.sin(2 * math.pi * 0.5 * t)  # 0.5 Hz passes
    jitter = 0.001 * torch.sin(2 * math.pi * 15.0 * t)  # 15 Hz is removed by a 5 Hz cutoff
    acc_slow, _ = simulate(slow.expand(n, 3).contiguous(), q, fps, gravity=0.0, lowpass_hz=5.0)
    acc_both, _ = simulate((slow + jitter).expand(n, 3).contiguous(), q, fps, gravity=0.0, lowpass_hz=5.0)
    raw_jitter_acc = 0.001 * (2 * math.pi * 15.0) ** 2  # 8.9 m/s² unfiltered
    assert (acc_both - acc_slow)[20:-20].abs().max() < 0.01 * raw_jitter_acc
    expected_slow = -0.1 * (2 * math.pi * 0.5) ** 2 * torch.sin(2 * math.pi * 0.5 * t)
    assert (acc_slow[20:-20, 0:1] - expected_slow[20:-20]).abs().max() < 0.01 * 0.1 * (2 * math.pi * 0.5) ** 2


def _valid():
    return torch.zeros(5, 3), torch.tensor([1.0, 0, 0, 0]).repeat(5, 1)


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda p, q: (p[..., :2], q), "positions must have shape"),
        (lambda p, q: (p, q[..., :3]), "orientations must have shape"),
        (lambda p, q: (p[:2], q[:2]), "at least T = 3"),
        (lambda p, q: (p.index_fill(0, torch.tensor([2]), float("nan")), q), "positions contains non-finite"),
        (lambda p, q: (p, q.index_fill(0, torch.tensor([1]), float("inf"))), "orientations contains non-finite"),
        (lambda p, q: (p, q * 1.1), "unit quaternions"),
        (lambda p, q: (p, q * 0.0), "unit quaternions"),
        (lambda p, q: (p[:4], q), "share leading dims"),
        (lambda p, q: (p.long(), q), "floating-point"),
        (lambda p, q: (p.double(), q), "differ in dtype"),
    ],
)
def test_bad_inputs_name_the_argument(change, match):
    p, q = change(*_valid())
    with pytest.raises(ValueError, match=match):
        simulate(p, q, 20.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fps": 0.0}, "fps"),
        ({"fps": -5.0}, "fps"),
        ({"up_axis": "x"}, "up_axis"),
        ({"lowpass_hz": 15.0}, "lowpass_hz"),
        ({"lowpass_hz": -1.0}, "lowpass_hz"),
        ({"gravity": -9.8}, "gravity"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    p, q = _valid()
    with pytest.raises(ValueError, match=match):
        simulate(p, q, **{"fps": 20.0, **kwargs})
