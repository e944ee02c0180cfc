"""Named sensor placements on joint-position skeletons (HumanML3D's 22 joints)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motion.skeleton import JOINT_NAMES
from virtual_imu.placement import LEFT_WRIST_WATCH, RIGHT_WRIST_WATCH, SensorMount, limb_frame


@dataclass(frozen=True)
class LimbSensorPreset:
    """A sensor on the segment middle→distal of a three-joint limb (e.g. shoulder, elbow, wrist).

    The sensor's origin joint is `distal` (a watch is positioned relative to the wrist joint).
    """

    proximal: str
    middle: str
    distal: str
    body_left: str
    body_right: str
    mount: SensorMount

    def place(
        self,
        joints: torch.Tensor,
        joint_names: tuple[str, ...] = JOINT_NAMES,
        offset_m: torch.Tensor | None = None,
        mount_rotation: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sensor positions `[..., T, 3]` (m) and sensor-to-world quaternions `[..., T, 4]` from joints `[..., T, J, 3]`.

        `offset_m` `[..., 3]` and `mount_rotation` `[..., 4]` replace the mount's values per clip (see
        `SensorMount.attach`).
        """
        if joints.dim() < 3 or joints.shape[-2:] != (len(joint_names), 3):
            raise ValueError(f"joints must have shape [..., T, {len(joint_names)}, 3], got {tuple(joints.shape)}")
        index = {name: i for i, name in enumerate(joint_names)}
        missing = [n for n in (self.proximal, self.middle, self.distal, self.body_left, self.body_right) if n not in index]
        if missing:
            raise ValueError(f"joint_names lacks the joints {missing} that this preset needs")

        def joint(name: str) -> torch.Tensor:
            return joints[..., index[name], :]

        segment = limb_frame(
            joint(self.proximal), joint(self.middle), joint(self.distal), joint(self.body_right) - joint(self.body_left)
        )
        return self.mount.attach(joint(self.distal), segment, offset_m, mount_rotation)


LEFT_WRIST = LimbSensorPreset(
    "left_shoulder", "left_elbow", "left_wrist", "left_shoulder", "right_shoulder", LEFT_WRIST_WATCH
)
RIGHT_WRIST = LimbSensorPreset(
    "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "right_shoulder", RIGHT_WRIST_WATCH
)
PRESETS = {"left_wrist": LEFT_WRIST, "right_wrist": RIGHT_WRIST}


def preset(name: str) -> LimbSensorPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown sensor placement {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
