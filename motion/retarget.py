"""BVH motion capture → the HumanML3D 22-joint skeleton (metres, y up, 20 fps).

Each rig family maps the 22 joints to joints of its hierarchy by name. The HumanML3D spine has three
joints between pelvis and neck; a rig's spine seldom lines up with them, so spine1-3 are placed along
the rig's own pelvis → neck chain at the arc-length fractions they have in the template skeleton
(`motion.skeleton`), which keeps them on the rig's (rigid) spine. Positions come from forward
kinematics, so every mapped bone keeps its captured length.

Known families (all right-handed, y up):
  - "cmu_cgspeed": the cgspeed BVH conversion of the CMU database (Hips, LeftUpLeg, Spine1, Neck1, …),
    in the CMU ASF length unit (1/0.45 inch = 0.056444 m); its first frame is a T-pose reference, not
    motion, and is dropped. Neck and the clavicles sit on Spine1 (zero OFFSET): the ASF thorax bone has
    no length there, so these torsos come out ~0.1 m shorter than from the ASF-named files.
  - "cmu_asf": CMU's ASF bone names (root, lowerback, thorax, lowerneck, lhumerus, rfemur, …), as in
    the CMU BVH shipped with imusim, in centimetres.
  - "bandai_namco": Bandai-Namco Research Motiondataset (joint_Root on the floor, Hips, Chest,
    UpperArm_L, …), centimetres.
The floor is put at y = 0 at the lowest joint of the clip (HumanML3D's rule); x and z stay as captured.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
import torch

from motion import skeleton as sk
from motion.bvh import forward_kinematics, read_bvh
from virtual_imu import quaternion
from virtual_imu.filters import resample

SPINE_JOINTS = ("spine1", "spine2", "spine3")
"""HumanML3D joints placed along the rig's pelvis → neck chain instead of being mapped by name."""

MAPPED_JOINTS = tuple(name for name in sk.JOINT_NAMES if name not in SPINE_JOINTS)
"""HumanML3D joints every rig maps to one of its own joints."""

_STATURE_RANGE_M = (1.0, 2.5)
"""Plausible body heights; outside it, the rig's unit (scale_m) is almost surely wrong."""


def _template_spine_fractions() -> np.ndarray:
    """Arc-length positions of spine1-3 along pelvis → neck in the template, as fractions of its length."""
    offsets = sk.rest_offsets()
    chain = [sk.SPINE1, sk.SPINE2, sk.SPINE3, sk.NECK]
    cumulative = np.cumsum(np.linalg.norm(offsets[chain], axis=-1))
    return cumulative[:3] / cumulative[-1]


SPINE_FRACTIONS = _template_spine_fractions()
"""`[3]` positions of spine1, spine2, spine3 along the pelvis → neck chain (0 = pelvis, 1 = neck)."""


@dataclass(frozen=True)
class Rig:
    """How one BVH rig family maps onto the HumanML3D skeleton.

    Attributes:
        name: family name.
        joints: HumanML3D joint name → BVH joint name, for every name in `MAPPED_JOINTS`.
        spine: BVH joints from the pelvis joint up to the neck joint (spine1-3 are placed along them).
        scale_m: metres per file length unit.
        skip_frames: leading motion frames that are not motion (e.g. a T-pose reference frame).
        up_axis: "y" or "z", the file's vertical axis (right-handed either way).
    """

    name: str
    joints: Mapping[str, str]
    spine: tuple[str, ...]
    scale_m: float
    skip_frames: int = 0
    up_axis: str = "y"
    required: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self):
        missing = [name for name in MAPPED_JOINTS if name not in self.joints]
        extra = [name for name in self.joints if name not in MAPPED_JOINTS]
        if missing or extra:
            raise ValueError(f"Rig {self.name!r}: joints must map exactly {MAPPED_JOINTS}; missing {missing}, extra {extra}")
        object.__setattr__(self, "joints", MappingProxyType(dict(self.joints)))
        object.__setattr__(self, "spine", tuple(self.spine))
        if len(self.spine) < 2 or self.spine[0] != self.joints["pelvis"] or self.spine[-1] != self.joints["neck"]:
            raise ValueError(f"Rig {self.name!r}: spine must run from the pelvis joint {self.joints['pelvis']!r} "
                             f"to the neck joint {self.joints['neck']!r}, got {self.spine}")
        if not (np.isfinite(self.scale_m) and self.scale_m > 0):
            raise ValueError(f"Rig {self.name!r}: scale_m must be a positive number, got {self.scale_m!r}")
        if isinstance(self.skip_frames, bool) or not isinstance(self.skip_frames, int) or self.skip_frames < 0:
            raise ValueError(f"Rig {self.name!r}: skip_frames must be a non-negative integer, got {self.skip_frames!r}")
        if self.up_axis not in ("y", "z"):
            raise ValueError(f"Rig {self.name!r}: up_axis must be 'y' or 'z', got {self.up_axis!r}")
        object.__setattr__(self, "required", frozenset(self.joints.values()) | frozenset(self.spine))

    def missing_joints(self, names: Sequence[str]) -> list[str]:
        """The BVH joints this rig needs that `names` lacks (sorted)."""
        return sorted(self.required - set(names))


def _limbs(side_names: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """{'left_knee': left name, 'right_knee': right name, …} from {'knee': (left name, right name), …}."""
    return {f"{side}_{part}": pair[i] for part, pair in side_names.items() for i, side in enumerate(("left", "right"))}


CMU_CGSPEED = Rig(
    name="cmu_cgspeed",
    joints={
        "pelvis": "Hips", "neck": "Neck", "head": "Head",
        **_limbs({
            "hip": ("LeftUpLeg", "RightUpLeg"), "knee": ("LeftLeg", "RightLeg"),
            "ankle": ("LeftFoot", "RightFoot"), "foot": ("LeftToeBase", "RightToeBase"),
            "collar": ("LeftShoulder", "RightShoulder"), "shoulder": ("LeftArm", "RightArm"),
            "elbow": ("LeftForeArm", "RightForeArm"), "wrist": ("LeftHand", "RightHand"),
        }),
    },
    spine=("Hips", "LowerBack", "Spine", "Spine1", "Neck"),
    scale_m=0.0254 / 0.45,
    skip_frames=1,
)

CMU_ASF = Rig(
    name="cmu_asf",
    joints={
        "pelvis": "root", "neck": "lowerneck", "head": "head",
        **_limbs({
            "hip": ("lfemur", "rfemur"), "knee": ("ltibia", "rtibia"), "ankle": ("lfoot", "rfoot"),
            "foot": ("ltoes", "rtoes"), "collar": ("lclavicle", "rclavicle"), "shoulder": ("lhumerus", "rhumerus"),
            "elbow": ("lradius", "rradius"), "wrist": ("lwrist", "rwrist"),
        }),
    },
    spine=("root", "lowerback", "upperback", "thorax", "lowerneck"),
    scale_m=0.01,
)

BANDAI_NAMCO = Rig(
    name="bandai_namco",
    joints={
        "pelvis": "Hips", "neck": "Neck", "head": "Head",
        **_limbs({
            "hip": ("UpperLeg_L", "UpperLeg_R"), "knee": ("LowerLeg_L", "LowerLeg_R"),
            "ankle": ("Foot_L", "Foot_R"), "foot": ("Toes_L", "Toes_R"),
            "collar": ("Shoulder_L", "Shoulder_R"), "shoulder": ("UpperArm_L", "UpperArm_R"),
            "elbow": ("LowerArm_L", "LowerArm_R"), "wrist": ("Hand_L", "Hand_R"),
        }),
    },
    spine=("Hips", "Spine", "Chest", "Neck"),
    scale_m=0.01,
)

RIGS = MappingProxyType({rig.name: rig for rig in (CMU_CGSPEED, CMU_ASF, BANDAI_NAMCO)})
"""The known rig families by name."""


def detect_rig(names: Sequence[str], *, source: str = "BVH file") -> Rig:
    """The known rig whose needed joints all appear in `names` (joint names of a BVH hierarchy)."""
    for rig in RIGS.values():
        if not rig.missing_joints(names):
            return rig
    closest = min(RIGS.values(), key=lambda rig: len(rig.missing_joints(names)))
    raise ValueError(f"{source}: joint names match no known rig ({list(RIGS)}); the closest, {closest.name!r}, "
                     f"lacks {closest.missing_joints(names)}. Pass rig=Rig(...) with an explicit joint map.")


def _check_joints(rig: Rig, names: Sequence[str], source: str) -> None:
    missing = rig.missing_joints(names)
    if missing:
        raise ValueError(f"{source}: rig {rig.name!r} needs joints the file lacks: {missing}")


def _with_ancestors(parents: Sequence[int], joints: Sequence[int]) -> list[int]:
    """`joints` and all their ancestors, sorted (so parents still come before children)."""
    keep: set[int] = set()
    for joint in joints:
        while joint >= 0 and joint not in keep:
            keep.add(joint)
            joint = parents[joint]
    return sorted(keep)


def _spine_weights(segment_lengths: np.ndarray) -> np.ndarray:
    """`[3, n]` weights placing spine1-3 at `SPINE_FRACTIONS` of a chain of n joints with `[n − 1]` segment lengths."""
    cumulative = np.concatenate(([0.0], np.cumsum(segment_lengths)))
    weights = np.zeros((len(SPINE_FRACTIONS), len(cumulative)))
    for row, target in enumerate(SPINE_FRACTIONS * cumulative[-1]):
        # last joint at or before `target`; the next one lies beyond it (fractions < 1), so the
        # denominator below is positive even when the chain has zero-length segments
        segment = int(np.searchsorted(cumulative, target, side="right")) - 1
        fraction = (target - cumulative[segment]) / (cumulative[segment + 1] - cumulative[segment])
        weights[row, segment], weights[row, segment + 1] = 1.0 - fraction, fraction
    return weights


def retarget(positions: np.ndarray, names: Sequence[str], rig: Rig, *, source: str = "BVH file") -> np.ndarray:
    """Pick and place the 22 HumanML3D joints from BVH world positions.

    Args:
        positions: `[T, J, 3]` world positions of the BVH joints (m), `names` `[J]` their names.
        rig: the joint map.
        source: what to name in errors (the file).
    Returns:
        `[T, 22, 3]` joints in HumanML3D order, in the same frame and units as `positions`.
    """
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[1:] != (len(names), 3):
        raise ValueError(f"positions must have shape [T, {len(names)}, 3] (one column per name), got {positions.shape}")
    _check_joints(rig, names, source)
    index = {name: i for i, name in enumerate(names)}
    out = np.empty(positions.shape[:1] + (sk.NUM_JOINTS, 3))
    for joint, bvh_name in rig.joints.items():
        out[:, sk.joint_index(joint)] = positions[:, index[bvh_name]]
    chain = positions[:, [index[name] for name in rig.spine]]  # [T, n, 3]
    segment_lengths = np.linalg.norm(np.diff(chain, axis=1), axis=-1).mean(axis=0)
    if segment_lengths.sum() <= 0:
        raise ValueError(f"{source}: the spine of rig {rig.name!r} ({rig.spine}) has zero length")
    weights = _spine_weights(segment_lengths)
    spine = np.einsum("sn,tnc->tsc", weights, chain)
    for row, joint in enumerate(SPINE_JOINTS):
        out[:, sk.joint_index(joint)] = spine[:, row]
    return out


def _to_y_up(positions: np.ndarray, up_axis: str) -> np.ndarray:
    # right-handed z-up (x, y, z) → right-handed y-up (x, z, −y): a −90° rotation about x
    return positions if up_axis == "y" else np.stack((positions[..., 0], positions[..., 2], -positions[..., 1]), -1)


def _resolve_rig(rig: Rig | str | None, names: Sequence[str], source: str) -> Rig:
    if rig is None:
        return detect_rig(names, source=source)
    if isinstance(rig, str):
        if rig not in RIGS:
            raise ValueError(f"rig must be a Rig or one of {list(RIGS)}, got {rig!r}")
        return RIGS[rig]
    if not isinstance(rig, Rig):
        raise ValueError(f"rig must be a Rig, a rig name or None, got {type(rig).__name__}")
    return rig


def _sign_continuous(quaternions: torch.Tensor) -> torch.Tensor:
    """`[T, ..., 4]` quaternions with signs flipped so consecutive ones lie in the same hemisphere."""
    dots = (quaternions[1:] * quaternions[:-1]).sum(-1)
    flips = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(quaternions.dtype), dim=0)
    return torch.cat((quaternions[:1], quaternions[1:] * flips[..., None]), dim=0)


def resample_local_transforms(translations: np.ndarray, rotations: np.ndarray, fps_in: float,
                              fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Local translations `[T, J, 3]` and rotations `[T, J, 3, 3]` resampled from `fps_in` to `fps_out`.

    Resampling the FK inputs rather than the joint positions keeps every bone rigid. Rotations go
    through sign-continuous unit quaternions (w, x, y, z), anti-aliased and linearly interpolated
    component-wise by `virtual_imu.filters.resample`, then renormalised.
    """
    frames, joints = translations.shape[:2]
    quaternions = _sign_continuous(quaternion.from_matrix(torch.from_numpy(rotations)))
    # one float32 pass (several times faster than float64; errors ~1e-7 m, far below capture noise)
    signals = torch.cat((torch.from_numpy(translations).reshape(frames, -1), quaternions.reshape(frames, -1)), dim=1)
    resampled = resample(signals.float(), fps_in, fps_out).double()
    moved = resampled[:, : joints * 3].reshape(-1, joints, 3)
    turned = resampled[:, joints * 3 :].reshape(-1, joints, 4)
    turned = turned / turned.norm(dim=-1, keepdim=True)
    return moved.numpy(), quaternion.to_matrix(turned).numpy()


def load_bvh_as_humanml3d(path: str | Path, *, fps: float = sk.FPS, rig: Rig | str | None = None) -> np.ndarray:
    """Joints `[T, 22, 3]` (m, y up, floor at y = 0) of the BVH file at `path`, resampled to `fps`.

    Frame k is at k / fps s after the first motion frame, so T = floor((N − 1) · fps / fps_file) + 1
    for N motion frames (see `resample_local_transforms`).

    Args:
        path: the .bvh file.
        fps: output frame rate (frames/s).
        rig: a `Rig`, the name of one in `RIGS`, or None to detect the family from the joint names.
    Raises:
        ValueError naming the file: malformed BVH, unknown rig, missing joints, a body size outside
        1–2.5 m (wrong unit), or fewer than 2 motion frames.
    """
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
    motion = read_bvh(path)
    source = str(motion.path)
    rig = _resolve_rig(rig, motion.names, source)
    _check_joints(rig, motion.names, source)
    if motion.num_frames - rig.skip_frames < 2:
        raise ValueError(f"{source}: needs at least 2 motion frames after the {rig.skip_frames} skipped, "
                         f"has {motion.num_frames}")
    keep = _with_ancestors(motion.parents, [motion.names.index(name) for name in rig.required])
    parents = [keep.index(motion.parents[j]) if motion.parents[j] >= 0 else -1 for j in keep]
    translations, rotations = (local[rig.skip_frames :, keep] for local in motion.local_transforms())
    translations, rotations = resample_local_transforms(translations * rig.scale_m, rotations, motion.fps, float(fps))
    positions, _ = forward_kinematics(parents, translations, rotations)
    joints = _to_y_up(retarget(positions, [motion.names[j] for j in keep], rig, source=source), rig.up_axis)
    stature_m = float(np.median(sk.estimate_stature_m(joints)))
    if not _STATURE_RANGE_M[0] <= stature_m <= _STATURE_RANGE_M[1]:
        raise ValueError(f"{source}: body height {stature_m:.3g} m with rig {rig.name!r} (scale_m={rig.scale_m}) is "
                         f"outside {_STATURE_RANGE_M} m; the file's length unit differs: pass a Rig with the right scale_m")
    joints[..., 1] -= joints[..., 1].min()
    return joints
