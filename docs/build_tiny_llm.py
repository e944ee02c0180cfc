"""Build the tiny stand-in base LLM of the MHIA quickstart, offline, in the Hugging Face folder layout.

    python docs/build_tiny_llm.py                      # → logs/tiny_llama (about half a minute)
    python train.py experiment=mhia_toy               # loads it like a LLaMA-3 folder

The tokenizer is a byte-level BPE trained on the toy instruction set's training texts (instructions and
responses, `datamodules.instructions.toy_set.ToyMultimodalDataset`); the model a randomly initialised LLaMA
(`networks.language_models.tiny_llama`), which then learns the language of the toy answers as a plain causal
LM on those texts (no IMU, no video; `--pretrain-steps`, 400 by default, 0 keeps it random). It stands in
for a pretrained LLaMA: the MHIA run freezes it and only has to learn, through LoRA, to ground the answers
in the sensors.
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
    encoded = [[tokenizer.bos_token_id, *ids, tokenizer.eos_token_id]
               for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    losses = []
    llm.train()
    for _ in range(steps):
        rows = [encoded[i] for i in torch.randint(len(encoded), (batch_size,), generator=generator).tolist()]
        length = max(len(row) for row in rows)
        input_ids = torch.full((batch_size, length), tokenizer.eos_token_id)  # padding: masked out below
        attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
        for b, row in enumerate(rows):
            input_ids[b, : len(row)] = torch.tensor(row)
            attention_mask[b, : len(row)] = 1
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        loss = llm(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
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
    parser.add_argument("--pretrain-steps", type=int, default=400, help="causal-LM steps on the texts (0: none)")
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
