"""Motion-diffusion training losses (MDM, Tevet et al., ICLR 2023), masked by each clip's true length.

Every loss returns one value per sample, `[B]`, normalised like MDM's masked L2:

    loss_b = Σ_{valid positions i, entries c} e_{b,c,i}² / (number of valid positions × entries per position)

where the valid positions are those whose frames all lie inside the clip (frames 0 … len_b − 1): every
frame for the value losses, the len − 1 consecutive pairs for velocities, the len − 2 centred triples
for accelerations. Errors outside are zeroed *before* squaring, so padded frames (zeros or garbage)
change neither the loss nor receive a gradient.

Layouts: features `[B, C, 1, T]` (MDM's `[bs, njoints, nfeats, nframes]`), joint positions
`[B, T, J, 3]` (m), lengths an integer tensor `[B]` with 1 ≤ len ≤ T.
"""

from __future__ import annotations

import math

import torch

from motion.humanml3d import CONTACT_JOINTS

__all__ = [
    "acceleration_loss",
    "foot_contact_loss",
    "frame_mask",
    "masked_l2",
    "position_loss",
    "velocity_loss",
]


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """`[B, frames]` bool, True for frame i < lengths[b] (the clip's own frames, not padding)."""
    return torch.arange(frames, device=lengths.device) < lengths[:, None]


def _check_finite_tensor(name: str, x: torch.Tensor, layout: str, dims: int) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != dims:
        got = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"{name} must be a floating-point tensor {layout}, got {got}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (NaN or Inf)")


def _check_lengths(lengths: torch.Tensor, batch: int, frames: int, minimum: int, why: str = "") -> None:
    if not isinstance(lengths, torch.Tensor) or lengths.dtype not in _INTEGER_DTYPES:
        got = getattr(lengths, "dtype", type(lengths).__name__)
        raise ValueError(f"lengths must be an integer tensor [B], got {got}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape [{batch}] (one per sample), got {tuple(lengths.shape)}")
    if batch and (lengths.min() < minimum or lengths.max() > frames):
        raise ValueError(
            f"lengths must lie in [{minimum}, {frames}] (T = {frames} frames){why}, "
            f"got {lengths.min().item()} … {lengths.max().item()}"
        )


def _check_pair(target: torch.Tensor, prediction: torch.Tensor, layout: str) -> None:
    _check_finite_tensor("target", target, layout, 4)
    _check_finite_tensor("prediction", prediction, layout, 4)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} must equal target shape {tuple(target.shape)}")


def _masked_mean_square(error: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of `error²` over the first `valid[b]` positions of the last axis and all entries between.

    Args:
        error: `[B, …, N]`, positions last.
        valid: `[B]` number of valid positions per sample, ≥ 1.
    Returns:
        `[B]`.
    """
    mask = frame_mask(valid.to(error.device), error.shape[-1]).view(error.shape[0], *([1] * (error.dim() - 2)), -1)
    squared = torch.where(mask, error, torch.zeros((), dtype=error.dtype, device=error.device)).square()
    entries = math.prod(error.shape[1:-1])
    return squared.flatten(1).sum(1) / (valid.to(error.device, error.dtype) * entries)


def _temporal_loss(target: torch.Tensor, prediction: torch.Tensor, lengths: torch.Tensor, order: int) -> torch.Tensor:
    """Masked L2 of the `order`-th temporal differences of `[B, C, 1, T]` features (order 0: values)."""
    _check_pair(target, prediction, "[B, C, 1, T]")
    needs = {0: "", 1: " (a velocity needs 2 frames)", 2: " (an acceleration needs 3 frames)"}[order]
    _check_lengths(lengths, target.shape[0], target.shape[-1], order + 1, needs)
    # Differencing is linear: differences of the error are the error of the differences.
    error = torch.diff(target - prediction, n=order, dim=-1) if order else target - prediction
    return _masked_mean_square(error, lengths - order)


def masked_l2(target: torch.Tensor, prediction: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """MDM's reconstruction loss: squared error over the clip's frames, `[B, C, 1, T]` → `[B]`."""
    return _temporal_loss(target, prediction, lengths, order=0)


def velocity_loss(target: torch.Tensor, prediction: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Squared error of first differences x[i+1] − x[i], i = 0 … len−2, `[B, C, 1, T]` → `[B]` (len ≥ 2).

    Per frame, not per second: the features' own units per frame step."""
    return _temporal_loss(target, prediction, lengths, order=1)


def acceleration_loss(target: torch.Tensor, prediction: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Squared error of second differences x[i+1] − 2x[i] + x[i−1], i = 1 … len−2, `[B, C, 1, T]` → `[B]`.

    Needs len ≥ 3; per frame², in the features' units."""
    return _temporal_loss(target, prediction, lengths, order=2)


def _check_joints(name: str, joints: torch.Tensor) -> None:
    _check_finite_tensor(name, joints, "[B, T, J, 3]", 4)
    if joints.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [B, T, J, 3], got {tuple(joints.shape)}")


def position_loss(target_joints: torch.Tensor, predicted_joints: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Squared joint-position error (m²) over the clip's frames, per joint coordinate: `[B, T, J, 3]` → `[B]`."""
    _check_joints("target_joints", target_joints)
    _check_joints("predicted_joints", predicted_joints)
    if predicted_joints.shape != target_joints.shape:
        raise ValueError(
            f"predicted_joints shape {tuple(predicted_joints.shape)} must equal target_joints shape "
            f"{tuple(target_joints.shape)}"
        )
    _check_lengths(lengths, target_joints.shape[0], target_joints.shape[1], 1)
    return _masked_mean_square((target_joints - predicted_joints).movedim(1, -1), lengths)


def foot_contact_loss(
    predicted_joints: torch.Tensor, contacts: torch.Tensor, lengths: torch.Tensor, fps: float
) -> torch.Tensor:
    """Foot sliding: squared velocity (m/s)² of the foot joints while the ground truth has them in contact.

    Tevet et al.'s L_foot = Σ_i ‖(FK(x̂)_{i+1} − FK(x̂)_i) · f_i‖² over the feet, with velocity per second
    here. Contact row i describes the step i → i+1, as HumanML3D's `FOOT_CONTACTS` do.

    Args:
        predicted_joints: `[B, T, J, 3]` positions in m (J ≥ 12: HumanML3D joint order).
        contacts: `[B, T, 4]` ground-truth contacts in [0, 1] of joints `CONTACT_JOINTS` = (7, 10, 8, 11)
            (left ankle, left foot, right ankle, right foot), the `FOOT_CONTACTS` column order.
        lengths: `[B]` clip lengths in frames, ≥ 2 (a velocity needs two frames).
        fps: frame rate, frames per second.
    Returns:
        `[B]`: mean over the len − 1 steps and the 4 × 3 foot coordinates of (v · contact)².
    """
    _check_joints("predicted_joints", predicted_joints)
    batch, frames, joints, _ = predicted_joints.shape
    if joints <= max(CONTACT_JOINTS):
        raise ValueError(f"predicted_joints must hold the foot joints {CONTACT_JOINTS}, got J = {joints}")
    _check_finite_tensor("contacts", contacts, "[B, T, 4]", 3)
    if contacts.shape != (batch, frames, len(CONTACT_JOINTS)):
        expected = f"[{batch}, {frames}, {len(CONTACT_JOINTS)}]"
        raise ValueError(f"contacts must have shape {expected}, got {tuple(contacts.shape)}")
    if contacts.min() < 0 or contacts.max() > 1:
        raise ValueError("contacts must lie in [0, 1]")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    _check_lengths(lengths, batch, frames, 2, " (a velocity needs 2 frames)")
    feet = predicted_joints[:, :, list(CONTACT_JOINTS)]  # [B, T, 4, 3]
    velocity = torch.diff(feet, dim=1) * fps  # [B, T−1, 4, 3], m/s
    sliding = velocity * contacts[:, :-1, :, None]
    return _masked_mean_square(sliding.movedim(1, -1), lengths - 1)
