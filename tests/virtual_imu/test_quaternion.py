import math

import torch

from virtual_imu import quaternion as Q

F64 = torch.float64


def random_quaternions(n, seed=0):
    q = torch.randn(n, 4, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return q / q.norm(dim=-1, keepdim=True)


def test_rotate_matches_matrix_and_quarter_turn_about_z():
    q = random_quaternions(50)
    v = torch.randn(50, 3, dtype=F64)
    torch.testing.assert_close(Q.rotate(q, v), (Q.to_matrix(q) @ v[..., None])[..., 0], atol=1e-12, rtol=0)
    quarter_z = Q.from_axis_angle(torch.tensor([0.0, 0, 1], dtype=F64), torch.tensor(math.pi / 2, dtype=F64))
    torch.testing.assert_close(Q.rotate(quarter_z, torch.tensor([1.0, 0, 0], dtype=F64)), torch.tensor([0.0, 1, 0], dtype=F64))
    torch.testing.assert_close(Q.rotate_inverse(q, Q.rotate(q, v)), v, atol=1e-12, rtol=0)


def test_multiply_composes_rotations():
    p, q = random_quaternions(20, 1), random_quaternions(20, 2)
    torch.testing.assert_close(Q.to_matrix(Q.multiply(p, q)), Q.to_matrix(p) @ Q.to_matrix(q), atol=1e-12, rtol=0)


def test_from_matrix_round_trip_including_half_turns():
    q = random_quaternions(200, 3)
    half_turns = torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0.6, 0.8, 0]], dtype=F64)
    q = torch.cat((q, half_turns))
    recovered = Q.from_matrix(Q.to_matrix(q))
    same = torch.minimum((recovered - q).abs().amax(-1), (recovered + q).abs().amax(-1))
    assert same.max() < 1e-12
    assert (recovered[:, 0] >= 0).all()


def test_exp_log_round_trip_and_small_angles():
    rotvec = torch.randn(100, 3, dtype=F64) * 1.0
    rotvec = rotvec * (torch.rand(100, 1, dtype=F64) * 3.0 / rotvec.norm(dim=-1, keepdim=True))  # angles < 3 rad
    torch.testing.assert_close(Q.to_rotation_vector(Q.from_rotation_vector(rotvec)), rotvec, atol=1e-12, rtol=0)
    tiny = torch.tensor([[1e-9, -2e-9, 3e-10]], dtype=F64)
    torch.testing.assert_close(Q.to_rotation_vector(Q.from_rotation_vector(tiny)), tiny, atol=1e-20, rtol=1e-9)
    # the log map picks the short way: −q gives the same rotation vector
    q = Q.from_rotation_vector(rotvec)
    torch.testing.assert_close(Q.to_rotation_vector(-q), rotvec, atol=1e-12, rtol=0)
