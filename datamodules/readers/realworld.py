"""RealWorld HAR 2016 (Sztyler & Stuckenschmidt, PerCom 2016): 15 subjects, 8 activities, 7 on-body devices.

Reference: T. Sztyler, H. Stuckenschmidt, "On-body localization of wearable devices: an investigation of
position-aware activity recognition", PerCom 2016, doi:10.1109/PERCOM.2016.7456521; dataset page
https://www.uni-mannheim.de/dws/research/projects/activity-recognition/dataset/dataset-realworld/.

Facts this reader relies on (dataset page and public loaders of it):
- Layout `proband{N}/data/{sensor}_{activity}_csv.zip`; sensor `acc` (accelerometer) or `gyr` (gyroscope).
- Inside, one CSV per position: `acc_{activity}_{position}.csv` in the acc zip but
  `Gyroscope_{activity}_{position}.csv` in the gyr zip, with columns `id,attr_time,attr_x,attr_y,attr_z`;
  `attr_time` is a Unix time in milliseconds, acc in m/s² (gravity included), gyro in rad/s (Android
  sensor units). Devices sample at ~50 Hz with irregular timestamps, each sensor on its own clock ticks.
- Some zips hold several sessions, either as CSVs with a session suffix (`acc_walking_2_forearm.csv`) or
  as zips nested in the zip (`acc_climbingup_csv.zip` ∋ `acc_climbingup_2_csv.zip` ∋ CSVs). The names do
  not match between sensors (the first acc session is `acc_climbingup_1_csv.zip`, the first gyro session
  `gyr_climbingup_csv.zip`), so acc and gyro recordings are paired by time overlap, not by name.
- Positions chest, forearm, head, shin, thigh, upperarm, waist (kept as the dataset names them: the side
  of the limb devices is not documented). Activities climbingdown, climbingup, jumping, lying, running,
  sitting, standing, walking.

Each acc recording is paired with the gyro recording of the same position and activity that overlaps it
longest; both are interpolated onto one uniform grid over the overlap (at the faster stream's mean rate, so
interpolation never decimates) and then resampled to `fs` with the anti-aliasing polyphase filter.
Nested zips are read in memory (zipfile + BytesIO), nothing is extracted to disk.

Label choices: climbing up/down → "stairs". Lying, sitting and standing here are minutes of a held posture;
the shared classes "sit_stand" and "lying" are the transitions (sitting down, lying down, getting up), so
the postures map to "other" (the dataset's own name stays in `activity` for anyone who wants them apart).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_gyro_units,
    check_positions,
    load_folder,
    read_csv_columns,
    resample_uniform,
)

ACTIVITIES = {
    "climbingdown": "stairs",
    "climbingup": "stairs",
    "jumping": "jumping",
    "lying": "other",
    "running": "running",
    "sitting": "other",
    "standing": "other",
    "walking": "walking",
}
"""Activity name → shared class."""
POSITIONS = ("chest", "forearm", "head", "shin", "thigh", "upperarm", "waist")
CSV_PREFIX = {"acc": "acc", "gyr": "Gyroscope"}
"""Zip sensor name → prefix of the CSVs inside it."""
COLUMNS = ("attr_time", "attr_x", "attr_y", "attr_z")
MIN_OVERLAP_S = 1.0
"""Shortest acc/gyro overlap that makes a recording."""
PLAUSIBLE_RATE_HZ = (10.0, 1000.0)
"""Mean sampling rates outside this range mean `attr_time` is not in milliseconds."""

_CSV_NAME = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<activity>[a-z]+)(?:_(?P<session>\d+))?_(?P<position>[a-z]+)\.csv$")
_NESTED_SESSION = re.compile(r"_(?P<session>\d+)_csv\.zip$")
_ACC_ZIP = re.compile(r"^acc_(?P<activity>[a-z]+)_csv\.zip$")
_SUBJECT = re.compile(r"^proband(?P<number>\d+)$")


@dataclass
class _Stream:
    """One sensor CSV: times `[T]` in s, values `[T, 3]`."""

    source: str
    session: str
    times_s: np.ndarray
    values: np.ndarray

    @property
    def rate_hz(self) -> float:
        return (self.times_s.shape[0] - 1) / (self.times_s[-1] - self.times_s[0])


def _csv_members(
    archive: zipfile.ZipFile, source: str, session: str
) -> Iterator[tuple[str, str, str, Callable[[], bytes]]]:
    """(source, name, session, read) of every CSV in `archive`, descending into zips nested inside it.

    `read()` returns the CSV's bytes; call it before advancing the iterator (the archive closes after).
    """
    for name in archive.namelist():
        base = PurePosixPath(name).name
        member_source = f"{source}/{name}"
        if base.endswith(".zip"):
            nested = _NESTED_SESSION.search(base)
            try:
                inner = zipfile.ZipFile(io.BytesIO(archive.read(name)))
            except zipfile.BadZipFile:
                raise RecordingFileError(member_source, "nested file is not a zip archive") from None
            with inner:
                yield from _csv_members(inner, member_source, nested["session"] if nested else session)
        elif base.endswith(".csv"):
            yield member_source, base, session, partial(archive.read, name)


def _parse_csv(source: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Times `[T]` in s and values `[T, 3]` of one `id,attr_time,attr_x,attr_y,attr_z` CSV."""
    table = read_csv_columns(source, data.decode("utf-8-sig"), COLUMNS, name="the sensor table")
    times_s = table[:, 0] / 1000.0
    if np.any(np.diff(times_s) < 0):
        raise RecordingFileError(source, "attr_time decreases")
    span = times_s[-1] - times_s[0]
    rate = (times_s.shape[0] - 1) / span if span > 0 else np.inf
    low, high = PLAUSIBLE_RATE_HZ
    if not low <= rate <= high:
        raise RecordingFileError(source, f"attr_time implies {rate:.3g} Hz; expected milliseconds at ~50 Hz")
    return times_s, table[:, 1:]


def _read_streams(zip_path: Path, sensor: str, activity: str, positions: tuple[str, ...]) -> dict[str, list[_Stream]]:
    """Every `sensor` CSV of `activity` at `positions` in one zip (nested zips included), by position."""
    prefix = CSV_PREFIX[sensor]
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise RecordingFileError(zip_path, "file not found") from None
    except zipfile.BadZipFile:
        raise RecordingFileError(zip_path, "not a zip archive") from None
    streams: dict[str, list[_Stream]] = {position: [] for position in positions}
    with archive:
        for source, name, zip_session, read in _csv_members(archive, str(zip_path), "1"):
            match = _CSV_NAME.match(name)
            if not match or match["prefix"] != prefix or match["activity"] != activity:
                continue
            if match["position"] in streams:
                times_s, values = _parse_csv(source, read())
                session = match["session"] or zip_session
                streams[match["position"]].append(_Stream(source, session, times_s, values))
    return streams


def _require(zip_path: Path, sensor: str, activity: str, streams: dict[str, list[_Stream]]) -> None:
    for position, found in streams.items():
        if not found:
            raise RecordingFileError(zip_path, f"no {CSV_PREFIX[sensor]}_{activity}[_N]_{position}.csv inside")


def _overlap_s(a: _Stream, b: _Stream) -> float:
    return min(a.times_s[-1], b.times_s[-1]) - max(a.times_s[0], b.times_s[0])


def _on_common_grid(acc: _Stream, gyro: _Stream, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """acc and gyro `[T, 3]` interpolated onto one uniform grid over their overlap, then resampled to `fs`."""
    start = max(acc.times_s[0], gyro.times_s[0])
    rate = max(acc.rate_hz, gyro.rate_hz)
    grid = start + np.arange(int(np.floor(_overlap_s(acc, gyro) * rate)) + 1) / rate

    def onto_grid(stream: _Stream) -> np.ndarray:
        columns = [np.interp(grid, stream.times_s, stream.values[:, c]) for c in range(3)]
        return resample_uniform(np.stack(columns, axis=1), rate, fs)

    return onto_grid(acc), onto_grid(gyro)


def read_realworld_file(
    path: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None
) -> list[IMURecording]:
    """Recordings of one subject and activity from `proband{N}/data/acc_{activity}_csv.zip` and the
    `gyr_{activity}_csv.zip` beside it: one per (position, session), each `[T, 3]` at `fs` Hz.

    `positions=None` reads every position in the zip; named positions must all be present.
    """
    path = Path(path)
    name_match = _ACC_ZIP.match(path.name)
    subject_match = _SUBJECT.match(path.parent.parent.name)
    if not name_match or path.parent.name != "data" or not subject_match:
        raise RecordingFileError(path, "expected a path like proband1/data/acc_walking_csv.zip")
    activity = name_match["activity"]
    if activity not in ACTIVITIES:
        raise RecordingFileError(path, f"unknown activity {activity!r}; expected one of {sorted(ACTIVITIES)}")
    wanted = check_positions("RealWorld HAR", positions, POSITIONS)
    acc_streams = _read_streams(path, "acc", activity, wanted)
    if positions is None:
        acc_streams = {position: found for position, found in acc_streams.items() if found}
        if not acc_streams:
            raise RecordingFileError(path, f"no acc_{activity}[_N]_{{position}}.csv inside")
    _require(path, "acc", activity, acc_streams)
    gyro_path = path.with_name(f"gyr_{activity}_csv.zip")
    gyro_streams = _read_streams(gyro_path, "gyr", activity, tuple(acc_streams))
    _require(gyro_path, "gyr", activity, gyro_streams)
    recordings = []
    for position, streams in acc_streams.items():
        for acc in streams:
            gyro = max(gyro_streams[position], key=lambda candidate: _overlap_s(acc, candidate))
            if _overlap_s(acc, gyro) < MIN_OVERLAP_S:
                raise RecordingFileError(
                    acc.source, f"no gyroscope recording in {gyro_path.name} overlaps it by ≥ {MIN_OVERLAP_S} s"
                )
            acc_values, gyro_values = _on_common_grid(acc, gyro, fs)
            recordings.append(
                IMURecording(
                    dataset="realworld",
                    subject=subject_match["number"],
                    activity=activity,
                    label=ACTIVITIES[activity],
                    position=position,
                    fs=fs,
                    acc=check_acc_units(acc.source, acc_values),
                    gyro=check_gyro_units(gyro.source, gyro_values),
                    trial=acc.session,
                    source=f"{acc.source}; {gyro.source}",
                )
            )
    return recordings


def load_realworld(
    root: str | Path, *, fs: float = 50.0, positions: tuple[str, ...] | None = None, on_error: str = "skip"
) -> LoadReport:
    """Every subject, activity and position under `root` (the folder holding `proband1/`, `proband2/`, …).

    Each (acc zip, position) is read and skipped on its own, so a position missing from one zip (the
    dataset lacks a few) is reported without losing the other positions of that activity.
    """
    root = Path(root)
    zips = sorted(root.glob("proband*/data/acc_*_csv.zip"), key=lambda p: (len(p.parent.parent.name), str(p)))
    if not zips:
        raise FileNotFoundError(f"no proband*/data/acc_*_csv.zip under {root}: expected the RealWorld HAR root")
    items = [(path, position) for path in zips for position in check_positions("RealWorld HAR", positions, POSITIONS)]

    def read(item: tuple[Path, str]) -> list[IMURecording]:
        path, position = item
        return read_realworld_file(path, fs=fs, positions=(position,))

    return load_folder(items, read, on_error=on_error)
