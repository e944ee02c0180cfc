"""docs/fit_utd_mhad.py: the rotation summaries by hand, and the whole CLI on two real UTD-MHAD trials.

The real-data test skips when the data folder ($VIMU_DATA_DIR or ../shared/data) lacks UTD-MHAD.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from virtual_imu import quaternion
from virtual_imu.fit import FittedParameters
from virtual_imu.mems import TriaxialErrors
from virtual_imu.mounting import MountJitter
from virtual_imu.pipeline import WristIMUPipeline
from virtual_imu.randomization import PlacementRandomization

_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "fit_utd_mhad.py"
_spec = importlib.util.spec_from_file_location("fit_utd_mhad", _SCRIPT)
fit_utd = importlib.util.module_from_spec(_spec)
sys.modules["fit_utd_mhad"] = fit_utd  # dataclasses in the script look their module up
_spec.loader.exec_module(fit_utd)

needs_utd = pytest.mark.skipif(not fit_utd.DATA_ROOT.is_dir(),
                               reason=f"UTD-MHAD not in {fit_utd.DATA_ROOT} (no data folder)")
F64 = torch.float64


def about(axis, degrees: float) -> np.ndarray:
    axis = torch.tensor(axis, dtype=F64)
    return quaternion.from_axis_angle(axis / axis.norm(), torch.tensor(math.radians(degrees), dtype=F64)).numpy()


def compose(*rotations: np.ndarray) -> np.ndarray:
    result = torch.as_tensor(rotations[0])
    for rotation in rotations[1:]:
        result = quaternion.multiply(result, torch.as_tensor(rotation))
    return result.numpy()


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- summaries, no data


def test_mean_rotation_of_a_symmetric_spread_is_its_centre_whatever_the_signs():
    centre = np.array(fit_utd.CONFIG_MOUNT)
    spread = [compose(centre, about(axis, sign * 12.0)) for axis in ((1, 0, 0), (0, 1, 1)) for sign in (1, -1)]
    spread[1] = -spread[1]  # q and −q are the same rotation
    np.testing.assert_allclose(fit_utd.mean_rotation(np.stack(spread)), centre, atol=1e-12)
    one = about((0, 0, 1), 30.0)
    np.testing.assert_allclose(fit_utd.mean_rotation(-one[None]), one, atol=1e-12)  # sign fixed: w ≥ 0
    with pytest.raises(ValueError, match="quaternions"):
        fit_utd.mean_rotation(np.zeros((0, 4)))


def test_roll_and_tilt_of_hand_made_rotations():
    rotations = np.stack([
        about((1, 0, 0), 30.0),  # pure roll about the watch's x
        about((1, 0, 0), -45.0),
        about((0, 0, 1), 15.0),  # pure tilt
        compose(about((0, 1, 1), 20.0), about((1, 0, 0), 30.0)),  # tilt ⊗ roll, as MountJitter draws them
        -compose(about((0, 1, 0), 20.0), about((1, 0, 0), -70.0)),
    ])
    roll, tilt = fit_utd.roll_tilt_deg(rotations)
    np.testing.assert_allclose(roll, [30.0, -45.0, 0.0, 30.0, -70.0], atol=1e-9)
    np.testing.assert_allclose(tilt, [0.0, 0.0, 15.0, 20.0, 20.0], atol=1e-9)


def test_placement_summary_and_yaml_by_hand():
    mean = np.array(fit_utd.CONFIG_MOUNT)
    rolls = [-40.0, -20.0, 0.0, 20.0, 40.0]
    rotations = torch.from_numpy(np.stack([compose(mean, about((1, 0, 0), r)) for r in rolls]))
    params = replace(FittedParameters.nominal(5, fit_utd.PLACEMENT, rotation=rotations),
                     offset_m=torch.tensor([[-0.03 + 0.01 * k, 0.02, 0.0] for k in range(-2, 3)], dtype=F64),
                     time_offset_s=torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4], dtype=F64))
    summary = fit_utd.placement_summary(params)
    np.testing.assert_allclose(summary["mount_rotation"], mean, atol=1e-12)
    # |roll| = 0, 20, 20, 40, 40: numpy's linear 90th percentile is 40; no tilt.
    assert summary["mount_jitter"]["roll_deg"] == pytest.approx(40.0, abs=1e-9)
    assert summary["mount_jitter"]["tilt_deg"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(summary["offset_m"]["mean"], [-0.03, 0.02, 0.0], atol=1e-12)
    np.testing.assert_allclose(summary["offset_m"]["std"], [0.01 * math.sqrt(2.5), 0.0, 0.0], atol=1e-12)  # sample std
    assert summary["time_offset_s"]["mean"] == pytest.approx(0.2) and summary["time_offset_s"]["std"] == pytest.approx(
        0.1 * math.sqrt(2.5))
    document = yaml.safe_load(fit_utd.placement_yaml(summary, [1, 2]))
    pipeline = document["pipeline"]
    jitter = MountJitter(**{k: v for k, v in pipeline["mount_jitter"].items() if k != "_target_"})
    assert (jitter.roll_deg, jitter.tilt_deg) == (40.0, 0.0)
    mounted = WristIMUPipeline(placement="right_wrist", mount_rotation=pipeline["mount_rotation"])
    assert mounted.mount_rotation == (0.0, 0.0, 1.0, 0.0)
    # Offsets x = −0.05 … −0.01 around the preset's −0.03: |Δx| = 0.02, 0.01, 0, 0.01, 0.02, 90th percentile 0.02.
    randomization = PlacementRandomization(**{k: v for k, v in pipeline["randomization"].items() if k != "_target_"})
    assert randomization.offset_along_m == 0.02
    errors = {name: TriaxialErrors(**values) for name, values in pipeline["sensor"].items()}
    assert errors["accelerometer"].bias_std == 0.0 and errors["gyroscope"].scale_error_std == 0.0
    assert document["fitted"]["trials"] == 5


# ---------------------------------------------------------------- the CLI on real trials


@needs_utd
def test_cli_on_two_real_trials(tmp_path, capsys):
    summary = fit_utd.main(["--subjects", "1", "2", "--actions", "1", "--repetitions", "1", "--steps", "60",
                            "--heldout-fit", "1", "--heldout-eval", "2", "--out", str(tmp_path)])
    for name in ("trials.csv", "summary.json", "fitted_placement.yaml"):
        assert (tmp_path / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert [(row["action"], row["subject"], row["trial"]) for row in rows] == [("1", "1", "1"), ("1", "2", "1")]
    assert json.loads((tmp_path / "summary.json").read_text())["trials"] == 2
    assert "| acc_x |" in capsys.readouterr().out
    for row in rows:
        assert float(row["loss_after"]) < float(row["loss_before"])
    for sensor in ("acc", "gyro"):
        before = np.mean([summary["before"]["r"][f"{sensor}_{a}"][0] for a in "xyz"])
        after = np.mean([summary["after"]["r"][f"{sensor}_{a}"][0] for a in "xyz"])
        assert after > before + 0.05, sensor  # measured acc 0.47 → 0.74, gyro 0.59 → 0.77
    assert summary["heldout"]["eval_trials"] == 1
    yaml.safe_load((tmp_path / "fitted_placement.yaml").read_text())
