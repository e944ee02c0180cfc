"""Fixture files in the published formats of SisFall, UMAFall and UP-Fall, written from a known signal.

The format facts are those documented in the readers' module docstrings. The known signal: the sensor at
rest with gravity on +z (1 g) and a constant angular rate, or a 1 Hz sine on x for timing checks.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

STANDARD_GRAVITY = 9.80665
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
"""The project's real-data folder (`../shared/data` from the repository root); absent on users' machines."""


# ---------------------------------------------------------------- SisFall: `D01_SA01_R01.txt`, 200 Hz counts


def sisfall_counts(
    num_samples: int, *, adxl=(0, 0, 256), gyro=(1000, 0, 0), mma=(0, 0, 1024)
) -> np.ndarray:
    """`[T, 9]` constant raw counts: ADXL345 256 = 1 g (±16 g, 13 bit), MMA8451Q 1024 = 1 g (±8 g, 14 bit),
    ITG3200 1000 counts = 1000·4000/65536 °/s (±2000 °/s, 16 bit)."""
    return np.tile(np.array([*adxl, *gyro, *mma], dtype=np.int64), (num_samples, 1))


def sisfall_text(counts: np.ndarray) -> str:
    """Lines of 9 comma-separated right-aligned integers, each ending with `;`."""
    return "".join(",".join(f"{int(value):5d}" for value in row) + ";\n" for row in counts)


def write_sisfall(root: Path, name: str, text: str) -> Path:
    """`root/<subject>/<name>`, the subject folder taken from the name (`D01_SA01_R01.txt` → SA01)."""
    folder = root / name.split("_")[1]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- UMAFall: `%` header, `;`-separated rows

UMAFALL_SENSOR_MAP = {0: ("RIGHTPOCKET", "lge-LG-H815-5.1"), 1: ("CHEST", "SensorTag"), 2: ("WAIST", "SensorTag"),
                      3: ("WRIST", "SensorTag"), 4: ("ANKLE", "SensorTag")}
UMAFALL_COLUMNS = "% TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type; Sensor ID;"


def umafall_header(sensor_ids=(0, 1, 2, 3, 4), columns: str = UMAFALL_COLUMNS) -> list[str]:
    lines = [
        "% Universidad de Malaga - ETSI de Telecomunicacion (Spain)",
        "% Date: 2016-06-13 20:45:53",
        "% ID: Subject_01",
        "% Type of Movement: ADL",
        f"% Number of Sensors: {len(sensor_ids)}",
    ]
    lines += [f"%C4:BE:84:71:A5:0{i}; {i}; {UMAFALL_SENSOR_MAP[i][0]}; {UMAFALL_SENSOR_MAP[i][1]}" for i in sensor_ids]
    lines += ["% Sensor Types: 0 - Accelerometer (g); 1 - Gyroscope (degrees/s); 2 - Magnetometer (uT)", columns]
    return lines


def stamps_ms(duration_s: float, rate_hz: float, *, offset_ms: int = 0, jitter_ms: int = 0, seed: int = 0):
    """Integer ms timestamps at `rate_hz` over `duration_s`, with uniform ±`jitter_ms` jitter, increasing."""
    nominal = offset_ms + np.arange(int(round(duration_s * rate_hz)) + 1) * (1000.0 / rate_hz)
    jitter = np.random.default_rng(seed).integers(-jitter_ms, jitter_ms + 1, nominal.shape) if jitter_ms else 0
    stamps = np.round(nominal + jitter).astype(np.int64)
    assert np.all(np.diff(stamps) > 0)
    return stamps


def umafall_rows(sensor_id: int, sensor_type: int, times_ms: np.ndarray, values: np.ndarray) -> list[tuple[int, str]]:
    """(time, row text) of one stream: `time;sample;x;y;z;type;id;`, values `[T, 3]` in file units."""
    return [
        (int(t), f"{int(t)};{k + 1};{v[0]!r};{v[1]!r};{v[2]!r};{sensor_type};{sensor_id};")
        for k, (t, v) in enumerate(zip(times_ms, np.asarray(values, dtype=np.float64).tolist()))
    ]


def constant(times_ms: np.ndarray, value) -> np.ndarray:
    return np.tile(np.asarray(value, dtype=np.float64), (len(times_ms), 1))


def umafall_streams(duration_s: float = 5.0, sensor_ids=(0, 1, 2, 3, 4)) -> list[tuple[int, str]]:
    """At rest, 1 g on z, gyro (0, 0, 90) °/s, magnetometer (20, 0, 40) µT: the phone (id 0) logs acc at
    200 Hz, the SensorTags acc, gyro (stamped 10 ms after acc) and magnetometer at 20 Hz."""
    rows = []
    for sensor_id in sensor_ids:
        if sensor_id == 0:
            rows += umafall_rows(0, 0, times := stamps_ms(duration_s, 200.0), constant(times, (0, 0, 1)))
            continue
        for sensor_type, offset_ms, value in ((0, 0, (0, 0, 1)), (1, 10, (0, 0, 90)), (2, 20, (20, 0, 40))):
            times = stamps_ms(duration_s, 20.0, offset_ms=offset_ms)
            rows += umafall_rows(sensor_id, sensor_type, times, constant(times, value))
    return rows


def umafall_name(activity: str = "Walking", *, kind: str = "ADL", subject: int = 1, trial: int = 1) -> str:
    return f"UMAFall_Subject_{subject:02d}_{kind}_{activity}_{trial}_2016-06-13_20-45-53.csv"


def write_umafall(folder: Path, name: str, rows: list[tuple[int, str]], header: list[str] | None = None) -> Path:
    """Header lines then the rows of all streams interleaved in time order, as in the dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = (umafall_header() if header is None else header) + [text for _, text in sorted(rows, key=lambda r: r[0])]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- UP-Fall: two header rows, ISO timestamps

UPFALL_PLACES = ("Ankle", "RightPocket", "Belt", "Neck", "Wrist")


def upfall_header(acc_unit: str = "g", places=UPFALL_PLACES, meta=("Subject", "Activity", "Trial", "Tag")):
    """The two header rows: sensor names over their first column, then axis labels with units."""
    names, axes = ["TimeStamps"], ["Time"]
    for place in places:
        names += [f"{place}Accelerometer", "", "", f"{place}AngularVelocity", "", "", f"{place}Luminosity"]
        axes += [f"{axis}-axis ({acc_unit})" for axis in "xyz"] + [f"{axis}-axis (deg/s)" for axis in "xyz"]
        axes += ["illuminance (lx)"]
    names += ["BrainSensor"] + [f"Infrared{i}" for i in range(1, 7)] + list(meta)
    axes += [""] * 7 + list(meta)
    return [names, axes]


def upfall_times(num_samples: int, rate_hz: float = 20.0, *, jitter_us: int = 0, seed: int = 0) -> list[str]:
    """ISO timestamps (µs) from 2018-07-04T12:04:17 at `rate_hz`, optionally jittered."""
    start = datetime.datetime(2018, 7, 4, 12, 4, 17)
    jitter = np.random.default_rng(seed).integers(-jitter_us, jitter_us + 1, num_samples) if jitter_us else 0
    jitter = np.broadcast_to(jitter, (num_samples,))
    return [
        (start + datetime.timedelta(microseconds=round(k * 1e6 / rate_hz) + int(j))).strftime("%Y-%m-%dT%H:%M:%S.%f")
        for k, j in enumerate(jitter)
    ]


def upfall_rows(times: list[str], *, subject=1, activity=6, trial=1, acc_g=(0, 0, 1), gyro_dps=(0, 45, 0), places=5):
    """Data rows: every place at rest with `acc_g` (g) and `gyro_dps` (°/s), dummy light/EEG/infrared."""
    per_place = [*map(repr, map(float, acc_g)), *map(repr, map(float, gyro_dps)), "120.5"]
    return [[time] + per_place * places + ["0"] + ["1"] * 6 + [str(subject), str(activity), str(trial), str(activity)]
            for time in times]


def write_upfall(path: Path, rows: list[list[str]], header: list[list[str]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (upfall_header() if header is None else header) + rows
    path.write_text("".join(",".join(line) + "\n" for line in lines))
    return path


def upfall_trial_path(root: Path, subject: int, activity: int, trial: int) -> Path:
    """`Subject#/Activity#/Trial#/Subject#Activity#Trial#.csv`, the per-trial layout of the download."""
    name = f"Subject{subject}Activity{activity}Trial{trial}"
    return root / f"Subject{subject}" / f"Activity{activity}" / f"Trial{trial}" / f"{name}.csv"
