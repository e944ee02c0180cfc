import dataclasses
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from virtual_imu.allan import allan_deviation
from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.devices import DEVICES, device
from virtual_imu.mems import MEMSIMU, TriaxialErrors, draw_shapes, gauss_markov

F64 = torch.float64
SENSOR_CONFIGS = Path(__file__).resolve().parents[2] / "conf" / "data" / "sensor"


def batch_draws(model: MEMSIMU, clips: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-clip draws stacked the way a DataLoader collates them."""
    generator = torch.Generator().manual_seed(seed)
    draws = [model.draw(length, generator) for _ in range(clips)]
    return {key: torch.stack([d[key] for d in draws]) for key in draws[0]}


def loglog_slope(taus: torch.Tensor, adev: torch.Tensor) -> float:
    design = torch.stack((taus.log(), torch.ones_like(taus)), dim=1)
    return torch.linalg.lstsq(design, adev.log()[:, None]).solution[0, 0].item()


def expected_matrix(errors: TriaxialErrors, scale: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """I + diag(σ_s·s) + σ_c·(off-diagonal part of c), written out element by element."""
    matrix = torch.empty(3, 3, dtype=F64)
    for i in range(3):
        for j in range(3):
            matrix[i, j] = 1 + errors.scale_error_std * scale[i] if i == j else errors.cross_axis_std * cross[i, j]
    return matrix


# ---------------------------------------------------------------- stochastic terms against their statistics


def test_white_noise_sigma_is_density_times_sqrt_rate():
    model = MEMSIMU(accelerometer=TriaxialErrors(noise_density=2e-3), gyroscope=TriaxialErrors(noise_density=1e-4))
    fs = 50.0
    out = model.measure(torch.zeros(8, 2000, 6, dtype=F64), fs, batch_draws(model, 8, 2000))
    rms = out.square().mean(dim=(0, 1)).sqrt()
    # 48 000 samples per sensor: the σ estimate spreads by 1/√(2·48 000) ≈ 0.3 %; 1 % is ~3σ.
    assert rms[:3].square().mean().sqrt().item() == pytest.approx(2e-3 * math.sqrt(fs), rel=0.01)
    assert rms[3:].square().mean().sqrt().item() == pytest.approx(1e-4 * math.sqrt(fs), rel=0.01)


def test_allan_deviation_of_white_noise_and_rate_random_walk():
    density, walk, fs, length = 2e-3, 1e-3, 100.0, 20_000
    model = MEMSIMU(
        accelerometer=TriaxialErrors(noise_density=density), gyroscope=TriaxialErrors(bias_random_walk=walk)
    )
    out = model.measure(torch.zeros(length, 6, dtype=F64), fs, model.draw(length, torch.Generator().manual_seed(3)))

    # White noise: σ(τ) = N/√τ, slope −1/2. Averaged over 3 axes up to m = T/200 the estimate spreads
    # by ≤ 2.7 % (measured over 40 seeds), so 10 % is > 3σ.
    taus, adev = allan_deviation(out[:, :3], fs, [1, 2, 5, 10, 20, 50, 100])
    white = adev.square().mean(1).sqrt()
    torch.testing.assert_close(white, density / taus.sqrt(), rtol=0.10, atol=0)
    assert loglog_slope(taus, white) == pytest.approx(-0.5, abs=0.05)  # measured spread 0.006

    # Rate random walk r[k] = r[k−1] + K·√dt·n[k]: σ²(τ) = K²·τ/3·(1 + 1/(2m²)) exactly for the discrete
    # walk (1/(2m²) is the sampling correction), slope +1/2. Spread ≤ 4.5 % up to m = 200: 15 % is > 3σ.
    taus, adev = allan_deviation(out[:, 3:], fs, [10, 20, 50, 100, 200])
    walked = adev.square().mean(1).sqrt()
    m = taus * fs
    torch.testing.assert_close(walked, walk * (taus / 3 * (1 + 1 / (2 * m**2))).sqrt(), rtol=0.15, atol=0)
    assert loglog_slope(taus, walked) == pytest.approx(0.5, abs=0.05)  # measured spread 0.016


@pytest.mark.parametrize("tau_s", [0.05, 1.0, 1e4])
def test_gauss_markov_equals_its_recurrence(tau_s):
    # 3000 samples at 100 Hz with a = exp(−dt/τ) from 0.82 to 0.999999: no growth, no loss of precision.
    std, dt = 0.7, 0.01
    unit = torch.randn(2, 3000, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    a = math.exp(-dt / tau_s)
    expected = torch.empty_like(unit)
    expected[:, 0] = std * unit[:, 0]
    for k in range(1, unit.shape[1]):
        expected[:, k] = a * expected[:, k - 1] + std * math.sqrt(1 - a * a) * unit[:, k]
    torch.testing.assert_close(gauss_markov(unit, std, tau_s, dt), expected, rtol=0, atol=1e-11)


def test_gauss_markov_is_stationary_with_exponential_autocorrelation():
    std, tau, fs = 0.3, 0.1, 50.0
    model = MEMSIMU(accelerometer=TriaxialErrors(gauss_markov_std=std, gauss_markov_tau_s=tau))
    out = model.measure(torch.zeros(200, 200, 6, dtype=F64), fs, batch_draws(model, 200, 200))[..., :3]
    a = math.exp(-1 / (fs * tau))
    # ≈ 200·(1 − a)/(1 + a) ≈ 20 independent samples per clip and axis → 12 000 in all: σ spreads by ~0.7 %.
    assert out.square().mean().sqrt().item() == pytest.approx(std, rel=0.03)
    # stationary from the first sample: 600 values at k = 0 and at k = T − 1 spread by ~3 %.
    assert out[:, 0].square().mean().sqrt().item() == pytest.approx(std, rel=0.10)
    assert out[:, -1].square().mean().sqrt().item() == pytest.approx(std, rel=0.10)
    lag1 = (out[:, 1:] * out[:, :-1]).mean() / out.square().mean()
    assert lag1.item() == pytest.approx(a, abs=0.01)  # a = 0.819


def test_turn_on_bias_is_constant_per_clip_with_the_configured_spread():
    model = MEMSIMU(accelerometer=TriaxialErrors(bias_std=0.2), gyroscope=TriaxialErrors(bias_std=0.01))
    out = model.measure(torch.zeros(1000, 3, 6, dtype=F64), 50.0, batch_draws(model, 1000, 3))
    assert torch.equal(out, out[:, :1].expand_as(out))
    # 3000 draws per sensor: σ spreads by 1/√6000 ≈ 1.3 %; 5 % is ~4σ.
    assert out[:, 0, :3].std().item() == pytest.approx(0.2, rel=0.05)
    assert out[:, 0, 3:].std().item() == pytest.approx(0.01, rel=0.05)


# ---------------------------------------------------------------- deterministic terms in closed form


def test_scale_factor_and_cross_axis_matrix_are_applied_exactly():
    acc = TriaxialErrors(scale_error_std=0.01, cross_axis_std=0.02)
    gyro = TriaxialErrors(scale_error_std=0.03, cross_axis_std=0.005)
    model = MEMSIMU(accelerometer=acc, gyroscope=gyro)
    draws = {k: v.to(F64) for k, v in batch_draws(model, 2, 5).items()}
    imu = torch.randn(2, 5, 6, dtype=F64, generator=torch.Generator().manual_seed(1))
    out = model.measure(imu, 50.0, draws)
    for clip in range(2):
        scale, cross = draws["sensor_scale"][clip], draws["sensor_cross_axis"][clip]
        m_acc = expected_matrix(acc, scale[:3], cross[0])
        m_gyro = expected_matrix(gyro, scale[3:], cross[1])
        for t in range(5):
            torch.testing.assert_close(out[clip, t, :3], m_acc @ imu[clip, t, :3], rtol=1e-15, atol=1e-15)
            torch.testing.assert_close(out[clip, t, 3:], m_gyro @ imu[clip, t, 3:], rtol=1e-15, atol=1e-15)


def test_g_sensitivity_adds_exactly_G_times_the_true_specific_force():
    model = MEMSIMU(gyro_g_sensitivity_std=0.05)
    draws = {k: v.to(F64) for k, v in model.draw(7, torch.Generator().manual_seed(2)).items()}
    imu = torch.randn(7, 6, dtype=F64, generator=torch.Generator().manual_seed(3))
    out = model.measure(imu, 50.0, draws)
    assert torch.equal(out[:, :3], imu[:, :3])
    g_matrix = 0.05 * draws["sensor_g_sensitivity"]
    expected = torch.stack([imu[t, 3:] + g_matrix @ imu[t, :3] for t in range(7)])
    torch.testing.assert_close(out[:, 3:], expected, rtol=1e-15, atol=1e-15)


def test_saturation_clamps_exactly_at_full_scale():
    model = MEMSIMU(accelerometer=TriaxialErrors(full_scale=2.0), gyroscope=TriaxialErrors(full_scale=0.5))
    imu = torch.tensor([[3.0, -5.0, 1.5, 0.7, -0.2, -0.5000001], [2.0, -2.0, -1.999, 1e6, 0.5, 0.4999]])
    expected = torch.tensor([[2.0, -2.0, 1.5, 0.5, -0.2, -0.5], [2.0, -2.0, -1.999, 0.5, 0.5, 0.4999]])
    assert torch.equal(model.measure(imu, 50.0), expected)


def test_quantisation_by_hand():
    # full_scale 4, 4 bits: LSB = 8/16 = 0.5, codes −8 … 7, so outputs −4.0 … 3.5 (the top code is FS − LSB).
    errors = TriaxialErrors(full_scale=4.0, bits=4)
    assert errors.lsb == 0.5
    model = MEMSIMU(accelerometer=errors, gyroscope=errors)
    imu = torch.tensor([[0.26, -0.24, 0.8, 3.9, 5.0, -4.1], [-3.76, 1.74, -1.26, 3.74, 3.76, -0.01]])
    expected = torch.tensor([[0.5, 0.0, 1.0, 3.5, 3.5, -4.0], [-4.0, 1.5, -1.5, 3.5, 3.5, 0.0]])
    assert torch.equal(model.measure(imu, 50.0), expected)


def test_quantisation_is_on_the_lsb_grid_within_half_an_lsb():
    errors = TriaxialErrors(full_scale=3.0, bits=8)
    lsb = 6.0 / 256
    model = MEMSIMU(accelerometer=errors, gyroscope=errors)
    imu = torch.empty(500, 6, dtype=F64).uniform_(-2.9, 2.9, generator=torch.Generator().manual_seed(4))
    out = model.measure(imu, 50.0)
    codes = out / lsb
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-9)
    assert (out - imu).abs().max().item() <= lsb / 2 + 1e-12


def test_datasheet_sensitivities_give_the_presets_lsb():
    # BMI270 / BMI160: 2048 LSB/g at ±16 g, 4096 LSB/g at ±8 g, 16.384 LSB/(°/s) at ±2000 °/s.
    assert device("bmi270").accelerometer.lsb == pytest.approx(STANDARD_GRAVITY / 2048, rel=1e-12)
    assert device("consumer_phone").accelerometer.lsb == pytest.approx(STANDARD_GRAVITY / 4096, rel=1e-12)
    for name in ("bmi270", "consumer_phone"):
        assert device(name).gyroscope.lsb == pytest.approx(math.radians(1 / 16.384), rel=1e-12)
    assert device("bmi270").accelerometer.noise_density == pytest.approx(160e-6 * STANDARD_GRAVITY, rel=1e-12)
    assert device("bmi270").gyroscope.noise_density == pytest.approx(math.radians(0.007), rel=1e-12)
    assert device("consumer_phone").accelerometer.noise_density == pytest.approx(180e-6 * STANDARD_GRAVITY, rel=1e-12)
    assert device("consumer_phone").gyroscope.noise_density == pytest.approx(math.radians(0.008), rel=1e-12)


# ---------------------------------------------------------------- gradients


def test_gradient_through_saturation_and_quantisation_is_one():
    errors = TriaxialErrors(full_scale=1.0, bits=6)
    model = MEMSIMU(accelerometer=errors, gyroscope=errors)
    imu = torch.tensor([[[0.3, -2.0, 5.0, 0.01, -0.999, 1.0]]], dtype=F64, requires_grad=True)
    out = model.measure(imu, 50.0)
    out.sum().backward()
    assert torch.equal(imu.grad, torch.ones_like(imu))
    assert out.detach().abs().max().item() <= 1.0


def test_gradient_through_the_linear_terms():
    # out_acc = M_a·acc + noise, out_gyro = M_g·gyro + G·acc + noise: d(Σ W⊙out)/d acc = W_a·M_a + W_g·G,
    # d/d gyro = W_g·M_g (rows are samples).
    acc = TriaxialErrors(scale_error_std=0.02, cross_axis_std=0.01, noise_density=0.1, bias_std=0.1)
    gyro = TriaxialErrors(scale_error_std=0.01, cross_axis_std=0.03, bias_random_walk=0.1, gauss_markov_std=0.1)
    model = MEMSIMU(accelerometer=acc, gyroscope=gyro, gyro_g_sensitivity_std=0.04)
    draws = {k: v.to(F64) for k, v in model.draw(6, torch.Generator().manual_seed(5)).items()}
    imu = torch.randn(6, 6, dtype=F64, generator=torch.Generator().manual_seed(6), requires_grad=True)
    weights = torch.randn(6, 6, dtype=F64, generator=torch.Generator().manual_seed(7))
    (model.measure(imu, 50.0, draws) * weights).sum().backward()
    m_acc = expected_matrix(acc, draws["sensor_scale"][:3], draws["sensor_cross_axis"][0])
    m_gyro = expected_matrix(gyro, draws["sensor_scale"][3:], draws["sensor_cross_axis"][1])
    g_matrix = 0.04 * draws["sensor_g_sensitivity"]
    expected_acc = weights[:, :3] @ m_acc + weights[:, 3:] @ g_matrix
    torch.testing.assert_close(imu.grad[:, :3], expected_acc, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(imu.grad[:, 3:], weights[:, 3:] @ m_gyro, rtol=1e-14, atol=1e-14)


# ---------------------------------------------------------------- draws, seeding, batching


def test_draws_are_seeded_float32_and_keyed_the_same_for_every_device():
    first = device("bmi270").draw(50, torch.Generator().manual_seed(11))
    again = device("bmi270").draw(50, torch.Generator().manual_seed(11))
    other = device("bmi270").draw(50, torch.Generator().manual_seed(12))
    assert first.keys() == draw_shapes(50).keys() and all(k.startswith("sensor_") for k in first)
    assert all(first[k].shape == draw_shapes(50)[k] and first[k].dtype == torch.float32 for k in first)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert all(not torch.equal(first[k], other[k]) for k in first)
    for model in (*DEVICES.values(), MEMSIMU(gyro_g_sensitivity_std=1.0, time_jitter_std_s=0.1)):
        drawn = model.draw(50, torch.Generator().manual_seed(11))
        assert drawn.keys() == first.keys() and all(torch.equal(drawn[k], first[k]) for k in first)


def test_ideal_device_returns_the_input_unchanged():
    imu = torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(8)) * 100
    ideal = device("ideal")
    assert torch.equal(ideal.measure(imu, 50.0, batch_draws(ideal, 3, 40)), imu)
    assert torch.equal(ideal.measure(imu, 50.0), imu)
    assert torch.equal(ideal.time_offsets_s(batch_draws(ideal, 3, 40)), torch.zeros(3, 40))


@pytest.mark.parametrize("name", ["bmi270", "consumer_phone"])
def test_batched_draws_give_the_same_output_as_one_clip_at_a_time(name):
    model = device(name)
    imu = torch.randn(3, 40, 6, dtype=F64, generator=torch.Generator().manual_seed(9)) * 5
    draws = batch_draws(model, 3, 40)
    batched = model.measure(imu, 50.0, draws)
    for clip in range(3):
        single = model.measure(imu[clip], 50.0, {k: v[clip] for k, v in draws.items()})
        torch.testing.assert_close(batched[clip], single, rtol=0, atol=1e-12)
    assert not torch.equal(batched, model.measure(imu, 50.0))  # the draws did something


def test_time_offsets_scale_the_jitter_draws():
    model = device("consumer_phone")
    draws = batch_draws(model, 4, 30)
    offsets = model.time_offsets_s(draws)
    assert offsets.shape == (4, 30)
    assert torch.equal(offsets, model.time_jitter_std_s * draws["sensor_time_jitter"])


def test_measure_keeps_dtype_and_runs_in_float32():
    model = device("bmi270")
    out = model.measure(torch.zeros(2, 20, 6), 50.0, batch_draws(model, 2, 20))
    assert out.dtype == torch.float32 and out.shape == (2, 20, 6) and torch.isfinite(out).all()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"noise_density": -1.0}, "noise_density"),
        ({"bias_std": float("nan")}, "bias_std"),
        ({"bias_random_walk": -1e-3}, "bias_random_walk"),
        ({"gauss_markov_std": math.inf}, "gauss_markov_std"),
        ({"gauss_markov_tau_s": 0.0}, "gauss_markov_tau_s"),
        ({"gauss_markov_tau_s": math.inf}, "gauss_markov_tau_s"),
        ({"scale_error_std": "0.1"}, "scale_error_std"),
        ({"cross_axis_std": True}, "cross_axis_std"),
        ({"full_scale": 0.0}, "full_scale"),
        ({"full_scale": -3.0}, "full_scale"),
        ({"bits": 16}, "bits"),  # full_scale is inf
        ({"bits": 1, "full_scale": 1.0}, "bits"),
        ({"bits": 8.0, "full_scale": 1.0}, "bits"),
    ],
)
def test_bad_sensor_errors_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TriaxialErrors(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"accelerometer": {"noise_density": 1.0}}, "accelerometer"),
        ({"gyro_g_sensitivity_std": -0.1}, "gyro_g_sensitivity_std"),
        ({"bandwidth_hz": 0.0}, "bandwidth_hz"),
        ({"bandwidth_hz": math.inf}, "bandwidth_hz"),
        ({"time_jitter_std_s": -1e-3}, "time_jitter_std_s"),
    ],
)
def test_bad_imu_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MEMSIMU(**kwargs)


def test_bad_measure_and_draw_arguments_are_rejected():
    model = device("bmi270")
    imu = torch.zeros(2, 10, 6)
    draws = batch_draws(model, 2, 10)
    for output_hz in (0.0, -50.0, float("nan")):
        with pytest.raises(ValueError, match="output_hz"):
            model.measure(imu, output_hz, draws)
    with pytest.raises(ValueError, match="imu"):
        model.measure(torch.zeros(2, 10, 3), 50.0)
    with pytest.raises(ValueError, match="sensor_white"):
        model.measure(imu, 50.0, {**draws, "sensor_white": torch.zeros(2, 9, 6)})
    with pytest.raises(ValueError, match="sensor_bias"):
        model.measure(imu, 50.0, {**draws, "sensor_bias": torch.zeros(6)})  # batch dim missing
    with pytest.raises(ValueError, match="sensor_g_sensitivity"):
        model.measure(imu, 50.0, {k: v for k, v in draws.items() if k != "sensor_g_sensitivity"})
    with pytest.raises(ValueError, match="sensor_typo"):
        model.measure(imu, 50.0, {**draws, "sensor_typo": torch.zeros(2)})
    with pytest.raises(ValueError, match="sensor_time_jitter"):
        model.time_offsets_s({"sensor_white": draws["sensor_white"]})
    for length in (0, -3, 2.0):
        with pytest.raises(ValueError, match="length"):
            model.draw(length)
    # other keys of a collated batch (e.g. mount draws) are left alone
    with_other_keys = model.measure(imu, 50.0, {**draws, "mount_jitter": torch.zeros(2, 4)})
    assert torch.equal(with_other_keys, model.measure(imu, 50.0, draws))


def test_unknown_device_lists_the_names():
    with pytest.raises(ValueError, match="bmi270"):
        device("bmi999")


def test_presets_are_dataclass_copies_of_validated_settings():
    # a preset can be varied with dataclasses.replace and stays validated
    louder = dataclasses.replace(device("bmi270"), time_jitter_std_s=1e-3)
    assert louder.time_jitter_std_s == 1e-3 and louder.accelerometer == device("bmi270").accelerometer
    with pytest.raises(ValueError, match="time_jitter_std_s"):
        dataclasses.replace(device("bmi270"), time_jitter_std_s=-1.0)


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_hydra_sensor_configs_instantiate_the_presets(name):
    built = instantiate(OmegaConf.load(SENSOR_CONFIGS / f"{name}.yaml"))
    assert isinstance(built, MEMSIMU) and built == device(name)
