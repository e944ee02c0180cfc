"""Text → motion → virtual wrist IMU: a generated HAR dataset on disk.

    python docs/generate_imu_dataset.py --run logs/mdm/runs/<date> --out <folder> \
        [--prompts docs/prompts/activities.yaml] [--per-prompt 10] [--seconds 4] [--batch 64] \
        [--ddim-steps 50] [--scale 2.5] [--placement left_wrist] [--sensor bmi270] [--target-hz 50] \
        [--seed 0] [--shard-size 1024] [--joints-dtype float16] [--quality max_bone_length_cv=0.08 …]

Every (prompt, sample index 0 … N−1) of the prompt file, in file order, is one sample; batches of `--batch`
of them are sampled with the MDMModule of a train.py run (built from its `.hydra/config.yaml`, which also
names the frozen text encoder; weights from `--ckpt` or checkpoints/last.ckpt) by guided DDPM over the
whole schedule or DDIM over `--ddim-steps`, turned into joints (`MDMModule.joints`: un-normalised features
→ positions, m, y up, at the module's fps), checked by `motion.quality.check_motion`, and the plausible
ones simulated by `virtual_imu.pipeline.WristIMUPipeline` with the `--sensor` preset's errors drawn per
sample. The folder's layout is `datamodules.generated_imu`'s, which reads it as HAR data. The IMU is
simulated from the float32 joints. float16 joints (steps of ~1 mm at 1–2 m from the origin) are for
inspection, not re-simulation: a position error ε becomes an acceleration error of up to 4ε·fps²
(0.8 m/s² for ε = 0.5 mm at 20 fps).

Determinism and resuming. A sample's sensor draws come from a seed of (--seed, prompt, sample index); a
batch's diffusion noise from a seed of (--seed, its prompts and indices), so the motions depend on the
batch composition, which the arguments fix. A batch is committed in this order: its shards (replaced
atomically), then its index lines, then its rejection lines (each set appended in one write). A rerun with
the same arguments takes what the index and the rejection log hold as done (cutting a torn last line),
ignores shard rows the index does not name, and regenerates every batch not wholly done, appending only
its missing samples: the folder ends up byte for byte as an uninterrupted run leaves it. Shards the index
fills are never rewritten. The arguments that shape the data are kept in meta.json; a rerun with others is
refused (ValueError naming them). `--max-batches` stops early on purpose (e.g. a time-limited job).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml
from omegaconf import OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from datamodules.generated_imu import (  # noqa: E402
    INDEX_FILE,
    META_FILE,
    REJECTED_FILE,
    REJECTED_KEYS,
    SUMMARY_FILE,
    read_index,
    read_jsonl,
    shard_array,
    shard_path,
    write_shard,
)
from datamodules.generated_motion import load_mdm  # noqa: E402
from datamodules.labels import check_shared, safety_of  # noqa: E402
from lightning_modules.mdm_module import MDMModule  # noqa: E402
from motion.quality import REASONS, QualityThresholds, check_motion  # noqa: E402
from virtual_imu import devices  # noqa: E402
from virtual_imu.pipeline import WristIMUPipeline  # noqa: E402
from virtual_imu.presets import PRESETS  # noqa: E402

DEFAULT_PROMPTS = REPO / "docs" / "prompts" / "activities.yaml"
IMU_REASON = "imu_non_finite"
"""Rejection of a plausible motion whose simulated IMU is not finite (nothing non-finite enters a shard)."""
ALL_REASONS = (*REASONS, IMU_REASON)
JOINT_DTYPES = {"float16": np.float16, "float32": np.float32}
_FLAGS = {
    "prompts": "--prompts (the file's content)",
    "checkpoint_sha256": "--run/--ckpt (the checkpoint's content)",
    "model_config": "--run (its model config)",
    "quality": "--quality (the thresholds)",
}
"""How a mismatch on resume names a setting that is not simply its flag."""


# ----------------------------------------------------------------------------------------------- inputs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # a bad argument is a ValueError naming it, like every other bad input
        raise ValueError(message)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="train.py run folder of an MDM (with .hydra/config.yaml)")
    parser.add_argument("--ckpt", help="checkpoint of that run (default: <run>/checkpoints/last.ckpt)")
    parser.add_argument("--prompts", default=str(DEFAULT_PROMPTS), help="prompt file (see docs/prompts/activities.yaml)")
    parser.add_argument("--out", required=True, help="dataset folder (created, or resumed)")
    parser.add_argument("--per-prompt", type=_positive(int), default=10, help="samples per prompt")
    parser.add_argument("--seconds", type=_positive(float), default=4.0, help="clip length, s")
    parser.add_argument("--batch", type=_positive(int), default=64, help="samples per diffusion batch")
    parser.add_argument("--ddim-steps", type=_positive(int), default=None, help="DDIM steps (default: full DDPM)")
    parser.add_argument("--scale", type=float, default=None, help="guidance scale (default: the module's)")
    parser.add_argument("--placement", choices=sorted(PRESETS), default="left_wrist")
    parser.add_argument("--sensor", choices=sorted(devices.DEVICES), default="bmi270", help="IMU device preset")
    parser.add_argument("--target-hz", type=_positive(float), default=50.0, help="IMU output rate, Hz")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-size", type=_positive(int), default=1024, help="samples per shard")
    parser.add_argument("--joints-dtype", choices=sorted(JOINT_DTYPES), default="float16")
    parser.add_argument("--quality", action="append", default=[], metavar="NAME=VALUE",
                        help="override a motion.quality.QualityThresholds field (repeatable)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--max-batches", type=_positive(int), default=None, help="stop after this many new batches")
    args = parser.parse_args(argv)
    if args.scale is not None and not 0 <= args.scale < float("inf"):
        raise ValueError(f"argument --scale: must be a finite number ≥ 0, got {args.scale}")
    return args


def load_prompts(path: str | Path) -> list[tuple[str, str, str]]:
    """(activity, safety, prompt) of every phrasing of a prompt file, in file order.

    The file maps shared classes to their `safety` (which must be `safety_of(activity)`) and `prompts`
    (non-empty strings, unique over the file: a prompt and a sample index name a sample).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--prompts {path} is not a file")
    content = yaml.safe_load(path.read_text())
    activities = content.get("activities") if isinstance(content, dict) else None
    if not isinstance(activities, dict) or not activities:
        raise ValueError(f"--prompts {path}: expected 'activities:' mapping shared classes to {{safety, prompts}}")
    prompts = []
    for activity, entry in activities.items():
        try:
            safety = safety_of(check_shared(activity))
        except ValueError as error:
            raise ValueError(f"--prompts {path}: {error}") from None
        if not isinstance(entry, dict) or entry.get("safety") != safety:
            found = entry.get("safety") if isinstance(entry, dict) else entry
            raise ValueError(f"--prompts {path}: {activity} needs 'safety: {safety}' (safety_of), got {found!r}")
        texts = entry.get("prompts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"--prompts {path}: {activity}.prompts must be a non-empty list of non-empty strings")
        prompts += [(activity, safety, text) for text in texts]
    counts = Counter(text for _, _, text in prompts)
    repeated = sorted(text for text, count in counts.items() if count > 1)
    if repeated:
        raise ValueError(f"--prompts {path}: prompts must be unique over the file, repeated: {repeated}")
    return prompts


def quality_thresholds(overrides: Sequence[str]) -> QualityThresholds:
    """`QualityThresholds` with the `--quality NAME=VALUE` overrides."""
    names = sorted(field.name for field in fields(QualityThresholds))
    values = {}
    for item in overrides:
        name, equals, text = item.partition("=")
        if not equals or name not in names:
            raise ValueError(f"--quality takes NAME=VALUE with NAME one of {names}, got {item!r}")
        try:
            values[name] = float(text)
        except ValueError:
            raise ValueError(f"--quality {item!r}: {text!r} is not a number") from None
    return QualityThresholds(**values)


def stable_seed(*parts) -> int:
    """A 63-bit seed from JSON-able `parts`, the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:8], "little") >> 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_prompt_embeddings(encoder: torch.nn.Module, prompts: Sequence[str]) -> None:
    """Encode every prompt alone, once, into the text encoder's cache (enlarged to hold them all).

    Encoded together, captions are padded to a common length, which changes the floating-point sums of
    their embeddings by rounding: a prompt's embedding would depend on the batch it was first met in, and a
    resumed run (which meets prompts in other company) would not reproduce the samples bit for bit.
    """
    if not hasattr(encoder, "cache_size"):
        raise ValueError(f"the run's text encoder {type(encoder).__name__} has no caption cache (networks.text_encoders)")
    encoder.cache_size = max(encoder.cache_size, len(prompts))
    for prompt in prompts:
        encoder([prompt])


# ------------------------------------------------------------------------------------------- the folder


def _append_lines(path: Path, lines: Sequence[dict]) -> None:
    """Append JSON lines in one write, flushed to disk (a crash leaves at most a torn last line)."""
    with open(path, "a") as file:
        file.write("".join(json.dumps(line) + "\n" for line in lines))
        file.flush()
        os.fsync(file.fileno())


def _cut_torn_line(path: Path) -> None:
    """Drop an unfinished last line (an interrupted append); create the file when missing."""
    data = path.read_bytes() if path.is_file() else b""
    if not data.endswith(b"\n"):
        with open(path, "ab") as file:
            file.truncate(data.rfind(b"\n") + 1)


class DatasetWriter:
    """The append-only side of a generated dataset folder (layout: `datamodules.generated_imu`).

    Opening checks meta.json against `meta["settings"]` (or writes it into a new, empty folder), cuts torn
    log lines, and takes as done the samples of the index (whose lines must fill the shards in order) and of
    the rejection log. Rows of the last, partial shard are reloaded; shard files the index does not reach
    (left by an interrupted commit) are removed.
    """

    def __init__(self, root: Path, meta: dict):
        self.root = root
        self.shard_size = meta["settings"]["shard_size"]
        self._open_meta(meta)
        for name in (INDEX_FILE, REJECTED_FILE):
            _cut_torn_line(root / name)
        self.index = read_index(root)
        self.rejected = read_jsonl(root / REJECTED_FILE, REJECTED_KEYS)
        for number, row in enumerate(self.index):
            if (row["shard"], row["row"]) != divmod(number, self.shard_size):
                raise ValueError(f"{root / INDEX_FILE} line {number + 1} points at shard {row['shard']} row "
                                 f"{row['row']}, not {divmod(number, self.shard_size)}: the index was edited")
        self.done = {(row["prompt"], row["sample"]) for row in self.index + self.rejected}
        shard, rows = divmod(len(self.index), self.shard_size)
        self.pending = {name: list(np.array(shard_array(shard_path(root, shard), name)[:rows])) if rows else []
                        for name in ("imu", "joints")}
        if any(len(stored) < rows for stored in self.pending.values()):
            raise ValueError(f"{shard_path(root, shard)} holds fewer rows than the {rows} {INDEX_FILE} names in it")
        for path in [*root.glob("shard_*.npz"), *root.glob("shard_*.partial")]:
            number = int(path.name[len("shard_"):].split(".")[0])
            if number > shard or (number == shard and not rows) or path.suffix == ".partial":
                path.unlink()

    def _open_meta(self, meta: dict) -> None:
        path = self.root / META_FILE
        if path.is_file():
            try:
                stored = json.loads(path.read_text())["settings"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path} is corrupt ({error!r}); it holds the settings to resume with") from None
            current = json.loads(json.dumps(meta["settings"]))  # as it would be stored (tuples → lists)
            different = [key for key in sorted(stored.keys() | current.keys()) if stored.get(key) != current.get(key)]
            if different:
                shown = [_FLAGS.get(key) or f"--{key.replace('_', '-')} ({stored.get(key)!r} there, {current.get(key)!r} now)"
                         for key in different]
                raise ValueError(f"--out {self.root} was generated with other arguments: {'; '.join(shown)}. Rerun "
                                 f"with the settings of its {META_FILE}, or choose a new --out")
            return
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise ValueError(f"--out {self.root} exists and holds no {META_FILE}: not a generated dataset to resume")
        self.root.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(META_FILE + ".partial")
        partial.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(partial, path)

    def commit(self, kept: Sequence[tuple[dict, np.ndarray, np.ndarray]], rejected: Sequence[dict]) -> None:
        """Append a batch's new samples: `kept` (index fields, imu `[T_imu, 6]`, joints `[T, 22, 3]`), `rejected` lines."""
        lines = []
        for fields_, imu, joints in kept:
            shard, row = divmod(len(self.index) + len(lines), self.shard_size)
            lines.append({"shard": shard, "row": row, **fields_})
            self.pending["imu"].append(imu)
            self.pending["joints"].append(joints)
            if row == self.shard_size - 1:
                self._write_pending(shard)
                self.pending = {name: [] for name in self.pending}
        if lines and self.pending["imu"]:  # the last shard, still partial, got new rows
            self._write_pending((len(self.index) + len(lines)) // self.shard_size)
        _append_lines(self.root / INDEX_FILE, lines)
        _append_lines(self.root / REJECTED_FILE, rejected)
        self.index += lines
        self.rejected += rejected
        self.done |= {(line["prompt"], line["sample"]) for line in [*lines, *rejected]}

    def _write_pending(self, shard: int) -> None:
        write_shard(shard_path(self.root, shard), {name: np.stack(rows) for name, rows in self.pending.items()})

    def summary(self, samples: int, activities: Sequence[str]) -> dict:
        """Counts: all samples, those generated so far, kept, rejected, per rejection reason and per activity."""
        reasons = Counter(reason for line in self.rejected for reason in line["reasons"])
        return {
            "samples": samples,
            "generated": len(self.index) + len(self.rejected),
            "kept": len(self.index),
            "rejected": len(self.rejected),
            "reasons": {reason: reasons[reason] for reason in ALL_REASONS},
            "activities": {
                activity: {
                    "kept": sum(line["activity"] == activity for line in self.index),
                    "rejected": sum(line["activity"] == activity for line in self.rejected),
                }
                for activity in activities
            },
        }


# ---------------------------------------------------------------------------------------- generation


def simulate_batch(
    module: MDMModule,
    pipeline: WristIMUPipeline,
    batch: Sequence[tuple[str, str, str, int]],
    *,
    frames: int,
    seed: int,
    scale: float,
    ddim_steps: int | None,
    thresholds: QualityThresholds,
    progress=None,
) -> tuple[list[list[str]], torch.Tensor, torch.Tensor, list[int]]:
    """Sample a batch of (activity, safety, prompt, sample index), check and simulate it.

    Returns per sample its rejection reasons ([] = kept), joints `[B, T, 22, 3]` (m, float32, CPU), IMU
    `[B, T_imu, 6]` (float32, CPU; NaN where the motion was rejected) and the seed of its sensor draws.
    """
    keys = [[prompt, sample] for _, _, prompt, sample in batch]
    generator = torch.Generator(device=module.device).manual_seed(stable_seed(seed, keys))
    lengths = torch.full((len(batch),), frames, dtype=torch.long)
    with torch.no_grad():
        motion = module.sample([prompt for prompt, _ in keys], lengths, scale=scale, ddim_steps=ddim_steps,
                               generator=generator, progress=progress)
        joints = module.joints(motion).float()  # [B, T, 22, 3]
    reasons = [check_motion(clip, pipeline.motion_fps, thresholds) for clip in joints.cpu()]
    seeds = [stable_seed(seed, prompt, sample) for prompt, sample in keys]
    imu = torch.full((len(batch), pipeline.output_length(frames), 6), float("nan"))
    plausible = [i for i, found in enumerate(reasons) if not found]
    if plausible:
        draws = [pipeline.draw(imu.shape[1], torch.Generator().manual_seed(seeds[i])) for i in plausible]
        stacked = {key: torch.stack([draw[key] for draw in draws]).to(joints.device) for key in draws[0]}
        with torch.no_grad():
            imu[plausible] = pipeline(joints[plausible], stacked).cpu()
        for i in plausible:
            if not torch.isfinite(imu[i]).all():
                reasons[i] = [IMU_REASON]
    return reasons, joints.cpu(), imu, seeds


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn())


def main(argv: Sequence[str] | None = None) -> dict:
    """Generate (or resume) the dataset; returns the summary also written to summary.json."""
    args = parse_args(argv)
    prompts = load_prompts(args.prompts)
    thresholds = quality_thresholds(args.quality)
    run = Path(args.run)
    checkpoint = Path(args.ckpt) if args.ckpt else run / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise ValueError(f"--ckpt {checkpoint} is not a file")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module = load_mdm(run, checkpoint).to(device)
    model_config = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml").model, resolve=True)
    if args.ddim_steps is not None and args.ddim_steps > module.diffusion.num_timesteps:
        raise ValueError(f"--ddim-steps {args.ddim_steps} exceeds the model's {module.diffusion.num_timesteps} steps")
    fps = float(module.hparams.fps)
    frames = round(args.seconds * fps)
    if frames < 3:
        raise ValueError(f"--seconds {args.seconds} is {frames} frames at {fps} fps; the quality check needs ≥ 3")
    pipeline = WristIMUPipeline(placement=args.placement, motion_fps=fps, target_hz=args.target_hz,
                                sensor=devices.device(args.sensor))
    scale = float(module.hparams.guidance_scale if args.scale is None else args.scale)
    settings = {
        "prompts": prompts,
        "checkpoint_sha256": file_sha256(checkpoint),
        "model_config": model_config,
        **{key: getattr(args, key) for key in ("per_prompt", "seconds", "batch", "ddim_steps", "placement", "sensor",
                                               "target_hz", "seed", "shard_size", "joints_dtype")},
        "scale": scale,
        "quality": asdict(thresholds),
        "device": device.type,
    }
    meta = {"settings": settings, "fps": fps, "frames": frames, "imu_length": pipeline.output_length(frames),
            "arguments": vars(args)}
    writer = DatasetWriter(Path(args.out), meta)
    cache_prompt_embeddings(module.text_encoder, [prompt for _, _, prompt in prompts])
    tasks = [(activity, safety, prompt, sample) for activity, safety, prompt in prompts for sample in range(args.per_prompt)]
    batches = [tasks[start:start + args.batch] for start in range(0, len(tasks), args.batch)]
    new_batches = 0
    with progress_bar() as progress:
        overall = progress.add_task("samples", total=len(tasks), completed=len(writer.done))
        steps = progress.add_task("denoising", total=None)
        for batch in batches:
            new = [task for task in batch if (task[2], task[3]) not in writer.done]
            if not new:
                continue
            if new_batches == args.max_batches:
                break
            reasons, joints, imu, seeds = simulate_batch(
                module, pipeline, batch, frames=frames, seed=args.seed, scale=scale, ddim_steps=args.ddim_steps,
                thresholds=thresholds, progress=lambda indices: progress.track(indices, task_id=steps),
            )
            kept, rejected = [], []
            for (activity, safety, prompt, sample), found, clip, signal, sample_seed in zip(batch, reasons, joints, imu, seeds):
                if (prompt, sample) in writer.done:
                    continue
                fields_ = {"prompt": prompt, "activity": activity, "safety": safety, "sample": sample,
                           "seed": sample_seed}
                if found:
                    rejected.append({**fields_, "reasons": found})
                else:
                    kept.append(({**fields_, "length": frames}, signal.numpy(),
                                 clip.numpy().astype(JOINT_DTYPES[args.joints_dtype])))
            writer.commit(kept, rejected)
            progress.advance(overall, len(new))
            new_batches += 1
    summary = writer.summary(len(tasks), list(dict.fromkeys(activity for activity, _, _ in prompts)))
    (Path(args.out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
