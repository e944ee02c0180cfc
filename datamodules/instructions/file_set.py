"""Instruction examples from a JSONL file (`schema.read_jsonl`) as training items: what the teacher tool wrote,
or `ToyMultimodalDataset.write_jsonl`, with the clips' frames and IMU loaded from their references.

Items have the keys of `ToyMultimodalDataset` items, so the same collate and model take them. Every clip
becomes a fixed size so that clips batch together:
- IMU: resampled to `imu_hz` (scipy polyphase), then the central `imu_length` samples; a shorter
  recording is padded by repeating its last sample (a still sensor, not zeros, which would read as
  free fall).
- video: `num_frames` images of the frame folder spread evenly over it (a single image repeated), resized
  to `frame_size` (bilinear), RGB in [0, 1]. A clip without video gets zero frames and `has_video`
  (`compared_has_video`) False: the collate marks its frames as padding, so the model gives it no
  `<video>` and answers from the IMU alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.image import imread

from datamodules.instructions.schema import Clip, positive_int, positive_number, read_jsonl
from datamodules.instructions.teacher import keyframes, load_imu
from datamodules.instructions.toy_set import virtual_imu
from datamodules.readers.base import resample_uniform
from motion.render import check_size


def fit_length(imu: np.ndarray, length: int) -> np.ndarray:
    """The central `length` samples of `imu` `[T, C]`, or all of it padded at the end with its last sample."""
    if imu.shape[0] >= length:
        start = (imu.shape[0] - length) // 2
        return imu[start : start + length]
    return np.concatenate([imu, np.repeat(imu[-1:], length - imu.shape[0], axis=0)])


class InstructionFileDataset:
    """Map-style set of the examples of a JSONL file (module docstring for the sizes).

    Args:
        path: the JSONL file; relative references in it are relative to its folder.
        imu_hz: IMU rate of the items (Hz); imu_length: IMU samples per clip.
        num_frames: frames per clip; frame_size: (H, W) of the frames.
    """

    def __init__(self, path: str | Path, *, imu_hz: float = 50.0, imu_length: int = 198, num_frames: int = 16,
                 frame_size: tuple[int, int] = (112, 112)) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"path {str(path)!r} is not an instruction JSONL file")
        self.examples = read_jsonl(self.path)
        if not self.examples:
            raise ValueError(f"path {str(path)!r} holds no examples")
        self.imu_hz = positive_number("imu_hz", imu_hz)
        self.imu_length = positive_int("imu_length", imu_length)
        self.num_frames = positive_int("num_frames", num_frames)
        self.frame_size = check_size(frame_size)

    def __len__(self) -> int:
        return len(self.examples)

    def imu(self, clip: Clip) -> torch.Tensor:
        """The clip's IMU `[imu_length, 6]` float32 at `imu_hz` (m/s², rad/s)."""
        values, rate_hz = load_imu(clip.imu, self.path.parent, virtual_imu)
        if rate_hz != self.imu_hz:
            values = resample_uniform(values, rate_hz, self.imu_hz)
        return torch.from_numpy(fit_length(values, self.imu_length)).float()

    def frames(self, clip: Clip) -> torch.Tensor:
        """The clip's frames `[num_frames, 3, H, W]` float32 RGB in [0, 1]."""
        height, width = self.frame_size
        files = keyframes(clip.video, self.path.parent, self.num_frames)
        if not files:
            return torch.zeros(self.num_frames, 3, height, width)
        images = []
        for file in files:
            raw = imread(file)  # PNG: floats in [0, 1]; JPEG: uint8
            image = raw.astype(np.float32) / 255.0 if raw.dtype == np.uint8 else raw.astype(np.float32)
            image = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
            images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        frames = F.interpolate(torch.stack(images), size=(height, width), mode="bilinear", align_corners=False)
        picks = np.linspace(0, len(files) - 1, self.num_frames).round().astype(int)  # repeat when too few
        return frames[torch.from_numpy(picks)].clamp(0.0, 1.0)

    def __getitem__(self, index: int) -> dict:
        example = self.examples[index]
        item = {"id": example.id, "frames": self.frames(example.clip), "has_video": example.clip.video is not None,
                "imu": self.imu(example.clip),
                "activity": example.clip.activity, "safety": example.clip.safety,
                "prompt_type": example.prompt_type, "instruction": example.instruction, "response": example.response}
        other = example.compared_with
        if other is not None:
            item.update(compared_frames=self.frames(other), compared_has_video=other.video is not None,
                        compared_imu=self.imu(other),
                        compared_activity=other.activity, compared_safety=other.safety)
        return item

    def __repr__(self) -> str:
        return f"InstructionFileDataset({str(self.path)!r}, {len(self)} examples)"
