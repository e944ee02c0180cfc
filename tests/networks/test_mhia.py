import io

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from networks.ghi import GHIFusion
from networks.mhia import (
    IGNORE_INDEX,
    IMU_TOKEN,
    MHIA,
    PAD_TOKEN,
    VIDEO_TOKEN,
    LoRASettings,
    from_pretrained_llm,
)
from networks.patchformer import IMUPatchformer
from networks.video_encoder import TimmViTVideoEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = (
    "<unk> <s> </s> USER: ASSISTANT: what is the person doing ? describe motion "
    "walking running sitting up down stairs slowly quickly"
).split()
ID = {w: i for i, w in enumerate(WORDS)}
B, T, FRAMES, IMU_TOKENS = 3, 32, 2, 4  # T = 32 samples in 8-sample patches: N_i = 4 motion tokens
HIDDEN, DIM = 32, 16
ASK = "what is the person doing ?"


def _tokenizer(**special) -> PreTrainedTokenizerFast:
    words = Tokenizer(WordLevel(ID, unk_token="<unk>"))
    words.pre_tokenizer = WhitespaceSplit()
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", **special}
    return PreTrainedTokenizerFast(tokenizer_object=words, **special)


def _llm(seed: int = 0, **config) -> LlamaForCausalLM:
    """A 2-layer LLaMA of width 32. Weights of std 0.2 rather than LLaMA's 0.02: with the base frozen, the
    logits are bounded by the lm_head row norms (≈ 0.02·√32 at 0.02), too small for any fit."""
    torch.manual_seed(seed)
    cfg = dict(
        vocab_size=len(WORDS), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128, initializer_range=0.2,
    )
    return LlamaForCausalLM(LlamaConfig(**{**cfg, **config}))


def _model(*, seed: int = 0, base_seed: int = 0, video: bool = True, **kwargs) -> MHIA:
    """Tiny MHIA, trainable parts from `seed`, frozen ones from `base_seed`: a 1-layer patchformer (N_i = 4
    tokens of width 16), a 1-block ViT on 32×32 frames (4 tokens of width 16 per frame), a 1-block GHI of
    width 16 and a 2-layer LLaMA of width 32."""
    llm, tokenizer = kwargs.pop("llm", None) or _llm(base_seed), kwargs.pop("tokenizer", None) or _tokenizer()
    video_encoder = None
    if video:  # frozen, like the base LLM: `base_seed` stands for their pretrained weights
        torch.manual_seed(base_seed)
        video_encoder = TimmViTVideoEncoder(
            model_name="vit_tiny_patch16_224",
            model_kwargs=dict(img_size=32, patch_size=16, depth=1, embed_dim=DIM, num_heads=2),
        )
    torch.manual_seed(seed)
    imu_encoder = IMUPatchformer(
        in_channels=6, patch_len=8, stride=8, d_model=DIM, num_layers=1, num_heads=2, ff=32, dropout=0.0,
        max_patches=8, channel_dim=4,
    )
    fusion = GHIFusion(dim=DIM, num_heads=2, num_blocks=1, imu_dim=DIM, video_dim=DIM, dropout=0.0, max_frames=4)
    kwargs.setdefault("lora", LoRASettings(dropout=0.0))  # deterministic training steps
    return MHIA(
        imu_encoder=imu_encoder, video_encoder=video_encoder, fusion=fusion, llm=llm, tokenizer=tokenizer, **kwargs
    )


def _inputs(seed: int = 0, b: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, T, 6, generator=g), torch.rand(b, FRAMES, 3, 32, 32, generator=g)


def _optimizer(model: MHIA, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)


def _randomize_lora_b(model: MHIA, seed: int) -> None:
    """LoRA's B starts at zero, which makes every gradient of A zero; random B exercises both."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.llm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


# --- special tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tie", [False, True])
def test_special_tokens_and_resized_embeddings(tie):
    old = _llm(tie_word_embeddings=tie)
    old_in = old.get_input_embeddings().weight.detach().clone()
    old_out = old.get_output_embeddings().weight.detach().clone()
    model = _model(llm=old)
    tok = model.tokenizer
    assert tok.pad_token == PAD_TOKEN and tok.pad_token_id != tok.eos_token_id
    new_ids = [model.imu_token_id, model.video_token_id, tok.pad_token_id]
    assert sorted(new_ids) == [len(WORDS), len(WORDS) + 1, len(WORDS) + 2]
    assert tok(f"a{IMU_TOKEN}{VIDEO_TOKEN}", add_special_tokens=False).input_ids[1:] == new_ids[:2]  # never split
    llm = model.llm.get_base_model()
    emb_in, emb_out = llm.get_input_embeddings().weight, llm.get_output_embeddings().weight
    assert emb_in.shape == emb_out.shape == (len(tok), HIDDEN)
    assert (emb_in is emb_out) == tie
    # Old rows kept, new rows = mean of the old ones (deterministic, so a rebuilt model matches).
    torch.testing.assert_close(emb_in[: len(WORDS)], old_in[: len(WORDS)], atol=0, rtol=0)
    torch.testing.assert_close(emb_out[: len(WORDS)], old_out[: len(WORDS)], atol=0, rtol=0)
    for i in new_ids:
        torch.testing.assert_close(emb_in[i], old_in.mean(dim=0), atol=1e-6, rtol=0)
        torch.testing.assert_close(emb_out[i], old_out.mean(dim=0), atol=1e-6, rtol=0)


def test_eos_as_pad_is_replaced_and_a_distinct_pad_kept():
    assert _model(tokenizer=_tokenizer(pad_token="</s>")).tokenizer.pad_token == PAD_TOKEN
    kept = _model(tokenizer=_tokenizer(pad_token="<unk>")).tokenizer  # any pad token other than EOS is kept
    assert kept.pad_token == "<unk>" and kept.pad_token_id == ID["<unk>"]


# --- trainable parameters ------------------------------------------------------------------------------------


def test_only_lora_adapters_train_in_the_llm():
    model = _model()
    trainable = [n for n, p in model.llm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # 2 layers × (q_proj, v_proj) × (A [r, in], B [out, r]).
    shapes = {n: tuple(p.shape) for n, p in model.llm.named_parameters() if p.requires_grad}
    assert len(shapes) == 8
    assert all(s == ((8, HIDDEN) if "lora_A" in n else (HIDDEN, 8)) for n, s in shapes.items())
    for part in (model.imu_encoder, model.fusion, model.projector):
        assert all(p.requires_grad for p in part.parameters())
    assert not any(p.requires_grad for p in model.video_encoder.parameters())  # frozen by default
    assert isinstance(model.projector[1], nn.GELU)
    assert model.projector[0].in_features == DIM and model.projector[2].out_features == HIDDEN

    frozen = _model(freeze_imu_encoder=True).train()
    assert not any(p.requires_grad for p in frozen.imu_encoder.parameters())
    assert not frozen.imu_encoder.training and frozen.fusion.training


def test_optimizer_step_leaves_base_weights_unchanged():
    model = _model().train()
    base = {n: p.detach().clone() for n, p in model.llm.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    imu, frames = _inputs()
    optimizer = _optimizer(model, 1e-2)
    model(imu=imu, video=frames, instructions=[ASK] * B, responses=["walking", "running", "sitting"]).loss.backward()
    optimizer.step()
    for n, p in model.llm.named_parameters():
        if not p.requires_grad:
            torch.testing.assert_close(p, base[n], atol=0, rtol=0)
    changed = {n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, trained[n])}
    assert any("lora_B" in n for n in changed) and any(n.startswith("projector.") for n in changed)


# --- text batches, splicing, loss ----------------------------------------------------------------------------


def test_build_batch_by_hand():
    model = _model()
    imu_id, video_id, pad, bos, eos = model.imu_token_id, model.video_token_id, model.tokenizer.pad_token_id, 1, 2
    batch = model.build_batch([ASK, "describe motion"], ["walking", "running up stairs"], has_video=[True, False])
    prompt0 = [bos, imu_id, video_id] + [ID[w] for w in "USER: what is the person doing ? ASSISTANT:".split()]
    prompt1 = [bos, imu_id] + [ID[w] for w in "USER: describe motion ASSISTANT:".split()]
    answer0, answer1 = [ID["walking"], eos], [ID["running"], ID["up"], ID["stairs"], eos]
    row0, row1 = prompt0 + answer0, prompt1 + answer1
    length = max(len(row0), len(row1))  # 13 and 10 tokens
    assert batch["input_ids"].tolist() == [row0 + [pad] * (length - len(row0)), row1 + [pad] * (length - len(row1))]
    assert batch["attention_mask"].tolist() == [[1] * len(r) + [0] * (length - len(r)) for r in (row0, row1)]
    ignore = IGNORE_INDEX
    assert batch["labels"].tolist() == [
        [ignore] * len(prompt0) + answer0 + [ignore] * (length - len(row0)),
        [ignore] * len(prompt1) + answer1 + [ignore] * (length - len(row1)),
    ]
    prompts = model.build_batch([ASK], None, has_video=True)
    assert set(prompts) == {"input_ids", "attention_mask"} and prompts["input_ids"].tolist() == [prompt0]


def _capture_inputs_embeds(model: MHIA) -> dict:
    seen = {}

    def hook(module, args, kwargs):
        seen.update(inputs_embeds=kwargs["inputs_embeds"].detach(), attention_mask=kwargs["attention_mask"])

    model.llm.get_base_model().register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def test_media_tokens_sit_exactly_at_the_placeholders():
    model = _model().eval()
    seen = _capture_inputs_embeds(model)
    imu, frames = _inputs()
    # Sample 0: both frames; sample 1: frame 1 padded; sample 2: no video at all (no <video>).
    video_padding = torch.tensor([[False, False], [False, True], [True, True]])
    instructions = [ASK, "describe motion", ASK]
    with torch.no_grad():
        out = model(imu=imu, video=frames, instructions=instructions, responses=["walking", "up", "down"],
                    video_padding_mask=video_padding)
        media = model.projector(out.fused.tokens)
        text = model.build_batch(instructions, ["walking", "up", "down"], has_video=[True, True, False])
        words = model.llm.get_input_embeddings()(text["input_ids"])
    embeds = seen["inputs_embeds"]
    torch.testing.assert_close(out.attention_mask, seen["attention_mask"], atol=0, rtol=0)
    for b, frames_kept in enumerate([2, 1, 0]):
        n_text = int(text["attention_mask"][b].sum())
        n_media = IMU_TOKENS + frames_kept
        n = n_text - (2 if frames_kept else 1) + n_media
        assert out.attention_mask[b].tolist() == [1] * n + [0] * (embeds.shape[1] - n)  # right-padded
        # [bos] [<imu> → 4 motion tokens] [<video> → kept frame queries] [rest of the text]
        torch.testing.assert_close(embeds[b, 0], words[b, 0], atol=0, rtol=0)
        torch.testing.assert_close(embeds[b, 1 : 1 + IMU_TOKENS], media[b, :IMU_TOKENS], atol=0, rtol=0)
        video_rows = embeds[b, 1 + IMU_TOKENS : 1 + n_media]
        torch.testing.assert_close(video_rows, media[b, IMU_TOKENS : IMU_TOKENS + frames_kept], atol=0, rtol=0)
        rest = 2 if frames_kept else 1  # text position after the placeholders
        torch.testing.assert_close(embeds[b, 1 + n_media : n], words[b, 1 + rest : n_text], atol=0, rtol=0)
        pad_row = model.llm.get_input_embeddings().weight[model.tokenizer.pad_token_id]
        assert torch.equal(embeds[b, n:], pad_row.expand(embeds.shape[1] - n, -1))
        # Labels: ignored up to the answer, then the answer and EOS, then ignored padding.
        answer = text["labels"][b][text["labels"][b] != IGNORE_INDEX].tolist()
        assert out.labels[b].tolist() == [IGNORE_INDEX] * (n - len(answer)) + answer + [IGNORE_INDEX] * (
            embeds.shape[1] - n
        )


def test_a_comparison_splices_each_clips_media_in_order():
    model = _model().eval()
    seen = _capture_inputs_embeds(model)
    imu, frames = _inputs()  # 3 clips: sample 0 compares clips 0 and 1, sample 1 is about clip 2
    instructions = ["describe motion", ASK]
    with torch.no_grad():
        out = model(imu=imu, video=frames, instructions=instructions, responses=["walking", "up"],
                    clips_per_sample=[2, 1])
        media = model.projector(out.fused.tokens)
        text = model.build_batch(instructions, ["walking", "up"], has_video=True, clips_per_sample=[2, 1])
        words = model.llm.get_input_embeddings()(text["input_ids"])
    ids = text["input_ids"][0].tolist()
    imu_id, video_id = model.imu_token_id, model.video_token_id
    assert ids[1:5] == [imu_id, video_id, imu_id, video_id]  # "<imu><video> <imu><video>" (" " is no word)
    per_clip = IMU_TOKENS + FRAMES
    embeds = seen["inputs_embeds"]
    torch.testing.assert_close(embeds[0, 1 : 1 + per_clip], media[0], atol=0, rtol=0)
    torch.testing.assert_close(embeds[0, 1 + per_clip : 1 + 2 * per_clip], media[1], atol=0, rtol=0)
    torch.testing.assert_close(embeds[0, 1 + 2 * per_clip], words[0, 5], atol=0, rtol=0)
    torch.testing.assert_close(embeds[1, 1 : 1 + per_clip], media[2], atol=0, rtol=0)
    # Each clip is fused on its own: clip 2 alone gives sample 1 the same media tokens.
    with torch.no_grad():
        alone = model(imu=imu[2:], video=frames[2:], instructions=[ASK], responses=["up"])
    torch.testing.assert_close(model.projector(alone.fused.tokens)[0], media[2], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="clips_per_sample"):
        model(imu=imu, video=frames, instructions=instructions, clips_per_sample=[1, 1])
    with pytest.raises(ValueError, match="clips_per_sample"):
        model(imu=imu, video=frames, instructions=instructions, clips_per_sample=[3, 0])
    with pytest.raises(ValueError, match="sample 0"):
        model.embed(model.build_batch(instructions, has_video=False, clips_per_sample=[2, 1]), out.fused,
                    clips_per_sample=[2, 1])


def test_loss_counts_only_answer_tokens():
    model = _model().train()
    imu, frames = _inputs(seed=1)
    responses = ["walking slowly", "up", "sitting down quickly"]
    out = model(imu=imu, video=frames, instructions=[ASK, "describe motion", ASK], responses=responses)
    # Each answer's words plus its EOS are supervised: 3 + 2 + 4 targets.
    assert int((out.labels != IGNORE_INDEX).sum()) == 9
    logits, targets = out.logits[:, :-1], out.labels[:, 1:]
    supervised = targets != IGNORE_INDEX
    by_hand = nn.functional.cross_entropy(logits[supervised].float(), targets[supervised])
    torch.testing.assert_close(out.loss, by_hand, atol=1e-6, rtol=0)
    # No gradient reaches the logits of the prompt, placeholder, media or padding positions, so their
    # labels cannot matter.
    (grad,) = torch.autograd.grad(out.loss, out.logits)
    assert torch.all(grad[:, :-1][~supervised] == 0) and torch.all(grad[:, -1] == 0)
    assert torch.all(grad[:, :-1][supervised].abs().sum(dim=-1) > 0)


def test_gradient_checkpointing_gives_lora_the_same_gradients():
    imu, frames = _inputs(seed=2)
    grads, calls = [], []
    for checkpointing in (False, True):
        model = _model(gradient_checkpointing=checkpointing).train()
        _randomize_lora_b(model, seed=3)
        # Count the calls of a module inside the checkpointed block (the recomputation skips module hooks).
        count, mlp = [0], model.llm.get_base_model().model.layers[0].mlp
        mlp_forward = mlp.forward

        def counted(*args, mlp_forward=mlp_forward, count=count):
            count[0] += 1
            return mlp_forward(*args)

        mlp.forward = counted
        model(imu=imu, video=frames, instructions=[ASK] * B, responses=["walking", "up", "down"]).loss.backward()
        grads.append({n: p.grad for n, p in model.llm.named_parameters() if "lora_" in n})
        calls.append(count[0])
    assert calls == [1, 2]  # checkpointing recomputes the block in the backward pass
    assert len(grads[1]) == 8
    for name, grad in grads[1].items():
        assert grad is not None and grad.abs().max() > 0, name
        torch.testing.assert_close(grad, grads[0][name], atol=1e-6, rtol=1e-5)


# --- missing modalities, generation --------------------------------------------------------------------------


def test_missing_video_and_precomputed_features():
    imu, frames = _inputs(seed=4)
    for model in (_model(video=False), _model(video=True)):
        out = model(imu=imu, video=None, instructions=[ASK] * B, responses=["walking"] * B)
        assert out.fused.tokens.shape == (B, IMU_TOKENS, DIM) and torch.isfinite(out.loss)
        # bos, <imu> → 4 tokens, USER: + 6 instruction words + ASSISTANT:, answer, EOS
        assert out.attention_mask.sum(dim=1).tolist() == [1 + IMU_TOKENS + 8 + 2] * B
        out.loss.backward()
        answers = model.eval().generate(imu=imu, instructions=[ASK] * B, max_new_tokens=3)
        assert len(answers) == B and all(isinstance(a, str) and len(a.split()) <= 3 for a in answers)
    # Without a video encoder, `video` is taken as features [B, F, N, video_dim].
    features = torch.randn(B, FRAMES, 5, DIM, generator=torch.Generator().manual_seed(5))
    out = _model(video=False)(imu=imu, video=features, instructions=[ASK] * B)
    assert out.loss is None and out.labels is None and out.fused.tokens.shape == (B, IMU_TOKENS + FRAMES, DIM)
    # Video only.
    out = _model()(imu=None, video=frames, instructions=[ASK] * B, responses=["up"] * B)
    assert out.attention_mask.sum(dim=1).tolist() == [1 + FRAMES + 8 + 2] * B and torch.isfinite(out.loss)


def test_bf16_llm_gets_media_tokens_in_its_dtype():
    model = _model(llm=_llm().to(torch.bfloat16)).train()
    seen = _capture_inputs_embeds(model)
    imu, frames = _inputs(seed=11)
    out = model(imu=imu, video=frames, instructions=[ASK] * B, responses=["walking"] * B)
    assert seen["inputs_embeds"].dtype == torch.bfloat16 and out.fused.tokens.dtype == torch.float32
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.projector[0].weight.grad.abs().max() > 0


def test_batched_generation_matches_one_sample_at_a_time():
    model = _model().eval()
    _randomize_lora_b(model, seed=6)
    imu, frames = _inputs(seed=7, b=2)
    instructions = [ASK, "describe motion"]  # different lengths: left padding in the batch
    batched = model.generate(imu=imu, video=frames, instructions=instructions, max_new_tokens=6)
    single = [
        model.generate(imu=imu[i : i + 1], video=frames[i : i + 1], instructions=instructions[i : i + 1],
                       max_new_tokens=6)[0]
        for i in range(2)
    ]
    assert batched == single
    assert all(0 < len(s.split()) <= 6 for s in batched)
    assert not any(t in s for s in batched for t in (IMU_TOKEN, VIDEO_TOKEN, PAD_TOKEN, "</s>"))


def test_trainable_state_dict_round_trip_gives_identical_generations():
    model = _model(seed=0).train()
    _randomize_lora_b(model, seed=10)  # trained-looking adapters (a few real steps teach "EOS first": empty answers)
    imu, frames = _inputs(seed=8, b=2)
    optimizer = _optimizer(model, 1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        model(imu=imu, video=frames, instructions=[ASK] * 2, responses=["walking slowly", "up stairs"]).loss.backward()
        optimizer.step()
    model.eval()
    answers = model.generate(imu=imu, video=frames, instructions=[ASK, "describe motion"], max_new_tokens=5)
    assert all(answers)

    state = model.trainable_state_dict()
    assert all(("lora_" in k) if k.startswith("llm.") else k.split(".")[0] in {"imu_encoder", "fusion", "projector"}
               for k in state)
    assert sum(k.startswith("llm.") for k in state) == 8
    assert set(state) >= {f"fusion.{k}" for k in model.fusion.state_dict()}  # buffers come along
    buffer = io.BytesIO()
    torch.save(state, buffer)

    fresh = _model(seed=1).eval()  # same base LLM, other encoder / fusion / projector initialisation
    with torch.no_grad():
        before = fresh(imu=imu, video=frames, instructions=[ASK] * 2).logits
        reference = model(imu=imu, video=frames, instructions=[ASK] * 2).logits
    assert not torch.allclose(before, reference, atol=1e-3)
    buffer.seek(0)
    fresh.load_trainable_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(fresh(imu=imu, video=frames, instructions=[ASK] * 2).logits, reference,
                                   atol=1e-6, rtol=0)
    assert fresh.generate(imu=imu, video=frames, instructions=[ASK, "describe motion"], max_new_tokens=5) == answers

    assert not any(k.startswith("imu_encoder.") for k in _model(freeze_imu_encoder=True).trainable_state_dict())


def test_tiny_model_overfits_two_examples():
    model = _model(seed=0).train()
    imu, frames = _inputs(seed=9, b=2)
    responses = ["walking slowly", "running up stairs"]
    optimizer = _optimizer(model, 1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model(imu=imu, video=frames, instructions=[ASK] * 2, responses=responses).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.eval().generate(imu=imu, video=frames, instructions=[ASK] * 2, max_new_tokens=6) == responses


# --- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(r=0), "lora.r"),
        (dict(alpha=0.0), "lora.alpha"),
        (dict(dropout=1.0), "lora.dropout"),
        (dict(target_modules=()), "lora.target_modules"),
        (dict(target_modules="q_proj"), "lora.target_modules"),
        (dict(target_modules=("q_proj", "")), "lora.target_modules"),
    ],
)
def test_bad_lora_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoRASettings(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prompt_template="{instruction}"), "prompt_template"),
        (dict(lora="big"), "lora"),
        (dict(lora=dict(r=-1)), "lora.r"),
        (dict(gradient_checkpointing="yes"), "gradient_checkpointing"),
        (dict(freeze_imu_encoder=1), "freeze_imu_encoder"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_bad_modules():
    model = _model()
    parts = dict(imu_encoder=model.imu_encoder, fusion=model.fusion, llm=_llm(), tokenizer=_tokenizer())
    for name, bad in (("imu_encoder", "x"), ("fusion", nn.Linear(2, 2)), ("llm", nn.Linear(2, 2)),
                      ("video_encoder", nn.Linear(2, 2))):
        with pytest.raises(ValueError, match=name):
            MHIA(**{**parts, name: bad})
    no_eos = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(ID, unk_token="<unk>")), unk_token="<unk>")
    with pytest.raises(ValueError, match="tokenizer"):
        MHIA(**{**parts, "tokenizer": no_eos})


def test_bad_texts_and_calls():
    model = _model()
    imu, frames = _inputs()
    for instructions, responses, match in (
        (ASK, None, "instructions"),
        ([], None, "instructions"),
        ([ASK, 3], None, r"instructions\[1\]"),
        ([f"{ASK} {IMU_TOKEN}"], None, r"instructions\[0\] contains"),
        ([ASK], ["walking", "up"], "responses"),
        ([ASK], ["walking </s>"], r"responses\[0\] contains"),
    ):
        with pytest.raises(ValueError, match=match):
            model.build_batch(instructions, responses)
    with pytest.raises(ValueError, match="has_video"):
        model.build_batch([ASK, ASK], has_video=[True])
    with pytest.raises(ValueError, match="neither"):
        model.build_batch([ASK], has_imu=False)
    with pytest.raises(ValueError, match="instructions"):
        model(imu=imu, video=frames, instructions=[ASK] * (B - 1))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(imu=imu, instructions=[ASK] * B, max_new_tokens=0)


def test_bad_state_dicts():
    model = _model()
    state = model.trainable_state_dict()
    with pytest.raises(ValueError, match="state"):
        model.load_trainable_state_dict([1])
    missing = dict(state)
    missing.pop("projector.0.weight")
    with pytest.raises(ValueError, match=r"missing keys \['projector.0.weight'\]"):
        model.load_trainable_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys"):
        model.load_trainable_state_dict({**state, "llm.base_model.model.lm_head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="shape mismatches"):
        model.load_trainable_state_dict({**state, "projector.0.bias": torch.zeros(3)})


def test_from_pretrained_llm_error_paths(tmp_path):
    for path in (tmp_path / "no_such_model", tmp_path):  # missing folder, folder without a model
        with pytest.raises(ValueError, match="no loadable causal LM"):
            from_pretrained_llm(path)
    with pytest.raises(ValueError, match="bf16"):
        from_pretrained_llm(tmp_path, bf16="yes")
