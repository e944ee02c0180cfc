"""Simulator throughput: `python benchmarks/simulator.py [--clips 1024 --frames 196 --sensors 2 --batch 256]`.

1. Core: IMU samples per second of `virtual_imu.simulate` and, measured in the same run on the same input,
   of a plain vectorised NumPy implementation of the same formulas (central / one-sided second
   differences, quaternion rotation, log map of consecutive orientations).
2. Full pipeline: placement + kinematics + resampling + MEMS sensor model (BMI270 preset) + placement
   randomisation + windowing, as the on-the-fly DataModule runs it on a batch of `--batch` procedural
   clips, against one DeepConvLSTM training step (forward, backward, Adam) on the windows of that batch,
   on the same device in the same run: the ratio is the simulator's share of a training step.

Ratios are what to read (machines are noisy). On a CUDA device every measurement is repeated there, with
the achieved memory bandwidth (bytes of inputs + outputs per second) next to a device-to-device copy of
the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motion.procedural import ProceduralMotionSet  # noqa: E402
from networks.deepconvlstm import DeepConvLSTM  # noqa: E402
from virtual_imu import STANDARD_GRAVITY, simulate  # noqa: E402
from virtual_imu import quaternion  # noqa: E402
from virtual_imu.devices import device  # noqa: E402
from virtual_imu.mounting import MountJitter  # noqa: E402
from virtual_imu.pipeline import WristIMUPipeline, sliding_windows  # noqa: E402
from virtual_imu.randomization import PlacementRandomization  # noqa: E402


def numpy_reference(positions: np.ndarray, orientations: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's formulas in NumPy (y up), for timing only."""
    dt = 1.0 / fps
    p = positions
    acc = np.empty_like(p)
    acc[..., 1:-1, :] = (p[..., 2:, :] - 2 * p[..., 1:-1, :] + p[..., :-2, :]) / dt**2
    acc[..., 0, :] = (2 * p[..., 0, :] - 5 * p[..., 1, :] + 4 * p[..., 2, :] - p[..., 3, :]) / dt**2
    acc[..., -1, :] = (2 * p[..., -1, :] - 5 * p[..., -2, :] + 4 * p[..., -3, :] - p[..., -4, :]) / dt**2
    acc[..., 1] += STANDARD_GRAVITY
    q = orientations / np.linalg.norm(orientations, axis=-1, keepdims=True)
    w, u = q[..., :1], -q[..., 1:]  # conjugate: world → sensor
    uv = np.cross(u, acc)
    acc = acc + 2 * (w * uv + np.cross(u, uv))

    w0, v0 = q[..., :-1, :1], q[..., :-1, 1:]
    w1, v1 = q[..., 1:, :1], q[..., 1:, 1:]
    dw = w0 * w1 + (v0 * v1).sum(-1, keepdims=True)  # conj(q0) ⊗ q1
    dv = w0 * v1 - w1 * v0 - np.cross(v0, v1)
    sign = np.where(dw < 0, -1.0, 1.0)
    dw, dv = dw * sign, dv * sign
    sin_half = np.linalg.norm(dv, axis=-1, keepdims=True)
    scale = np.where(sin_half < 1e-6, 2.0 / dw, 2 * np.arctan2(sin_half, dw) / np.maximum(sin_half, 1e-12))
    half = scale * dv / dt
    gyro = np.empty_like(p)
    gyro[..., 1:-1, :] = 0.5 * (half[..., :-1, :] + half[..., 1:, :])
    gyro[..., 0, :] = 1.5 * half[..., 0, :] - 0.5 * half[..., 1, :]
    gyro[..., -1, :] = 1.5 * half[..., -1, :] - 0.5 * half[..., -2, :]
    return acc, gyro


def make_trajectories(clips: int, sensors: int, frames: int, fps: float, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    steps = torch.randn(clips, sensors, frames, 3, generator=generator) * 0.01
    positions = torch.cumsum(torch.cumsum(steps, dim=2), dim=2) / frames
    rotvec = torch.cumsum(torch.randn(clips, sensors, frames, 3, generator=generator) * 0.05, dim=2)
    return positions, quaternion.from_rotation_vector(rotvec)


def best_time(function, repeats: int, synchronize=lambda: None) -> float:
    function()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def pipeline_batch(clips: int, seed: int = 0) -> tuple[WristIMUPipeline, torch.Tensor, dict[str, torch.Tensor]]:
    """The DataModule's pipeline (BMI270, jitter, randomisation), `clips` 4 s procedural clips and their draws."""
    pipeline = WristIMUPipeline(
        sensor=device("bmi270"),
        mount_jitter=MountJitter(roll_deg=30.0, tilt_deg=15.0),
        randomization=PlacementRandomization(offset_along_m=0.03, other_wrist_probability=0.5, upside_down_probability=0.1),
    )
    motion = ProceduralMotionSet(num_clips=clips, seed=seed, duration_s=4.0, fps=pipeline.motion_fps)
    joints = torch.from_numpy(np.stack([motion[i].joints for i in range(clips)])).float()
    generator = torch.Generator().manual_seed(seed)
    per_clip = [pipeline.draw(pipeline.output_length(joints.shape[1]), generator) for _ in range(clips)]
    draws = {key: torch.stack([d[key] for d in per_clip]) for key in per_clip[0]}
    return pipeline, joints, draws


def compare_pipeline_with_training(clips: int, repeats: int, device_: torch.device) -> None:
    """Seconds per batch of the full pipeline and of a DeepConvLSTM training step, on `device_`."""
    pipeline, joints, draws = pipeline_batch(clips)
    joints, draws = joints.to(device_), {key: value.to(device_) for key, value in draws.items()}
    window, stride = 100, 50  # 2 s at 50 Hz, 50 % overlap: the DataModule's defaults

    def simulate_batch() -> torch.Tensor:
        with torch.no_grad():
            return sliding_windows(pipeline(joints, draws), window, stride).flatten(0, 1)

    windows = simulate_batch()
    labels = torch.randint(0, 10, (windows.shape[0],), generator=torch.Generator().manual_seed(0)).to(device_)
    net = DeepConvLSTM(in_channels=6, num_classes=10).to(device_)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(windows), labels).backward()
        optimizer.step()

    synchronize = torch.cuda.synchronize if device_.type == "cuda" else (lambda: None)
    t_pipeline = best_time(simulate_batch, repeats, synchronize)
    t_step = best_time(train_step, repeats, synchronize)
    samples = windows.shape[0] * window
    print(f"[{device_}] full pipeline, {clips} clips × 4 s → {windows.shape[0]} windows of 2 s: "
          f"{t_pipeline * 1e3:8.1f} ms ({joints.shape[0] * pipeline.output_length(joints.shape[1]) / t_pipeline / 1e6:.2f} "
          f"M IMU samples/s)")
    print(f"[{device_}] DeepConvLSTM training step on those {windows.shape[0]} windows ({samples:,} samples): "
          f"{t_step * 1e3:8.1f} ms")
    print(f"[{device_}] pipeline / training step = {t_pipeline / t_step:.3f} ({100 * t_pipeline / t_step:.1f} %)")
    if device_.type == "cuda":
        moved = (joints.numel() + sum(v.numel() for v in draws.values()) + windows.numel()) * 4
        buffer = torch.empty(moved // 4, device=device_)
        t_copy = best_time(lambda: buffer.clone(), repeats, synchronize)
        print(f"[{device_}] pipeline bandwidth (inputs + output once): {moved / t_pipeline / 1e9:.1f} GB/s; "
              f"a copy of the same bytes: {2 * moved / t_copy / 1e9:.1f} GB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--sensors", type=int, default=2)
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="clips per training batch for the pipeline comparison")
    args = parser.parse_args()

    positions, orientations = make_trajectories(args.clips, args.sensors, args.frames, args.fps)
    samples = args.clips * args.sensors * args.frames
    print(f"batch: {args.clips} clips × {args.sensors} sensors × {args.frames} frames = {samples:,} IMU samples, float32")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    p_np, q_np = positions.numpy(), orientations.numpy()
    acc_ref, gyro_ref = numpy_reference(p_np, q_np, args.fps)
    acc, gyro = simulate(positions, orientations, args.fps)
    # Same formulas: the outputs must agree before their timings mean anything.
    assert np.allclose(acc.numpy(), acc_ref, atol=1e-2) and np.allclose(gyro.numpy(), gyro_ref, atol=1e-3)

    t_numpy = best_time(lambda: numpy_reference(p_np, q_np, args.fps), args.repeats)
    t_torch = best_time(lambda: simulate(positions, orientations, args.fps), args.repeats)
    print(f"numpy reference (CPU): {samples / t_numpy / 1e6:8.2f} M samples/s  ({t_numpy * 1e3:7.1f} ms)")
    print(f"virtual_imu     (CPU): {samples / t_torch / 1e6:8.2f} M samples/s  ({t_torch * 1e3:7.1f} ms)")
    print(f"speed-up over numpy (CPU): {t_numpy / t_torch:.2f}x")

    if torch.cuda.is_available():
        device = torch.device("cuda")
        p_gpu, q_gpu = positions.to(device), orientations.to(device)
        t_gpu = best_time(lambda: simulate(p_gpu, q_gpu, args.fps), args.repeats, torch.cuda.synchronize)
        moved = (p_gpu.numel() + q_gpu.numel() + 2 * p_gpu.numel()) * p_gpu.element_size()
        buffer = torch.empty(moved // 4, device=device)
        t_copy = best_time(lambda: buffer.clone(), args.repeats, torch.cuda.synchronize)
        print(f"virtual_imu ({torch.cuda.get_device_name()}): {samples / t_gpu / 1e6:8.2f} M samples/s "
              f"({t_gpu * 1e3:.2f} ms), speed-up over numpy CPU {t_numpy / t_gpu:.1f}x")
        print(f"achieved bandwidth (inputs + outputs once): {moved / t_gpu / 1e9:.1f} GB/s; "
              f"a copy of the same bytes: {2 * moved / t_copy / 1e9:.1f} GB/s")
    else:
        print("no CUDA device: GPU throughput and bandwidth not measured")

    compare_pipeline_with_training(args.batch, args.repeats, torch.device("cpu"))
    if torch.cuda.is_available():
        compare_pipeline_with_training(args.batch, args.repeats, torch.device("cuda"))


if __name__ == "__main__":
    main()
