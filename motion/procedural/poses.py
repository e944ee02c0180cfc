"""Anatomical joint angles -> local joint rotations of the rig.

A pose track is a dict of angle arrays `[T]` (radians, or scalars held constant); missing angles are
0. Sign conventions (body frame: x left, y up, z forward):

- ``pelvis_yaw`` turn left, ``pelvis_pitch`` trunk forward, ``pelvis_roll`` tilt to the left
  (the pelvis' global orientation, applied yaw · pitch · roll).
- ``spine_flex`` forward, ``spine_bend`` to the left, ``spine_twist`` turn left: spread over
  spine1/2/3; ``neck_flex`` / ``neck_bend`` / ``neck_twist`` likewise for the neck.
- per side (``left_`` / ``right_``): ``hip_flex`` thigh forward, ``hip_abd`` thigh outwards,
  ``hip_rot`` internal rotation; ``knee_flex`` shank backwards; ``ankle_dorsi`` toes up;
  ``collar_elev`` shoulder up, ``collar_protract`` shoulder forward; ``shoulder_flex`` arm forward
  (0 = hanging), ``shoulder_abd`` arm outwards, ``shoulder_rot`` internal rotation (forearm towards
  the belly); ``elbow_flex`` (clamped to at least `MIN_ELBOW_FLEX_RAD`).
"""

from __future__ import annotations

from typing import Mapping, Union

import numpy as np

from motion import skeleton as sk
from motion.procedural.rotations import compose, rot_x, rot_y, rot_z

AngleTrack = Mapping[str, Union[np.ndarray, float]]

MIN_ELBOW_FLEX_RAD = np.radians(12.0)
"""Elbows never straighten fully: a straight arm makes the forearm frame degenerate downstream."""

_SPINE_SHARE = ((sk.SPINE1, 0.3), (sk.SPINE2, 0.35), (sk.SPINE3, 0.35))
_SIDES = (("left", +1.0), ("right", -1.0))
_ARM_DOWN = {"left": rot_z(-np.pi / 2), "right": rot_z(np.pi / 2)}  # T-pose arm -> hanging at the side
_JOINTS = {
    "left": dict(hip=sk.LEFT_HIP, knee=sk.LEFT_KNEE, ankle=sk.LEFT_ANKLE, collar=sk.LEFT_COLLAR,
                 shoulder=sk.LEFT_SHOULDER, elbow=sk.LEFT_ELBOW),
    "right": dict(hip=sk.RIGHT_HIP, knee=sk.RIGHT_KNEE, ankle=sk.RIGHT_ANKLE, collar=sk.RIGHT_COLLAR,
                  shoulder=sk.RIGHT_SHOULDER, elbow=sk.RIGHT_ELBOW),
}


def _angle(angles: AngleTrack, name: str, frames: int):
    """The channel as given: a scalar (constant) or an array `[T]`."""
    value = angles.get(name, 0.0)
    if np.ndim(value) == 0:
        return float(value)
    value = np.asarray(value, dtype=np.float64)
    if value.shape != (frames,):
        raise ValueError(f"angle track {name!r} must have shape [{frames}], got {value.shape}")
    return value


def _rotation(builder, angle):
    """`builder(angle)` or None for a constant zero angle (identity, skipped when composing)."""
    if np.ndim(angle) == 0 and angle == 0.0:
        return None
    return builder(angle)


def _compose(*factors) -> np.ndarray:
    """Product of the non-None rotations (`[3, 3]` constants broadcast against `[T, 3, 3]` tracks)."""
    present = [factor for factor in factors if factor is not None]
    return compose(*present) if present else np.eye(3)


def pelvis_orientation(angles: AngleTrack, frames: int) -> np.ndarray:
    """Global pelvis rotation `[T, 3, 3]` from ``pelvis_yaw/pitch/roll``."""
    get = lambda name: _angle(angles, name, frames)  # noqa: E731
    rotation = _compose(_rotation(rot_y, get("pelvis_yaw")), _rotation(rot_x, get("pelvis_pitch")),
                        _rotation(rot_z, -get("pelvis_roll")))
    return np.broadcast_to(rotation, (frames, 3, 3)).copy()


def local_rotations_from_angles(angles: AngleTrack, frames: int) -> np.ndarray:
    """Local rotations `[T, 22, 3, 3]` of every joint from an angle track (see module docstring)."""
    get = lambda name: _angle(angles, name, frames)  # noqa: E731
    local = np.empty((frames, sk.NUM_JOINTS, 3, 3))
    local[:] = np.eye(3)
    local[:, sk.PELVIS] = pelvis_orientation(angles, frames)

    flex, bend, twist = get("spine_flex"), get("spine_bend"), get("spine_twist")
    for joint, share in _SPINE_SHARE:
        local[:, joint] = _compose(_rotation(rot_x, share * flex), _rotation(rot_z, -share * bend),
                                   _rotation(rot_y, share * twist))
    local[:, sk.NECK] = _compose(_rotation(rot_x, get("neck_flex")), _rotation(rot_z, -get("neck_bend")),
                                 _rotation(rot_y, get("neck_twist")))

    for side, sign in _SIDES:
        joints = _JOINTS[side]
        p = lambda name: get(f"{side}_{name}")  # noqa: E731
        local[:, joints["hip"]] = _compose(_rotation(rot_x, -p("hip_flex")), _rotation(rot_z, sign * p("hip_abd")),
                                           _rotation(rot_y, -sign * p("hip_rot")))
        local[:, joints["knee"]] = _compose(_rotation(rot_x, p("knee_flex")))
        local[:, joints["ankle"]] = _compose(_rotation(rot_x, -p("ankle_dorsi")))
        local[:, joints["collar"]] = _compose(_rotation(rot_y, -sign * p("collar_protract")),
                                              _rotation(rot_z, sign * p("collar_elev")))
        local[:, joints["shoulder"]] = _compose(
            _rotation(rot_x, -p("shoulder_flex")), _rotation(rot_z, sign * p("shoulder_abd")),
            _rotation(rot_y, -sign * p("shoulder_rot")), _ARM_DOWN[side],
        )
        elbow = np.maximum(p("elbow_flex"), MIN_ELBOW_FLEX_RAD)
        local[:, joints["elbow"]] = rot_y(-sign * elbow)
    return local


def arm_angles(side: str, *, flex, abd, rot, elbow, protract=0.0, elev=0.0) -> dict[str, np.ndarray]:
    """Angle-track entries for one arm (radians)."""
    return {
        f"{side}_shoulder_flex": flex,
        f"{side}_shoulder_abd": abd,
        f"{side}_shoulder_rot": rot,
        f"{side}_elbow_flex": elbow,
        f"{side}_collar_protract": protract,
        f"{side}_collar_elev": elev,
    }
