"""An offline toy multimodal instruction set: stick-figure video + virtual wrist IMU + labels + templated texts.

Item i is clip i of a `ProceduralMotionSet(num_clips, seed)` (then, when given, the clips of `extra_clips`,
e.g. a `motion.bvh_clips.BVHClipSet`), drawn as 16 stick-figure frames (`motion.render`) and worn as a
virtual wrist IMU (`WristIMUPipeline`), with prompt type `prompt_types[i % len(prompt_types)]` and an
instruction–response pair from templates: a description of the clip, a causal / counterfactual explanation
of its wrist signal, or a comparison with another clip of the set. Every text names the activity, the
responses of unsafe activities say so, and the numbers they quote (peak acceleration and angular rate) are
the item's own IMU's. Everything is deterministic by (seed, index). For tests, the quickstart and as the
input of `teacher.py`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.image import imsave

from datamodules.instructions.schema import PROMPT_TYPES, Clip, InstructionExample, VirtualIMU, append_jsonl, positive_int
from datamodules.labels import PROCEDURAL_TO_SHARED, safety_of
from datamodules.motion_dataset import item_seed
from motion.procedural import ProceduralMotionSet
from motion.render import VIEWS, check_size, render_stick_figure, sample_frame_indices
from virtual_imu.devices import device
from virtual_imu.pipeline import WristIMUPipeline

PROCEDURAL_SOURCE = "procedural"
"""`VirtualIMU.motion_source` of the procedural clips; their `clip_id` is "seed=<s>,index=<i>,duration_s=<d>"."""

ACTIVITY_TEXTS = {
    # shared class: (phrase, why the wrist signal looks as it does, what if it had been otherwise)
    "walking": ("walking",
                "each step sends a small impact up the body while the arm swings back and forth, so the wrist "
                "acceleration and angular rate repeat about once per step",
                "If the person were running instead, the rhythm would be faster and the impacts and swings larger."),
    "running": ("running",
                "every stride lands hard and the bent arm pumps quickly, giving large, fast, periodic peaks",
                "If the person slowed to a walk, the peaks would shrink and the rhythm would slow down."),
    "stairs": ("walking on stairs",
               "each step also lifts or lowers the body by a stair's height, so the step rhythm is slower and more "
               "even than on level ground and carries a vertical component",
               "On level ground the vertical lift would disappear and the steps would usually be quicker."),
    "sit_stand": ("sitting down or standing up",
                  "the trunk leans and the body moves between standing and sitting in one smooth movement, so the "
                  "wrist shows a single slow swell of acceleration and rotation before it settles",
                  "If the person had dropped onto the chair without control, a sharp impact would end the movement."),
    "lying": ("lying down",
              "the body lowers itself to the floor in controlled stages, so the wrist turns slowly through large "
              "angles and the direction of gravity in the accelerometer changes without a strong impact",
              "If the person had collapsed instead, a sudden impact peak would replace the gradual change."),
    "jumping": ("jumping",
                "each take-off pushes hard and each landing stops the body abruptly, so strong acceleration peaks "
                "alternate with short near-free-fall phases",
                "If the person only walked in place, the peaks would be far smaller and the free-fall phases gone."),
    "falling": ("falling",
                "the body loses balance, drops towards the floor and hits it, so the acceleration shows a short "
                "drop, then a large impact spike, then near stillness",
                "If the person had caught their balance, the impact spike would be missing and the signal would "
                "return to the rhythm of normal movement."),
    "stumbling": ("stumbling",
                  "a trip interrupts the gait and quick corrective arm movements follow, so irregular bursts break "
                  "the regular step rhythm",
                  "If the person had not tripped, the regular rhythm of the steps would continue unbroken."),
    "fighting": ("fighting",
                 "fast punches or shoves drive the arm hard and stop it abruptly, so the wrist shows sharp, "
                 "irregular bursts of acceleration and rotation",
                 "In a calm conversation with gestures, the arm movements would be slower and smaller."),
    "dragging": ("dragging something heavy",
                 "the arms pull a load while the person steps slowly, so the wrist stays braced and moves slowly "
                 "with small irregular jerks",
                 "Walking without the load, the arms would swing freely in a regular rhythm."),
    "fainting": ("fainting",
                 "the body goes limp and collapses, so the signal sags, shows an impact on the floor and then "
                 "almost no movement",
                 "If the person had stayed conscious, they would have kept moving and no impact or stillness would "
                 "follow."),
    "other": ("doing some other activity",
              "the movement follows none of the common activity patterns, so the wrist signal has no clear rhythm",
              "A regular activity such as walking would give a repeating pattern instead."),
}
"""Template phrases of every shared class (`datamodules.labels.SHARED_CLASSES`)."""

RISKS = {
    "falling": "a fall can injure the person, who may need help getting up",
    "stumbling": "a stumble is a loss of balance that can turn into a fall",
    "fighting": "fighting can injure the people involved",
    "dragging": "dragging a person or a heavy load can hurt both",
    "fainting": "a person who faints needs immediate attention",
}
"""Why each unsafe shared class is unsafe."""

INSTRUCTIONS = {
    "description": ("What is the person doing in this clip?",
                    "Describe the activity shown in the video and in the wrist IMU signal.",
                    "Watch the clip and read the wrist sensor: what happens?"),
    "causal_counterfactual": ("Why does the wrist IMU signal look the way it does here, and what would change if the "
                              "person had acted differently?",
                              "Explain what causes the pattern in the wrist sensor, and what the signal would look "
                              "like in another scenario.",
                              "What explains the wrist motion in this clip? What if things had gone differently?"),
    "comparative": ("Compare the two clips: how do the activities differ, and is either of them unsafe?",
                    "What is different between the first and the second clip, in the video and in the wrist sensor?"),
}


def _peaks(imu: torch.Tensor) -> tuple[float, float]:
    """Peak |acceleration| (m/s²) and peak |angular rate| (rad/s) of `imu` `[T, 6]`."""
    norms = torch.linalg.vector_norm(imu.double().reshape(-1, 2, 3), dim=-1).amax(dim=0)
    return float(norms[0]), float(norms[1])


def _safety_sentence(activity: str) -> str:
    if safety_of(activity) == "unsafe":
        return f"This is unsafe: {RISKS[activity]}."
    return "Nothing in the clip suggests a safety risk."


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def description_response(activity: str, caption: str, imu: torch.Tensor) -> str:
    """What happened, from the activity (a shared class), an optional caption and the clip's IMU `[T, 6]`."""
    acc, gyro = _peaks(imu)
    detail = f" ({caption})" if caption else ""
    return (f"The person is {ACTIVITY_TEXTS[activity][0]}{detail}. The wrist acceleration peaks at {acc:.1f} m/s² and "
            f"the angular rate at {gyro:.1f} rad/s. {_safety_sentence(activity)}")


def causal_response(activity: str) -> str:
    """Why the wrist signal of `activity` looks as it does, and what if."""
    phrase, cause, what_if = ACTIVITY_TEXTS[activity]
    return f"The person is {phrase}: {cause}. {what_if} {_safety_sentence(activity)}"


def comparative_response(first: str, first_imu: torch.Tensor, second: str, second_imu: torch.Tensor) -> str:
    """A comparison of two clips by activity, peak acceleration and safety."""
    phrases = ACTIVITY_TEXTS[first][0], ACTIVITY_TEXTS[second][0]
    acc = _peaks(first_imu)[0], _peaks(second_imu)[0]
    what = (f"Both clips show a person {phrases[0]}." if first == second
            else f"The first clip shows a person {phrases[0]}, the second a person {phrases[1]}.")
    vigour = "first" if acc[0] > acc[1] else "second"
    signal = (f"The wrist acceleration peaks at {acc[0]:.1f} m/s² in the first and {acc[1]:.1f} m/s² in the second, "
              f"so the {vigour} moves the wrist more sharply.")
    unsafe = [safety_of(activity) == "unsafe" for activity in (first, second)]
    if all(unsafe):
        safety = (f"Both are unsafe: {RISKS[first]}." if first == second
                  else f"Both are unsafe: {RISKS[first]}, and {RISKS[second]}.")
    elif any(unsafe):
        which, activity = ("first", first) if unsafe[0] else ("second", second)
        safety = f"The {which} is unsafe ({RISKS[activity]}); the other is safe."
    else:
        safety = "Neither clip suggests a safety risk."
    return f"{what} {signal} {safety}"


def _parse_clip_id(clip_id: str) -> dict[str, str]:
    try:
        fields = dict(part.split("=", 1) for part in clip_id.split(","))
    except ValueError:
        fields = {}
    if sorted(fields) != ["duration_s", "index", "seed"]:
        raise ValueError(f"imu.clip_id of a {PROCEDURAL_SOURCE!r} clip must read 'seed=<s>,index=<i>,duration_s=<d>', "
                         f"got {clip_id!r}")
    return fields


def simulate_imu(joints: np.ndarray, fps: float, spec: VirtualIMU) -> torch.Tensor:
    """The virtual IMU `[T_out, 6]` float32 (m/s², rad/s) of `spec` (placement, sensor, seed, rate) worn on
    `joints` `[T, 22, 3]` (m, y up) at `fps`: sensor draws from `torch.Generator().manual_seed(spec.seed)`."""
    pipeline = WristIMUPipeline(placement=spec.placement, motion_fps=float(fps), target_hz=spec.target_hz,
                                sensor=device(spec.sensor))
    joints = torch.as_tensor(np.asarray(joints, dtype=np.float32))
    draws = pipeline.draw(pipeline.output_length(joints.shape[0]), torch.Generator().manual_seed(spec.seed))
    return pipeline(joints, draws)


def virtual_imu(spec: VirtualIMU) -> torch.Tensor:
    """Re-simulates the IMU `[T_out, 6]` of a spec of a procedural clip (`PROCEDURAL_SOURCE`), as the toy set did."""
    if spec.motion_source != PROCEDURAL_SOURCE:
        raise ValueError(f"imu.motion_source {spec.motion_source!r} cannot be re-simulated; only "
                         f"{PROCEDURAL_SOURCE!r} clips can")
    fields = _parse_clip_id(spec.clip_id)
    try:
        seed, index, duration_s = int(fields["seed"]), int(fields["index"]), float(fields["duration_s"])
    except ValueError:
        raise ValueError(f"imu.clip_id must hold integers seed, index and a number duration_s, "
                         f"got {spec.clip_id!r}") from None
    if index < 0:
        raise ValueError(f"imu.clip_id index must be ≥ 0, got {spec.clip_id!r}")
    clip = ProceduralMotionSet(num_clips=index + 1, seed=seed, duration_s=duration_s)[index]
    return simulate_imu(clip.joints, clip.fps, spec)


class ToyMultimodalDataset:
    """Map-style toy instruction set (see the module docstring); item i is a dict:

        id: str; frames: `[F, 3, H, W]` float32 in [0, 1]; imu: `[T_imu, 6]` float32 (m/s², rad/s);
        activity: shared class; safety: "safe"/"unsafe"; prompt_type; instruction; response;
        and for "comparative" items the second clip's compared_frames, compared_imu, compared_activity,
        compared_safety (so batches mixing prompt types need a collate that accepts missing keys).

    Args:
        num_clips: procedural clips (all `motion.procedural.ACTIVITIES`, balanced), seeded by `seed`.
        duration_s: length of the procedural clips (s).
        frame_size: (H, W) of the frames; num_frames: F, spread evenly over each clip; view: the camera.
        placement, sensor, imu_hz: the virtual IMU (`virtual_imu.presets.PRESETS`, `virtual_imu.devices.DEVICES`,
            Hz); the sensor draws of clip c come from seed `datamodules.motion_dataset.item_seed(seed, c)`.
        prompt_types: the prompt types cycled over the items.
        extra_clips: more clips after the procedural ones (a map-style set of `MotionClip`s whose activities
            are shared classes, e.g. a `BVHClipSet`), named `extra_source` in the IMU specs.
    """

    def __init__(self, *, num_clips: int, seed: int, duration_s: float = 4.0, frame_size: tuple[int, int] = (112, 112),
                 num_frames: int = 16, view: str = "side", placement: str = "left_wrist", sensor: str = "bmi270",
                 imu_hz: float = 50.0, prompt_types: Sequence[str] = PROMPT_TYPES, extra_clips=None,
                 extra_source: str = "bvh"):
        self.motion = ProceduralMotionSet(num_clips=num_clips, seed=seed, duration_s=duration_s)
        self.num_clips, self.seed, self.duration_s = self.motion.num_clips, self.motion.seed, self.motion.duration_s
        self.num_frames = positive_int("num_frames", num_frames)
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        self.frame_size, self.view = check_size(frame_size), view
        self.extra_clips = [] if extra_clips is None else extra_clips
        if not isinstance(extra_source, str) or extra_source in ("", PROCEDURAL_SOURCE):
            raise ValueError(f"extra_source must be a name other than {PROCEDURAL_SOURCE!r}, got {extra_source!r}")
        self.extra_source = extra_source
        for k in range(len(self.extra_clips)):
            activity_of = getattr(self.extra_clips, "activity_of", None)
            activity = activity_of(k) if activity_of else self.extra_clips[k].activity
            if activity not in ACTIVITY_TEXTS:
                raise ValueError(f"extra_clips item {k} has activity {activity!r}, not a shared class")
        if isinstance(prompt_types, str) or not prompt_types or any(kind not in PROMPT_TYPES for kind in prompt_types):
            raise ValueError(f"prompt_types must be a non-empty sequence of {PROMPT_TYPES}, got {prompt_types!r}")
        self.prompt_types = tuple(prompt_types)
        if "comparative" in self.prompt_types and len(self) < 2:
            raise ValueError("a comparative prompt needs two clips: num_clips + len(extra_clips) must be ≥ 2")
        # One spec template checks placement, sensor and imu_hz now rather than at the first item.
        self._spec = VirtualIMU(motion_source=PROCEDURAL_SOURCE, clip_id="-", placement=placement, sensor=sensor,
                                seed=0, target_hz=imu_hz)

    def __len__(self) -> int:
        return self.num_clips + len(self.extra_clips)

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        index = int(index) + (len(self) if index < 0 else 0)
        if not 0 <= index < len(self):
            raise IndexError(f"index out of range for {len(self)} items")
        return index

    def id_of(self, index: int) -> str:
        return f"toy-{self.seed}-{self._index(index):05d}"

    def _clip(self, index: int) -> tuple[object, str, str, VirtualIMU]:
        """(motion clip, shared activity, caption, IMU spec) of clip `index`."""
        if index < self.num_clips:
            clip = self.motion[index]
            activity, caption = PROCEDURAL_TO_SHARED[clip.activity], clip.caption
            source, clip_id = PROCEDURAL_SOURCE, f"seed={self.seed},index={index},duration_s={self.duration_s}"
        else:
            clip = self.extra_clips[index - self.num_clips]
            activity, caption = clip.activity, ""  # their captions name files, not motions
            source, clip_id = self.extra_source, f"index={index - self.num_clips},caption={clip.caption}"
        spec = VirtualIMU(motion_source=source, clip_id=clip_id, placement=self._spec.placement,
                          sensor=self._spec.sensor, seed=item_seed(self.seed, index), target_hz=self._spec.target_hz)
        return clip, activity, caption, spec

    def _partner(self, index: int) -> int:
        """The other clip of comparative item `index`, drawn uniformly among the others."""
        offset = np.random.default_rng([self.seed, index, 1]).integers(1, len(self))
        return (index + int(offset)) % len(self)

    def prompt_type_of(self, index: int) -> str:
        return self.prompt_types[self._index(index) % len(self.prompt_types)]

    def _example(self, index: int, videos: Mapping[int, str]) -> tuple[InstructionExample, dict]:
        """The example of item `index` (video references from `videos`, by clip) and its clips' data."""
        index = self._index(index)
        kind = self.prompt_type_of(index)
        clip, activity, caption, spec = self._clip(index)
        imu = simulate_imu(clip.joints, clip.fps, spec)
        data = {"clip": clip, "imu": imu}
        rng = np.random.default_rng([self.seed, index, 0])
        instruction = INSTRUCTIONS[kind][rng.integers(len(INSTRUCTIONS[kind]))]
        compared = None
        if kind == "description":
            response = description_response(activity, caption, imu)
        elif kind == "causal_counterfactual":
            response = causal_response(activity)
        else:
            partner = self._partner(index)
            other, other_activity, _, other_spec = self._clip(partner)
            other_imu = simulate_imu(other.joints, other.fps, other_spec)
            response = comparative_response(activity, imu, other_activity, other_imu)
            compared = Clip(activity=other_activity, safety=safety_of(other_activity), imu=other_spec,
                            video=videos.get(partner))
            data.update(compared_clip=other, compared_imu=other_imu)
        example = InstructionExample(
            id=self.id_of(index), source="toy", prompt_type=kind, instruction=instruction, response=response,
            clip=Clip(activity=activity, safety=safety_of(activity), imu=spec, video=videos.get(index)),
            compared_with=compared,
        )
        return example, data

    def example(self, index: int) -> InstructionExample:
        """Item `index` as a schema example (no video reference; `write_jsonl` adds frame folders)."""
        return self._example(index, {})[0]

    def frames(self, clip) -> np.ndarray:
        """`num_frames` stick-figure frames `[F, H, W, 3]` uint8 spread evenly over a motion clip."""
        count = clip.joints.shape[0]
        indices = sample_frame_indices(count, clip.fps, target_frames=self.num_frames,
                                       target_fps=self.num_frames * clip.fps / count)
        return render_stick_figure(clip.joints[indices], view=self.view, size=self.frame_size)

    def __getitem__(self, index: int) -> dict:
        example, data = self._example(index, {})

        def video(clip) -> torch.Tensor:
            return torch.from_numpy(self.frames(clip)).permute(0, 3, 1, 2).float() / 255.0

        item = {"id": example.id, "frames": video(data["clip"]), "imu": data["imu"], "activity": example.clip.activity,
                "safety": example.clip.safety, "prompt_type": example.prompt_type, "instruction": example.instruction,
                "response": example.response}
        if example.compared_with is not None:
            item.update(compared_frames=video(data["compared_clip"]), compared_imu=data["compared_imu"],
                        compared_activity=example.compared_with.activity, compared_safety=example.compared_with.safety)
        return item

    def write_jsonl(self, path: str | Path, *, frames_dir: str | Path | None = None, limit: int | None = None) -> int:
        """Writes the first `limit` (default all) examples to `path` (replaced); returns how many.

        With `frames_dir`, every clip they use gets a frame folder `<frames_dir>/toy-<seed>-clip<c>/` of PNGs
        (00.png, 01.png, …; `frames`) and the examples reference it by a path relative to `path`'s folder.
        """
        count = len(self) if limit is None else min(positive_int("limit", limit), len(self))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        videos: dict[int, str] = {}
        examples = []
        for index in range(count):
            if frames_dir is not None:
                used = [index] + ([self._partner(index)] if self.prompt_type_of(index) == "comparative" else [])
                for clip_index in used:
                    if clip_index not in videos:
                        folder = Path(frames_dir) / f"toy-{self.seed}-clip{clip_index:05d}"
                        folder.mkdir(parents=True, exist_ok=True)
                        for k, frame in enumerate(self.frames(self._clip(clip_index)[0])):
                            imsave(folder / f"{k:02d}.png", frame)
                        videos[clip_index] = os.path.relpath(folder, path.parent)
            examples.append(self._example(index, videos)[0])
        path.unlink(missing_ok=True)
        return append_jsonl(path, examples)

    def __repr__(self) -> str:
        return (f"ToyMultimodalDataset(num_clips={self.num_clips}, seed={self.seed}, extra_clips={len(self.extra_clips)}, "
                f"prompt_types={self.prompt_types})")
