import math

import pytest
import torch

from virtual_imu.filters import lowpass, lowpass_kernel, resample

F64 = torch.float64


def tone(freq, fs, n):
    t = torch.arange(n, dtype=F64) / fs
    return torch.sin(2 * math.pi * freq * t)[:, None]


def test_kernel_has_unit_dc_gain_and_is_symmetric():
    k = lowpass_kernel(5.0, 50.0, dtype=F64)
    assert k.numel() % 2 == 1
    assert k.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(k, k.flip(0))


def test_lowpass_passes_band_and_stops_stopband_with_zero_phase():
    fs, n = 100.0, 1000
    passed = lowpass(tone(1.0, fs, n), 10.0, fs)
    torch.testing.assert_close(passed[100:-100], tone(1.0, fs, n)[100:-100], atol=3e-3, rtol=0)  # no delay; Hamming ripple ≈ 0.2 %
    stopped = lowpass(tone(30.0, fs, n), 10.0, fs)
    assert stopped[100:-100].abs().max() < 0.01


def test_lowpass_preserves_linear_trends_up_to_the_edges():
    ramp = torch.linspace(-1, 3, 40, dtype=F64)[:, None].repeat(1, 3)
    torch.testing.assert_close(lowpass(ramp, 2.0, 20.0), ramp, atol=1e-12, rtol=0)


def test_lowpass_of_a_short_clip_shortens_the_kernel():
    short = torch.randn(2, 5, 3, dtype=F64)
    out = lowpass(short, 2.0, 20.0)
    assert out.shape == short.shape and torch.isfinite(out).all()


def test_resample_upsampling_is_exact_for_linear_signals():
    fs_in, fs_out = 20.0, 50.0
    signal = (3.0 * torch.arange(41, dtype=F64) / fs_in + 1.0)[:, None]
    out = resample(signal, fs_in, fs_out)
    assert out.shape[0] == 101  # 2 s span at 50 Hz
    expected = 3.0 * torch.arange(101, dtype=F64) / fs_out + 1.0
    torch.testing.assert_close(out[:, 0], expected, atol=1e-12, rtol=0)


def test_resample_downsampling_removes_aliases():
    fs_in, fs_out, n = 200.0, 50.0, 2000
    kept = resample(tone(3.0, fs_in, n), fs_in, fs_out)
    torch.testing.assert_close(kept[50:-50], tone(3.0, fs_out, kept.shape[0])[50:-50], atol=0.01, rtol=0)
    alias = resample(tone(40.0, fs_in, n), fs_in, fs_out)  # would fold onto 10 Hz without the low-pass
    assert alias[50:-50].abs().max() < 0.02


@pytest.mark.parametrize("kwargs,match", [({"fs_in_hz": 0.0}, "fs_in_hz"), ({"fs_out_hz": -1.0}, "fs_out_hz")])
def test_resample_rejects_bad_rates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resample(torch.zeros(10, 3), **{"fs_in_hz": 20.0, "fs_out_hz": 50.0, **kwargs})


def test_lowpass_rejects_cutoff_above_nyquist():
    with pytest.raises(ValueError, match="cutoff_hz"):
        lowpass(torch.zeros(10, 3), 12.0, 20.0)


def test_resample_with_a_time_offset_is_exact_for_linear_signals_and_holds_the_edges():
    fs_in, fs_out = 20.0, 50.0
    signal = (3.0 * torch.arange(41, dtype=F64) / fs_in + 1.0)[:, None].repeat(2, 1, 1)  # [2, 41, 1]
    offset = torch.tensor([[0.013], [-0.031]], dtype=F64)  # one clock offset per clip, seconds
    out = resample(signal, fs_in, fs_out, time_offset_s=offset)
    t = (torch.arange(101, dtype=F64) / fs_out + offset).clamp(0, 2.0)
    torch.testing.assert_close(out[..., 0], 3.0 * t + 1.0, atol=1e-12, rtol=0)


def test_resample_with_per_sample_jitter_and_its_gradient():
    fs = 50.0
    signal = (2.0 * torch.arange(60, dtype=F64) / fs)[:, None]  # slope 2 per second
    jitter = torch.full((60,), 0.004, dtype=F64, requires_grad=True)
    out = resample(signal, fs, fs, time_offset_s=jitter)
    torch.testing.assert_close(out[:-1, 0], 2.0 * (torch.arange(59, dtype=F64) / fs + 0.004), atol=1e-12, rtol=0)
    out[10:20].sum().backward()
    torch.testing.assert_close(jitter.grad[10:20], torch.full((10,), 2.0, dtype=F64), atol=1e-9, rtol=0)


def test_resample_names_an_offset_of_the_wrong_shape():
    with pytest.raises(ValueError, match="time_offset_s"):
        resample(torch.zeros(2, 40, 3), 20.0, 50.0, time_offset_s=torch.zeros(3, 7))
