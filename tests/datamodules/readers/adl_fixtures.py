"""Fixture files in the published formats of RealWorld HAR, PAMAP2 and USC-HAD, built from a known signal.

The signal is smooth (≤ 1.5 Hz) with gravity on z, so resampled output can be compared with the closed form.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import savemat

STANDARD_GRAVITY = 9.80665


def acc_signal(t: np.ndarray) -> np.ndarray:
    """`[T, 3]` specific force in m/s² at times `t` (s): sinusoids around a tilted gravity vector."""
    return np.stack(
        (
            1.5 * np.sin(2 * np.pi * 1.0 * t),
            2.0 + 1.0 * np.cos(2 * np.pi * 0.5 * t),
            9.0 + 0.8 * np.sin(2 * np.pi * 1.5 * t + 0.3),
        ),
        axis=1,
    )


def gyro_signal(t: np.ndarray) -> np.ndarray:
    """`[T, 3]` angular rate in rad/s at times `t` (s)."""
    return np.stack((0.6 * np.sin(2 * np.pi * t), 0.3 * np.cos(2 * np.pi * 0.7 * t), np.full_like(t, 0.2)), axis=1)


# ---------------------------------------------------------------- RealWorld HAR 2016

REALWORLD_T0_MS = 1_435_993_298_000
"""Unix time (ms) taken as t = 0 of the known signal."""
REALWORLD_HEADER = "id,attr_time,attr_x,attr_y,attr_z"


def irregular_times_ms(start_s: float, duration_s: float, seed: int) -> np.ndarray:
    """Integer ms timestamps from `start_s` after `REALWORLD_T0_MS`, ~50 Hz with ±4 ms jitter."""
    rng = np.random.default_rng(seed)
    steps = 20 + rng.integers(-4, 5, size=int(duration_s * 50))
    return REALWORLD_T0_MS + int(start_s * 1000) + np.concatenate(([0], np.cumsum(steps)))


def realworld_csv(times_ms: np.ndarray, values: np.ndarray, header: str = REALWORLD_HEADER) -> bytes:
    rows = zip(times_ms.tolist(), values.tolist())
    lines = [header] + [",".join(map(repr, [i + 1, t, *xyz])) for i, (t, xyz) in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class RealWorldSession:
    """One session's streams: acc and gyro each with their own timestamps (ms) and `[T, 3]` values."""

    acc_times_ms: np.ndarray
    acc: np.ndarray
    gyro_times_ms: np.ndarray
    gyro: np.ndarray

    @property
    def overlap_s(self) -> tuple[float, float]:
        """(start, end) of the acc/gyro overlap in s after `REALWORLD_T0_MS`."""
        start = max(self.acc_times_ms[0], self.gyro_times_ms[0]) - REALWORLD_T0_MS
        end = min(self.acc_times_ms[-1], self.gyro_times_ms[-1]) - REALWORLD_T0_MS
        return start / 1000.0, end / 1000.0


def realworld_session(start_s: float, duration_s: float, *, seed: int, gyro_offset: float = 0.0) -> RealWorldSession:
    """The known signal sampled by an acc and a gyro that start 0.3 s apart and end 0.5 s apart."""
    acc_times = irregular_times_ms(start_s, duration_s, seed)
    gyro_times = irregular_times_ms(start_s + 0.3, duration_s - 0.8, seed + 1)

    def seconds(times_ms: np.ndarray) -> np.ndarray:
        return (times_ms - REALWORLD_T0_MS) / 1000.0

    return RealWorldSession(
        acc_times, acc_signal(seconds(acc_times)), gyro_times, gyro_signal(seconds(gyro_times)) + gyro_offset
    )


def write_realworld(
    root: Path, subject: int, activity: str, acc_members: dict[str, bytes], gyro_members: dict[str, bytes]
) -> Path:
    """Writes `proband{subject}/data/{acc,gyr}_{activity}_csv.zip`; returns the acc zip's path."""
    folder = root / f"proband{subject}" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"gyr_{activity}_csv.zip").write_bytes(zip_bytes(gyro_members))
    acc_path = folder / f"acc_{activity}_csv.zip"
    acc_path.write_bytes(zip_bytes(acc_members))
    return acc_path


def write_realworld_activity(
    root: Path, session: RealWorldSession, *, subject: int = 1, activity: str = "walking",
    positions: tuple[str, ...] = ("forearm", "waist"),
) -> Path:
    """One session of `activity` at `positions`, flat (not nested) zips; returns the acc zip's path."""
    acc = {f"acc_{activity}_{p}.csv": realworld_csv(session.acc_times_ms, session.acc) for p in positions}
    gyro = {f"Gyroscope_{activity}_{p}.csv": realworld_csv(session.gyro_times_ms, session.gyro) for p in positions}
    return write_realworld(root, subject, activity, acc, gyro)


# ---------------------------------------------------------------- PAMAP2

PAMAP2_IMUS = ("hand", "chest", "ankle")


def pamap2_table(times: np.ndarray, activity_ids: np.ndarray) -> np.ndarray:
    """`[T, 54]` PAMAP2 rows: the known signal on every IMU's ±16 g acc and gyro, shifted per IMU.

    The ±6 g accelerometer reads +5 m/s² off on purpose (a reader taking it fails the value checks);
    heart rate is NaN except every 11th row (~9 Hz), orientation is (1, 0, 0, 0) as in "invalid" data.
    """
    table = np.zeros((times.shape[0], 54))
    table[:, 0] = times
    table[:, 1] = activity_ids
    table[:, 2] = np.where(np.arange(times.shape[0]) % 11 == 0, 100.0, np.nan)
    for index, _ in enumerate(PAMAP2_IMUS):
        block = 3 + 17 * index
        acc = acc_signal(times + index)
        table[:, block] = 31.5
        table[:, block + 1 : block + 4] = acc
        table[:, block + 4 : block + 7] = acc + 5.0
        table[:, block + 7 : block + 10] = gyro_signal(times + index)
        table[:, block + 10 : block + 13] = (20.0, -40.0, 10.0)
        table[:, block + 13] = 1.0
    return table


def pamap2_times(start_s: float, count: int) -> np.ndarray:
    """`count` timestamps 0.01 s apart, rounded to 2 decimals as printed in the .dat files."""
    return np.round(start_s + np.arange(count) / 100.0, 2)


def pamap2_text(table: np.ndarray) -> str:
    """Space-separated lines as in the .dat files (timestamp with 2 decimals, NaN spelled "NaN")."""
    lines = []
    for row in table:
        fields = [f"{row[0]:.2f}", f"{int(row[1])}"] + [repr(float(v)) for v in row[2:]]
        lines.append(" ".join(fields).replace("nan", "NaN"))
    return "\n".join(lines) + "\n"


def write_pamap2(path: Path, table: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pamap2_text(table))
    return path


# ---------------------------------------------------------------- USC-HAD


def uschad_fields(readings: np.ndarray, activity: int, trial: int, subject: int, *, typo: bool = False) -> dict:
    """The 13 fields of a USC-HAD .mat file (text fields as MATLAB strings); `typo` spells
    `activity_number` as `activity_numbr`, like subject 13's files."""
    return {
        "title": "USC Human Motion Database",
        "version": "1.0",
        "date": "2010-01-01",
        "subject": str(subject),
        "age": "25",
        "height": "170cm",
        "weight": "65kg",
        "activity": "fixture",
        "activity_numbr" if typo else "activity_number": str(activity),
        "trial": str(trial),
        "sensor_location": "front right hip",
        "sensor_orientation": "fixture",
        "sensor_readings": readings,
    }


def write_uschad(root: Path, fields: dict, *, subject: int, activity: int, trial: int) -> Path:
    """Writes `Subject{subject}/a{activity}t{trial}.mat` with scipy.io.savemat."""
    path = root / f"Subject{subject}" / f"a{activity}t{trial}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, fields)
    return path


def uschad_readings(t: np.ndarray) -> np.ndarray:
    """`[T, 6]` the known signal in USC-HAD units: acc in g, gyro in °/s."""
    return np.concatenate((acc_signal(t) / STANDARD_GRAVITY, np.degrees(gyro_signal(t))), axis=1)
