"""train.py / evaluate.py end to end, as a user runs them (subprocesses, real Hydra, real loggers)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
FAST = ["debug=fast", "logger=csv"]


def run(script: str, *overrides: str, run_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment = {key: value for key, value in environment.items() if value is not None}  # None: unset
    command = [sys.executable, str(ROOT / script), *overrides, f"hydra.run.dir={run_dir}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
@pytest.mark.parametrize("logger", ["wandb", "csv"])
def test_config_groups_compose(trainer, logger):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"trainer={trainer}", f"logger={logger}"])
    assert cfg.model.net._target_ == "networks.deepconvlstm.DeepConvLSTM"
    assert cfg.data.pipeline.target_hz == 50.0
    assert cfg.trainer.devices in (1, 2, -1)
    assert "wandb" in cfg.logger if logger == "wandb" else set(cfg.logger) == {"csv"}


def test_train_then_evaluate_writes_matching_metrics(tmp_path):
    result = run("train.py", *FAST, run_dir=tmp_path / "train")
    trained = metrics(tmp_path / "train")
    assert {"val/balanced_acc", "val/macro_f1", "test/balanced_acc", "test/macro_f1"} <= set(trained)
    assert all(0.0 <= trained[k] <= 1.0 for k in ("val/balanced_acc", "test/balanced_acc"))
    assert "test/balanced_acc" in result.stdout  # metrics are printed
    checkpoints = tmp_path / "train" / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    best = next(p for p in checkpoints.glob("epoch_*.ckpt"))
    run("evaluate.py", "debug=fast", f"ckpt_path={best}", run_dir=tmp_path / "eval")
    evaluated = metrics(tmp_path / "eval")
    for key in ("test/balanced_acc", "test/macro_f1", "test/loss"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6), key
    # init_from loads the weights (fine-tuning): testing them untrained reproduces the evaluation.
    run("train.py", *FAST, f"init_from={best}", "train=false", run_dir=tmp_path / "init")
    initialised = metrics(tmp_path / "init")
    for key in ("test/balanced_acc", "test/loss"):
        assert initialised[key] == pytest.approx(evaluated[key], abs=1e-6), key


@pytest.mark.parametrize("experiment", ["sim2real_utd_mhad", "sim2real_falls"])
def test_sim2real_experiments_compose(experiment):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}"])
    assert cfg.data._target_ == "datamodules.sim2real_datamodule.Sim2RealDataModule"
    assert cfg.test_ckpt == "last" and cfg.data.train_on == "virtual"


def test_init_from_names_a_missing_checkpoint(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), *FAST, f"init_from={tmp_path}/absent.ckpt",
               f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "absent.ckpt" in result.stderr


def test_evaluate_names_a_missing_checkpoint(tmp_path):
    command = [sys.executable, str(ROOT / "evaluate.py"), "debug=fast", f"ckpt_path={tmp_path}/nope.ckpt",
               f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "nope.ckpt" in result.stderr


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    common = [*FAST, "trainer.max_epochs=2", "test=false"]
    run("train.py", *common, run_dir=tmp_path / "straight")
    # last.ckpt follows every epoch, improved or not (debug models rarely improve)
    assert torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    run("train.py", *FAST, "trainer.max_epochs=1", "test=false", run_dir=tmp_path / "first_half")
    last = tmp_path / "first_half" / "checkpoints" / "last.ckpt"
    run("train.py", *common, f"ckpt_path={last}", run_dir=tmp_path / "resumed")
    straight, resumed = metrics(tmp_path / "straight"), metrics(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key


def test_wandb_logs_offline_without_credentials(tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": None, "WANDB_MODE": None, "NETRC": str(tmp_path / "none")}
    run("train.py", "debug=fast", "logger=wandb", "test=false", run_dir=tmp_path / "run", env=env)
    offline_runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert list(offline_runs[0].glob("*.wandb")), "the offline run holds a .wandb log to sync later"


@pytest.mark.slow
def test_hydra_multirun_over_seeds(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", *FAST, "test=false", "seed=1,2",
               f"hydra.sweep.dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    runs = [metrics(tmp_path / str(i)) for i in (0, 1)]
    assert runs[0]["val/loss"] != runs[1]["val/loss"]


@pytest.mark.slow
def test_train_with_ddp_on_two_cpu_processes(tmp_path):
    run("train.py", *FAST, "trainer=ddp_cpu", run_dir=tmp_path)
    assert "test/balanced_acc" in metrics(tmp_path)


@pytest.mark.parametrize("sensor", ["ideal", "bmi270", "consumer_phone", "wide_noise"])
def test_the_sensor_is_a_config_group(sensor):
    from hydra.utils import instantiate

    from virtual_imu.mems import MEMSIMU

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"data/sensor={sensor}"])
    model = instantiate(cfg.data.pipeline.sensor)
    assert isinstance(model, MEMSIMU)
    assert (model == MEMSIMU()) == (sensor == "ideal")


def test_varied_experiment_trains_with_bodies_placements_and_a_phone_imu(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=deepconvlstm_varied"])
    assert len(cfg.data.body_shapes) == 8 and cfg.data.pipeline.sensor.name == "consumer_phone"
    assert cfg.data.pipeline.randomization.other_wrist_probability == 0.5
    run("train.py", "experiment=deepconvlstm_varied", *FAST, "test=false", run_dir=tmp_path)
    assert 0.0 <= metrics(tmp_path)["val/balanced_acc"] <= 1.0


def test_fitted_utd_data_config_layers_the_fit_over_the_experiment():
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=sim2real_utd_mhad", "data=sim2real_utd_mhad_fitted"])
    pipeline = instantiate(cfg.data.pipeline)
    assert pipeline.placement == "right_wrist" and pipeline.target_hz == 25.0
    assert pipeline.mount_jitter.roll_deg == 54.0 and pipeline.randomization.offset_along_m == 0.081
    assert pipeline.sensor.accelerometer.bias_std == 1.242 and pipeline.sensor.accelerometer.noise_density == 0.01


MDM_SMALL = ["experiment=mdm_lacc", "logger=csv", "callbacks.rich_progress_bar=null", "data.train_motion.num_clips=64",
             "data.val_motion.num_clips=16", "data.test_motion.num_clips=16", "data.batch_size=16"]


def test_mdm_experiment_trains_from_one_command_and_l_acc_falls(tmp_path):
    import csv

    run("train.py", *MDM_SMALL, "trainer.max_epochs=4", run_dir=tmp_path)
    metrics_file = next((tmp_path / "csv").rglob("metrics.csv"))
    rows = [row for row in csv.DictReader(metrics_file.open()) if row.get("train/L_acc")]
    assert len(rows) == 4
    assert float(rows[-1]["train/L_acc"]) < 0.8 * float(rows[0]["train/L_acc"])
    result = metrics(tmp_path)
    assert {"val/L_simple", "val/L_acc", "val/L_vel", "test/L_acc", "test/loss"} <= set(result)
    checkpoint = torch.load(next((tmp_path / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)
    assert not any(key.startswith("text_encoder.") for key in checkpoint["state_dict"])


@pytest.mark.slow
def test_mdm_trains_with_ddp_on_two_cpu_processes(tmp_path):
    run("train.py", *MDM_SMALL, "trainer=ddp_cpu", "trainer.max_epochs=1", run_dir=tmp_path)
    assert "val/L_acc" in metrics(tmp_path)


def test_mdm_trains_in_bf16_mixed_precision(tmp_path):
    run("train.py", *MDM_SMALL, "trainer.max_epochs=1", "trainer.precision=bf16-mixed", "test=false", run_dir=tmp_path)
    assert all(math.isfinite(value) for value in metrics(tmp_path).values())


MHIA_SMALL = [
    "experiment=mhia_toy", "logger=csv", "data.train_set.num_clips=8",
    "data.val_set.num_clips=4", "data.test_set.num_clips=6", "data.batch_size=2", "trainer.max_epochs=1",
    "model.max_new_tokens=8",
]


def test_mhia_quickstart_trains_with_ddp_and_the_checkpoint_evaluates_to_the_same_answers(tmp_path):
    """The README's quickstart at toy size: the tiny base LLM built offline and loaded like a LLaMA folder;
    real DDP on 2 CPU processes with the frozen LLM; a trainable-only checkpoint that evaluate.py turns
    back into the same answers and scores."""
    llm = tmp_path / "tiny_llama"
    build = [sys.executable, str(ROOT / "docs" / "build_tiny_llm.py"), "--out", str(llm), "--clips", "12",
             "--vocab-size", "400", "--hidden", "32", "--layers", "1", "--intermediate", "64", "--pretrain-steps", "20"]
    subprocess.run(build, cwd=ROOT, check=True, capture_output=True, timeout=300)
    small = [*MHIA_SMALL, f"model.net.language_model.path_or_hub_id={llm}"]
    run("train.py", *small, "trainer=ddp_cpu", "callbacks.rich_progress_bar=null", run_dir=tmp_path / "train")
    trained = metrics(tmp_path / "train")
    assert {"val/loss", "val/activity_acc", "test/activity_acc", "test/safety_acc", "test/bleu", "test/rougeL"} <= set(
        trained)
    checkpoint = next((tmp_path / "train" / "checkpoints").glob("epoch_*.ckpt"))  # the best: what was tested
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert any("lora_B" in key for key in state) and not any("base_layer" in key for key in state)

    run("evaluate.py", *small, f"ckpt_path={checkpoint}", run_dir=tmp_path / "eval")
    evaluated = metrics(tmp_path / "eval")
    for key in ("test/activity_acc", "test/safety_acc", "test/bleu", "test/rougeL"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6), key

    def answers(run_dir: Path) -> dict:
        lines = (run_dir / "test_generations.jsonl").read_text().splitlines()
        return {row["id"]: row["answer"] for row in map(json.loads, lines)}

    assert answers(tmp_path / "eval") == answers(tmp_path / "train") and len(answers(tmp_path / "eval")) == 6


def test_mhia_trains_on_instruction_jsonl_files(tmp_path):
    """data=instructions_jsonl: the files the teacher (or the toy set) writes, through the real Hydra configs."""
    from datamodules.instructions.toy_set import ToyMultimodalDataset

    paths = {}
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        toy = ToyMultimodalDataset(num_clips=4, seed=seed, frame_size=(64, 64), num_frames=16)
        paths[split] = tmp_path / f"{split}.jsonl"
        toy.write_jsonl(paths[split], frames_dir=tmp_path / "frames")
    llm = tmp_path / "tiny_llama"
    build = [sys.executable, str(ROOT / "docs" / "build_tiny_llm.py"), "--out", str(llm), "--clips", "6",
             "--vocab-size", "300", "--hidden", "32", "--layers", "1", "--intermediate", "64", "--pretrain-steps", "0"]
    subprocess.run(build, cwd=ROOT, check=True, capture_output=True, timeout=300)
    run("train.py", *MHIA_SMALL[:2], "data=instructions_jsonl", *(f"data.{s}_set.path={p}" for s, p in paths.items()),
        "data.batch_size=2", "trainer.max_epochs=1", "model.max_new_tokens=4", "callbacks.rich_progress_bar=null",
        f"model.net.language_model.path_or_hub_id={llm}", run_dir=tmp_path / "run")
    lines = (tmp_path / "run" / "test_generations.jsonl").read_text().splitlines()
    assert len(lines) == 4 and math.isfinite(metrics(tmp_path / "run")["test/loss"])
