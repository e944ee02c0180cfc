"""docs/sim2real_plots.py: pairing UTD-MHAD trials with their simulation, trace figure, mount estimate, features.

The tests on the real dataset skip when the shared data folder lacks UTD-MHAD; the bounds they assert
were measured on it (noted beside each) and leave room below the measured values.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from tests.datamodules.readers.fall_fixtures import SHARED_DATA  # noqa: E402
from virtual_imu.filters import lowpass_kernel  # noqa: E402

_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "sim2real_plots.py"
_spec = importlib.util.spec_from_file_location("sim2real_plots", _SCRIPT)
s2r = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(s2r)

UTD = SHARED_DATA / "utd_mhad"
needs_utd = pytest.mark.skipif(not UTD.is_dir(), reason=f"UTD-MHAD not in {SHARED_DATA} (shared data folder lacks it)")
WINDOW = 125  # 5 s at 25 Hz


pytestmark = pytest.mark.usefixtures("one_thread")


def test_defaults_are_the_experiment_config():
    config = yaml.safe_load(s2r.CONFIG.read_text())
    pipeline = config["pipeline"]
    assert tuple(pipeline["mount_rotation"]) == s2r.CONFIG_MOUNT
    assert (pipeline["placement"], pipeline["target_hz"]) == ("right_wrist", s2r.FS_HZ)
    assert (config["imu_lowpass_hz"], config["window_s"]) == (s2r.LOWPASS_HZ, s2r.WINDOW_S)
    assert config["train_motion"]["fps"] == s2r.MOTION_FPS
    assert {"sensor": "wide_noise"} in config["defaults"]
    assert s2r.config_sensor() == instantiate(OmegaConf.load(s2r.CONFIG.parent / "sensor" / "wide_noise.yaml"))


def test_pearson_r_by_hand():
    # [1, 2, 3] vs [1, 3, 2]: deviations (−1, 0, 1) and (−1, 1, 0): r = 1 / (√2 · √2) = 0.5.
    a = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    b = np.array([[1.0, -2.0], [3.0, -4.0], [2.0, -6.0]])  # second column: −2·a, r = −1
    np.testing.assert_allclose(s2r.pearson_r(a, b), [0.5, -1.0], atol=1e-12)
    with pytest.raises(ValueError, match=r"channels \[1\] are constant"):
        s2r.pearson_r(a, np.column_stack((a[:, 0], np.ones(3))))


def test_quaternion_angle_by_hand():
    assert s2r.quaternion_angle_deg(s2r.NOMINAL_MOUNT, s2r.CONFIG_MOUNT) == pytest.approx(180.0, abs=1e-9)
    assert s2r.quaternion_angle_deg((0.0, 0.0, 1.0, 0.0), (0.0, 0.0, -1.0, 0.0)) == pytest.approx(0.0, abs=1e-6)
    quarter_turn = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # 90° about z
    assert s2r.quaternion_angle_deg(quarter_turn, s2r.NOMINAL_MOUNT) == pytest.approx(90.0, abs=1e-9)


def test_trace_figure_has_eight_panels_each_with_its_correlation():
    time = np.linspace(0, 4, 100)[:, None]
    real = np.sin(time * np.arange(1, 7)) + np.arange(6)
    figure = s2r.trace_figure(real, -real, 25.0, "mirror")
    assert len(figure.axes) == 8
    titles = [axis.get_title() for axis in figure.axes]  # row-major: acc x, gyro x, acc y, …
    # Each axis is mirrored (r = −1); the norms of real and −real are the same curve (r = 1).
    assert titles[:6] == [f"{sensor} {axis}   r = -1.00" for axis in "xyz" for sensor in ("acc", "gyro")]
    assert titles[6:] == ["acc |·|   r = 1.00", "gyro |·|   r = 1.00"]
    assert figure._suptitle.get_text() == "mirror"
    plt.close(figure)


def test_mount_table_lists_every_channel_and_the_means():
    result = {
        "quaternion": [0.0, 0.0, 1.0, 0.0], "angle_from_config_deg": 0.0, "fit_subjects": [1], "eval_subjects": [2],
        "fit_trials": 3, "eval_trials": 4,
        **{m: {"pearson_r": [0.1, 0.2, 0.6, 0.0, 0.0, 0.3], "rmse": [1.0] * 6}
           for m in ("nominal", "config", "estimated")},
    }
    lines = s2r.mount_table(result).splitlines()
    assert "0.0° from the config's" in lines[0] and "(3 trials)" in lines[1] and "(4 trials)" in lines[1]
    rows = {line.split()[0]: line for line in lines[4:]}
    assert list(rows) == [*s2r.IMU_CHANNELS, "acc", "gyro"]
    assert rows["acc"].split()[2:5] == ["0.300"] * 3  # (0.1 + 0.2 + 0.6) / 3
    assert rows["gyro"].split()[2:5] == ["0.100"] * 3


@pytest.mark.parametrize(
    "real, virtual, message",
    [
        (np.zeros((10, 3)), np.zeros((10, 3)), r"real must have shape \[T ≥ 2, 6\]"),
        (np.zeros((10, 6)), np.full((10, 6), np.nan), "virtual holds non-finite"),
        (np.zeros((10, 6)), np.zeros((9, 6)), "real and virtual must have the same shape"),
    ],
)
def test_trace_figure_names_bad_input(real, virtual, message):
    with pytest.raises(ValueError, match=message):
        s2r.trace_figure(real, virtual, 25.0, "bad")


def test_bad_trials_and_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match="action must be a right-wrist action 1–21, got 22"):
        s2r.paired_trial(tmp_path, 22, 1, 1)
    with pytest.raises(FileNotFoundError, match="a1_s1_t1_inertial.mat not found"):
        s2r.paired_trial(tmp_path, 1, 1, 1)
    with pytest.raises(ValueError, match="subjects must be a non-empty list"):
        s2r.wrist_trials(tmp_path, [9])
    with pytest.raises(FileNotFoundError, match="lacks the UTD-MHAD folders"):
        s2r.wrist_trials(tmp_path, [1])
    (tmp_path / "Inertial").mkdir()
    (tmp_path / "Skeleton").mkdir()
    with pytest.raises(ValueError, match=r"no wrist trials of subjects \[1\]"):
        s2r.estimate_utd_mount(tmp_path, [1])
    with pytest.raises(ValueError, match="max_trials must be ≥ 1"):
        s2r.feature_windows(tmp_path, [1], max_trials=0)


@needs_utd
def test_paired_trial_is_time_aligned_and_finite():
    real, virtual = s2r.paired_trial(UTD, 11, 1, 1)
    assert real.shape == virtual.shape and real.shape[1] == 6
    inertial = s2r.read_utd_inertial(UTD / "Inertial" / "a11_s1_t1_inertial.mat")  # 50 Hz
    # 25 Hz over the same span: ⌈N / 2⌉ samples, and the simulation lacks at most one of them.
    assert real.shape[0] in (math.ceil(len(inertial.acc) / 2), math.ceil(len(inertial.acc) / 2) - 1)
    assert np.isfinite(real).all() and np.isfinite(virtual).all()


@needs_utd
def test_acc_along_the_forearm_follows_the_real_sensor():
    keys = [(11, subject, 1) for subject in (1, 2, 3, 4)]  # draw_triangle, first trial of four subjects
    acc_x = np.array([s2r.pearson_r(*s2r.paired_trial(UTD, *key))[0] for key in keys])
    assert acc_x.mean() > 0.6  # measured 0.79 (0.75, 0.76, 0.75, 0.90)
    assert acc_x.min() > 0.5


@needs_utd
def test_mount_command_fits_one_subject_and_scores_another(tmp_path, capsys):
    result = s2r.main(["--root", str(UTD), "--out", str(tmp_path), "mount", "--subjects", "1", "--eval-subjects", "2"])
    assert json.loads((tmp_path / "mount.json").read_text()) == result
    assert capsys.readouterr().out.strip() == s2r.mount_table(result)
    acc_r = {m: np.mean(result[m]["pearson_r"][:3]) for m in ("nominal", "config", "estimated")}
    # The nominal preset has the sensor's x and z reversed (r −0.17); the estimate recovers them: 0.56
    # (the config's 180° about y: 0.58).
    assert acc_r["estimated"] > acc_r["nominal"] + 0.5
    assert acc_r["estimated"] > 0.5
    assert result["angle_from_config_deg"] < 40.0  # measured 29.9° from one subject, 19.1° from 1, 3, 5, 7
    assert result["fit_subjects"] == [1] and result["eval_subjects"] == [2]


@needs_utd
def test_feature_windows_pair_the_trials_and_add_noise_to_the_virtual_side_only():
    real, virtual, actions = s2r.feature_windows(UTD, [2], max_trials=3)
    sensor = s2r.config_sensor()
    noisy_real, noisy, _ = s2r.feature_windows(UTD, [2], max_trials=3, sensor=sensor, seed=7)
    assert real.shape == virtual.shape == (3, WINDOW, 6)
    assert actions.tolist() == [1, 11, 21]  # evenly spread over the 84 trials, action-major
    assert np.array_equal(real, noisy_real)
    # The same draws, in the same order: one clip of 5 s at 20 fps per trial.
    pipeline = s2r._pipeline(s2r.FS_HZ, s2r.CONFIG_MOUNT, sensor)
    generator = torch.Generator().manual_seed(7)
    frames = round(s2r.WINDOW_S * s2r.MOTION_FPS) + 1
    bias = np.stack([pipeline.draw(pipeline.output_length(frames), generator)["sensor_bias"][:3].numpy()
                     for _ in actions])
    error = (noisy - virtual)[..., :3]
    # Per trial and axis the error is the bias σ·b plus low-passed white noise, whose mean over 125
    # samples has σ ≈ 0.05 / √125 = 0.0045 m/s²; its spread is σ_white·‖h‖₂ for the low-pass kernel h.
    np.testing.assert_allclose(error.mean(axis=1), sensor.accelerometer.bias_std * bias, atol=0.02)  # measured ≤ 0.009
    kernel = lowpass_kernel(s2r.LOWPASS_HZ, s2r.FS_HZ, dtype=torch.float64)
    expected_spread = sensor.accelerometer.noise_density * s2r.FS_HZ**0.5 * kernel.norm().item()  # 0.028 m/s²
    np.testing.assert_allclose(error.std(axis=1), expected_spread, rtol=0.3)  # measured 0.022–0.032


@needs_utd
def test_features_analysis_gives_a_figure_and_a_domain_gap():
    figure, gap = s2r.features_analysis(UTD, [2], max_trials=12)
    assert isinstance(figure, plt.Figure)
    assert (gap["n_real"], gap["n_virtual"]) == (12, 12)
    assert 0.0 <= gap["domain_balanced_accuracy"] <= 1.0 and gap["mean_abs_smd"] >= 0.0
    plt.close(figure)


@needs_utd
def test_trace_command_writes_the_figure(tmp_path):
    s2r.main(["--root", str(UTD), "--out", str(tmp_path), "trace", "--action", "1", "--subject", "1", "--trial", "1"])
    assert (tmp_path / "trace_a1_s1_t1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
