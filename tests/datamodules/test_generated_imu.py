"""GeneratedIMUDataset and the shard format on a hand-made folder (the generator's own output is read in
tests/docs/test_generate_imu_dataset.py)."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.generated_imu import (
    INDEX_FILE,
    META_FILE,
    GeneratedIMUDataset,
    read_index,
    shard_array,
    shard_path,
    write_shard,
)
from datamodules.labels import SAFETY_LABELS, SHARED_CLASSES

ACTIVITIES = ("walking", "falling", "walking", "jumping", "fighting")
SAFETY = ("safe", "unsafe", "safe", "safe", "unsafe")
T_IMU, FRAMES, SHARD_SIZE = 7, 4, 2


def make_folder(root, activities=ACTIVITIES, safety=SAFETY):
    """Five samples in shards of two (2 + 2 + 1): imu row k is filled with k, joints with −k."""
    root.mkdir(exist_ok=True)
    (root / META_FILE).write_text(json.dumps({"settings": {"target_hz": 50.0}}))
    lines, rows = [], []
    for k, (activity, label) in enumerate(zip(activities, safety)):
        shard, row = divmod(k, SHARD_SIZE)
        lines.append({"shard": shard, "row": row, "prompt": f"prompt {k}", "activity": activity, "safety": label,
                      "sample": 0, "seed": k, "length": FRAMES})
        rows.append(k)
    for shard in range(0, len(rows), SHARD_SIZE):
        chunk = rows[shard:shard + SHARD_SIZE]
        write_shard(shard_path(root, shard // SHARD_SIZE), {
            "imu": np.stack([np.full((T_IMU, 6), k, np.float32) for k in chunk]),
            "joints": np.stack([np.full((FRAMES, 22, 3), -k, np.float16) for k in chunk]),
        })
    (root / INDEX_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def test_items_labels_and_safety(tmp_path):
    dataset = GeneratedIMUDataset(make_folder(tmp_path / "data"))
    assert len(dataset) == 5 and dataset.dropped == 0 and dataset.classes == SHARED_CLASSES
    for k, item in enumerate(dataset):
        assert item["imu"].dtype == torch.float32 and item["imu"].shape == (T_IMU, 6)
        assert torch.equal(item["imu"], torch.full((T_IMU, 6), float(k)))  # the right shard and row
        assert item["label"] == SHARED_CLASSES.index(ACTIVITIES[k])
        assert item["safety"] == SAFETY_LABELS.index(SAFETY[k])
        assert item["prompt"] == f"prompt {k}"
    assert dataset.labels.tolist() == [SHARED_CLASSES.index(a) for a in ACTIVITIES]
    assert dataset.meta["settings"]["target_hz"] == 50.0


def test_a_class_subset_relabels_and_drops(tmp_path):
    dataset = GeneratedIMUDataset(make_folder(tmp_path / "data"), classes=["falling", "walking"])
    assert len(dataset) == 3 and dataset.dropped == 2  # jumping and fighting left out
    assert [item["label"] for item in dataset] == [1, 0, 1]
    assert [item["imu"][0, 0].item() for item in dataset] == [0.0, 1.0, 2.0]


def test_batches_collate_and_pickled_copies_map_their_own_shards(tmp_path):
    dataset = GeneratedIMUDataset(make_folder(tmp_path / "data"))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["imu"].shape == (4, T_IMU, 6) and batch["label"].tolist() == dataset.labels[:4].tolist()
    assert dataset._imu  # shards mapped by now
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._imu == {} and torch.equal(copy[4]["imu"], dataset[4]["imu"])


def test_shards_are_byte_deterministic_npz_and_memory_mapped(tmp_path):
    arrays = {"imu": np.arange(24, dtype=np.float32).reshape(2, 2, 6), "joints": np.ones((2, 3, 22, 3), np.float16)}
    write_shard(tmp_path / "a.npz", arrays)
    write_shard(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as loaded:  # a plain .npz for numpy
        assert all(np.array_equal(loaded[name], value) and loaded[name].dtype == value.dtype
                   for name, value in arrays.items())
    mapped = shard_array(tmp_path / "a.npz", "imu")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, arrays["imu"])
    assert not list(tmp_path.glob("*.partial"))


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        GeneratedIMUDataset(tmp_path / "absent")
    root = make_folder(tmp_path / "data")
    (root / META_FILE).unlink()
    with pytest.raises(ValueError, match="meta.json is missing"):
        GeneratedIMUDataset(root)

    root = make_folder(tmp_path / "no_shard")
    shard_path(root, 1).unlink()
    with pytest.raises(ValueError, match="shard_00001.npz"):
        GeneratedIMUDataset(root)

    root = make_folder(tmp_path / "truncated")
    data = shard_path(root, 2).read_bytes()
    shard_path(root, 2).write_bytes(data[: len(data) // 2])
    dataset = GeneratedIMUDataset(root)
    with pytest.raises(ValueError, match="shard_00002.npz is corrupt"):
        dataset[4]

    root = make_folder(tmp_path / "compressed")
    with zipfile.ZipFile(shard_path(root, 0), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imu.npy", b"")
    with pytest.raises(ValueError, match="compressed"):
        shard_array(shard_path(root, 0), "imu")

    root = make_folder(tmp_path / "short")
    write_shard(shard_path(root, 1), {"imu": np.zeros((1, T_IMU, 6), np.float32)})
    with pytest.raises(ValueError, match="shard_00001.npz has 1 rows"):
        GeneratedIMUDataset(root)[3]

    root = make_folder(tmp_path / "bad_dtype")
    write_shard(shard_path(root, 0), {"imu": np.zeros((2, T_IMU, 6), np.float64)})
    with pytest.raises(ValueError, match="float32"):
        GeneratedIMUDataset(root)[0]


def test_bad_index_lines_are_named(tmp_path):
    root = make_folder(tmp_path / "data")
    lines = (root / INDEX_FILE).read_text().splitlines()
    (root / INDEX_FILE).write_text("\n".join([*lines[:2], "{not json", *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match="index.jsonl line 3 is not valid JSON"):
        GeneratedIMUDataset(root)
    for field, value, message in (("activity", "dancing", "activity"), ("safety", "risky", "safety"),
                                  ("row", -1, "row"), ("shard", "0", "shard")):
        row = {**json.loads(lines[1]), field: value}
        (root / INDEX_FILE).write_text("\n".join([lines[0], json.dumps(row)]) + "\n")
        with pytest.raises(ValueError, match=f"line 2: bad .*{message}"):
            read_index(root)
    del row["seed"]
    (root / INDEX_FILE).write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"line 1 lacks \['seed'\]"):
        read_index(root)
    (root / INDEX_FILE).unlink()
    with pytest.raises(ValueError, match="index.jsonl is missing"):
        read_index(root)


def test_bad_classes_are_named(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(ValueError, match="'dancing' is not a shared class"):
        GeneratedIMUDataset(root, classes=["walking", "dancing"])
    with pytest.raises(ValueError, match="without repeats"):
        GeneratedIMUDataset(root, classes=["walking", "walking"])
    with pytest.raises(ValueError, match="the string"):
        GeneratedIMUDataset(root, classes="walking")
    with pytest.raises(ValueError, match="no sample of the classes"):
        GeneratedIMUDataset(root, classes=["lying"])
