"""Summarise a λ_acc sweep: `python docs/sweep_summary.py <sweep dir> [--out <dir>]`.

Reads every run under the sweep folder (a Hydra multirun of `sweep=lambda_acc`, or any folder of runs):
its resolved config (`.hydra/config.yaml`: `model.lambda_acc`, `seed`) and its `metrics.json`, then writes
`sweep_summary.md` (mean ± sample std over seeds per λ_acc of validation L_simple, L_acc and, when the runs
report one, a downstream HAR balanced accuracy `har/balanced_acc`) and `sweep_summary.png` (λ_acc against
each metric, one point per seed plus the mean), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

METRICS = ("val/L_simple", "val/L_acc", "har/balanced_acc")
"""What is summarised, in this order, when present in the runs' metrics."""


def read_runs(sweep_dir: str | Path) -> list[dict]:
    """One dict per finished run under `sweep_dir`: `lambda_acc`, `seed`, `run` and its metrics."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ValueError(f"sweep_dir {sweep_dir} is not a folder")
    runs = []
    for metrics_file in sorted(sweep_dir.rglob("metrics.json")):
        config_file = metrics_file.parent / ".hydra" / "config.yaml"
        if not config_file.is_file():
            raise ValueError(f"{metrics_file.parent}: no .hydra/config.yaml beside metrics.json")
        config = yaml.safe_load(config_file.read_text())
        weight = config.get("model", {}).get("lambda_acc")
        if weight is None:
            raise ValueError(f"{config_file}: model.lambda_acc is not set (not an MDM run?)")
        metrics = json.loads(metrics_file.read_text())
        runs.append({"run": str(metrics_file.parent), "lambda_acc": float(weight), "seed": config.get("seed"), **metrics})
    if not runs:
        raise ValueError(f"no runs with metrics.json under {sweep_dir}")
    return runs


def summarize(runs: Sequence[dict]) -> tuple[list[str], list[dict]]:
    """Metric names present, and one row per λ_acc (ascending): mean, sample std (0 for one seed), seeds."""
    names = [name for name in METRICS if any(name in run for run in runs)]
    grouped: dict[float, list[dict]] = defaultdict(list)
    for run in runs:
        grouped[run["lambda_acc"]].append(run)
    rows = []
    for weight in sorted(grouped):
        row = {"lambda_acc": weight, "seeds": len(grouped[weight])}
        for name in names:
            values = [run[name] for run in grouped[weight] if name in run]
            if not values:
                continue
            mean = sum(values) / len(values)
            spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
            row[name] = (mean, spread)
        rows.append(row)
    return names, rows


def markdown(names: Sequence[str], rows: Sequence[dict]) -> str:
    header = "| λ_acc | seeds | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 2)]
    for row in rows:
        cells = [f"{row[name][0]:.4f} ± {row[name][1]:.4f}" if name in row else "–" for name in names]
        lines.append(f"| {row['lambda_acc']:g} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(runs: Sequence[dict], names: Sequence[str], rows: Sequence[dict]) -> plt.Figure:
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.scatter([r["lambda_acc"] for r in runs if name in r], [r[name] for r in runs if name in r],
                     color="0.6", s=14, label="runs")
        axis.plot([row["lambda_acc"] for row in rows if name in row], [row[name][0] for row in rows if name in row],
                  "o-", color="tab:blue", label="mean")
        axis.set_xlabel("λ_acc")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the sweep folder)")
    args = parser.parse_args(argv)
    runs = read_runs(args.sweep_dir)
    names, rows = summarize(runs)
    table = markdown(names, rows)
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep_summary.md").write_text(table + "\n")
    fig = figure(runs, names, rows)
    fig.savefig(out / "sweep_summary.png", dpi=120)
    plt.close(fig)
    print(table)
    return table


if __name__ == "__main__":
    main()
