"""Instruction JSONL files as training items: the toy set written to JSONL reads back to the same items."""

import json

import numpy as np
import pytest
import torch
from matplotlib.image import imsave

from datamodules.instruction_datamodule import collate_instructions
from datamodules.instructions.file_set import InstructionFileDataset, fit_length
from datamodules.instructions.toy_set import ToyMultimodalDataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> ToyMultimodalDataset:
    return ToyMultimodalDataset(num_clips=4, seed=0, frame_size=(32, 32), num_frames=4)


def test_written_toy_set_reads_back_to_the_same_items(toy, tmp_path):
    path = tmp_path / "toy.jsonl"
    toy.write_jsonl(path, frames_dir=tmp_path / "frames")
    files = InstructionFileDataset(path, imu_hz=50.0, imu_length=198, num_frames=4, frame_size=(32, 32))
    assert len(files) == len(toy)
    for index in range(len(toy)):
        expected, item = toy[index], files[index]
        flags = {"has_video"} | ({"compared_has_video"} if "compared_imu" in expected else set())
        assert set(item) == set(expected) | flags and all(item[flag] is True for flag in flags)
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                # The IMU is re-simulated from its spec; the frames come back from 8-bit PNGs.
                torch.testing.assert_close(item[key], value, atol=1e-6, rtol=0, msg=key)
            else:
                assert item[key] == value, key
    batch = collate_instructions([files[i] for i in range(len(files))])
    assert batch["clips_per_sample"] == [1, 1, 2, 1]


def test_real_imu_files_are_resampled_and_fitted_and_frames_resized(tmp_path):
    t = np.arange(100) / 100.0  # 1 s at 100 Hz
    imu = np.stack([np.sin(2 * np.pi * t)] * 3 + [np.full_like(t, 0.5)] * 3, axis=1)
    np.save(tmp_path / "rec.npy", imu)
    (tmp_path / "frames").mkdir()
    for k in range(3):
        imsave(tmp_path / "frames" / f"{k}.png", np.full((20, 30, 3), k / 2.0))
    example = {"id": "real-0", "source": "teacher", "prompt_type": "description", "instruction": "What happens?",
               "response": "The person is walking.", "activity": "walking", "safety": "safe", "video": "frames",
               "imu": {"kind": "file", "path": "rec.npy", "format": "npy", "rate_hz": 100.0}, "compared_with": None}
    (tmp_path / "real.jsonl").write_text(json.dumps(example) + "\n")
    files = InstructionFileDataset(tmp_path / "real.jsonl", imu_hz=50.0, imu_length=80, num_frames=5,
                                   frame_size=(16, 16))
    item = files[0]
    # 100 → 50 Hz gives 50 samples, padded to 80 by repeating the last one.
    assert item["imu"].shape == (80, 6)
    torch.testing.assert_close(item["imu"][:, 3:], torch.full((80, 3), 0.5), atol=1e-6, rtol=0)
    assert torch.equal(item["imu"][50:], item["imu"][49:50].expand(30, 6))
    # 3 images spread over 5 frames (repeats), resized to 16 × 16; grey levels kept.
    assert item["frames"].shape == (5, 3, 16, 16)
    levels = [round(float(frame.mean()), 2) for frame in item["frames"]]
    assert levels == [0.0, 0.0, 0.5, 1.0, 1.0]  # indices round(linspace(0, 2, 5)) = 0, 0, 1, 2, 2
    assert item["has_video"] is True

    (tmp_path / "real.jsonl").write_text(json.dumps({**example, "video": None}) + "\n")
    no_video = InstructionFileDataset(tmp_path / "real.jsonl", imu_hz=50.0, imu_length=80, num_frames=5,
                                      frame_size=(16, 16))[0]
    assert no_video["has_video"] is False and torch.equal(no_video["frames"], torch.zeros(5, 3, 16, 16))
    batch = collate_instructions([no_video, item])
    assert batch["video_padding_mask"].tolist() == [[True] * 5, [False] * 5]
    assert collate_instructions([item])["video_padding_mask"] is None


def test_fit_length_by_hand():
    values = np.arange(10)[:, None]
    assert fit_length(values, 4)[:, 0].tolist() == [3, 4, 5, 6]  # central samples
    assert fit_length(values[:3], 5)[:, 0].tolist() == [0, 1, 2, 2, 2]


def test_bad_files_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="path"):
        InstructionFileDataset(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="no examples"):
        InstructionFileDataset(tmp_path / "empty.jsonl")
    ToyMultimodalDataset(num_clips=2, seed=0, frame_size=(32, 32), num_frames=2).write_jsonl(tmp_path / "toy.jsonl")
    for kwargs, match in ((dict(imu_hz=0), "imu_hz"), (dict(imu_length=2.5), "imu_length"),
                          (dict(num_frames=0), "num_frames"), (dict(frame_size=(8, 8)), "size")):
        with pytest.raises(ValueError, match=match):
            InstructionFileDataset(tmp_path / "toy.jsonl", **kwargs)
