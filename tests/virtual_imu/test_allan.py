import math

import pytest
import torch

from virtual_imu.allan import allan_deviation, default_cluster_sizes

F64 = torch.float64


def test_hand_computed_example():
    # y = 1, 2, 4, 8. m = 1: adjacent differences 1, 2, 4 → σ² = (1 + 4 + 16) / 3 / 2 = 3.5.
    # m = 2: the two-sample averages 1.5, 3, 6; the one pair two apart differs by 4.5 → σ² = 4.5² / 2 = 10.125.
    taus, adev = allan_deviation(torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=F64), fs_hz=2.0, cluster_sizes=[1, 2])
    torch.testing.assert_close(taus, torch.tensor([0.5, 1.0], dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(adev, torch.tensor([math.sqrt(3.5), math.sqrt(10.125)], dtype=F64), rtol=1e-14, atol=0)


def test_linear_drift_and_constant_by_closed_form():
    # y = R·t: adjacent τ-averages differ by R·τ, so σ(τ) = R·τ/√2 at every τ; a constant has σ = 0.
    fs, length = 10.0, 400
    t = torch.arange(length, dtype=F64) / fs
    signal = torch.stack((0.3 * t, -2.0 * t, torch.full_like(t, 5.0)), dim=1)
    taus, adev = allan_deviation(signal, fs, cluster_sizes=[1, 3, 10, 50, 200])
    assert adev.shape == (5, 3)
    expected = torch.stack((0.3 * taus, 2.0 * taus, torch.zeros_like(taus)), dim=1) / math.sqrt(2)
    torch.testing.assert_close(adev, expected, rtol=1e-9, atol=1e-12)


def test_one_channel_gives_one_deviation_per_tau():
    signal = torch.randn(100, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    taus, adev = allan_deviation(signal, 50.0)
    _, adev_2d = allan_deviation(signal[:, None], 50.0)
    assert adev.shape == taus.shape and adev.dtype == F64
    torch.testing.assert_close(adev, adev_2d[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("length", [2, 25, 1000, 12345])
def test_default_cluster_sizes_are_log_spaced_up_to_a_tenth(length):
    sizes = default_cluster_sizes(length)
    assert sizes[0] == 1 and sizes[-1] == max(1, length // 10)
    assert all(a < b for a, b in zip(sizes, sizes[1:]))
    assert all(b / a <= 2 for a, b in zip(sizes, sizes[1:]))  # no gap wider than an octave
    # ten per decade: from 10 on (where rounding no longer merges sizes) consecutive ratios ≤ 10^0.1 ≈ 1.26
    assert all(b / a <= 1.3 for a, b in zip(sizes, sizes[1:]) if a >= 10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"signal": [1.0, 2.0, 3.0]}, "signal"),
        ({"signal": torch.arange(10)}, "signal"),  # integer dtype
        ({"signal": torch.zeros(10, 2, 2)}, "signal"),
        ({"signal": torch.zeros(1)}, "signal"),
        ({"signal": torch.tensor([0.0, float("nan"), 1.0])}, "signal"),
        ({"fs_hz": 0.0}, "fs_hz"),
        ({"fs_hz": -5.0}, "fs_hz"),
        ({"cluster_sizes": []}, "cluster_sizes"),
        ({"cluster_sizes": [0]}, "cluster_sizes"),
        ({"cluster_sizes": [6]}, "cluster_sizes"),  # T = 10: at most 5
        ({"cluster_sizes": [2.0]}, "cluster_sizes"),
        ({"cluster_sizes": [True]}, "cluster_sizes"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    arguments = {"signal": torch.zeros(10), "fs_hz": 10.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        allan_deviation(**arguments)
