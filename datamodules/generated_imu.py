"""A generated virtual-IMU dataset on disk (written by `docs/generate_imu_dataset.py`) as HAR data.

Layout of the folder:
    meta.json            the generation's settings (checked when a generation resumes)
    index.jsonl          one JSON line per kept sample, in generation order: shard, row, prompt, activity
                         (a shared class), safety, sample (index among the prompt's samples), seed (of its
                         sensor draws), length (motion frames)
    rejected.jsonl       one line per sample the quality check rejected: prompt, activity, safety, sample, seed,
                         reasons
    summary.json         kept / rejected counts, per reason and per activity
    shard_00000.npz, …   `imu` [N, T_imu, 6] float32 (m/s², rad/s) and `joints` [N, T, 22, 3] (m, y up,
                         float16 or float32); index line k lives in shard k // shard_size, row k % shard_size

Shards are uncompressed zip archives with fixed timestamps (`write_shard`): the same arrays give the same
bytes, and the reader memory-maps a shard's `imu` instead of loading it, so shuffled access stays cheap.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from numpy.lib import format as npy_format
from torch.utils.data import Dataset

from datamodules.labels import SAFETY_LABELS, SHARED_CLASSES, check_shared

META_FILE = "meta.json"
INDEX_FILE = "index.jsonl"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
INDEX_KEYS = ("shard", "row", "prompt", "activity", "safety", "sample", "seed", "length")
REJECTED_KEYS = ("prompt", "activity", "safety", "sample", "seed", "reasons")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: no wall-clock time in the bytes
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def shard_path(root: str | Path, shard: int) -> Path:
    return Path(root) / f"shard_{shard:05d}.npz"


def write_shard(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` as an uncompressed .npz (readable by `np.load`), atomically: a crash leaves the old file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH), "w", force_zip64=True) as member:
                npy_format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    with open(partial, "rb") as file:
        os.fsync(file.fileno())
    os.replace(partial, path)


def shard_array(path: str | Path, name: str) -> np.memmap:
    """Read-only memory map of the array `name` of a shard written by `write_shard`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"shard {path} is missing")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{name}.npy")
        with open(path, "rb") as file:
            file.seek(info.header_offset)
            header = file.read(_LOCAL_HEADER)
            if header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("no local file header where the directory points")
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            file.seek(info.header_offset + _LOCAL_HEADER + name_length + extra_length)
            version = npy_format.read_magic(file)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(file)
            offset = file.tell()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"shard {path} is corrupt or lacks the array {name!r}: {error}") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"shard {path}: array {name!r} is compressed; shards must be stored uncompressed (write_shard)")
    if offset + dtype.itemsize * math.prod(shape) > path.stat().st_size:
        raise ValueError(f"shard {path} is truncated: array {name!r} {shape} runs past the end of the file")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


def read_jsonl(path: str | Path, required: Sequence[str] = ()) -> list[dict]:
    """The JSON objects of a .jsonl file, each with the keys `required` (errors name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} line {number} is not valid JSON ({error})") from None
        missing = [key for key in required if not isinstance(row, dict) or key not in row]
        if missing:
            raise ValueError(f"{path} line {number} lacks {missing}")
        rows.append(row)
    return rows


def read_index(root: str | Path) -> list[dict]:
    """The index lines of a generated dataset, checked: shared classes, safety labels, shard and row ≥ 0."""
    path = Path(root) / INDEX_FILE
    rows = read_jsonl(path, INDEX_KEYS)
    for number, row in enumerate(rows, start=1):
        problems = [key for key in ("shard", "row") if isinstance(row[key], bool) or not isinstance(row[key], int)
                    or row[key] < 0]
        problems += [] if row["activity"] in SHARED_CLASSES else ["activity"]
        problems += [] if row["safety"] in SAFETY_LABELS else ["safety"]
        if problems:
            raise ValueError(f"{path} line {number}: bad {problems} in {row}")
    return rows


class GeneratedIMUDataset(Dataset):
    """A generated dataset as HAR data: item → {"imu": [T, 6] float32 (m/s², rad/s), "label": int, "safety": int,
    "prompt": str}; the label indexes `classes`, the safety `datamodules.labels.SAFETY_LABELS`.

    Args:
        root: the folder `docs/generate_imu_dataset.py --out` wrote.
        classes: shared classes in label order (None: all of `datamodules.labels.SHARED_CLASSES`); samples
            of other activities are left out (`dropped` counts them).

    Shards are memory-mapped on first use (per process, so DataLoader workers map their own).
    """

    def __init__(self, root: str | Path, *, classes: Sequence[str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root {self.root} is not a folder")
        meta = self.root / META_FILE
        if not meta.is_file():
            raise ValueError(f"{meta} is missing: not a generated dataset")
        self.meta = json.loads(meta.read_text())
        if isinstance(classes, str):
            raise ValueError(f"classes must be a list of shared classes, got the string {classes!r}")
        self.classes = SHARED_CLASSES if classes is None else tuple(check_shared(name) for name in classes)
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be a non-empty list without repeats, got {self.classes}")
        rows = read_index(self.root)
        self.samples = [row for row in rows if row["activity"] in self.classes]
        self.dropped = len(rows) - len(self.samples)
        if not self.samples:
            raise ValueError(f"{self.root / INDEX_FILE} holds no sample of the classes {self.classes}")
        missing = sorted({str(shard_path(self.root, row["shard"])) for row in self.samples
                          if not shard_path(self.root, row["shard"]).is_file()})
        if missing:
            raise ValueError(f"shards named in {self.root / INDEX_FILE} are missing: {missing}")
        self.labels = torch.tensor([self.classes.index(row["activity"]) for row in self.samples])
        self.safety = torch.tensor([SAFETY_LABELS.index(row["safety"]) for row in self.samples])
        self._imu: dict[int, np.memmap] = {}

    def __getstate__(self) -> dict:
        # Memory maps do not travel to worker processes (pickling would copy them): each maps its own.
        return {**self.__dict__, "_imu": {}}

    def _shard_imu(self, shard: int) -> np.memmap:
        if shard not in self._imu:
            path = shard_path(self.root, shard)
            imu = shard_array(path, "imu")
            if imu.ndim != 3 or imu.shape[2] != 6 or imu.dtype != np.float32:
                raise ValueError(f"shard {path}: imu must be float32 [N, T, 6], got {imu.dtype} {imu.shape}")
            self._imu[shard] = imu
        return self._imu[shard]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        row = self.samples[index]
        imu = self._shard_imu(row["shard"])
        if row["row"] >= imu.shape[0]:
            path = shard_path(self.root, row["shard"])
            raise ValueError(f"shard {path} has {imu.shape[0]} rows; {INDEX_FILE} points at row {row['row']}")
        return {
            "imu": torch.from_numpy(np.array(imu[row["row"]])),
            "label": int(self.labels[index]),
            "safety": int(self.safety[index]),
            "prompt": row["prompt"],
        }
