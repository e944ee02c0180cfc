import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from datamodules.labels import PROCEDURAL_TO_SHARED
from datamodules.readers.base import IMURecording, LoadReport
from datamodules.real_windows import recording_windows, stratified_fraction
from datamodules.sim2real_datamodule import Sim2RealDataModule, trial_name
from datamodules.virtual_imu_datamodule import VirtualIMUDataModule
from motion.procedural import ProceduralMotionSet
from tests.datamodules.readers.fall_fixtures import SHARED_DATA
from lightning_modules.trace_figure import pearson_r
from virtual_imu.filters import lowpass
from virtual_imu.mems import MEMSIMU, TriaxialErrors
from virtual_imu.pipeline import WristIMUPipeline

ACTIVITIES = ("walking", "running", "jumping")
WINDOW_S = 1.96
"""The whole clip: 40 frames at 20 fps span 1.95 s, i.e. 98 samples at 50 Hz = round(1.96 s · 50 Hz)."""
WINDOW = 98


def motion(seed: int, clips: int) -> ProceduralMotionSet:
    return ProceduralMotionSet(num_clips=clips, seed=seed, duration_s=2.0, fps=20.0, activities=ACTIVITIES)


def real_recordings(per_class: int, seed: int, *, scale: float = 1.0) -> list[IMURecording]:
    """Synthetic wrist recordings of 80–120 samples at 50 Hz, named like the procedural activities:
    gravity on a slowly turning axis plus a class-specific oscillation and white noise."""
    rng = np.random.default_rng(seed)
    recordings = []
    for k in range(per_class):
        for c, activity in enumerate(ACTIVITIES):
            samples = int(rng.integers(80, 121))
            t = np.arange(samples) / 50.0
            angle = 0.3 * np.sin(0.5 * t + k)
            acc = 9.81 * np.stack((np.sin(angle), np.zeros(samples), np.cos(angle)), axis=1)
            acc[:, 0] += scale * (1 + c) * np.sin(2 * math.pi * (1 + c) * t)
            acc += 0.3 * rng.normal(size=acc.shape)
            gyro = scale * rng.normal(size=(samples, 3)) + np.array([0.0, 0.5 * c, 0.0])
            recordings.append(IMURecording(dataset="synthetic", subject=str(k), activity=activity,
                                           label=PROCEDURAL_TO_SHARED[activity], position="wrist", fs=50.0,
                                           acc=acc, gyro=gyro, trial=str(c)))
    return recordings


def make(**overrides) -> Sim2RealDataModule:
    sensor = MEMSIMU(  # white-noise σ = N·√(50 Hz): 0.05 m/s², 0.01 rad/s
        accelerometer=TriaxialErrors(noise_density=0.05 / 50**0.5, bias_std=0.1),
        gyroscope=TriaxialErrors(noise_density=0.01 / 50**0.5, bias_std=0.01),
    )
    kwargs = dict(
        train_motion=motion(1, 6),
        val_motion=motion(2, 3),
        pipeline=WristIMUPipeline(placement="left_wrist", motion_fps=20.0, target_hz=50.0, sensor=sensor),
        real_test=real_recordings(2, seed=0),
        label_key="activity",
        window_s=WINDOW_S,
        batch_size=4,
        normalization_clips=6,
    )
    kwargs.update(overrides)
    datamodule = Sim2RealDataModule(**kwargs)
    datamodule.setup("fit")
    return datamodule


def all_batches(datamodule, loader) -> list[dict[str, torch.Tensor]]:
    return [datamodule.on_after_batch_transfer(batch, 0) for batch in loader]


def virtual_windows(datamodule) -> torch.Tensor:
    """Every training clip's raw simulated windows `[clips, N, W, 6]`, before any sim-to-real preprocessing."""
    train = datamodule.datasets["train"]
    batch = default_collate([train[i] for i in range(len(train))])
    return VirtualIMUDataModule._windows(datamodule, batch)


def test_test_batches_are_the_real_windows_normalised_with_virtual_statistics():
    real_test = real_recordings(2, seed=0)
    datamodule = make(real_test=LoadReport(real_test, skipped=[]))
    # Virtual statistics: mean and (population) std over every sample of every virtual training window.
    virtual = virtual_windows(datamodule).double().flatten(0, -2)
    torch.testing.assert_close(datamodule.channel_mean, virtual.mean(0).float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(datamodule.channel_std, virtual.std(0, unbiased=False).float(), rtol=1e-5, atol=0)
    raw = [batch for batch in datamodule.test_dataloader()]
    batches = all_batches(datamodule, raw)
    imu = torch.cat([b["imu"] for b in batches])
    assert imu.shape == (6, WINDOW, 6) and len(batches) == 2  # 6 recordings, one centred window each
    expected = np.stack([recording_windows(r, WINDOW, "centre")[0] for r in real_test])
    torch.testing.assert_close(torch.cat([b["imu_raw"] for b in raw]), torch.from_numpy(expected).float())
    normalised = (torch.from_numpy(expected).float() - datamodule.channel_mean) / datamodule.channel_std
    torch.testing.assert_close(imu, normalised, rtol=0, atol=1e-6)
    assert torch.cat([b["label"] for b in batches]).tolist() == [ACTIVITIES.index(r.activity) for r in real_test]
    assert torch.cat([b["safety"] for b in batches]).tolist() == [0] * 6
    assert torch.cat([b["clip_index"] for b in batches]).tolist() == list(range(6))


def test_channel_selection_applies_to_both_domains():
    datamodule = make(channels=[0, 1, 2])
    assert datamodule.num_channels == 3 and datamodule.channel_mean.shape == (3,)
    train = datamodule.train_dataloader()
    train.sampler.set_epoch(0)
    virtual = datamodule.on_after_batch_transfer(next(iter(train)), 0)["imu"]
    real = datamodule.on_after_batch_transfer(next(iter(datamodule.test_dataloader())), 0)["imu"]
    assert virtual.shape == (4, WINDOW, 3) and real.shape == (4, WINDOW, 3)
    full = make()
    # The acc channels' statistics do not depend on the gyro channels being there.
    torch.testing.assert_close(datamodule.channel_mean, full.channel_mean[:3], rtol=0, atol=1e-6)


def test_lowpass_is_applied_identically_to_both_domains():
    datamodule = make(imu_lowpass_hz=4.0)
    raw_virtual = virtual_windows(datamodule)  # [6 clips, 1 window, W, 6]
    filtered = lowpass(raw_virtual, 4.0, 50.0)
    train = datamodule.datasets["train"]
    motion_batch = default_collate([train[i] for i in range(len(train))])
    torch.testing.assert_close(datamodule._windows(motion_batch), filtered, rtol=0, atol=0)
    # The same signals presented as real windows come out exactly like the virtual training batch.
    as_real = {"imu_raw": raw_virtual[:, 0], "label": motion_batch["label"], "safety": motion_batch["safety"],
               "clip_index": motion_batch["clip_index"]}
    real_path = datamodule.on_after_batch_transfer(as_real, 0)
    virtual_path = datamodule.on_after_batch_transfer(motion_batch, 0)
    torch.testing.assert_close(real_path["imu"], virtual_path["imu"], rtol=0, atol=1e-6)
    # And the filter really acts: a 4 Hz low-pass changes the raw windows.
    assert (filtered - raw_virtual).abs().max() > 0.5


def test_train_on_real_uses_the_stratified_fraction_and_real_statistics():
    real_train = real_recordings(4, seed=5)  # 4 per class
    datamodule = make(real_train=real_train, train_on="real", calibration_fraction=0.5, seed=3)
    chosen = stratified_fraction(real_train, 0.5, label_key="activity", seed=3)
    assert len(chosen) == 6  # 2 of each class
    expected = torch.from_numpy(np.stack([recording_windows(r, WINDOW, "centre")[0] for r in chosen])).float()
    loader = datamodule.train_dataloader()
    raw = [batch for batch in loader]
    seen = torch.cat([b["imu_raw"] for b in raw])
    order = torch.cat([b["clip_index"] for b in raw])
    assert sorted(order.tolist()) == list(range(6))
    torch.testing.assert_close(seen, expected[order], rtol=0, atol=0)
    # Real statistics of the chosen windows (unbiased std).
    flat = expected.double().flatten(0, -2)
    torch.testing.assert_close(datamodule.channel_mean, flat.mean(0).float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(datamodule.channel_std, flat.std(0).float(), rtol=1e-5, atol=0)
    assert datamodule.class_counts.tolist() == [2, 2, 2]
    batch = datamodule.on_after_batch_transfer(raw[0], 0)
    normalised = (raw[0]["imu_raw"] - datamodule.channel_mean) / datamodule.channel_std
    torch.testing.assert_close(batch["imu"], normalised, rtol=0, atol=1e-6)
    # Shuffled with the seed: the same order again.
    assert torch.equal(torch.cat([b["clip_index"] for b in datamodule.train_dataloader()]), order)


def test_quantile_mapping_matches_the_virtual_windows_to_the_real_distribution():
    real_train = real_recordings(4, seed=6, scale=3.0)
    datamodule = make(real_train=real_train, quantile_mapping=True)
    train = datamodule.datasets["train"]
    motion_batch = default_collate([train[i] for i in range(len(train))])
    mapped = datamodule._windows(motion_batch).flatten(0, -2)  # [samples, 6]
    real = datamodule.real_datasets["train"].imu.flatten(0, -2)
    levels = torch.linspace(0.05, 0.95, 19)
    real_quantiles = torch.quantile(real, levels, dim=0)
    spread = real_quantiles[-1] - real_quantiles[0]
    unmapped = VirtualIMUDataModule._windows(datamodule, motion_batch).flatten(0, -2)
    before = ((torch.quantile(unmapped, levels, dim=0) - real_quantiles).abs() / spread).max()
    after = ((torch.quantile(mapped, levels, dim=0) - real_quantiles).abs() / spread).max()
    # Per channel, the 5–95 % quantiles agree within 2 % of the real 5–95 % spread (measured ≤ 0.44 %;
    # unmapped: 29 % to 2455 %).
    assert before > 0.2 and after < 0.02
    # Statistics are those of the mapped virtual windows.
    flat = mapped.double()
    torch.testing.assert_close(datamodule.channel_mean, flat.mean(0).float(), rtol=0, atol=1e-4)


def test_hyperparameters_hold_settings_only():
    datamodule = make(real_train=real_recordings(1, seed=1), channels=[2, 0])
    assert "real_test" not in datamodule.hparams and "real_train" not in datamodule.hparams
    assert datamodule.hparams.channels == (2, 0) and datamodule.hparams.label_key == "activity"
    buffer = io.BytesIO()
    torch.save({"datamodule_hyper_parameters": dict(datamodule.hparams)}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["datamodule_hyper_parameters"]["window_s"] == WINDOW_S


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_on": "both"}, r"train_on must be one of \('virtual', 'real'\), got 'both'"),
        ({"train_on": "real"}, "train_on='real' and quantile_mapping need real_train recordings"),
        ({"quantile_mapping": True}, "train_on='real' and quantile_mapping need real_train recordings"),
        ({"channels": []}, r"channels must be distinct indices in 0..5, got \(\)"),
        ({"channels": [0, 6]}, r"channels must be distinct indices in 0..5, got \(0, 6\)"),
        ({"channels": [-1]}, "channels must be distinct indices in 0..5"),
        ({"channels": [1, 1]}, r"channels must be distinct indices in 0..5, got \(1, 1\)"),
        ({"imu_lowpass_hz": 0.0}, r"imu_lowpass_hz must lie in \(0, 25.0\), got 0.0"),
        ({"imu_lowpass_hz": 25.0}, r"imu_lowpass_hz must lie in \(0, 25.0\), got 25.0"),
        ({"imu_lowpass_hz": -3.0}, r"imu_lowpass_hz must lie in \(0, 25.0\)"),
    ],
)
def test_bad_arguments_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


# ------------------------------------------------------------- paired real / virtual trials

CLIP_SAMPLES = WINDOW
"""A procedural clip (40 frames at 20 fps) simulated at 50 Hz: 98 samples."""


class NamedTrials:
    """Procedural clips captioned as trial `s{k}_t1` of their activity, like `UTDSkeletonSet` names its clips."""

    def __init__(self, seed: int, clips: int):
        self.activities = ACTIVITIES
        self.clips = [dataclasses.replace(clip, caption=f"synthetic {clip.activity} s{k}_t1")
                      for k, clip in enumerate(motion(seed, clips)[i] for i in range(clips))]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        return self.clips[index]


def noise_free(clip) -> np.ndarray:
    """The clip's virtual IMU `[98, 6]` without sensor errors: what a perfect real sensor would record."""
    return make_pipeline()(torch.from_numpy(clip.joints)).double().numpy()


def make_pipeline() -> WristIMUPipeline:
    sensor = MEMSIMU(accelerometer=TriaxialErrors(noise_density=0.05 / 50**0.5, bias_std=0.1))
    return WristIMUPipeline(placement="left_wrist", motion_fps=20.0, target_hz=50.0, sensor=sensor)


def trial_recording(clip, imu: np.ndarray, *, subject: str, activity: str | None = None, fs: float = 50.0):
    return IMURecording(dataset="synthetic", subject=subject, activity=activity or clip.activity,
                        label=PROCEDURAL_TO_SHARED[activity or clip.activity], position="left_wrist", fs=fs,
                        acc=imu[:, :3], gyro=imu[:, 3:], trial="1", source=f"s{subject}_t1.csv")


def unprepared(motion_set, real_test, **overrides) -> Sim2RealDataModule:
    """A datamodule before `setup`: pairing needs none of its datasets."""
    return Sim2RealDataModule(train_motion=motion_set, val_motion=motion_set, pipeline=make_pipeline(),
                              real_test=real_test, window_s=WINDOW_S, **overrides)


@pytest.mark.parametrize(("before", "after"), [(20, 20), (0, 0), (-7, -8)])
def test_paired_trials_align_each_recording_with_its_clip(before, after):
    """A recording of the span [before, 98 − after) of its clip's noise-free simulation (negative: the
    recording runs longer, by held samples) pairs with exactly that span: same values, same samples."""
    trials = NamedTrials(seed=3, clips=3)
    truth = [noise_free(clip) for clip in trials.clips]

    def span(imu: np.ndarray) -> np.ndarray:
        held = np.concatenate((np.repeat(imu[:1], max(0, -before), 0), imu, np.repeat(imu[-1:], max(0, -after), 0)))
        return held[max(0, before) : held.shape[0] - max(0, after)]

    recordings = [trial_recording(trials[0], span(truth[0]), subject="0"),
                  trial_recording(trials[2], span(truth[2]), subject="2"),
                  # trial s1_t1 of another activity is not clip 1's trial
                  trial_recording(trials[1], span(truth[1]), subject="1", activity=ACTIVITIES[2])]
    pairs = unprepared(trials, recordings).paired_trials()
    assert [pair.name for pair in pairs] == [trials[0].caption, trials[2].caption]
    samples = CLIP_SAMPLES - max(0, before) - max(0, after)
    for pair, expected in zip(pairs, (truth[0], truth[2])):
        assert pair.real.shape == pair.virtual.shape == (samples, 6)
        assert (pair.fs, pair.lowpass_hz) == (50.0, None)
        expected = torch.from_numpy(expected[max(0, before) : CLIP_SAMPLES - max(0, after)]).float()
        torch.testing.assert_close(pair.real, expected, rtol=0, atol=0)
        # Noise-free although the pipeline's sensor is noisy (σ 0.05 m/s², bias 0.1 m/s²).
        torch.testing.assert_close(pair.virtual, expected, rtol=0, atol=1e-5)


def test_paired_trials_are_low_passed_like_both_domains():
    trials = NamedTrials(seed=4, clips=1)
    truth = noise_free(trials[0])
    datamodule = unprepared(trials, [trial_recording(trials[0], truth, subject="0")], imu_lowpass_hz=4.0)
    (pair,) = datamodule.paired_trials()
    filtered = lowpass(torch.from_numpy(truth).float(), 4.0, 50.0)
    torch.testing.assert_close(pair.real, filtered, rtol=0, atol=1e-6)
    torch.testing.assert_close(pair.virtual, filtered, rtol=0, atol=1e-5)
    # The filter really acts (measured: up to 0.27 m/s² on this clip).
    assert pair.lowpass_hz == 4.0 and (filtered - torch.from_numpy(truth).float()).abs().max() > 0.1


def test_paired_trials_count_spreads_over_the_matches():
    trials = NamedTrials(seed=5, clips=5)
    recordings = [trial_recording(clip, noise_free(clip), subject=str(k)) for k, clip in enumerate(trials.clips)]
    datamodule = unprepared(trials, recordings[:1], real_train=recordings[1:])
    assert [pair.name for pair in datamodule.paired_trials(3)] == [trials[i].caption for i in (0, 2, 4)]
    assert len(datamodule.paired_trials()) == 5 and len(datamodule.paired_trials(9)) == 5
    assert trial_name(recordings[3]) == "s3_t1"


def test_paired_trials_without_named_motion_are_empty():
    # Procedural captions name no trial: nothing pairs with the real recordings of the same activities.
    datamodule = unprepared(motion(1, 6), real_recordings(1, seed=0))
    assert datamodule.paired_trials() == []


def test_paired_trials_name_bad_arguments():
    trials = NamedTrials(seed=3, clips=1)
    recording = trial_recording(trials[0], noise_free(trials[0])[::2], subject="0", fs=25.0)
    with pytest.raises(ValueError, match=r"recording s0_t1.csv has fs=25.0 Hz, not the pipeline's target_hz=50.0"):
        unprepared(trials, [recording]).paired_trials()
    with pytest.raises(ValueError, match="count must be ≥ 1 or None, got 0"):
        unprepared(trials, [recording]).paired_trials(0)


UTD = SHARED_DATA / "utd_mhad"


@pytest.mark.skipif(not UTD.is_dir(), reason=f"UTD-MHAD not in {SHARED_DATA} (shared data folder lacks it)")
def test_utd_mhad_experiment_pairs_the_skeleton_and_inertial_trials():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from threadpoolctl import threadpool_limits

    conf = Path(__file__).resolve().parents[2] / "conf"
    overrides = ["experiment=sim2real_utd_mhad", f"paths.data_dir={SHARED_DATA}", "train_subjects=[1]",
                 "test_subjects=[2]", "data.train_motion.repeats=1"]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        config = compose(config_name="train", overrides=overrides)
    with threadpool_limits(1):
        datamodule = instantiate(config.data)
        pairs = datamodule.paired_trials()
    # Subject 1's 83 right-wrist trials with both files, each once; as long as its 25 Hz recording.
    assert len({pair.name for pair in pairs}) == len(pairs) == 83 and all(" s1_t" in pair.name for pair in pairs)
    first = next(r for r in datamodule.real_sources["train"] if trial_name(r) == "s1_t1" and r.activity == "swipe_left")
    assert pairs[0].name == "UTD-MHAD swipe_left s1_t1" and pairs[0].real.shape == (first.acc.shape[0], 6)
    acc_x = np.array([pearson_r(pair.real, pair.virtual)[0] for pair in pairs])
    # docs/results.md: mean r 0.74 over the test subjects; measured here 0.725 (paired_trial: 0.739).
    assert acc_x.mean() > 0.6
    assert np.median(acc_x) > 0.3
