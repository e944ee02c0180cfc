import pytest

from datamodules.virtual_imu_datamodule import VirtualIMUDataModule
from motion.procedural import ProceduralMotionSet
from virtual_imu.mems import MEMSIMU, TriaxialErrors
from virtual_imu.pipeline import WristIMUPipeline


def small_datamodule(*, seed: int = 0, num_clips: int = 22, **overrides) -> VirtualIMUDataModule:
    def motion(set_seed: int) -> ProceduralMotionSet:
        return ProceduralMotionSet(num_clips=num_clips, seed=set_seed, duration_s=4.0, fps=20.0)

    sensor = MEMSIMU(  # white-noise σ = N·√(50 Hz): 0.01 m/s², 0.001 rad/s
        accelerometer=TriaxialErrors(noise_density=0.01 / 50**0.5, bias_std=0.1),
        gyroscope=TriaxialErrors(noise_density=0.001 / 50**0.5, bias_std=0.005),
    )
    kwargs = dict(
        train_motion=motion(1),
        val_motion=motion(2),
        test_motion=motion(3),
        pipeline=WristIMUPipeline(placement="left_wrist", motion_fps=20.0, target_hz=50.0, sensor=sensor),
        batch_size=8,
        seed=seed,
        normalization_clips=num_clips,
    )
    kwargs.update(overrides)
    return VirtualIMUDataModule(**kwargs)


@pytest.fixture
def make_datamodule():
    return small_datamodule
