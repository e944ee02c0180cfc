"""USC-HAD (Zhang & Sawchuk, UbiComp 2012): 14 subjects, 12 activities, one MotionNode IMU at 100 Hz.

Reference: M. Zhang, A. A. Sawchuk, "USC-HAD: a daily activity dataset for ubiquitous activity recognition
using wearable sensors", UbiComp 2012 (SAGAware workshop); dataset readme at https://sipi.usc.edu/had/.

Facts this reader relies on (readme):
- `Subject{N}/a{m}t{n}.mat`: activity m, trial n. Each file holds `title`, `version`, `date`, `subject`,
  `age`, `height`, `weight`, `activity`, `activity_number`, `trial`, `sensor_location`,
  `sensor_orientation` (text fields) and `sensor_readings`, `[T, 6]`: acc x, y, z in g (gravity included)
  then gyro x, y, z in °/s, sampled at 100 Hz (no timestamps).
- The files of subject 13 spell `activity_number` as `activity_numbr` (a known typo that public loaders
  work around); both spellings are accepted.
- The sensor sits in a pouch at the front right hip: position "right_hip".

Conversion: acc × 9.80665 m/s² per g (standard gravity), gyro × π/180 rad/s per °/s; then 100 Hz → `fs`.
The activity comes from the `activity_number` field and must agree with the file name.

Label choices: walking forward/left/right (left and right are walking a circle counter-/clockwise) →
"walking"; up/downstairs → "stairs"; running forward → "running"; jumping up → "jumping". Sitting,
standing and sleeping are held postures, not the sit/stand and lying-down transitions of the shared
classes, so they map to "other", as do the elevator rides (standing still in a moving lift).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_finite_nonempty,
    check_gyro_units,
    check_positions,
    load_folder,
    resample_uniform,
)
from virtual_imu.conventions import STANDARD_GRAVITY

ACTIVITIES = {
    1: ("Walking Forward", "walking"),
    2: ("Walking Left", "walking"),
    3: ("Walking Right", "walking"),
    4: ("Walking Upstairs", "stairs"),
    5: ("Walking Downstairs", "stairs"),
    6: ("Running Forward", "running"),
    7: ("Jumping Up", "jumping"),
    8: ("Sitting", "other"),
    9: ("Standing", "other"),
    10: ("Sleeping", "other"),
    11: ("Elevator Up", "other"),
    12: ("Elevator Down", "other"),
}
"""activity_number → (name from the readme, shared class)."""
ACTIVITY_FIELDS = ("activity_number", "activity_numbr")
"""The field's spelling, and subject 13's typo."""
READINGS_FIELD = "sensor_readings"
FS_HZ = 100.0
POSITION = "right_hip"
DEG_TO_RAD = math.pi / 180.0

_FILE_NAME = re.compile(r"^a(?P<activity>\d+)t(?P<trial>\d+)\.mat$")
_SUBJECT_FOLDER = re.compile(r"^Subject(?P<subject>\d+)$")


def _activity_number(path: Path, mat: dict) -> int:
    field = next((name for name in ACTIVITY_FIELDS if name in mat), None)
    if field is None:
        raise RecordingFileError(path, f"missing field {ACTIVITY_FIELDS[0]!r} (or {ACTIVITY_FIELDS[1]!r})")
    values = np.asarray(mat[field]).ravel()
    try:
        number = float(str(values[0]).strip())  # a text field ('7'), or a number in some exports
    except (IndexError, ValueError):
        raise RecordingFileError(path, f"{field} is not a number: {mat[field]!r}") from None
    if number not in ACTIVITIES:
        raise RecordingFileError(path, f"{field} {number:g} is not one of {sorted(ACTIVITIES)}")
    return int(number)


def read_uschad_file(path: str | Path, *, fs: float = 50.0) -> IMURecording:
    """One trial `Subject{N}/a{m}t{n}.mat` in SI units at `fs` Hz."""
    path = Path(path)
    name = _FILE_NAME.match(path.name)
    folder = _SUBJECT_FOLDER.match(path.parent.name)
    if not name or not folder:
        raise RecordingFileError(path, "expected a path like Subject1/a1t1.mat")
    if not path.is_file():
        raise RecordingFileError(path, "file not found")
    try:
        mat = loadmat(path)
    except Exception as error:  # scipy raises OSError, IndexError, ValueError or MatReadError on corrupt files
        raise RecordingFileError(path, f"not a readable MATLAB file ({type(error).__name__}: {error})") from None
    activity = _activity_number(path, mat)
    if activity != int(name["activity"]):
        raise RecordingFileError(path, f"activity_number {activity} disagrees with the file name")
    if READINGS_FIELD not in mat:
        raise RecordingFileError(path, f"missing field {READINGS_FIELD!r}")
    readings = np.asarray(mat[READINGS_FIELD])
    if readings.ndim != 2 or readings.shape[1] != 6 or readings.dtype.kind not in "fiu":
        raise RecordingFileError(path, f"{READINGS_FIELD} must be a numeric [T, 6] array, got {readings.shape}")
    readings = check_finite_nonempty(path, READINGS_FIELD, readings)
    si = np.concatenate((readings[:, :3] * STANDARD_GRAVITY, readings[:, 3:] * DEG_TO_RAD), axis=1)
    resampled = resample_uniform(si, FS_HZ, fs)
    return IMURecording(
        dataset="uschad",
        subject=folder["subject"],
        activity=str(activity),
        label=ACTIVITIES[activity][1],
        position=POSITION,
        fs=fs,
        acc=check_acc_units(path, resampled[:, :3]),
        gyro=check_gyro_units(path, resampled[:, 3:]),
        trial=name["trial"],
        source=str(path),
    )


def load_uschad(
    root: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """Every trial under `root` (the folder holding `Subject1/` … `Subject14/`).

    `positions` exists for a uniform loader signature: the only position is "right_hip".
    """
    root = Path(root)
    check_positions("USC-HAD", positions, (POSITION,))
    paths = sorted(root.glob("Subject*/a*t*.mat"), key=lambda p: (len(p.parent.name), str(p)))
    if not paths:
        raise FileNotFoundError(f"no Subject*/a*t*.mat under {root}: expected the USC-HAD root")
    return load_folder(paths, lambda path: read_uschad_file(path, fs=fs), on_error=on_error)
