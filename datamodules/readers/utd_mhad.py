"""UTD-MHAD (Chen, Jafari & Kehtarnavaz 2015): 27 actions × 8 subjects × 4 trials, inertial + Kinect.

`Inertial/a{A}_s{S}_t{T}_inertial.mat`, variable `d_iner` `[N, 6]`: acc xyz in g, gyro xyz in °/s, 50 Hz,
sensor on the right wrist for actions 1–21 and on the right thigh for 22–27.
`Skeleton/a{A}_s{S}_t{T}_skeleton.mat`, variable `d_skel` (20 × 3 × T, Kinect v1, metres); its frames
span the inertial recording (see `motion.kinect`). Three trials of the 864 are missing upstream.

Two views of the same trials: `load_utd_inertial` (real IMU recordings) and `UTDSkeletonSet` (the Kinect
motion of the same trials as fixed-length 22-joint clips, to simulate virtual IMU from).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
import torch

from datamodules.labels import safety_of
from datamodules.readers.base import (
    IMURecording,
    LoadReport,
    RecordingFileError,
    check_acc_units,
    check_finite_nonempty,
    check_gyro_units,
    load_folder,
    resample_uniform,
)
from motion.kinect import kinect_to_humanml3d, read_utd_skeleton, skeleton_fps
from motion.procedural.dataset import MotionClip
from virtual_imu.conventions import STANDARD_GRAVITY
from virtual_imu.filters import resample

INERTIAL_HZ = 50.0
ACTIONS = {
    1: ("swipe_left", "other"),
    2: ("swipe_right", "other"),
    3: ("wave", "other"),
    4: ("clap", "other"),
    5: ("throw", "other"),
    6: ("arm_cross", "other"),
    7: ("basketball_shoot", "other"),
    8: ("draw_x", "other"),
    9: ("draw_circle_cw", "other"),
    10: ("draw_circle_ccw", "other"),
    11: ("draw_triangle", "other"),
    12: ("bowling", "other"),
    13: ("boxing", "fighting"),
    14: ("baseball_swing", "other"),
    15: ("tennis_swing", "other"),
    16: ("arm_curl", "other"),
    17: ("tennis_serve", "other"),
    18: ("push", "fighting"),
    19: ("knock", "other"),
    20: ("catch", "other"),
    21: ("pickup_throw", "other"),
    22: ("jog", "running"),
    23: ("walk", "walking"),
    24: ("sit_to_stand", "sit_stand"),
    25: ("stand_to_sit", "sit_stand"),
    26: ("lunge", "other"),
    27: ("squat", "other"),
}
"""Action number → (name, shared class). Boxing and the two-hand push count as fighting/shoving."""
WRIST_ACTIONS = tuple(range(1, 22))
_NAME = re.compile(r"a(\d+)_s(\d+)_t(\d+)_(inertial|skeleton)\.mat$")


def action_names(actions: Sequence[int]) -> tuple[str, ...]:
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        raise ValueError(f"actions {unknown} are not UTD-MHAD action numbers 1–27")
    return tuple(ACTIONS[a][0] for a in actions)


def _parse(path: Path) -> tuple[int, int, int]:
    match = _NAME.search(path.name)
    if match is None:
        raise RecordingFileError(path, "expected a name like a1_s1_t1_inertial.mat")
    return int(match[1]), int(match[2]), int(match[3])


def _load_inertial_array(path: Path) -> np.ndarray:
    try:
        content = scipy.io.loadmat(path)
    except (OSError, ValueError) as error:
        raise RecordingFileError(path, f"not a readable .mat file ({error})") from None
    if "d_iner" not in content:
        raise RecordingFileError(path, "no 'd_iner' variable")
    data = np.asarray(content["d_iner"], dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 6:
        raise RecordingFileError(path, f"d_iner must be [N, 6], got {data.shape}")
    return check_finite_nonempty(path, "d_iner", data)


def read_utd_inertial(path: str | Path, *, fs: float = INERTIAL_HZ) -> IMURecording:
    """One inertial trial in SI units (acc g → m/s², gyro °/s → rad/s), resampled to `fs` Hz."""
    path = Path(path)
    action, subject, trial = _parse(path)
    data = _load_inertial_array(path)
    acc = check_acc_units(path, data[:, :3] * STANDARD_GRAVITY)
    gyro = check_gyro_units(path, np.radians(data[:, 3:]))
    imu = resample_uniform(np.concatenate((acc, gyro), axis=1), INERTIAL_HZ, fs)
    return IMURecording(
        dataset="utd_mhad",
        subject=str(subject),
        activity=ACTIONS[action][0],
        label=ACTIONS[action][1],
        position="right_wrist" if action <= 21 else "right_thigh",
        fs=fs,
        acc=imu[:, :3],
        gyro=imu[:, 3:],
        trial=str(trial),
        source=str(path),
    )


def _trial_paths(root: Path, kind: str, subjects: Sequence[int], actions: Sequence[int]) -> list[Path]:
    folder = root / ("Inertial" if kind == "inertial" else "Skeleton")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: expected the UTD-MHAD folder with Inertial/ and Skeleton/")
    action_names(actions)
    paths = [
        folder / f"a{a}_s{s}_t{t}_{kind}.mat" for a in actions for s in subjects for t in range(1, 5)
    ]
    return [path for path in paths if path.is_file()]


def load_utd_inertial(
    root: str | Path,
    *,
    subjects: Sequence[int] = tuple(range(1, 9)),
    actions: Sequence[int] = WRIST_ACTIONS,
    fs: float = INERTIAL_HZ,
    on_error: str = "skip",
) -> LoadReport:
    """Inertial trials of the given subjects and actions (missing trials are simply absent)."""
    paths = _trial_paths(Path(root), "inertial", subjects, actions)
    return load_folder(paths, lambda path: read_utd_inertial(path, fs=fs), on_error=on_error)


def pad_to_length(series: np.ndarray, length: int) -> np.ndarray:
    """Centre `[T, ...]` in `length` frames, holding the first and last frame; longer series are centre-cropped."""
    surplus = series.shape[0] - length
    if surplus >= 0:
        return series[surplus // 2 : surplus // 2 + length]
    before = -surplus // 2
    return np.concatenate(
        (np.repeat(series[:1], before, axis=0), series, np.repeat(series[-1:], -surplus - before, axis=0))
    )


class UTDSkeletonSet:
    """The Kinect motion of UTD-MHAD trials as fixed-length 22-joint clips (a `MotionSet`).

    Each trial's skeleton is timed against its inertial recording, converted with
    `motion.kinect.kinect_to_humanml3d`, resampled to `fps` and centred in `duration_s` (holding the
    first and last pose), the same centring `RealWindowDataset(placement="centre")` gives the real IMU.
    `repeats` lists every trial that many times (item i is trial i mod n): each repeat gets its own
    sensor-noise and mounting draws, i.e. augmentation.

    Activities are the action names (`ACTIONS`), in the order of `actions`.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        subjects: Sequence[int] = tuple(range(1, 9)),
        actions: Sequence[int] = WRIST_ACTIONS,
        fps: float = 20.0,
        duration_s: float = 7.0,
        repeats: int = 1,
    ):
        if repeats < 1:
            raise ValueError(f"repeats must be ≥ 1, got {repeats}")
        self.activities = action_names(actions)
        self.fps = fps
        self.frames = round(duration_s * fps) + 1
        self.repeats = repeats
        self.trials: list[tuple[np.ndarray, int, str]] = []  # (joints, action number, "s{subject}_t{trial}")
        for path in _trial_paths(Path(root), "skeleton", subjects, actions):
            action, subject, trial = _parse(path)
            inertial_path = path.parent.parent / "Inertial" / path.name.replace("skeleton", "inertial")
            samples = _load_inertial_array(inertial_path).shape[0]
            kinect = read_utd_skeleton(path)
            joints = torch.from_numpy(kinect_to_humanml3d(kinect))
            source_fps = skeleton_fps(kinect.shape[0], samples, INERTIAL_HZ)
            joints = resample(joints.reshape(joints.shape[0], -1), source_fps, fps).reshape(-1, 22, 3)
            joints = pad_to_length(joints.numpy(), self.frames).astype(np.float32)
            self.trials.append((joints, action, f"s{subject}_t{trial}"))
        if not self.trials:
            raise ValueError(f"no skeleton trials for subjects {list(subjects)} and actions {list(actions)} in {root}")

    def __len__(self) -> int:
        return len(self.trials) * self.repeats

    def activity_of(self, index: int) -> str:
        return ACTIONS[self.trials[index % len(self.trials)][1]][0]

    def __getitem__(self, index: int) -> MotionClip:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        joints, action, name = self.trials[index % len(self.trials)]
        activity, shared = ACTIONS[action]
        return MotionClip(
            joints=joints,
            fps=self.fps,
            activity=activity,
            safety=safety_of(shared),
            caption=f"UTD-MHAD {activity} {name}",
            foot_contact=np.zeros((joints.shape[0], 4), dtype=bool),
        )
