"""The JSONL schema of instruction examples: one clip (or two, to compare), its labels, an instruction, a response.

One line of a file is one `InstructionExample` as a JSON object:

    {"id": "toy-0-00003", "source": "toy", "prompt_type": "description",
     "instruction": "What is the person doing?", "response": "The person is walking …",
     "activity": "walking", "safety": "safe",
     "video": "frames/toy-0-clip00003",                       # a video file or a frame folder, or null
     "imu": {"kind": "virtual", "motion_source": "procedural", "clip_id": "seed=0,index=3,duration_s=4.0",
             "placement": "left_wrist", "sensor": "bmi270", "seed": 123, "target_hz": 50.0},
     "compared_with": null}

The clip's fields (`activity`, `safety`, `video`, `imu`) sit at the top level; `compared_with` holds the
second clip of a "comparative" example (the same four fields) and is null for the other prompt types.
`imu` is a real recording (`{"kind": "file", "path", "format", "rate_hz"}`) or a virtual-IMU spec as above
(`virtual_imu.pipeline.WristIMUPipeline` at `placement`, with the `sensor` preset of
`virtual_imu.devices` and its random draws from `seed`). Relative paths are relative to the JSONL file's
folder. Labels are in the shared label space (`datamodules.labels`): the activity is a shared class and
the safety is the one `safety_of` gives it.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from datamodules.generated_imu import read_jsonl as read_json_lines
from datamodules.labels import check_shared, safety_of
from virtual_imu.devices import DEVICES
from virtual_imu.presets import PRESETS

PROMPT_TYPES = ("description", "causal_counterfactual", "comparative")
IMU_FORMATS = ("npy", "csv")
"""Real IMU files: `.npy` holding a `[T, 6]` array, or `.csv` of 6 comma-separated columns (acc m/s², gyro rad/s)."""


def positive_number(name: str, value) -> float:
    """`value` as a float when it is a finite number > 0, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def positive_int(name: str, value) -> int:
    """`value` as an int when it is an integer ≥ 1, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """`value` as an int when it is an integer ≥ 0, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _text(field: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return value


def _keys(field: str, data, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{field} must be a JSON object, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    unknown = sorted(set(data) - set(required) - set(optional))
    if missing:
        raise ValueError(f"{field} lacks the keys {missing}")
    if unknown:
        raise ValueError(f"{field} has unknown keys {unknown}")


@dataclass(frozen=True)
class RealIMU:
    """A recorded IMU file: `path` (str), `format` (one of `IMU_FORMATS`), sample rate `rate_hz` (Hz)."""

    path: str
    format: str
    rate_hz: float

    def __post_init__(self):
        _text("imu.path", self.path)
        if self.format not in IMU_FORMATS:
            raise ValueError(f"imu.format must be one of {IMU_FORMATS}, got {self.format!r}")
        if isinstance(self.rate_hz, bool) or not isinstance(self.rate_hz, numbers.Real) or not (
                math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"imu.rate_hz must be a positive number of Hz, got {self.rate_hz!r}")
        object.__setattr__(self, "rate_hz", float(self.rate_hz))

    def to_dict(self) -> dict:
        return {"kind": "file", "path": self.path, "format": self.format, "rate_hz": self.rate_hz}


@dataclass(frozen=True)
class VirtualIMU:
    """A simulated wrist IMU: the motion (`motion_source`, e.g. "procedural", and its `clip_id`), the placement
    preset (`virtual_imu.presets.PRESETS`), the sensor preset (`virtual_imu.devices.DEVICES`), the seed of the
    sensor's random draws and the output rate `target_hz` (Hz)."""

    motion_source: str
    clip_id: str
    placement: str
    sensor: str
    seed: int
    target_hz: float = 50.0

    def __post_init__(self):
        _text("imu.motion_source", self.motion_source)
        _text("imu.clip_id", self.clip_id)
        if self.placement not in PRESETS:
            raise ValueError(f"imu.placement must be one of {tuple(PRESETS)}, got {self.placement!r}")
        if self.sensor not in DEVICES:
            raise ValueError(f"imu.sensor must be one of {tuple(DEVICES)}, got {self.sensor!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"imu.seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.target_hz, bool) or not isinstance(self.target_hz, numbers.Real) or not (
                math.isfinite(self.target_hz) and self.target_hz > 0):
            raise ValueError(f"imu.target_hz must be a positive number of Hz, got {self.target_hz!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "target_hz", float(self.target_hz))

    def to_dict(self) -> dict:
        return {"kind": "virtual", "motion_source": self.motion_source, "clip_id": self.clip_id,
                "placement": self.placement, "sensor": self.sensor, "seed": self.seed, "target_hz": self.target_hz}


_IMU_KINDS = {"file": (RealIMU, ("path", "format", "rate_hz")),
              "virtual": (VirtualIMU, ("motion_source", "clip_id", "placement", "sensor", "seed", "target_hz"))}


def imu_from_dict(data) -> RealIMU | VirtualIMU:
    """The IMU reference of a JSON object with a "kind" of "file" or "virtual" (ValueError naming `imu.<field>`)."""
    if not isinstance(data, dict) or data.get("kind") not in _IMU_KINDS:
        raise ValueError(f"imu must be an object with a kind in {tuple(_IMU_KINDS)}, got {data!r}")
    kind, keys = _IMU_KINDS[data["kind"]]
    required = tuple(key for key in keys if key != "target_hz")
    _keys("imu", data, ("kind", *required), ("target_hz",) if kind is VirtualIMU else ())
    return kind(**{key: data[key] for key in keys if key in data})


@dataclass(frozen=True)
class Clip:
    """One clip's references and labels: `activity` (a shared class), `safety` ("safe"/"unsafe", as
    `labels.safety_of(activity)`), `imu` (a `RealIMU` or `VirtualIMU`) and `video` (a video file or a frame
    folder, or None)."""

    activity: str
    safety: str
    imu: RealIMU | VirtualIMU
    video: str | None = None

    def __post_init__(self):
        try:
            check_shared(self.activity)
        except ValueError as error:
            raise ValueError(f"activity: {error}") from None
        if self.safety != safety_of(self.activity):
            raise ValueError(f"safety must be {safety_of(self.activity)!r} for activity {self.activity!r}, "
                             f"got {self.safety!r}")
        if not isinstance(self.imu, (RealIMU, VirtualIMU)):
            raise ValueError(f"imu must be a RealIMU or VirtualIMU, got {type(self.imu).__name__}")
        if self.video is not None:
            _text("video", self.video)

    def to_dict(self) -> dict:
        return {"activity": self.activity, "safety": self.safety, "video": self.video, "imu": self.imu.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Clip":
        return cls(activity=data["activity"], safety=data["safety"], imu=imu_from_dict(data["imu"]),
                   video=data["video"])


_CLIP_KEYS = ("activity", "safety", "video", "imu")
_EXAMPLE_KEYS = ("id", "source", "prompt_type", "instruction", "response")


@dataclass(frozen=True)
class InstructionExample:
    """One instruction–response pair about `clip` (and, for "comparative", about `compared_with` too).

    Attributes:
        id: unique id of the example in its file (resuming keys on it).
        source: where it comes from (e.g. "toy", "teacher:<model>").
        prompt_type: one of `PROMPT_TYPES`.
        instruction, response: the texts.
        clip: the clip asked about.
        compared_with: the second clip of a "comparative" example; None for the other prompt types.
    """

    id: str
    source: str
    prompt_type: str
    instruction: str
    response: str
    clip: Clip
    compared_with: Clip | None = None

    def __post_init__(self):
        for field in ("id", "source", "instruction", "response"):
            _text(field, getattr(self, field))
        if self.prompt_type not in PROMPT_TYPES:
            raise ValueError(f"prompt_type must be one of {PROMPT_TYPES}, got {self.prompt_type!r}")
        if not isinstance(self.clip, Clip):
            raise ValueError(f"clip must be a Clip, got {type(self.clip).__name__}")
        comparative = self.prompt_type == "comparative"
        if comparative != isinstance(self.compared_with, Clip) or not (comparative or self.compared_with is None):
            raise ValueError(f"compared_with must be a Clip for a comparative example and None otherwise, got "
                             f"{type(self.compared_with).__name__} for prompt_type {self.prompt_type!r}")

    def to_dict(self) -> dict:
        return {**{key: getattr(self, key) for key in _EXAMPLE_KEYS}, **self.clip.to_dict(),
                "compared_with": None if self.compared_with is None else self.compared_with.to_dict()}

    def to_json(self) -> str:
        """One line of JSON (no newline), non-ASCII kept as is."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data) -> "InstructionExample":
        _keys("example", data, (*_EXAMPLE_KEYS, *_CLIP_KEYS), ("compared_with",))
        compared = data.get("compared_with")
        if compared is not None:
            _keys("compared_with", compared, _CLIP_KEYS)
            try:
                compared = Clip.from_dict(compared)
            except ValueError as error:
                raise ValueError(f"compared_with.{error}") from None
        return cls(**{key: data[key] for key in _EXAMPLE_KEYS}, clip=Clip.from_dict(data), compared_with=compared)

    @classmethod
    def from_json(cls, text: str) -> "InstructionExample":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error})") from None
        return cls.from_dict(data)


def read_jsonl(path: str | Path) -> list[InstructionExample]:
    """The examples of a JSONL file, validated; a bad line raises a ValueError naming the file, line and field.

    Ids must be unique in the file.
    """
    examples, lines = [], {}
    for number, data in enumerate(read_json_lines(path), start=1):
        try:
            example = InstructionExample.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{path} line {number}: {error}") from None
        if example.id in lines:
            raise ValueError(f"{path} line {number}: id {example.id!r} repeats line {lines[example.id]}")
        lines[example.id] = number
        examples.append(example)
    return examples


def append_jsonl(path: str | Path, examples: Iterable[InstructionExample]) -> int:
    """Appends `examples` to `path` (created with its folder if missing) in one write; returns how many."""
    examples = list(examples)
    bad = [type(example).__name__ for example in examples if not isinstance(example, InstructionExample)]
    if bad:
        raise ValueError(f"examples must be InstructionExample objects, got {bad}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(example.to_json() + "\n" for example in examples))
    return len(examples)
