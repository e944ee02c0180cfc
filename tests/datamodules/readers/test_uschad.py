import math

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.uschad import load_uschad, read_uschad_file
from tests.datamodules.readers.adl_fixtures import (
    acc_signal,
    gyro_signal,
    uschad_fields,
    uschad_readings,
    write_uschad,
)

# Shared classes by hand from the readme's activity list (postures, lifts → "other", see the reader's docstring).
EXPECTED_LABELS = {
    "1": "walking", "2": "walking", "3": "walking", "4": "stairs", "5": "stairs", "6": "running",
    "7": "jumping", "8": "other", "9": "other", "10": "other", "11": "other", "12": "other",
}
EXACT = 1e-12
"""m/s², rad/s: at fs = 100 Hz only the unit conversion touches the values."""
RESAMPLED_TOL = 0.01
"""m/s², rad/s: 100 → 50 Hz polyphase output of the ≤ 1.5 Hz signal, away from the ends."""


def test_unit_conversion_is_exact_on_a_hand_computed_reading(tmp_path):
    # 1 g on z and 90 °/s about x: 9.80665 m/s² and π/2 rad/s.
    readings = np.tile([0.0, 0.0, 1.0, 90.0, 0.0, 0.0], (300, 1))
    path = write_uschad(tmp_path, uschad_fields(readings, 9, 3, 2), subject=2, activity=9, trial=3)
    recording = read_uschad_file(path, fs=100.0)
    np.testing.assert_allclose(recording.acc, np.tile([0.0, 0.0, 9.80665], (300, 1)), rtol=0, atol=EXACT)
    np.testing.assert_allclose(recording.gyro, np.tile([math.pi / 2, 0.0, 0.0], (300, 1)), rtol=0, atol=EXACT)
    assert (recording.dataset, recording.subject, recording.activity, recording.trial) == ("uschad", "2", "9", "3")
    assert (recording.label, recording.position, recording.source) == ("other", "right_hip", str(path))


def test_known_signal_round_trips_and_resamples_to_50_hz(tmp_path):
    t = np.arange(1000) / 100.0
    path = write_uschad(tmp_path, uschad_fields(uschad_readings(t), 1, 1, 1), subject=1, activity=1, trial=1)
    native = read_uschad_file(path, fs=100.0)
    np.testing.assert_allclose(native.acc, acc_signal(t), rtol=0, atol=EXACT)
    np.testing.assert_allclose(native.gyro, gyro_signal(t), rtol=0, atol=EXACT)
    resampled = read_uschad_file(path)
    assert resampled.fs == 50.0 and resampled.acc.shape == (math.ceil(1000 / 2), 3)
    t50 = np.arange(resampled.acc.shape[0]) / 50.0
    inner = slice(25, -25)  # 0.5 s from each end
    assert np.abs(resampled.acc[inner] - acc_signal(t50[inner])).max() < RESAMPLED_TOL
    assert np.abs(resampled.gyro[inner] - gyro_signal(t50[inner])).max() < RESAMPLED_TOL


def test_every_activity_maps_to_its_shared_class_and_the_typo_is_accepted(tmp_path):
    readings = uschad_readings(np.arange(200) / 100.0)
    for activity in range(1, 13):
        write_uschad(tmp_path, uschad_fields(readings, activity, 1, 1), subject=1, activity=activity, trial=1)
    # Subject 13's files spell the field activity_numbr.
    write_uschad(tmp_path, uschad_fields(readings, 5, 2, 13, typo=True), subject=13, activity=5, trial=2)
    report = load_uschad(tmp_path)
    assert report.skipped == []
    assert {r.activity: r.label for r in report.recordings if r.subject == "1"} == EXPECTED_LABELS
    typo = [r for r in report.recordings if r.subject == "13"]
    assert [(r.activity, r.trial, r.label) for r in typo] == [("5", "2", "stairs")]
    assert all(r.acc.shape == (100, 3) for r in report.recordings)


def good_fields(**changes):
    readings = uschad_readings(np.arange(300) / 100.0)
    return {**uschad_fields(readings, 1, 1, 1), **changes}


def without(fields, *names):
    return {name: value for name, value in fields.items() if name not in names}


KNOWN = uschad_readings(np.arange(300) / 100.0)
BAD_FIELDS = {
    "missing readings": (lambda: without(good_fields(), "sensor_readings"), "missing field 'sensor_readings'"),
    "missing activity": (lambda: without(good_fields(), "activity_number"), "missing field 'activity_number'"),
    "five columns": (lambda: good_fields(sensor_readings=KNOWN[:, :5]), r"\[T, 6\]"),
    "empty readings": (lambda: good_fields(sensor_readings=KNOWN[:0]), "empty or truncated"),
    "NaN reading": (lambda: good_fields(sensor_readings=np.where(np.arange(300)[:, None] == 9, np.nan, KNOWN)), "NaN"),
    "acc in m/s²": (lambda: good_fields(sensor_readings=KNOWN * ([9.80665] * 3 + [1] * 3)), r"median \|acc\|"),
    "gyro in counts": (lambda: good_fields(sensor_readings=KNOWN * ([1] * 3 + [100] * 3)), r"median \|gyro\|"),
    "activity out of range": (lambda: good_fields(activity_number="13"), "not one of"),
    "activity not a number": (lambda: good_fields(activity_number="walk"), "not a number"),
    "activity disagrees with name": (lambda: good_fields(activity_number="2"), "disagrees with the file name"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_bad_fields_raise_naming_the_file(tmp_path, case):
    make, reason = BAD_FIELDS[case]
    path = write_uschad(tmp_path, make(), subject=1, activity=1, trial=1)
    with pytest.raises(RecordingFileError, match=reason) as error:
        read_uschad_file(path)
    assert error.value.path == str(path)


def test_unreadable_files_and_bad_paths_raise(tmp_path):
    path = write_uschad(tmp_path, good_fields(), subject=1, activity=1, trial=1)
    data = path.read_bytes()
    for content in (data[: len(data) // 2], b"not a MATLAB file at all"):
        path.write_bytes(content)
        with pytest.raises(RecordingFileError, match="not a readable MATLAB file") as error:
            read_uschad_file(path)
        assert error.value.path == str(path)
    with pytest.raises(RecordingFileError, match="not found"):
        read_uschad_file(tmp_path / "Subject1" / "a2t1.mat")
    with pytest.raises(RecordingFileError, match="Subject1/a1t1.mat"):
        read_uschad_file(tmp_path / "trial.mat")


def test_folder_loading_skips_and_reports_a_bad_file(tmp_path):
    write_uschad(tmp_path, good_fields(), subject=1, activity=1, trial=1)
    bad = write_uschad(tmp_path, without(good_fields(), "sensor_readings"), subject=1, activity=1, trial=2)
    typo = uschad_fields(KNOWN, 1, 1, 13, typo=True)
    write_uschad(tmp_path, typo, subject=13, activity=1, trial=1)
    report = load_uschad(tmp_path)
    assert sorted((r.subject, r.trial) for r in report.recordings) == [("1", "1"), ("13", "1")]
    assert report.skipped == [(str(bad), "missing field 'sensor_readings'")]
    with pytest.raises(RecordingFileError, match="a1t2.mat"):
        load_uschad(tmp_path, on_error="raise")
    assert len(load_uschad(tmp_path, positions=("right_hip",))) == 2
    with pytest.raises(ValueError, match="positions"):
        load_uschad(tmp_path, positions=("waist",))
    with pytest.raises(FileNotFoundError, match="USC-HAD"):
        load_uschad(tmp_path / "missing")
