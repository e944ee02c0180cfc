"""What every real-IMU reader returns, and the checks and resampling they share.

A reader turns one dataset's files into `IMURecording`s in SI units (acc m/s² including gravity, gyro
rad/s), uniformly sampled at the requested rate, with subject, activity (the dataset's own code), shared
label (`datamodules.labels`), safety label and sensor position. A bad file raises `RecordingFileError`
naming it; `load_folder` loads what it can and reports what it skipped and why.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from scipy.signal import resample_poly

from datamodules.labels import check_shared, safety_of
from virtual_imu.conventions import STANDARD_GRAVITY

log = logging.getLogger(__name__)

ACC_MAGNITUDE_RANGE = (0.5 * STANDARD_GRAVITY, 2.0 * STANDARD_GRAVITY)
"""Plausible median |acc| (m/s²) of a worn accelerometer that includes gravity: anything outside is a unit
error (data in g gives ~1, raw counts give hundreds or thousands)."""
GYRO_MEDIAN_LIMIT = 10.0
"""Largest plausible median |gyro| in rad/s (~570 °/s); data in °/s of a moving limb exceeds it."""


class RecordingFileError(ValueError):
    """A file that cannot be read as a recording; the message starts with the file's path."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class IMURecording:
    """One uniformly sampled recording of one sensor.

    Attributes:
        dataset: dataset name, e.g. "weda_fall".
        subject: subject identifier as the dataset spells it (e.g. "U01", "1").
        activity: the dataset's own activity code or name (e.g. "F01", "a7").
        label: shared class (`datamodules.labels.SHARED_CLASSES`).
        position: sensor position, e.g. "left_wrist", "right_wrist", "waist", "thigh".
        fs: sampling rate in Hz.
        acc: `[T, 3]` specific force in m/s² (gravity included), sensor frame.
        gyro: `[T, 3]` angular rate in rad/s, or None when the dataset has no gyroscope at this position.
        trial: trial identifier within (subject, activity).
        source: the file (or files) the recording came from.
        events: named intervals in seconds from the recording's start, e.g. {"fall": (4.7, 7.7)}.
        safety: "safe" or "unsafe", derived from `label`.
    """

    dataset: str
    subject: str
    activity: str
    label: str
    position: str
    fs: float
    acc: np.ndarray
    gyro: np.ndarray | None
    trial: str = ""
    source: str = ""
    events: dict[str, tuple[float, float]] = field(default_factory=dict)
    safety: str = field(init=False)

    def __post_init__(self):
        check_shared(self.label)
        self.safety = safety_of(self.label)
        if self.acc.ndim != 2 or self.acc.shape[1] != 3:
            raise RecordingFileError(self.source, f"acc must have shape [T, 3], got {self.acc.shape}")
        if self.gyro is not None and self.gyro.shape != self.acc.shape:
            raise RecordingFileError(self.source, f"gyro shape {self.gyro.shape} differs from acc {self.acc.shape}")

    @property
    def duration_s(self) -> float:
        return self.acc.shape[0] / self.fs

    @property
    def imu(self) -> np.ndarray:
        """`[T, 6]` acc then gyro (zeros when there is no gyroscope), the order of `IMU_CHANNELS`."""
        gyro = self.gyro if self.gyro is not None else np.zeros_like(self.acc)
        return np.concatenate((self.acc, gyro), axis=1)


@dataclass
class LoadReport:
    """Recordings loaded from a folder, and the files skipped with their reason."""

    recordings: list[IMURecording]
    skipped: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.recordings)


def load_folder(
    items: Iterable, read_one: Callable[..., IMURecording | list[IMURecording]], *, on_error: str = "skip"
) -> LoadReport:
    """Reads every item with `read_one`; bad files are skipped and reported (`on_error="skip"`) or raise.

    `read_one` may return one recording or a list (files holding several recordings).
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    recordings, skipped = [], []
    for item in items:
        try:
            result = read_one(item)
        except RecordingFileError as error:
            if on_error == "raise":
                raise
            skipped.append((error.path, error.reason))
            continue
        recordings.extend(result if isinstance(result, list) else [result])
    if skipped:
        log.warning("skipped %d bad files, first: %s: %s", len(skipped), *skipped[0])
    return LoadReport(recordings, skipped)


def load_parsed(
    paths: Iterable[Path],
    parse: Callable[[Path], object],
    units_of: Callable[[object], Iterable[Callable[[], IMURecording]]],
    *,
    on_error: str = "skip",
) -> LoadReport:
    """`load_folder` for files holding several recordings (positions, trials) that load or fail one by one.

    Each path is parsed once; a file that cannot be parsed is one skipped entry, and each of its units
    (a zero-argument callable returning one recording) is then loaded or skipped on its own.
    """

    def thunks():
        for path in paths:
            try:
                parsed = parse(path)
            except RecordingFileError as error:
                yield _Raise(error)
                continue
            yield from units_of(parsed)

    return load_folder(thunks(), lambda make: make(), on_error=on_error)


@dataclass(frozen=True)
class _Raise:
    """A unit whose file already failed to parse: loading it re-raises that error (to be reported)."""

    error: RecordingFileError

    def __call__(self) -> IMURecording:
        raise self.error


def check_positions(dataset: str, positions: Iterable[str] | None, available: Iterable[str]) -> tuple[str, ...]:
    """The requested sensor positions (None: all of `available`); an unknown one is a ValueError."""
    available = tuple(available)
    if positions is None:
        return available
    positions = tuple(positions)
    unknown = [position for position in positions if position not in available]
    if unknown:
        raise ValueError(f"positions {unknown} are not {dataset} positions; choose from {list(available)}")
    return positions


def read_csv_columns(source: str | Path, text: str, columns: Iterable[str], *, name: str = "the table") -> np.ndarray:
    """`[T, len(columns)]` floats of the named columns of CSV `text` (header row first; blank lines skipped).

    Missing columns, a short or non-numeric row, and a table without rows are `RecordingFileError`s
    naming `source` (and the line).
    """
    columns = list(columns)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise RecordingFileError(source, "empty file")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in columns if name not in header]
    if missing:
        raise RecordingFileError(source, f"missing columns {missing} (header {header})")
    index = [header.index(name) for name in columns]
    values = []
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            values.append([float(row[i]) for i in index])
        except (IndexError, ValueError):
            raise RecordingFileError(source, f"line {line_number} is truncated or not numeric: {row}") from None
    return check_finite_nonempty(source, name, np.asarray(values, dtype=np.float64).reshape(-1, len(columns)))


def check_finite_nonempty(path: str | Path, name: str, values: np.ndarray, min_samples: int = 2) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] < min_samples:
        raise RecordingFileError(path, f"{name} has {values.shape[0]} samples; the recording is empty or truncated")
    if not np.isfinite(values).all():
        raise RecordingFileError(path, f"{name} contains NaN or infinite values")
    return values


def check_acc_units(path: str | Path, acc: np.ndarray) -> np.ndarray:
    """Raises unless the median |acc| looks like m/s² with gravity (catches data still in g or counts)."""
    median = float(np.median(np.linalg.norm(acc, axis=1)))
    low, high = ACC_MAGNITUDE_RANGE
    if not low <= median <= high:
        raise RecordingFileError(
            path, f"median |acc| is {median:.3g}, not m/s² including gravity (expected {low:.1f}–{high:.1f}); wrong units?"
        )
    return acc


def check_gyro_units(path: str | Path, gyro: np.ndarray) -> np.ndarray:
    """Raises when the median |gyro| is implausible for rad/s (catches data still in °/s)."""
    median = float(np.median(np.linalg.norm(gyro, axis=1)))
    if median > GYRO_MEDIAN_LIMIT:
        raise RecordingFileError(path, f"median |gyro| is {median:.3g}, too large for rad/s; wrong units (°/s)?")
    return gyro


def resample_uniform(values: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """`[T, C]` uniformly sampled at `fs_in` → `fs_out` Hz by polyphase filtering (anti-aliased, scipy)."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be > 0, got fs_in={fs_in}, fs_out={fs_out}")
    if np.isclose(fs_in, fs_out, rtol=1e-9):
        return np.asarray(values, dtype=np.float64)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    # padtype="line" continues the signal linearly at the ends: no dip toward zero (gravity) at the edges.
    return resample_poly(values, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def resample_timestamps(
    path: str | Path, times_s: np.ndarray, values: np.ndarray, fs_out: float, *, trust_timestamps: bool = True
) -> np.ndarray:
    """`[T, C]` samples with irregular timestamps (s) → uniform `fs_out` Hz, anti-aliased.

    With `trust_timestamps` the samples are linearly interpolated onto a uniform grid at their mean rate.
    Without it the timestamps are taken as delivery times (e.g. BLE batches: bursts of samples a
    millisecond apart, then a gap, sometimes out of order) and only the first and last are used: the
    samples, in file order, are spread evenly over that span.
    Either way the uniform signal is then resampled with a polyphase anti-aliasing filter.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    if times_s.ndim != 1 or times_s.shape[0] != values.shape[0]:
        raise RecordingFileError(path, f"{times_s.shape[0]} timestamps for {values.shape[0]} samples")
    if times_s.shape[0] < 2:
        raise RecordingFileError(path, f"{times_s.shape[0]} samples; the recording is empty or truncated")
    if trust_timestamps and np.any(np.diff(times_s) < 0):
        raise RecordingFileError(path, "timestamps must increase")
    span = times_s[-1] - times_s[0]
    if span <= 0:
        raise RecordingFileError(path, "all timestamps are equal")
    fs_mean = (times_s.shape[0] - 1) / span
    if trust_timestamps:
        grid = times_s[0] + np.arange(times_s.shape[0]) / fs_mean
        values = np.stack([np.interp(grid, times_s, values[:, c]) for c in range(values.shape[1])], axis=1)
    return resample_uniform(values, fs_mean, fs_out)
