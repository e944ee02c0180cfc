"""Quaternion algebra on `[..., 4]` tensors in (w, x, y, z) order, Hamilton convention.

Every function is batched over leading dims and differentiable, including at the identity
(small-angle branches avoid 0/0 in the gradients of norms and divisions).
"""

from __future__ import annotations

import torch

_SMALL_ANGLE = 1e-6


def multiply(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Hamilton product p ⊗ q of `[..., 4]` quaternions (broadcasting)."""
    pw, px, py, pz = p.unbind(-1)
    qw, qx, qy, qz = q.unbind(-1)
    return torch.stack(
        (
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ),
        dim=-1,
    )


def conjugate(q: torch.Tensor) -> torch.Tensor:
    """q* = (w, −x, −y, −z); the inverse of a unit quaternion."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q ⊗ v ⊗ q* for unit q `[..., 4]` and vectors v `[..., 3]`.

    Uses v' = v + 2w (u × v) + 2 u × (u × v) with u = (x, y, z): two cross products
    instead of two full quaternion products.
    """
    w = q[..., :1]
    u = q[..., 1:]
    uv = torch.linalg.cross(u.expand_as(v), v, dim=-1)
    return v + 2.0 * (w * uv + torch.linalg.cross(u.expand_as(v), uv, dim=-1))


def rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q* ⊗ v ⊗ q: a world vector expressed in the frame that q maps to the world."""
    return rotate(conjugate(q), v)


def from_axis_angle(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Quaternion `[..., 4]` of a rotation by `angle` `[...]` (rad) about unit `axis` `[..., 3]`."""
    half = 0.5 * angle
    return torch.cat((torch.cos(half)[..., None], torch.sin(half)[..., None] * axis), dim=-1)


def from_rotation_vector(rotvec: torch.Tensor) -> torch.Tensor:
    """exp map: rotation vector `[..., 3]` (axis · angle, rad) → unit quaternion `[..., 4]`."""
    angle_sq = (rotvec * rotvec).sum(-1, keepdim=True)
    small = angle_sq < _SMALL_ANGLE**2
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle_sq), angle_sq))
    # sin(θ/2)/θ → 1/2 − θ²/48 near zero.
    scale = torch.where(small, 0.5 - angle_sq / 48.0, torch.sin(0.5 * angle) / angle)
    w = torch.where(small, 1.0 - angle_sq / 8.0, torch.cos(0.5 * angle))
    return torch.cat((w, scale * rotvec), dim=-1)


def to_rotation_vector(q: torch.Tensor) -> torch.Tensor:
    """log map: unit quaternion `[..., 4]` → rotation vector `[..., 3]` with angle in [0, π].

    q and −q are the same rotation; the sign is chosen so that w ≥ 0 (the shortest rotation).
    """
    q = torch.where(q[..., :1] < 0, -q, q)
    w = q[..., :1]
    v = q[..., 1:]
    sin_sq = (v * v).sum(-1, keepdim=True)
    small = sin_sq < _SMALL_ANGLE**2
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_sq), sin_sq))
    # θ/sin(θ/2) with θ = 2·atan2(|v|, w); near zero it tends to 2/w·(1 − |v|²/(3w²)).
    scale = torch.where(
        small,
        2.0 / w * (1.0 - sin_sq / (3.0 * w * w)),
        2.0 * torch.atan2(sin_half, w) / sin_half,
    )
    return scale * v


def to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrix `[..., 3, 3]` of unit q; columns are the rotated basis vectors."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def from_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternion `[..., 4]` (w ≥ 0) from a rotation matrix `[..., 3, 3]`.

    Computes the four candidate quaternions (each divides by one of 4w², 4x², 4y², 4z²) and keeps,
    per element, the one with the largest denominator, so the result is well conditioned for every
    rotation and differentiable away from the (measure-zero) switch points.
    """
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4·(w², x², y², z²) from the diagonal.
    four_sq = torch.stack(
        (
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ),
        dim=-1,
    )
    candidates = torch.stack(
        (
            torch.stack((four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01), dim=-1),
            torch.stack((m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20), dim=-1),
            torch.stack((m02 - m20, m10 + m01, four_sq[..., 2], m21 + m12), dim=-1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]), dim=-1),
        ),
        dim=-2,
    )  # [..., 4 candidates, 4]
    best = four_sq.argmax(-1)
    chosen = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    denominator = 2.0 * torch.sqrt(torch.gather(four_sq, -1, best[..., None]).clamp_min(1e-12))
    q = chosen / denominator
    return torch.where(q[..., :1] < 0, -q, q)

