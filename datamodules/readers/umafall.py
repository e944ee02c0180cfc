"""UMAFall (Casilari, Santoyo-Ramón & Cano-García, Procedia Computer Science 110:32–39, 2017).

Five sensing points per trial: a smartphone in the right trouser pocket and four SensorTag motes on the
chest, waist, wrist and ankle (dataset description, webpersonal.uma.es/de/ECASILARI/Fall_ADL_Traces/
UMA_FALL_ADL_dataset.html). File-format facts below are cross-checked against several public readers of
the files (GitHub), which agree on them:

- One CSV per trial, named `UMAFall_Subject_01_ADL_Walking_1_2016-06-13_20-45-53.csv` = subject, `ADL`
  or `Fall`, activity name (may contain `_`, e.g. `LyingDown_OnABed`), trial, date-time. 15 activities,
  keys of `ACTIVITIES`.
- Header lines start with `%`. Among them the sensor map, one line per sensor:
  `%<MAC address>; <sensor id>; <position>; <device>`, positions RIGHTPOCKET, CHEST, WAIST, WRIST, ANKLE;
  and the column header `% TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type; Sensor ID;`.
- Data rows are `;`-separated with those 7 fields (plus a trailing `;`): time in ms, sample number,
  three axes, sensor type (0 accelerometer in g, 1 gyroscope in °/s, 2 magnetometer in µT), sensor id.
  Rows of all sensors are interleaved. Some rows hold malformed numbers (e.g. `1.012.598.156.929.010`).
- Rates: the smartphone streams ~200 Hz and only its accelerometer; the SensorTags ~20 Hz acc, gyro and
  magnetometer. Timestamps are irregular and quantised to 1 ms (equal stamps occur).

Timestamps are taken as sample times. The accelerometer and gyroscope of one sensor have their own
stamps, so both are linearly interpolated onto one uniform grid over the span they share, at a multiple
of `fs` no slower than the sensor (`fs` itself for a 20 Hz SensorTag), then decimated to `fs` with the
anti-aliasing `resample_uniform`. Gaps are interpolated across, not detected. Magnetometer rows are
ignored (and their numbers not parsed, so a malformed magnetometer value does not cost the trial its
acc/gyro); a malformed acc/gyro value is an error, not repaired.
"""

from __future__ import annotations

import math
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
    resample_uniform,
)
from virtual_imu.conventions import STANDARD_GRAVITY

POSITIONS = {"RIGHTPOCKET": "right_pocket", "CHEST": "chest", "WAIST": "waist", "WRIST": "wrist", "ANKLE": "ankle"}
"""Position as written in the file header → our position name."""
ACC_TYPE, GYRO_TYPE = 0, 1
COLUMNS = ("TimeStamp", "Sample No", "X-Axis", "Y-Axis", "Z-Axis", "Sensor Type", "Sensor ID")

ACTIVITIES = {
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
    "Aplausing": "other",  # sic: the dataset's spelling of "applauding"
    "forwardFall": "falling",
    "backwardFall": "falling",
    "lateralFall": "falling",
}
"""Activity name in the file name → shared class."""

FILE_NAME = re.compile(
    r"^UMAFall_Subject_(?P<subject>\d+)_(?P<kind>ADL|Fall)_(?P<activity>.+?)_(?P<trial>\d+)_[\d_-]+\.csv$",
    re.IGNORECASE,
)


@dataclass
class UMAFallTrial:
    """One parsed file: name fields, sensor map and the raw rows of every (sensor id, sensor type) stream.

    `streams[(sensor_id, sensor_type)]` is a list of (line number, fields) with the 7 fields as text.
    """

    path: Path
    subject: str
    activity: str
    trial: str
    positions: dict[int, str]
    streams: dict[tuple[int, int], list[tuple[int, list[str]]]]


def parse_umafall_file(path: str | Path) -> UMAFallTrial:
    """Reads the header, the sensor map and the row structure; raises `RecordingFileError` if malformed."""
    path = Path(path)
    match = FILE_NAME.match(path.name)
    if match is None:
        raise RecordingFileError(path, "file name is not like UMAFall_Subject_01_ADL_Walking_1_<date>.csv")
    if match["activity"] not in ACTIVITIES:
        raise RecordingFileError(path, f"unknown activity {match['activity']!r}; expected one of {sorted(ACTIVITIES)}")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise RecordingFileError(path, f"cannot read: {error}") from None
    positions: dict[int, str] = {}
    columns = None
    streams: dict[tuple[int, int], list[tuple[int, list[str]]]] = {}
    for line_number, line in enumerate(lines, start=1):
        is_header = line.startswith("%")
        fields = [field.strip() for field in line.lstrip("%").split(";")]
        if fields[-1] == "":
            fields.pop()  # the trailing ";"
        if not fields:
            continue
        if fields[0] == "TimeStamp":
            columns = fields
            if columns != list(COLUMNS):
                raise RecordingFileError(path, f"line {line_number}: columns {columns}, expected {list(COLUMNS)}")
            continue
        if is_header:
            for sensor_id, name in zip(fields, fields[1:]):
                if sensor_id.isdigit() and name.upper() in POSITIONS:
                    positions[int(sensor_id)] = POSITIONS[name.upper()]
            continue
        if columns is None:
            raise RecordingFileError(path, f"line {line_number}: data before the column header {list(COLUMNS)}")
        if len(fields) != len(COLUMNS):
            raise RecordingFileError(
                path, f"line {line_number} has {len(fields)} fields, expected {len(COLUMNS)} (truncated?)"
            )
        try:
            key = (int(fields[6]), int(fields[5]))
        except ValueError:
            raise RecordingFileError(path, f"line {line_number}: sensor id/type are not integers: {line!r}") from None
        streams.setdefault(key, []).append((line_number, fields))
    if columns is None:
        raise RecordingFileError(path, f"no column header {'; '.join(COLUMNS)}")
    if not positions:
        raise RecordingFileError(path, "no sensor map in the header (lines '%<MAC>; <id>; <position>; <device>')")
    return UMAFallTrial(path, match["subject"], match["activity"], match["trial"], positions, streams)


def _stream(trial: UMAFallTrial, sensor_id: int, sensor_type: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Times `[T]` (s) and values `[T, 3]` (file units) of one stream."""
    rows = trial.streams.get((sensor_id, sensor_type), [])
    values = []
    for line_number, fields in rows:
        try:
            values.append([float(field) for field in fields[:1] + fields[2:5]])
        except ValueError:
            reason = f"line {line_number}: {name} value is not a number: {fields}"
            raise RecordingFileError(trial.path, reason) from None
    table = check_finite_nonempty(trial.path, name, np.asarray(values, dtype=np.float64).reshape(-1, 4))
    times_s = table[:, 0] / 1000.0
    backwards = np.flatnonzero(np.diff(times_s) < 0)
    if backwards.size:
        raise RecordingFileError(trial.path, f"line {rows[backwards[0] + 1][0]}: {name} timestamp goes backwards")
    if times_s[-1] <= times_s[0]:
        raise RecordingFileError(trial.path, f"{name} timestamps span no time")
    return times_s, table[:, 1:]


def common_grid(path: Path, streams: list[tuple[np.ndarray, np.ndarray]], fs: float) -> tuple[list[np.ndarray], float]:
    """Streams with their own timestamps → values on one uniform grid over their common span.

    The grid rate is the smallest multiple of `fs` not slower than the fastest stream, so the grid never
    undersamples a stream and a final integer decimation to `fs` is anti-aliased.

    Args:
        streams: (times `[T_i]` in s, values `[T_i, C_i]`) per stream, times non-decreasing.
    Returns:
        values `[N, C_i]` per stream, and the grid rate in Hz.
    """
    start = max(times[0] for times, _ in streams)
    end = min(times[-1] for times, _ in streams)
    if end - start < 1.0 / fs:
        raise RecordingFileError(path, f"the streams overlap for {max(end - start, 0.0):.3g} s, less than one sample")
    native = max((times.shape[0] - 1) / (times[-1] - times[0]) for times, _ in streams)
    grid_fs = fs * max(1, math.ceil(native / fs - 1e-9))
    grid = start + np.arange(int(math.floor((end - start) * grid_fs + 1e-9)) + 1) / grid_fs
    on_grid = [
        np.stack([np.interp(grid, times, values[:, c]) for c in range(values.shape[1])], axis=1)
        for times, values in streams
    ]
    return on_grid, grid_fs


def umafall_recording(trial: UMAFallTrial, position: str, *, fs: float = 50.0) -> IMURecording:
    """The recording of one sensor position of a parsed trial, in SI units at `fs` Hz.

    Errors name the file and start with the position (the other positions of the file may be fine).
    """
    try:
        acc, gyro = _position_signals(trial, position, fs)
    except RecordingFileError as error:
        raise RecordingFileError(trial.path, f"{position}: {error.reason}") from error
    return IMURecording(
        dataset="umafall",
        subject=trial.subject,
        activity=trial.activity,
        label=ACTIVITIES[trial.activity],
        position=position,
        fs=fs,
        acc=acc,
        gyro=gyro,
        trial=trial.trial,
        source=str(trial.path),
    )


def _position_signals(trial: UMAFallTrial, position: str, fs: float) -> tuple[np.ndarray, np.ndarray | None]:
    """acc `[T, 3]` m/s² and gyro `[T, 3]` rad/s (None for the smartphone, which logs no gyroscope)."""
    ids = [sensor_id for sensor_id, name in trial.positions.items() if name == position]
    if not ids:
        raise RecordingFileError(trial.path, f"not in the sensor map {trial.positions}")
    streams = [_stream(trial, ids[0], ACC_TYPE, "accelerometer")]
    has_gyro = (ids[0], GYRO_TYPE) in trial.streams
    if has_gyro:
        streams.append(_stream(trial, ids[0], GYRO_TYPE, "gyroscope"))
    on_grid, grid_fs = common_grid(trial.path, streams, fs)
    acc = check_acc_units(trial.path, resample_uniform(on_grid[0] * STANDARD_GRAVITY, grid_fs, fs))
    if not has_gyro:
        return acc, None
    return acc, check_gyro_units(trial.path, resample_uniform(np.radians(on_grid[1]), grid_fs, fs))


def read_umafall_file(
    path: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None
) -> list[IMURecording]:
    """One recording per requested position of one UMAFall file; any bad position raises."""
    positions = check_positions("UMAFall", positions, POSITIONS.values())
    trial = parse_umafall_file(path)
    return [umafall_recording(trial, position, fs=fs) for position in positions]


def load_umafall(
    root: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """Every `UMAFall_Subject_*.csv` under `root` (searched recursively), one recording per position.

    A (file, position) is the unit that is loaded or skipped: a sensor that failed in one trial does not
    cost the trial its other positions. A file that cannot be parsed at all is one skipped entry.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: expected the folder holding the UMAFall_Subject_*.csv files")
    positions = check_positions("UMAFall", positions, POSITIONS.values())

    return load_parsed(
        sorted(root.rglob("UMAFall_Subject_*.csv")),
        parse_umafall_file,
        lambda trial: (partial(umafall_recording, trial, position, fs=fs) for position in positions),
        on_error=on_error,
    )
