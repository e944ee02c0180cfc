import math
from pathlib import Path

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.weda_fall import ACTIVITIES, load_weda_fall, read_fall_timestamps, read_weda_trial
from tests.datamodules.readers.fall_fixtures import SHARED_DATA, STANDARD_GRAVITY

# By hand from the dataset README's tables 1 and 2 (see the reader's docstring).
EXPECTED_LABELS = {
    "D01": "walking",
    "D02": "running",
    "D03": "stairs",
    "D04": "sit_stand",
    "D05": "sit_stand",
    "D06": "other",
    "D07": "stumbling",
    "D08": "jumping",
    "D09": "other",
    "D10": "other",
    "D11": "other",
    **{f"F0{i}": "falling" for i in range(1, 6)},
    **{f"F0{i}": "fainting" for i in range(6, 9)},
}
FS = 50.0
ACC_SAMPLES, GYRO_SAMPLES = 201, 197
"""4·50 + 1 and 4·49 + 1 samples (4 s and 3.92 s at 50 Hz): BLE bursts of 4, the last sample opening its own."""
GYRO_RAD_S = (0.5, -0.25, 0.125)
TOL = 1e-9
"""m/s², rad/s: at 50 Hz in and out the evenly spread samples come back unchanged."""


def burst_stamps(samples: int) -> np.ndarray:
    """Delivery times in s: batches of 4 samples stamped 1 ms apart, one batch every 4/50 s."""
    index = np.arange(samples)
    return (index // 4) * 4 / FS + (index % 4) * 1e-3


def acc_signal(samples: int) -> np.ndarray:
    """`[T, 3]` m/s²: a 1 Hz, 2 m/s² sine on x and gravity on z, at the true 50 Hz sample times."""
    t = np.arange(samples) / FS
    return np.stack((2.0 * np.sin(2 * math.pi * t), 0 * t, STANDARD_GRAVITY + 0 * t), axis=1)


def sensor_csv(prefix: str, values: np.ndarray) -> str:
    lines = [f"{prefix}_time_list,{prefix}_x_list,{prefix}_y_list,{prefix}_z_list"]
    lines += [f"{t!r},{x!r},{y!r},{z!r}" for t, (x, y, z) in zip(burst_stamps(len(values)).tolist(), values.tolist())]
    return "\n".join(lines) + "\n"


def write_trial(root: Path, code: str, stem: str = "U01_R01", *, acc_scale: float = 1.0) -> Path:
    """`root/50Hz/<code>/<stem>_{accel,gyro,vertical_accel}.csv` in the WEDA-FALL layout."""
    folder = root / "50Hz" / code
    folder.mkdir(parents=True, exist_ok=True)
    accel = folder / f"{stem}_accel.csv"
    accel.write_text(sensor_csv("accel", acc_signal(ACC_SAMPLES) * acc_scale))
    (folder / f"{stem}_gyro.csv").write_text(sensor_csv("gyro", np.tile(GYRO_RAD_S, (GYRO_SAMPLES, 1))))
    # Gravity-free acceleration in world axes, columns in another order: the reader must not take it for a trial.
    (folder / f"{stem}_vertical_accel.csv").write_text(
        "vertical_Accel_x,vertical_Accel_y,vertical_Accel_z,accel_time_list\n0.6,-5.9,-7.1,0.0\n1.0,-6.8,-7.0,0.001\n"
    )
    return accel


def write_fall_timestamps(root: Path, intervals: dict[str, tuple[float, float]]) -> Path:
    """`fall_timestamps.csv` as published: UTF-8 byte-order mark, CRLF line ends."""
    path = root / "fall_timestamps.csv"
    rows = ["filename,start_time,end_time"] + [f"{key},{start},{end}" for key, (start, end) in intervals.items()]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8-sig"))
    return path


def fall_intervals(codes) -> dict[str, tuple[float, float]]:
    return {f"{code}/U01_R01": (1.5 + 0.1 * i, 2.5 + 0.1 * i) for i, code in enumerate(codes) if code[0] == "F"}


@pytest.fixture
def weda_root(tmp_path) -> Path:
    """One trial U01_R01 of every activity code and the fall interval of every fall trial."""
    for code in ACTIVITIES:
        write_trial(tmp_path, code)
    write_fall_timestamps(tmp_path, fall_intervals(ACTIVITIES))
    return tmp_path


def test_a_trial_in_si_units_at_50_hz(tmp_path):
    path = write_trial(tmp_path, "F03")
    recording = read_weda_trial(path, fall_intervals={"F03/U01_R01": (1.2, 2.2), "F03/U01_R02": (9.0, 10.0)})
    # The two streams share time 0; the shorter (gyro) sets the length.
    assert recording.fs == FS and recording.acc.shape == recording.gyro.shape == (GYRO_SAMPLES, 3)
    np.testing.assert_allclose(recording.acc, acc_signal(ACC_SAMPLES)[:GYRO_SAMPLES], rtol=0, atol=TOL)
    np.testing.assert_allclose(recording.gyro, np.tile(GYRO_RAD_S, (GYRO_SAMPLES, 1)), rtol=0, atol=TOL)
    names = (recording.dataset, recording.subject, recording.trial, recording.activity, recording.position)
    assert names == ("weda_fall", "U01", "R01", "F03", "wrist")
    assert (recording.label, recording.safety, recording.source) == ("falling", "unsafe", str(path))
    assert recording.events == {"fall": (1.2, 2.2)}
    assert read_weda_trial(path).events == {}


def test_resampled_to_the_requested_rate(tmp_path):
    recording = read_weda_trial(write_trial(tmp_path, "D01"), fs=25.0)
    # ceil(201 / 2) = 101 acc and ceil(197 / 2) = 99 gyro samples at 25 Hz.
    assert recording.fs == 25.0 and recording.acc.shape == (99, 3)
    truth = acc_signal(ACC_SAMPLES)[::2][:99]
    edge = 13  # 0.5 s of filter start-up at each end
    np.testing.assert_allclose(recording.acc[edge:-edge], truth[edge:-edge], rtol=0, atol=2e-3 * 2.0)
    np.testing.assert_allclose(recording.gyro, np.tile(GYRO_RAD_S, (99, 1)), rtol=0, atol=1e-9)


def test_every_activity_code_gets_its_label_and_every_fall_its_interval(weda_root):
    report = load_weda_fall(weda_root)
    assert report.skipped == []
    assert sorted(r.activity for r in report.recordings) == sorted(EXPECTED_LABELS)  # vertical_accel ignored
    intervals = fall_intervals(ACTIVITIES)
    for recording in report.recordings:
        assert recording.label == EXPECTED_LABELS[recording.activity], recording.activity
        assert recording.safety == ("unsafe" if recording.label in ("stumbling", "falling", "fainting") else "safe")
        expected_events = {"fall": intervals[f"{recording.activity}/U01_R01"]} if recording.activity[0] == "F" else {}
        assert recording.events == expected_events, recording.activity
    assert set(ACTIVITIES) == set(EXPECTED_LABELS)


def test_activities_selects_codes(weda_root):
    report = load_weda_fall(weda_root, activities=("F08", "D02"))
    assert [r.activity for r in report.recordings] == ["F08", "D02"]
    with pytest.raises(ValueError, match=r"activities \['D12'\] are not WEDA-FALL codes"):
        load_weda_fall(weda_root, activities=("D01", "D12"))


def test_fall_trial_without_interval_is_skipped_and_reported(tmp_path):
    write_trial(tmp_path, "F01")
    missing = write_trial(tmp_path, "F06", "U02_R03")
    write_trial(tmp_path, "D01")
    write_fall_timestamps(tmp_path, {"F01/U01_R01": (1.0, 2.0)})
    report = load_weda_fall(tmp_path)
    assert [r.activity for r in report.recordings] == ["D01", "F01"]
    assert report.skipped == [(str(missing), "fall trial has no interval in fall_timestamps.csv")]
    with pytest.raises(RecordingFileError, match="U02_R03_accel.csv: fall trial has no interval"):
        load_weda_fall(tmp_path, on_error="raise")


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: replace_line(p, 40, "0.7,1.5"), r"accel.csv: line 40 is truncated or not numeric: \['0.7', '1.5'\]"),
        (lambda p: replace_line(p, 7, "0.1,0.2,x,9.8"), "accel.csv: line 7 is truncated or not numeric"),
        (lambda p: replace_line(p, 1, "accel_time_list,accel_x_list,accel_y_list"),
         r"accel.csv: missing columns \['accel_z_list'\]"),
        (lambda p: p.write_text(""), "accel.csv: empty file"),
        (lambda p: p.write_text("accel_time_list,accel_x_list,accel_y_list,accel_z_list\n"),
         "accel.csv: accel has 0 samples"),
        (lambda p: replace_line(p, 9, "0.1,nan,0.0,9.8"), "accel.csv: accel contains NaN"),
        (lambda p: p.with_name("U01_R01_gyro.csv").unlink(), "U01_R01_gyro.csv: file not found"),
        (lambda p: p.with_name("U01_R01_gyro.csv").write_text("gyro_time_list,gyro_x_list\n0,1\n"),
         r"U01_R01_gyro.csv: missing columns \['gyro_y_list', 'gyro_z_list'\]"),
    ],
)
def test_bad_files_raise_naming_the_file_and_are_skipped_by_the_loader(tmp_path, damage, message):
    path = write_trial(tmp_path, "D04")
    write_fall_timestamps(tmp_path, {})
    damage(path)
    with pytest.raises(RecordingFileError, match=message):
        read_weda_trial(path)
    report = load_weda_fall(tmp_path)
    assert report.recordings == [] and len(report.skipped) == 1 and report.skipped[0][0].endswith(".csv")


def test_acc_written_in_g_is_caught(tmp_path):
    path = write_trial(tmp_path, "D01", acc_scale=1 / STANDARD_GRAVITY)
    with pytest.raises(RecordingFileError, match=r"U01_R01_accel.csv: median \|acc\| is 1.* wrong units"):
        read_weda_trial(path)


def test_path_outside_the_layout_is_rejected(tmp_path):
    path = write_trial(tmp_path, "D01")
    renamed = path.rename(path.with_name("U01_R01_acc.csv"))
    with pytest.raises(RecordingFileError, match="expected a path like 50Hz/F01/U01_R01_accel.csv"):
        read_weda_trial(renamed)
    other = tmp_path / "X01"
    other.mkdir()
    with pytest.raises(RecordingFileError, match="expected a path like"):
        read_weda_trial(other / "U01_R01_accel.csv")


def test_fall_timestamps_with_byte_order_mark(tmp_path):
    path = write_fall_timestamps(tmp_path, {"F01/U01_R01": (4.7, 7.7), "F08/U14_R03": (3.0, 6.5)})
    assert path.read_bytes().startswith(b"\xef\xbb\xbffilename")
    assert read_fall_timestamps(path) == {"F01/U01_R01": (4.7, 7.7), "F08/U14_R03": (3.0, 6.5)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,start_time,end_time\nF01/U01_R01,1,2\n", "expected columns filename,start_time,end_time"),
        ("", "expected columns filename,start_time,end_time, got None"),
        ("filename,start_time,end_time\nF01/U01_R01,1,2\nF01/U01_R02,one,2\n", "line 3 is not numeric"),
        ("filename,start_time,end_time\nF01/U01_R01,1\n", "line 2 is not numeric"),
        ("filename,start_time,end_time\nF01/U01_R01,2.0,2.0\n", "line 2: end_time 2.0 ≤ start_time 2.0"),
    ],
)
def test_bad_fall_timestamps_raise_naming_the_file(tmp_path, text, message):
    path = tmp_path / "fall_timestamps.csv"
    path.write_text(text)
    with pytest.raises(RecordingFileError, match=f"fall_timestamps.csv: {message}"):
        read_fall_timestamps(path)


def test_root_without_the_50hz_folder_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="50Hz not found"):
        load_weda_fall(tmp_path)


WEDA = SHARED_DATA / "weda_fall"


@pytest.mark.skipif(
    not (WEDA / "50Hz").is_dir(), reason=f"WEDA-FALL not in {SHARED_DATA} (shared data folder lacks it)"
)
def test_real_weda_fall_walking_and_forward_falls():
    codes = ("D01", "F01")
    report = load_weda_fall(WEDA, activities=codes)
    # Every trial with a gyro file loads (the trial count comes from the folder, not from this file).
    trials = sum(len(list((WEDA / "50Hz" / code).glob("U*_R*_gyro.csv"))) for code in codes)
    assert report.skipped == [] and len(report) == trials > 0
    acc = np.concatenate([r.acc for r in report.recordings])
    # A wrist at rest or walking measures gravity most of the time: median |acc| within 0.5 m/s² of 1 g.
    assert abs(np.median(np.linalg.norm(acc, axis=1)) - STANDARD_GRAVITY) < 0.5
    for recording in report.recordings:
        assert recording.fs == FS and np.isfinite(recording.imu).all()
        assert recording.label == EXPECTED_LABELS[recording.activity]
        if recording.activity == "F01":
            start, end = recording.events["fall"]
            assert 0 <= start < end <= recording.duration_s, recording.source
        else:
            assert recording.events == {}
