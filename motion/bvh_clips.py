"""Labelled BVH motion capture as a map-style clip set, and the labelled files of the public BVH sets.

`BVHClipSet` cuts every file (loaded with `load_bvh_as_humanml3d`) into fixed-length crops and serves
them as `MotionClip`s, like `ProceduralMotionSet`; its base `CroppedClipSet` crops and labels files of
any format (`motion.amass_clips.AMASSClipSet`). Activity labels are whatever the entries say;
`cmu_entries` and `bandai_entries` label the CMU and Bandai-Namco files in the shared class names of
`datamodules.labels.SHARED_CLASSES` from the files' published descriptions.
"""

from __future__ import annotations

import json
import numbers
import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from motion import skeleton as sk
from motion.procedural.dataset import SAFETY_LABELS, MotionClip
from motion.retarget import Rig, load_bvh_as_humanml3d

CONTACT_MAX_SPEED_M_S = float(np.sqrt(0.002) * sk.FPS)
"""Foot-contact speed limit (≈ 0.894 m/s): HumanML3D's `foot_detect` flags a joint whose squared
displacement between 20 fps frames is below 0.002 m²."""


def foot_contact(joints: np.ndarray, fps: float, *, max_speed_m_s: float = CONTACT_MAX_SPEED_M_S) -> np.ndarray:
    """`[T, 4]` bool: the joints of `skeleton.FOOT_JOINTS` moving slower than `max_speed_m_s`.

    Speeds are central differences (one-sided at the ends) of `joints` `[T, 22, 3]` (m) sampled at `fps`.
    A speed rule, as HumanML3D's: it does not check the height, so a foot held still in the air counts.
    """
    if joints.shape[0] < 2:
        raise ValueError(f"joints must have at least 2 frames to estimate speeds, got {joints.shape[0]}")
    feet = joints[:, list(sk.FOOT_JOINTS)]
    speed = np.linalg.norm(np.gradient(feet, 1.0 / fps, axis=0), axis=-1)
    return speed < max_speed_m_s


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def crop_starts(num_frames: int, crop_frames: int, stride_frames: int) -> list[int]:
    """First frames of the crops of a recording of `num_frames`.

    Crops start every `stride_frames`; when the last one stops short of the end, one more crop ends
    exactly at the last frame, so every frame is covered. A recording shorter than one crop gives the
    single start 0 (the crop is then padded by holding the last frame).
    """
    if num_frames <= crop_frames:
        return [0]
    starts = list(range(0, num_frames - crop_frames + 1, stride_frames))
    if starts[-1] != num_frames - crop_frames:
        starts.append(num_frames - crop_frames)
    return starts


class CroppedClipSet:
    """Map-style set of fixed-length crops of labelled motion files; a subclass reads one file (`_read`).

    Item i is crop `starts[k]` … `starts[k] + round(duration_s · fps)` of one file (see `crop_starts`),
    as a `clip_type` (a `MotionClip`) with the crop of every per-frame array `_read` gives (float32 joints
    `[T, 22, 3]` (m, y up), foot contacts, …), the entry's activity, its safety and a caption
    "<file stem> <start>–<end> s".

    A file shorter than a crop gives one crop padded by holding its last frame (the body stays in its
    final pose, which suits falls that end on the floor) if it lasts at least `min_duration_s`; shorter
    files are skipped with a warning and listed in `skipped`, since a crop that is mostly a frozen pose
    would mislabel stillness (several Bandai-Namco runs and dashes last under a second).

    Args:
        entries: (path, activity) pairs.
        safety_of: activity → "safe" / "unsafe" (e.g. `datamodules.labels.safety_of`); motion code does not
            import the label space, so the rule comes from the caller.
        fps: frame rate of the clips (frames/s).
        duration_s: crop length (s); stride_s: time between crop starts (s).
        min_duration_s: shortest file (s) that still gives a (padded) crop.
        activities: the class list; by default the sorted activities of the entries. Fixing it keeps
            class indices equal across sets that hold different activities.
        cache: keep every file's arrays in memory after the first load (else reload on each access).
    """

    clip_type = MotionClip

    def __init__(self, *, entries: Sequence[tuple[str | Path, str]], safety_of: Callable[[str], str], fps: float = sk.FPS,
                 duration_s: float = 4.0, stride_s: float = 2.0, min_duration_s: float = 2.0,
                 activities: Sequence[str] | None = None, cache: bool = True):
        if isinstance(entries, (str, Path)) or len(entries) == 0:
            raise ValueError(f"entries must be a non-empty sequence of (path, activity) pairs, got {entries!r}")
        if not callable(safety_of):
            raise ValueError(f"safety_of must be a callable activity -> safety label, got {safety_of!r}")
        self.fps = _check_positive("fps", fps)
        self.duration_s = _check_positive("duration_s", duration_s)
        stride_s = _check_positive("stride_s", stride_s)
        if isinstance(min_duration_s, bool) or not isinstance(min_duration_s, numbers.Real) or not min_duration_s >= 0:
            raise ValueError(f"min_duration_s must be a non-negative number of seconds, got {min_duration_s!r}")
        self.crop_frames = int(round(self.duration_s * self.fps))
        self.stride_frames = int(round(stride_s * self.fps))
        if self.crop_frames < 2 or self.stride_frames < 1:
            raise ValueError(f"duration_s · fps must give at least 2 frames and stride_s · fps at least 1, got "
                             f"duration_s={duration_s}, stride_s={stride_s}, fps={fps}")
        if any(isinstance(entry, (str, Path)) or len(entry) != 2 for entry in entries):
            raise ValueError(f"entries must be (path, activity) pairs, got {list(entries)[:3]}…")
        self.entries = tuple((Path(path), str(activity)) for path, activity in entries)
        used = sorted({activity for _, activity in self.entries})
        self.activities = tuple(used if activities is None else activities)
        unknown = sorted(set(used) - set(self.activities))
        if unknown or len(set(self.activities)) != len(self.activities):
            raise ValueError(f"activities must list every entry activity once; missing {unknown}, got {self.activities}")
        self.safety = {activity: safety_of(activity) for activity in self.activities}
        bad = {activity: label for activity, label in self.safety.items() if label not in SAFETY_LABELS}
        if bad:
            raise ValueError(f"safety_of must return one of {SAFETY_LABELS}, got {bad}")
        self.cache = bool(cache)
        self._loaded: dict[int, dict[str, np.ndarray]] = {}
        self.crops: list[tuple[int, int]] = []  # (entry index, start frame) of every item
        self.skipped: list[Path] = []
        for entry, (path, _) in enumerate(self.entries):
            frames = len(self._load(entry)["joints"])
            if frames < min(self.crop_frames, round(min_duration_s * self.fps)):
                warnings.warn(f"{path}: {frames / self.fps:.2f} s is shorter than min_duration_s={min_duration_s} s; skipped")
                self.skipped.append(path)
                self._loaded.pop(entry, None)
                continue
            self.crops += [(entry, start) for start in crop_starts(frames, self.crop_frames, self.stride_frames)]
        if not self.crops:
            raise ValueError(f"every entry is shorter than min_duration_s={min_duration_s} s: {self.skipped}")

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        """Per-frame arrays `[T, ...]` of a whole file at `fps`, keyed by `clip_type` field; "joints" among them."""
        raise NotImplementedError

    def _load(self, entry: int) -> dict[str, np.ndarray]:
        if entry not in self._loaded:
            loaded = self._read(self.entries[entry][0])
            if not self.cache:
                return loaded
            self._loaded[entry] = loaded
        return self._loaded[entry]

    def __len__(self) -> int:
        return len(self.crops)

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        index = int(index) + (len(self) if index < 0 else 0)
        if not 0 <= index < len(self):
            raise IndexError(f"index out of range for {len(self)} clips")
        return index

    def activity_of(self, index: int) -> str:
        """Activity of item `index` without loading it."""
        return self.entries[self.crops[self._index(index)][0]][1]

    def __getitem__(self, index: int) -> MotionClip:
        entry, start = self.crops[self._index(index)]
        path, activity = self.entries[entry]
        arrays = self._load(entry)
        stop = min(start + self.crop_frames, len(arrays["joints"]))
        hold = self.crop_frames - (stop - start)  # frames repeating the last one, for a file shorter than a crop
        # Every array holds its last frame: held foot contacts stay the last frame's (the speed rule would
        # flag every still foot, even in the air), a worn sensor stays where the still body holds it.
        crops = {name: np.concatenate((array[start:stop], np.repeat(array[stop - 1 : stop], hold, axis=0)))
                 for name, array in arrays.items()}
        return self.clip_type(
            **crops,
            fps=self.fps,
            activity=activity,
            safety=self.safety[activity],
            caption=f"{path.stem} {start / self.fps:.2f}–{(start + self.crop_frames) / self.fps:.2f} s",
        )

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(files={len(self.entries)}, clips={len(self)}, duration_s={self.duration_s}, "
                f"fps={self.fps}, activities={self.activities})")


class BVHClipSet(CroppedClipSet):
    """`CroppedClipSet` of labelled BVH files, loaded with `load_bvh_as_humanml3d`: clips with float32 joints
    `[T, 22, 3]` (m, y up) and foot contacts by `foot_contact`.

    Args:
        rig: the files' rig (a `Rig` or a name in `retarget.RIGS`); None detects it per file.
        The others: `CroppedClipSet`'s.
    """

    def __init__(self, *, entries: Sequence[tuple[str | Path, str]], safety_of: Callable[[str], str], fps: float = sk.FPS,
                 duration_s: float = 4.0, stride_s: float = 2.0, min_duration_s: float = 2.0,
                 activities: Sequence[str] | None = None, rig: Rig | str | None = None, cache: bool = True):
        self.rig = rig
        super().__init__(entries=entries, safety_of=safety_of, fps=fps, duration_s=duration_s, stride_s=stride_s,
                         min_duration_s=min_duration_s, activities=activities, cache=cache)

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        joints = load_bvh_as_humanml3d(path, fps=self.fps, rig=self.rig)
        return {"joints": joints.astype(np.float32), "foot_contact": foot_contact(joints, self.fps)}


CMU_TRIALS = {
    # trial: (description in the CMU index, shared class); the bvh/ clips are named by their file names
    "16_15": ("walk", "walking"),
    "141_01": ("run", "running"),
    "90_16": ("fall on face", "falling"),
    "90_17": ("BannanaPeelSlip", "falling"),
    "90_18": ("RugPullFall", "falling"),
    "104_13": ("StumbleWalk", "stumbling"),
    "77_17": ("laying down, getting up, careful ready pose", "lying"),
    "113_15": ("Sit in chair and get up", "sit_stand"),
    "113_20": ("Walk up and down stairs", "stairs"),
    "118_03": ("Jump", "jumping"),
}
"""Labelled CMU trials (subject_trial) → (CMU description, shared class)."""

_CMU_TRIAL = re.compile(r"(?:^|_)(\d+_\d+)(?:_|$)")


def cmu_entries(folder: str | Path) -> list[tuple[Path, str]]:
    """(path, shared class) of the .bvh files in `folder` whose CMU trial is in `CMU_TRIALS`, sorted by path.

    The trial is the `<subject>_<trial>` part of the file name ("90_17.bvh", "cmu_16_15_walk.bvh").
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {folder} is not a directory")
    entries = []
    for path in sorted(folder.glob("*.bvh")):
        match = _CMU_TRIAL.search(path.stem)
        if match and match.group(1) in CMU_TRIALS:
            entries.append((path, CMU_TRIALS[match.group(1)][1]))
    return entries


BANDAI_CONTENTS = (
    "walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye", "respond",
    "call", "punch", "kick", "slash", "dance-long", "dance-short",
)
"""Bandai-Namco dataset 1 content names by the `content` id of its .json files (its cfg/content_label.txt)."""

BANDAI_TO_SHARED = {
    "walk": "walking", "run": "running", "dash": "running", "punch": "fighting", "kick": "fighting", "slash": "fighting",
}
"""Bandai-Namco contents with a shared class; the others (sideways and backward walks, gestures, dances) are left out."""


def bandai_entries(folder: str | Path) -> list[tuple[Path, str]]:
    """(path, shared class) of the Bandai-Namco .bvh files in `folder` whose .json `content` has a shared class.

    Raises:
        ValueError naming the file: unreadable .json, a `content` that is not a known id, a missing .bvh.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {folder} is not a directory")
    entries = []
    for meta in sorted(folder.glob("*.json")):
        try:
            content = json.loads(meta.read_text())["content"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{meta}: cannot read the 'content' id ({error!r})") from None
        if isinstance(content, bool) or not isinstance(content, int) or not 0 <= content < len(BANDAI_CONTENTS):
            raise ValueError(f"{meta}: content must be an id in 0…{len(BANDAI_CONTENTS) - 1}, got {content!r}")
        label = BANDAI_TO_SHARED.get(BANDAI_CONTENTS[content])
        if label is None:
            continue
        path = meta.with_suffix(".bvh")
        if not path.is_file():
            raise ValueError(f"{meta}: its motion file {path.name} is missing")
        entries.append((path, label))
    return entries
