"""The offline toy instruction set: determinism, prompt types, texts grounded in labels and IMU, JSONL export."""

import dataclasses

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from datamodules.instructions.schema import PROMPT_TYPES, read_jsonl
from datamodules.instructions.toy_set import ACTIVITY_TEXTS, ToyMultimodalDataset, virtual_imu
from motion.procedural import ProceduralMotionSet

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(frame_size=(48, 48))


@pytest.fixture(scope="module")
def toy() -> ToyMultimodalDataset:
    return ToyMultimodalDataset(num_clips=11, seed=0, **SMALL)  # one clip of every procedural activity


@pytest.fixture(scope="module")
def items(toy) -> list[dict]:
    return [toy[i] for i in range(len(toy))]


def peak_acc(imu: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(imu[:, :3].double(), dim=-1).max())


def test_item_shapes(items):
    item = items[0]
    assert item["frames"].shape == (16, 3, 48, 48) and item["frames"].dtype == torch.float32
    assert 0.0 <= float(item["frames"].min()) and float(item["frames"].max()) <= 1.0
    assert item["imu"].shape == (198, 6)  # 80 frames at 20 fps → ⌊79 · 50 / 20⌋ + 1 samples at 50 Hz
    assert torch.isfinite(item["imu"]).all()


def test_deterministic_by_seed(items):
    again = ToyMultimodalDataset(num_clips=11, seed=0, **SMALL)[4]
    for key, value in items[4].items():
        assert torch.equal(value, again[key]) if isinstance(value, torch.Tensor) else value == again[key]
    other = ToyMultimodalDataset(num_clips=11, seed=1, **SMALL)[4]
    assert not torch.equal(other["imu"], items[4]["imu"])


def test_every_prompt_type_and_activity(items):
    assert [item["prompt_type"] for item in items[:3]] == list(PROMPT_TYPES)
    assert {item["activity"] for item in items} == {"walking", "running", "stairs", "sit_stand", "lying", "jumping",
                                                   "falling"}


def test_responses_name_the_activity_and_the_risk(items):
    for item in items:
        response = item["response"]
        assert ACTIVITY_TEXTS[item["activity"]][0] in response
        unsafe = item["safety"] == "unsafe" or item.get("compared_safety") == "unsafe"
        assert ("unsafe" in response) == unsafe, response
        if item["prompt_type"] == "comparative":
            assert ACTIVITY_TEXTS[item["compared_activity"]][0] in response
            assert item["compared_frames"].shape == item["frames"].shape


def test_quoted_numbers_are_the_imus(items):
    description = next(item for item in items if item["prompt_type"] == "description")
    assert f"peaks at {peak_acc(description['imu']):.1f} m/s²" in description["response"]
    comparative = next(item for item in items if item["prompt_type"] == "comparative")
    first, second = peak_acc(comparative["imu"]), peak_acc(comparative["compared_imu"])
    assert f"{first:.1f} m/s² in the first and {second:.1f} m/s² in the second" in comparative["response"]
    assert f"so the {'first' if first > second else 'second'} moves" in comparative["response"]


def test_fall_is_unsafe(items):
    fall = items[10]  # fall_sideways, a causal / counterfactual item
    assert (fall["activity"], fall["safety"], fall["prompt_type"]) == ("falling", "unsafe", "causal_counterfactual")
    assert "This is unsafe: a fall can injure" in fall["response"] and "caught their balance" in fall["response"]


def test_jsonl_export_round_trip(tmp_path, toy, items):
    path = tmp_path / "toy.jsonl"
    assert toy.write_jsonl(path, frames_dir=tmp_path / "frames", limit=3) == 3
    examples = read_jsonl(path)
    assert [e.id for e in examples] == [toy.id_of(i) for i in range(3)]
    for index, example in enumerate(examples):
        assert dataclasses.replace(example, clip=dataclasses.replace(example.clip, video=None),
                                   compared_with=None if example.compared_with is None else
                                   dataclasses.replace(example.compared_with, video=None)) == toy.example(index)
        assert (example.instruction, example.response) == (items[index]["instruction"], items[index]["response"])
        # The virtual-IMU spec re-simulates the item's IMU exactly.
        assert torch.equal(virtual_imu(example.clip.imu), items[index]["imu"])
    # The frame folders hold the item's frames as PNGs, referenced relative to the JSONL's folder.
    folder = tmp_path / examples[0].clip.video
    assert examples[0].clip.video == "frames/toy-0-clip00000" and len(list(folder.glob("*.png"))) == 16
    png = np.round(imread(folder / "05.png")[..., :3] * 255).astype(np.uint8)
    assert np.array_equal(png, np.round(items[0]["frames"][5].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert (tmp_path / examples[2].compared_with.video).is_dir()
    assert toy.write_jsonl(path, limit=2) == 2 and len(read_jsonl(path)) == 2  # replaced, not appended


def test_extra_clips_follow_the_procedural_ones():
    clip = ProceduralMotionSet(num_clips=1, seed=5)[0]
    stumble = dataclasses.replace(clip, activity="stumbling", safety="unsafe", caption="cmu_104_13 0.00–4.00 s")
    toy = ToyMultimodalDataset(num_clips=2, seed=0, extra_clips=[stumble], prompt_types=["description"], **SMALL)
    item, example = toy[2], toy.example(2)
    assert len(toy) == 3 and (item["activity"], item["safety"]) == ("stumbling", "unsafe")
    assert "stumbling" in item["response"] and "unsafe" in item["response"]
    assert (example.clip.imu.motion_source, example.clip.imu.clip_id) == ("bvh", "index=0,caption=cmu_104_13 0.00–4.00 s")
    with pytest.raises(ValueError, match="motion_source 'bvh' cannot be re-simulated"):
        virtual_imu(example.clip.imu)


def test_bad_inputs():
    for kwargs, match in ((dict(num_clips=1), "comparative"), (dict(num_clips=0), "num_clips"),
                          (dict(prompt_types=["chat"]), "prompt_types"), (dict(view="top"), "view"),
                          (dict(frame_size=(8, 8)), "size"), (dict(sensor="nope"), "imu.sensor"),
                          (dict(extra_source="procedural"), "extra_source"), (dict(num_frames=0), "num_frames")):
        with pytest.raises(ValueError, match=match):
            ToyMultimodalDataset(**{"num_clips": 3, "seed": 0, **kwargs})
    fall = ProceduralMotionSet(num_clips=1, seed=5, activities=["fall_forward"])[0]
    with pytest.raises(ValueError, match="'fall_forward', not a shared class"):
        ToyMultimodalDataset(num_clips=3, seed=0, extra_clips=[fall])
    spec = ToyMultimodalDataset(num_clips=3, seed=0).example(0).clip.imu
    with pytest.raises(ValueError, match="clip_id"):
        virtual_imu(dataclasses.replace(spec, clip_id="index=0"))
