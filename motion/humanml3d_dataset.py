"""Reader for a HumanML3D folder: 263-d motion features with their text descriptions.

Folder layout (github.com/EricGuo5513/HumanML3D):

    root/
      new_joint_vecs/{id}.npy   [T, 263] features (`motion.humanml3d`), 20 fps
      new_joints/{id}.npy       [T, 22, 3] joints (optional; not read: `joints()` decodes the features)
      texts/{id}.txt            one description per line: caption#tokens#start#end
      Mean.npy, Std.npy         [263] normalisation statistics
      train.txt, val.txt, test.txt   one id per line

In a text line, tokens are `word/POS` separated by spaces; start and end are seconds. 0.0#0.0 (or NaN)
describes the whole clip; any other pair describes the sub-clip of frames int(start·20):int(end·20),
which becomes an item of its own. Items are kept, as in the text-to-motion loaders of HumanML3D and
MDM (GuyTevet/motion-diffusion-model, `data_loaders/humanml/data/dataset.py`), when
min_frames ≤ length ≤ max_source_frames: those loaders drop clips shorter than 40 frames or of 200
frames and more, and crop what they keep to at most 196 frames (`max_frames`). Differences: MDM crops
at a random offset to a multiple of 4 frames, this reader only crops clips longer than `max_frames`, at
an offset drawn from (seed, item); MDM makes one item per sub-clip line, this reader one per distinct
frame span (lines that select the same frames share an item).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from motion.humanml3d import FEATURE_DIM, recover_from_ric
from motion.skeleton import FPS

MDM_MIN_FRAMES = 40
MDM_MAX_SOURCE_FRAMES = 199
"""MDM keeps clips and sub-clips with 40 ≤ frames < 200."""
MDM_MAX_FRAMES = 196
"""MDM's longest training window (frames)."""


@dataclass(frozen=True)
class Description:
    """One line of a text file: the caption and its `word/POS` tokens."""

    caption: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    item_id: str
    source_id: str
    start_frame: int
    length: int
    descriptions: tuple[Description, ...]


def _read_array_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file without reading its data."""
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(file)
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None
    return shape, dtype


def _load_vector(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    values = np.load(path)
    if values.shape != (FEATURE_DIM,) or not np.isfinite(values).all():
        raise ValueError(f"{path}: expected {FEATURE_DIM} finite values, got shape {values.shape}")
    return values.astype(np.float32)


def parse_text_line(line: str, *, path: Path, line_number: int) -> tuple[Description, float, float]:
    """`caption#tokens#start#end` → (description, start_s, end_s); NaN times read as 0.0 like MDM."""
    fields = line.split("#")
    where = f"{path}:{line_number}"
    if len(fields) != 4:
        raise ValueError(f"{where}: expected 4 '#'-separated fields caption#tokens#start#end, got {len(fields)}")
    caption, token_field, start_text, end_text = fields
    tokens = tuple(token_field.split())
    bad_tokens = [token for token in tokens if "/" not in token]
    if bad_tokens:
        raise ValueError(f"{where}: tokens must be word/POS, got {bad_tokens[:3]}")
    try:
        start_s, end_s = float(start_text), float(end_text)
    except ValueError:
        raise ValueError(f"{where}: start and end must be seconds, got {start_text!r} and {end_text!r}") from None
    start_s, end_s = (0.0 if math.isnan(t) else t for t in (start_s, end_s))
    if not (0.0 <= start_s < math.inf and 0.0 <= end_s < math.inf):
        raise ValueError(f"{where}: start and end must be finite and ≥ 0 s, got {start_text!r} and {end_text!r}")
    return Description(caption.strip(), tokens), start_s, end_s


def read_descriptions(path: Path) -> dict[tuple[float, float], list[Description]]:
    """Descriptions of one text file grouped by (start_s, end_s) span, in file order; (0, 0) = whole clip."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    spans: dict[tuple[float, float], list[Description]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            description, start_s, end_s = parse_text_line(line.strip(), path=path, line_number=number)
            spans.setdefault((start_s, end_s), []).append(description)
    return spans


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


class HumanML3DDataset(Dataset):
    """Map-style set of HumanML3D clips and sub-clips of one split.

    Item i is a dict: `features` `[T, 263]` float32 (z-normalised with Mean/Std when `normalize`),
    `length` (T), `caption` (str), `tokens` (list of `word/POS`), `id` (the file id, or
    `{id}@{start}-{end}` frames for a sub-clip), `source_id` and `start_frame` (first frame of the item
    in the source file, crop included). With several descriptions, `caption_index` picks one (modulo
    their number); otherwise it is drawn from (seed, i), as is the crop offset of clips longer than
    `max_frames`, so an item is the same whichever worker loads it. Use `pad_collate` to batch.

    Attributes:
        mean, std: `[263]` float32 normalisation statistics (Mean.npy, Std.npy).
        skipped: (id, reason) of every clip or sub-clip left out by the length rule.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        split: str,
        normalize: bool = True,
        min_frames: int = MDM_MIN_FRAMES,
        max_frames: int | None = MDM_MAX_FRAMES,
        max_source_frames: int = MDM_MAX_SOURCE_FRAMES,
        caption_index: int | None = None,
        seed: int = 0,
    ):
        _check_count("min_frames", min_frames, 2)
        _check_count("max_source_frames", max_source_frames, min_frames)
        if max_frames is not None:
            _check_count("max_frames", max_frames, min_frames)
        if caption_index is not None:
            _check_count("caption_index", caption_index, 0)
        _check_count("seed", seed, 0)
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root {self.root} is not a folder")
        self.normalize = normalize
        self.max_frames = max_frames
        self.caption_index = caption_index
        self.seed = seed
        self.mean = _load_vector(self.root / "Mean.npy")
        self.std = _load_vector(self.root / "Std.npy")
        if (self.std <= 0).any():
            raise ValueError(f"{self.root / 'Std.npy'}: standard deviations must be > 0")
        self.skipped: list[tuple[str, str]] = []
        self._entries = [
            entry
            for clip_id in self._split_ids(split)
            for entry in self._clip_entries(clip_id, min_frames, max_source_frames)
        ]

    def _split_ids(self, split: str) -> list[str]:
        path = self.root / f"{split}.txt"
        if not path.is_file():
            raise ValueError(f"split {split!r}: file {path} not found")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _motion_path(self, clip_id: str) -> Path:
        return self.root / "new_joint_vecs" / f"{clip_id}.npy"

    def _clip_entries(self, clip_id: str, min_frames: int, max_source_frames: int) -> list[_Entry]:
        path = self._motion_path(clip_id)
        shape, _ = _read_array_header(path)
        if len(shape) != 2 or shape[1] != FEATURE_DIM:
            raise ValueError(f"{path}: expected features [T, {FEATURE_DIM}], got shape {shape}")
        spans = read_descriptions(self.root / "texts" / f"{clip_id}.txt")
        if not spans:
            self.skipped.append((clip_id, "no descriptions"))
        by_frames: dict[tuple[int, int], list[Description]] = {}
        for (start_s, end_s), descriptions in spans.items():
            whole = start_s == 0.0 and end_s == 0.0
            # Python slicing semantics, as in the original loaders: an end past the clip is clipped.
            frames = (0, shape[0]) if whole else (int(start_s * FPS), min(int(end_s * FPS), shape[0]))
            by_frames.setdefault(frames, []).extend(descriptions)
        entries = []
        for (start, stop), descriptions in by_frames.items():
            item_id = clip_id if (start, stop) == (0, shape[0]) else f"{clip_id}@{start}-{stop}"
            length = max(stop - start, 0)
            if not min_frames <= length <= max_source_frames:
                self.skipped.append((item_id, f"{length} frames, outside [{min_frames}, {max_source_frames}]"))
                continue
            entries.append(_Entry(item_id, clip_id, start, length, tuple(descriptions)))
        return entries

    def __len__(self) -> int:
        return len(self._entries)

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -len(self) <= index < len(self):
            raise IndexError(f"index must be an integer in [{-len(self)}, {len(self)}), got {index!r}")
        return int(index) % len(self)

    def raw_features(self, index: int) -> tuple[np.ndarray, int]:
        """Un-normalised features `[T, 263]` float32 of item `index` (cropped) and their first source frame."""
        index = self._check_index(index)
        entry = self._entries[index]
        rng = np.random.default_rng([self.seed, index])
        length = entry.length if self.max_frames is None else min(entry.length, self.max_frames)
        offset = int(rng.integers(entry.length - length + 1))
        path = self._motion_path(entry.source_id)
        values = np.load(path, mmap_mode="r")
        start = entry.start_frame + offset
        window = np.array(values[start : start + length], dtype=np.float32)
        if not np.isfinite(window).all():
            raise ValueError(f"{path}: frames {start}–{start + length} contain non-finite values")
        return window, start

    def _description(self, index: int) -> Description:
        descriptions = self._entries[index].descriptions
        if self.caption_index is not None:
            return descriptions[self.caption_index % len(descriptions)]
        # A second stream of the item's generator, independent of the crop offset's.
        rng = np.random.default_rng([self.seed, index, 1])
        return descriptions[int(rng.integers(len(descriptions)))]

    def descriptions(self, index: int) -> tuple[Description, ...]:
        """All descriptions of item `index`."""
        return self._entries[self._check_index(index)].descriptions

    def __getitem__(self, index: int) -> dict:
        index = self._check_index(index)
        entry = self._entries[index]
        features, start = self.raw_features(index)
        if self.normalize:
            features = (features - self.mean) / self.std
        description = self._description(index)
        return {
            "features": torch.from_numpy(features),
            "length": features.shape[0],
            "caption": description.caption,
            "tokens": list(description.tokens),
            "id": entry.item_id,
            "source_id": entry.source_id,
            "start_frame": start,
        }

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        """Undo the z-normalisation: features `[..., 263]` · Std + Mean (any float dtype and device)."""
        if not isinstance(features, torch.Tensor) or features.shape[-1:] != (FEATURE_DIM,):
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be a tensor [..., {FEATURE_DIM}], got {shape}")
        return features * features.new_tensor(self.std) + features.new_tensor(self.mean)

    def joints(self, index: int) -> torch.Tensor:
        """Joint positions `[T, 22, 3]` float32 (m) of item `index`, decoded with `recover_from_ric`."""
        return recover_from_ric(torch.from_numpy(self.raw_features(index)[0]))


def pad_collate(batch: list[dict]) -> dict:
    """Batches items of different lengths: `features` `[B, T_max, 263]` zero-padded, `mask` `[B, T_max]`
    (True on real frames), `length` `[B]`; every other key becomes a list."""
    if not batch:
        raise ValueError("batch must hold at least one item")
    lengths = torch.tensor([item["length"] for item in batch])
    features = torch.nn.utils.rnn.pad_sequence([item["features"] for item in batch], batch_first=True)
    collated = {
        "features": features,
        "mask": torch.arange(features.shape[1])[None, :] < lengths[:, None],
        "length": lengths,
    }
    for key in batch[0]:
        if key not in collated:
            collated[key] = [item[key] for item in batch]
    return collated
