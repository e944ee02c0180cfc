"""Instruction–response pairs from a teacher model (any OpenAI-compatible chat endpoint with vision).

    OPENAI_API_KEY=… python docs/build_instructions.py --out <folder>/teacher.jsonl --model gpt-4o-mini \
        (--toy 33 [--seed 0] | --items items.jsonl) [--base-url https://api.openai.com/v1] \
        [--prices 0.15,0.6] [--rpm 60] [--limit 100] [--max-keyframes 4] [--max-retries 5] [--timeout 60]

The items are examples in the schema of `datamodules/instructions/schema.py` (their texts are ignored): a
JSONL file (`--items`, relative paths from its folder) or the first `--toy` examples of the offline toy set,
written next to the output (`<out stem>.toy.jsonl` and its frame folders in `<out stem>_frames/`). Virtual
IMU specs of procedural clips are re-simulated. The base URL comes from `--base-url` or $OPENAI_BASE_URL, the
key only from $OPENAI_API_KEY (no flag, so it stays out of shell histories). The output is append-only: a
rerun skips the ids it holds. `--prices` is the price of 1000 prompt and of 1000 completion tokens.
Prints the run's counts and cost.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from datamodules.instructions.schema import read_jsonl  # noqa: E402
from datamodules.instructions.teacher import TeacherConfig, TeacherReport, run_teacher  # noqa: E402
from datamodules.instructions.toy_set import ToyMultimodalDataset, virtual_imu  # noqa: E402


def _prices(text: str) -> tuple[float, float]:
    try:
        prompt, completion = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers 'prompt,completion' per 1000 tokens, got {text!r}") from None
    return prompt, completion


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    items = parser.add_mutually_exclusive_group(required=True)
    items.add_argument("--items", type=Path, help="JSONL of examples to ask about")
    items.add_argument("--toy", type=int, metavar="N", help="ask about the first N examples of the toy set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the toy set")
    parser.add_argument("--out", type=Path, required=True, help="output JSONL (appended to)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--base-url", default=None, help="API root (default $OPENAI_BASE_URL)")
    parser.add_argument("--prices", type=_prices, default=(0.0, 0.0), help="prompt,completion price per 1000 tokens")
    parser.add_argument("--rpm", type=float, default=60.0, help="requests per minute")
    parser.add_argument("--limit", type=int, default=None, help="ask about at most this many items in this run")
    parser.add_argument("--max-keyframes", type=int, default=4)
    parser.add_argument("--max-retries", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> TeacherReport:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = TeacherConfig.from_env(
        model=args.model, base_url=args.base_url, prompt_price_per_1k=args.prices[0],
        completion_price_per_1k=args.prices[1], requests_per_minute=args.rpm, max_keyframes=args.max_keyframes,
        max_retries=args.max_retries, timeout_s=args.timeout,
    )
    items = args.items
    if args.toy is not None:
        if args.toy < 1:
            raise ValueError(f"--toy must be a positive number of examples, got {args.toy}")
        items = args.out.with_name(f"{args.out.stem}.toy.jsonl")
        toy = ToyMultimodalDataset(num_clips=max(args.toy, 2), seed=args.seed)
        toy.write_jsonl(items, frames_dir=args.out.with_name(f"{args.out.stem}_frames"), limit=args.toy)
    report = run_teacher(read_jsonl(items), args.out, config, root=items.parent, virtual_imu=virtual_imu,
                         limit=args.limit)
    print(report.summary())
    return report


if __name__ == "__main__":
    main()
