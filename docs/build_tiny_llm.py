"""Build the tiny stand-in base LLM of the MHIA quickstart, offline, in the Hugging Face folder layout.

    python docs/build_tiny_llm.py                      # → logs/tiny_llama (a few seconds)
    python train.py experiment=mhia_toy               # loads it like a LLaMA-3 folder

The tokenizer is a byte-level BPE trained on the toy instruction set's training texts (instructions and
responses, `datamodules.instructions.toy_set.ToyMultimodalDataset`); the model a randomly initialised LLaMA
(`networks.language_models.tiny_llama`). With `--pretrain-steps N` the base first learns the language of the
toy answers as a plain causal LM on those texts (no IMU, no video), standing in for a pretrained LLaMA: the
MHIA run then freezes it and only has to learn, through LoRA, to ground the answers in the sensors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.instructions.toy_set import ToyMultimodalDataset  # noqa: E402
from networks.language_models import save_language_model, tiny_llama, train_bpe_tokenizer  # noqa: E402
from networks.mhia import DEFAULT_PROMPT_TEMPLATE  # noqa: E402


def corpus(num_clips: int, seed: int) -> list[str]:
    """The prompt and response text of every item of the toy training set (`num_clips`, `seed`)."""
    dataset = ToyMultimodalDataset(num_clips=num_clips, seed=seed)
    texts = []
    for index in range(len(dataset)):
        example = dataset.example(index)
        prompt = DEFAULT_PROMPT_TEMPLATE.format(media="", instruction=example.instruction).strip()
        texts.append(f"{prompt} {example.response}")
    return texts


def pretrain(llm, tokenizer, texts: list[str], *, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Plain causal-LM training of every weight of `llm` on `texts` (AdamW, `steps` batches); the losses."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(llm.parameters(), lr=lr)
    tokenizer.pad_token = tokenizer.eos_token  # only for this loop; padded positions are masked out below
    losses = []
    llm.train()
    for _ in range(steps):
        picks = torch.randint(len(texts), (batch_size,), generator=generator).tolist()
        batch = tokenizer([tokenizer.bos_token + texts[i] + tokenizer.eos_token for i in picks],
                          add_special_tokens=False, padding=True, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = llm(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    tokenizer.pad_token = None
    return losses


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("logs/tiny_llama"), help="output folder")
    parser.add_argument("--clips", type=int, default=360, help="toy training clips whose texts train the tokenizer")
    parser.add_argument("--data-seed", type=int, default=1, help="seed of the toy training set (data.train_set.seed)")
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (and of pretraining)")
    parser.add_argument("--pretrain-steps", type=int, default=0)
    parser.add_argument("--pretrain-batch", type=int, default=16)
    parser.add_argument("--pretrain-lr", type=float, default=3e-3)
    args = parser.parse_args(argv)
    if args.clips < 1 or args.pretrain_steps < 0 or args.pretrain_batch < 1:
        parser.error("--clips and --pretrain-batch must be ≥ 1, --pretrain-steps ≥ 0")
    torch.manual_seed(args.seed)
    texts = corpus(args.clips, args.data_seed)
    tokenizer = train_bpe_tokenizer(texts, vocab_size=args.vocab_size)
    llm = tiny_llama(tokenizer, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                     intermediate_size=args.intermediate, seed=args.seed)
    if args.pretrain_steps:
        losses = pretrain(llm, tokenizer, texts, steps=args.pretrain_steps, batch_size=args.pretrain_batch,
                          lr=args.pretrain_lr, seed=args.seed)
        print(f"pretraining loss {losses[0]:.3f} → {sum(losses[-10:]) / len(losses[-10:]):.3f} "
              f"(mean of the last 10 of {len(losses)} steps)")
    out = save_language_model(llm.eval(), tokenizer, args.out)
    print(f"tokenizer: {len(tokenizer)} tokens from {len(texts)} texts; "
          f"LLaMA: {sum(p.numel() for p in llm.parameters()):,} parameters → {out}")
    return out


if __name__ == "__main__":
    main()
