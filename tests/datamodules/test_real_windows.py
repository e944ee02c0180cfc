from collections import Counter

import numpy as np
import pytest
import torch

from datamodules.readers.base import IMURecording
from datamodules.real_windows import (
    RealWindowDataset,
    class_of,
    recording_windows,
    stratified_fraction,
)


def ramp_recording(samples: int, *, activity: str = "a1", label: str = "walking", events=None, peak: int | None = None,
                   subject: str = "1") -> IMURecording:
    """acc x = sample index (so a window's x column names the samples it holds), gyro x = −index."""
    index = np.arange(samples, dtype=np.float64)
    acc = np.stack((index, np.zeros(samples), np.full(samples, 9.8)), axis=1)
    if peak is not None:
        acc[peak, 2] = 1000.0  # the largest |acc| by far
    gyro = np.stack((-index, np.zeros(samples), np.zeros(samples)), axis=1)
    return IMURecording(dataset="test", subject=subject, activity=activity, label=label, position="wrist", fs=50.0,
                        acc=acc, gyro=gyro, events=events or {})


def samples_of(windows: np.ndarray) -> list[list[int]]:
    return windows[..., 0].astype(int).tolist()


# ---------------------------------------------------------------- placements


@pytest.mark.parametrize(
    ("samples", "window", "expected"),
    [
        (7, 11, [0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6]),  # 4 short: 2 held before, 2 after
        (7, 10, [0, 0, 1, 2, 3, 4, 5, 6, 6, 6]),  # 3 short: the odd one after
        (7, 7, [0, 1, 2, 3, 4, 5, 6]),
        (7, 4, [1, 2, 3, 4]),  # 3 too many: 1 cropped before, 2 after
    ],
)
def test_centre_placement(samples, window, expected):
    windows = recording_windows(ramp_recording(samples), window, "centre")
    assert windows.shape == (1, window, 6)
    assert samples_of(windows) == [expected]
    np.testing.assert_array_equal(windows[0, :, 3], -np.array(expected))


@pytest.mark.parametrize(
    ("interval_s", "window", "first"),
    [
        ((4.0, 5.0), 100, 175),  # centre round(4.5 s · 50 Hz) = 225 at position 50 of 100
        ((4.0, 5.0), 101, 175),  # odd window: 50 samples before 225, 50 after
        ((1.0, 3.0), 60, 70),  # centre 100 at position 30
    ],
)
def test_event_placement_centres_the_fall_interval(interval_s, window, first):
    # The |acc| peak (sample 30) is ignored when there is a fall interval.
    recording = ramp_recording(500, label="falling", events={"fall": interval_s}, peak=30)
    windows = recording_windows(recording, window, "event")
    assert windows.shape == (1, window, 6)
    assert samples_of(windows)[0] == list(range(first, first + window))
    assert windows[0, window // 2, 0] == round(0.5 * sum(interval_s) * 50.0)


def test_event_placement_holds_the_ends_near_the_recording_edges():
    start = recording_windows(ramp_recording(500, events={"fall": (0.0, 0.4)}), 100, "event")
    # Centre sample 10: the window starts 40 samples before the recording, which hold its first sample.
    assert samples_of(start)[0] == [0] * 40 + list(range(60))
    end = recording_windows(ramp_recording(500, events={"fall": (9.8, 10.0)}), 100, "event")
    # Centre sample 495: samples 445–499, then 45 copies of the last one.
    assert samples_of(end)[0] == list(range(445, 500)) + [499] * 45


def test_event_placement_without_a_fall_centres_the_acc_peak():
    windows = recording_windows(ramp_recording(500, peak=321), 60, "event")
    assert samples_of(windows)[0] == list(range(291, 351))
    assert windows[0, 30, 2] == 1000.0


@pytest.mark.parametrize(
    ("overlap", "starts"),
    [(0.5, [0, 2, 4, 6]), (0.25, [0, 3, 6]), (0.0, [0, 4]), (0.9, [0, 1, 2, 3, 4, 5, 6])],
)
def test_sliding_placement(overlap, starts):
    # 10 samples, windows of 4 every round(4·(1 − overlap)) samples (at least 1); the short tail is dropped.
    windows = recording_windows(ramp_recording(10), 4, "sliding", overlap)
    assert samples_of(windows) == [list(range(s, s + 4)) for s in starts]


def test_sliding_placement_of_a_short_recording_gives_one_centred_window():
    assert samples_of(recording_windows(ramp_recording(3), 6, "sliding")) == [[0, 0, 1, 2, 2, 2]]


def test_unknown_placement_is_rejected():
    with pytest.raises(ValueError, match=r"placement must be one of \('centre', 'event', 'sliding'\), got 'middle'"):
        recording_windows(ramp_recording(10), 4, "middle")


# ---------------------------------------------------------------- classes and subsets


def test_class_of_the_three_label_keys():
    fainting = ramp_recording(5, activity="F06", label="fainting")
    stumbling = ramp_recording(5, activity="D07", label="stumbling")
    assert [class_of(fainting, key) for key in ("activity", "label", "fall")] == ["F06", "fainting", "fall"]
    assert [class_of(stumbling, key) for key in ("activity", "label", "fall")] == ["D07", "stumbling", "adl"]
    assert class_of(ramp_recording(5, label="falling"), "fall") == "fall"
    with pytest.raises(ValueError, match=r"label_key must be one of \('activity', 'label', 'fall'\), got 'safety'"):
        class_of(fainting, "safety")


def mixed_recordings() -> list[IMURecording]:
    """10 × a1, 4 × a2, 1 × a3, interleaved, each with its own subject number."""
    activities = ["a1"] * 10 + ["a2"] * 4 + ["a3"]
    order = np.random.default_rng(0).permutation(len(activities))
    return [ramp_recording(5, activity=activities[i], subject=str(k)) for k, i in enumerate(order)]


def test_stratified_fraction_counts_per_class():
    recordings = mixed_recordings()
    subset = stratified_fraction(recordings, 0.5, label_key="activity", seed=3)
    # round(0.5·10) = 5, round(0.5·4) = 2, and at least one of the single a3.
    assert Counter(r.activity for r in subset) == {"a1": 5, "a2": 2, "a3": 1}
    positions = [recordings.index(r) for r in subset]
    assert positions == sorted(positions)  # original order kept
    tenth = stratified_fraction(recordings, 0.1, label_key="activity", seed=3)
    assert Counter(r.activity for r in tenth) == {"a1": 1, "a2": 1, "a3": 1}
    assert stratified_fraction(recordings, 1.0, label_key="activity", seed=3) == recordings


def test_stratified_fraction_is_seeded():
    recordings = mixed_recordings()
    first = stratified_fraction(recordings, 0.5, label_key="activity", seed=3)
    assert stratified_fraction(recordings, 0.5, label_key="activity", seed=3) == first
    subsets = [stratified_fraction(recordings, 0.5, label_key="activity", seed=seed) for seed in range(5)]
    assert len({tuple(r.subject for r in subset) for subset in subsets}) > 1


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_stratified_fraction_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r"fraction must lie in \(0, 1\]"):
        stratified_fraction(mixed_recordings(), fraction, label_key="activity", seed=0)


# ---------------------------------------------------------------- RealWindowDataset


def test_dataset_labels_safety_clip_index_and_dropped():
    recordings = [
        ramp_recording(20, activity="D01", label="walking"),
        ramp_recording(20, activity="D09", label="other"),
        ramp_recording(30, activity="F01", label="falling"),
        ramp_recording(20, activity="D07", label="stumbling"),
    ]
    dataset = RealWindowDataset(recordings, class_names=("stumbling", "walking", "falling"), label_key="label",
                                window=10, placement="sliding", overlap=0.5)
    assert dataset.dropped == 1  # "other" is not a class here
    # Windows of 10 every 5: 3 from each 20-sample recording, 5 from the 30-sample one.
    assert len(dataset) == 3 + 5 + 3
    assert dataset.labels.tolist() == [1] * 3 + [2] * 5 + [0] * 3
    assert dataset.safety.tolist() == [0] * 3 + [1] * 8
    assert dataset.clip_index.tolist() == [0] * 3 + [2] * 5 + [3] * 3
    item = dataset[4]
    assert set(item) == {"imu_raw", "label", "safety", "clip_index"}
    assert item["imu_raw"].shape == (10, 6) and item["imu_raw"].dtype == torch.float32
    assert item["imu_raw"][:, 0].tolist() == list(range(5, 15))  # second window of recording 2
    assert (item["label"], item["safety"], item["clip_index"]) == (2, 1, 2)


def test_dataset_with_fall_labels_and_centre_windows():
    recordings = [ramp_recording(40, label="fainting"), ramp_recording(60, label="sit_stand")]
    dataset = RealWindowDataset(
        recordings, class_names=("adl", "fall"), label_key="fall", window=50, placement="centre"
    )
    assert dataset.dropped == 0 and dataset.labels.tolist() == [1, 0] and dataset.imu.shape == (2, 50, 6)


def test_dataset_without_any_listed_class_is_rejected():
    with pytest.raises(ValueError, match=r"no recording has a class among \('x',\) \(label_key='activity'\)"):
        RealWindowDataset([ramp_recording(20)], class_names=("x",), label_key="activity", window=10, placement="centre")
