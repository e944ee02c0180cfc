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
