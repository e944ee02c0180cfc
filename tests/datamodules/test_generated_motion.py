"""GeneratedMotionDataModule: HAR batches from a frozen MDM, trained here by train.py on procedural captions."""

from types import SimpleNamespace

import lightning as L
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from datamodules.generated_motion import GeneratedMotionDataModule, read_prompts
from lightning_modules.har_module import HARModule
from motion.procedural.dataset import ACTIVITIES
from networks.deepconvlstm import DeepConvLSTM
from tests.test_entry_points import MDM_SMALL, ROOT, metrics, run
from virtual_imu.pipeline import WristIMUPipeline

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models: thread pools only add overhead (×5 on a busy 2-core machine)
# Captions of the procedural set (motion.procedural.captions), which the MDM below is trained on.
PROMPTS = {
    "walking": ["a person walks slowly", "a person walks at a steady pace"],
    "jumping": ["a person jumps up and down in place repeatedly"],
    "fall_forward": ["a person trips while walking and falls forward onto the hands"],
}
SAFETY = {0: 0, 1: 0, 2: 1}  # label → safety: the fall is unsafe


@pytest.fixture(scope="module")
def mdm_run(tmp_path_factory):
    """A tiny MDM trained for one epoch by train.py: the run folder."""
    folder = tmp_path_factory.mktemp("mdm") / "run"
    run("train.py", *MDM_SMALL, "trainer.max_epochs=1", "test=false", run_dir=folder, env=ONE_THREAD)
    return folder


def make(mdm_run, **overrides) -> GeneratedMotionDataModule:
    kwargs = dict(
        mdm_run=mdm_run,
        prompts=PROMPTS,
        pipeline=WristIMUPipeline(placement="left_wrist", motion_fps=20.0, target_hz=50.0),
        clips_per_epoch=6,
        val_clips=3,
        seconds=4.0,
        ddim_steps=4,
        batch_size=3,
        seed=0,
        normalization_clips=3,
    )
    kwargs.update(overrides)
    return GeneratedMotionDataModule(**kwargs)


def at_epoch(datamodule: GeneratedMotionDataModule, epoch: int) -> GeneratedMotionDataModule:
    """Attach a stand-in for the trainer fields the datamodule reads (epoch, rank, device)."""
    datamodule.trainer = SimpleNamespace(
        current_epoch=epoch, world_size=1, global_rank=0, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    return datamodule


def windows_by_clip(datamodule: GeneratedMotionDataModule, epoch: int) -> dict[int, torch.Tensor]:
    """`{clip index: normalised windows [2, 100, 6]}` of one training epoch, through the shuffled loader."""
    datamodule.setup("fit")
    at_epoch(datamodule, epoch)
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    found = {}
    for batch in loader:
        out = datamodule.on_after_batch_transfer(batch, 0)
        for clip in out["clip_index"].unique().tolist():
            found[clip] = out["imu"][out["clip_index"] == clip]
    return found


def test_batches_follow_the_har_contract_and_the_prompts(mdm_run):
    datamodule = make(mdm_run)
    datamodule.setup("fit")
    assert datamodule.model_kwargs() == {"net": {"num_classes": 3, "in_channels": 6}, "class_names": list(PROMPTS)}
    train = datamodule.datasets["train"]
    for index in range(len(train)):
        item = train[index]
        activity = list(PROMPTS)[item["label"]]
        assert item["label"] == index % 3 and item["safety"] == SAFETY[index % 3]
        assert train.captions[item["prompt_index"]] in PROMPTS[activity]
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(0)
    batch = datamodule.on_after_batch_transfer(next(iter(loader)), 0)
    # 4 s at 20 fps = 80 frames → 198 samples at 50 Hz → 2 s windows every 1 s: 2 per clip, 3 clips per batch
    assert set(batch) == {"imu", "label", "safety", "clip_index"}
    assert batch["imu"].shape == (3 * 2, 100, 6) and torch.isfinite(batch["imu"]).all()
    assert torch.equal(batch["label"], batch["clip_index"] % 3)
    assert batch["safety"].tolist() == [SAFETY[label] for label in batch["label"].tolist()]
    assert datamodule.class_counts.tolist() == [2 * 2] * 3  # 6 clips over 3 classes, 2 windows each
    assert torch.isfinite(datamodule.channel_mean).all() and (datamodule.channel_std > 1e-3).all()


def test_same_seed_epoch_and_clip_give_identical_windows_whatever_the_batch(mdm_run):
    first = windows_by_clip(make(mdm_run, batch_size=3), epoch=2)
    again = windows_by_clip(make(mdm_run, batch_size=2), epoch=2)  # other batchmates, other order
    assert sorted(first) == sorted(again) == list(range(6))
    for clip in first:
        torch.testing.assert_close(again[clip], first[clip], atol=1e-5, rtol=0)
    other_seed = windows_by_clip(make(mdm_run, seed=1), epoch=2)
    assert not torch.allclose(other_seed[0], first[0], atol=1e-2)


def test_fresh_motion_every_epoch_but_fixed_validation(mdm_run):
    fresh = make(mdm_run)
    fresh.setup("fit")
    train = next(iter(torch.utils.data.DataLoader(fresh.datasets["train"], batch_size=3)))
    val = next(iter(torch.utils.data.DataLoader(fresh.datasets["val"], batch_size=3)))
    epoch0, epoch1 = fresh.generate(train, epoch=0), fresh.generate(train, epoch=1)
    assert epoch0.shape == (3, 80, 22, 3) and torch.isfinite(epoch0).all()
    assert torch.equal(fresh.generate(train, epoch=1), epoch1)
    # a new motion, not round-off: clips differ by centimetres at least (positions in m)
    assert (epoch1 - epoch0).abs().amax(dim=(1, 2, 3)).min() > 1e-2
    assert torch.equal(fresh.generate(val, epoch=0), fresh.generate(val, epoch=1))
    # the trainer's epoch reaches the windows
    assert not torch.allclose(at_epoch(fresh, 1)._windows(train), at_epoch(fresh, 0)._windows(train), atol=1e-2)

    fixed = make(mdm_run, fresh_every_epoch=False)
    fixed.setup("fit")
    train = next(iter(torch.utils.data.DataLoader(fixed.datasets["train"], batch_size=3)))  # items say "not fresh"
    assert torch.equal(fixed.generate(train, epoch=0), fixed.generate(train, epoch=1))
    torch.testing.assert_close(fixed.generate(train, epoch=3), epoch0, atol=0, rtol=0)  # epoch 0's motion


def test_the_mdm_stays_out_of_the_har_model_and_its_checkpoint(mdm_run, tmp_path):
    datamodule = make(mdm_run)
    mdm_state = {key: value.clone() for key, value in datamodule.mdm.state_dict().items()}
    model = HARModule(
        net=DeepConvLSTM(**datamodule.model_kwargs()["net"], conv_filters=4, lstm_hidden=8, num_conv_layers=1),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        class_names=datamodule.class_names,
    )
    keys = set(model.state_dict())
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=datamodule)
    assert set(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in model.net.parameters())
    assert all(torch.equal(value, mdm_state[key]) for key, value in datamodule.mdm.state_dict().items())
    assert not any(p.requires_grad for p in datamodule.mdm.parameters())
    trainer.save_checkpoint(tmp_path / "har.ckpt")
    checkpoint = torch.load(tmp_path / "har.ckpt", weights_only=True)  # plain hyperparameters
    assert set(checkpoint["state_dict"]) == keys
    assert set(checkpoint["GeneratedMotionDataModule"]) == {"channel_mean", "channel_std"}


def test_prompts_come_from_a_mapping_a_config_or_a_yaml_file(tmp_path):
    plain, described = tmp_path / "plain.yaml", tmp_path / "activities.yaml"
    plain.write_text(yaml.safe_dump(PROMPTS))
    # the layout of docs/prompts/activities.yaml: safety and prompts per activity
    safety = {"walking": "safe", "jumping": "safe", "fall_forward": "unsafe"}
    layout = {"activities": {name: {"safety": safety[name], "prompts": texts} for name, texts in PROMPTS.items()}}
    described.write_text(yaml.safe_dump(layout, sort_keys=False))
    expected = {activity: tuple(phrasings) for activity, phrasings in PROMPTS.items()}
    assert read_prompts(PROMPTS) == read_prompts(OmegaConf.create(PROMPTS)) == read_prompts(plain) == expected
    assert read_prompts(str(described)) == read_prompts(OmegaConf.create(layout)) == expected
    assert list(read_prompts(described)) == list(PROMPTS)  # class order is the file's
    layout["activities"]["fall_forward"]["safety"] = "safe"
    with pytest.raises(ValueError, match=r"prompts\['fall_forward'\] says safety 'safe'"):
        read_prompts(layout)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"prompts": {}}, "prompts must be"),
        ({"prompts": {"flying": ["a person flies"]}}, "flying"),
        ({"prompts": {"walking": "a person walks"}}, r"prompts\['walking'\]"),
        ({"prompts": {"walking": ["a person walks", " "]}}, r"prompts\['walking'\]"),
        ({"prompts": "absent.yaml"}, "prompts 'absent.yaml'"),
        ({"clips_per_epoch": 0}, "clips_per_epoch"),
        ({"val_clips": 0}, "val_clips"),
        ({"test_clips": 0}, "test_clips"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": 1.0}, "seconds"),  # 1 s gives 51 samples, fewer than a 2 s window
        ({"ddim_steps": 1}, "ddim_steps"),
        ({"ddim_steps": 51}, "ddim_steps"),  # the MDM has 50 diffusion steps
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"fresh_every_epoch": "yes"}, "fresh_every_epoch"),
        ({"pipeline": WristIMUPipeline(motion_fps=30.0)}, "pipeline.motion_fps"),
        ({"pipeline": WristIMUPipeline(up_axis="z")}, "pipeline.up_axis"),
        ({"mdm_ckpt": "absent.ckpt"}, "mdm_ckpt 'absent.ckpt'"),
    ],
)
def test_bad_arguments_are_named(mdm_run, overrides, match):
    with pytest.raises(ValueError, match=match):
        make(mdm_run, **overrides)


def test_a_folder_that_is_not_an_mdm_run_is_named(tmp_path):
    with pytest.raises(ValueError, match="mdm_run .* is not a folder"):
        make(tmp_path / "absent")
    with pytest.raises(ValueError, match="mdm_run .* has no .hydra/config.yaml"):
        make(tmp_path)
    (tmp_path / ".hydra").mkdir()
    har_config = {"model": {"_target_": "lightning_modules.har_module.HARModule"}}
    (tmp_path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(har_config))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="did not train an MDMModule"):
        make(tmp_path)


def test_data_config_needs_an_mdm_run_and_prompts_the_procedural_classes():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=mdm_generated_wrist"])
    assert OmegaConf.is_missing(cfg.data, "mdm_run")
    # the classes of data=procedural_wrist, phrased as the procedural captions an experiment=mdm_lacc MDM saw
    assert tuple(read_prompts(cfg.data.prompts)) == ACTIVITIES
    assert cfg.data.pipeline.motion_fps == 20.0 and cfg.data.pipeline.sensor.name == "bmi270"


def test_train_py_trains_a_classifier_on_generated_motion(mdm_run, tmp_path):
    run(
        "train.py", "data=mdm_generated_wrist", f"data.mdm_run={mdm_run}", "logger=csv",
        "callbacks.rich_progress_bar=null", "trainer.max_epochs=1", "data.clips_per_epoch=22", "data.val_clips=11",
        "data.test_clips=11", "data.batch_size=11", "data.ddim_steps=4", "data.normalization_clips=11",
        "model.net.conv_filters=8", "model.net.lstm_hidden=16",
        run_dir=tmp_path,
        env=ONE_THREAD,
    )
    result = metrics(tmp_path)
    assert 0.0 <= result["val/balanced_acc"] <= 1.0 and 0.0 <= result["test/balanced_acc"] <= 1.0
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["class_names"][-1] == "fall_sideways"
    assert all(key.startswith(("net.", "class_weights")) for key in checkpoint["state_dict"]), "no MDM weights"
