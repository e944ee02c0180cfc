import re
from pathlib import Path

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.realworld import load_realworld, read_realworld_file
from tests.datamodules.readers.adl_fixtures import (
    REALWORLD_HEADER,
    acc_signal,
    gyro_signal,
    realworld_csv,
    realworld_session,
    write_realworld,
    write_realworld_activity,
    zip_bytes,
)

# Shared classes by hand from the dataset's activity list (postures → "other", see the reader's docstring).
EXPECTED_LABELS = {
    "climbingdown": "stairs",
    "climbingup": "stairs",
    "jumping": "jumping",
    "lying": "other",
    "running": "running",
    "sitting": "other",
    "standing": "other",
    "walking": "walking",
}
EDGE_S = 0.5
"""Output samples this close to either end are left out of value checks (filter edge transients)."""
ACC_TOL = 0.02
GYRO_TOL = 0.01
"""m/s² and rad/s: linear interpolation of the ≤ 1.5 Hz signal between ~20 ms samples errs ≤ 0.005."""


def interior_errors(recording, start_s: float, gyro_offset: float = 0.0) -> tuple[float, float]:
    """Max |error| of acc and gyro against the known signal, away from the ends."""
    t = start_s + np.arange(recording.acc.shape[0]) / recording.fs
    inner = (t > t[0] + EDGE_S) & (t < t[-1] - EDGE_S)
    acc_error = np.abs(recording.acc[inner] - acc_signal(t[inner])).max()
    gyro_error = np.abs(recording.gyro[inner] - gyro_signal(t[inner]) - gyro_offset).max()
    return float(acc_error), float(gyro_error)


@pytest.mark.parametrize("fs", [50.0, 25.0])
def test_pairs_acc_and_gyro_on_their_overlap_and_resamples(tmp_path, fs):
    session = realworld_session(0.0, 20.0, seed=0)
    path = write_realworld_activity(tmp_path, session)
    recordings = read_realworld_file(path, fs=fs)
    assert [r.position for r in recordings] == ["forearm", "waist"]
    start, end = session.overlap_s
    for recording in recordings:
        assert (recording.dataset, recording.subject, recording.activity, recording.label) == (
            "realworld", "1", "walking", "walking")
        assert recording.trial == "1" and recording.fs == fs
        assert "acc_walking_csv.zip/acc_walking_" in recording.source and "Gyroscope_walking_" in recording.source
        # One sample per 1/fs over the overlap, ±1 for the grid's rounding.
        assert abs(recording.acc.shape[0] - ((end - start) * fs + 1)) <= 1
        assert recording.gyro.shape == recording.acc.shape
        acc_error, gyro_error = interior_errors(recording, start)
        assert acc_error < ACC_TOL and gyro_error < GYRO_TOL, (acc_error, gyro_error)


def test_every_activity_maps_to_its_shared_class(tmp_path):
    for index, activity in enumerate(EXPECTED_LABELS):
        session = realworld_session(0.0, 3.0, seed=index)
        write_realworld_activity(tmp_path, session, activity=activity, positions=("waist",))
    report = load_realworld(tmp_path, positions=("waist",))
    assert report.skipped == []
    assert {r.activity: r.label for r in report.recordings} == EXPECTED_LABELS


def test_nested_zips_are_read_in_memory_and_sessions_paired_by_time(tmp_path):
    # As in the real data: acc session 1 sits in acc_climbingup_1_csv.zip, gyro session 1 in
    # gyr_climbingup_csv.zip with no number, and the CSV names of session 1 carry no number either.
    first = realworld_session(0.0, 6.0, seed=1, gyro_offset=0.0)
    second = realworld_session(60.0, 6.0, seed=3, gyro_offset=0.5)
    acc = {
        "acc_climbingup_1_csv.zip": {"acc_climbingup_thigh.csv": realworld_csv(first.acc_times_ms, first.acc)},
        "acc_climbingup_2_csv.zip": {"acc_climbingup_2_thigh.csv": realworld_csv(second.acc_times_ms, second.acc)},
    }
    gyro = {  # listed in the opposite order: pairing must not rely on it
        "gyr_climbingup_2_csv.zip": {
            "Gyroscope_climbingup_2_thigh.csv": realworld_csv(second.gyro_times_ms, second.gyro)},
        "gyr_climbingup_csv.zip": {"Gyroscope_climbingup_thigh.csv": realworld_csv(first.gyro_times_ms, first.gyro)},
    }
    acc, gyro = ({name: zip_bytes(members) for name, members in zips.items()} for zips in (acc, gyro))
    path = write_realworld(tmp_path, 4, "climbingup", acc, gyro)
    recordings = read_realworld_file(path)
    assert [(r.trial, r.position, r.label, r.subject) for r in recordings] == [
        ("1", "thigh", "stairs", "4"), ("2", "thigh", "stairs", "4")]
    assert "acc_climbingup_csv.zip/acc_climbingup_2_csv.zip/acc_climbingup_2_thigh.csv" in recordings[1].source
    for recording, session, offset in zip(recordings, (first, second), (0.0, 0.5)):
        acc_error, gyro_error = interior_errors(recording, session.overlap_s[0], gyro_offset=offset)
        # A swapped pairing would be off by the 0.5 rad/s offset (and by ~60 s of signal).
        assert acc_error < ACC_TOL and gyro_error < GYRO_TOL, (acc_error, gyro_error)


def write_walking(tmp_path, *, acc_csv: bytes | None = None, gyro_csv: bytes | None = None) -> Path:
    """A walking fixture at position waist, its acc or gyro CSV optionally replaced; returns the acc zip."""
    session = realworld_session(0.0, 5.0, seed=0)
    acc = {"acc_walking_waist.csv": acc_csv or realworld_csv(session.acc_times_ms, session.acc)}
    gyro = {"Gyroscope_walking_waist.csv": gyro_csv or realworld_csv(session.gyro_times_ms, session.gyro)}
    return write_realworld(tmp_path, 1, "walking", acc, gyro)


def nan_at_row_7(values):
    return np.where(np.arange(values.shape[0])[:, None] == 7, np.nan, values)


# Each case: (sensor whose CSV is spoilt, (times ms, values) → CSV bytes, expected reason).
BAD_CSVS = {
    "truncated line": ("acc", lambda t, v: realworld_csv(t, v).rstrip(b"\n").rsplit(b",", 2)[0], "line"),
    "missing column": (
        "acc", lambda t, v: realworld_csv(t, v[:, :2], header="id,attr_time,attr_x,attr_y"), "missing columns"),
    "acc in g": ("acc", lambda t, v: realworld_csv(t, v / 9.80665), "median |acc|"),
    "gyro in deg/s": ("gyro", lambda t, v: realworld_csv(t, np.degrees(v)), "median |gyro|"),
    "empty": ("acc", lambda t, v: (REALWORLD_HEADER + "\n").encode(), "empty or truncated"),
    "time in seconds": ("acc", lambda t, v: realworld_csv(t / 1000.0, v), "milliseconds"),
    "NaN value": ("acc", lambda t, v: realworld_csv(t, nan_at_row_7(v)), "NaN"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_raises_naming_the_member(tmp_path, case):
    sensor, spoil, reason = BAD_CSVS[case]
    session = realworld_session(0.0, 5.0, seed=0)
    if sensor == "acc":
        path = write_walking(tmp_path, acc_csv=spoil(session.acc_times_ms, session.acc))
    else:
        path = write_walking(tmp_path, gyro_csv=spoil(session.gyro_times_ms, session.gyro))
    with pytest.raises(RecordingFileError, match=re.escape(reason)) as error:
        read_realworld_file(path)
    member = "acc_walking_csv.zip/acc_walking_waist.csv"
    if sensor == "gyro":
        member = "gyr_walking_csv.zip/Gyroscope_walking_waist.csv"
    assert error.value.path.endswith(member)


def test_bad_archives_raise_naming_the_file(tmp_path):
    path = write_walking(tmp_path)
    with pytest.raises(RecordingFileError, match="no acc_walking\\[_N\\]_head.csv") as error:
        read_realworld_file(path, positions=("head",))
    assert error.value.path == str(path)

    late = realworld_session(100.0, 5.0, seed=0)
    path = write_walking(tmp_path, gyro_csv=realworld_csv(late.gyro_times_ms, late.gyro))
    with pytest.raises(RecordingFileError, match="overlaps") as error:
        read_realworld_file(path)
    assert error.value.path.endswith("acc_walking_waist.csv")

    (path.parent / "gyr_walking_csv.zip").unlink()
    with pytest.raises(RecordingFileError, match="not found") as error:
        read_realworld_file(path)
    assert error.value.path.endswith("gyr_walking_csv.zip")

    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RecordingFileError, match="not a zip") as error:
        read_realworld_file(path)
    assert error.value.path == str(path)

    path.write_bytes(zip_bytes({"acc_walking_2_csv.zip": b"garbage"}))
    with pytest.raises(RecordingFileError, match="nested file is not a zip") as error:
        read_realworld_file(path)
    assert error.value.path.endswith("acc_walking_csv.zip/acc_walking_2_csv.zip")

    path.write_bytes(zip_bytes({"readme.txt": b"no CSV here"}))
    with pytest.raises(RecordingFileError, match="no acc_walking"):
        read_realworld_file(path)

    dancing = path.with_name("acc_dancing_csv.zip")
    dancing.write_bytes(zip_bytes({}))
    with pytest.raises(RecordingFileError, match="unknown activity 'dancing'"):
        read_realworld_file(dancing)
    with pytest.raises(RecordingFileError, match="expected a path like"):
        read_realworld_file(tmp_path / "acc_walking_csv.zip")
    with pytest.raises(ValueError, match="positions"):
        read_realworld_file(path, positions=("wrist",))


def test_folder_loading_skips_and_reports_a_bad_position(tmp_path):
    write_realworld_activity(tmp_path, realworld_session(0.0, 4.0, seed=0), subject=1, activity="walking")
    running = realworld_session(0.0, 4.0, seed=5)
    acc = realworld_csv(running.acc_times_ms, running.acc)
    gyro = realworld_csv(running.gyro_times_ms, running.gyro)
    bad = write_realworld(
        tmp_path, 2, "running",
        {"acc_running_forearm.csv": acc.rstrip(b"\n").rsplit(b",", 2)[0], "acc_running_waist.csv": acc},
        {"Gyroscope_running_forearm.csv": gyro, "Gyroscope_running_waist.csv": gyro},
    )
    report = load_realworld(tmp_path, positions=("forearm", "waist"))
    assert sorted((r.subject, r.activity, r.position) for r in report.recordings) == [
        ("1", "walking", "forearm"), ("1", "walking", "waist"), ("2", "running", "waist")]
    assert len(report.skipped) == 1
    skipped_path, reason = report.skipped[0]
    assert skipped_path == f"{bad}/acc_running_forearm.csv" and "truncated" in reason
    with pytest.raises(RecordingFileError):
        load_realworld(tmp_path, positions=("forearm", "waist"), on_error="raise")
    with pytest.raises(ValueError, match="positions"):
        load_realworld(tmp_path, positions=("wrist",))
    with pytest.raises(FileNotFoundError, match="RealWorld"):
        load_realworld(tmp_path / "missing")
