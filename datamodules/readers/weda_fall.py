"""WEDA-FALL (Marques & Moreno, 2023): Fitbit Sense smartwatch on the wrist, acc + gyro, falls and ADLs.

Layout (GitHub joaojtmarques/WEDA-FALL, `dataset/`): `50Hz/{code}/U{user}_R{trial}_{accel,gyro}.csv` with
header `accel_time_list,accel_x_list,accel_y_list,accel_z_list` (gyro: `gyro_…`), time in seconds,
acc in m/s² including gravity, gyro in rad/s; `fall_timestamps.csv` (`filename,start_time,end_time`,
filename `F01/U01_R01`) marks the fall interval of each fall trial. Users U01–U14 are young, U21–U31
elderly (ADLs only).

The timestamps are BLE delivery times: bursts of ~4 samples a millisecond apart, then ~100 ms gaps. They
say when a batch arrived, not when each sample was taken, so samples are spread evenly over the
recording's span (`resample_timestamps(trust_timestamps=False)`) rather than interpolated at their
stamps, which would smear each burst into one instant. The watch's wrist is not documented, hence
position "wrist".
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_gyro_units,
    load_folder,
    read_csv_columns,
    resample_timestamps,
)

ACTIVITIES = {
    "D01": ("walking", "walking"),
    "D02": ("jogging", "running"),
    "D03": ("walking up and downstairs", "stairs"),
    "D04": ("sitting on a chair, wait, get up", "sit_stand"),
    "D05": ("sitting, attempt to get up, collapse into the chair", "sit_stand"),
    "D06": ("crouching, tie shoes, get up", "other"),
    "D07": ("stumble while walking", "stumbling"),
    "D08": ("gently jump (reach a high object)", "jumping"),
    "D09": ("hit table with hand", "other"),
    "D10": ("clapping hands", "other"),
    "D11": ("opening and closing door", "other"),
    "F01": ("fall forward while walking, slip", "falling"),
    "F02": ("lateral fall while walking, slip", "falling"),
    "F03": ("fall backward while walking, slip", "falling"),
    "F04": ("fall forward while walking, trip", "falling"),
    "F05": ("fall backward when trying to sit down", "falling"),
    "F06": ("fall forward while sitting, fainting", "fainting"),
    "F07": ("fall backward while sitting, fainting", "fainting"),
    "F08": ("lateral fall while sitting, fainting", "fainting"),
}
"""Activity code → (description from the dataset's README, shared class)."""


def _read_csv(path: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Times `[T]` (s) and values `[T, 3]` of one sensor file with columns `{prefix}_time_list, …_x/y/z_list`."""
    columns = [f"{prefix}_time_list"] + [f"{prefix}_{axis}_list" for axis in "xyz"]
    if not path.is_file():
        raise RecordingFileError(path, "file not found")
    table = read_csv_columns(path, path.read_text(encoding="utf-8-sig"), columns, name=prefix)
    return table[:, 0], table[:, 1:]


def read_fall_timestamps(path: str | Path) -> dict[str, tuple[float, float]]:
    """`fall_timestamps.csv` → {"F01/U01_R01": (start_s, end_s)}."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"filename", "start_time", "end_time"} <= set(reader.fieldnames):
            raise RecordingFileError(path, f"expected columns filename,start_time,end_time, got {reader.fieldnames}")
        intervals = {}
        for line_number, row in enumerate(reader, start=2):
            try:
                start, end = float(row["start_time"]), float(row["end_time"])
            except (TypeError, ValueError):
                raise RecordingFileError(path, f"line {line_number} is not numeric: {row}") from None
            if not end > start:
                raise RecordingFileError(path, f"line {line_number}: end_time {end} ≤ start_time {start}")
            intervals[row["filename"].strip()] = (start, end)
    return intervals


def read_weda_trial(
    accel_path: str | Path, *, fs: float = 50.0, fall_intervals: dict[str, tuple[float, float]] | None = None
) -> IMURecording:
    """One trial from its `…_accel.csv` (the `…_gyro.csv` beside it is read too), resampled to `fs` Hz."""
    accel_path = Path(accel_path)
    stem = accel_path.name.removesuffix("_accel.csv")
    code = accel_path.parent.name
    if code not in ACTIVITIES or stem == accel_path.name:
        raise RecordingFileError(accel_path, "expected a path like 50Hz/F01/U01_R01_accel.csv")
    user, trial = stem.split("_", 1)
    acc_times, acc = _read_csv(accel_path, "accel")
    gyro_path = accel_path.with_name(f"{stem}_gyro.csv")
    gyro_times, gyro = _read_csv(gyro_path, "gyro")
    acc = check_acc_units(accel_path, resample_timestamps(accel_path, acc_times, acc, fs, trust_timestamps=False))
    gyro = check_gyro_units(gyro_path, resample_timestamps(gyro_path, gyro_times, gyro, fs, trust_timestamps=False))
    # Both streams start at time 0; their spans differ by a sample or two at the end.
    length = min(acc.shape[0], gyro.shape[0])
    events = {}
    key = f"{code}/{stem}"
    if fall_intervals is not None and key in fall_intervals:
        events["fall"] = fall_intervals[key]
    return IMURecording(
        dataset="weda_fall",
        subject=user,
        activity=code,
        label=ACTIVITIES[code][1],
        position="wrist",
        fs=fs,
        acc=acc[:length],
        gyro=gyro[:length],
        trial=trial,
        source=str(accel_path),
        events=events,
    )


def load_weda_fall(
    root: str | Path, *, fs: float = 50.0, activities: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """All trials under `root/50Hz` (optionally only some activity codes), fall intervals attached.

    A fall trial without an interval in `fall_timestamps.csv` is reported and skipped: its label would
    be right but windowing around the fall would not.
    """
    root = Path(root)
    folder = root / "50Hz"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: expected the WEDA-FALL `dataset/` folder as root")
    intervals = read_fall_timestamps(root / "fall_timestamps.csv")
    codes = sorted(ACTIVITIES) if activities is None else list(activities)
    unknown = [code for code in codes if code not in ACTIVITIES]
    if unknown:
        raise ValueError(f"activities {unknown} are not WEDA-FALL codes; choose from {sorted(ACTIVITIES)}")
    paths = [
        path
        for code in codes
        for path in sorted((folder / code).glob("U*_R*_accel.csv"))
        if not path.name.endswith("_vertical_accel.csv")
    ]

    def read(path: Path) -> IMURecording:
        recording = read_weda_trial(path, fs=fs, fall_intervals=intervals)
        if ACTIVITIES[recording.activity][1] in ("falling", "fainting") and "fall" not in recording.events:
            raise RecordingFileError(path, "fall trial has no interval in fall_timestamps.csv")
        return recording

    return load_folder(paths, read, on_error=on_error)
