"""Aggregate sim-to-real runs into the rows of docs/results.md: mean ± std over seeds of test metrics.

    python docs/sim2real_table.py "synthetic=logs/train/multiruns/<dir>" "real-only=logs/train/multiruns/<dir>" ...

Each argument is `row name=folder`; every `metrics.json` below the folder (one per seed of a Hydra
multirun) contributes. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRICS = ("test/balanced_acc", "test/macro_f1")


def summarize(folder: Path) -> dict[str, tuple[float, float, int]]:
    """metric → (mean, std, number of runs) over the `metrics.json` files below `folder`."""
    runs = [json.loads(path.read_text()) for path in sorted(folder.rglob("metrics.json"))]
    if not runs:
        raise FileNotFoundError(f"no metrics.json below {folder}")
    summary = {}
    for metric in METRICS:
        values = [run[metric] for run in runs if metric in run]
        if not values:
            raise KeyError(f"{metric} missing from the runs below {folder}")
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[metric] = (statistics.mean(values), spread, len(values))
    return summary


def markdown(rows: dict[str, dict[str, tuple[float, float, int]]]) -> str:
    lines = ["| row | seeds | balanced accuracy | macro F1 |", "|---|---|---|---|"]
    for name, summary in rows.items():
        cells = [f"{summary[m][0]:.3f} ± {summary[m][1]:.3f}" for m in METRICS]
        lines.append(f"| {name} | {summary[METRICS[0]][2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="'row name=folder' pairs")
    args = parser.parse_args()
    rows = {}
    for entry in args.rows:
        name, _, folder = entry.partition("=")
        if not folder:
            parser.error(f"{entry!r} is not of the form 'row name=folder'")
        rows[name] = summarize(Path(folder))
    print(markdown(rows))


if __name__ == "__main__":
    main()
