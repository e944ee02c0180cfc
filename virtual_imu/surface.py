"""Sensor placement on a triangle-mesh body surface (e.g. the SMPL mesh), pure torch.

A `SurfaceSensor` is anchored at a mesh vertex, or at a point inside a face given by barycentric weights,
and takes its frame from the surface there:

    z = outward surface normal at the anchor,
    x = direction of a joint segment (proximal → distal) projected into the tangent plane,
    y = z × x,

then turns by a fixed mount rotation (sensor-to-surface-frame) and sits `standoff_m` out along the normal
(a watch's IMU is in a case above the skin). The normal is smooth: each anchor vertex has the area-weighted
normal of the faces around it (the sum of their unnormalised cross products, whose length is twice the
face area), and a point inside a face blends its corners' normals with the barycentric weights (Phong
normal). It therefore changes continuously as the anchor moves over the mesh, unlike a single face's normal.

The mesh vertices must be outward-oriented (counter-clockwise seen from outside), as SMPL's are. When the
segment is parallel to the normal the x axis is undefined (the tangent projection vanishes); anchors on the
side of a limb, with the limb's own segment, keep well away from that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from motion import skeleton as sk
from virtual_imu import quaternion

_BARYCENTRIC_TOLERANCE = 1e-6
_UNIT_TOLERANCE = 1e-6
_MIN_NORM = 1e-12
"""Floor on vector norms before normalising: keeps a degenerate frame finite instead of NaN."""


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return F.normalize(vector, dim=-1, eps=_MIN_NORM)


@dataclass(frozen=True, kw_only=True)
class SurfaceSensor:
    """A sensor fixed to a mesh surface; give either `vertex` or `face` with `barycentric`.

    Attributes:
        segment: (proximal, distal) joint indices; their direction, projected into the tangent plane at
            the anchor, is the surface frame's x axis.
        vertex: index of the anchor vertex.
        face: index of the anchor face, with
        barycentric: its weights (w0, w1, w2) of the face's three vertices, ≥ 0 and summing to 1.
        mount_rotation: (w, x, y, z) unit quaternion, sensor-to-surface-frame.
        standoff_m: distance (m) of the sensor from the surface along the outward normal (negative: inside).
        name: used in error messages (the preset's name).
    """

    segment: tuple[int, int]
    vertex: int | None = None
    face: int | None = None
    barycentric: tuple[float, float, float] | None = None
    mount_rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    standoff_m: float = 0.0
    name: str = "surface sensor"

    def __post_init__(self):
        if (self.vertex is None) == (self.face is None) or (self.face is None) != (self.barycentric is None):
            raise ValueError(f"{self.name}: give either vertex, or face with barycentric weights")
        joints_ok = len(self.segment) == 2 and all(isinstance(j, int) and j >= 0 for j in self.segment)
        if not joints_ok or self.segment[0] == self.segment[1]:
            raise ValueError(f"{self.name}: segment must be two different joint indices ≥ 0, got {self.segment}")
        if self.barycentric is not None:
            weights = tuple(float(w) for w in self.barycentric)
            if len(weights) != 3 or min(weights) < 0 or not abs(sum(weights) - 1) <= _BARYCENTRIC_TOLERANCE:
                raise ValueError(
                    f"{self.name}: barycentric must be three weights ≥ 0 summing to 1, got {self.barycentric}"
                )
            object.__setattr__(self, "barycentric", weights)
        rotation = tuple(float(v) for v in self.mount_rotation)
        if len(rotation) != 4 or not abs(math.hypot(*rotation) - 1) <= _UNIT_TOLERANCE:
            raise ValueError(
                f"{self.name}: mount_rotation must be a unit quaternion (w, x, y, z), got {self.mount_rotation}"
            )
        object.__setattr__(self, "mount_rotation", rotation)
        if not math.isfinite(self.standoff_m):
            raise ValueError(f"{self.name}: standoff_m must be a finite distance in metres, got {self.standoff_m}")

    def bind(self, faces: torch.Tensor, num_vertices: int) -> BoundSurfaceSensor:
        """Checks the anchor against the mesh `faces` `[F, 3]` (of `num_vertices` vertices) and keeps the faces
        around it, so that `place` touches only those; bind once per mesh topology."""
        integer = isinstance(faces, torch.Tensor) and faces.dtype in (torch.int32, torch.int64)
        if not integer or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"{self.name}: faces must be an integer tensor [F, 3]")
        if faces.numel() and (faces.min() < 0 or faces.max() >= num_vertices):
            raise ValueError(f"{self.name}: faces index vertices outside 0..{num_vertices - 1}")
        faces = faces.long()
        if self.vertex is not None:
            if not 0 <= self.vertex < num_vertices:
                raise ValueError(
                    f"{self.name}: vertex {self.vertex} is out of range for a mesh of {num_vertices} vertices"
                )
            corners = faces.new_tensor([self.vertex])
            weights = [1.0]
        else:
            if not 0 <= self.face < faces.shape[0]:
                raise ValueError(f"{self.name}: face {self.face} is out of range for a mesh of {faces.shape[0]} faces")
            corners = faces[self.face]
            weights = list(self.barycentric)
        touches = (faces[:, None, :] == corners[None, :, None]).any(-1)  # [F, K]: face f touches corner k
        lonely = [int(c) for c, any_face in zip(corners, touches.any(0)) if not any_face]
        if lonely:
            raise ValueError(f"{self.name}: vertex {lonely[0]} belongs to no face, so it has no surface normal")
        around = touches.any(-1).nonzero()[:, 0]
        return BoundSurfaceSensor(
            sensor=self,
            num_vertices=num_vertices,
            corners=corners,
            weights=torch.tensor(weights, dtype=torch.float64, device=faces.device),
            faces=faces[around],
            incidence=touches[around].T.double(),
        )

    def place(
        self, vertices: torch.Tensor, joints: torch.Tensor, faces: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`bind(faces, V).place(vertices, joints)`: positions `[..., T, 3]` (m), sensor-to-world `[..., T, 4]`."""
        return self.bind(faces, vertices.shape[-2]).place(vertices, joints)


@dataclass(frozen=True, eq=False)
class BoundSurfaceSensor:
    """A `SurfaceSensor` checked against a mesh topology, with the faces around its anchor.

    Attributes:
        corners: `[K]` anchor vertex indices (K = 1 for a vertex anchor, 3 for a face anchor).
        weights: `[K]` their barycentric weights (float64; cast to the vertices' dtype when placing).
        faces: `[M, 3]` the faces that touch any corner.
        incidence: `[K, M]` 1 where face m touches corner k.
    """

    sensor: SurfaceSensor
    num_vertices: int
    corners: torch.Tensor
    weights: torch.Tensor
    faces: torch.Tensor
    incidence: torch.Tensor

    def place(self, vertices: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sensor positions `[..., T, 3]` (m) and sensor-to-world unit quaternions `[..., T, 4]`.

        Args:
            vertices: `[..., T, V, 3]` mesh vertex positions (m), V = the bound mesh's vertex count.
            joints: `[..., T, J, 3]` joint positions (m) in the same world, J > both segment indices.
        """
        name, segment = self.sensor.name, self.sensor.segment
        if vertices.ndim < 3 or vertices.shape[-2:] != (self.num_vertices, 3) or not vertices.is_floating_point():
            raise ValueError(
                f"{name}: vertices must be a float tensor [..., T, {self.num_vertices}, 3], got {tuple(vertices.shape)}"
            )
        if joints.ndim < 3 or joints.shape[-1] != 3 or joints.shape[:-2] != vertices.shape[:-2]:
            raise ValueError(
                f"{name}: joints must have shape [..., T, J, 3] with the vertices' leading dims "
                f"{tuple(vertices.shape[:-2])}, got {tuple(joints.shape)}"
            )
        if joints.shape[-2] <= max(segment):
            raise ValueError(f"{name}: joints has J = {joints.shape[-2]}, missing segment joint {max(segment)}")
        device, dtype = vertices.device, vertices.dtype
        corners, faces = self.corners.to(device), self.faces.to(device)
        weights, incidence = self.weights.to(device, dtype), self.incidence.to(device, dtype)

        # Area-weighted vertex normals: |(b − a) × (c − a)| is twice the face's area.
        a, b, c = vertices.index_select(-2, faces.reshape(-1)).unflatten(-2, (-1, 3)).unbind(-2)  # [..., T, M, 3] each
        face_normals = torch.linalg.cross(b - a, c - a, dim=-1)
        corner_normals = _unit(torch.einsum("km,...mc->...kc", incidence, face_normals))
        normal = _unit(torch.einsum("k,...kc->...c", weights, corner_normals))
        anchor = torch.einsum("k,...kc->...c", weights, vertices.index_select(-2, corners))

        direction = joints[..., segment[1], :] - joints[..., segment[0], :]
        x_axis = _unit(direction - (direction * normal).sum(-1, keepdim=True) * normal)
        y_axis = torch.linalg.cross(normal, x_axis, dim=-1)
        surface = quaternion.from_matrix(torch.stack((x_axis, y_axis, normal), dim=-1))
        mount = surface.new_tensor(self.sensor.mount_rotation)
        orientations = quaternion.multiply(surface, mount.expand_as(surface))
        return anchor + self.sensor.standoff_m * normal, orientations


_SQRT_HALF = math.sqrt(0.5)

# SMPL vertex ids (6890-vertex topology, shared by SMPL, SMPL+H and AMASS fits). Sources:
#  * 1961 / 5424 (left / right wrist) and 3021 (lower back, the "root" sensor): the virtual-IMU vertices of
#    DIP-IMU (Huang et al., SIGGRAPH Asia 2018), reused by TransPose (2021) and PIP (2022): vi_mask =
#    [1961, 5424, 1176, 4662, 411, 3021].
#  * 4362 (right thigh, front trouser pocket): IMUPoser (Mollyn et al., CHI 2023) and MobilePoser, which
#    swap DIP's knee vertices for the thighs: vi_mask = [1961, 5424, 876, 4362, 411, 3021].
#  * 3506 (sternum, marker "STRN") and 5674 (back of the right hand at the middle metacarpal, "RMHAND"):
#    the SMPL marker superset of MoSh++ / SOMA (Mahmood et al. 2019, Ghorbani & Black 2021).
# They are not checked against the SMPL mesh here (its files are not redistributable): bind validates the
# indices, the frames follow from whatever surface the model has there.
# The 22 SMPL body joints are motion.skeleton's (HumanML3D order); SMPL has no hand joint among them, so
# the hand is taken to continue the forearm.
LEFT_WRIST = SurfaceSensor(
    name="left_wrist", vertex=1961, segment=(sk.LEFT_ELBOW, sk.LEFT_WRIST), standoff_m=0.01
)
"""Watch on the left wrist: 3 o'clock (x) to the hand, face (z) out of the skin, IMU 1 cm above it."""

RIGHT_WRIST = SurfaceSensor(
    name="right_wrist", vertex=5424, segment=(sk.RIGHT_ELBOW, sk.RIGHT_WRIST),
    mount_rotation=(0.0, 0.0, 0.0, 1.0), standoff_m=0.01,
)
"""Watch on the right wrist: turned 180° about the normal, so 3 o'clock points to the elbow (as worn)."""

RIGHT_HAND_PHONE = SurfaceSensor(
    name="right_hand_phone", vertex=5674, segment=(sk.RIGHT_ELBOW, sk.RIGHT_WRIST),
    mount_rotation=(0.0, _SQRT_HALF, _SQRT_HALF, 0.0), standoff_m=-0.034,
)
"""Phone lying in the right palm, screen up: top (y) to the fingers, screen (z) out of the palm.

Anchored on the back of the hand and pushed 3.4 cm through it (hand thickness at the metacarpals ≈ 3 cm
plus half a phone), so the phone's centre is on the palm side.
"""

RIGHT_POCKET = SurfaceSensor(
    name="right_pocket", vertex=4362, segment=(sk.RIGHT_HIP, sk.RIGHT_KNEE),
    mount_rotation=(0.0, _SQRT_HALF, -_SQRT_HALF, 0.0), standoff_m=0.005,
)
"""Phone in the right front trouser pocket: top (y) up the thigh, screen (z) facing the thigh."""

CHEST = SurfaceSensor(name="chest", vertex=3506, segment=(sk.SPINE3, sk.NECK), standoff_m=0.01)
"""Chest-strap sensor on the sternum: x up the upper spine, z forward out of the chest."""

PELVIS = SurfaceSensor(name="pelvis", vertex=3021, segment=(sk.PELVIS, sk.SPINE1), standoff_m=0.01)
"""Belt-clip sensor on the lower back: x up the lower spine, z backward out of the back."""

SMPL_PRESETS = {s.name: s for s in (LEFT_WRIST, RIGHT_WRIST, RIGHT_HAND_PHONE, RIGHT_POCKET, CHEST, PELVIS)}
"""Named surface sensors for the SMPL mesh (6890 vertices) and its 22 body joints."""


def smpl_preset(name: str) -> SurfaceSensor:
    if name not in SMPL_PRESETS:
        raise ValueError(f"unknown surface sensor placement {name!r}; choose one of {sorted(SMPL_PRESETS)}")
    return SMPL_PRESETS[name]
