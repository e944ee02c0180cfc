"""Captions → activity categories, for evaluating text-to-motion per kind of activity.

The grouping of the seed paper (Häusler et al., "Refining Diffusion Models for Motion Synthesis with an
Acceleration Loss to Generate Realistic IMU Data", arXiv:2512.08859, §III-D): every caption goes to the
category whose description is nearest in a sentence-embedding space — all-MiniLM-L6-v2 (Reimers &
Gurevych, Sentence-BERT, EMNLP 2019; the sentence-transformers model card), i.e. mean pooling of the
token states over the attention mask, then L2 normalisation, so cosine similarity is a dot product — if
that similarity reaches τ = 0.45, else to "Other".

The paper's abstract calls running and jumping high-dynamic and sitting and standing low-dynamic; the
other four categories are placed by the same criterion (how fast the body moves): dancing and stair
climbing with the high-dynamic group, lying and walking with the low-dynamic one. The description
sentences are ours (the paper names the categories only), written like HumanML3D captions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from networks.text_encoders import SentenceTextEncoder

CATEGORY_DESCRIPTIONS = {
    "Dancing": "a person dances",
    "Jumping": "a person jumps up and down",
    "Lying": "a person lies down on the ground",
    "Running": "a person runs",
    "Sitting": "a person sits down on a chair",
    "Stair climbing": "a person walks up or down the stairs",
    "Standing": "a person stands still",
    "Walking": "a person walks",
}
"""One HumanML3D-style sentence per category; its embedding stands for the category."""

CATEGORIES = tuple(CATEGORY_DESCRIPTIONS)
OTHER = "Other"
DEFAULT_THRESHOLD = 0.45
"""τ: the lowest cosine similarity at which a caption still joins its nearest category."""

HIGH_DYNAMIC = frozenset({"Dancing", "Jumping", "Running", "Stair climbing"})
LOW_DYNAMIC = frozenset({"Lying", "Sitting", "Standing", "Walking"})

MAX_TOKENS = 256
"""Longest token sequence embedded (all-MiniLM-L6-v2's max_seq_length); longer captions are truncated."""


def dynamic_group(category: str) -> str | None:
    """"high" or "low" for a category of `HIGH_DYNAMIC` / `LOW_DYNAMIC`, None for "Other"."""
    if category == OTHER:
        return None
    if category not in CATEGORY_DESCRIPTIONS:
        raise ValueError(f"category must be one of {CATEGORIES + (OTHER,)}, got {category!r}")
    return "high" if category in HIGH_DYNAMIC else "low"


def _check_captions(captions: Sequence[str]) -> list[str]:
    if isinstance(captions, str) or not all(isinstance(caption, str) for caption in captions):
        raise ValueError("captions must be a sequence of strings (wrap a single caption in a list)")
    return list(captions)


class CaptionCategorizer:
    """Assigns captions to `CATEGORIES` (or `OTHER`) by embedding similarity.

    Args:
        model_path: a local folder with a BERT-like sentence encoder (config, weights, tokenizer), e.g.
            `networks.text_encoders.default_minilm_path()`, or a Hugging Face hub id; loaded with AutoTokenizer / AutoModel.
        threshold: τ in [−1, 1]; a caption whose best similarity is below it is "Other".
        device: where the encoder runs.
        batch_size: captions embedded per forward pass.
    """

    def __init__(self, model_path: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
                 device: str | torch.device = "cpu", batch_size: int = 64):
        if not isinstance(model_path, (str, Path)) or not str(model_path):
            raise ValueError(f"model_path must be a folder or hub id, got {model_path!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {threshold!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
        try:
            self.encoder = SentenceTextEncoder(str(model_path), max_tokens=MAX_TOKENS, cache_size=0).to(device)
        except ValueError as error:
            raise ValueError(f"model_path {str(model_path)!r}: {error}") from None
        self.threshold = float(threshold)
        self.batch_size = batch_size
        self.category_embeddings = self.embed(list(CATEGORY_DESCRIPTIONS.values()))

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentence embeddings `[N, D]` float32 of unit L2 norm, on the encoder's device."""
        texts = _check_captions(texts)
        if not texts:
            return torch.zeros(0, self.encoder.embed_dim, device=self.encoder.device)
        return torch.cat([self.encoder(texts[start : start + self.batch_size]) for start in range(0, len(texts), self.batch_size)])

    def similarities(self, captions: Sequence[str]) -> torch.Tensor:
        """Cosine similarity `[N, len(CATEGORIES)]` of each caption to each category description (CPU)."""
        return (self.embed(captions) @ self.category_embeddings.T).cpu()

    def categorize(self, captions: Sequence[str]) -> list[str]:
        """The category of each caption: the most similar description's, or `OTHER` below the threshold."""
        best, index = self.similarities(captions).max(dim=-1)
        return [CATEGORIES[i] if score >= self.threshold else OTHER for score, i in zip(best.tolist(), index.tolist())]
