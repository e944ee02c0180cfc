"""The λ_acc sweep: a real (tiny) Hydra multirun of train.py, then its summary; and the summary maths by hand."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("sweep_summary", ROOT / "docs" / "sweep_summary.py")
sweep_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep_summary)


def fake_run(folder: Path, weight: float, seed: int, **metrics) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "model": {"lambda_acc": weight}}))
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_summary_by_hand(tmp_path):
    fake_run(tmp_path / "a", 0.0, 1, **{"val/L_simple": 1.0, "val/L_acc": 0.5})
    fake_run(tmp_path / "b", 0.0, 2, **{"val/L_simple": 3.0, "val/L_acc": 0.7})
    fake_run(tmp_path / "c", 1.0, 1, **{"val/L_simple": 2.0, "val/L_acc": 0.2, "har/balanced_acc": 0.6})
    names, rows = sweep_summary.summarize(sweep_summary.read_runs(tmp_path))
    assert names == ["val/L_simple", "val/L_acc", "har/balanced_acc"]
    assert [row["lambda_acc"] for row in rows] == [0.0, 1.0] and rows[0]["seeds"] == 2
    assert rows[0]["val/L_simple"] == pytest.approx((2.0, 2**0.5))  # mean, sample std of 1 and 3
    assert rows[0]["val/L_acc"] == pytest.approx((0.6, 0.02**0.5))
    assert rows[1]["har/balanced_acc"] == (0.6, 0.0) and "har/balanced_acc" not in rows[0]
    table = sweep_summary.markdown(names, rows)
    assert "| 0 | 2 | 2.0000 ± 1.4142 | 0.6000 ± 0.1414 | – |" in table


def test_summary_names_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        sweep_summary.read_runs(tmp_path / "absent")
    with pytest.raises(ValueError, match="no runs"):
        sweep_summary.read_runs(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="config.yaml"):
        sweep_summary.read_runs(tmp_path)


@pytest.mark.slow
def test_a_tiny_lambda_acc_sweep_runs_as_one_hydra_multirun_and_is_summarised(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "experiment=mdm_lacc", "sweep=lambda_acc", "model.lambda_acc=0.0,2.0",
               "seed=1", "logger=csv", "callbacks.rich_progress_bar=null", "trainer.max_epochs=2", "test=false",
               "data.train_motion.num_clips=32", "data.val_motion.num_clips=16", "data.batch_size=16",
               f"hydra.sweep.dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["lambda_acc=0.0,seed=1", "lambda_acc=2.0,seed=1"]
    table = sweep_summary.main([str(tmp_path)])
    assert "| 0 | 1 |" in table and "| 2 | 1 |" in table
    assert (tmp_path / "sweep_summary.png").stat().st_size > 0
