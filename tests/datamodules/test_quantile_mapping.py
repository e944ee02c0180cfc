import math

import pytest
import torch

from datamodules.quantile_mapping import QuantileMap


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def exponential(samples: int, seed: int) -> torch.Tensor:
    return -torch.log(torch.rand(samples, 1, generator=generator(seed), dtype=torch.float64))


def normal(samples: int, seed: int, mean: float = 5.0, std: float = 2.0) -> torch.Tensor:
    return mean + std * torch.randn(samples, 1, generator=generator(seed), dtype=torch.float64)


def max_cdf_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = a.flatten().sort().values, b.flatten().sort().values
    points = torch.cat((a, b))
    cdf_a = torch.searchsorted(a, points, right=True) / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True) / b.numel()
    return float((cdf_a - cdf_b).abs().max())


def test_hand_computed_three_quantile_map_with_linear_extrapolation():
    # 3 quantiles of [0, 1, 2] and [0, 10, 30]: slope 10 below 1, 20 above, continued outside [0, 2].
    source = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    target = torch.tensor([[0.0], [10.0], [30.0]], dtype=torch.float64)
    mapping = QuantileMap(source, target, num_quantiles=3)
    values = torch.tensor([[-1.0], [0.0], [0.5], [1.0], [1.5], [2.0], [3.0]], dtype=torch.float64)
    expected = torch.tensor([[-10.0], [0.0], [5.0], [10.0], [20.0], [30.0], [50.0]], dtype=torch.float64)
    torch.testing.assert_close(mapping(values), expected, rtol=0, atol=1e-6)


def test_an_affine_relation_is_recovered_inside_and_outside_the_fitted_range():
    source = torch.randn(2000, 3, generator=generator(1), dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.1])
    scale, offset = torch.tensor([2.0, 0.5, 40.0]), torch.tensor([9.8, -1.0, 0.0])
    mapping = QuantileMap(source, source * scale + offset)
    torch.testing.assert_close(mapping(source), source * scale + offset, rtol=0, atol=1e-5)
    # 5 standard deviations beyond the samples: the end segments' slopes are the same affine slope.
    far = torch.tensor([[-5.0, -15.0, -0.5], [5.0, 15.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(mapping(far), far * scale + offset, rtol=0, atol=1e-5)


def test_the_map_is_monotone():
    mapping = QuantileMap(exponential(5000, 2), normal(3000, 3))
    values = torch.linspace(-2.0, 12.0, 2001, dtype=torch.float64)[:, None]
    assert (mapping(values).diff(dim=0) > 0).all()


def test_mapped_source_matches_the_target_distribution():
    source, target = exponential(20000, 4), normal(20000, 5)
    mapping = QuantileMap(source, target)
    assert max_cdf_gap(source, target) > 0.8
    # In sample: exact at the 101 fitted quantiles, linear in between: gap ≤ 1/100 (measured 0.005).
    assert max_cdf_gap(mapping(source), target) < 0.011
    # Fresh draws of both distributions: plus the two-sample noise, ≈ 1.36·√(2/20000) = 0.014 at 95 %
    # (measured 0.016).
    assert max_cdf_gap(mapping(exponential(20000, 6)), normal(20000, 7)) < 0.025
    # At fitted levels the quantiles agree up to the kink at the knot between two order statistics
    # (measured 1.2e-4 for a spread of 2).
    levels = torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    torch.testing.assert_close(
        torch.quantile(mapping(source), levels, dim=0), torch.quantile(target, levels, dim=0), rtol=0, atol=1e-3
    )


def test_constant_source_channel_maps_without_nan():
    source = torch.cat((torch.full((500, 1), 4.0), torch.randn(500, 1, generator=generator(8))), dim=1)
    target = torch.randn(600, 2, generator=generator(9))
    mapping = QuantileMap(source, target)
    mapped = mapping(source)
    assert torch.isfinite(mapped).all()
    # The constant lands inside the target's range (at its lowest quantile).
    assert target[:, 0].min() - 1e-6 <= mapped[:, 0].min() and mapped[:, 0].max() <= target[:, 0].max() + 1e-6


def test_shape_and_dtype_are_kept():
    mapping = QuantileMap(torch.randn(200, 6, generator=generator(10)), torch.randn(300, 6, generator=generator(11)))
    values = torch.randn(4, 7, 50, 6, generator=generator(12))
    mapped = mapping(values)
    assert mapped.shape == values.shape and mapped.dtype == torch.float32
    torch.testing.assert_close(mapped[2, 3], mapping(values[2, 3]), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("source", "target", "kwargs", "message"),
    [
        (torch.zeros(200), torch.zeros(200, 1), {}, r"source and target must be \[N, C\] with equal C"),
        (torch.zeros(200, 2), torch.zeros(200, 3), {}, r"must be \[N, C\] with equal C, got \(200, 2\), \(200, 3\)"),
        (torch.zeros(200, 1), torch.zeros(200, 1), {"num_quantiles": 1}, "num_quantiles must be ≥ 2, got 1"),
        (torch.zeros(100, 1), torch.zeros(200, 1), {}, "need ≥ num_quantiles=101 samples per domain"),
        (torch.zeros(200, 1), torch.zeros(50, 1), {"num_quantiles": 51}, "need ≥ num_quantiles=51 samples"),
        (torch.full((200, 1), math.nan), torch.zeros(200, 1), {}, "source and target must be finite"),
        (torch.zeros(200, 1), torch.full((200, 1), math.inf), {}, "source and target must be finite"),
    ],
)
def test_bad_fits_are_rejected(source, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantileMap(source, target, **kwargs)


def test_values_with_the_wrong_channel_count_are_rejected():
    mapping = QuantileMap(torch.randn(200, 3, generator=generator(0)), torch.randn(200, 3, generator=generator(1)))
    with pytest.raises(ValueError, match=r"values must have 3 channels, got \(10, 6\)"):
        mapping(torch.zeros(10, 6))
