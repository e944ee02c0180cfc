"""SisFall (Sucerquia, López & Vargas-Bonilla, Sensors 17(1):198, 2017): waist-worn device, falls and ADLs.

Facts from the dataset's `Readme.txt` (version 1.0, February 2016):

- Layout: one folder per subject, `SA01/D01_SA01_R01.txt` = `<activity>_<subject>_<trial>.txt`. Subjects
  SA01–SA23 are young adults (19–30 years), SE01–SE15 elderly (60–75 years; only SE06 performed falls).
- Each line holds 9 comma-separated integers and ends with `;`: ADXL345 acc x, y, z; ITG3200 gyro x, y, z;
  MMA8451Q acc x, y, z. All sensors are sampled at 200 Hz, values are raw ADC counts.
- Conversion: acceleration [g] = (2·Range / 2^Resolution)·AD and angular velocity [°/s] =
  (2·Range / 2^Resolution)·RD, with ADXL345 ±16 g, 13 bits; MMA8451Q ±8 g, 14 bits; ITG3200 ±2000 °/s,
  16 bits. (The readme's gyro formula gives 0.061 °/s per count; the ITG3200 datasheet says 1/14.375 =
  0.0696. We follow the readme, which is what the dataset's authors specify for their data.)
- The device was fixed to the waist of the participant (paper): position "waist".

Activities D01–D19 (ADLs) and F01–F15 (falls) are mapped to the shared classes in `ACTIVITIES`. Falls the
readme says are "caused by fainting" (F06, F07) or "by fainting or falling asleep" (F13–F15) map to
"fainting", the other falls to "falling" (both count as falls, `labels.FALL_CLASSES`).
"""

from __future__ import annotations

import math
import re
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
    load_folder,
    resample_uniform,
)
from virtual_imu.conventions import STANDARD_GRAVITY

SISFALL_FS = 200.0
"""Sampling rate of every SisFall channel, Hz."""
POSITION = "waist"

ACC_G_PER_COUNT = {"ADXL345": 2 * 16 / 2**13, "MMA8451Q": 2 * 8 / 2**14}
"""g per ADC count of each accelerometer, (2·Range / 2^Resolution) from the readme."""
GYRO_DEG_S_PER_COUNT = 2 * 2000 / 2**16
"""°/s per ADC count of the ITG3200, (2·Range / 2^Resolution) from the readme."""
ACC_COLUMNS = {"ADXL345": slice(0, 3), "MMA8451Q": slice(6, 9)}
GYRO_COLUMNS = slice(3, 6)
NUM_COLUMNS = 9

ACTIVITIES = {
    "D01": ("walking slowly", "walking"),
    "D02": ("walking quickly", "walking"),
    "D03": ("jogging slowly", "running"),
    "D04": ("jogging quickly", "running"),
    "D05": ("walking upstairs and downstairs slowly", "stairs"),
    "D06": ("walking upstairs and downstairs quickly", "stairs"),
    "D07": ("slowly sit in a half height chair, wait a moment, and up slowly", "sit_stand"),
    "D08": ("quickly sit in a half height chair, wait a moment, and up quickly", "sit_stand"),
    "D09": ("slowly sit in a low height chair, wait a moment, and up slowly", "sit_stand"),
    "D10": ("quickly sit in a low height chair, wait a moment, and up quickly", "sit_stand"),
    "D11": ("sitting a moment, trying to get up, and collapse into a chair", "sit_stand"),
    "D12": ("sitting a moment, lying slowly, wait a moment, and sit again", "lying"),
    "D13": ("sitting a moment, lying quickly, wait a moment, and sit again", "lying"),
    "D14": ("being on one's back change to lateral position, wait a moment, and change to one's back", "lying"),
    "D15": ("standing, slowly bending at knees, and getting up", "other"),
    "D16": ("standing, slowly bending without bending knees, and getting up", "other"),
    "D17": ("standing, get into a car, remain seated and get out of the car", "other"),
    "D18": ("stumble while walking", "stumbling"),
    "D19": ("gently jump without falling (trying to reach a high object)", "jumping"),
    "F01": ("fall forward while walking caused by a slip", "falling"),
    "F02": ("fall backward while walking caused by a slip", "falling"),
    "F03": ("lateral fall while walking caused by a slip", "falling"),
    "F04": ("fall forward while walking caused by a trip", "falling"),
    "F05": ("fall forward while jogging caused by a trip", "falling"),
    "F06": ("vertical fall while walking caused by fainting", "fainting"),
    "F07": ("fall while walking, with use of hands in a table to dampen fall, caused by fainting", "fainting"),
    "F08": ("fall forward when trying to get up", "falling"),
    "F09": ("lateral fall when trying to get up", "falling"),
    "F10": ("fall forward when trying to sit down", "falling"),
    "F11": ("fall backward when trying to sit down", "falling"),
    "F12": ("lateral fall when trying to sit down", "falling"),
    "F13": ("fall forward while sitting, caused by fainting or falling asleep", "fainting"),
    "F14": ("fall backward while sitting, caused by fainting or falling asleep", "fainting"),
    "F15": ("lateral fall while sitting, caused by fainting or falling asleep", "fainting"),
}
"""Activity code → (description from the readme, shared class)."""

FILE_NAME = re.compile(r"^(?P<activity>[DF]\d\d)_(?P<subject>S[AE]\d\d)_(?P<trial>R\d\d)\.txt$")


def read_counts(path: str | Path) -> np.ndarray:
    """`[T, 9]` raw ADC counts of one SisFall file, in the column order of the readme."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise RecordingFileError(path, f"cannot read: {error}") from None
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        # Every complete line ends with ";": a line without it was cut while being written.
        if not line.endswith(";"):
            raise RecordingFileError(path, f"line {line_number} does not end with ';' (truncated?): {line!r}")
        fields = line[:-1].split(",")
        if len(fields) != NUM_COLUMNS:
            raise RecordingFileError(path, f"line {line_number} has {len(fields)} values, expected {NUM_COLUMNS}")
        try:
            rows.append([int(field) for field in fields])
        except ValueError:
            raise RecordingFileError(path, f"line {line_number} is not integer counts: {line!r}") from None
    return check_finite_nonempty(path, "SisFall counts", np.asarray(rows, dtype=np.float64).reshape(-1, NUM_COLUMNS))


def read_sisfall_file(path: str | Path, *, fs: float = 50.0, accelerometer: str = "ADXL345") -> IMURecording:
    """One SisFall trial in SI units (acc m/s² with gravity, gyro rad/s), resampled from 200 Hz to `fs` Hz.

    Args:
        path: a file named like `D01_SA01_R01.txt`.
        fs: output rate, Hz.
        accelerometer: "ADXL345" (on the gyroscope's board, the default) or "MMA8451Q".
    """
    path = Path(path)
    if accelerometer not in ACC_G_PER_COUNT:
        raise ValueError(f"accelerometer must be one of {sorted(ACC_G_PER_COUNT)}, got {accelerometer!r}")
    match = FILE_NAME.match(path.name)
    if match is None:
        raise RecordingFileError(path, "file name is not <activity>_<subject>_<trial>.txt, e.g. D01_SA01_R01.txt")
    if match["activity"] not in ACTIVITIES:
        raise RecordingFileError(path, f"unknown activity code {match['activity']}; SisFall has D01–D19, F01–F15")
    counts = read_counts(path)
    acc = counts[:, ACC_COLUMNS[accelerometer]] * (ACC_G_PER_COUNT[accelerometer] * STANDARD_GRAVITY)
    gyro = counts[:, GYRO_COLUMNS] * math.radians(GYRO_DEG_S_PER_COUNT)
    acc = check_acc_units(path, resample_uniform(acc, SISFALL_FS, fs))
    gyro = check_gyro_units(path, resample_uniform(gyro, SISFALL_FS, fs))
    return IMURecording(
        dataset="sisfall",
        subject=match["subject"],
        activity=match["activity"],
        label=ACTIVITIES[match["activity"]][1],
        position=POSITION,
        fs=fs,
        acc=acc,
        gyro=gyro,
        trial=match["trial"],
        source=str(path),
    )


def load_sisfall(
    root: str | Path,
    *,
    fs: float = 50.0,
    positions: tuple[str, ...] | None = None,
    accelerometer: str = "ADXL345",
    on_error: str = "skip",
) -> LoadReport:
    """Every trial file under `root/S??/` (the unzipped `SisFall_dataset` folder).

    Args:
        positions: sensor positions to load; SisFall has only "waist" (None = all).
        on_error: "skip" bad files and report them, or "raise" at the first.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: expected the SisFall_dataset folder (SA01/, …, SE15/)")
    if not check_positions("SisFall", positions, (POSITION,)):
        return LoadReport([], [])
    # Files named like trials but not matching the pattern exactly are read too, so they get reported.
    paths = sorted(root.glob("S[AE]*/*_S[AE]*_R*.txt"))
    return load_folder(
        paths, lambda path: read_sisfall_file(path, fs=fs, accelerometer=accelerometer), on_error=on_error
    )
