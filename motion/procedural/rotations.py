"""Batched 3×3 rotation matrices, frames from vectors and rotation blending (numpy, float64).

Angles are radians; positive angles rotate counter-clockwise looking down the axis (right-hand rule).
All builders accept an angle array of any shape `[...]` and return `[..., 3, 3]`.
"""

from __future__ import annotations

import numpy as np


def _axis_rotation(angle, first: int, second: int) -> np.ndarray:
    angle = np.asarray(angle, dtype=np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.zeros(angle.shape + (3, 3))
    axis = 3 - first - second
    matrix[..., axis, axis] = 1.0
    matrix[..., first, first] = cos
    matrix[..., first, second] = -sin
    matrix[..., second, first] = sin
    matrix[..., second, second] = cos
    return matrix


def rot_x(angle) -> np.ndarray:
    """Rotation about +x; rotates +y towards +z (in the body frame: pitches the trunk forward)."""
    return _axis_rotation(angle, 1, 2)


def rot_y(angle) -> np.ndarray:
    """Rotation about +y (up); rotates +z towards +x (in the body frame: turns left)."""
    return _axis_rotation(angle, 2, 0)


def rot_z(angle) -> np.ndarray:
    """Rotation about +z; rotates +x towards +y."""
    return _axis_rotation(angle, 0, 1)


def compose(*matrices: np.ndarray) -> np.ndarray:
    """Matrix product of `[..., 3, 3]` rotations, left to right (the rightmost acts first)."""
    result = matrices[0]
    for matrix in matrices[1:]:
        result = result @ matrix
    return result


def apply(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """`matrices [..., 3, 3]` applied to `vectors [..., 3]` (broadcasting) -> `[..., 3]`."""
    return np.einsum("...ij,...j->...i", matrices, vectors)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors along `vectors [..., 3]` (zero vectors stay zero)."""
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norm, 1e-12)


def frame_from_axes(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frames `[..., 3, 3]` with columns (primary, secondary ⟂ primary, primary × secondary).

    `primary [..., 3]` fixes the first column exactly; `secondary [..., 3]` only needs a component
    perpendicular to it.
    """
    first = normalize(primary)
    second = normalize(secondary - np.sum(secondary * first, axis=-1, keepdims=True) * first)
    third = np.cross(first, second)
    return np.stack((first, second, third), axis=-1)


def matrix_to_quaternion(matrices: np.ndarray) -> np.ndarray:
    """Unit quaternions `[..., 4]` (w, x, y, z) of rotation matrices `[..., 3, 3]`.

    Uses the largest of the four squared components per matrix so it is well conditioned everywhere.
    """
    m = matrices
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    squares = np.stack(
        (1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22, 1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22), axis=-1
    )
    largest = np.argmax(squares, axis=-1)
    big = 0.5 * np.sqrt(np.maximum(np.take_along_axis(squares, largest[..., None], axis=-1)[..., 0], 1e-12))
    inv = 0.25 / big
    w_minus = (m[..., 2, 1] - m[..., 1, 2]) * inv
    y_minus = (m[..., 0, 2] - m[..., 2, 0]) * inv
    z_minus = (m[..., 1, 0] - m[..., 0, 1]) * inv
    xy = (m[..., 0, 1] + m[..., 1, 0]) * inv
    xz = (m[..., 0, 2] + m[..., 2, 0]) * inv
    yz = (m[..., 1, 2] + m[..., 2, 1]) * inv
    candidates = np.stack(
        (
            np.stack((big, w_minus, y_minus, z_minus), axis=-1),  # w largest
            np.stack((w_minus, big, xy, xz), axis=-1),  # x largest
            np.stack((y_minus, xy, big, yz), axis=-1),  # y largest
            np.stack((z_minus, xz, yz, big), axis=-1),  # z largest
        ),
        axis=-2,
    )
    return np.take_along_axis(candidates, largest[..., None, None], axis=-2)[..., 0, :]


def quaternion_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """Rotation matrices `[..., 3, 3]` of (not necessarily unit) quaternions `[..., 4]` (w, x, y, z)."""
    q = quaternions / np.linalg.norm(quaternions, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        (
            np.stack((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)), axis=-1),
            np.stack((2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)), axis=-1),
            np.stack((2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), axis=-1),
        ),
        axis=-2,
    )


def blend_rotations(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Normalised-lerp blend of rotation matrices `[T, ..., 3, 3]` with per-frame `weight [T]` of `second`.

    nlerp is not constant-speed like slerp, but it is smooth in the weight, which is all a smooth
    cross-fade between two motions needs.
    """
    q_first = matrix_to_quaternion(first)
    q_second = matrix_to_quaternion(second)
    # q and -q are the same rotation: take the one on the same hemisphere to blend the short way.
    sign = np.where(np.sum(q_first * q_second, axis=-1, keepdims=True) < 0.0, -1.0, 1.0)
    w = np.asarray(weight, dtype=np.float64).reshape((-1,) + (1,) * (q_first.ndim - 1))
    return quaternion_to_matrix((1.0 - w) * q_first + w * sign * q_second)
