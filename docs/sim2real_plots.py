"""Sim-to-real on UTD-MHAD: the real and the virtual right-wrist IMU of the same trials, side by side.

    python docs/sim2real_plots.py trace --action 1 --subject 1 --trial 1
    python docs/sim2real_plots.py mount --subjects 1 3 5 7 --eval-subjects 2 4 6 8
    python docs/sim2real_plots.py features --subjects 2 4 6 8 --max-trials 40 [--noise]

Figures and JSON go to `--out` (default logs/sim2real_plots/, git-ignored): they are derived from the
dataset and must not be committed. Defaults are the experiment's (conf/data/sim2real_utd_mhad.yaml):
right-wrist preset, sensor rotated by CONFIG_MOUNT, 25 Hz, both domains low-passed at 4 Hz, 5 s windows.

Pairing: a trial's Kinect skeleton spans its inertial recording (`motion.kinect.skeleton_fps`), so the
joints, resampled to 20 fps, are simulated noise-free with `WristIMUPipeline` at the real sensor's rate;
both series then start at the recording's first sample and are trimmed to the shorter one.

    trace     one trial, real vs virtual, per-axis Pearson r (`paired_trial`, `trace_figure`)
    mount     the sensor's rotation relative to the nominal preset, fitted on some subjects' trials and
              scored on others (`estimate_utd_mount`, `mount_table`)
    features  catch22 + t-SNE of real vs virtual 5 s windows of the same trials, and the domain gap
              (`feature_windows`, `features_analysis`; see docs/feature_space.py)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "docs")]

from datamodules.readers.base import resample_uniform  # noqa: E402
from datamodules.readers.utd_mhad import (  # noqa: E402
    ACTIONS,
    INERTIAL_HZ,
    WRIST_ACTIONS,
    action_names,
    pad_to_length,
    read_utd_inertial,
)
from feature_space import catch22_features, domain_gap, feature_space_figure  # noqa: E402
from lightning_modules.trace_figure import pearson_r, trace_figure  # noqa: E402
from motion.kinect import kinect_to_humanml3d, read_utd_skeleton, skeleton_fps  # noqa: E402
from virtual_imu.filters import lowpass, resample  # noqa: E402
from virtual_imu.mounting import estimate_mount_rotation, rotate_imu  # noqa: E402
from virtual_imu.mems import MEMSIMU  # noqa: E402
from virtual_imu.pipeline import IMU_CHANNELS, WristIMUPipeline  # noqa: E402

DATA_ROOT = Path(os.environ.get("VIMU_DATA_DIR", REPO.parent / "shared" / "data")) / "utd_mhad"
"""Where conf/paths/default.yaml puts the dataset."""
CONFIG = REPO / "conf" / "data" / "sim2real_utd_mhad.yaml"
OUT = REPO / "logs" / "sim2real_plots"
FS_HZ = 25.0
LOWPASS_HZ = 4.0
WINDOW_S = 5.0
MOTION_FPS = 20.0
NOMINAL_MOUNT = (1.0, 0.0, 0.0, 0.0)
CONFIG_MOUNT = (0.0, 0.0, 1.0, 0.0)
"""The experiment's sensor rotation relative to the right-wrist preset: 180° about the watch's y axis."""
SUBJECTS = tuple(range(1, 9))
TRIALS = (1, 2, 3, 4)


def config_sensor(path: Path = CONFIG) -> MEMSIMU:
    """The experiment's sensor model: the `sensor` group chosen in its data config's defaults list."""
    defaults = yaml.safe_load(path.read_text())["defaults"]
    name = next(entry["sensor"] for entry in defaults if isinstance(entry, dict) and "sensor" in entry)
    return instantiate(OmegaConf.load(path.parent / "sensor" / f"{name}.yaml"))


def _trial_files(root: Path, action: int, subject: int, trial: int) -> tuple[Path, Path]:
    if action not in WRIST_ACTIONS:
        raise ValueError(f"action must be a right-wrist action {WRIST_ACTIONS[0]}–{WRIST_ACTIONS[-1]}, got {action}")
    name = f"a{action}_s{subject}_t{trial}"
    files = (Path(root) / "Inertial" / f"{name}_inertial.mat", Path(root) / "Skeleton" / f"{name}_skeleton.mat")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (UTD-MHAD trial {name} under root={root})")
    return files


def _real_and_joints(root: Path, action: int, subject: int, trial: int, fs: float) -> tuple[np.ndarray, torch.Tensor]:
    """Real IMU `[T, 6]` at `fs` (m/s², rad/s) and the joints `[F, 22, 3]` (m) at MOTION_FPS, both from t = 0."""
    inertial_path, skeleton_path = _trial_files(root, action, subject, trial)
    recording = read_utd_inertial(inertial_path, fs=INERTIAL_HZ)
    kinect = read_utd_skeleton(skeleton_path)
    joints = torch.from_numpy(kinect_to_humanml3d(kinect))
    kinect_fps = skeleton_fps(kinect.shape[0], recording.acc.shape[0], INERTIAL_HZ)
    joints = resample(joints.reshape(joints.shape[0], -1), kinect_fps, MOTION_FPS).reshape(-1, 22, 3)
    return resample_uniform(recording.imu, INERTIAL_HZ, fs), joints


def _pipeline(fs: float, mount_rotation: Sequence[float], sensor: MEMSIMU | None = None) -> WristIMUPipeline:
    return WristIMUPipeline(placement="right_wrist", motion_fps=MOTION_FPS, target_hz=fs,
                            mount_rotation=tuple(mount_rotation), sensor=sensor or MEMSIMU())


def paired_trial(
    root: str | Path,
    action: int,
    subject: int,
    trial: int,
    *,
    fs: float = FS_HZ,
    lowpass_hz: float = LOWPASS_HZ,
    mount_rotation: Sequence[float] = CONFIG_MOUNT,
) -> tuple[np.ndarray, np.ndarray]:
    """Real and noise-free virtual IMU `[T, 6]` (acc m/s², gyro rad/s) of one wrist trial, time-aligned at `fs` Hz.

    Both are low-passed at `lowpass_hz` and trimmed to the shorter of the two (they differ by ≤ 1 sample).
    """
    real, joints = _real_and_joints(Path(root), action, subject, trial, fs)
    virtual = _pipeline(fs, mount_rotation)(joints)
    length = min(len(real), len(virtual))
    real = lowpass(torch.from_numpy(real[:length]), lowpass_hz, fs)
    return real.numpy(), lowpass(virtual[:length], lowpass_hz, fs).numpy()


def wrist_trials(root: str | Path, subjects: Sequence[int]) -> list[tuple[int, int, int]]:
    """(action, subject, trial) of every wrist trial of `subjects` whose inertial and skeleton files both exist."""
    unknown = [s for s in subjects if s not in SUBJECTS]
    if not subjects or unknown:
        raise ValueError(f"subjects must be a non-empty list of UTD-MHAD subjects 1–8, got {list(subjects)}")
    root = Path(root)
    if not (root / "Inertial").is_dir() or not (root / "Skeleton").is_dir():
        raise FileNotFoundError(f"root={root} lacks the UTD-MHAD folders Inertial/ and Skeleton/")
    return [
        (a, s, t) for a in WRIST_ACTIONS for s in subjects for t in TRIALS
        if all((root / kind / f"a{a}_s{s}_t{t}_{kind.lower()}.mat").is_file() for kind in ("Inertial", "Skeleton"))
    ]


def quaternion_angle_deg(p: Sequence[float], q: Sequence[float]) -> float:
    """The angle (°) of the rotation between unit quaternions `p` and `q` (q and −q are the same rotation)."""
    dot = abs(float(np.dot(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))))
    return math.degrees(2 * math.acos(min(1.0, dot)))


def _agreement(pairs: list[tuple[np.ndarray, np.ndarray]], rotation: Sequence[float]) -> dict:
    """Per-axis agreement of real with the rotated virtual IMU over paired trials (nominal-preset virtual).

    pearson_r: mean over trials of each trial's r; rmse: over all samples pooled (m/s², rad/s).
    """
    quaternion = torch.tensor(rotation, dtype=torch.float64)
    rotated = [(real, rotate_imu(torch.from_numpy(virtual), quaternion).numpy()) for real, virtual in pairs]
    r = np.mean([pearson_r(real, virtual) for real, virtual in rotated], axis=0)
    errors = np.concatenate([real - virtual for real, virtual in rotated])
    return {"pearson_r": r.tolist(), "rmse": np.sqrt(np.mean(errors**2, axis=0)).tolist()}


def estimate_utd_mount(
    root: str | Path,
    subjects: Sequence[int],
    *,
    fs: float = FS_HZ,
    lowpass_hz: float = LOWPASS_HZ,
    eval_subjects: Sequence[int] | None = None,
) -> dict:
    """The UTD-MHAD sensor's rotation relative to the nominal right-wrist preset, and how well each mounting fits.

    Fits `estimate_mount_rotation` on the low-passed acc of every wrist trial of `subjects` paired with
    the nominal preset, then scores the nominal preset, CONFIG_MOUNT and the estimate on the trials of
    `eval_subjects` (default: `subjects`).

    Returns:
        quaternion: the estimate (w, x, y, z), sign fixed so that w ≥ 0.
        angle_from_config_deg: its angle from CONFIG_MOUNT.
        nominal, config, estimated: {"pearson_r": [6], "rmse": [6]} per channel of IMU_CHANNELS
            (r averaged over trials, RMSE pooled over samples).
        fit_subjects, eval_subjects, fit_trials, eval_trials: what was used.
    """
    eval_subjects = list(subjects if eval_subjects is None else eval_subjects)
    fit_pairs = [paired_trial(root, *key, fs=fs, lowpass_hz=lowpass_hz, mount_rotation=NOMINAL_MOUNT)
                 for key in wrist_trials(root, subjects)]
    if not fit_pairs:
        raise ValueError(f"no wrist trials of subjects {list(subjects)} under root={root}")
    virtual_acc = torch.from_numpy(np.concatenate([virtual[:, :3] for _, virtual in fit_pairs]))
    real_acc = torch.from_numpy(np.concatenate([real[:, :3] for real, _ in fit_pairs]))
    quaternion = estimate_mount_rotation(virtual_acc, real_acc).double()
    quaternion = (quaternion if quaternion[0] >= 0 else -quaternion).tolist()
    eval_pairs = (fit_pairs if eval_subjects == list(subjects) else
                  [paired_trial(root, *key, fs=fs, lowpass_hz=lowpass_hz, mount_rotation=NOMINAL_MOUNT)
                   for key in wrist_trials(root, eval_subjects)])
    if not eval_pairs:
        raise ValueError(f"no wrist trials of eval_subjects {eval_subjects} under root={root}")
    return {
        "quaternion": quaternion,
        "angle_from_config_deg": quaternion_angle_deg(quaternion, CONFIG_MOUNT),
        **{name: _agreement(eval_pairs, rotation)
           for name, rotation in (("nominal", NOMINAL_MOUNT), ("config", CONFIG_MOUNT), ("estimated", quaternion))},
        "fit_subjects": list(subjects),
        "eval_subjects": eval_subjects,
        "fit_trials": len(fit_pairs),
        "eval_trials": len(eval_pairs),
    }


def mount_table(result: dict) -> str:
    """`estimate_utd_mount`'s result as a plain-text table (one row per channel, plus the acc and gyro means)."""
    mountings = ("nominal", "config", "estimated")
    rows = [(channel, [result[m][key][c] for key in ("pearson_r", "rmse") for m in mountings])
            for c, channel in enumerate(IMU_CHANNELS)]
    for sensor, triad in (("acc", slice(0, 3)), ("gyro", slice(3, 6))):
        rows.append((f"{sensor} mean", [float(np.mean(result[m][key][triad])) for key in ("pearson_r", "rmse")
                                        for m in mountings]))
    header = f"{'channel':<10}" + "".join(f"{f'{key} {m}':>17}" for key in ("r", "RMSE") for m in mountings)
    lines = [
        f"mount rotation (w, x, y, z) = ({', '.join(f'{v:+.3f}' for v in result['quaternion'])}), "
        f"{result['angle_from_config_deg']:.1f}° from the config's {CONFIG_MOUNT}",
        f"fitted on subjects {result['fit_subjects']} ({result['fit_trials']} trials), "
        f"scored on subjects {result['eval_subjects']} ({result['eval_trials']} trials); "
        "r: mean over trials, RMSE: pooled (m/s², rad/s)",
        header,
        "-" * len(header),
    ]
    lines += [f"{name:<10}" + "".join(f"{value:>17.3f}" for value in values) for name, values in rows]
    return "\n".join(lines)


def feature_windows(
    root: str | Path,
    subjects: Sequence[int],
    *,
    fs: float = FS_HZ,
    lowpass_hz: float = LOWPASS_HZ,
    window_s: float = WINDOW_S,
    mount_rotation: Sequence[float] = CONFIG_MOUNT,
    sensor: MEMSIMU | None = None,
    max_trials: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real and virtual `[N, W, 6]` windows of the same N wrist trials, and their action numbers `[N]`.

    As the experiment builds them: the real recording at `fs` and the joints at MOTION_FPS are each centred
    in `window_s` (`pad_to_length`, holding the first and last sample / pose), the joints are simulated
    (with the `sensor` model's errors, drawn per trial from `seed`), and both windows are low-passed at `lowpass_hz`.
    `max_trials` keeps that many trials evenly spread over the (action, subject, trial) list.
    """
    trials = wrist_trials(root, subjects)
    if max_trials is not None:
        if max_trials < 1:
            raise ValueError(f"max_trials must be ≥ 1, got {max_trials}")
        trials = [trials[i] for i in np.unique(np.linspace(0, len(trials) - 1, min(max_trials, len(trials))).round()
                                               .astype(int))]
    if not trials:
        raise ValueError(f"no wrist trials of subjects {list(subjects)} under root={root}")
    window = round(window_s * fs)
    pipeline = _pipeline(fs, mount_rotation, sensor)
    generator = torch.Generator().manual_seed(seed)
    real_windows, virtual_windows = [], []
    for key in trials:
        real, joints = _real_and_joints(Path(root), *key, fs)
        joints = torch.from_numpy(pad_to_length(joints.numpy(), round(window_s * MOTION_FPS) + 1))
        length = pipeline.output_length(joints.shape[0])
        virtual = pipeline(joints, pipeline.draw(length, generator))
        real_windows.append(pad_to_length(real, window))
        virtual_windows.append(virtual[:window].numpy())
    real, virtual = (lowpass(torch.from_numpy(np.stack(w)), lowpass_hz, fs).numpy()
                     for w in (real_windows, virtual_windows))
    return real, virtual, np.array([action for action, _, _ in trials])


def features_analysis(
    root: str | Path, subjects: Sequence[int], *, perplexity: float = 30.0, seed: int = 0, **window_options
) -> tuple[plt.Figure, dict]:
    """t-SNE figure of the catch22 features of `feature_windows` (coloured by action) and their `domain_gap`.

    `perplexity` is capped at (2N − 1) / 3 so that small runs (`max_trials`) still embed.
    """
    real, virtual, actions = feature_windows(root, subjects, seed=seed, **window_options)
    present = sorted(set(actions.tolist()))
    labels = np.searchsorted(present, actions)
    figure = feature_space_figure(
        real, virtual, labels_real=labels, labels_virtual=labels, class_names=action_names(present), seed=seed,
        perplexity=min(perplexity, (2 * len(real) - 1) / 3),
    )
    gap = domain_gap(catch22_features(real), catch22_features(virtual), folds=min(5, len(real)), seed=seed)
    return figure, gap


def _save(figure: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DATA_ROOT, help="UTD-MHAD folder with Inertial/ and Skeleton/")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (keep it out of git)")
    parser.add_argument("--fs", type=float, default=FS_HZ, help="sensor rate, Hz")
    parser.add_argument("--lowpass-hz", type=float, default=LOWPASS_HZ, help="low-pass of both domains, Hz")
    commands = parser.add_subparsers(dest="command", required=True)
    trace = commands.add_parser("trace", help="one trial, real vs virtual")
    for name in ("action", "subject", "trial"):
        trace.add_argument(f"--{name}", type=int, required=True)
    mount = commands.add_parser("mount", help="estimate the sensor's mounting rotation")
    mount.add_argument("--subjects", type=int, nargs="+", default=[1, 3, 5, 7])
    mount.add_argument("--eval-subjects", type=int, nargs="+", default=None)
    features = commands.add_parser("features", help="catch22 / t-SNE / domain gap of real vs virtual windows")
    features.add_argument("--subjects", type=int, nargs="+", default=[2, 4, 6, 8])
    features.add_argument("--max-trials", type=int, default=None)
    features.add_argument("--noise", action="store_true", help="add the config's sensor errors to the virtual IMU")
    features.add_argument("--perplexity", type=float, default=30.0)
    features.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Every trial is a few hundred samples: torch's thread pool costs more than it saves (×20 on 2 cores).
    torch.set_num_threads(1)
    rates = {"fs": args.fs, "lowpass_hz": args.lowpass_hz}

    if args.command == "trace":
        key = (args.action, args.subject, args.trial)
        real, virtual = paired_trial(args.root, *key, **rates)
        title = (f"UTD-MHAD a{key[0]}_s{key[1]}_t{key[2]} ({ACTIONS[key[0]][0]}): real vs virtual right wrist, "
                 f"{args.fs:g} Hz, low-passed at {args.lowpass_hz:g} Hz")
        _save(trace_figure(real, virtual, args.fs, title), args.out / f"trace_a{key[0]}_s{key[1]}_t{key[2]}.png")
        return {"real": real, "virtual": virtual}
    if args.command == "mount":
        result = estimate_utd_mount(args.root, args.subjects, eval_subjects=args.eval_subjects, **rates)
        print(mount_table(result))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "mount.json").write_text(json.dumps(result, indent=2))
        return result
    figure, gap = features_analysis(
        args.root, args.subjects, perplexity=args.perplexity, seed=args.seed, max_trials=args.max_trials,
        sensor=config_sensor() if args.noise else None, **rates,
    )
    _save(figure, args.out / f"features{'_noise' if args.noise else ''}.png")
    print(json.dumps(gap, indent=2))
    return gap


if __name__ == "__main__":
    main(sys.argv[1:])
