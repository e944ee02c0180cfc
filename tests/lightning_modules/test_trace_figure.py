"""The real vs virtual trace figure, and the callback that draws it for a datamodule's paired trials."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_modules.callbacks as callbacks
from datamodules.sim2real_datamodule import PairedTrial
from lightning_modules.callbacks import RealVsVirtualTraces
from lightning_modules.trace_figure import pearson_r, trace_figure
from tests.datamodules.test_sim2real_datamodule import NamedTrials, noise_free, trial_recording, unprepared

PNG = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- figure


def hand_made() -> tuple[np.ndarray, np.ndarray]:
    """Four samples whose per-panel r is known by hand (deviations from the mean, dot over norms):
    acc x   (1, 2, 3, 4) vs (1, 3, 2, 4): (−1.5, −.5, .5, 1.5)·(−1.5, .5, −.5, 1.5) / 5 = 4 / 5 = 0.8
    acc y, z, gyro z: zero in both, so constant: r undefined; acc norm = |acc x|: 0.8 again
    gyro x  (1, 2, 3, 4) vs its negative: −1
    gyro y  (1, −1, 1, −1) vs (1, 1, −1, −1): (1 − 1 − 1 + 1) / 4 = 0
    gyro norm: √(x² + y²) = (√2, √5, √10, √17) on both sides: 1
    """
    real, virtual = np.zeros((4, 6)), np.zeros((4, 6))
    real[:, 0], virtual[:, 0] = [1, 2, 3, 4], [1, 3, 2, 4]
    real[:, 3], virtual[:, 3] = [1, 2, 3, 4], [-1, -2, -3, -4]
    real[:, 4], virtual[:, 4] = [1, -1, 1, -1], [1, 1, -1, -1]
    return real, virtual


def test_trace_figure_has_four_by_two_panels_with_the_r_computed_by_hand():
    real, virtual = hand_made()
    figure = trace_figure(real, virtual, 2.0, "hand-made")
    axes = figure.axes
    assert len(axes) == 8 and figure.get_suptitle() == "hand-made"
    undefined = "r undefined (constant)"
    # Row-major: acc x, gyro x, acc y, gyro y, acc z, gyro z, acc |·|, gyro |·|.
    assert [axis.get_title() for axis in axes] == [
        "acc x   r = 0.80", "gyro x   r = -1.00",
        f"acc y   {undefined}", "gyro y   r = 0.00",
        f"acc z   {undefined}", f"gyro z   {undefined}",
        "acc |·|   r = 0.80", "gyro |·|   r = 1.00",
    ]
    np.testing.assert_allclose(pearson_r(real[:, [0, 3, 4]], virtual[:, [0, 3, 4]]), [0.8, -1.0, 0.0], atol=1e-12)
    # Each panel: real (black) then virtual, against time at 2 Hz; the norm rows hold the triads' norms.
    real_line, virtual_line = axes[7].get_lines()
    np.testing.assert_allclose(real_line.get_xdata(), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(real_line.get_ydata(), np.sqrt([2, 5, 10, 17]), rtol=1e-12)
    np.testing.assert_allclose(virtual_line.get_ydata(), np.sqrt([2, 5, 10, 17]), rtol=1e-12)
    assert [axis.get_ylabel() for axis in axes[:2]] == ["m/s²", "rad/s"]


def test_trace_figure_takes_tensors_and_saves_without_pyplot(tmp_path):
    real, virtual = hand_made()
    figure = trace_figure(torch.from_numpy(real).float(), torch.from_numpy(virtual).float(), 2.0, "tensors")
    assert figure.axes[0].get_title() == "acc x   r = 0.80"
    figure.savefig(tmp_path / "trace.png")
    assert (tmp_path / "trace.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("real", "virtual", "fs", "message"),
    [
        (np.zeros((10, 3)), np.zeros((10, 3)), 25.0, r"real must have shape \[T ≥ 2, 6\] \(acc, gyro\), got \(10, 3\)"),
        (np.zeros((1, 6)), np.zeros((1, 6)), 25.0, r"real must have shape \[T ≥ 2, 6\]"),
        (np.zeros((10, 6)), np.zeros((10, 6, 1)), 25.0, r"virtual must have shape \[T ≥ 2, 6\]"),
        (np.full((10, 6), np.inf), np.zeros((10, 6)), 25.0, "real holds non-finite values"),
        (np.zeros((10, 6)), np.full((10, 6), np.nan), 25.0, "virtual holds non-finite values"),
        (np.zeros((10, 6)), np.zeros((9, 6)), 25.0, r"real and virtual must have the same shape, got \(10, 6\) and \(9, 6\)"),
        (np.zeros((10, 6)), np.zeros((10, 6)), 0.0, "fs must be > 0 Hz, got 0.0"),
        (np.zeros((10, 6)), np.zeros((10, 6)), float("nan"), "fs must be > 0 Hz, got nan"),
    ],
)
def test_trace_figure_names_bad_input(real, virtual, fs, message):
    with pytest.raises(ValueError, match=message):
        trace_figure(real, virtual, fs, "bad")


def test_pearson_r_names_constant_channels():
    real, virtual = hand_made()
    with pytest.raises(ValueError, match=r"channels \[1, 2, 5\] are constant: Pearson r is undefined"):
        pearson_r(real, virtual)


# ---------------------------------------------------------------------------- callback


class TinyModel(L.LightningModule):
    """One weight, a loss from any batch with "imu": enough for the trainer to start fitting."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def training_step(self, batch, batch_idx):
        imu = batch["imu"] if isinstance(batch, dict) else batch[0]
        return (self.weight * imu.float().mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class PlainDataModule(L.LightningDataModule):
    """A datamodule that pairs nothing (no `paired_trials`), or whose `paired_trials` returns `pairs`."""

    def __init__(self, pairs: list[PairedTrial] | None = None):
        super().__init__()
        if pairs is not None:
            self.paired_trials = lambda count: pairs[:count]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(4, 10, 6)), batch_size=2)


def sine_pairs(count: int) -> list[PairedTrial]:
    time = torch.arange(50, dtype=torch.float32)[:, None] / 25.0
    real = torch.sin(2 * torch.pi * time * torch.arange(1, 7)) + 9.81 * (torch.arange(6) == 2)
    return [PairedTrial(f"synthetic trial s{k}_t1", real, real + 0.1 * k, 25.0, 4.0) for k in range(count)]


def fit(tmp_path: Path, datamodule, callback: RealVsVirtualTraces, logger) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=1, limit_val_batches=0,
        num_sanity_val_steps=0, logger=logger, callbacks=[callback], default_root_dir=tmp_path, log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(TinyModel(), datamodule=datamodule)
    return trainer


def test_with_real_wandb_offline_the_traces_are_logged_as_images(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    from lightning.pytorch.loggers import WandbLogger

    wandb_logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="trace-test")
    callback = RealVsVirtualTraces(num_trials=2, dirpath=tmp_path / "pngs")
    try:
        fit(tmp_path, PlainDataModule(sine_pairs(3)), callback, wandb_logger)
        run_dir = Path(wandb_logger.experiment.dir).parent
    finally:
        wandb_logger.experiment.finish()
    assert [path.name for path in callback.written] == ["trace_0_synthetic_trial_s0_t1.png",
                                                        "trace_1_synthetic_trial_s1_t1.png"]
    media = sorted((run_dir / "files" / "media" / "images").rglob("*.png"))
    # Both figures went into the offline run, byte for byte the PNGs written beside it.
    assert len(media) == 2 and all(path.read_bytes()[:8] == PNG for path in media)
    assert sorted(path.read_bytes() for path in media) == sorted(path.read_bytes() for path in callback.written)
    assert all(path.name.startswith("real_vs_virtual_0_") for path in media)  # key data/real_vs_virtual, step 0


def test_with_a_csv_logger_the_sim2real_pairs_become_pngs_in_the_output_dir(tmp_path, monkeypatch):
    titles = []

    def spy(real, virtual, fs, title):
        titles.append(title)
        return trace_figure(real, virtual, fs, title)

    monkeypatch.setattr(callbacks, "trace_figure", spy)
    trials = NamedTrials(seed=3, clips=3)
    recordings = [trial_recording(clip, noise_free(clip), subject=str(k)) for k, clip in enumerate(trials.clips)]
    datamodule = unprepared(trials, recordings, imu_lowpass_hz=4.0, batch_size=3, normalization_clips=3)
    callback = RealVsVirtualTraces(num_trials=2)
    fit(tmp_path, datamodule, callback, CSVLogger(tmp_path, name="csv"))
    folder = tmp_path / "real_vs_virtual"  # default: under the trainer's default_root_dir
    assert sorted(folder.iterdir()) == callback.written
    assert [path.name for path in callback.written] == [f"trace_{i}_synthetic_{trials[k].activity}_s{k}_t1.png"
                                                        for i, k in enumerate((0, 2))]
    assert all(path.read_bytes()[:8] == PNG for path in callback.written)
    assert titles == [f"synthetic {trials[k].activity} s{k}_t1: real vs noise-free virtual IMU, 50 Hz, "
                      "low-passed at 4 Hz" for k in (0, 2)]


@pytest.mark.parametrize("pairs", [None, []], ids=["no paired_trials", "no pairs"])
def test_a_datamodule_without_pairs_gets_one_warning_and_no_figure(tmp_path, caplog, pairs):
    callback = RealVsVirtualTraces()
    with caplog.at_level(logging.WARNING, logger=callbacks.__name__):
        fit(tmp_path, PlainDataModule(pairs), callback, CSVLogger(tmp_path, name="csv"))
    warnings = [r.message for r in caplog.records if r.name == callbacks.__name__]
    assert warnings == ["RealVsVirtualTraces: the datamodule PlainDataModule pairs no real recording with its "
                        "motion; no trace figures"]
    assert callback.written == [] and not (tmp_path / "real_vs_virtual").exists()


def test_only_global_rank_zero_draws(tmp_path):
    def refuse(count):
        raise AssertionError("a rank other than 0 asked for pairs")

    rank_one = SimpleNamespace(is_global_zero=False, datamodule=SimpleNamespace(paired_trials=refuse),
                               default_root_dir=tmp_path, loggers=[], global_step=0)
    callback = RealVsVirtualTraces()
    callback.on_fit_start(rank_one, None)
    assert callback.written == [] and list(tmp_path.iterdir()) == []


class RecordRank(L.LightningDataModule):
    """Leaves `asked_{rank}` in `folder` when asked for pairs (ranks are forked processes)."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def paired_trials(self, count):
        (self.folder / f"asked_{self.trainer.global_rank}").touch()
        return sine_pairs(count)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(8, 10, 6)), batch_size=2)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_under_ddp_rank_zero_alone_draws(tmp_path):
    callback = RealVsVirtualTraces(num_trials=1, dirpath=tmp_path / "pngs")
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_fork", max_epochs=1, limit_train_batches=2,
        limit_val_batches=0, num_sanity_val_steps=0, logger=False, callbacks=[callback], default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(TinyModel(), datamodule=RecordRank(tmp_path))
    assert sorted(path.name for path in tmp_path.glob("asked_*")) == ["asked_0"]
    assert [path.name for path in (tmp_path / "pngs").iterdir()] == ["trace_0_synthetic_trial_s0_t1.png"]


def test_bad_num_trials_is_named():
    with pytest.raises(ValueError, match="num_trials must be ≥ 1, got 0"):
        RealVsVirtualTraces(num_trials=0)


def test_the_utd_mhad_experiment_enables_the_callback(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        experiment = compose(config_name="train", overrides=["experiment=sim2real_utd_mhad"])
        plain = compose(config_name="train")
    assert set(experiment.callbacks) == set(plain.callbacks) | {"real_vs_virtual"}
    entry = experiment.callbacks.real_vs_virtual
    assert entry.num_trials == 4 and entry._get_node("dirpath")._value() == "${paths.output_dir}/real_vs_virtual"
    callback = instantiate(entry, dirpath=str(tmp_path))
    assert isinstance(callback, RealVsVirtualTraces) and callback.num_trials == 4
