import functools
import math
import os

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

import lightning_modules.har_module as har_module
from lightning_modules.confusion_figure import confusion_matrix_figure, row_normalize
from lightning_modules.har_module import HARModule, weights_from_counts
from networks.deepconvlstm import DeepConvLSTM

CLASSES = ["walk", "sit", "fall"]
WINDOW, CHANNELS = 32, 3


# ----------------------------------------------------------------- fixtures


class DictDataset(Dataset):
    """Windows + labels served in the DataModule batch contract."""

    def __init__(self, imu: torch.Tensor, label: torch.Tensor) -> None:
        self.imu, self.label = imu, label

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict:
        return {
            "imu": self.imu[i],
            "label": self.label[i],
            "safety": (self.label[i] == 2).long(),
            "clip_index": torch.tensor(i),
        }


def toy_windows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k is a noisy sinusoid of 2 ** (k + 1) cycles per window (random phase per channel): separable."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % len(CLASSES)
    t = torch.arange(WINDOW) / WINDOW  # [W]
    freq = 2.0 ** (label + 1).float()[:, None, None]  # [N, 1, 1]
    phase = 2 * math.pi * torch.rand(n, 1, CHANNELS, generator=g)
    imu = torch.sin(2 * math.pi * freq * t[None, :, None] + phase)
    imu = imu + 0.2 * torch.randn(n, WINDOW, CHANNELS, generator=g)
    return imu.float(), label


class ToyDataModule(L.LightningDataModule):
    def __init__(self, n_train: int = 96, n_val: int = 48, batch_size: int = 16, class_counts=None) -> None:
        super().__init__()
        self.train_set = DictDataset(*toy_windows(n_train, seed=1))
        self.val_set = DictDataset(*toy_windows(n_val, seed=2))
        self.batch_size = batch_size
        counts = torch.bincount(self.train_set.label, minlength=len(CLASSES))
        self.class_counts = counts if class_counts is None else torch.as_tensor(class_counts)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=g)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def tiny_net() -> DeepConvLSTM:
    return DeepConvLSTM(
        in_channels=CHANNELS,
        num_classes=len(CLASSES),
        conv_filters=16,
        num_conv_layers=2,
        lstm_hidden=32,
        lstm_layers=1,
        dropout=0.1,
    )


def make_module(net: nn.Module | None = None, **kwargs) -> HARModule:
    cfg = dict(
        net=net if net is not None else tiny_net(),
        optimizer=functools.partial(torch.optim.Adam, lr=5e-3),
        class_names=CLASSES,
    )
    cfg.update(kwargs)
    return HARModule(**cfg)


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    cfg = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=CSVLogger(tmp_path, name="csv"),
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
    )
    cfg.update(kwargs)
    return L.Trainer(**cfg)


class LogitsFromInput(nn.Module):
    """A 'network' whose logits are the first time step of the input: lets a test dictate predictions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, :]


# --------------------------------------------------------------------- loss


def test_loss_equals_hand_computed_weighted_cross_entropy():
    weights = [1.0, 2.0, 0.5]
    module = make_module(class_weights=weights)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    labels = torch.tensor([0, 2, 1])

    def nll(row: list[float], y: int) -> float:
        return -(row[y] - math.log(sum(math.exp(v) for v in row)))

    numerator = sum(weights[y] * nll(logits[i].tolist(), y) for i, y in enumerate(labels.tolist()))
    denominator = sum(weights[y] for y in labels.tolist())
    expected = numerator / denominator

    assert module.compute_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)
    loss, _, _ = make_module(net=LogitsFromInput(), class_weights=weights).model_step(
        {"imu": logits[:, None, :], "label": labels}
    )
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_loss_is_zero_not_nan_when_all_targets_have_zero_weight():
    module = make_module(class_weights=[0.0, 1.0, 1.0])
    loss = module.compute_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    assert loss.item() == 0.0


def test_class_weights_derived_from_datamodule_counts(tmp_path):
    module = make_module()
    assert "class_weights" in module.state_dict()  # travels with the checkpoint
    torch.testing.assert_close(module.class_weights, torch.ones(3))

    make_trainer(tmp_path).validate(module, datamodule=ToyDataModule(class_counts=[10, 30, 60]), verbose=False)
    expected = torch.tensor([100 / (3 * 10), 100 / (3 * 30), 100 / (3 * 60)])
    torch.testing.assert_close(module.class_weights, expected)


def test_explicit_class_weights_are_not_overridden(tmp_path):
    module = make_module(class_weights=[1.0, 2.0, 3.0])
    make_trainer(tmp_path).validate(module, datamodule=ToyDataModule(class_counts=[10, 30, 60]), verbose=False)
    torch.testing.assert_close(module.class_weights, torch.tensor([1.0, 2.0, 3.0]))


def test_zero_count_class_gets_zero_weight_and_a_warning(caplog):
    torch.testing.assert_close(weights_from_counts(torch.tensor([0, 5, 15])), torch.tensor([0.0, 20 / 15, 20 / 45]))

    class FakeTrainer:
        datamodule = type("DM", (), {"class_counts": torch.tensor([0, 5, 15])})()

    module = make_module()
    module._trainer = FakeTrainer()  # setup() only reads trainer.datamodule
    with caplog.at_level("WARNING", logger=har_module.__name__):
        module.setup("fit")
    assert "walk" in caplog.text
    assert module.class_weights[0].item() == 0.0


# ------------------------------------------------------------------ metrics


def test_logged_metrics_match_hand_computation(tmp_path):
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 0, 1])
    imu = 5.0 * nn.functional.one_hot(preds, 3).float()[:, None, :].repeat(1, 4, 1)  # [12, 4, 3]
    # batch_size 5 splits the 12 samples unevenly: the epoch value must not be a mean of batch values.
    loader = DataLoader(DictDataset(imu, labels), batch_size=5)
    module = make_module(net=LogitsFromInput())

    (result,) = make_trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)

    recall = [3 / 4, 1 / 2, 4 / 6]  # per true class: hits / class size
    # F1 = 2 TP / (2 TP + FP + FN) per class
    f1 = [2 * 3 / (2 * 3 + 1 + 1), 2 * 1 / (2 * 1 + 2 + 1), 2 * 4 / (2 * 4 + 1 + 2)]
    assert result["val/balanced_acc"] == pytest.approx(sum(recall) / 3, abs=1e-6)
    assert result["val/macro_f1"] == pytest.approx(sum(f1) / 3, abs=1e-6)
    assert result["val/acc"] == pytest.approx(8 / 12, abs=1e-6)
    assert "val/loss" in result


def test_predict_step_returns_probabilities():
    module = make_module()
    probs = module.predict_step({"imu": torch.randn(5, WINDOW, CHANNELS)}, 0)
    assert probs.shape == (5, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))
    assert bool((probs >= 0).all())


# ----------------------------------------------------------------- learning


def test_learns_separable_toy_problem_and_writes_confusion_png(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    from lightning.pytorch.loggers import WandbLogger

    matrices = []

    def spy(matrix, class_names, normalize=True):
        matrices.append(matrix.clone())
        return confusion_matrix_figure(matrix, class_names, normalize)

    monkeypatch.setattr(har_module, "confusion_matrix_figure", spy)

    L.seed_everything(0, workers=True)
    csv = CSVLogger(tmp_path, name="csv")
    wandb_logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="har-test")
    module = make_module(
        scheduler=functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=5),
    )
    dm = ToyDataModule(n_train=192)
    # (8 epochs reach 1.0 for every seed tried; clipping keeps the tiny LSTM from oscillating)
    trainer = make_trainer(tmp_path, max_epochs=8, logger=[csv, wandb_logger], gradient_clip_val=1.0)
    try:
        trainer.fit(module, datamodule=dm)
        val_balanced_acc = trainer.callback_metrics["val/balanced_acc"].item()
        (test_result,) = trainer.test(module, datamodule=dm, verbose=False)
    finally:
        wandb_logger.experiment.finish()

    assert val_balanced_acc > 0.9
    assert test_result["test/balanced_acc"] > 0.9

    # one val matrix per epoch (sanity-check batches excluded) + one test matrix
    assert len(matrices) == 8 + 1
    assert all(int(m.sum()) == len(dm.val_set) for m in matrices)
    for epoch in range(8):
        assert os.path.isfile(os.path.join(csv.log_dir, f"confusion_matrix_val_epoch{epoch}.png"))
    assert os.path.isfile(os.path.join(csv.log_dir, f"confusion_matrix_test_epoch{trainer.current_epoch}.png"))


# ------------------------------------------------------- non-finite policy


class PoisonBatch(L.Callback):
    """Puts a NaN into the inputs of one training batch; records parameters around that step."""

    def __init__(self, batch_idx: int) -> None:
        self.batch_idx = batch_idx
        self.before = self.after = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == self.batch_idx:
            batch["imu"][0, 0, 0] = float("nan")
            self.before = {k: v.clone() for k, v in pl_module.net.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == self.batch_idx:
            self.after = {k: v.clone() for k, v in pl_module.net.state_dict().items()}


class PoisonGradient(L.Callback):
    """Makes one gradient NaN after the backward of one training batch."""

    def __init__(self, batch_idx: int) -> None:
        self.batch_idx = batch_idx
        self.before = self.after = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == self.batch_idx:
            self.before = {k: v.clone() for k, v in pl_module.net.state_dict().items()}

    def on_after_backward(self, trainer, pl_module):
        if trainer.current_epoch == 0 and trainer.fit_loop.epoch_loop.batch_idx == self.batch_idx:
            next(pl_module.net.parameters()).grad.view(-1)[0] = float("nan")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == self.batch_idx:
            self.after = {k: v.clone() for k, v in pl_module.net.state_dict().items()}


def test_nan_loss_raises_with_step_and_batch_index(tmp_path):
    module = make_module(nonfinite_loss="raise")
    trainer = make_trainer(tmp_path, callbacks=[PoisonBatch(batch_idx=2)], num_sanity_val_steps=0)
    with pytest.raises(FloatingPointError, match=r"global step 2\b.*batch index 2\b"):
        trainer.fit(module, datamodule=ToyDataModule())


@pytest.mark.filterwarnings("ignore:`training_step` returned `None`")
def test_nan_loss_skip_leaves_parameters_unchanged_and_training_continues(tmp_path, caplog):
    # weight decay + momentum: any optimizer step on this batch would move the parameters
    module = make_module(
        nonfinite_loss="skip",
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=0.1),
    )
    poison = PoisonBatch(batch_idx=2)
    dm = ToyDataModule()
    trainer = make_trainer(tmp_path, max_epochs=2, callbacks=[poison], num_sanity_val_steps=0)
    with caplog.at_level("WARNING", logger=har_module.__name__):
        trainer.fit(module, datamodule=dm)

    assert poison.before is not None and poison.after is not None
    for key in poison.before:
        torch.testing.assert_close(poison.after[key], poison.before[key], rtol=0, atol=0)
    steps_per_epoch = len(dm.train_dataloader())
    assert trainer.current_epoch == 2  # ran to the end
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert module.skipped_batches == 1
    assert trainer.callback_metrics["train/skipped_batches"] == 1
    assert "batch index 2" in caplog.text and "global step 2" in caplog.text
    with open(os.path.join(trainer.logger.log_dir, "metrics.csv")) as f:
        assert "train/skipped_batches" in f.readline()
    assert trainer.global_step <= 2 * steps_per_epoch


def test_nan_gradient_raises(tmp_path):
    module = make_module(nonfinite_loss="raise")
    trainer = make_trainer(tmp_path, callbacks=[PoisonGradient(batch_idx=1)], num_sanity_val_steps=0)
    with pytest.raises(FloatingPointError, match=r"[Gg]radient.*global step 1\b.*batch index 1\b"):
        trainer.fit(module, datamodule=ToyDataModule())


def test_nan_gradient_skip_drops_the_update(tmp_path):
    module = make_module(
        nonfinite_loss="skip",
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=0.1),
    )
    poison = PoisonGradient(batch_idx=1)
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[poison], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=ToyDataModule())
    for key in poison.before:
        torch.testing.assert_close(poison.after[key], poison.before[key], rtol=0, atol=0)
    assert module.skipped_batches == 1
    assert trainer.callback_metrics["train/skipped_batches"] == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_unknown_nonfinite_policy_raises():
    with pytest.raises(ValueError, match="nonfinite_loss"):
        make_module(nonfinite_loss="ignore")


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(class_weights=[1.0, 2.0]), "class_weights"), (dict(class_names=["only"]), "class_names")],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_module(**kwargs)


# --------------------------------------------------- configuration / figure


def test_configure_optimizers_with_and_without_scheduler():
    assert isinstance(make_module().configure_optimizers(), torch.optim.Adam)
    module = make_module(scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3))
    config = module.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.Adam)
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert config["lr_scheduler"]["scheduler"].optimizer is config["optimizer"]
    assert config["lr_scheduler"]["monitor"] == "val/loss"
    assert config["lr_scheduler"]["interval"] == "epoch"


def test_hydra_instantiate_builds_the_module():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "_target_": "lightning_modules.har_module.HARModule",
            "net": {
                "_target_": "networks.deepconvlstm.DeepConvLSTM",
                "in_channels": CHANNELS,
                "num_classes": 3,
                "conv_filters": 4,
                "lstm_hidden": 8,
            },
            "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
            "scheduler": None,
            "class_names": CLASSES,
            "nonfinite_loss": "skip",
        }
    )
    module = instantiate(cfg)
    assert isinstance(module.net, DeepConvLSTM)
    assert isinstance(module.configure_optimizers(), torch.optim.Adam)
    assert module.hparams.nonfinite_loss == "skip"
    assert "net" not in module.hparams


def test_confusion_figure_is_row_normalised_and_annotated():
    matrix = torch.tensor([[3, 1, 0], [0, 0, 0], [2, 2, 6]])
    fig = confusion_matrix_figure(matrix, CLASSES, normalize=True)
    shown = torch.as_tensor(fig.axes[0].images[0].get_array().data)
    torch.testing.assert_close(shown.sum(dim=1), torch.tensor([1.0, 0.0, 1.0], dtype=shown.dtype))
    torch.testing.assert_close(shown[2], torch.tensor([0.2, 0.2, 0.6], dtype=shown.dtype))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.75\n(3)" in texts and "0.60\n(6)" in texts
    torch.testing.assert_close(row_normalize(matrix).sum(1), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))
    fig.savefig(os.devnull, format="png")  # renders headless

    raw = confusion_matrix_figure(matrix, CLASSES, normalize=False)
    torch.testing.assert_close(
        torch.as_tensor(raw.axes[0].images[0].get_array().data), matrix.to(torch.float64)
    )


def test_figure_goes_to_every_image_capable_logger(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    calls = []

    class FakeWandb(WandbLogger):
        def __init__(self):  # no wandb run needed
            pass

        def log_image(self, key, images, step=None, **kwargs):
            calls.append(("wandb", key, type(images[0]).__name__))

    class FakeTensorBoard(TensorBoardLogger):
        def __init__(self):  # no tensorboard install needed
            pass

        @property
        def experiment(self):
            class Writer:
                def add_figure(self, tag, figure, global_step=None, close=True):
                    calls.append(("tensorboard", tag, type(figure).__name__))

            return Writer()

    class FakeTrainer:
        loggers = [FakeWandb(), FakeTensorBoard(), CSVLogger(tmp_path)]
        global_step = 0

    module = make_module()
    module._trainer = FakeTrainer()
    module._log_figure("val/confusion_matrix", confusion_matrix_figure(torch.eye(3), CLASSES))
    assert calls == [("wandb", "val/confusion_matrix", "Figure"), ("tensorboard", "val/confusion_matrix", "Figure")]


def test_confusion_figure_rejects_bad_input():
    with pytest.raises(ValueError, match="matrix"):
        confusion_matrix_figure(torch.zeros(3, 2), CLASSES)
    with pytest.raises(ValueError, match="class_names"):
        confusion_matrix_figure(torch.zeros(2, 2), CLASSES)


# ---------------------------------------------------------------------- DDP


class PoisonOneRank(PoisonBatch):
    """NaN on rank 1 only: rank 0's loss is finite, yet both ranks must skip."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == 1:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        elif trainer.current_epoch == 0 and batch_idx == self.batch_idx:
            self.before = {k: v.clone() for k, v in pl_module.net.state_dict().items()}

    def on_train_end(self, trainer, pl_module):
        # Runs inside each worker; a failed assert there fails the test.
        assert pl_module.skipped_batches == 1, (trainer.global_rank, pl_module.skipped_batches)
        for key in self.before:
            assert torch.equal(self.after[key], self.before[key]), (trainer.global_rank, key)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_ddp_all_ranks_skip_when_one_rank_has_a_nan_loss(tmp_path):
    module = make_module(
        nonfinite_loss="skip",
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=0.1),
    )
    trainer = make_trainer(
        tmp_path,
        devices=2,
        strategy="ddp_fork",
        max_epochs=1,
        callbacks=[PoisonOneRank(batch_idx=1)],
        num_sanity_val_steps=0,
        logger=False,
    )
    trainer.fit(module, datamodule=ToyDataModule(n_train=64, n_val=16))
    assert trainer.callback_metrics["train/skipped_batches"] == 1
