"""Where a sim-to-real model fails: accuracy on the real test recordings, per source activity.

    python docs/sim2real_errors.py logs/sim2real/falls_binary/0

Rebuilds the run's datamodule from its Hydra overrides (`.hydra/overrides.yaml`), loads
`checkpoints/last.ckpt`, predicts the real test windows and prints, for each dataset activity code,
the number of windows, the true class and the fraction predicted correctly.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
import yaml
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from docs/

from lightning_modules import runtime  # noqa: E402


def per_activity_accuracy(run_dir: Path) -> dict[str, tuple[int, str, float]]:
    """activity → (windows, true class name, fraction correct) on the run's real test split."""
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    overrides = [o for o in overrides if not o.startswith(("hydra.", "callbacks.", "logger="))]
    runtime.register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, f"paths.root_dir={ROOT}", "paths.output_dir=."])
    cfg.init_from = str(run_dir / "checkpoints" / "last.ckpt")  # the run's weights and normalisation
    datamodule, model = runtime.instantiate_data_and_model(cfg)
    model.eval()
    datamodule.setup("test")
    recordings = datamodule.real_sources["test"]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    truth: dict[str, str] = {}
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            batch = datamodule.on_after_batch_transfer(batch, 0)
            predicted = model.net(batch["imu"]).argmax(-1)
            for clip, label, guess in zip(batch["clip_index"].tolist(), batch["label"].tolist(), predicted.tolist()):
                activity = recordings[clip].activity
                counts[activity][0] += 1
                counts[activity][1] += int(label == guess)
                truth[activity] = datamodule.class_names[label]
    return {a: (n, truth[a], correct / n) for a, (n, correct) in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    print("| activity | windows | class | correct |\n|---|---|---|---|")
    for activity, (n, name, fraction) in per_activity_accuracy(args.run_dir).items():
        print(f"| {activity} | {n} | {name} | {fraction:.2f} |")


if __name__ == "__main__":
    main()
