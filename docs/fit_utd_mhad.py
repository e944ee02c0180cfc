"""Fit the simulator to every right-wrist UTD-MHAD trial: mounting, sensor position, clock offset, calibration.

    python docs/fit_utd_mhad.py [--subjects 1 … 8] [--steps 300] [--out logs/fit_utd_mhad]

Each trial's Kinect skeleton is paired with its inertial recording as in docs/sim2real_plots.py
(`_real_and_joints`: 25 Hz, joints at 20 fps, both from t = 0) and `virtual_imu.fit.fit_to_recording`
fits, per trial and batched, the sensor's rotation relative to the right-wrist preset, its position in
the forearm frame, the recording's time offset and a per-axis bias and scale, comparing both domains
low-passed at 4 Hz (the experiment's setting). Scores (Pearson r and RMSE, per axis and magnitude, on
the 4 Hz low-passed trial) before fitting (the experiment's config: mount CONFIG_MOUNT, preset offset, no
time offset, no calibration) and after; a held-out check fits the population-level parameters (the mean
rotation, offset and time offset) on some subjects and scores them on the others, so the gain is not
only per-trial overfitting.

Outputs in `--out` (default logs/fit_utd_mhad/, git-ignored: derived from the dataset): trials.csv (one
row per trial: parameters, losses, scores), summary.json, fitted_placement.yaml (the fitted parameter
distributions in the data config's terms), and the Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "docs")]

from sim2real_plots import (  # noqa: E402
    CONFIG_MOUNT,
    DATA_ROOT,
    FS_HZ,
    LOWPASS_HZ,
    MOTION_FPS,
    _real_and_joints,
    pearson_r,
    wrist_trials,
)
from virtual_imu import quaternion  # noqa: E402
from virtual_imu.filters import lowpass  # noqa: E402
from virtual_imu.fit import FittedParameters, fit_to_recording, simulate_with  # noqa: E402
from virtual_imu.presets import preset  # noqa: E402

OUT = REPO / "logs" / "fit_utd_mhad"
PLACEMENT = "right_wrist"
CHANNELS = ("acc_x", "acc_y", "acc_z", "acc_norm", "gyro_x", "gyro_y", "gyro_z", "gyro_norm")
ROLL_AXIS = (1.0, 0.0, 0.0)
"""The sensor axis `MountJitter` rolls about (the watch's x, along the forearm)."""
JITTER_PERCENTILE = 90.0


# ---------------------------------------------------------------- rotation summaries


def mean_rotation(quaternions: np.ndarray) -> np.ndarray:
    """Chordal L2 mean `[4]` (w ≥ 0) of unit quaternions `[N, 4]`: the top eigenvector of Σ q qᵀ.

    It minimises Σ ‖R − Rᵢ‖²_F over rotations R and ignores each qᵢ's sign (Markley et al. 2007,
    "Averaging quaternions", J. Guidance, Control, and Dynamics 30(4)).
    """
    q = np.asarray(quaternions, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 4 or len(q) == 0:
        raise ValueError(f"quaternions must be [N ≥ 1, 4], got {q.shape}")
    _, vectors = np.linalg.eigh(q.T @ q)
    mean = vectors[:, -1]
    leading = mean[np.argmax(np.abs(mean) > 1e-9)]  # the sign: w > 0, or the first non-zero component when w = 0
    return mean if leading > 0 else -mean


def roll_tilt_deg(relative: np.ndarray, axis: Sequence[float] = ROLL_AXIS) -> tuple[np.ndarray, np.ndarray]:
    """Signed roll (°, in [−180, 180]) about `axis` and tilt (°, ≥ 0) of rotations `[N, 4]`.

    Swing-twist: q = tilt ⊗ roll with roll = (w, (v·a)·a)/‖…‖ about the unit axis a and tilt about an axis
    perpendicular to a, the composition `virtual_imu.mounting.MountJitter` draws.
    """
    q = np.asarray(relative, dtype=np.float64)
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    q = np.where(q[:, :1] < 0, -q, q)
    along = q[:, 1:] @ a
    roll = 2 * np.arctan2(along, q[:, 0])
    # The tilt quaternion q ⊗ roll* has scalar part ‖(w, v·a)‖ and a vector part of length ‖v − (v·a)·a‖.
    across = np.linalg.norm(q[:, 1:] - along[:, None] * a, axis=1)
    tilt = 2 * np.arctan2(across, np.hypot(q[:, 0], along))
    return np.degrees(roll), np.degrees(tilt)


def relative_rotations(quaternions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """reference⁻¹ ⊗ qᵢ `[N, 4]`: each rotation as a further turn of the mounted sensor (mount ⊗ jitter)."""
    q = torch.as_tensor(np.asarray(quaternions, dtype=np.float64))
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float64)).expand_as(q)
    return quaternion.multiply(quaternion.conjugate(ref), q).numpy()


def placement_summary(params: FittedParameters) -> dict:
    """The fitted parameters' distribution, in the data config's terms where it has them."""
    rotations = params.rotation.double().numpy()
    mean = mean_rotation(rotations)
    roll, tilt = roll_tilt_deg(relative_rotations(rotations, mean))

    def spread(values: torch.Tensor) -> list[float]:
        return values.double().std(0, unbiased=len(values) > 1).tolist() if values.dim() > 1 else [
            float(values.double().std(unbiased=len(values) > 1))]

    along = params.offset_m[:, 0].double().numpy() - preset(PLACEMENT).mount.offset_m[0]
    return {
        "trials": len(rotations),
        "mount_rotation": mean.tolist(),
        "mount_jitter": {"roll_deg": float(np.percentile(np.abs(roll), JITTER_PERCENTILE)),
                         "tilt_deg": float(np.percentile(tilt, JITTER_PERCENTILE))},
        "offset_along_m": float(np.percentile(np.abs(along), JITTER_PERCENTILE)),
        "offset_m": {"mean": params.offset_m.double().mean(0).tolist(), "std": spread(params.offset_m)},
        "time_offset_s": {"mean": float(params.time_offset_s.double().mean()), "std": spread(params.time_offset_s)[0]},
        "acc_bias_std": spread(params.acc_bias),
        "gyro_bias_std": spread(params.gyro_bias),
        "acc_scale_std": spread(params.acc_scale),
        "gyro_scale_std": spread(params.gyro_scale),
    }


def placement_yaml(summary: dict, subjects: Sequence[int]) -> str:
    """`fitted_placement.yaml`: `pipeline:` merges into conf/data's pipeline; `fitted:` is for reading."""

    def rms(name: str) -> float:  # one σ for the three axes, as `TriaxialErrors` takes it
        return round(float(np.sqrt(np.mean(np.square(summary[name])))), 4)

    document = {
        "pipeline": {
            "mount_rotation": [round(v, 4) for v in summary["mount_rotation"]],
            "mount_jitter": {"_target_": "virtual_imu.mounting.MountJitter",
                             **{k: round(v, 1) for k, v in summary["mount_jitter"].items()}},
            "randomization": {"_target_": "virtual_imu.randomization.PlacementRandomization",
                              "offset_along_m": round(summary["offset_along_m"], 4)},
            "sensor": {sensor: {"bias_std": rms(f"{short}_bias_std"), "scale_error_std": rms(f"{short}_scale_std")}
                       for sensor, short in (("accelerometer", "acc"), ("gyroscope", "gyro"))},
        },
        "fitted": {key: summary[key] for key in ("trials", "offset_m", "time_offset_s", "acc_bias_std", "gyro_bias_std",
                                                 "acc_scale_std", "gyro_scale_std")},
    }
    header = (
        f"# Fitted to {summary['trials']} right-wrist UTD-MHAD trials of subjects {list(subjects)}\n"
        "#   by docs/fit_utd_mhad.py.\n"
        "# pipeline.mount_rotation: chordal L2 mean of the per-trial rotations (relative to the right_wrist preset).\n"
        f"# pipeline.mount_jitter: {JITTER_PERCENTILE:g}th percentiles of |roll| about the watch x axis and of\n"
        "#   the tilt of each trial's rotation relative to that mean.\n"
        f"# pipeline.randomization.offset_along_m: {JITTER_PERCENTILE:g}th percentile of |x − the preset's x|\n"
        "#   of the fitted sensor positions along the forearm (m).\n"
        "# pipeline.sensor: RMS over axes of the per-trial spread of bias and scale (merge into a data/sensor\n"
        "#   preset): upper bounds on the sensor's, since both also absorb what the skeleton gets wrong.\n"
        "# fitted: offset_m (sensor position in the forearm frame, x along the forearm; metres), time offset (s),\n"
        "#   per-axis spreads of bias (m/s², rad/s) and relative scale; the pipeline has no setting for them yet.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


# ---------------------------------------------------------------- pairing and scores


def load_batch(root: Path, keys: Sequence[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Joints `[B, F, 22, 3]` (held at each trial's last frame), real `[B, L, 6]` and mask `[B, L]` of trials.

    A trial's valid samples are those both its recording and its own skeleton span (as `paired_trial`).
    """
    pairs = [_real_and_joints(root, *key, FS_HZ) for key in keys]
    lengths = [min(len(real), math.floor((len(joints) - 1) * FS_HZ / MOTION_FPS + 1e-9) + 1) for real, joints in pairs]
    longest = max(lengths)
    frames = max(max(len(joints) for _, joints in pairs), math.ceil((longest - 1) * MOTION_FPS / FS_HZ) + 1)
    joints = torch.stack([torch.cat((j, j[-1:].expand(frames - len(j), -1, -1))) for _, j in pairs])
    real = torch.zeros(len(keys), longest, 6, dtype=torch.float64)
    for row, ((recording, _), length) in enumerate(zip(pairs, lengths)):
        real[row, :length] = torch.from_numpy(recording[:length])
    mask = torch.arange(longest) < torch.tensor(lengths)[:, None]
    return joints, real, mask


def _with_norms(imu: np.ndarray) -> np.ndarray:
    """`[T, 6]` → `[T, 8]` in CHANNELS order (each triad followed by its magnitude)."""
    acc, gyro = imu[:, :3], imu[:, 3:]
    return np.column_stack((acc, np.linalg.norm(acc, axis=1), gyro, np.linalg.norm(gyro, axis=1)))


def trial_scores(real: np.ndarray, virtual: np.ndarray) -> dict[str, np.ndarray]:
    """Pearson r and RMSE `[8]` (CHANNELS) of one trial, both `[T, 6]` low-passed at LOWPASS_HZ first."""
    real, virtual = (_with_norms(lowpass(torch.from_numpy(np.asarray(x, dtype=np.float64)), LOWPASS_HZ, FS_HZ).numpy())
                     for x in (real, virtual))
    return {"r": pearson_r(real, virtual), "rmse": np.sqrt(np.mean((real - virtual) ** 2, axis=0))}


def score(joints: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, params: FittedParameters) -> list[dict]:
    """`trial_scores` of every trial of a batch under `params`."""
    with torch.no_grad():
        virtual = simulate_with(joints, params, placement=PLACEMENT, motion_fps=MOTION_FPS, output_hz=FS_HZ,
                                output_length=real.shape[1])
    return [trial_scores(real[b, :n].numpy(), virtual[b, :n].numpy()) for b, n in enumerate(mask.sum(-1).tolist())]


def config_parameters(batch: int) -> FittedParameters:
    """The experiment's setting: the preset turned by CONFIG_MOUNT, no time offset, no calibration."""
    return FittedParameters.nominal(batch, PLACEMENT, rotation=CONFIG_MOUNT)


def population_parameters(fitted: FittedParameters, batch: int) -> FittedParameters:
    """One setting for every trial: the mean rotation, offset and time offset of `fitted`, no calibration."""
    return replace(
        config_parameters(batch),
        rotation=torch.from_numpy(mean_rotation(fitted.rotation.double().numpy())).expand(batch, 4).clone(),
        offset_m=fitted.offset_m.double().mean(0).expand(batch, 3).clone(),
        time_offset_s=fitted.time_offset_s.double().mean().expand(batch).clone(),
    )


def _concat(parts: Sequence[FittedParameters]) -> FittedParameters:
    return FittedParameters(**{name: torch.cat([vars(p)[name] for p in parts]) for name in vars(parts[0])})


def _select(params: FittedParameters, rows: Sequence[int]) -> FittedParameters:
    index = torch.tensor(list(rows), dtype=torch.long)
    return FittedParameters(**{name: value[index] for name, value in vars(params).items()})


def aggregate(scores: Sequence[dict]) -> dict:
    """{"r"/"rmse": {channel: [mean, std]}} over trials (std with N − 1; 0 for one trial)."""
    out = {}
    for metric in ("r", "rmse"):
        values = np.stack([s[metric] for s in scores])
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        out[metric] = {c: [float(m), float(s)] for c, m, s in zip(CHANNELS, values.mean(axis=0), std)}
    return out


# ---------------------------------------------------------------- report


def _cell(pair: Sequence[float]) -> str:
    return f"{pair[0]:.3f} ± {pair[1]:.3f}"


def markdown(summary: dict) -> str:
    before, after = summary["before"], summary["after"]
    lines = [f"All trials ({summary['trials']}): per-trial mean ± std, 4 Hz low-pass, {FS_HZ:g} Hz",
             "", "| channel | r config | r fitted | RMSE config | RMSE fitted |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {_cell(before['r'][c])} | {_cell(after['r'][c])} | {_cell(before['rmse'][c])} | "
              f"{_cell(after['rmse'][c])} |" for c in CHANNELS]
    lines += ["", "| subject | trials | r acc x/y/z mean, config → fitted | r gyro x/y/z mean, config → fitted |",
              "|---|---|---|---|"]
    for subject, entry in summary["per_subject"].items():
        cells = [f"{np.mean([entry[k]['r'][f'{s}_{a}'][0] for a in 'xyz']):.3f}" for s in ("acc", "gyro")
                 for k in ("before", "after")]
        lines.append(f"| {subject} | {entry['trials']} | {cells[0]} → {cells[1]} | {cells[2]} → {cells[3]} |")
    held = summary.get("heldout")
    if held:
        lines += ["", f"Held out: population parameters fitted on subjects {held['fit_subjects']} "
                  f"({held['fit_trials']} trials), scored on {held['eval_subjects']} ({held['eval_trials']} trials)", "",
                  "| channel | r config | r population | r per-trial fit | RMSE config | RMSE population | RMSE per-trial fit |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {c} | " + " | ".join(_cell(held[k][m][c]) for m in ("r", "rmse")
                                          for k in ("config", "population", "per_trial")) + " |" for c in CHANNELS]
    return "\n".join(lines)


def _csv_rows(keys, params: FittedParameters, losses, before, after) -> list[dict]:
    rows = []
    for index, (action, subject, trial) in enumerate(keys):
        row = {"action": action, "subject": subject, "trial": trial}
        for name, value in vars(params).items():
            value = value[index].reshape(-1).tolist()
            row.update({name: value[0]} if len(value) == 1 else {f"{name}_{i}": v for i, v in enumerate(value)})
        row.update({"loss_before": losses[0][index], "loss_after": losses[1][index]})
        for stage, scores in (("config", before[index]), ("fitted", after[index])):
            for metric in ("r", "rmse"):
                row.update({f"{metric}_{stage}_{c}": float(v) for c, v in zip(CHANNELS, scores[metric])})
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DATA_ROOT, help="UTD-MHAD folder with Inertial/ and Skeleton/")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (keep it out of git)")
    parser.add_argument("--subjects", type=int, nargs="+", default=list(range(1, 9)))
    parser.add_argument("--actions", type=int, nargs="+", default=None, help="default: all wrist actions 1–21")
    parser.add_argument("--repetitions", type=int, nargs="+", default=None, help="trial numbers 1–4 (default all)")
    parser.add_argument("--batch-size", type=int, default=64, help="trials fitted at once")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per batch")
    parser.add_argument("--lr", type=float, default=0.3, help="Adam learning rate in virtual_imu.fit.STEP_UNITS")
    parser.add_argument("--prior-weight", type=float, default=0.01,
                        help="fit_to_recording's prior_weight (its default)")
    parser.add_argument("--heldout-fit", type=int, nargs="+", default=[1, 3, 5, 7])
    parser.add_argument("--heldout-eval", type=int, nargs="+", default=[2, 4, 6, 8])
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be ≥ 1, got {args.batch_size}")
    # Trials are a few hundred samples: torch's thread pool costs more than it saves (see sim2real_plots).
    torch.set_num_threads(1)
    started = time.perf_counter()
    keys = [(action, subject, trial) for action, subject, trial in wrist_trials(args.root, args.subjects)
            if (args.actions is None or action in args.actions)
            and (args.repetitions is None or trial in args.repetitions)]
    if not keys:
        parser.error(f"no wrist trials of subjects {args.subjects}, actions {args.actions}, "
                     f"repetitions {args.repetitions}")

    fitted, losses, before, after = [], ([], []), [], []
    for first in range(0, len(keys), args.batch_size):
        joints, real, mask = load_batch(args.root, keys[first : first + args.batch_size])
        result = fit_to_recording(joints, real, mask, placement=PLACEMENT, motion_fps=MOTION_FPS, output_hz=FS_HZ,
                                  initial_rotation=CONFIG_MOUNT, steps=args.steps, lr=args.lr, lowpass_hz=LOWPASS_HZ,
                                  prior_weight=args.prior_weight)
        fitted.append(result.parameters)
        losses[0].extend(result.loss_before.tolist())
        losses[1].extend(result.loss_after.tolist())
        before += score(joints, real, mask, config_parameters(len(joints)))
        after += score(joints, real, mask, result.parameters)
        print(f"fitted {min(first + args.batch_size, len(keys))}/{len(keys)} trials "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    params = _concat(fitted)

    summary = {
        "trials": len(keys), "subjects": args.subjects, "steps": args.steps, "lr": args.lr,
        "prior_weight": args.prior_weight, "fs_hz": FS_HZ, "lowpass_hz": LOWPASS_HZ, "config_mount": list(CONFIG_MOUNT),
        "loss": {"before": float(np.mean(losses[0])), "after": float(np.mean(losses[1]))},
        "before": aggregate(before), "after": aggregate(after),
        "per_subject": {},
        "placement": placement_summary(params),
    }
    for subject in sorted(set(s for _, s, _ in keys)):
        rows = [i for i, key in enumerate(keys) if key[1] == subject]
        summary["per_subject"][subject] = {"trials": len(rows), "before": aggregate([before[i] for i in rows]),
                                           "after": aggregate([after[i] for i in rows])}
    fit_rows = [i for i, key in enumerate(keys) if key[1] in args.heldout_fit]
    eval_rows = [i for i, key in enumerate(keys) if key[1] in args.heldout_eval]
    if fit_rows and eval_rows:
        eval_keys = [keys[i] for i in eval_rows]
        population = []
        for first in range(0, len(eval_keys), args.batch_size):
            joints, real, mask = load_batch(args.root, eval_keys[first : first + args.batch_size])
            population += score(joints, real, mask, population_parameters(_select(params, fit_rows), len(joints)))
        summary["heldout"] = {
            "fit_subjects": sorted({keys[i][1] for i in fit_rows}),
            "eval_subjects": sorted({keys[i][1] for i in eval_rows}),
            "fit_trials": len(fit_rows), "eval_trials": len(eval_rows),
            "population_parameters": placement_summary(_select(params, fit_rows)),
            "config": aggregate([before[i] for i in eval_rows]),
            "population": aggregate(population),
            "per_trial": aggregate([after[i] for i in eval_rows]),
        }
    summary["wall_s"] = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    rows = _csv_rows(keys, params, losses, before, after)
    with open(args.out / "trials.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    (args.out / "fitted_placement.yaml").write_text(placement_yaml(summary["placement"], args.subjects))
    print(markdown(summary))
    print(f"\nwall time {summary['wall_s']:.0f} s; wrote {args.out}/trials.csv, summary.json, fitted_placement.yaml")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
