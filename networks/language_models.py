"""Small causal language models built offline: a byte-level BPE tokenizer trained on a corpus and a
randomly initialised LLaMA sized for CPU, saved in the Hugging Face folder layout so that
`networks.mhia.from_pretrained_llm` loads them exactly like a real LLaMA-3 folder.

They stand in for LLaMA-3-8B in tests and in the toy quickstart (no weights can be downloaded here). The
tokenizer is byte-level BPE like LLaMA-3's: every string is encodable and decoding gives the text back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"


def train_bpe_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 / LLaMA-3 style, no prefix space) trained on `texts`.

    Args:
        texts: the corpus; the same texts give the same tokenizer.
        vocab_size: at most this many tokens: the 256 byte symbols, `<s>`, `</s>` and the merges.
        min_frequency: a pair becomes a merge only when it occurs at least this often.
    """
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty iterable of str")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 258:
        raise ValueError(f"vocab_size must be an int ≥ 258 (256 bytes + <s> + </s>), got {vocab_size!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be a positive int, got {min_frequency!r}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN)


def tiny_llama(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_positions: int = 512,
    initializer_range: float = 0.2,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised `LlamaForCausalLM` over `tokenizer`'s vocabulary, weights from `seed`.

    initializer_range: std of the initial weights. LLaMA's 0.02 makes the logits of a frozen random
    model too flat for LoRA to fit anything (they are bounded by the lm_head row norms, ≈ 0.02·√hidden);
    0.2 leaves room.
    """
    for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads),
                        ("intermediate_size", intermediate_size), ("max_positions", max_positions)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
    if not initializer_range > 0:
        raise ValueError(f"initializer_range must be > 0, got {initializer_range!r}")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def save_language_model(llm: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> Path:
    """Write the model (config + safetensors) and tokenizer to `folder` in the Hugging Face layout."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
