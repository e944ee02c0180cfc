"""Run by test_ddp.py as a script: real DDP (gloo) on 2 CPU processes; each rank records the clips it saw.

Usage: python ddp_probe.py OUTPUT_DIR
"""

import functools
import json
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import small_datamodule  # noqa: E402
from lightning_modules.har_module import HARModule  # noqa: E402
from networks.deepconvlstm import DeepConvLSTM  # noqa: E402


class ClipRecorder(L.Callback):
    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self.seen: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.extend(sorted(set(batch["clip_index"].tolist())))

    def on_train_end(self, trainer, pl_module):
        path = self.output_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, "clips": self.seen}))


def main(output_dir: Path) -> None:
    L.seed_everything(0, workers=True)
    datamodule = small_datamodule(num_clips=44)
    model = HARModule(
        net=DeepConvLSTM(in_channels=6, num_classes=11, conv_filters=8, lstm_hidden=16),
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        class_names=[f"c{i}" for i in range(11)],
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        default_root_dir=str(output_dir),
        callbacks=[ClipRecorder(output_dir)],
    )
    trainer.fit(model, datamodule=datamodule)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
