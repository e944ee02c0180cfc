import pytest
import torch

from virtual_imu.noise import WhiteNoiseBias


def test_empirical_noise_and_bias_match_configuration():
    model = WhiteNoiseBias(acc_noise_std=0.05, acc_bias_std=0.2, gyro_noise_std=0.01, gyro_bias_std=0.003)
    acc = torch.zeros(4000, 500, 3, dtype=torch.float64)
    gyro = torch.zeros_like(acc)
    noisy_acc, noisy_gyro = model(acc, gyro, torch.Generator().manual_seed(0))
    bias_acc, bias_gyro = noisy_acc.mean(1), noisy_gyro.mean(1)
    # 4000 clips × 3 axes: the std estimate of a Gaussian has relative spread 1/sqrt(2·12000) ≈ 0.65 %
    assert (noisy_acc - bias_acc[:, None]).std().item() == pytest.approx(0.05, rel=0.01)
    assert (noisy_gyro - bias_gyro[:, None]).std().item() == pytest.approx(0.01, rel=0.01)
    # the per-clip mean holds bias plus white noise averaged over 500 samples
    assert bias_acc.std().item() == pytest.approx((0.2**2 + 0.05**2 / 500) ** 0.5, rel=0.03)
    assert bias_gyro.std().item() == pytest.approx((0.003**2 + 0.01**2 / 500) ** 0.5, rel=0.03)


def test_same_seed_same_noise_and_zero_model_is_identity():
    model = WhiteNoiseBias(acc_noise_std=0.1, gyro_bias_std=0.1)
    acc, gyro = torch.randn(2, 50, 3), torch.randn(2, 50, 3)
    first = model(acc, gyro, torch.Generator().manual_seed(7))
    second = model(acc, gyro, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    ideal = WhiteNoiseBias()(acc, gyro, torch.Generator().manual_seed(7))
    assert torch.equal(ideal[0], acc) and torch.equal(ideal[1], gyro)


def test_bias_is_constant_over_time():
    acc, gyro = WhiteNoiseBias(acc_bias_std=1.0)(torch.zeros(3, 20, 3), torch.zeros(3, 20, 3), torch.Generator().manual_seed(1))
    assert torch.equal(acc, acc[:, :1].expand_as(acc)) and acc.abs().min() > 0


@pytest.mark.parametrize("name", ["acc_noise_std", "acc_bias_std", "gyro_noise_std", "gyro_bias_std"])
def test_negative_std_is_rejected(name):
    with pytest.raises(ValueError, match=name):
        WhiteNoiseBias(**{name: -0.1})


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="acc and gyro"):
        WhiteNoiseBias()(torch.zeros(10, 3), torch.zeros(9, 3))
