"""Tiny offline language models: byte-level BPE tokenizer and random LLaMA, saved and reloaded like LLaMA-3."""

import pytest
import torch

from networks.language_models import BOS_TOKEN, EOS_TOKEN, save_language_model, tiny_llama, train_bpe_tokenizer
from networks.mhia import from_pretrained_llm

pytestmark = pytest.mark.usefixtures("one_thread")

CORPUS = ["The person is walking. The wrist acceleration peaks at 12.3 m/s².",
          "The person is running: every stride lands hard.", "Nothing in the clip suggests a safety risk."] * 4


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(CORPUS, vocab_size=300)


def test_tokenizer_round_trips_any_text_and_is_deterministic(tokenizer):
    for text in (" The person is walking.", "ünseen wörds, 3.14159 rad/s and m/s² — ok?", "  two  spaces\nnewline"):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == text  # byte-level: nothing is unknown
    again = train_bpe_tokenizer(CORPUS, vocab_size=300)
    assert again.get_vocab() == tokenizer.get_vocab()
    assert (tokenizer.bos_token, tokenizer.eos_token) == (BOS_TOKEN, EOS_TOKEN)
    assert len(tokenizer) <= 300
    # Merges learned from the corpus: a frequent word is one token (with its leading space).
    assert len(tokenizer(" person", add_special_tokens=False).input_ids) == 1


def test_tiny_llama_is_seeded_and_reloads_like_a_hub_folder(tokenizer, tmp_path):
    llm = tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=3)
    assert llm.config.vocab_size == len(tokenizer) and llm.config.eos_token_id == tokenizer.eos_token_id
    twin = tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=3)
    other = tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=4)
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(llm.state_dict()[weight], twin.state_dict()[weight])
    assert not torch.equal(llm.state_dict()[weight], other.state_dict()[weight])
    state = torch.random.get_rng_state()
    tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global stream is left alone
    # initializer_range 0.2: weights of that std (LLaMA's 0.02 leaves a frozen random base no room).
    assert float(llm.state_dict()[weight].std()) == pytest.approx(0.2, rel=0.1)

    save_language_model(llm, tokenizer, tmp_path / "tiny")
    loaded, loaded_tokenizer = from_pretrained_llm(tmp_path / "tiny", bf16=False)
    ids = torch.tensor([tokenizer(" The person is walking.").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, llm.eval()(ids).logits, atol=0, rtol=0)
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(texts=[]), "texts"),
        (dict(texts=["a", 3]), "texts"),
        (dict(texts=CORPUS, vocab_size=100), "vocab_size"),
        (dict(texts=CORPUS, min_frequency=0), "min_frequency"),
    ],
)
def test_bad_tokenizer_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_bpe_tokenizer(kwargs.pop("texts"), **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_size=0), "hidden_size"),
        (dict(hidden_size=30, num_heads=4), "divisible"),
        (dict(num_layers=1.5), "num_layers"),
        (dict(initializer_range=0.0), "initializer_range"),
    ],
)
def test_bad_llama_arguments(tokenizer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_llama(tokenizer, **kwargs)
