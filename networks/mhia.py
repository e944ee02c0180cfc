"""MHIA: a causal LLM that answers instructions about an IMU clip (and optionally its video), LLaVA-style.

    imu    [B, T, 6]              -> imu_encoder            -> tokens [B, N_i, D_i]  ┐
    frames [B, F, 3, H, W]        -> video_encoder (frozen) -> its layers
                                     concatenated on the last axis [B, F, N, D_v]   ┘
                                  -> GHIFusion -> fused [B, N_i + F, D] + padding mask [B, N_i + F]
                                  -> projector Linear(D, H)–GELU–Linear(H, H) -> [B, N_i + F, H]
                                     (H = the LLM's embedding width)

    text, per sample:  [bos] prompt_template(media, instruction) [" " + response] [eos]
                       media = "<imu>" (when the sample has IMU tokens) + "<video>" (when it has video);
                       a sample about several clips (a comparison) gets this per clip, space-separated,
                       each clip encoded and fused on its own (`clips_per_sample`)
    embeddings:        the LLM's embeddings of the text, where the one `<imu>` row is replaced by the
                       sample's valid projected motion tokens and the one `<video>` row by its valid
                       projected frame queries; then padded (right for training, left for generation)
    loss:              the LLM's causal-LM loss on the response tokens and the EOS after them only

The fused tokens are spliced rather than prepended so the template decides where the media sit, and
padded fusion tokens (padded frames; a sample whose video is all padding gets no `<video>` at all) are
dropped, so samples of one batch carry different numbers of media tokens.

Special tokens added to the tokenizer (and the LLM's embedding matrix, resized):
- `<imu>`, `<video>`: placeholders; their embedding rows never reach the LLM (always replaced).
- `<pad>`: a pad token distinct from EOS (an existing pad token is kept when it differs from EOS).
  With EOS as pad, masking the padding by token id would mask the real EOS after each answer too, so
  the model never learns to stop, and a generated EOS could not be told from padding.
The new rows start as the mean of the existing rows (input and output embeddings alike), which is
deterministic, so a fresh model built from the same base LLM has the same rows; they stay frozen (the
LLM base is frozen entirely, only LoRA adapters train) and are not part of `trainable_state_dict`.
Nothing trains them, nor needs to: the inputs are replaced or masked, and generation forbids the three
tokens as outputs.

Trainable: the LoRA adapters (`peft`; every other LLM weight frozen), the IMU encoder (unless
`freeze_imu_encoder`), the GHI fusion and the projector. The video encoder keeps its own `frozen` flag
(frozen by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from networks.ghi import GHIFusion, GHIOutput
from networks.video_encoder import VideoEncoder

IMU_TOKEN = "<imu>"
VIDEO_TOKEN = "<video>"
PAD_TOKEN = "<pad>"
IGNORE_INDEX = -100
"""Label of positions without loss (the Hugging Face causal-LM loss ignores it)."""
DEFAULT_PROMPT_TEMPLATE = "{media}\nUSER: {instruction}\nASSISTANT:"
"""Prompt per sample; `{media}` becomes "<imu>", "<imu><video>" (or "<video>"), `{instruction}` the instruction.
The response follows after one space."""


@dataclass(frozen=True)
class LoRASettings:
    """LoRA adapters (Hu et al., 2021, arXiv:2106.09685) on the LLM: W x + (alpha / r) · B A x.

    r: rank; alpha: scale numerator; dropout: on the adapter input; target_modules: names of the
    LLM's linear layers that get adapters (LLaMA: "q_proj", "k_proj", "v_proj", "o_proj", ...).
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"lora.r must be a positive int, got {self.r!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise ValueError(f"lora.alpha must be > 0, got {self.alpha!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout!r}")
        modules = self.target_modules
        if isinstance(modules, str) or not isinstance(modules, Sequence) or not modules:
            raise ValueError(f"lora.target_modules must be a non-empty sequence of module names, got {modules!r}")
        if not all(isinstance(m, str) and m for m in modules):
            raise ValueError(f"lora.target_modules must hold non-empty str, got {modules!r}")
        object.__setattr__(self, "target_modules", tuple(modules))


@dataclass(frozen=True)
class MHIAOutput:
    """Output of `MHIA.forward`.

    loss: mean cross-entropy over the supervised tokens (responses and their EOS); None without responses.
    logits: `[B, L, V]` over the spliced sequence (L = text tokens − placeholders + media tokens, padded).
    labels: `[B, L]` next-token targets aligned with the inputs (IGNORE_INDEX where unsupervised;
        the LLM shifts them by one); None without responses.
    attention_mask: `[B, L]` 1 = real token, 0 = padding (right-padded).
    fused: the GHI fusion output the media tokens came from.
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    labels: torch.Tensor | None
    attention_mask: torch.Tensor
    fused: GHIOutput


class MHIA(nn.Module):
    """IMU (+ video) encoders, GHI fusion, projector and a LoRA-adapted causal LLM (module docstring).

    Args:
        imu_encoder: `[B, T, 6]` → (tokens `[B, N_i, fusion.imu_dim]`, pooled), e.g. `IMUPatchformer`.
        video_encoder: frames `[B, F, 3, H, W]` → `VideoFeatures`, its layers concatenated must have
            width `fusion.video_dim`; None: `video` is given as features `[B, F, N, fusion.video_dim]`
            (e.g. cached outputs of a frozen encoder), or not at all.
        fusion: the GHI fusion.
        llm: a Hugging Face causal LM (e.g. `LlamaForCausalLM`); changed in place (resized embeddings,
            LoRA layers injected, checkpointing) and wrapped by `peft.get_peft_model`.
        tokenizer: its tokenizer, with an EOS token; gains the special tokens in place.
        lora: `LoRASettings` or a mapping of its fields.
        freeze_imu_encoder: no gradients and eval mode for the IMU encoder (e.g. a pretrained one).
        gradient_checkpointing: recompute the LLM's blocks in the backward pass (memory for time).
        prompt_template: text before the response, with one `{media}` and one `{instruction}` field.
    """

    def __init__(
        self,
        *,
        imu_encoder: nn.Module,
        video_encoder: VideoEncoder | None = None,
        fusion: GHIFusion,
        llm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        lora: LoRASettings | Mapping = LoRASettings(),
        freeze_imu_encoder: bool = False,
        gradient_checkpointing: bool = False,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    ) -> None:
        super().__init__()
        if not isinstance(imu_encoder, nn.Module):
            raise ValueError(f"imu_encoder must be an nn.Module, got {type(imu_encoder).__name__}")
        if video_encoder is not None and not isinstance(video_encoder, VideoEncoder):
            raise ValueError(f"video_encoder must be a VideoEncoder or None, got {type(video_encoder).__name__}")
        if not isinstance(fusion, GHIFusion):
            raise ValueError(f"fusion must be a GHIFusion, got {type(fusion).__name__}")
        if not isinstance(llm, PreTrainedModel) or llm.get_input_embeddings() is None:
            raise ValueError(f"llm must be a Hugging Face causal LM (PreTrainedModel), got {type(llm).__name__}")
        if getattr(tokenizer, "eos_token_id", None) is None:
            raise ValueError("tokenizer must be a Hugging Face tokenizer with an eos_token")
        if isinstance(lora, Mapping):
            lora = LoRASettings(**lora)
        if not isinstance(lora, LoRASettings):
            raise ValueError(f"lora must be LoRASettings or a mapping of its fields, got {type(lora).__name__}")
        flags = (("freeze_imu_encoder", freeze_imu_encoder), ("gradient_checkpointing", gradient_checkpointing))
        for name, value in flags:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        if (
            not isinstance(prompt_template, str)
            or prompt_template.count("{media}") != 1
            or prompt_template.count("{instruction}") != 1
        ):
            raise ValueError(
                f"prompt_template must contain {{media}} and {{instruction}} once each, got {prompt_template!r}"
            )

        self.tokenizer = tokenizer
        self.prompt_template = prompt_template
        self.lora = lora
        self.freeze_imu_encoder = freeze_imu_encoder
        self.imu_encoder = imu_encoder
        if freeze_imu_encoder:
            imu_encoder.requires_grad_(False)
            imu_encoder.eval()
        self.video_encoder = video_encoder
        self.fusion = fusion

        _add_special_tokens(tokenizer, llm)
        self.imu_token_id = tokenizer.convert_tokens_to_ids(IMU_TOKEN)
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
        if gradient_checkpointing:
            # Non-reentrant: gradients reach the LoRA weights inside each recomputed block whether or not
            # the block's input requires a gradient; the reentrant variant needs it to (hence the usual
            # `enable_input_require_grads` hook for LoRA), which frozen text embeddings alone do not.
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        self.gradient_checkpointing = gradient_checkpointing
        config = peft.LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            task_type=peft.TaskType.CAUSAL_LM,
        )
        self.llm = peft.get_peft_model(llm, config)  # freezes every base weight
        hidden = llm.get_input_embeddings().embedding_dim
        self.projector = nn.Sequential(nn.Linear(fusion.dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    @classmethod
    def from_language_model(
        cls, *, language_model: tuple[PreTrainedModel, PreTrainedTokenizerBase], **kwargs
    ) -> MHIA:
        """`MHIA(llm=..., tokenizer=..., **kwargs)` from one (llm, tokenizer) pair, as `from_pretrained_llm`
        returns it: a config then loads both in one call."""
        if not isinstance(language_model, Sequence) or len(language_model) != 2:
            raise ValueError(f"language_model must be an (llm, tokenizer) pair, got {type(language_model).__name__}")
        llm, tokenizer = language_model
        return cls(llm=llm, tokenizer=tokenizer, **kwargs)

    def train(self, mode: bool = True) -> MHIA:
        super().train(mode)
        if self.freeze_imu_encoder:
            self.imu_encoder.eval()  # a frozen encoder must not switch dropout on
        return self

    # ------------------------------------------------------------------ text

    def build_batch(
        self,
        instructions: Sequence[str],
        responses: Sequence[str] | None = None,
        *,
        has_imu: bool | Sequence[bool] = True,
        has_video: bool | Sequence[bool] = False,
        clips_per_sample: Sequence[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Token ids of the prompts (and responses), placeholders not yet expanded, right-padded.

        Per sample: [bos] prompt [response tokens, eos]; bos only when the tokenizer has one, the
        response part only with `responses`. The prompt's `{media}` holds, per clip of the sample, one
        `<imu>` (where has_imu) followed by one `<video>` (where has_video); a sample's clips are
        separated by a space (e.g. "<imu><video> <imu><video>" for a comparison of two clips).

        Args:
            instructions: B instructions.
            responses: B responses (training), or None (prompts for generation).
            has_imu, has_video: per clip (or one bool for all): whether the clip gets the placeholder.
            clips_per_sample: B positive ints summing to the C clips, in order (the first clips belong to
                sample 0, ...); None: one clip per sample.

        Returns:
            input_ids `[B, L]` (pad id after the end), attention_mask `[B, L]` (1 = token), and with
            responses labels `[B, L]`: the response tokens and the EOS after them, IGNORE_INDEX elsewhere
            (bos, prompt, placeholders, padding).
        """
        batch = self._check_texts("instructions", instructions, None)
        if responses is not None:
            self._check_texts("responses", responses, batch)
        clips = _clip_spans(clips_per_sample, batch)
        has_imu = _per_sample("has_imu", has_imu, clips[-1].stop)
        has_video = _per_sample("has_video", has_video, clips[-1].stop)
        if not all(i or v for i, v in zip(has_imu, has_video)):
            raise ValueError("has_imu / has_video leave a clip with neither modality")
        tok = self.tokenizer
        media = [
            " ".join(IMU_TOKEN * has_imu[c] + VIDEO_TOKEN * has_video[c] for c in range(span.start, span.stop))
            for span in clips
        ]
        prompts = [self.prompt_template.format(media=m, instruction=text) for m, text in zip(media, instructions)]
        bos = [] if tok.bos_token_id is None else [tok.bos_token_id]
        prompt_ids = [bos + ids for ids in tok(prompts, add_special_tokens=False)["input_ids"]]
        if responses is None:
            answer_ids = [[] for _ in prompt_ids]
        else:
            answers = tok([" " + r for r in responses], add_special_tokens=False)["input_ids"]
            answer_ids = [ids + [tok.eos_token_id] for ids in answers]
        length = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids))
        input_ids = torch.full((batch, length), tok.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        for b, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
            n = len(prompt) + len(answer)
            input_ids[b, :n] = torch.tensor(prompt + answer)
            attention_mask[b, :n] = 1
            labels[b, len(prompt) : n] = torch.tensor(answer, dtype=torch.long)
        out = {"input_ids": input_ids, "attention_mask": attention_mask}
        if responses is not None:
            out["labels"] = labels
        return out

    def _check_texts(self, name: str, texts: Sequence[str], batch: int | None) -> int:
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
            raise ValueError(f"{name} must be a non-empty list of str, got {type(texts).__name__}")
        if batch is not None and len(texts) != batch:
            raise ValueError(f"{name} must hold one entry per sample ({batch}), got {len(texts)}")
        specials = {IMU_TOKEN, VIDEO_TOKEN, *self.tokenizer.all_special_tokens}
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"{name}[{i}] must be a str, got {type(text).__name__}")
            found = [s for s in specials if s in text]
            if found:
                raise ValueError(f"{name}[{i}] contains the special token(s) {sorted(found)}")
        return len(texts)

    # ----------------------------------------------------------------- media

    def encode(
        self,
        *,
        imu: torch.Tensor | None,
        video: torch.Tensor | None = None,
        video_padding_mask: torch.Tensor | None = None,
    ) -> GHIOutput:
        """Encoders and fusion: imu `[B, T, 6]`, video frames `[B, F, 3, H, W]` (features `[B, F, N,
        video_dim]` without a video encoder), video_padding_mask `[B, F]` (True = padded frame) → `GHIOutput`."""
        tokens = None
        if imu is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_imu_encoder):
                tokens = self.imu_encoder(imu)[0]
        if video is not None and self.video_encoder is not None:
            video = torch.cat(self.video_encoder(video).layers, dim=-1)
        return self.fusion(imu=tokens, video=video, video_padding_mask=video_padding_mask)

    def embed(
        self,
        batch: Mapping[str, torch.Tensor],
        fused: GHIOutput,
        *,
        left_pad: bool = False,
        clips_per_sample: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Splice the projected media tokens into the text embeddings of `build_batch`'s output.

        The fusion output holds one row per clip (`clips_per_sample` as in `build_batch`). A sample's
        placeholders, in order, take its clips' media in order: the `<imu>` of a clip becomes the clip's
        valid projected motion tokens (`fused.tokens[c, :N_i]` where not padded), its `<video>` the clip's
        valid projected frame queries; everything else is the LLM's embedding of the text. Padding (with
        the pad token's embedding) goes right, or left for generation, which continues every row from
        its last position.

        Returns:
            inputs_embeds `[B, L, H]` (the LLM's dtype), attention_mask `[B, L]`, labels `[B, L]`
            (IGNORE_INDEX at media tokens and padding; None when `batch` has none).

        Raises:
            ValueError: the placeholders of a sample do not match its clips' modalities.
        """
        embedding = self.llm.get_input_embeddings()
        device, dtype = embedding.weight.device, embedding.weight.dtype
        input_ids = batch["input_ids"].to(device)
        valid = batch["attention_mask"].to(device).bool()
        labels = batch.get("labels")
        labels = torch.full_like(input_ids, IGNORE_INDEX) if labels is None else labels.to(device)
        text = embedding(input_ids)
        media = self.projector(fused.tokens).to(dtype)
        n_imu = fused.num_imu_tokens
        keep = ~fused.padding_mask
        # Which clips have IMU / video tokens, read once (not one device sync per clip and modality).
        has_imu, has_video = keep[:, :n_imu].any(dim=1).tolist(), keep[:, n_imu:].any(dim=1).tolist()

        rows = []
        for b, span in enumerate(_clip_spans(clips_per_sample, input_ids.shape[0])):
            inserts = []
            for c in range(span.start, span.stop):
                if has_imu[c]:
                    inserts.append((self.imu_token_id, media[c, :n_imu][keep[c, :n_imu]]))
                if has_video[c]:
                    inserts.append((self.video_token_id, media[c, n_imu:][keep[c, n_imu:]]))
            ids, row_text, row_labels = input_ids[b][valid[b]], text[b][valid[b]], labels[b][valid[b]]
            positions = torch.nonzero((ids == self.imu_token_id) | (ids == self.video_token_id)).flatten()
            placeholders = ids[positions].tolist()
            positions = positions.tolist()
            if placeholders != [token for token, _ in inserts]:
                raise ValueError(f"sample {b}: its placeholders do not match its clips' IMU/video tokens")
            embeds, targets, start = [], [], 0
            for position, (_, inserted) in zip(positions, inserts):
                embeds += [row_text[start:position], inserted]
                targets += [row_labels[start:position], ids.new_full((len(inserted),), IGNORE_INDEX)]
                start = position + 1
            rows.append((torch.cat(embeds + [row_text[start:]]), torch.cat(targets + [row_labels[start:]])))

        length = max(len(row) for row, _ in rows)
        inputs_embeds = embedding.weight[self.tokenizer.pad_token_id].expand(len(rows), length, -1).clone()
        attention_mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        spliced_labels = torch.full_like(attention_mask, IGNORE_INDEX)
        for b, (row, targets) in enumerate(rows):
            span = slice(length - len(row), length) if left_pad else slice(0, len(row))
            inputs_embeds[b, span] = row
            attention_mask[b, span] = 1
            spliced_labels[b, span] = targets
        return inputs_embeds, attention_mask, spliced_labels if "labels" in batch else None

    def _prepare(self, instructions, responses, imu, video, video_padding_mask, clips_per_sample, *, left_pad: bool):
        """Fusion output and `embed`'s (inputs_embeds, attention_mask, labels); placeholders per clip from
        the modalities the fusion output has for it."""
        fused = self.encode(imu=imu, video=video, video_padding_mask=video_padding_mask)
        batch = self._check_texts("instructions", instructions, None)
        if _clip_spans(clips_per_sample, batch)[-1].stop != fused.tokens.shape[0]:
            what = "one clip per sample" if clips_per_sample is None else f"clips_per_sample {list(clips_per_sample)}"
            raise ValueError(f"instructions: {batch} samples with {what} do not match the "
                             f"{fused.tokens.shape[0]} clips of imu/video")
        present = ~fused.padding_mask
        n_imu = fused.num_imu_tokens
        texts = self.build_batch(
            instructions,
            responses,
            has_imu=present[:, :n_imu].any(dim=1).tolist(),
            has_video=present[:, n_imu:].any(dim=1).tolist(),
            clips_per_sample=clips_per_sample,
        )
        return fused, self.embed(texts, fused, left_pad=left_pad, clips_per_sample=clips_per_sample)

    # ------------------------------------------------------------------- LLM

    def forward(
        self,
        *,
        imu: torch.Tensor | None,
        video: torch.Tensor | None = None,
        instructions: Sequence[str],
        responses: Sequence[str] | None = None,
        video_padding_mask: torch.Tensor | None = None,
        clips_per_sample: Sequence[int] | None = None,
    ) -> MHIAOutput:
        """Teacher-forced pass: loss on the responses (and their EOS) only, logits over the spliced sequence.

        Args:
            imu: `[C, T, 6]` acc xyz (m/s²), gyro xyz (rad/s), as the IMU encoder expects, of the C clips
                (C = B with one clip per sample); None = video only.
            video: frames `[C, F, 3, H, W]` RGB in [0, 1] (features `[C, F, N, video_dim]` without a video
                encoder), or None.
            instructions: B instructions.
            responses: B target answers, or None (no loss).
            video_padding_mask: `[C, F]` bool, True = padded frame; a clip with every frame padded
                gets no `<video>`.
            clips_per_sample: B positive ints summing to C (e.g. 2 for a comparison of two clips), the
                clips in sample order; None: one clip per sample.
        """
        fused, (inputs_embeds, attention_mask, labels) = self._prepare(
            instructions, responses, imu, video, video_padding_mask, clips_per_sample, left_pad=False
        )
        out = self.llm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, use_cache=False)
        return MHIAOutput(
            loss=out.loss, logits=out.logits, labels=labels, attention_mask=attention_mask, fused=fused
        )

    @torch.no_grad()
    def generate(
        self,
        *,
        imu: torch.Tensor | None,
        video: torch.Tensor | None = None,
        instructions: Sequence[str],
        max_new_tokens: int = 64,
        video_padding_mask: torch.Tensor | None = None,
        clips_per_sample: Sequence[int] | None = None,
    ) -> list[str]:
        """Greedy answers, one str per sample (special tokens dropped, whitespace stripped).

        Decoding stops at EOS or after max_new_tokens; `<imu>`, `<video>` and `<pad>` are never
        generated. Dropout is the caller's business: call `.eval()` for deterministic answers.
        Inputs as in `forward`.
        """
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        _, (inputs_embeds, attention_mask, _) = self._prepare(
            instructions, None, imu, video, video_padding_mask, clips_per_sample, left_pad=True
        )
        tok = self.tokenizer
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            suppress_tokens=[self.imu_token_id, self.video_token_id, tok.pad_token_id],
        )
        # Given only inputs_embeds, a decoder-only model returns just the new tokens.
        new_tokens = self.llm.generate(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, generation_config=config
        )
        return [text.strip() for text in tok.batch_decode(new_tokens, skip_special_tokens=True)]

    # ------------------------------------------------------------ checkpoints

    def trainable_keys(self) -> set[str]:
        """State keys of the LLM's trainable parameters (LoRA) and the full state of every other part
        with a trainable parameter (so its buffers, e.g. norm statistics, come along)."""
        keys = {f"llm.{name}" for name, p in self.llm.named_parameters() if p.requires_grad}
        state = self.state_dict(keep_vars=True)
        for prefix in ("imu_encoder", "video_encoder", "fusion", "projector"):
            module = getattr(self, prefix)
            if module is not None and any(p.requires_grad for p in module.parameters()):
                keys |= {key for key in state if key.startswith(prefix + ".")}
        return keys

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained weights only (LoRA adapters, IMU encoder unless frozen, fusion, projector, and
        the video encoder when not frozen), detached and sharing storage like `state_dict()`.

        Frozen parts (the base LLM with its new token rows, a frozen encoder) come from the same
        configuration, base LLM and encoder checkpoints when rebuilding.
        """
        keys = self.trainable_keys()
        return {key: value for key, value in self.state_dict().items() if key in keys}

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load `trainable_state_dict()` of a model built with the same configuration and base LLM.

        Raises:
            ValueError: keys missing or unexpected, or shapes that differ.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping of tensors, got {type(state).__name__}")
        expected = self.trainable_keys()
        own = self.state_dict()
        missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
        mismatched = sorted(k for k in expected & state.keys() if tuple(state[k].shape) != tuple(own[k].shape))
        if missing or unexpected or mismatched:
            raise ValueError(
                f"state does not match this model's trainable weights: missing keys {missing}, "
                f"unexpected keys {unexpected}, shape mismatches {mismatched}"
            )
        self.load_state_dict(dict(state), strict=False)  # not strict: the frozen weights are not in it


def _per_sample(name: str, value: bool | Sequence[bool], batch: int) -> list[bool]:
    if isinstance(value, bool):
        return [value] * batch
    if not isinstance(value, Sequence) or len(value) != batch or not all(isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must be a bool or {batch} bools, got {value!r}")
    return list(value)


def _clip_spans(clips_per_sample: Sequence[int] | None, batch: int) -> list[range]:
    """The clip indices of each of the `batch` samples (one clip each when `clips_per_sample` is None)."""
    if clips_per_sample is None:
        return [range(b, b + 1) for b in range(batch)]
    counts = list(clips_per_sample) if isinstance(clips_per_sample, Sequence) else None
    if counts is None or len(counts) != batch or not all(
        isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in counts
    ):
        raise ValueError(f"clips_per_sample must be {batch} positive ints, got {clips_per_sample!r}")
    starts = [sum(counts[:b]) for b in range(batch)]
    return [range(start, start + k) for start, k in zip(starts, counts)]


def _add_special_tokens(tokenizer: PreTrainedTokenizerBase, llm: PreTrainedModel) -> None:
    """Add `<imu>`, `<video>` (and `<pad>` unless a pad token other than EOS exists); resize `llm` to fit.

    Each new token's input and output embedding rows start as the mean of the rows that existed
    (module docstring: deterministic, so a rebuilt model matches).
    """
    first_new = len(tokenizer)
    # Special: never split inside text, and dropped when decoding with skip_special_tokens.
    tokenizer.add_tokens([IMU_TOKEN, VIDEO_TOKEN], special_tokens=True)
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    new_ids = list(range(first_new, len(tokenizer)))
    old_rows = llm.get_input_embeddings().num_embeddings
    if len(tokenizer) > old_rows:
        llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    output = llm.get_output_embeddings()
    # Once each: tied input and output embeddings are one tensor.
    weights = {id(w): w for w in (llm.get_input_embeddings().weight, getattr(output, "weight", None)) if w is not None}
    with torch.no_grad():
        for weight in weights.values():
            weight[new_ids] = weight[:old_rows].float().mean(dim=0).to(weight.dtype)


def from_pretrained_llm(
    path_or_hub_id: str | Path, *, bf16: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM (e.g. `LlamaForCausalLM` for LLaMA-3-8B) and its tokenizer from a directory or hub id.

    Args:
        path_or_hub_id: folder holding the Hugging Face config, weights and tokenizer, or a hub id.
        bf16: load the weights in bfloat16 (an 8B model: ~16 GB instead of ~32 GB); else float32.

    Raises:
        ValueError: nothing loadable there.
    """
    if not isinstance(bf16, bool):
        raise ValueError(f"bf16 must be a bool, got {bf16!r}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_hub_id))
        llm = AutoModelForCausalLM.from_pretrained(
            str(path_or_hub_id), dtype=torch.bfloat16 if bf16 else torch.float32
        )
    except (OSError, ValueError) as error:
        raise ValueError(
            f"path_or_hub_id {str(path_or_hub_id)!r}: no loadable causal LM and tokenizer ({error})"
        ) from None
    return llm, tokenizer
