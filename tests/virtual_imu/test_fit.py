"""virtual_imu.fit: the forward model against the pipeline, and recovery of known parameters from synthetic pairs.

The synthetic "recordings" are `simulate_with` at known parameters plus white noise, of a closed-form arm
movement that turns the forearm through many directions (so every parameter is observable). The
tolerances were measured (noted beside each) and leave room above the measured errors.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from motion.skeleton import JOINT_NAMES
from virtual_imu import quaternion
from virtual_imu.fit import FIT_NAMES, FittedParameters, fit_to_recording, simulate_with
from virtual_imu.pipeline import WristIMUPipeline

F64 = torch.float64
FPS, HZ = 20.0, 25.0
PLACEMENT = "right_wrist"
NOISE_STD = torch.tensor([0.05] * 3 + [0.01] * 3, dtype=F64)  # m/s², rad/s: the UTD-MHAD config's white noise
OPTIONS = {"placement": PLACEMENT, "motion_fps": FPS, "output_hz": HZ}


pytestmark = pytest.mark.usefixtures("one_thread")


def arm_motion(batch: int, seconds: float, seed: int) -> torch.Tensor:
    """Joints `[B, T, 22, 3]` (m, y up, facing +z) of a right arm swinging and turning in all directions.

    Only the joints the right-wrist preset reads move: the shoulders sway with the body, the upper arm
    (0.3 m) sweeps elevation and azimuth, the elbow flexes and the forearm (0.25 m) turns about the upper
    arm; each angle is a sum of three sines of random frequency (0.3–1.5 Hz), phase and amplitude.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * FPS) + 1, dtype=F64) / FPS

    def wave(low_hz: float, high_hz: float, amplitude: float) -> torch.Tensor:  # [B, T]
        freq, phase, size = (torch.rand(batch, 1, 3, generator=generator, dtype=F64) for _ in range(3))
        freq = low_hz + (high_hz - low_hz) * freq
        return (amplitude / 3 * size * torch.sin(2 * math.pi * (freq * t[:, None] + phase))).sum(-1)

    sway = torch.stack((wave(0.2, 0.8, 0.1), wave(0.2, 0.8, 0.05), wave(0.2, 0.8, 0.1)), dim=-1)
    right_shoulder = sway + torch.tensor([-0.2, 1.4, 0.0], dtype=F64)
    elevation, azimuth = 0.8 + wave(0.3, 1.2, 1.2), wave(0.3, 1.2, 2.0)
    upper = torch.stack((elevation.sin() * azimuth.sin(), -elevation.cos(), elevation.sin() * azimuth.cos()), dim=-1)
    across = torch.linalg.cross(upper, torch.tensor([1.0, 0.0, 0.0], dtype=F64).expand_as(upper))
    across = across / across.norm(dim=-1, keepdim=True)
    twist, flexion = wave(0.3, 1.0, 2.0)[..., None], (1.2 + wave(0.4, 1.5, 1.4))[..., None]
    bend = twist.cos() * across + twist.sin() * torch.linalg.cross(upper, across)
    elbow = right_shoulder + 0.3 * upper
    positions = {
        "right_shoulder": right_shoulder,
        "left_shoulder": sway + torch.tensor([0.2, 1.4, 0.0], dtype=F64),
        "right_elbow": elbow,
        "right_wrist": elbow + 0.25 * (flexion.cos() * upper + flexion.sin() * bend),
    }
    joints = torch.zeros(batch, t.numel(), len(JOINT_NAMES), 3, dtype=F64)
    for name, position in positions.items():
        joints[..., JOINT_NAMES.index(name), :] = position
    return joints


def output_length(joints: torch.Tensor) -> int:
    return math.floor((joints.shape[1] - 1) * HZ / FPS + 1e-9) + 1


def known_parameters(batch: int, seed: int = 7) -> FittedParameters:
    """Rotations 40° about random axes, 2 cm offsets, time offsets 60, −40, 100 ms, typical biases and scales."""
    generator = torch.Generator().manual_seed(seed)
    axes = torch.randn(batch, 3, generator=generator, dtype=F64)
    axes = axes / axes.norm(dim=-1, keepdim=True)
    nominal = FittedParameters.nominal(batch, PLACEMENT)

    def draw(std: float) -> torch.Tensor:
        return std * torch.randn(batch, 3, generator=generator, dtype=F64)

    return FittedParameters(
        rotation=quaternion.from_axis_angle(axes, torch.full((batch,), math.radians(40.0), dtype=F64)),
        offset_m=nominal.offset_m + 0.02 * axes.roll(1, dims=-1),
        time_offset_s=torch.tensor([0.06, -0.04, 0.1], dtype=F64)[:batch],
        acc_bias=draw(0.3), gyro_bias=draw(0.03), acc_scale=draw(0.03), gyro_scale=draw(0.03),
    )


def recording(joints: torch.Tensor, truth: FittedParameters, seed: int = 1) -> torch.Tensor:
    clean = simulate_with(joints, truth, **OPTIONS, output_length=output_length(joints))
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return clean + noise * NOISE_STD


def angle_deg(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    relative = quaternion.multiply(quaternion.conjugate(p), q)
    return torch.rad2deg(2 * torch.atan2(relative[..., 1:].norm(dim=-1), relative[..., 0].abs()))


def full_mask(real: torch.Tensor) -> torch.Tensor:
    return torch.ones(real.shape[:2], dtype=torch.bool)


# ---------------------------------------------------------------- forward model


def test_rotation_means_what_the_pipelines_mount_rotation_means():
    joints = arm_motion(2, 3.0, seed=0)
    rotations = known_parameters(2).rotation
    params = FittedParameters.nominal(2, PLACEMENT, rotation=rotations)
    fitted = simulate_with(joints, params, **OPTIONS, output_length=output_length(joints))
    for clip in range(2):
        pipeline = WristIMUPipeline(placement=PLACEMENT, motion_fps=FPS, target_hz=HZ,
                                    mount_rotation=rotations[clip].tolist())
        torch.testing.assert_close(fitted[clip], pipeline(joints[clip]), rtol=0, atol=1e-9)


def test_time_offset_shifts_and_calibration_scales_and_adds():
    joints = arm_motion(1, 3.0, seed=0)
    options = {**OPTIONS, "output_hz": FPS, "output_length": joints.shape[1] - 2}  # one sample per frame
    nominal = FittedParameters.nominal(1, PLACEMENT, dtype=F64)
    plain = simulate_with(joints, nominal, **options)
    shifted = simulate_with(joints, replace(nominal, time_offset_s=torch.tensor([2 / FPS], dtype=F64)), **options)
    torch.testing.assert_close(shifted[:, :-2], plain[:, 2:], rtol=0, atol=1e-12)  # τ = 2 frames: two samples later
    scale, bias = torch.tensor([[0.1, -0.2, 0.3]], dtype=F64), torch.tensor([[1.0, -2.0, 0.5]], dtype=F64)
    calibrated = simulate_with(joints, replace(nominal, acc_scale=scale, acc_bias=bias, gyro_scale=-scale,
                                               gyro_bias=-bias), **options)
    torch.testing.assert_close(calibrated[..., :3], plain[..., :3] * (1 + scale) + bias, rtol=0, atol=1e-12)
    torch.testing.assert_close(calibrated[..., 3:], plain[..., 3:] * (1 - scale) - bias, rtol=0, atol=1e-12)


def test_offset_is_the_sensor_position_in_the_segment_frame():
    # 12.5 cm toward the elbow along the forearm (segment x) is the wrist of an arm with half the forearm.
    joints = arm_motion(1, 3.0, seed=0)
    elbow, wrist = JOINT_NAMES.index("right_elbow"), JOINT_NAMES.index("right_wrist")
    halved = joints.clone()
    halved[..., wrist, :] = 0.5 * (joints[..., elbow, :] + joints[..., wrist, :])
    nominal = FittedParameters.nominal(1, PLACEMENT, dtype=F64)
    options = {**OPTIONS, "output_length": output_length(joints)}
    moved = simulate_with(joints, replace(nominal, offset_m=torch.tensor([[-0.125, 0.0, 0.0]], dtype=F64)), **options)
    at_wrist = simulate_with(halved, replace(nominal, offset_m=torch.zeros(1, 3, dtype=F64)), **options)
    torch.testing.assert_close(moved, at_wrist, rtol=0, atol=1e-9)


# ---------------------------------------------------------------- fitting


@pytest.fixture(scope="module")
def synthetic_fit():
    joints = arm_motion(3, 8.0, seed=0)
    truth = known_parameters(3)
    real = recording(joints, truth)
    return truth, fit_to_recording(joints, real, full_mask(real), **OPTIONS)


def assert_recovered(truth, fitted, *, rotation_deg, time_s, offset_m, acc_bias, gyro_bias, acc_scale, gyro_scale):
    """Every fitted parameter within its tolerance of the truth (largest error over the trials)."""
    errors = {
        "rotation_deg": angle_deg(truth.rotation, fitted.rotation).max(),
        "time_s": (fitted.time_offset_s - truth.time_offset_s).abs().max(),
        "offset_m": (fitted.offset_m - truth.offset_m).norm(dim=-1).max(),
        **{name: (getattr(fitted, name) - getattr(truth, name)).abs().max()
           for name in ("acc_bias", "gyro_bias", "acc_scale", "gyro_scale")},
    }
    tolerances = dict(rotation_deg=rotation_deg, time_s=time_s, offset_m=offset_m, acc_bias=acc_bias,
                      gyro_bias=gyro_bias, acc_scale=acc_scale, gyro_scale=gyro_scale)
    failed = {name: float(error) for name, error in errors.items() if not error < tolerances[name]}
    assert not failed, f"errors above tolerance {failed} (tolerances {tolerances})"


def test_fit_recovers_known_parameters(synthetic_fit):
    truth, result = synthetic_fit
    # measured: 0.04°, 0.09 ms, 1.0 mm, 0.019 m/s², 0.0013 rad/s, 0.26 %, 0.07 %
    assert_recovered(truth, result.parameters, rotation_deg=0.3, time_s=1e-3, offset_m=0.004, acc_bias=0.05,
                     gyro_bias=0.005, acc_scale=0.01, gyro_scale=0.005)


def test_fit_lowers_the_loss_to_the_noise_floor(synthetic_fit):
    _, result = synthetic_fit
    assert (result.loss_before > 0.4).all()  # measured 0.51–0.61: 40° off, up to 100 ms late, uncalibrated
    assert (result.loss_after < 2e-4).all()  # measured 0.7–1.2e-4: the white noise's share of the variance


def test_fit_leaves_a_perfectly_matched_pair_at_its_truth():
    joints = arm_motion(2, 4.0, seed=3)
    truth = FittedParameters.nominal(2, PLACEMENT, rotation=known_parameters(2).rotation)
    real = simulate_with(joints, truth, **OPTIONS, output_length=output_length(joints))
    result = fit_to_recording(joints, real, full_mask(real), **OPTIONS, initial_rotation=truth.rotation, steps=20)
    for name, value in vars(result.parameters).items():
        torch.testing.assert_close(value, vars(truth)[name], rtol=0, atol=1e-12, msg=name)
    assert (result.loss_after == 0).all()


def test_batched_fit_equals_per_trial_fit_and_ignores_masked_samples():
    joints = arm_motion(2, 4.0, seed=4)
    real = recording(joints, known_parameters(2))
    mask = full_mask(real)
    mask[1, 60:] = False  # the second trial is shorter
    options = {**OPTIONS, "steps": 40, "lowpass_hz": 4.0}
    batched = fit_to_recording(joints, real, mask, **options)
    garbage = real.clone()
    garbage[1, 60:] = 1e3  # beyond the trial's end: must not matter
    for trial in range(2):
        row = slice(trial, trial + 1)
        alone = fit_to_recording(joints[row], garbage[row], mask[row], **options)
        for name, value in vars(alone.parameters).items():
            torch.testing.assert_close(value[0], vars(batched.parameters)[name][trial], rtol=0, atol=1e-9, msg=name)
        torch.testing.assert_close(alone.loss_after[0], batched.loss_after[trial], rtol=0, atol=1e-12)


def test_fit_is_deterministic_and_keeps_unfitted_groups_and_the_time_bound():
    joints = arm_motion(2, 4.0, seed=5)
    truth = known_parameters(2)
    real = recording(joints, truth)
    start = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=F64)
    options = {**OPTIONS, "fit": ("time", "bias"), "steps": 30, "initial_rotation": start, "max_time_offset_s": 0.05}
    first = fit_to_recording(joints, real, full_mask(real), **options)
    second = fit_to_recording(joints, real, full_mask(real), **options)
    for name, value in vars(first.parameters).items():
        assert torch.equal(value, vars(second.parameters)[name]), name
    nominal = FittedParameters.nominal(2, PLACEMENT, rotation=start)
    for name in ("rotation", "offset_m", "acc_scale", "gyro_scale"):
        assert torch.equal(vars(first.parameters)[name], vars(nominal)[name]), name
    assert first.parameters.time_offset_s.abs().max() <= 0.05 + 1e-12  # the truth (60, −40 ms) lies partly outside
    assert not torch.equal(first.parameters.acc_bias, nominal.acc_bias)


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def small_pair():
    joints = arm_motion(2, 1.0, seed=6)
    return joints, torch.zeros(2, output_length(joints), 6, dtype=F64)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda j, r, m: (j[0], r, m), "joints"),
        (lambda j, r, m: (j, r[..., :3], m), "real"),
        (lambda j, r, m: (j, r[:1], m), "real"),
        (lambda j, r, m: (j, torch.zeros(2, 50, 6, dtype=F64), torch.ones(2, 50, dtype=torch.bool)), "real has T_out"),
        (lambda j, r, m: (j, r, m.float()), "mask"),
        (lambda j, r, m: (j, r, m[:, :-1]), "mask"),
        (lambda j, r, m: (j, r, torch.cat((m[:, :1] & False, m[:, 1:]), dim=1)), "mask.*prefix"),
        (lambda j, r, m: (j, r, torch.arange(r.shape[1]).expand(2, -1) < 2), "mask.*3 valid"),
        (lambda j, r, m: (j, r.index_fill(1, torch.tensor([0]), float("nan")), m), "real.*non-finite"),
    ],
)
def test_bad_arrays_are_named(small_pair, change, match):
    joints, real = small_pair
    arguments = change(joints, real, full_mask(real))
    with pytest.raises(ValueError, match=match):
        fit_to_recording(*arguments, **OPTIONS, steps=0)


@pytest.mark.parametrize(
    "option, match",
    [
        ({"fit": ("rotation", "roll")}, r"fit.*\['roll'\]"),
        ({"fit": "rotation"}, "fit must be a collection"),
        ({"steps": -1}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"lowpass_hz": 13.0}, "lowpass_hz"),
        ({"max_time_offset_s": -0.1}, "max_time_offset_s"),
        ({"prior_weight": float("nan")}, "prior_weight"),
        ({"initial_rotation": (1.0, 0.0, 0.0)}, "rotation"),
        ({"initial_rotation": (2.0, 0.0, 0.0, 0.0)}, "rotation"),
        ({"placement": "left_ankle"}, "placement"),
        ({"motion_fps": 0.0}, "motion_fps"),
    ],
)
def test_bad_options_are_named(small_pair, option, match):
    joints, real = small_pair
    with pytest.raises(ValueError, match=match):
        fit_to_recording(joints, real, full_mask(real), **{**OPTIONS, "steps": 0, **option})


def test_bad_parameters_and_lengths_are_named(small_pair):
    joints, real = small_pair
    nominal = FittedParameters.nominal(2, PLACEMENT)
    with pytest.raises(ValueError, match="offset_m"):
        replace(nominal, offset_m=torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ValueError, match="time_offset_s"):
        replace(nominal, time_offset_s=torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="acc_bias.*non-finite"):
        replace(nominal, acc_bias=torch.full((2, 3), float("inf"), dtype=F64))
    with pytest.raises(ValueError, match="rotation must be unit"):
        replace(nominal, rotation=2 * nominal.rotation)
    with pytest.raises(ValueError, match="output_length"):
        simulate_with(joints, nominal, **OPTIONS, output_length=real.shape[1] + 1)
    with pytest.raises(ValueError, match="params hold 1 trials"):
        simulate_with(joints, FittedParameters.nominal(1, PLACEMENT), **OPTIONS, output_length=real.shape[1])


def test_fit_names_are_the_parameter_groups():
    assert FIT_NAMES == ("rotation", "offset", "time", "bias", "scale")


def test_longer_clips_and_more_steps_recover_more_tightly():
    joints = arm_motion(3, 20.0, seed=10)
    truth = known_parameters(3, seed=11)
    real = recording(joints, truth, seed=12)
    fitted = fit_to_recording(joints, real, full_mask(real), **OPTIONS, steps=600).parameters
    # measured: 0.03°, 0.04 ms, 0.19 mm, 0.0075 m/s², 0.0008 rad/s, 0.12 %, 0.03 %
    assert_recovered(truth, fitted, rotation_deg=0.1, time_s=2e-4, offset_m=0.001, acc_bias=0.02,
                     gyro_bias=0.002, acc_scale=0.003, gyro_scale=0.001)
