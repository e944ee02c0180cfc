import math

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.umafall import load_umafall, read_umafall_file
from tests.datamodules.readers.fall_fixtures import (
    SHARED_DATA,
    STANDARD_GRAVITY,
    UMAFALL_COLUMNS,
    constant,
    stamps_ms,
    umafall_header,
    umafall_name,
    umafall_rows,
    umafall_streams,
    write_umafall,
)

# By hand from the dataset's activity names.
EXPECTED_LABELS = {
    "Walking": "walking",
    "Jogging": "running",
    "GoUpstairs": "stairs",
    "GoDownstairs": "stairs",
    "Sitting_GettingUpOnAChair": "sit_stand",
    "LyingDown_OnABed": "lying",
    "Hopping": "jumping",
    "Bending": "other",
    "HandsUp": "other",
    "MakingACall": "other",
    "OpeningDoor": "other",
    "Aplausing": "other",
    "forwardFall": "falling",
    "backwardFall": "falling",
    "lateralFall": "falling",
}
POSITIONS = ("right_pocket", "chest", "waist", "wrist", "ankle")
TOL = 1e-9
"""m/s² and rad/s: a constant is exact through linear interpolation and integer polyphase decimation."""


def test_constant_signals_convert_to_si_at_every_position(tmp_path):
    path = write_umafall(tmp_path, umafall_name(), umafall_streams(duration_s=5.0))
    recordings = {recording.position: recording for recording in read_umafall_file(path)}
    assert sorted(recordings) == sorted(POSITIONS)
    for position, recording in recordings.items():
        np.testing.assert_allclose(recording.acc, np.tile([0, 0, STANDARD_GRAVITY], (len(recording.acc), 1)), atol=TOL)
        names = (recording.dataset, recording.subject, recording.activity, recording.trial)
        assert names == ("umafall", "01", "Walking", "1")
        assert recording.label == "walking" and recording.fs == 50.0 and recording.source == str(path)
        if position == "right_pocket":
            assert recording.gyro is None  # the smartphone logs no gyroscope
        else:
            np.testing.assert_allclose(recording.gyro, np.tile([0, 0, math.pi / 2], (len(recording.gyro), 1)), atol=TOL)
    # Phone: 1001 stamps over 0–5 s at 200 Hz → a 200 Hz grid of 1001 points → ceil(1001 / 4) = 251 at 50 Hz.
    assert recordings["right_pocket"].acc.shape == (251, 3)
    # SensorTag: acc over 0–5 s, gyro over 0.01–5.01 s → common span 4.99 s → 50 Hz grid of floor(249.5) + 1.
    assert recordings["waist"].acc.shape == recordings["waist"].gyro.shape == (250, 3)


def test_jittered_sine_is_resampled_in_time(tmp_path):
    # 1 Hz sine of 0.5 g on x; SensorTag stamps jittered by up to ±6 ms (quantised to 1 ms as in the dataset).
    acc_times = stamps_ms(6.0, 20.0, jitter_ms=6, seed=1)
    gyro_times = stamps_ms(6.0, 20.0, offset_ms=10, jitter_ms=6, seed=2)
    phone_times = stamps_ms(6.0, 200.0, jitter_ms=1, seed=3)

    def sine(times_ms):
        t = times_ms / 1000.0
        return np.stack((0.5 * np.sin(2 * np.pi * t), np.zeros_like(t), np.ones_like(t)), axis=1)

    rows = umafall_rows(2, 0, acc_times, sine(acc_times))
    rows += umafall_rows(2, 1, gyro_times, constant(gyro_times, (0, 0, 90)))
    rows += umafall_rows(0, 0, phone_times, sine(phone_times))
    path = write_umafall(tmp_path, umafall_name(), rows, header=umafall_header(sensor_ids=(0, 2)))
    waist, pocket = read_umafall_file(path, positions=("waist", "right_pocket"))
    start_s = max(acc_times[0], gyro_times[0]) / 1000.0
    t = start_s + np.arange(len(waist.acc)) / 50.0
    error = np.abs(waist.acc[:, 0] - 0.5 * STANDARD_GRAVITY * np.sin(2 * np.pi * t)).max()
    # Linear interpolation of A·sin(ωt) across gaps ≤ h errs ≤ A(ωh)²/8 (0.090 m/s² here, h = 61 ms; measured
    # 0.083); one 20 ms sample of misalignment would err up to Aω·0.02 = 0.62 m/s².
    h = np.diff(acc_times).max() / 1000.0
    assert error <= 0.5 * STANDARD_GRAVITY * (2 * np.pi * h) ** 2 / 8
    t = phone_times[0] / 1000.0 + np.arange(len(pocket.acc)) / 50.0
    inner = (t > t[0] + 0.5) & (t < t[-1] - 0.5)  # decimation filter transients at the ends
    error = np.abs(pocket.acc[inner, 0] - 0.5 * STANDARD_GRAVITY * np.sin(2 * np.pi * t[inner])).max()
    # The decimation filter's gain at 1 Hz is within 1e-3 of 1 (A·1e-3 = 4.9e-3 m/s²; measured total 2.0e-3) plus
    # the interpolation bound over gaps ≤ 7 ms (1.2e-3 m/s²); one 5 ms sample of misalignment would err 0.15.
    h = np.diff(phone_times).max() / 1000.0
    assert error <= 0.5 * STANDARD_GRAVITY * (1e-3 + (2 * np.pi * h) ** 2 / 8)


def test_every_activity_maps_to_its_shared_class(tmp_path):
    rows = umafall_streams(duration_s=1.0, sensor_ids=(2,))
    for activity in EXPECTED_LABELS:
        kind = "Fall" if activity.endswith("Fall") else "ADL"
        write_umafall(tmp_path, umafall_name(activity, kind=kind), rows, header=umafall_header(sensor_ids=(2,)))
    report = load_umafall(tmp_path, positions=("waist",))
    assert report.skipped == []
    assert {recording.activity: recording.label for recording in report.recordings} == EXPECTED_LABELS


def test_folder_loading_skips_and_reports_bad_files_and_bad_positions(tmp_path):
    rows = umafall_streams(duration_s=2.0)
    write_umafall(tmp_path, umafall_name(subject=1), rows)
    write_umafall(tmp_path / "nested", umafall_name(subject=2), rows)
    no_ankle = [row for row in rows if not row[1].endswith(";4;")]
    partial = write_umafall(tmp_path, umafall_name(subject=3), no_ankle, header=umafall_header())
    broken = write_umafall(tmp_path, umafall_name(subject=4), rows + [(99999, "99999;1;0.1")])
    report = load_umafall(tmp_path)
    assert len(report) == 5 + 5 + 4
    last_line = len(umafall_header()) + len(rows) + 1
    assert sorted(report.skipped) == sorted([
        (str(partial), "ankle: accelerometer has 0 samples; the recording is empty or truncated"),
        (str(broken), f"line {last_line} has 3 fields, expected 7 (truncated?)"),
    ])
    with pytest.raises(RecordingFileError, match="Subject_03"):
        load_umafall(tmp_path, on_error="raise")
    with pytest.raises(ValueError, match="positions"):
        load_umafall(tmp_path, positions=("thigh",))
    with pytest.raises(FileNotFoundError):
        load_umafall(tmp_path / "absent")


def test_malformed_magnetometer_values_do_not_cost_the_recording(tmp_path):
    rows = [(t, text.replace(";20.0;", ";1.012.598.156.929.010;")) for t, text in umafall_streams(duration_s=1.0)]
    assert any("1.012.598" in text for _, text in rows)
    path = write_umafall(tmp_path, umafall_name(), rows)
    assert len(read_umafall_file(path)) == 5


def header_without_sensor_id():
    return umafall_header(columns="% TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type;")


def streams_with(position_rows):
    """The waist SensorTag streams (1 s) with `position_rows` appended."""
    return umafall_streams(duration_s=1.0, sensor_ids=(2,)) + position_rows


BAD_FILES = {
    "no column header": (streams_with([]), umafall_header()[:-1], "data before the column header"),
    "missing column": (streams_with([]), header_without_sensor_id(), "columns .* expected"),
    "truncated row": (streams_with([(5000, "5000;99;0.01")]), None, "3 fields, expected 7"),
    "not a number": (streams_with([(1001, "1001;30;1.012.598.156.929.010;0.0;1.0;0;2;")]), None, "not a number"),
    "ids not integers": (streams_with([(1001, "1001;30;0.0;0.0;1.0;acc;2;")]), None, "not integers"),
    "time goes back": (streams_with([(400, "400;30;0.0;0.0;1.0;0;2;"), (1001, "300;31;0.0;0.0;1.0;0;2;")]), None,
                       "backwards"),
    "no sensor map": (streams_with([]), [line for line in umafall_header() if "SensorTag" not in line
                                         and "LG-H815" not in line], "no sensor map"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_raises_an_error_naming_it(tmp_path, case):
    rows, header, reason = BAD_FILES[case]
    path = write_umafall(tmp_path, umafall_name(), rows, header=header)
    with pytest.raises(RecordingFileError, match=reason) as error:
        read_umafall_file(path, positions=("waist",))
    assert error.value.path == str(path) and str(error.value).startswith(str(path))


@pytest.mark.parametrize(
    ("acc", "gyro", "reason"),
    [
        ((0, 0, STANDARD_GRAVITY), (0, 0, 90), "waist: median \\|acc\\|"),  # acc written in m/s², labelled g
        ((0, 0, 1), (0, 0, 1000), "waist: median \\|gyro\\|"),  # 1000 °/s = 17 rad/s
    ],
)
def test_wrong_units_raise(tmp_path, acc, gyro, reason):
    times = stamps_ms(1.0, 20.0)
    rows = umafall_rows(2, 0, times, constant(times, acc)) + umafall_rows(2, 1, times, constant(times, gyro))
    path = write_umafall(tmp_path, umafall_name(), rows, header=umafall_header(sensor_ids=(2,)))
    with pytest.raises(RecordingFileError, match=reason):
        read_umafall_file(path, positions=("waist",))


def test_streams_that_do_not_overlap_raise(tmp_path):
    rows = umafall_rows(2, 0, times := stamps_ms(1.0, 20.0), constant(times, (0, 0, 1)))
    rows += umafall_rows(2, 1, times := stamps_ms(1.0, 20.0, offset_ms=2000), constant(times, (0, 0, 9)))
    path = write_umafall(tmp_path, umafall_name(), rows, header=umafall_header(sensor_ids=(2,)))
    with pytest.raises(RecordingFileError, match="overlap"):
        read_umafall_file(path, positions=("waist",))


@pytest.mark.parametrize(
    ("name", "reason"),
    [("UMAFall_Subject_01_Walking.csv", "file name"), (umafall_name("Swimming"), "unknown activity")],
)
def test_bad_file_name_raises(tmp_path, name, reason):
    path = write_umafall(tmp_path, name, umafall_streams(duration_s=1.0))
    with pytest.raises(RecordingFileError, match=reason):
        read_umafall_file(path)


@pytest.mark.skipif(
    not (SHARED_DATA / "umafall").is_dir(), reason=f"UMAFall not in {SHARED_DATA} (shared data folder lacks it)"
)
def test_real_umafall_file_reads_with_gravity_at_the_waist():
    paths = sorted((SHARED_DATA / "umafall").rglob("UMAFall_Subject_*_ADL_Sitting_GettingUpOnAChair_*.csv"))[:1]
    assert paths, "expected a Sitting_GettingUpOnAChair trial"
    (waist,) = read_umafall_file(paths[0], positions=("waist",))
    assert abs(np.median(np.linalg.norm(waist.acc, axis=1)) - STANDARD_GRAVITY) < 0.1 * STANDARD_GRAVITY
