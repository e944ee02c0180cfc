import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from docs.sim2real_table import markdown, summarize

ROOT = Path(__file__).resolve().parents[2]


def write_runs(folder: Path, values: list[tuple[float, float]]) -> None:
    for seed, (balanced, f1) in enumerate(values):
        run = folder / str(seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"test/balanced_acc": balanced, "test/macro_f1": f1, "val/acc": 0.1}))


def test_summary_is_mean_and_sample_std_over_seeds(tmp_path):
    write_runs(tmp_path / "row", [(0.5, 0.4), (0.6, 0.5), (0.7, 0.3)])
    summary = summarize(tmp_path / "row")
    assert summary["test/balanced_acc"] == pytest.approx((0.6, statistics.stdev([0.5, 0.6, 0.7]), 3))
    assert summary["test/macro_f1"] == pytest.approx((0.4, 0.1, 3))
    table = markdown({"synthetic": summary})
    assert "| synthetic | 3 | 0.600 ± 0.100 | 0.400 ± 0.100 |" in table


def test_missing_runs_and_metrics_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        summarize(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"test/balanced_acc": 0.5}))
    with pytest.raises(KeyError, match="test/macro_f1"):
        summarize(tmp_path)


def test_command_line(tmp_path):
    write_runs(tmp_path / "a", [(0.25, 0.5)])
    result = subprocess.run(
        [sys.executable, "docs/sim2real_table.py", f"single={tmp_path / 'a'}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "| single | 1 | 0.250 ± 0.000 | 0.500 ± 0.000 |" in result.stdout
