import pytest
import torch

from datamodules.motion_dataset import MotionClipDataset


def first_train_batch(datamodule):
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(0)
    return datamodule.on_after_batch_transfer(next(iter(loader)), 0)


def test_batch_contract_and_window_count(make_datamodule):
    datamodule = make_datamodule()
    batch = first_train_batch(datamodule)
    # 4 s at 20 fps = 80 frames → 4 s span at 50 Hz = 198 samples → 2 s windows (100) every 50: 2 windows
    assert datamodule.pipeline.output_length(80) == 198
    assert datamodule.windows_per_clip == 2
    assert batch["imu"].shape == (8 * 2, 100, 6)
    assert batch["imu"].dtype == torch.float32 and torch.isfinite(batch["imu"]).all()
    assert batch["label"].shape == batch["safety"].shape == batch["clip_index"].shape == (16,)
    # windows of one clip are consecutive and share its labels
    assert torch.equal(batch["clip_index"][0::2], batch["clip_index"][1::2])
    assert set(batch["safety"].tolist()) <= {0, 1}


def test_overlapping_windows_share_samples(make_datamodule):
    datamodule = make_datamodule(overlap=0.5)
    datamodule.setup("fit")
    raw = datamodule._windows(next(iter(datamodule.train_dataloader())))
    torch.testing.assert_close(raw[:, 0, 50:], raw[:, 1, :50])


def test_same_seed_gives_identical_batches_and_another_seed_does_not(make_datamodule):
    first = first_train_batch(make_datamodule(seed=5))
    again = first_train_batch(make_datamodule(seed=5))
    other = first_train_batch(make_datamodule(seed=6))
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["imu"], other["imu"])


def test_normalization_uses_training_statistics(make_datamodule):
    datamodule = make_datamodule()
    datamodule.setup("fit")
    loader = torch.utils.data.DataLoader(datamodule.datasets["train"], batch_size=64)
    imu = torch.cat([datamodule.on_after_batch_transfer(batch, 0)["imu"] for batch in loader])
    torch.testing.assert_close(imu.mean(dim=(0, 1)), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(imu.std(dim=(0, 1)), torch.ones(6), atol=1e-3, rtol=0)
    # accelerometer scale is about gravity: a resting wrist reads 9.81 m/s², so σ of acc is O(1–10 m/s²)
    assert 0.5 < datamodule.channel_std[:3].max() < 15


def test_class_counts_count_training_windows(make_datamodule):
    datamodule = make_datamodule(num_clips=22)
    datamodule.setup("fit")
    assert datamodule.class_counts.tolist() == [2 * 2] * 11  # 22 clips over 11 balanced classes, 2 windows each


def test_noise_draws_depend_on_the_clip_not_the_batch(make_datamodule):
    datamodule = make_datamodule()
    datamodule.setup("fit")
    dataset: MotionClipDataset = datamodule.datasets["train"]
    assert torch.equal(dataset[3]["sensor_white"], dataset[3]["sensor_white"])
    assert not torch.equal(dataset[3]["sensor_white"], dataset[4]["sensor_white"])
    assert not torch.equal(datamodule.datasets["val"][3]["sensor_white"], dataset[3]["sensor_white"])


def test_state_dict_round_trip_keeps_normalization(make_datamodule):
    datamodule = make_datamodule()
    datamodule.setup("fit")
    fresh = make_datamodule(normalization_clips=1)
    fresh.load_state_dict(datamodule.state_dict())
    fresh.setup("fit")
    assert torch.equal(fresh.channel_mean, datamodule.channel_mean)


@pytest.mark.parametrize(
    "overrides,match",
    [({"overlap": 1.0}, "overlap"), ({"window_s": 0.0}, "window_s"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments(make_datamodule, overrides, match):
    with pytest.raises(ValueError, match=match):
        make_datamodule(**overrides)


def test_clip_shorter_than_a_window_is_rejected(make_datamodule):
    datamodule = make_datamodule(window_s=5.0)
    with pytest.raises(ValueError, match="fewer than one window"):
        datamodule.setup("fit")
