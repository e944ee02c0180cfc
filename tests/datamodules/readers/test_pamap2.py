import math

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.pamap2 import load_pamap2, read_pamap2_file
from tests.datamodules.readers.adl_fixtures import (
    acc_signal,
    gyro_signal,
    pamap2_table,
    pamap2_text,
    pamap2_times,
    write_pamap2,
)

# Shared classes by hand from the readme's activity list (postures → "other", see the reader's docstring).
EXPECTED_LABELS = {
    "1": "other", "2": "other", "3": "other", "4": "walking", "5": "running", "6": "other",
    "7": "walking", "9": "other", "10": "other", "11": "other", "12": "stairs", "13": "stairs",
    "16": "other", "17": "other", "18": "other", "19": "other", "20": "other", "24": "jumping",
}
EXACT = 1e-9
"""m/s², rad/s: at fs = 100 Hz values pass through (bar float rounding of the 2-decimal timestamps)."""
RESAMPLED_TOL = 0.01
"""m/s², rad/s: 100 → 50 Hz polyphase output of the ≤ 1.5 Hz signal, away from the ends (measured 6e-4)."""


def walking_file(tmp_path, *, subject="101", seconds=10.0, start_s=5.0, session="Protocol"):
    times = pamap2_times(start_s, int(seconds * 100) + 1)
    table = pamap2_table(times, np.full(times.shape, 4))
    return table, tmp_path / session / f"subject{subject}.dat"


def test_values_positions_and_metadata_pass_through_at_100_hz(tmp_path):
    table, path = walking_file(tmp_path)
    write_pamap2(path, table)
    recordings = read_pamap2_file(path, fs=100.0)
    assert [r.position for r in recordings] == ["right_wrist", "chest", "right_ankle"]
    for index, recording in enumerate(recordings):
        assert (recording.dataset, recording.subject, recording.activity, recording.label, recording.trial) == (
            "pamap2", "101", "4", "walking", "protocol@5.00s")
        assert recording.acc.shape == (1001, 3)
        # ±16 g accelerometer (the ±6 g columns read +5 m/s²) and the gyroscope, per IMU block.
        np.testing.assert_allclose(recording.acc, acc_signal(table[:, 0] + index), atol=EXACT)
        np.testing.assert_allclose(recording.gyro, gyro_signal(table[:, 0] + index), atol=EXACT)


def test_resamples_to_50_hz_and_left_handed_subject(tmp_path):
    table, path = walking_file(tmp_path, subject="108")
    write_pamap2(path, table)
    recordings = read_pamap2_file(path, positions=("hand", "ankle"))
    assert [r.position for r in recordings] == ["left_wrist", "left_ankle"]
    hand = recordings[0]
    assert hand.fs == 50.0 and hand.acc.shape == (math.ceil(1001 / 2), 3)
    t = 5.0 + np.arange(hand.acc.shape[0]) / 50.0
    inner = slice(25, -25)  # 0.5 s from each end
    assert np.abs(hand.acc[inner] - acc_signal(t[inner])).max() < RESAMPLED_TOL
    assert np.abs(hand.gyro[inner] - gyro_signal(t[inner])).max() < RESAMPLED_TOL


def test_every_activity_maps_to_its_shared_class_and_transients_are_dropped(tmp_path):
    ids = []
    for activity in EXPECTED_LABELS:
        ids += [0] * 50 + [int(activity)] * 150  # 0.5 s transient, then 1.5 s of the activity
    ids = np.array(ids + [0] * 50)
    path = write_pamap2(tmp_path / "Protocol" / "subject101.dat", pamap2_table(pamap2_times(0.0, ids.shape[0]), ids))
    recordings = read_pamap2_file(path, positions=("chest",))
    assert [r.activity for r in recordings] == list(EXPECTED_LABELS)
    assert {r.activity: r.label for r in recordings} == EXPECTED_LABELS
    assert [r.acc.shape[0] for r in recordings] == [75] * len(EXPECTED_LABELS)  # 150 rows → 75 at 50 Hz


def with_nan_rows(table, first, count, columns):
    table = table.copy()
    table[first : first + count, columns] = np.nan
    return table


HAND_ACC_X, HAND_GYRO_Z = 4, 12


@pytest.mark.parametrize("missing, column", [(6, HAND_ACC_X), (9, HAND_GYRO_Z)])
def test_short_nan_gaps_are_interpolated_linearly(tmp_path, missing, column):
    # `missing` NaN rows after row 299 leave valid rows 299 and 300 + missing, (missing + 1) × 0.01 ≤ 0.1 s apart.
    table, path = walking_file(tmp_path)
    write_pamap2(path, with_nan_rows(table, 300, missing, column))
    hand = read_pamap2_file(path, fs=100.0, positions=("hand",))
    assert len(hand) == 1 and hand[0].acc.shape == (1001, 3)
    before, after = table[299, 4:7], table[300 + missing, 4:7]
    steps = np.arange(1, missing + 1)[:, None] / (missing + 1)
    np.testing.assert_allclose(hand[0].acc[300 : 300 + missing], before + steps * (after - before), atol=EXACT)
    untouched = read_pamap2_file(path, fs=100.0, positions=("chest",))[0]
    np.testing.assert_allclose(untouched.acc, acc_signal(table[:, 0] + 1), atol=EXACT)


def test_long_nan_gaps_split_the_recording_and_short_pieces_are_dropped(tmp_path):
    table, path = walking_file(tmp_path)
    # 10 NaN rows (valid rows 0.11 s apart) split at row 300; NaN rows 600–649 and 700–749 leave a 0.49 s
    # island (rows 650–699) that is dropped; the rest is rows 750–1000.
    table = with_nan_rows(table, 300, 10, HAND_ACC_X)
    table = with_nan_rows(with_nan_rows(table, 600, 50, HAND_ACC_X), 700, 50, HAND_ACC_X)
    write_pamap2(path, table)
    pieces = read_pamap2_file(path, fs=100.0, positions=("hand",))
    assert [(r.trial, r.acc.shape[0]) for r in pieces] == [
        ("protocol@5.00s", 300), ("protocol@8.10s", 290), ("protocol@12.50s", 251)]
    for piece, first_row in zip(pieces, (0, 310, 750)):
        rows = slice(first_row, first_row + piece.acc.shape[0])
        np.testing.assert_allclose(piece.acc, acc_signal(table[rows, 0]), atol=EXACT)


def rewrite(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def changed(table, rows, columns, function):
    table = table.copy()
    table[rows, columns] = function(table[rows, columns])
    return pamap2_text(table)


# Each case: (table → file text, expected reason). Row 400 is on line 401.
BAD_FILES = {
    "truncated line": (lambda table: pamap2_text(table)[:-200], "truncated or malformed"),
    "non-numeric value": (lambda table: pamap2_text(table).replace("31.5", "abc", 1), "truncated or malformed"),
    "53 columns": (lambda table: pamap2_text(table[:, :53]), "53 columns, expected 54"),
    "empty": (lambda table: "", "empty file"),
    "acc in g": (lambda table: changed(table, slice(None), slice(4, 7), lambda v: v / 9.80665), "median |acc|"),
    "gyro in deg/s": (lambda table: changed(table, slice(None), slice(10, 13), np.degrees), "median |gyro|"),
    "time in ms": (lambda table: changed(table, slice(None), 0, lambda t: t * 1000), "expected 0.01 s"),
    "time goes back": (lambda table: changed(table, 400, 0, lambda t: t - 0.02), "do not increase at line 401"),
    "unknown activity": (lambda table: changed(table, slice(200, None), 1, lambda i: 8), r"unknown activityIDs \[8\]"),
    "only transients": (lambda table: changed(table, slice(None), 1, lambda i: 0), "no labelled"),
    "NaN timestamp": (lambda table: pamap2_text(table).replace("5.50 4", "NaN 4", 1), "NaN in the timestamp"),
    "fractional activityID": (lambda table: pamap2_text(table).replace("5.50 4", "5.50 4.5", 1), "non-integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_naming_it(tmp_path, case):
    table, path = walking_file(tmp_path, seconds=5.0)
    make_text, reason = BAD_FILES[case]
    rewrite(path, make_text(table))
    with pytest.raises(RecordingFileError, match=reason.replace("|", r"\|")) as error:
        read_pamap2_file(path)
    assert error.value.path == str(path)


def test_bad_name_missing_file_and_positions(tmp_path):
    table, path = walking_file(tmp_path)
    other = write_pamap2(tmp_path / "Protocol" / "subj1.dat", table)
    with pytest.raises(RecordingFileError, match="subject101.dat"):
        read_pamap2_file(other)
    with pytest.raises(RecordingFileError, match="not found"):
        read_pamap2_file(path)
    with pytest.raises(ValueError, match="positions"):
        read_pamap2_file(path, positions=("wrist",))


def test_folder_loading_skips_and_reports_a_bad_file(tmp_path):
    table, path = walking_file(tmp_path)
    write_pamap2(path, table)
    write_pamap2(tmp_path / "Optional" / "subject101.dat", table)
    bad = rewrite(tmp_path / "Protocol" / "subject102.dat", pamap2_text(table)[:-100])
    report = load_pamap2(tmp_path, positions=("hand", "chest"))
    assert sorted({r.trial for r in report.recordings}) == ["optional@5.00s", "protocol@5.00s"]
    assert len(report.recordings) == 4
    assert [skipped for skipped, _ in report.skipped] == [str(bad)]
    with pytest.raises(RecordingFileError, match="subject102.dat"):
        load_pamap2(tmp_path, on_error="raise")
    with pytest.raises(ValueError, match="positions"):
        load_pamap2(tmp_path, positions=("wrist",))
    with pytest.raises(FileNotFoundError, match="PAMAP2_Dataset"):
        load_pamap2(tmp_path / "missing")
