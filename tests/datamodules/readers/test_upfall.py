import math

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.upfall import load_upfall, read_upfall_file
from tests.datamodules.readers.fall_fixtures import (
    SHARED_DATA,
    STANDARD_GRAVITY,
    UPFALL_PLACES,
    upfall_header,
    upfall_rows,
    upfall_times,
    upfall_trial_path,
    write_upfall,
)

# By hand from the paper's activity list (held postures and picking up → "other").
EXPECTED_LABELS = {
    "1": "falling",
    "2": "falling",
    "3": "falling",
    "4": "falling",
    "5": "falling",
    "6": "walking",
    "7": "other",
    "8": "other",
    "9": "other",
    "10": "jumping",
    "11": "other",
}
POSITIONS = ("left_ankle", "right_pocket", "waist", "neck", "left_wrist")
TOL = 1e-9
"""m/s² and rad/s at the native rate: interpolating a constant onto the grid is exact."""
UPSAMPLED_TOL = 1e-2
"""m/s² and rad/s after 20 → 50 Hz: the polyphase interpolator's per-phase DC gain ripples by < 1e-3."""


def test_constant_signals_convert_to_si_at_every_position(tmp_path):
    path = write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), upfall_rows(upfall_times(41)))
    recordings = read_upfall_file(path, fs=20.0)
    assert [recording.position for recording in recordings] == list(POSITIONS)
    for recording in recordings:
        assert recording.fs == 20.0 and recording.acc.shape == recording.gyro.shape == (41, 3)
        np.testing.assert_allclose(recording.acc, np.tile([0, 0, STANDARD_GRAVITY], (41, 1)), rtol=0, atol=TOL)
        np.testing.assert_allclose(recording.gyro, np.tile([0, math.pi / 4, 0], (41, 1)), rtol=0, atol=TOL)
        assert (recording.dataset, recording.subject, recording.activity, recording.trial) == ("upfall", "1", "6", "1")
        assert recording.label == "walking" and recording.source == str(path)


def test_output_rate_and_length_after_resampling(tmp_path):
    path = write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), upfall_rows(upfall_times(41)))
    (recording,) = read_upfall_file(path, positions=("waist",))
    # 41 samples over 2 s (20 Hz) → ×5/2 polyphase: ceil(41 · 5 / 2) = 103 samples at 50 Hz.
    assert recording.fs == 50.0 and recording.acc.shape == (103, 3)
    np.testing.assert_allclose(recording.acc, np.tile([0, 0, STANDARD_GRAVITY], (103, 1)), rtol=0, atol=UPSAMPLED_TOL)
    np.testing.assert_allclose(recording.gyro, np.tile([0, math.pi / 4, 0], (103, 1)), rtol=0, atol=UPSAMPLED_TOL)


def test_complete_dataset_file_splits_into_trials_with_every_label(tmp_path):
    rows = []
    for activity in range(1, 12):
        rows += upfall_rows(upfall_times(30, jitter_us=3000, seed=activity), activity=activity, subject=4, trial=2)
    write_upfall(tmp_path / "CompleteDataSet.csv", rows)
    report = load_upfall(tmp_path, positions=("neck",))
    assert report.skipped == []
    assert {recording.activity: recording.label for recording in report.recordings} == EXPECTED_LABELS
    assert {(recording.subject, recording.trial, recording.position) for recording in report.recordings} == {
        ("4", "2", "neck")
    }


def test_trial_files_are_preferred_over_the_complete_file(tmp_path):
    rows = upfall_rows(upfall_times(30))
    write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), rows)
    write_upfall(tmp_path / "CompleteDataSet.csv", rows)
    assert len(load_upfall(tmp_path)) == 5


def test_folder_loading_skips_and_reports_bad_files_and_missing_sensors(tmp_path):
    times = upfall_times(30)
    write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), upfall_rows(times))
    write_upfall(upfall_trial_path(tmp_path, 1, 7, 1), upfall_rows(times, activity=7))
    # The pocket IMU of this trial is all zeros, as for some subjects of the dataset.
    rows = upfall_rows(times, subject=5, activity=8)
    for row in rows:
        row[8:14] = ["0"] * 6
    no_pocket = write_upfall(upfall_trial_path(tmp_path, 5, 8, 1), rows)
    truncated = write_upfall(upfall_trial_path(tmp_path, 2, 6, 1), upfall_rows(times) + [[times[-1], "0.1", "0.2"]])
    report = load_upfall(tmp_path)
    assert len(report) == 5 + 5 + 4
    assert sorted(report.skipped) == sorted([
        (str(no_pocket), "subject 5 activity 8 trial 1 right_pocket: the accelerometer recorded only zeros "
                         "(sensor missing)"),
        (str(truncated), "line 33 has 3 cells, expected ≥ 46 (truncated?)"),
    ])
    with pytest.raises(RecordingFileError, match="Subject2Activity6Trial1.csv"):
        load_upfall(tmp_path, on_error="raise")
    with pytest.raises(ValueError, match="positions"):
        load_upfall(tmp_path, positions=("wrist",))
    with pytest.raises(FileNotFoundError):
        load_upfall(tmp_path / "absent")


def rows_with(column: int, text: str, at: int = 5):
    rows = upfall_rows(upfall_times(30))
    rows[at][column] = text
    return rows


# Column 29 is WristAccelerometer x, 0 the time stamp (see `upfall_header`).
UNIT_ERRORS = {
    "not a number": (upfall_header(), rows_with(29, "1.2.3"), "left_wrist: line 8: '1.2.3' is not a number"),
    "nan": (upfall_header(), rows_with(29, "nan"), "left_wrist: acc/gyro contains NaN"),
    "bad time stamp": (upfall_header(), rows_with(0, "yesterday"), "left_wrist: TimeStamps are not ISO"),
    "empty time stamp": (upfall_header(), rows_with(0, ""), "left_wrist: line 8: empty TimeStamps"),
    "time goes back": (upfall_header(), rows_with(0, "2018-07-04T12:04:16.000000"), "timestamps must increase"),
    "missing place": (upfall_header(places=UPFALL_PLACES[:4]), [row[:29] + row[36:] for row in rows_with(1, "0")],
                      "left_wrist: missing columns WristAccelerometer"),
    "unit in header": (upfall_header(acc_unit="m/s^2"), rows_with(1, "0"), "left_wrist: WristAccelerometer is in "
                                                                           "'m/s\\^2', expected 'g'; wrong units"),
    "acc in m/s² labelled g": (upfall_header(), upfall_rows(upfall_times(30), acc_g=(0, 0, 9.8)), "median \\|acc\\|"),
    "gyro far beyond rad/s": (upfall_header(), upfall_rows(upfall_times(30), gyro_dps=(0, 900, 0)),
                              "median \\|gyro\\|"),
    "unknown activity": (upfall_header(), upfall_rows(upfall_times(30), activity=12), "unknown activity id 12"),
}


@pytest.mark.parametrize("case", UNIT_ERRORS)
def test_bad_trial_data_raise_an_error_naming_file_trial_and_position(tmp_path, case):
    header, rows, reason = UNIT_ERRORS[case]
    path = write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), rows, header=header)
    with pytest.raises(RecordingFileError, match=reason) as error:
        read_upfall_file(path, positions=("left_wrist",))
    assert error.value.path == str(path) and str(error.value).startswith(f"{path}: subject 1 activity ")


FILE_ERRORS = {
    "missing meta column": (upfall_header(meta=("Subject", "Activity", "Tag")), "missing columns \\['Trial'\\]"),
    "one header row": ([upfall_header()[0]], "fewer than the two header rows"),
    "no data rows": (upfall_header(), "no data rows"),
}


@pytest.mark.parametrize("case", FILE_ERRORS)
def test_bad_file_raises_an_error_naming_it(tmp_path, case):
    header, reason = FILE_ERRORS[case]
    path = write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), [], header=header)
    with pytest.raises(RecordingFileError, match=reason) as error:
        read_upfall_file(path)
    assert error.value.path == str(path) and str(error.value).startswith(str(path))


def test_non_integer_trial_ids_raise(tmp_path):
    rows = upfall_rows(upfall_times(30))
    rows[3][-2] = "first"
    path = write_upfall(upfall_trial_path(tmp_path, 1, 6, 1), rows)
    with pytest.raises(RecordingFileError, match="line 6: Subject/Activity/Trial are not integers"):
        read_upfall_file(path)


@pytest.mark.skipif(
    not (SHARED_DATA / "upfall").is_dir(), reason=f"UP-Fall not in {SHARED_DATA} (shared data folder lacks it)"
)
def test_real_upfall_trial_reads_with_gravity_at_the_belt():
    paths = sorted((SHARED_DATA / "upfall").rglob("Subject1Activity7Trial1.csv"))
    assert paths, "expected subject 1's standing trial"
    (waist,) = read_upfall_file(paths[0], positions=("waist",))
    assert abs(np.median(np.linalg.norm(waist.acc, axis=1)) - STANDARD_GRAVITY) < 0.1 * STANDARD_GRAVITY
