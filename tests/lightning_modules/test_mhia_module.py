"""MHIAModule with real Lightning: trainable-only checkpoints that reload to identical answers, answer
scores, generations file and W&B table (offline), bf16 autocast, the LR schedule."""

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import WandbLogger

from datamodules.instruction_datamodule import InstructionDataModule, collate_instructions
from datamodules.instructions.toy_set import ToyMultimodalDataset
from lightning_modules.mhia_module import GENERATION_COLUMNS, MHIAModule, warmup_cosine
from networks.ghi import GHIFusion
from networks.language_models import tiny_llama, train_bpe_tokenizer
from networks.mhia import MHIA, LoRASettings
from networks.patchformer import IMUPatchformer
from networks.video_encoder import TimmViTVideoEncoder

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(frame_size=(32, 32), num_frames=2)
DIM = 16


@pytest.fixture(scope="module")
def toy() -> ToyMultimodalDataset:
    return ToyMultimodalDataset(num_clips=6, seed=0, **SMALL)


@pytest.fixture(scope="module")
def corpus(toy) -> list[str]:
    return [text for i in range(len(toy)) for text in (toy.example(i).instruction, toy.example(i).response)]


def _module(corpus, *, seed: int = 0, **kwargs) -> MHIAModule:
    """Tiny MHIA: frozen parts (LLM, ViT) from seed 0 like a fixed pretrained base, trainable ones from `seed`."""
    tokenizer = train_bpe_tokenizer(corpus, vocab_size=400)
    llm = tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=0)
    torch.manual_seed(0)
    video = TimmViTVideoEncoder(model_name="vit_tiny_patch16_224",
                                model_kwargs=dict(img_size=32, patch_size=16, depth=1, embed_dim=DIM, num_heads=2))
    torch.manual_seed(seed)
    net = MHIA(
        imu_encoder=IMUPatchformer(in_channels=6, patch_len=32, stride=32, d_model=DIM, num_layers=1, num_heads=2,
                                   ff=32, dropout=0.0, max_patches=8, channel_dim=4),
        video_encoder=video,
        fusion=GHIFusion(dim=DIM, num_heads=2, num_blocks=1, imu_dim=DIM, video_dim=DIM, dropout=0.0, max_frames=4),
        llm=llm, tokenizer=tokenizer, lora=LoRASettings(r=4, dropout=0.0),
    )
    optimizer = lambda params: torch.optim.AdamW(params, lr=3e-3)  # noqa: E731 (what Hydra's _partial_ gives)
    return MHIAModule(net=net, optimizer=optimizer, **{"max_new_tokens": 6, "warmup_ratio": None, **kwargs})


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    defaults = dict(default_root_dir=tmp_path, max_epochs=1, accelerator="cpu", devices=1, logger=False,
                    enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    return L.Trainer(**{**defaults, **kwargs})


def _datamodule(toy) -> InstructionDataModule:
    return InstructionDataModule(train_set=toy, val_set=toy, test_set=toy, batch_size=3, seed=0)


def test_checkpoint_holds_only_trainable_weights_and_reloads_to_identical_answers(toy, corpus, tmp_path):
    module = _module(corpus)
    trainer = _trainer(tmp_path, limit_val_batches=0)
    trainer.fit(module, datamodule=_datamodule(toy))
    path = tmp_path / "trained.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert set(state) == module.trainable_keys()
    assert any("lora_A" in k for k in state) and any(k.startswith("net.projector.") for k in state)
    assert not any("base_layer" in k or "embed_tokens" in k or "video_encoder" in k for k in state)
    full = sum(v.numel() for v in module.state_dict().values())
    assert sum(v.numel() for v in state.values()) < 0.5 * full

    batch = collate_instructions([toy[i] for i in range(len(toy))])
    answers = module.eval().generate(batch)
    fresh = _module(corpus, seed=1).eval()  # other trainable weights, same frozen base
    assert fresh.generate(batch) != answers
    fresh.load_state_dict(state)
    assert fresh.generate(batch) == answers
    for key, value in module.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, atol=0, rtol=0, msg=key)

    missing = dict(state)
    missing.pop(next(k for k in state if "lora_B" in k))
    with pytest.raises(ValueError, match="missing trainable weights"):
        fresh.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['net.nothing'\]"):
        fresh.load_state_dict({**state, "net.nothing": torch.zeros(1)})


def test_test_scores_generations_file_and_wandb_table(toy, corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    module = _module(corpus)
    logger = WandbLogger(project="mhia-test", save_dir=str(tmp_path), offline=True)
    trainer = _trainer(tmp_path, logger=logger)
    metrics = trainer.test(module, datamodule=_datamodule(toy))[0]
    rows = [json.loads(line) for line in (tmp_path / "test_generations.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [toy.id_of(i) for i in range(len(toy))]
    assert all(set(r) == set(GENERATION_COLUMNS) for r in rows)
    # The scores are those of the written answers.
    activity = sum(r["answer_activity"] == r["activity"] for r in rows) / len(rows)
    safety = sum(r["answer_safety"] == r["safety"] for r in rows) / len(rows)
    assert metrics["test/activity_acc"] == pytest.approx(activity, abs=1e-6)
    assert metrics["test/safety_acc"] == pytest.approx(safety, abs=1e-6)
    assert 0.0 <= metrics["test/bleu"] <= 1.0 and 0.0 <= metrics["test/rougeL"] <= 1.0
    assert math.isfinite(metrics["test/loss"])
    logger.experiment.finish()
    tables = list(Path(tmp_path).rglob("generations_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == list(GENERATION_COLUMNS) and len(table["data"]) == len(rows)


def test_answer_scores_of_known_answers(toy, corpus, tmp_path, monkeypatch):
    """References as answers: activity, safety, BLEU and ROUGE-L are all exactly 1."""
    module = _module(corpus)
    monkeypatch.setattr(module, "generate", lambda batch: list(batch["responses"]))
    metrics = _trainer(tmp_path).test(module, datamodule=_datamodule(toy))[0]
    for name in ("activity_acc", "safety_acc", "bleu", "rougeL"):
        assert metrics[f"test/{name}"] == pytest.approx(1.0, abs=1e-6), name


def test_a_clip_without_video_is_answered_from_the_imu_alone(toy, corpus):
    module = _module(corpus).eval()
    items = [toy[i] for i in range(3)]
    items[0] = dict(items[0], has_video=False, frames=torch.zeros_like(items[0]["frames"]))
    items[2] = dict(items[2], compared_has_video=False)  # a comparison whose second clip has no video
    batch = collate_instructions(items)
    assert batch["video_padding_mask"][:, 0].tolist() == [True, False, False, True]
    with torch.no_grad():
        out = module._forward(batch)
    n_imu = out.fused.num_imu_tokens
    assert out.fused.padding_mask[:, n_imu:].all(dim=1).tolist() == [True, False, False, True]
    assert torch.isfinite(out.loss)
    assert len(module.generate(batch)) == 3
    prompts = module.net.build_batch(batch["instructions"], has_video=[False, True, True, False],
                                     clips_per_sample=batch["clips_per_sample"])
    video_id = module.net.video_token_id
    assert (prompts["input_ids"] == video_id).sum(dim=1).tolist() == [0, 1, 1]


def test_bf16_mixed_training_step(toy, corpus, tmp_path):
    module = _module(corpus)
    before = {k: v.clone() for k, v in module.net.trainable_state_dict().items()}
    frozen = {k: v.clone() for k, v in module.state_dict().items() if f"{k}" not in module.trainable_keys()}
    trainer = _trainer(tmp_path, precision="bf16-mixed", limit_train_batches=2, limit_val_batches=0)
    trainer.fit(module, datamodule=_datamodule(toy))
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    after = module.net.trainable_state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in frozen.items())  # frozen stays frozen


def test_warmup_cosine_by_hand():
    values = [warmup_cosine(step, warmup_steps=3, total_steps=11) for step in range(12)]
    assert values[:3] == pytest.approx([0.25, 0.5, 0.75])
    assert values[3] == pytest.approx(1.0) and values[11] == pytest.approx(0.0, abs=1e-12)
    assert values[7] == pytest.approx(0.5)  # half way through the decay: (1 + cos(π/2)) / 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(warmup_ratio=1.0), "warmup_ratio"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(num_logged_examples=-1), "num_logged_examples"),
    ],
)
def test_bad_arguments(corpus, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _module(corpus, **kwargs)
    with pytest.raises(ValueError, match="net"):
        MHIAModule(net=torch.nn.Linear(1, 1), optimizer=torch.optim.AdamW)


def test_the_shipped_full_size_config_builds_and_trains_one_step(corpus, tmp_path):
    """experiment=mhia_llama3 as shipped (ViT-B/16 width 768 at 224 × 224, Patchformer d=256, GHI, LoRA on
    q/k/v/o, gradient checkpointing), with a tiny LLaMA folder for LLaMA-3-8B: the dimensions agree end to end."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from networks.language_models import save_language_model

    tokenizer = train_bpe_tokenizer(corpus, vocab_size=400)
    save_language_model(tiny_llama(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                        tokenizer, tmp_path / "llm")
    root = Path(__file__).resolve().parents[2]
    with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=mhia_llama3", f"model.net.language_model.path_or_hub_id={tmp_path / 'llm'}",
            "model.net.language_model.bf16=false", *(f"data.{split}_set.path=x.jsonl" for split in ("train", "val", "test"))])
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.strategy == "ddp"
    assert cfg.callbacks.model_checkpoint.monitor == "val/activity_acc" and cfg.test_ckpt == "best"
    assert list(cfg.data.test_set.frame_size) == [224, 224]
    module = instantiate(cfg.model, _convert_="all")
    net = module.net
    assert net.gradient_checkpointing and net.lora.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert net.video_encoder.image_size == (224, 224)
    batch = {"imu": torch.randn(2, 198, 6), "frames": torch.rand(2, 2, 3, 224, 224), "clips_per_sample": [2],
             "instructions": ["Compare the two clips."], "responses": ["The first clip shows a person walking."]}
    module.train()
    loss = module._forward(batch).loss
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for n, p in net.named_parameters() if p.requires_grad and "lora_A" in n)
