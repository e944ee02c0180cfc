"""Joint positions → HumanML3D 263-d features (the forward direction of `motion.humanml3d`).

Follows HumanML3D's `process_file` (github.com/EricGuo5513/HumanML3D, `motion_representation.ipynb`,
and the copy in GuyTevet/motion-diffusion-model `data_loaders/humanml/scripts/motion_process.py`):

1. optionally give the skeleton the bone lengths of a reference subject (`target_offsets`);
2. `canonicalize_joints`: floor at y = 0, root (x, z) of frame 0 at the origin, frame 0 facing +z;
3. per-frame heading q_t from the body's across vector, Gaussian-smoothed over time (σ = 20 frames),
   with q_0 forced to the identity (so decoding, which starts from the identity, is exact);
4. ric positions, root velocities, local velocities, foot contacts and IK rotations (below).

Two conventions are kept *because the released data use them* (the sample-pair test reproduces the
published features only with both), not because they are natural:
- the heading's across vector is (right − left shoulder) − (right − left hip): HumanML3D's IK unpacks
  its face-joint indices in another order than its facing step, so the hip term enters with a minus
  sign (the facing step of frame 0 uses the plain sum);
- a joint's local rotation is q_parent⁻¹ ⊗ q_joint where q_joint is the shortest-arc rotation from the
  joint's rest direction (`REST_DIRECTIONS`) to its bone direction (no twist), and for the first bone
  of every kinematic chain "parent" is the heading q_t itself.

One deliberate difference: the heading step takes the short way round (see `extract_features`), where
HumanML3D gets the sign wrong on the one frame at which the heading crosses 180°.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from motion.skeleton import (
    FOOT_JOINTS,
    KINEMATIC_CHAINS,
    LEFT_HIP,
    LEFT_SHOULDER,
    NUM_JOINTS,
    PARENTS,
    RIGHT_ANKLE,
    RIGHT_HIP,
    RIGHT_KNEE,
    RIGHT_SHOULDER,
)
from virtual_imu import quaternion

HEADING_SMOOTHING_FRAMES = 20.0
"""σ (frames) of the Gaussian that smooths the heading direction, as in HumanML3D."""

DEFAULT_FEET_THRESHOLD = 0.002
"""Foot-contact threshold on the squared per-frame displacement, m² (≈ 0.89 m/s at 20 fps)."""

# Direction of each bone (parent → joint) in HumanML3D's IK rest pose: +x is the body's left, legs
# and arms hang down, feet and head point forward (values of HumanML3D's paramUtil.t2m_raw_offsets).
REST_DIRECTIONS = np.array(
    [
        (0.0, 0.0, 0.0),  # pelvis (root: no bone)
        (1.0, 0.0, 0.0),  # left_hip
        (-1.0, 0.0, 0.0),  # right_hip
        (0.0, 1.0, 0.0),  # spine1
        (0.0, -1.0, 0.0),  # left_knee
        (0.0, -1.0, 0.0),  # right_knee
        (0.0, 1.0, 0.0),  # spine2
        (0.0, -1.0, 0.0),  # left_ankle
        (0.0, -1.0, 0.0),  # right_ankle
        (0.0, 1.0, 0.0),  # spine3
        (0.0, 0.0, 1.0),  # left_foot
        (0.0, 0.0, 1.0),  # right_foot
        (0.0, 1.0, 0.0),  # neck
        (1.0, 0.0, 0.0),  # left_collar
        (-1.0, 0.0, 0.0),  # right_collar
        (0.0, 0.0, 1.0),  # head
        (0.0, -1.0, 0.0),  # left_shoulder
        (0.0, -1.0, 0.0),  # right_shoulder
        (0.0, -1.0, 0.0),  # left_elbow
        (0.0, -1.0, 0.0),  # right_elbow
        (0.0, -1.0, 0.0),  # left_wrist
        (0.0, -1.0, 0.0),  # right_wrist
    ]
)
REST_DIRECTIONS.setflags(write=False)

_CHAIN_HEADS = frozenset(chain[1] for chain in KINEMATIC_CHAINS)
"""Joints whose IK parent rotation is the heading (first bone of each chain): 1, 2, 3, 13, 14."""


def _as_joints(joints, name: str = "joints") -> torch.Tensor:
    if not isinstance(joints, (np.ndarray, torch.Tensor)):
        raise ValueError(f"{name} must be a numpy array or torch.Tensor, got {type(joints).__name__}")
    values = torch.as_tensor(np.asarray(joints) if isinstance(joints, np.ndarray) else joints.detach().cpu())
    if not values.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {values.dtype}")
    if values.dim() != 3 or values.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape [T, {NUM_JOINTS}, 3], got {tuple(values.shape)}")
    if values.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 frames (features are per frame pair), got {values.shape[0]}")
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} contains non-finite values (NaN or Inf)")
    return values.to(torch.float64)


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True)


def _rotation_between(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Shortest-arc unit quaternion `[..., 4]` turning direction `source` onto `target` (`[..., 3]`).

    For opposite directions the arc is not unique; the half turn is then taken about the axis
    perpendicular to `source` and to the basis vector least aligned with it.
    """
    source, target = torch.broadcast_tensors(source, target)
    w = source.norm(dim=-1, keepdim=True) * target.norm(dim=-1, keepdim=True) + (source * target).sum(-1, keepdim=True)
    q = torch.cat((w, torch.linalg.cross(source, target, dim=-1)), dim=-1)
    norm = q.norm(dim=-1, keepdim=True)
    opposite = norm < 1e-9 * source.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    least_aligned = torch.nn.functional.one_hot(source.abs().argmin(-1), 3).to(source.dtype)
    half_turn = torch.cat((torch.zeros_like(w), _unit(torch.linalg.cross(source, least_aligned, dim=-1))), dim=-1)
    return torch.where(opposite, half_turn, q / norm.clamp_min(1e-300))


def offsets_from_joints(joints) -> np.ndarray:
    """Reference skeleton for `extract_features(target_offsets=...)`: rest direction × bone length.

    Args:
        joints: `[22, 3]` one frame of joint positions (m) of the reference subject.
    Returns:
        `[22, 3]` parent → joint offsets in m along `REST_DIRECTIONS` (root row zero).
    """
    frame = np.asarray(joints, dtype=np.float64)
    if frame.shape != (NUM_JOINTS, 3) or not np.isfinite(frame).all():
        raise ValueError(f"joints must be one finite frame [{NUM_JOINTS}, 3] (m), got shape {frame.shape}")
    lengths = np.linalg.norm(frame[1:] - frame[list(PARENTS[1:])], axis=-1)
    return np.concatenate((np.zeros((1, 3)), REST_DIRECTIONS[1:] * lengths[:, None]))


def _with_bone_lengths(joints: torch.Tensor, target_offsets) -> torch.Tensor:
    """Each bone keeps its direction and gets the reference length; the root path scales by leg length."""
    offsets = torch.as_tensor(np.asarray(target_offsets, dtype=np.float64))
    if offsets.shape != (NUM_JOINTS, 3) or not torch.isfinite(offsets).all():
        raise ValueError(
            f"target_offsets must be a finite [{NUM_JOINTS}, 3] array (m), got shape {tuple(offsets.shape)}"
        )
    lengths = offsets.norm(dim=-1)
    if (lengths[1:] <= 0).any():
        raise ValueError("target_offsets has a zero-length bone")
    parents = list(PARENTS[1:])
    bones = joints[:, 1:] - joints[:, parents]
    source_lengths = bones[0].norm(dim=-1)
    # HumanML3D scales the root trajectory by the ratio of (right thigh + right shank) lengths.
    leg = [RIGHT_KNEE - 1, RIGHT_ANKLE - 1]
    scale = lengths[1:][leg].sum() / source_lengths[leg].sum()
    rebuilt = [joints[:, 0] * scale]
    directions = _unit(bones)
    for joint in range(1, NUM_JOINTS):
        rebuilt.append(rebuilt[PARENTS[joint]] + lengths[joint] * directions[:, joint - 1])
    return torch.stack(rebuilt, dim=1)


def _forward_direction(across: torch.Tensor) -> torch.Tensor:
    """Horizontal facing direction y × across (not normalised), `[..., 3]`."""
    up = across.new_tensor([0.0, 1.0, 0.0]).expand_as(across)
    return torch.linalg.cross(up, _unit(across), dim=-1)


def _facing_to_z(forward: torch.Tensor) -> torch.Tensor:
    """Heading quaternion `[..., 4]` turning the horizontal `forward` onto +z (world → heading frame).

    The shortest arc between two horizontal directions is a turn about y; written with atan2 it stays
    defined when `forward` is −z, where the generic shortest arc is ambiguous.
    """
    if not (forward.norm(dim=-1) > 1e-9).all():  # also catches NaN from a zero across vector
        raise ValueError("joints give an undefined heading (hips and shoulders collinear with the vertical?)")
    half_angle = 0.5 * torch.atan2(-forward[..., 0], forward[..., 2])
    zero = torch.zeros_like(half_angle)
    return torch.stack((torch.cos(half_angle), zero, torch.sin(half_angle), zero), dim=-1)


def canonicalize_joints(joints):
    """HumanML3D's placement: floor at y = 0, frame 0's root (x, z) at the origin, frame 0 facing +z.

    The floor is the lowest joint over the whole clip; frame 0's facing comes from the hips and the
    shoulders ((right − left hip) + (right − left shoulder), turned by −90° about y).

    Args:
        joints: `[T, 22, 3]` joint positions (m, y up), numpy or torch.
    Returns:
        `[T, 22, 3]` float64, the same kind (numpy / torch) as the input.
    """
    values = _as_joints(joints)
    return _like_input(_canonical(values), joints)


def _canonical(values: torch.Tensor) -> torch.Tensor:
    floor = values[..., 1].min()
    origin = values.new_tensor([values[0, 0, 0], floor, values[0, 0, 2]])
    placed = values - origin
    first = placed[0]
    across = (first[RIGHT_HIP] - first[LEFT_HIP]) + (first[RIGHT_SHOULDER] - first[LEFT_SHOULDER])
    turn = _facing_to_z(_forward_direction(across))
    return quaternion.rotate(turn.expand(*placed.shape[:-1], 4), placed)


def _smoothed_heading(joints: torch.Tensor) -> torch.Tensor:
    """q_t `[T, 4]` (world → heading frame) with HumanML3D's across vector, smoothing and q_0 = 1."""
    across = (joints[:, RIGHT_SHOULDER] - joints[:, LEFT_SHOULDER]) - (joints[:, RIGHT_HIP] - joints[:, LEFT_HIP])
    forward = _forward_direction(across).numpy()
    forward = gaussian_filter1d(forward, HEADING_SMOOTHING_FRAMES, axis=0, mode="nearest")
    heading = _facing_to_z(torch.from_numpy(forward))
    heading[0] = heading.new_tensor([1.0, 0.0, 0.0, 0.0])
    return heading


def _local_rotations_6d(joints: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """IK rotations of joints 1…21 as the first two matrix columns, `[T, 21, 6]`."""
    parents = list(PARENTS[1:])
    bones = joints[:, 1:] - joints[:, parents]
    rest = bones.new_tensor(REST_DIRECTIONS[1:])
    joint_rotation = _rotation_between(rest.expand_as(bones), _unit(bones))  # [T, 21, 4] bone-aligning
    parent_rotation = torch.stack(
        [heading if joint in _CHAIN_HEADS else joint_rotation[:, PARENTS[joint] - 1] for joint in range(1, NUM_JOINTS)],
        dim=1,
    )
    local = quaternion.multiply(quaternion.conjugate(parent_rotation), joint_rotation)
    matrix = quaternion.to_matrix(local)
    return torch.cat((matrix[..., :, 0], matrix[..., :, 1]), dim=-1)


def _foot_contacts(joints: torch.Tensor, feet_threshold: float) -> torch.Tensor:
    """`[T−1, 4]` 1.0 where the squared displacement of joints 7, 10, 8, 11 is below the threshold."""
    feet = joints[:, list(FOOT_JOINTS)]
    squared_step = ((feet[1:] - feet[:-1]) ** 2).sum(-1)
    return (squared_step < feet_threshold).to(joints.dtype)


def extract_features(joints, feet_threshold: float = DEFAULT_FEET_THRESHOLD, target_offsets=None):
    """HumanML3D features of a joint-position clip.

    Args:
        joints: `[T, 22, 3]` joint positions (m, y up, HumanML3D joint order), T ≥ 2, numpy or torch.
        feet_threshold: contact threshold on the squared per-frame foot displacement, m².
        target_offsets: `[22, 3]` reference skeleton (see `offsets_from_joints`); only its bone lengths
            are used. None keeps the clip's own bone lengths (HumanML3D uses its subject 000021).
    Returns:
        `[T−1, 263]` float64 features (numpy in, numpy out; torch in, torch out on the input's device),
        laid out as described in `motion.humanml3d`. Not differentiable (a preprocessing step).
    """
    values = _as_joints(joints)
    if not isinstance(feet_threshold, (int, float)) or isinstance(feet_threshold, bool) or not feet_threshold > 0:
        raise ValueError(f"feet_threshold must be a positive number (m²), got {feet_threshold!r}")
    if target_offsets is not None:
        values = _with_bone_lengths(values, target_offsets)
    positions = _canonical(values)
    frames, joints_num = positions.shape[:2]
    heading = _smoothed_heading(positions)
    per_joint_heading = heading[:, None].expand(frames, joints_num, 4)

    root = positions[:, 0]
    root_step = quaternion.rotate(heading[1:], root[1:] - root[:-1])
    turn = quaternion.multiply(heading[1:], quaternion.conjugate(heading[:-1]))
    # w ≥ 0 picks the short way round; HumanML3D skips this, so on the frame where the heading crosses
    # 180° its step has the wrong sign. The clamp guards asin against rounding past ±1.
    turn = torch.where(turn[:, :1] < 0, -turn, turn)
    half_angle_step = torch.asin(turn[:, 2].clamp(-1.0, 1.0))

    root_xz = root * root.new_tensor([1.0, 0.0, 1.0])
    ric = quaternion.rotate(per_joint_heading, positions - root_xz[:, None])
    local_velocity = quaternion.rotate(per_joint_heading[:-1], positions[1:] - positions[:-1])

    features = torch.cat(
        (
            half_angle_step[:, None],
            root_step[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].flatten(1),
            _local_rotations_6d(positions, heading)[:-1].flatten(1),
            local_velocity.flatten(1),
            _foot_contacts(positions, feet_threshold),
        ),
        dim=-1,
    )
    if not torch.isfinite(features).all():
        raise ValueError("joints give non-finite features (a zero-length bone: two joints at one point?)")
    return _like_input(features, joints)


def _like_input(result: torch.Tensor, original):
    return result.to(original.device) if isinstance(original, torch.Tensor) else result.numpy()
