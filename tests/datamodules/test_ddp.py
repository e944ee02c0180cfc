import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("ddp_probe.py")


@pytest.mark.slow
def test_two_cpu_ranks_see_disjoint_clips_and_finish(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    seen0, seen1 = set(ranks[0]["clips"]), set(ranks[1]["clips"])
    assert seen0 and seen1 and not seen0 & seen1
    assert seen0 | seen1 == set(range(44))  # 44 clips split evenly: every clip seen exactly once
