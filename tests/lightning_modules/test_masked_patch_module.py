import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from lightning_modules.masked_patch_module import MaskedPatchModule, masked_mse, num_masked, random_patch_mask
from networks.patchformer import IMUPatchformer, IMUPatchformerClassifier

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(d_model=16, num_layers=1, num_heads=2, ff=32, channel_dim=8)


def make_module(**kwargs) -> MaskedPatchModule:
    encoder = kwargs.pop("net", None) or IMUPatchformer(**{**SMALL, "stride": 32, **kwargs.pop("encoder", {})})
    return MaskedPatchModule(net=encoder, optimizer=functools.partial(torch.optim.AdamW, lr=3e-3), **kwargs)


# ------------------------------------------------------------------ masking


@pytest.mark.parametrize(
    "patches, ratio, masked",
    # round(ratio · N), halves up, within [1, N - 1]: 0.8 -> 1, 2.0, 2.4 -> 2, 4.0, 10.0, 4.5 -> 5 -> 4, 0.1 -> 1
    [(2, 0.4, 1), (5, 0.4, 2), (6, 0.4, 2), (10, 0.4, 4), (25, 0.4, 10), (5, 0.9, 4), (10, 0.01, 1), (4, 0.5, 2)],
)
def test_masked_count_is_exact_for_every_sample(patches, ratio, masked):
    assert num_masked(patches, ratio) == masked
    mask = random_patch_mask(64, patches, ratio, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (64, patches) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [masked] * 64
    if 1 < masked < patches - 1:
        assert len({tuple(row) for row in mask.tolist()}) > 1  # not one pattern for the whole batch


def test_every_patch_is_masked_equally_often():
    mask = random_patch_mask(4000, 5, 0.4, generator=torch.Generator().manual_seed(0))
    frequency = mask.float().mean(dim=0)
    # 2 of 5 per row: p = 0.4, standard error sqrt(0.4 · 0.6 / 4000) = 0.0077
    torch.testing.assert_close(frequency, torch.full((5,), 0.4), rtol=0, atol=0.03)


def test_masks_are_reproducible_from_the_seed():
    first = random_patch_mask(16, 10, 0.4, generator=torch.Generator().manual_seed(7))
    again = random_patch_mask(16, 10, 0.4, generator=torch.Generator().manual_seed(7))
    other = random_patch_mask(16, 10, 0.4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    torch.manual_seed(3)
    a = random_patch_mask(16, 10, 0.4)
    torch.manual_seed(3)
    assert torch.equal(random_patch_mask(16, 10, 0.4), a)  # default: the global torch RNG


# --------------------------------------------------------------------- loss


def test_masked_mse_equals_hand_computation():
    prediction = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], [[0.5, 0.5], [2.0, -2.0], [1.0, 1.0]]])
    target = torch.zeros(2, 3, 2)
    mask = torch.tensor([[True, False, True], [False, True, False]])
    # masked patches: (1² + 2²)/2 = 2.5, (3² + 1²)/2 = 5, (2² + 2²)/2 = 4 -> mean 11.5 / 3
    assert masked_mse(prediction, target, mask).item() == pytest.approx(11.5 / 3, abs=1e-6)


def test_loss_ignores_the_reconstruction_of_unmasked_patches():
    torch.manual_seed(0)
    module = make_module()
    imu = torch.randn(8, 128, 6)  # 4 patches, 2 masked per sample
    loss, prediction, target, mask = module.model_step(imu, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(masked_mse(prediction, target, mask).item(), abs=0)
    changed = torch.where(mask[..., None], prediction, prediction + 100 * torch.randn_like(prediction))
    assert masked_mse(changed, target, mask).item() == loss.item()
    changed = torch.where(mask[..., None], prediction + 1.0, prediction)
    assert masked_mse(changed, target, mask).item() > loss.item() + 0.5


def test_masked_patches_are_hidden_from_the_encoder():
    """Without RevIN and with non-overlapping patches, a masked patch's samples reach only its target."""
    torch.manual_seed(0)
    module = make_module(encoder=dict(revin=False)).eval()
    imu = torch.randn(4, 128, 6)

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(0)

    mask = module.draw_mask(imu, generator())
    changed = imu.clone()
    for b in range(4):
        n = int(mask[b].nonzero()[0])
        changed[b, 32 * n : 32 * n + 32] += 5.0 * torch.randn(32, 6)
    with torch.no_grad():
        _, prediction, target, _ = module.model_step(imu, generator())
        _, prediction2, target2, _ = module.model_step(changed, generator())
    torch.testing.assert_close(prediction2, prediction, rtol=0, atol=1e-6)
    assert (target2 - target).abs().max() > 1.0


def test_the_training_target_is_the_revin_normalised_patch():
    torch.manual_seed(0)
    module = make_module()
    imu = 4 * torch.randn(3, 96, 6) + 2
    _, _, target, _ = module.model_step(imu, torch.Generator().manual_seed(0))
    mean, std = imu.mean(dim=1, keepdim=True), imu.std(dim=1, unbiased=False, keepdim=True)
    torch.testing.assert_close(target, ((imu - mean) / std).reshape(3, 3, 32 * 6), rtol=0, atol=1e-4)


def test_reconstruction_follows_scale_and_offset_of_the_input():
    """RevIN: the normalised prediction does not see a per-channel a·x + b, and denormalize puts it back."""
    torch.manual_seed(0)
    module = make_module().eval()
    imu = torch.randn(3, 96, 6)
    scale, offset = torch.linspace(0.5, 3.0, 6), torch.linspace(-4.0, 4.0, 6)
    patches, mask = module.reconstruct(imu, torch.Generator().manual_seed(1))
    patches2, mask2 = module.reconstruct(imu * scale + offset, torch.Generator().manual_seed(1))
    assert patches.shape == (3, 3, 32, 6) and torch.equal(mask, mask2)
    torch.testing.assert_close(patches2, patches * scale + offset, rtol=0, atol=1e-4)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    module = make_module()
    loss, *_ = module.model_step(torch.randn(4, 128, 6))  # 4 patches
    loss.backward()
    for name, q in module.named_parameters():
        grad = q.grad[:4] if name == "encoder.position" else q.grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_same_seed_same_loss():
    imu = torch.randn(4, 100, 6)
    losses = []
    for _ in range(2):
        torch.manual_seed(5)
        losses.append(make_module().model_step(imu)[0])
    assert losses[0].item() == losses[1].item()


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5, True])
def test_mask_ratio_outside_the_open_unit_interval(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        make_module(mask_ratio=ratio)


def test_bad_net_and_inputs_are_named():
    with pytest.raises(ValueError, match="net"):
        MaskedPatchModule(net=torch.nn.Linear(2, 2), optimizer=functools.partial(torch.optim.AdamW))
    module = make_module()
    with pytest.raises(ValueError, match=r"\bx\b.*channels"):
        module.model_step(torch.randn(2, 96, 5))
    with pytest.raises(ValueError, match=r"\bx\b.*patch_len"):
        module.model_step(torch.randn(2, 20, 6))
    with pytest.raises(ValueError, match="num_patches"):
        module.model_step(torch.randn(2, 32, 6))  # one patch: nothing could stay visible


def test_a_classifier_as_net_gives_its_encoder_and_drops_its_head():
    classifier = IMUPatchformerClassifier(in_channels=6, num_classes=11, **SMALL)
    module = make_module(net=classifier, class_names=[f"c{i}" for i in range(11)])
    assert module.encoder is classifier.encoder
    keys = set(module.state_dict())
    assert {key.split(".")[0] for key in keys} == {"encoder", "mask_token", "head"}
    assert module.head.weight.shape == (32 * 6, 16)  # P·C values per patch from D
    assert "class_names" not in module.hparams


# ------------------------------------------------------ Lightning, checkpoint


class Windows(Dataset):
    """HAR-contract batches of noisy multi-sine windows (labels present, to be ignored)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(96)[None, :, None] / 96
        frequency = torch.randint(1, 6, (n, 1, 6), generator=g)
        phase = 2 * math.pi * torch.rand(n, 1, 6, generator=g)
        self.imu = torch.sin(2 * math.pi * frequency * t + phase) + 0.05 * torch.randn(n, 96, 6, generator=g)

    def __len__(self) -> int:
        return len(self.imu)

    def __getitem__(self, i: int) -> dict:
        return {"imu": self.imu[i], "label": torch.tensor(0)}


def test_fit_lowers_the_masked_loss_and_the_checkpoint_starts_a_classifier(tmp_path):
    L.seed_everything(0)
    module = make_module()
    train = DataLoader(Windows(128, seed=1), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(Windows(64, seed=2), batch_size=32)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=6, logger=CSVLogger(tmp_path, name="csv"), default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        inference_mode=False,  # no_grad instead: validate() before fit() must leave the metric states writable
    )
    (before,) = trainer.validate(module, val, verbose=False)
    trainer.fit(module, train, val)
    after = trainer.callback_metrics["val/loss"].item()
    # measured: 1.371 -> 0.739 (val/loss, 6 epochs)
    assert after < 0.7 * before["val/loss"], (before, after)
    assert {"train/loss", "val/loss"} <= set(trainer.callback_metrics)

    path = tmp_path / "pretrained.ckpt"
    trainer.save_checkpoint(path)
    classifier = IMUPatchformerClassifier(in_channels=6, num_classes=3, pretrained=str(path), **SMALL, stride=32)
    for key, value in module.encoder.state_dict().items():
        torch.testing.assert_close(classifier.encoder.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"stride=16 \(pretrained: 32\)"):
        IMUPatchformerClassifier(in_channels=6, num_classes=3, pretrained=str(path), **SMALL)


# ------------------------------------------------------------ configs, train.py


def test_configs_compose_and_build():
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        har = compose(config_name="train", overrides=["experiment=patchformer_procedural"])
        pretrain = compose(config_name="train", overrides=["experiment=patchformer_pretrain"])
        deepconvlstm = compose(config_name="train", overrides=["experiment=deepconvlstm_procedural"])
    assert har.data == deepconvlstm.data
    assert har.model.net._target_ == "networks.patchformer.IMUPatchformerClassifier"
    assert pretrain.callbacks.model_checkpoint.monitor == "val/loss" and pretrain.callbacks.model_checkpoint.mode == "min"
    # The two nets differ only in stride (pretraining must not overlap patches) and the pretrained path.
    har_net, pretrain_net = OmegaConf.to_container(har.model.net), OmegaConf.to_container(pretrain.model.net)
    assert {key for key in har_net if har_net[key] != pretrain_net[key]} == {"stride"}
    datamodule_kwargs = {"net": {"in_channels": 6, "num_classes": 11}, "class_names": [f"c{i}" for i in range(11)]}
    model = instantiate(pretrain.model, **datamodule_kwargs, _convert_="all")
    assert isinstance(model, MaskedPatchModule) and model.encoder.stride == model.encoder.patch_len == 32
    model = instantiate(har.model, **datamodule_kwargs, _convert_="all")
    assert isinstance(model.net, IMUPatchformerClassifier)


SMALL_RUN = [
    "logger=csv", "callbacks.rich_progress_bar=null", "data.train_motion.num_clips=44", "data.val_motion.num_clips=22",
    "data.test_motion.num_clips=22", "data.batch_size=8", "data.num_workers=0", "data.normalization_clips=22",
    "trainer.max_epochs=1", "model.net.d_model=32", "model.net.num_layers=1", "model.net.ff=64",
]


def run(*overrides: str, run_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), *SMALL_RUN, *overrides, f"hydra.run.dir={run_dir}"]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_train_py_pretrains_then_fine_tunes(tmp_path):
    run("experiment=patchformer_pretrain", run_dir=tmp_path / "pretrain")
    pretrained = json.loads((tmp_path / "pretrain" / "metrics.json").read_text())
    assert set(pretrained) == {"val/loss", "test/loss"} and all(math.isfinite(v) for v in pretrained.values())
    best = next((tmp_path / "pretrain" / "checkpoints").glob("epoch_*.ckpt"))

    result = run("experiment=patchformer_procedural", f"model.net.pretrained={best}", "model.net.stride=32",
                 run_dir=tmp_path / "finetune")
    assert f"patchformer encoder weights from {best}" in (tmp_path / "finetune" / "train.log").read_text()
    assert "test/balanced_acc" in result.stdout
    metrics = json.loads((tmp_path / "finetune" / "metrics.json").read_text())
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("val/balanced_acc", "test/balanced_acc"))


@pytest.mark.slow
def test_train_py_trains_the_classifier_from_scratch(tmp_path):
    run("experiment=patchformer_procedural", run_dir=tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("val/balanced_acc", "test/balanced_acc"))
