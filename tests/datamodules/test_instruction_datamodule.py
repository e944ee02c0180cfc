"""Instruction batches: comparisons bring their second clip, cached items equal fresh ones, loaders shard."""

import pytest
import torch

from datamodules.instruction_datamodule import CachedItems, InstructionDataModule, collate_instructions
from datamodules.instructions.toy_set import ToyMultimodalDataset

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(frame_size=(32, 32), num_frames=4)


@pytest.fixture(scope="module")
def toy() -> ToyMultimodalDataset:
    return ToyMultimodalDataset(num_clips=6, seed=0, **SMALL)  # prompt types cycle: desc, causal, comparative


def test_collate_puts_a_comparisons_second_clip_after_its_first(toy):
    items = [toy[i] for i in range(6)]
    assert [item["prompt_type"] for item in items[:3]] == ["description", "causal_counterfactual", "comparative"]
    batch = collate_instructions(items)
    assert batch["clips_per_sample"] == [1, 1, 2, 1, 1, 2] and batch["video_padding_mask"] is None
    assert batch["imu"].shape == (8, 198, 6) and batch["frames"].shape == (8, 4, 3, 32, 32)
    clip = 0
    for item, count in zip(items, batch["clips_per_sample"]):
        assert torch.equal(batch["imu"][clip], item["imu"]) and torch.equal(batch["frames"][clip], item["frames"])
        if count == 2:
            assert torch.equal(batch["imu"][clip + 1], item["compared_imu"])
            assert torch.equal(batch["frames"][clip + 1], item["compared_frames"])
        clip += count
    assert batch["activity"] == [item["activity"] for item in items]
    for item, safety in zip(items, batch["answer_safety"]):
        both = {item["safety"], item.get("compared_safety", item["safety"])}
        assert safety == ("unsafe" if "unsafe" in both else "safe")
    assert batch["responses"] == [item["response"] for item in items]


def test_collate_names_items_of_different_lengths(toy):
    short = dict(toy[0], id="short", imu=toy[0]["imu"][:100])
    with pytest.raises(ValueError, match=r"imu of the items \['short', 'toy-0-00001'\]"):
        collate_instructions([short, toy[1]])
    with pytest.raises(ValueError, match="empty"):
        collate_instructions([])


def test_cached_items_equal_fresh_ones_and_are_stored_as_uint8(toy):
    cached = CachedItems(toy)
    first, again = cached[2], cached[2]
    fresh = toy[2]
    for key in ("frames", "compared_frames", "imu", "compared_imu"):
        assert torch.equal(first[key], fresh[key]) and torch.equal(again[key], fresh[key]), key
    assert cached._items[2]["frames"].dtype == torch.uint8
    first["frames"].zero_()  # a caller changing its copy does not change the cache
    assert torch.equal(cached[2]["frames"], fresh["frames"])


def test_datamodule_batches(toy):
    datamodule = InstructionDataModule(train_set=toy, val_set=toy, test_set=toy, batch_size=4, seed=0)
    assert datamodule.model_kwargs() == {}
    batches = list(datamodule.train_dataloader())
    assert [len(b["instructions"]) for b in batches] == [4, 2]
    assert sorted(i for b in batches for i in b["ids"]) == [toy.id_of(i) for i in range(6)]
    assert [b["ids"] for b in datamodule.train_dataloader()] == [b["ids"] for b in batches]  # seeded order
    assert [i for b in datamodule.val_dataloader() for i in b["ids"]] == [toy.id_of(i) for i in range(6)]


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(batch_size=0), "batch_size"), (dict(num_workers=-1), "num_workers"), (dict(val_set=[]), "val_set")],
)
def test_bad_datamodule_arguments(toy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        InstructionDataModule(**{"train_set": toy, "val_set": toy, "test_set": toy, **kwargs})
