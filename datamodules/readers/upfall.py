"""UP-Fall (Martínez-Villaseñor et al., "UP-Fall Detection Dataset: A Multimodal Approach", Sensors 19(9):1988,
2019; data at sites.google.com/up.edu.mx/har-up): 17 young subjects, 11 activities, 3 trials each.

Facts we rely on (the paper and the authors' code, GitHub jpnm561/HAR-UP, FeatureExtraction/):

- Sensor data are comma-separated CSVs, either one per trial (`Subject1/Activity1/Trial1/
  Subject1Activity1Trial1.csv`) or all trials in one `CompleteDataSet.csv`, with the same columns.
- Two header rows. Row 1 names the sensor, written once over its columns (the cells after it are blank):
  `TimeStamps`, then per IMU `<Place>Accelerometer` (3 columns), `<Place>AngularVelocity` (3),
  `<Place>Luminosity` (1) for Place = Ankle, RightPocket, Belt, Neck, Wrist; then `BrainSensor`,
  `Infrared1`–`Infrared6`, `Subject`, `Activity`, `Trial`, `Tag`. Row 2 names the axes with their unit:
  `x-axis (g)` … for accelerometers, `x-axis (deg/s)` … for angular velocity.
- `TimeStamps` are ISO date-times (`2018-07-04T12:04:17.738369`), irregular, ~18 Hz for the wearables:
  resampled with `resample_timestamps`, taking them as sample times (all modalities share them).
- Wearables (Mbientlab MetaSensor) at the left ankle, right trouser pocket, belt (middle of the waist),
  under the neck and the left wrist → positions "left_ankle", "right_pocket", "waist", "neck",
  "left_wrist".
- Activity ids: 1 falling forward using hands, 2 falling forward using knees, 3 falling backwards,
  4 falling sideward, 5 falling sitting in empty chair, 6 walking, 7 standing, 8 sitting, 9 picking up
  an object, 10 jumping, 11 laying.
- Some trials lack a sensor (e.g. the pocket IMU of some subjects is all zeros): such a (trial, position)
  is reported and skipped, the trial's other positions are kept.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_finite_nonempty,
    check_gyro_units,
    check_positions,
    load_parsed,
    resample_timestamps,
)
from virtual_imu.conventions import STANDARD_GRAVITY

PLACES = {"left_ankle": "Ankle", "right_pocket": "RightPocket", "waist": "Belt", "neck": "Neck", "left_wrist": "Wrist"}
"""Our position name → the sensor-name prefix in the header."""
UNITS = {"Accelerometer": "g", "AngularVelocity": "deg/s"}
"""Sensor-name suffix → the unit its axis columns must state."""
META_COLUMNS = ("TimeStamps", "Subject", "Activity", "Trial")

ACTIVITIES = {
    1: ("falling forward using hands", "falling"),
    2: ("falling forward using knees", "falling"),
    3: ("falling backwards", "falling"),
    4: ("falling sideward", "falling"),
    5: ("falling sitting in empty chair", "falling"),
    6: ("walking", "walking"),
    7: ("standing", "other"),
    8: ("sitting", "other"),
    9: ("picking up an object", "other"),
    10: ("jumping", "jumping"),
    11: ("laying", "other"),
}
"""Activity id → (description from the paper, shared class). Standing, sitting and laying are held postures
(60 s each in the protocol), not the transitions the shared "sit_stand" and "lying" classes stand for, so
they map to "other", as the postures of the other readers do."""

AXIS_LABEL = re.compile(r"^(?P<axis>[xyz])-axis \((?P<unit>[^)]*)\)$")
TRIAL_FILE = re.compile(r"^Subject\d+Activity\d+Trial\d+\.csv$")
COMPLETE_FILE = "CompleteDataSet.csv"

TrialKey = tuple[int, int, int]
"""(subject, activity, trial)."""


@dataclass
class UPFallTable:
    """One parsed CSV.

    Attributes:
        times: ISO timestamp text per data row.
        line_numbers: `[R]` file line of each data row.
        rows_of: row indices of each trial, in order of first appearance.
        values: `[R, 6 * len(PLACES)]` acc xyz (g) then gyro xyz (°/s) per place in `PLACES` order; NaN
            where a cell is not a number or the place's columns are missing.
        place_problems: place → why its columns cannot be used (missing, wrong unit).
        bad_cells: values column → (row, text) of the cells that are not numbers.
    """

    path: Path
    times: list[str]
    line_numbers: np.ndarray
    rows_of: dict[TrialKey, np.ndarray]
    values: np.ndarray
    place_problems: dict[str, str]
    bad_cells: dict[int, list[tuple[int, str]]]


def _header_columns(
    path: Path, names: list[str], axes: list[str]
) -> tuple[dict[str, int], dict[str, list[int]], dict[str, str]]:
    """Meta column indices, the 6 IMU column indices per place, and the places whose columns are unusable."""
    filled, current = [], ""
    for name in names:
        current = name.strip() or current  # a sensor's name is written over its first column only
        filled.append(current)
    missing = [name for name in META_COLUMNS if name not in filled]
    if missing:
        raise RecordingFileError(path, f"missing columns {missing} in the first header row")
    meta = {name: filled.index(name) for name in META_COLUMNS}
    imu_columns, problems = {}, {}
    for position, place in PLACES.items():
        indices = []
        for sensor, unit in UNITS.items():
            name = place + sensor
            block = [i for i, cell in enumerate(filled) if cell == name][:3]
            labels = [AXIS_LABEL.match(axes[i].strip()) if i < len(axes) else None for i in block]
            if len(block) < 3 or not all(labels) or [label["axis"] for label in labels] != list("xyz"):
                problems[position] = f"missing columns {name} x-axis, y-axis, z-axis"
                break
            wrong = [label["unit"] for label in labels if label["unit"] != unit]
            if wrong:
                problems[position] = f"{name} is in {wrong[0]!r}, expected {unit!r}; wrong units"
                break
            indices += block
        if position not in problems:
            imu_columns[position] = indices
    return meta, imu_columns, problems


def parse_upfall_file(path: str | Path) -> UPFallTable:
    """Reads one UP-Fall CSV (a trial file or `CompleteDataSet.csv`); file-level problems raise."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [next(reader, None), next(reader, None)]
            if header[1] is None:
                raise RecordingFileError(path, "fewer than the two header rows")
            meta, imu_columns, problems = _header_columns(path, header[0], header[1])
            needed = max([*meta.values(), *(i for indices in imu_columns.values() for i in indices)]) + 1
            times, line_numbers, keys, values = [], [], [], []
            bad_cells: dict[int, list[tuple[int, str]]] = {}
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                line_number = reader.line_num
                if len(row) < needed:
                    reason = f"line {line_number} has {len(row)} cells, expected ≥ {needed} (truncated?)"
                    raise RecordingFileError(path, reason)
                try:
                    keys.append(tuple(_integer(row[meta[name]]) for name in META_COLUMNS[1:]))
                except ValueError:
                    reason = f"line {line_number}: Subject/Activity/Trial are not integers"
                    raise RecordingFileError(path, reason) from None
                times.append(row[meta["TimeStamps"]].strip())
                line_numbers.append(line_number)
                values.append(_imu_values(row, imu_columns, len(values), bad_cells))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RecordingFileError(path, f"cannot read: {error}") from None
    if not times:
        raise RecordingFileError(path, "no data rows after the header; the recording is empty")
    rows_of: dict[TrialKey, list[int]] = {}
    for row_index, key in enumerate(keys):
        rows_of.setdefault(key, []).append(row_index)
    return UPFallTable(
        path=path,
        times=times,
        line_numbers=np.asarray(line_numbers),
        rows_of={key: np.asarray(rows) for key, rows in rows_of.items()},
        values=np.asarray(values, dtype=np.float64),
        place_problems=problems,
        bad_cells=bad_cells,
    )


def _integer(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


def _imu_values(
    row: list[str], imu_columns: dict[str, list[int]], row_index: int, bad_cells: dict[int, list[tuple[int, str]]]
) -> list[float]:
    """The 6 IMU values per place of one row; NaN (noted in `bad_cells`) where a cell is not a number."""
    values = [float("nan")] * (6 * len(PLACES))
    for place_index, position in enumerate(PLACES):
        for offset, column in enumerate(imu_columns.get(position, ())):
            value_index = 6 * place_index + offset
            try:
                values[value_index] = float(row[column])
            except ValueError:
                bad_cells.setdefault(value_index, []).append((row_index, row[column]))
    return values


def upfall_recording(table: UPFallTable, key: TrialKey, position: str, *, fs: float = 50.0) -> IMURecording:
    """One trial at one position, in SI units at `fs` Hz; errors name the file, trial and position."""
    subject, activity, trial = key
    try:
        if activity not in ACTIVITIES:
            raise RecordingFileError(table.path, f"unknown activity id {activity}; UP-Fall has 1–11")
        acc, gyro = _trial_signals(table, table.rows_of[key], position, fs)
    except RecordingFileError as error:
        unit = f"subject {subject} activity {activity} trial {trial} {position}"
        raise RecordingFileError(table.path, f"{unit}: {error.reason}") from error
    return IMURecording(
        dataset="upfall",
        subject=str(subject),
        activity=str(activity),
        label=ACTIVITIES[activity][1],
        position=position,
        fs=fs,
        acc=acc,
        gyro=gyro,
        trial=str(trial),
        source=str(table.path),
    )


def _trial_signals(table: UPFallTable, rows: np.ndarray, position: str, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """acc `[T, 3]` m/s² and gyro `[T, 3]` rad/s of some rows at one position."""
    if position in table.place_problems:
        raise RecordingFileError(table.path, table.place_problems[position])
    first = 6 * list(PLACES).index(position)
    members = set(rows.tolist())
    for column in range(first, first + 6):
        bad = [(row, text) for row, text in table.bad_cells.get(column, []) if row in members]
        if bad:
            raise RecordingFileError(table.path, f"line {table.line_numbers[bad[0][0]]}: {bad[0][1]!r} is not a number")
    values = check_finite_nonempty(table.path, "acc/gyro", table.values[rows, first : first + 6])
    if not np.any(values[:, :3]):
        raise RecordingFileError(table.path, "the accelerometer recorded only zeros (sensor missing)")
    try:
        stamps = np.array([table.times[row] for row in rows], dtype="datetime64[us]")
    except ValueError as error:
        raise RecordingFileError(table.path, f"TimeStamps are not ISO date-times: {error}") from None
    if np.isnat(stamps).any():
        line = table.line_numbers[rows[np.flatnonzero(np.isnat(stamps))[0]]]
        raise RecordingFileError(table.path, f"line {line}: empty TimeStamps")
    times_s = (stamps - stamps[0]) / np.timedelta64(1, "s")
    si = np.concatenate((values[:, :3] * STANDARD_GRAVITY, np.radians(values[:, 3:])), axis=1)
    resampled = resample_timestamps(table.path, times_s, si, fs)
    return check_acc_units(table.path, resampled[:, :3]), check_gyro_units(table.path, resampled[:, 3:])


def read_upfall_file(
    path: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None
) -> list[IMURecording]:
    """Every trial × requested position in one UP-Fall CSV; any bad one raises."""
    positions = check_positions("UP-Fall", positions, PLACES)
    table = parse_upfall_file(path)
    return [upfall_recording(table, key, position, fs=fs) for key in table.rows_of for position in positions]


def load_upfall(
    root: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """The per-trial CSVs under `root` (searched recursively), or `CompleteDataSet.csv` if there are none.

    A (trial, position) is the unit that is loaded or skipped, so a missing sensor, or one bad trial in
    `CompleteDataSet.csv`, costs only itself. A file that cannot be parsed at all is one skipped entry.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: expected the UP-Fall folder (Subject1/… or CompleteDataSet.csv)")
    positions = check_positions("UP-Fall", positions, PLACES)
    paths = sorted(path for path in root.rglob("*.csv") if TRIAL_FILE.match(path.name))
    # The complete file repeats the trial files' rows: reading both would load every trial twice.
    paths = paths or sorted(root.rglob(COMPLETE_FILE))

    return load_parsed(
        paths,
        parse_upfall_file,
        lambda table: (
            partial(upfall_recording, table, key, position, fs=fs) for key in table.rows_of for position in positions
        ),
        on_error=on_error,
    )
