import logging
import math
from pathlib import Path

import numpy as np
import pytest

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_finite_nonempty,
    check_gyro_units,
    check_positions,
    load_folder,
    load_parsed,
    read_csv_columns,
    resample_timestamps,
    resample_uniform,
)

G = 9.80665
RIPPLE = 2e-3
"""Largest error of scipy's polyphase filter (Kaiser window, β = 5) on a unit sine in its passband: measured
≤ 1.71e-3 from 0.25 to 19.75 Hz at 200 → 50 Hz (2.05e-3 at 20 Hz), plus margin."""
EDGE_S = 0.5
"""Seconds left out at each end when comparing with the truth: the filter's start-up transient."""


def sine(t: np.ndarray, hz: float, phase: float = 0.3) -> np.ndarray:
    return np.sin(2 * math.pi * hz * t + phase)


def interior(values: np.ndarray, fs: float) -> np.ndarray:
    edge = round(EDGE_S * fs)
    return values[edge:-edge]


def recording(**overrides) -> IMURecording:
    kwargs = dict(dataset="test", subject="1", activity="a1", label="walking", position="wrist", fs=50.0,
                  acc=np.tile([0.0, 0.0, G], (100, 1)), gyro=np.zeros((100, 3)), source="x.csv")
    kwargs.update(overrides)
    return IMURecording(**kwargs)


# ---------------------------------------------------------------- IMURecording


def test_recording_derives_safety_duration_and_six_channels():
    rec = recording(label="falling", gyro=None)
    assert rec.safety == "unsafe" and recording().safety == "safe"
    assert rec.duration_s == 2.0  # 100 samples at 50 Hz
    np.testing.assert_array_equal(rec.imu, np.concatenate((rec.acc, np.zeros((100, 3))), axis=1))
    assert rec.events == {} and recording().imu[:, 3:].shape == (100, 3)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"label": "jogging"}, ValueError, "'jogging' is not a shared class"),
        ({"acc": np.zeros((100, 2))}, RecordingFileError, r"x.csv: acc must have shape \[T, 3\]"),
        ({"gyro": np.zeros((99, 3))}, RecordingFileError, r"x.csv: gyro shape \(99, 3\) differs from acc"),
    ],
)
def test_recording_rejects_bad_fields(overrides, error, message):
    with pytest.raises(error, match=message):
        recording(**overrides)


# ---------------------------------------------------------------- resample_uniform


@pytest.mark.parametrize(
    ("samples", "fs_in", "fs_out", "length"),
    # resample_poly gives ceil(T · up / down) samples.
    [(2001, 200.0, 50.0, 501), (2000, 200.0, 50.0, 500), (1001, 100.0, 30.0, 301), (500, 50.0, 20.0, 200),
     (101, 25.0, 50.0, 202)],
)
def test_resample_uniform_output_length(samples, fs_in, fs_out, length):
    assert resample_uniform(np.zeros((samples, 2)), fs_in, fs_out).shape == (length, 2)


def test_resample_uniform_same_rate_is_the_identity():
    values = np.random.default_rng(0).normal(size=(37, 3))
    np.testing.assert_array_equal(resample_uniform(values, 50.0, 50.0), values)


def test_resample_uniform_keeps_a_sloped_line_exactly_up_to_the_edges():
    # padtype="line": gravity with a slow drift is not pulled toward zero at the ends.
    t = np.arange(2001) / 200.0
    out = resample_uniform(np.stack((G + 0 * t, 0.5 + 2.0 * t), axis=1), 200.0, 50.0)
    t_out = np.arange(out.shape[0]) / 50.0
    np.testing.assert_allclose(out, np.stack((G + 0 * t_out, 0.5 + 2.0 * t_out), axis=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("hz", "tolerance"), [(0.5, RIPPLE), (2.0, RIPPLE), (5.0, RIPPLE), (15.0, RIPPLE), (20.0, 2.5e-3)]
)
def test_resample_uniform_keeps_a_sine_below_the_new_nyquist(hz, tolerance):
    # Up to 0.6 × the new Nyquist (25 Hz) within the passband ripple; at 0.8 × (20 Hz) the transition band
    # begins (gain measured 1.002).
    t = np.arange(4001) / 200.0
    out = resample_uniform(sine(t, hz)[:, None], 200.0, 50.0)[:, 0]
    truth = sine(np.arange(out.shape[0]) / 50.0, hz)
    np.testing.assert_allclose(interior(out, 50.0), interior(truth, 50.0), rtol=0, atol=tolerance)


@pytest.mark.parametrize("hz", [35.0, 40.0, 60.0, 90.0])
def test_resample_uniform_suppresses_what_would_alias(hz):
    # Above the new Nyquist (25 Hz) a sine would fold into the band (40 Hz → 10 Hz): the anti-aliasing
    # filter leaves at most 1e-3 of its amplitude (measured ≤ 3.5e-4 from 35 Hz up).
    t = np.arange(4001) / 200.0
    out = resample_uniform(sine(t, hz)[:, None], 200.0, 50.0)[:, 0]
    assert np.abs(interior(out, 50.0)).max() < 1e-3


@pytest.mark.parametrize(("fs_in", "fs_out"), [(0.0, 50.0), (50.0, -1.0)])
def test_resample_uniform_rejects_non_positive_rates(fs_in, fs_out):
    with pytest.raises(ValueError, match="sampling rates must be > 0"):
        resample_uniform(np.zeros((10, 3)), fs_in, fs_out)


# ---------------------------------------------------------------- resample_timestamps


def jittered_stamps(samples: int, fs: float, seed: int = 0) -> np.ndarray:
    """Nominal stamps k / fs with uniform ±0.3/fs jitter (still increasing), first and last exact."""
    stamps = np.arange(samples) / fs + np.random.default_rng(seed).uniform(-0.3, 0.3, samples) / fs
    stamps[0], stamps[-1] = 0.0, (samples - 1) / fs
    return stamps


def ble_burst_stamps(samples: int, fs: float, burst: int = 4) -> np.ndarray:
    """Delivery times of samples taken every 1/fs: each batch of `burst` arrives stamped 1 ms apart from
    the time its first sample was taken, then nothing until the next batch. `samples` = burst·K + 1, so
    the last sample opens its own batch and the first and last stamps are its true times."""
    index = np.arange(samples)
    return (index // burst) * burst / fs + (index % burst) * 1e-3


def test_trusted_jittered_timestamps_are_interpolated_onto_the_true_grid():
    fs, hz = 50.0, 0.5
    stamps = jittered_stamps(1001, fs)
    values = np.stack((sine(stamps, hz), G + 0 * stamps), axis=1)
    out = resample_timestamps("f.csv", stamps, values, 25.0, trust_timestamps=True)
    truth = sine(np.arange(out.shape[0]) / 25.0, hz)
    assert out.shape == (501, 2)
    # Linear interpolation of a 0.5 Hz sine between stamps ≤ 32 ms apart errs by ≤ Δt²/8·(2π·0.5)² = 1.3e-3.
    error = np.abs(interior(out[:, 0], 25.0) - interior(truth, 25.0)).max()
    assert error < 1.3e-3 + RIPPLE
    np.testing.assert_allclose(out[:, 1], G, rtol=0, atol=1e-9)
    # Ignoring the stamps puts each sample up to 6 ms off: an error of up to 2π·0.5·0.006 ≈ 0.019.
    untrusted = resample_timestamps("f.csv", stamps, values, 25.0, trust_timestamps=False)
    assert np.abs(interior(untrusted[:, 0], 25.0) - interior(truth, 25.0)).max() > 3 * error


def test_untrusted_ble_bursts_are_spread_evenly_and_match_the_true_signal():
    fs, hz = 50.0, 1.0
    true_times = np.arange(401) / fs
    values = sine(true_times, hz)[:, None]
    stamps = ble_burst_stamps(401, fs)
    assert np.diff(stamps).min() == pytest.approx(1e-3) and np.diff(stamps).max() == pytest.approx(0.077)
    same_rate = resample_timestamps("f.csv", stamps, values, fs, trust_timestamps=False)
    np.testing.assert_allclose(same_rate, values, rtol=0, atol=1e-12)
    half_rate = resample_timestamps("f.csv", stamps, values, 25.0, trust_timestamps=False)[:, 0]
    truth = sine(np.arange(half_rate.shape[0]) / 25.0, hz)
    assert half_rate.shape == (201,)
    np.testing.assert_allclose(interior(half_rate, 25.0), interior(truth, 25.0), rtol=0, atol=RIPPLE)
    # Trusting the delivery times squeezes each burst into 3 ms: errors of a tenth of the amplitude.
    trusted = resample_timestamps("f.csv", stamps, values, fs, trust_timestamps=True)[:, 0]
    assert np.abs(trusted - values[:, 0]).max() > 0.1


def test_untrusted_timestamps_may_arrive_out_of_order():
    stamps = np.array([0.0, 0.002, 0.001, 0.1, 0.103, 0.102, 0.2])
    values = np.arange(7.0)[:, None]
    with pytest.raises(RecordingFileError, match="f.csv: timestamps must increase"):
        resample_timestamps("f.csv", stamps, values, 30.0, trust_timestamps=True)
    # 7 samples over 0.2 s is 30 Hz: the samples come back unchanged, in file order.
    np.testing.assert_allclose(resample_timestamps("f.csv", stamps, values, 30.0, trust_timestamps=False), values)


@pytest.mark.parametrize(
    ("stamps", "samples", "message"),
    [
        (np.arange(5.0), 4, "f.csv: 5 timestamps for 4 samples"),
        (np.zeros(1), 1, "f.csv: 1 samples; the recording is empty or truncated"),
        (np.ones(3), 3, "f.csv: all timestamps are equal"),
    ],
)
@pytest.mark.parametrize("trust", [True, False])
def test_resample_timestamps_rejects_bad_stamps(stamps, samples, message, trust):
    with pytest.raises(RecordingFileError, match=message):
        resample_timestamps("f.csv", stamps, np.zeros((samples, 3)), 50.0, trust_timestamps=trust)


# ---------------------------------------------------------------- unit and content checks


def moving_wrist(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Acc (m/s², gravity + motion) and gyro (rad/s, ~1.5 rad/s typical) of a wrist in motion."""
    rng = np.random.default_rng(seed)
    acc = np.array([0.0, 0.0, G]) + rng.normal(0, 2.0, (500, 3))
    gyro = rng.normal(0, 1.0, (500, 3))
    return acc, gyro


def test_plausible_si_units_pass_through_unchanged():
    acc, gyro = moving_wrist()
    assert check_acc_units("f.csv", acc) is acc and check_gyro_units("f.csv", gyro) is gyro


@pytest.mark.parametrize(("scale", "name"), [(1 / G, "g"), (256 / G, "ADXL345 counts"), (4096 / G, "16-bit counts")])
def test_acc_in_other_units_is_rejected(scale, name):
    acc, _ = moving_wrist()
    with pytest.raises(RecordingFileError, match=r"f.csv: median \|acc\| is .* wrong units"):
        check_acc_units("f.csv", acc * scale)


def test_gyro_in_degrees_per_second_is_rejected():
    _, gyro = moving_wrist()
    with pytest.raises(RecordingFileError, match=r"f.csv: median \|gyro\| is .* \(°/s\)"):
        check_gyro_units("f.csv", np.degrees(gyro))


def test_check_finite_nonempty():
    np.testing.assert_array_equal(check_finite_nonempty("f.csv", "acc", [[1, 2, 3], [4, 5, 6]]), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(RecordingFileError, match="f.csv: acc has 1 samples; the recording is empty or truncated"):
        check_finite_nonempty("f.csv", "acc", np.zeros((1, 3)))
    with pytest.raises(RecordingFileError, match="f.csv: acc contains NaN or infinite values"):
        check_finite_nonempty("f.csv", "acc", np.array([[0.0, np.nan, 0.0]] * 3))
    with pytest.raises(RecordingFileError, match="f.csv: gyro has 2 samples"):
        check_finite_nonempty("f.csv", "gyro", np.zeros((2, 3)), min_samples=3)


# ---------------------------------------------------------------- load_folder


def read_one(item: str):
    """Fake reader: "bad…" items are bad files, "pair…" items hold two recordings."""
    if item.startswith("bad"):
        raise RecordingFileError(item, "truncated")
    if item.startswith("pair"):
        return [recording(source=item), recording(source=item)]
    return recording(source=item)


def test_load_folder_skips_and_reports_bad_files(caplog):
    with caplog.at_level(logging.WARNING):
        report = load_folder(["a", "bad1", "pair", "bad2"], read_one)
    assert isinstance(report, LoadReport) and len(report) == 3
    assert [r.source for r in report.recordings] == ["a", "pair", "pair"]
    assert report.skipped == [("bad1", "truncated"), ("bad2", "truncated")]
    assert "skipped 2 bad files, first: bad1: truncated" in caplog.text


def test_load_folder_raise_stops_at_the_first_bad_file():
    with pytest.raises(RecordingFileError, match="bad1: truncated"):
        load_folder(["a", "bad1", "bad2"], read_one, on_error="raise")
    assert load_folder(["a"], read_one, on_error="raise").skipped == []


def test_load_folder_lets_other_errors_through_and_checks_on_error():
    def broken(item):
        raise KeyError(item)

    with pytest.raises(KeyError):
        load_folder(["a"], broken)
    with pytest.raises(ValueError, match="on_error must be 'skip' or 'raise', got 'ignore'"):
        load_folder(["a"], read_one, on_error="ignore")


def test_check_positions_defaults_to_all_and_names_unknown_ones():
    assert check_positions("X", None, ("waist", "wrist")) == ("waist", "wrist")
    assert check_positions("X", ["wrist"], ("waist", "wrist")) == ("wrist",)
    assert check_positions("X", (), ("waist",)) == ()
    with pytest.raises(ValueError, match=r"positions \['ankle'\] are not X positions"):
        check_positions("X", ("wrist", "ankle"), ("waist", "wrist"))


def test_read_csv_columns_picks_named_columns_and_names_bad_lines():
    text = "t,b,a\n0,1,2\n\n1,3,4\n"
    np.testing.assert_array_equal(read_csv_columns("f.csv", text, ["a", "t"]), [[2.0, 0.0], [4.0, 1.0]])
    for bad, message in [
        ("", "f.csv: empty file"),
        ("t,a\n0,1\n", r"missing columns \['b'\]"),
        ("t,a,b\n0,1\n", "line 2 is truncated or not numeric"),
        ("t,a,b\n0,x,1\n", "line 2 is truncated or not numeric"),
        ("t,a,b\n", "acc has 0 samples"),
    ]:
        with pytest.raises(RecordingFileError, match=message):
            read_csv_columns("f.csv", bad, ["t", "a", "b"], name="acc")


def test_load_parsed_reports_unparsable_files_and_failing_units_separately():
    def parse(path):
        if path.name == "broken":
            raise RecordingFileError(path, "cannot parse")
        return path

    def units_of(path):
        def unit(position):
            if position == "ankle":
                raise RecordingFileError(f"{path}@ankle", "sensor missing")
            return recording(label="walking")

        return (lambda position=position: unit(position) for position in ("wrist", "ankle"))

    report = load_parsed([Path("a"), Path("broken")], parse, units_of)
    assert len(report.recordings) == 1
    assert report.skipped == [("a@ankle", "sensor missing"), ("broken", "cannot parse")]
    with pytest.raises(RecordingFileError, match="sensor missing"):
        load_parsed([Path("a")], parse, units_of, on_error="raise")
