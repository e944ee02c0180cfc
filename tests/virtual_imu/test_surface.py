"""Sensors on a mesh surface, checked on meshes whose normals and motions are known in closed form."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from motion import skeleton as sk
from motion import smpl
from tests.motion.test_smpl import random_pose_and_forward, write_body_model
from virtual_imu import STANDARD_GRAVITY, simulate
from virtual_imu import quaternion as Q
from virtual_imu.surface import SMPL_PRESETS, SurfaceSensor, smpl_preset

F64 = torch.float64
BOX_SIZE = (0.3, 1.7, 0.2)  # x, y (height), z in metres


def box_mesh(size=BOX_SIZE, cells: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed, outward-oriented box `[V, 3]`, faces `[F, 3]`: each side a `cells` × `cells` grid of split quads.

    It stands on the floor (0 ≤ y ≤ height) centred on the y axis.
    """
    size = np.asarray(size, dtype=float)
    low = np.array([-size[0] / 2, 0.0, -size[2] / 2])
    steps = np.linspace(0.0, 1.0, cells + 1)
    points, faces = [], []
    for axis in range(3):
        u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3  # e_u × e_v = e_axis
        for side in (1.0, 0.0):
            u, v = np.eye(3)[u_axis] * size[u_axis], np.eye(3)[v_axis] * size[v_axis]
            if side == 0.0:
                u, v = v, u  # u × v = −e_axis: outward on the low side
            origin = low + np.eye(3)[axis] * size[axis] * side
            start = len(points)
            points += [origin + a * u + b * v for a in steps for b in steps]
            index = lambda a, b: start + a * (cells + 1) + b  # noqa: E731
            for a in range(cells):
                for b in range(cells):
                    faces += [(index(a, b), index(a + 1, b), index(a + 1, b + 1)), (index(a, b), index(a + 1, b + 1), index(a, b + 1))]
    unique, inverse = np.unique(np.round(np.asarray(points), 9), axis=0, return_inverse=True)
    return torch.tensor(unique, dtype=F64), torch.tensor(inverse.reshape(-1)[np.asarray(faces)], dtype=torch.long)


def octahedron() -> tuple[torch.Tensor, torch.Tensor]:
    """Unit octahedron: vertices ±e_i; by symmetry every vertex normal is the vertex's own direction."""
    vertices = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=F64)
    faces = []
    for x in (0, 1):
        for y in (2, 3):
            for z in (4, 5):
                signs = (1 if x == 0 else -1) * (1 if y == 2 else -1) * (1 if z == 4 else -1)
                faces.append((x, y, z) if signs > 0 else (x, z, y))  # counter-clockwise seen from outside
    return vertices, torch.tensor(faces)


def vertex_on_front(vertices: torch.Tensor) -> int:
    """A vertex inside the box's +z side (all its faces lie in that plane)."""
    front = (vertices[:, 2] == BOX_SIZE[2] / 2) & (vertices[:, 0].abs() < BOX_SIZE[0] / 2 - 1e-9)
    inside = front & (vertices[:, 1] > 1e-9) & (vertices[:, 1] < BOX_SIZE[1] - 1e-9)
    return int(inside.nonzero()[0])


def two_joints(proximal, distal, frames: int = 1) -> torch.Tensor:
    return torch.tensor([proximal, distal], dtype=F64).expand(frames, 2, 3).clone()


def frame_axes(orientations: torch.Tensor) -> torch.Tensor:
    """Sensor axes in the world: columns x, y, z."""
    return Q.to_matrix(orientations)


def test_vertex_anchor_on_a_flat_side():
    vertices, faces = box_mesh()
    vertex = vertex_on_front(vertices)
    sensor = SurfaceSensor(vertex=vertex, segment=(0, 1))
    positions, orientations = sensor.place(vertices[None], two_joints([0, 0, 0], [1.0, 1.0, 1.0]), faces)
    assert torch.equal(positions[0], vertices[vertex])  # exact: the vertex itself
    axes = frame_axes(orientations[0])
    expected_x = torch.tensor([1.0, 1.0, 0.0], dtype=F64) / math.sqrt(2)  # (1, 1, 1) without its normal part
    torch.testing.assert_close(axes[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(axes[:, 0], expected_x, atol=1e-12, rtol=0)
    torch.testing.assert_close(axes[:, 1], torch.linalg.cross(axes[:, 2], axes[:, 0]), atol=1e-12, rtol=0)
    assert orientations.norm(dim=-1).item() == pytest.approx(1.0, abs=1e-12)
    assert torch.linalg.det(axes).item() == pytest.approx(1.0, abs=1e-12)  # right-handed


def test_face_anchor_at_a_barycentric_point():
    vertices, faces = box_mesh()
    corners = vertices[faces]  # [F, 3, 3]
    inside_top = (corners[..., 1] == BOX_SIZE[1]) & (corners[..., 0].abs() < 0.1) & (corners[..., 2].abs() < 0.05)
    face = int(inside_top.all(-1).nonzero()[0])  # a face in the middle of the top (+y): flat all around
    weights = (0.2, 0.3, 0.5)
    sensor = SurfaceSensor(face=face, barycentric=weights, segment=(0, 1), standoff_m=0.01)
    positions, orientations = sensor.place(vertices[None], two_joints([0, 0, 0], [0.0, 0.2, -1.0]), faces)
    corners = vertices[faces[face]]
    normal = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    expected = sum(w * c for w, c in zip(weights, corners)) + 0.01 * normal
    torch.testing.assert_close(positions[0], expected, atol=1e-15, rtol=0)
    axes = frame_axes(orientations[0])
    torch.testing.assert_close(axes[:, 2], normal, atol=1e-12, rtol=0)
    torch.testing.assert_close(axes[:, 0], torch.tensor([0.0, 0.0, -1.0], dtype=F64), atol=1e-12, rtol=0)


def test_vertex_normals_are_area_weighted_over_the_faces_around():
    # Two faces at the origin: 2 m² facing +z and 0.5 m² facing +x, so n ∝ 2 ẑ + 0.5 x̂.
    vertices = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 1, 0], [0, 0, 1]], dtype=F64)
    faces = torch.tensor([[0, 1, 2], [0, 3, 4]])
    sensor = SurfaceSensor(vertex=0, segment=(0, 1))
    _, orientations = sensor.place(vertices[None], two_joints([0, 0, 0], [0, 1, 0]), faces)
    expected = torch.tensor([0.5, 0.0, 2.0], dtype=F64) / math.sqrt(4.25)
    torch.testing.assert_close(frame_axes(orientations[0])[:, 2], expected, atol=1e-12, rtol=0)


def test_normals_are_smooth_not_one_faces():
    vertices, faces = octahedron()
    _, at_vertex = SurfaceSensor(vertex=0, segment=(0, 1)).place(vertices[None], two_joints([0, 0, 0], [0, 1, 0]), faces)
    # Each face around +x has the normal (1, ±1, ±1)/√3; their area-weighted sum is +x.
    torch.testing.assert_close(frame_axes(at_vertex[0])[:, 2], vertices[0], atol=1e-12, rtol=0)
    weights = (0.5, 0.3, 0.2)
    sensor = SurfaceSensor(face=0, barycentric=weights, segment=(0, 1))
    positions, inside = sensor.place(vertices[None], two_joints([0, 0, 0], [0, 1, 0]), faces)
    # Phong normal: the blend of the corner normals (= corner positions here), i.e. the point's direction.
    torch.testing.assert_close(frame_axes(inside[0])[:, 2], positions[0] / positions[0].norm(), atol=1e-12, rtol=0)


def _rotation_about(axis: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    return Q.from_axis_angle(axis.expand(*angles.shape, 3), angles)


def test_rigid_motion_gives_the_closed_form_imu():
    """A box spinning at ω about an axis through a point moving at constant velocity, sampled at 100 Hz."""
    fps, frames = 100.0, 101
    omega = torch.tensor([0.3, 1.5, -0.4], dtype=F64)  # rad/s, world
    velocity = torch.tensor([0.8, 0.0, 0.3], dtype=F64)  # m/s of the rotation centre
    centre0 = torch.tensor([0.1, 0.9, -0.05], dtype=F64)
    vertices0, faces = box_mesh()
    joints0 = torch.tensor([[0.0, 1.7, 0.0], [0.0, 0.0, 0.0]], dtype=F64)  # segment straight down
    time = torch.arange(frames, dtype=F64) / fps
    rotation = _rotation_about(omega / omega.norm(), omega.norm() * time)  # [T, 4]
    centre = centre0 + time[:, None] * velocity

    def move(points):
        return centre[:, None] + Q.rotate(rotation[:, None], (points - centre0).expand(frames, -1, 3))

    mount = Q.from_axis_angle(torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3, torch.tensor(0.7, dtype=F64))
    vertex = vertex_on_front(vertices0)
    sensor = SurfaceSensor(vertex=vertex, segment=(0, 1), mount_rotation=tuple(mount.tolist()), standoff_m=0.02)
    positions, orientations = sensor.place(move(vertices0), move(joints0), faces)

    # At t = 0 the surface frame is z = +z (the front's normal), x = −y (the segment), y = z × x = +x.
    surface0 = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)  # columns x, y, z
    sensor0 = surface0 @ Q.to_matrix(mount)
    offset0 = vertices0[vertex] + torch.tensor([0.0, 0.0, 0.02], dtype=F64) - centre0
    torch.testing.assert_close(positions, centre + Q.rotate(rotation, offset0.expand(frames, 3)), atol=1e-12, rtol=0)
    torch.testing.assert_close(Q.to_matrix(orientations), Q.to_matrix(rotation) @ sensor0, atol=1e-12, rtol=0)

    acc, gyro = simulate(positions, orientations, fps, gravity=STANDARD_GRAVITY)
    radius = Q.rotate(rotation, offset0.expand(frames, 3))
    centripetal = torch.linalg.cross(omega.expand(frames, 3), torch.linalg.cross(omega.expand(frames, 3), radius))
    up = torch.tensor([0.0, STANDARD_GRAVITY, 0.0], dtype=F64)
    expected_acc = Q.rotate_inverse(orientations, centripetal + up)
    expected_gyro = sensor0.T @ omega  # body rate: constant, the rotation axis is fixed in the world
    assert (gyro - expected_gyro).abs().max() < 1e-9  # measured 1.2e-13: the log map is exact for constant ω
    assert (acc - expected_acc).abs().max() < 1e-3  # measured 5.2e-5 m/s² (at the ends: O(dt²) one-sided stencil)


def test_batched_equals_per_clip():
    generator = torch.Generator().manual_seed(0)
    vertices0, faces = box_mesh()
    vertices = vertices0 + 0.02 * torch.randn(2, 3, 5, *vertices0.shape, generator=generator, dtype=F64)
    joints = torch.randn(2, 3, 5, 4, 3, generator=generator, dtype=F64)
    bound = SurfaceSensor(face=7, barycentric=(0.1, 0.6, 0.3), segment=(3, 1), standoff_m=0.01).bind(faces, len(vertices0))
    positions, orientations = bound.place(vertices, joints)
    assert positions.shape == (2, 3, 5, 3) and orientations.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            clip_positions, clip_orientations = bound.place(vertices[i, j], joints[i, j])
            torch.testing.assert_close(positions[i, j], clip_positions, atol=1e-14, rtol=0)
            torch.testing.assert_close(orientations[i, j], clip_orientations, atol=1e-14, rtol=0)


def test_gradients_flow_to_vertices_and_joints():
    generator = torch.Generator().manual_seed(1)
    vertices0, faces = box_mesh(cells=2)
    vertices = (vertices0 + 0.01 * torch.randn(2, *vertices0.shape, generator=generator, dtype=F64)).requires_grad_()
    joints = (two_joints([0, 1.7, 0.1], [0.2, 0.0, 0.3], frames=2)).requires_grad_()
    mount = Q.from_axis_angle(torch.tensor([0.0, 0.6, 0.8], dtype=F64), torch.tensor(0.4, dtype=F64))
    bound = SurfaceSensor(face=3, barycentric=(0.2, 0.3, 0.5), segment=(0, 1), standoff_m=0.02,
                          mount_rotation=tuple(mount.tolist())).bind(faces, len(vertices0))
    assert torch.autograd.gradcheck(bound.place, (vertices, joints), eps=1e-6, atol=1e-7)


def test_presets_axes_follow_their_descriptions():
    """Each preset's mounting and stand-off, moved onto the box's front (normal +z) with its segment pointing down."""
    vertices, faces = box_mesh()
    vertex = vertex_on_front(vertices)
    x, y, z = torch.eye(3, dtype=F64)  # world axes; surface frame here: x_s = −y, y_s = z × x_s = +x, z_s = +z
    expected = {  # sensor axes x, y, z in the world, and the stand-off along +z
        "left_wrist": ((-y, x, z), 0.01),  # 3 o'clock distal, face out
        "right_wrist": ((y, -x, z), 0.01),  # 3 o'clock to the elbow, face out
        "right_hand_phone": ((x, -y, -z), -0.034),  # top to the fingers, screen out of the palm
        "right_pocket": ((-x, y, -z), 0.005),  # top up the thigh, screen to the thigh
        "chest": ((-y, x, z), 0.01),
        "pelvis": ((-y, x, z), 0.01),
    }
    assert set(expected) == set(SMPL_PRESETS)
    for name, (axes, standoff) in expected.items():
        preset = smpl_preset(name)
        joints = torch.zeros(1, sk.NUM_JOINTS, 3, dtype=F64)
        joints[0, preset.segment[1]] = torch.tensor([0.0, -0.3, 0.0], dtype=F64)
        positions, orientations = dataclasses.replace(preset, vertex=vertex).place(vertices[None], joints, faces)
        torch.testing.assert_close(frame_axes(orientations[0]), torch.stack(axes, dim=-1), atol=1e-12, rtol=0)
        torch.testing.assert_close(positions[0], vertices[vertex] + standoff * z, atol=1e-15, rtol=0)


def test_presets_bind_to_the_smpl_topology_only():
    strip = torch.stack([torch.arange(6888), torch.arange(1, 6889), torch.arange(2, 6890)], dim=-1)  # every vertex in a face
    for preset in SMPL_PRESETS.values():
        bound = preset.bind(strip, 6890)
        assert bound.corners.tolist() == [preset.vertex]
    vertices, faces = box_mesh()
    with pytest.raises(ValueError, match=r"right_wrist: vertex 5424 is out of range for a mesh of 56 vertices"):
        smpl_preset("right_wrist").bind(faces, len(vertices))
    with pytest.raises(ValueError, match="unknown surface sensor placement 'ankle'"):
        smpl_preset("ankle")


BAD_SENSORS = {
    "vertex and face": (dict(vertex=1, face=2, barycentric=(1, 0, 0)), "give either vertex, or face"),
    "no anchor": ({}, "give either vertex, or face"),
    "face without weights": (dict(face=2), "give either vertex, or face"),
    "weights sum to 0.9": (dict(face=2, barycentric=(0.3, 0.3, 0.3)), "barycentric must be three weights"),
    "negative weight": (dict(face=2, barycentric=(1.2, -0.2, 0.0)), "barycentric must be three weights"),
    "one joint twice": (dict(vertex=1, segment=(2, 2)), "segment must be two different joint indices"),
    "not a unit mount": (dict(vertex=1, mount_rotation=(1.0, 0.1, 0.0, 0.0)), "mount_rotation must be a unit quaternion"),
    "NaN standoff": (dict(vertex=1, standoff_m=math.nan), "standoff_m must be a finite distance"),
}


@pytest.mark.parametrize("case", list(BAD_SENSORS))
def test_bad_sensors_are_named(case):
    fields, message = BAD_SENSORS[case]
    with pytest.raises(ValueError, match=f"wrist: {message}"):
        SurfaceSensor(name="wrist", **{"segment": (0, 1), **fields})


def test_bad_meshes_and_joints_are_named():
    vertices, faces = box_mesh()
    count = len(vertices)
    with pytest.raises(ValueError, match=f"s: vertex 56 is out of range for a mesh of {count} vertices"):
        SurfaceSensor(name="s", vertex=56, segment=(0, 1)).bind(faces, count)
    with pytest.raises(ValueError, match=f"s: face {len(faces)} is out of range"):
        SurfaceSensor(name="s", face=len(faces), barycentric=(1, 0, 0), segment=(0, 1)).bind(faces, count)
    with pytest.raises(ValueError, match="s: faces must be an integer tensor"):
        SurfaceSensor(name="s", vertex=0, segment=(0, 1)).bind(faces.double(), count)
    with pytest.raises(ValueError, match="s: faces index vertices outside 0..9"):
        SurfaceSensor(name="s", vertex=0, segment=(0, 1)).bind(faces, 10)
    with pytest.raises(ValueError, match="s: vertex 56 belongs to no face"):
        SurfaceSensor(name="s", vertex=56, segment=(0, 1)).bind(faces, count + 1)
    bound = SurfaceSensor(name="s", vertex=0, segment=(0, 4)).bind(faces, count)
    with pytest.raises(ValueError, match="s: joints has J = 4, missing segment joint 4"):
        bound.place(vertices[None], torch.zeros(1, 4, 3, dtype=F64))
    with pytest.raises(ValueError, match=f"s: vertices must be a float tensor \\[..., T, {count}, 3\\]"):
        bound.place(vertices[None, :-1], torch.zeros(1, 5, 3, dtype=F64))
    with pytest.raises(ValueError, match="s: joints must have shape"):
        bound.place(vertices[None], torch.zeros(2, 5, 3, dtype=F64))


@pytest.mark.parametrize("model_type", ["smplh", "smpl"])
def test_smpl_vertices_equal_the_smplx_forward_pass_and_the_sensor_sits_on_them(tmp_path, model_type):
    path = write_body_model(tmp_path / f"{model_type.upper()}_MALE.pkl", model_type)
    model = smpl.load_body_model(path, model_type=model_type, num_betas=10)
    poses, trans, betas, output = random_pose_and_forward(model, model_type, frames=3, seed=4)
    forward = output.vertices
    vertices = smpl.smpl_vertices(model, poses, trans, betas)
    assert vertices.shape == forward.shape
    torch.testing.assert_close(vertices, smpl.z_up_to_y_up(forward), atol=1e-9, rtol=0)

    joints = smpl.z_up_to_y_up(smpl.smpl_joints(model, poses, trans, betas))
    weights = (0.2, 0.3, 0.5)
    sensor = SurfaceSensor(face=1, barycentric=weights, segment=(sk.LEFT_ELBOW, sk.LEFT_WRIST))
    positions, _ = sensor.place(vertices, joints, model.faces_tensor)
    corners = vertices[:, model.faces_tensor[1]]  # [T, 3, 3]
    torch.testing.assert_close(positions, torch.einsum("k,tkc->tc", torch.tensor(weights, dtype=F64), corners), atol=1e-12, rtol=0)


def test_smpl_vertices_need_the_full_pose(tmp_path):
    model = smpl.load_body_model(write_body_model(tmp_path / "SMPL_MALE.pkl", "smpl"), model_type="smpl")
    with pytest.raises(ValueError, match=r"poses must have shape \[T, 72\]"):
        smpl.smpl_vertices(model, np.zeros((2, 156)), np.zeros((2, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="poses must have shape"):
        smpl.smpl_vertices(model, np.zeros((2, 66)), np.zeros((2, 3)), np.zeros(10))
