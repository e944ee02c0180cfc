"""PAMAP2 Physical Activity Monitoring (Reiss & Stricker, ISWC 2012): 9 subjects, 3 IMUs at 100 Hz.

Reference: A. Reiss, D. Stricker, "Introducing a new benchmarked dataset for activity monitoring",
ISWC 2012; the dataset's `readme.pdf` / UCI page https://archive.ics.uci.edu/dataset/231.

Facts this reader relies on (readme):
- `Protocol/subject{101…109}.dat` and `Optional/subject{…}.dat`, space-separated text, one row per
  0.01 s (IMUs at 100 Hz), 54 columns: timestamp (s), activityID, heart rate (bpm, ~9 Hz so mostly NaN),
  then 17 columns for each IMU in the order hand, chest, ankle: temperature (°C), acc ±16 g (3, m/s²),
  acc ±6 g (3, m/s²), gyroscope (3, rad/s), magnetometer (3, µT), orientation (4, "invalid in this data
  collection").
- The readme recommends the ±16 g accelerometer: the ±6 g one is not precisely calibrated and saturates
  in high-impact movements such as running. This reader uses the ±16 g one.
- The hand IMU is on the dominant wrist and the ankle IMU on the dominant side; subject 108 is the one
  left-handed subject (the dataset's subjectInformation.pdf, as summarised on the MONSTER benchmark's
  card https://huggingface.co/datasets/monster-monash/PAMAP2), so
  positions are "right_wrist"/"right_ankle" except "left_wrist"/"left_ankle" for 108, and "chest".
- activityID 0 marks transient periods between activities: dropped. Missing values are NaN (dropped
  wireless packets).

One recording per IMU and contiguous stretch of one activity, split at gaps. A gap is the time between
two consecutive samples whose acc and gyro are all finite: gaps up to `MAX_GAP_S` (0.1 s, i.e. at most 9
missing samples at 100 Hz) are filled by linear interpolation on the 100 Hz grid; longer gaps (or jumps in
the timestamps) split the stretch. Pieces shorter than `MIN_PIECE_S` are dropped. Each piece is then
resampled from 100 Hz to `fs` (polyphase, anti-aliased).

Label choices: ascending/descending stairs → "stairs"; Nordic walking → "walking" (a walking gait, with
poles); rope jumping → "jumping". Lying, sitting and standing are held postures, not the sit/stand and
lying-down transitions of the shared classes, so they map to "other", as do cycling, the household and
leisure activities, car driving and soccer (a mix of running, walking and kicking).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_gyro_units,
    check_positions,
    load_folder,
    resample_uniform,
)

log = logging.getLogger(__name__)

ACTIVITIES = {
    1: ("lying", "other"),
    2: ("sitting", "other"),
    3: ("standing", "other"),
    4: ("walking", "walking"),
    5: ("running", "running"),
    6: ("cycling", "other"),
    7: ("Nordic walking", "walking"),
    9: ("watching TV", "other"),
    10: ("computer work", "other"),
    11: ("car driving", "other"),
    12: ("ascending stairs", "stairs"),
    13: ("descending stairs", "stairs"),
    16: ("vacuum cleaning", "other"),
    17: ("ironing", "other"),
    18: ("folding laundry", "other"),
    19: ("house cleaning", "other"),
    20: ("playing soccer", "other"),
    24: ("rope jumping", "jumping"),
}
"""activityID → (name from the readme, shared class). ID 0 (transient) is dropped."""
TRANSIENT_ID = 0
NUM_COLUMNS = 54
IMU_COLUMNS = {"hand": 3, "chest": 20, "ankle": 37}
"""IMU → first (0-based) column of its 17-column block."""
ACC_16G_GYRO = (1, 2, 3, 7, 8, 9)
"""Column offsets inside an IMU block of the ±16 g accelerometer x, y, z and the gyroscope x, y, z."""
FS_HZ = 100.0
MAX_GAP_S = 0.1
"""Longest gap between valid samples that is interpolated; longer gaps split the recording."""
MIN_PIECE_S = 1.0
"""Pieces left between long gaps that are shorter than this are dropped."""
LEFT_HANDED_SUBJECTS = frozenset({"108"})

_FILE_NAME = re.compile(r"^subject(?P<subject>\d+)\.dat$")
# Timestamps are printed with 2 decimals: a 0.1 s gap may compute as 0.10000000000000142.
_TIME_EPS_S = 1e-6


def position_of(imu: str, subject: str) -> str:
    """Body position of PAMAP2 IMU `imu` ("hand", "chest", "ankle") worn by `subject` (e.g. "101")."""
    if imu == "chest":
        return "chest"
    side = "left" if subject in LEFT_HANDED_SUBJECTS else "right"
    return f"{side}_{'wrist' if imu == 'hand' else 'ankle'}"


def _read_table(path: Path) -> np.ndarray:
    """`[N, 54]` rows of one .dat file."""
    if not path.is_file():
        raise RecordingFileError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file; we raise below
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise RecordingFileError(path, f"truncated or malformed line: {error}") from None
    if table.shape[0] == 0:
        raise RecordingFileError(path, "empty file")
    if table.shape[1] != NUM_COLUMNS:
        raise RecordingFileError(path, f"{table.shape[1]} columns, expected {NUM_COLUMNS}")
    return table


def _check_time_and_labels(path: Path, times: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Checks the timestamp and activityID columns; returns the IDs as integers."""
    if not (np.isfinite(times).all() and np.isfinite(ids).all()):
        raise RecordingFileError(path, "NaN in the timestamp or activityID column")
    if np.any(np.diff(times) <= 0):
        line = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 2
        raise RecordingFileError(path, f"timestamps do not increase at line {line}")
    step = float(np.median(np.diff(times))) if times.shape[0] > 1 else 1.0 / FS_HZ
    if abs(step - 1.0 / FS_HZ) > 1e-3:
        raise RecordingFileError(path, f"timestamps step by {step:.4g}, expected 0.01 s (100 Hz, seconds)")
    if np.any(ids != np.round(ids)):
        raise RecordingFileError(path, "activityID column holds non-integer values")
    unknown = sorted(set(ids.astype(int).tolist()) - set(ACTIVITIES) - {TRANSIENT_ID})
    if unknown:
        raise RecordingFileError(path, f"unknown activityIDs {unknown}; expected 0 or one of {sorted(ACTIVITIES)}")
    return ids.astype(int)


def _pieces(times: np.ndarray, values: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Rows `[n, 6]` of one activity stretch → (start time s, `[T, 6]` on the 100 Hz grid) per piece.

    Rows with any non-finite value are dropped; gaps between kept rows up to `MAX_GAP_S` are linearly
    interpolated, longer ones split.
    """
    valid = np.isfinite(values).all(axis=1)
    times, values = times[valid], values[valid]
    if times.shape[0] == 0:
        return []
    cuts = np.flatnonzero(np.diff(times) > MAX_GAP_S + _TIME_EPS_S) + 1
    pieces = []
    for piece_times, piece_values in zip(np.split(times, cuts), np.split(values, cuts)):
        span = piece_times[-1] - piece_times[0]
        if span < MIN_PIECE_S:
            log.debug("dropping a %.2f s piece at %.2f s", span, piece_times[0])
            continue
        grid = piece_times[0] + np.arange(int(round(span * FS_HZ)) + 1) / FS_HZ
        filled = np.stack([np.interp(grid, piece_times, piece_values[:, c]) for c in range(6)], axis=1)
        pieces.append((float(piece_times[0]), filled))
    return pieces


def read_pamap2_file(
    path: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None
) -> list[IMURecording]:
    """Recordings of one `subject{N}.dat`: one per IMU and gap-free stretch of one activity, at `fs` Hz.

    `positions` selects IMUs by their PAMAP2 names ("hand", "chest", "ankle"); recordings carry the body
    position (`position_of`). `trial` is "{session}@{start}s", the session folder and start timestamp.
    """
    path = Path(path)
    name = _FILE_NAME.match(path.name)
    if not name:
        raise RecordingFileError(path, "expected a file named like subject101.dat")
    subject, session = name["subject"], path.parent.name.lower()
    imus = check_positions("PAMAP2 (IMU names)", positions, IMU_COLUMNS)
    table = _read_table(path)
    ids = _check_time_and_labels(path, table[:, 0], table[:, 1])
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1, [ids.shape[0]]))
    recordings = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        activity = int(ids[start])
        if activity == TRANSIENT_ID:
            continue
        for imu in imus:
            columns = [IMU_COLUMNS[imu] + offset for offset in ACC_16G_GYRO]
            for start_s, values in _pieces(table[start:end, 0], table[start:end][:, columns]):
                resampled = resample_uniform(values, FS_HZ, fs)
                recordings.append(
                    IMURecording(
                        dataset="pamap2",
                        subject=subject,
                        activity=str(activity),
                        label=ACTIVITIES[activity][1],
                        position=position_of(imu, subject),
                        fs=fs,
                        acc=check_acc_units(path, resampled[:, :3]),
                        gyro=check_gyro_units(path, resampled[:, 3:]),
                        trial=f"{session}@{start_s:.2f}s",
                        source=str(path),
                    )
                )
    if not recordings:
        raise RecordingFileError(path, f"no labelled stretch of ≥ {MIN_PIECE_S} s with valid IMU data")
    return recordings


def load_pamap2(
    root: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """Every `Protocol/` and `Optional/` subject file under `root` (the `PAMAP2_Dataset` folder)."""
    root = Path(root)
    if not (root / "Protocol").is_dir():
        raise FileNotFoundError(f"{root / 'Protocol'} not found: expected the PAMAP2_Dataset folder as root")
    check_positions("PAMAP2 (IMU names)", positions, IMU_COLUMNS)
    paths = sorted(root.glob("Protocol/subject*.dat")) + sorted(root.glob("Optional/subject*.dat"))
    return load_folder(paths, lambda path: read_pamap2_file(path, fs=fs, positions=positions), on_error=on_error)
