"""Text–motion DataModule: MDM batch layout, padding, training statistics, feature round trip, determinism."""

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from datamodules.text_motion import UNKNOWN_ACTIVITY, TextMotionDataModule
from motion.humanml3d import FOOT_CONTACTS, canonicalize_joints, extract_features, recover_from_ric
from motion.procedural import ProceduralMotionSet, generate_clip

pytestmark = pytest.mark.usefixtures("one_thread")

CLIPS = 11  # one clip of every procedural activity per split


def motion_sets(num_clips: int = CLIPS, **overrides) -> dict:
    sets = {f"{split}_motion": ProceduralMotionSet(num_clips=num_clips, seed=k + 1)
            for k, split in enumerate(("train", "val", "test"))}
    return {**sets, **overrides}


def procedural_module(**overrides) -> TextMotionDataModule:
    kwargs = dict(motion_sets(), batch_size=4, seed=0)
    kwargs.update(overrides)
    module = TextMotionDataModule(**kwargs)
    module.setup("fit")
    return module


def first_batch(module: TextMotionDataModule, split: str = "train") -> tuple[dict, list[int]]:
    """The first transferred batch of a split and the item indices it holds."""
    loader = getattr(module, f"{split}_dataloader")()
    loader.sampler.set_epoch(0)
    indices = list(loader.sampler)[: module.hparams.batch_size]
    return module.on_after_batch_transfer(next(iter(loader)), 0), indices


def train_features(num_clips: int = CLIPS) -> list[np.ndarray]:
    train = motion_sets()["train_motion"]
    return [extract_features(train[i].joints.astype(np.float64)) for i in range(num_clips)]


def test_procedural_batch_has_the_mdm_layout():
    module = procedural_module()
    batch, indices = first_batch(module)
    train = module.motion["train"]
    assert set(batch) == {"motion", "lengths", "text", "activity", "contacts"}
    # 4 s at 20 fps = 80 frames → 79 feature rows per clip
    assert batch["motion"].shape == (4, 263, 1, 79) and batch["motion"].dtype == torch.float32
    assert batch["lengths"].dtype == torch.long and batch["lengths"].tolist() == [79] * 4
    assert batch["text"] == [train[i].caption for i in indices]
    assert batch["activity"] == [train[i].activity for i in indices]
    assert batch["contacts"].shape == (4, 79, 4)
    raw = torch.from_numpy(extract_features(train[indices[0]].joints.astype(np.float64))).float()
    assert set(batch["contacts"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch["contacts"][0], raw[:, FOOT_CONTACTS])
    torch.testing.assert_close(batch["motion"][0, :, 0].T, (raw - module.mean) / module.std, atol=1e-5, rtol=0)


def test_statistics_are_the_training_split_mean_and_population_std():
    module = procedural_module()
    frames = np.concatenate(train_features())  # [11 · 79, 263] float64
    np.testing.assert_allclose(module.mean.numpy(), frames.mean(0), atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(module.std.numpy(), np.maximum(frames.std(0), 1e-3), atol=1e-7, rtol=1e-6)
    normalised = module.normalize(torch.from_numpy(frames))
    # float32 statistics: the mean's rounding (6e-8 · |mean|) over the smallest std leaves ≤ 2.4e-5 σ (measured)
    torch.testing.assert_close(normalised.mean(0), torch.zeros(263, dtype=torch.float64), atol=5e-5, rtol=0)
    unfloored = torch.from_numpy(frames.std(0) > 1e-3)
    std = normalised.std(0, correction=0)
    torch.testing.assert_close(std[unfloored], torch.ones(int(unfloored.sum()), dtype=torch.float64), atol=1e-5, rtol=0)
    assert (std[~unfloored] < 1).all()


def test_std_floor_and_normalization_clips():
    floored = procedural_module(min_std=0.05)
    frames = np.concatenate(train_features())
    np.testing.assert_allclose(floored.std.numpy(), np.maximum(frames.std(0), 0.05), rtol=1e-6)
    assert (floored.std >= 0.05).all() and (floored.std == 0.05).any()
    first_three = procedural_module(normalization_clips=3)
    np.testing.assert_allclose(first_three.mean.numpy(), np.concatenate(train_features(3)).mean(0), atol=1e-6)


def test_recover_from_ric_of_the_denormalised_batch_gives_the_canonical_joints():
    """Joints decoded from a whole training batch match HumanML3D's canonical placement of the source clips.

    Measured worst error 9.0e-7 m (float32 features through normalise → denormalise → decode).
    """
    module = procedural_module(batch_size=CLIPS)
    batch, indices = first_batch(module)
    features = module.denormalize(batch["motion"])
    assert features.shape == (CLIPS, 79, 263)
    for row, index in enumerate(indices):
        decoded = recover_from_ric(features[row, : batch["lengths"][row]]).double()
        expected = torch.from_numpy(canonicalize_joints(module.motion["train"][index].joints)[:-1])
        torch.testing.assert_close(decoded, expected, atol=1e-5, rtol=0)


def test_same_seed_same_batches_other_seed_other_order():
    first, first_indices = first_batch(procedural_module(seed=3))
    again, again_indices = first_batch(procedural_module(seed=3))
    other, other_indices = first_batch(procedural_module(seed=4))
    assert first_indices == again_indices and first["text"] == again["text"]
    for key in ("motion", "lengths", "contacts"):
        assert torch.equal(first[key], again[key]), key
    assert first_indices != other_indices


def test_loaders_use_a_distributed_sampler_shuffling_only_training():
    module = procedural_module()
    train, val = module.train_dataloader(), module.val_dataloader()
    assert isinstance(train.sampler, DistributedSampler) and isinstance(val.sampler, DistributedSampler)
    assert train.sampler.shuffle and not val.sampler.shuffle
    assert list(val.sampler) == list(range(CLIPS))
    train.sampler.set_epoch(0)
    epoch0 = list(train.sampler)
    train.sampler.set_epoch(1)
    assert sorted(epoch0) == list(range(CLIPS)) and list(train.sampler) != epoch0


def test_state_dict_round_trip_keeps_the_statistics():
    module = procedural_module()
    fresh = TextMotionDataModule(**motion_sets(), normalization_clips=1)
    fresh.load_state_dict(module.state_dict())
    fresh.setup("fit")
    assert torch.equal(fresh.mean, module.mean) and torch.equal(fresh.std, module.std)


WALK_LINE = "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0"


@pytest.fixture
def humanml3d_root(tmp_path):
    """HumanML3D layout with procedural features of 79, 50 and 30 rows (the last too short for MDM)."""
    for folder in ("new_joint_vecs", "texts"):
        (tmp_path / folder).mkdir()
    joints = generate_clip("walking", np.random.default_rng(5)).joints
    rows = {"000001": extract_features(joints), "000002": extract_features(joints[:51]),
            "000003": extract_features(joints[:31])}
    for clip_id, features in rows.items():
        np.save(tmp_path / "new_joint_vecs" / f"{clip_id}.npy", features.astype(np.float32))
        (tmp_path / "texts" / f"{clip_id}.txt").write_text(WALK_LINE + "\n", encoding="utf-8")
    np.save(tmp_path / "Mean.npy", rows["000001"].mean(0).astype(np.float32))
    np.save(tmp_path / "Std.npy", (rows["000001"].std(0) + 0.1).astype(np.float32))
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.txt").write_text("000001\n000002\n000003\n")
    return tmp_path, rows


def test_humanml3d_folder_batches_are_padded_with_zeros(humanml3d_root):
    root, rows = humanml3d_root
    module = TextMotionDataModule(humanml3d_root=root, batch_size=4)
    module.setup("test")
    assert len(module.datasets["test"]) == 2  # the 30-row clip is outside MDM's 40–199 rule
    np.testing.assert_array_equal(module.mean.numpy(), np.load(root / "Mean.npy"))
    np.testing.assert_array_equal(module.std.numpy(), np.load(root / "Std.npy"))
    batch, _ = first_batch(module, "test")
    assert batch["lengths"].tolist() == [79, 50] and batch["motion"].shape == (2, 263, 1, 79)
    assert batch["text"] == ["a person walks forward."] * 2 and batch["activity"] == [UNKNOWN_ACTIVITY] * 2
    assert torch.count_nonzero(batch["motion"][1, :, :, 50:]) == 0
    assert torch.count_nonzero(batch["contacts"][1, 50:]) == 0
    expected = (rows["000002"].astype(np.float32) - np.load(root / "Mean.npy")) / np.load(root / "Std.npy")
    np.testing.assert_allclose(batch["motion"][1, :, 0, :50].T.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(module.denormalize(batch["motion"])[1, :50].numpy(), rows["000002"], atol=1e-5)


class _Relabelled:
    """A procedural set whose clips get other attributes (e.g. no caption, another frame rate)."""

    def __init__(self, motion: ProceduralMotionSet, **changes):
        self.motion, self.changes, self.activities = motion, changes, motion.activities

    def __len__(self):
        return len(self.motion)

    def __getitem__(self, index):
        return dataclasses.replace(self.motion[index], **self.changes)


@pytest.mark.parametrize(
    "train_motion,match",
    [
        (_Relabelled(ProceduralMotionSet(num_clips=2, seed=1), caption=""), "train_motion clip 0 has no caption"),
        (_Relabelled(ProceduralMotionSet(num_clips=2, seed=1), fps=30.0), "train_motion clip 0 has 30.0 fps"),
        (ProceduralMotionSet(num_clips=2, seed=1, duration_s=2.0, activities=("sit_down",)),
         r"train_motion clip 0 gives 39 feature frames, outside MDM's \[40, 199\]"),
    ],
)
def test_unusable_clips_are_named(train_motion, match):
    module = TextMotionDataModule(**motion_sets(train_motion=train_motion))
    with pytest.raises(ValueError, match=match):
        module.setup("fit")


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(humanml3d_root="."), "give either humanml3d_root or train_motion"),
        (dict(val_motion=None), "val_motion missing"),
        (dict(train_motion=None, val_motion=None, test_motion=None, humanml3d_root="/no/such/folder"),
         "humanml3d_root /no/such/folder is not a folder"),
        (dict(batch_size=0), "batch_size must be an integer ≥ 1"),
        (dict(num_workers=-1), "num_workers must be an integer ≥ 0"),
        (dict(seed=-1), "seed must be an integer ≥ 0"),
        (dict(normalization_clips=0), "normalization_clips must be an integer ≥ 1"),
        (dict(min_std=0.0), "min_std must be a positive number"),
        (dict(min_std=float("nan")), "min_std must be a positive number"),
        (dict(min_std=True), "min_std must be a positive number"),
        (dict(min_frames=1), "min_frames must be an integer ≥ 2"),
        (dict(max_frames=39), "max_frames must be an integer ≥ 40"),
        (dict(max_source_frames=20), "max_source_frames must be an integer ≥ 40"),
    ],
)
def test_bad_arguments_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        TextMotionDataModule(**motion_sets(**overrides))


def test_denormalize_needs_the_mdm_layout_and_statistics():
    with pytest.raises(RuntimeError, match="call setup"):
        TextMotionDataModule(**motion_sets()).denormalize(torch.zeros(1, 263, 1, 5))
    module = procedural_module()
    with pytest.raises(ValueError, match=r"motion must be a tensor \[B, 263, 1, T\], got \(1, 5, 263\)"):
        module.denormalize(torch.zeros(1, 5, 263))
    with pytest.raises(ValueError, match=r"motion must be a tensor \[B, 263, 1, T\], got ndarray"):
        module.denormalize(np.zeros((1, 263, 1, 5)))
