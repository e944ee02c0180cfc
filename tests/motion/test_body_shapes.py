"""Body shapes: the named bodies, skeleton scaling, mesh volume and SMPL shape fitting (closed-form checks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motion import skeleton as sk
from motion import smpl
from motion.body_shapes import (
    BODY_SHAPES,
    BodyShape,
    body_shape,
    check_closed_mesh,
    fit_betas,
    limb_girth_scale,
    mesh_volume,
    rest_height_and_mass,
    scale_skeleton,
    skeleton_scale,
)
from tests.motion.test_smpl import write_body_model
from tests.virtual_imu.test_surface import BOX_SIZE, box_mesh
from virtual_imu import simulate
from virtual_imu import quaternion as Q

F64 = torch.float64
DENSITY = 985.0
HEIGHT_PER_BETA0 = 0.1  # beta_0 = 1 makes the box 10 % taller (about the floor)
GIRTH_PER_BETA1 = 0.1  # beta_1 = 1 makes it 10 % wider and deeper (about the y axis)


def test_eight_bodies_from_the_averages():
    assert sorted(BODY_SHAPES) == sorted(f"{sex}_{build}" for sex in ("male", "female")
                                         for build in ("average", "tall", "short", "adipose"))
    expected = {  # height (m), mass (kg): mean ± 2 SD (7 cm men, 6.5 cm women) at the average BMI; BMI 35
        "male_average": (1.76, 80.0), "male_tall": (1.90, 93.2), "male_short": (1.62, 67.8), "male_adipose": (1.76, 108.4),
        "female_average": (1.63, 65.0), "female_tall": (1.76, 75.8), "female_short": (1.50, 55.0),
        "female_adipose": (1.63, 93.0),
    }
    for name, (height, mass) in expected.items():
        body = body_shape(name)
        assert body.sex == name.split("_")[0]
        assert body.height_m == pytest.approx(height, abs=1e-9) and body.mass_kg == pytest.approx(mass, abs=1e-9)
    assert body_shape("male_adipose").bmi == pytest.approx(35.0, abs=0.05)


@pytest.mark.parametrize(
    "fields, message",
    [(("robot", 1.7, 70.0), "sex must be one of"), (("male", 0.0, 70.0), "height_m must be a positive"),
     (("male", 1.7, -1.0), "mass_kg must be a positive"), (("male", math.nan, 70.0), "height_m must be a positive")],
)
def test_bad_bodies_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        BodyShape("x", *fields)
    with pytest.raises(ValueError, match="unknown body shape 'giant'"):
        body_shape("giant")


def test_skeleton_and_girth_scales():
    tall, average, adipose = body_shape("male_tall"), body_shape("male_average"), body_shape("male_adipose")
    assert skeleton_scale(tall, 1.70) == pytest.approx(1.90 / 1.70, rel=1e-12)
    assert limb_girth_scale(average, average) == 1.0
    assert limb_girth_scale(adipose, average) == pytest.approx(math.sqrt(108.4 / 80.0), rel=1e-12)  # same height
    with pytest.raises(ValueError, match="reference_height_m must be a positive"):
        skeleton_scale(tall, 0.0)


def _walk(frames: int = 30, batch: tuple[int, ...] = ()) -> torch.Tensor:
    """The rest skeleton turning and walking forward, with per-joint wobble: `[*batch, T, 22, 3]`."""
    generator = torch.Generator().manual_seed(0)
    rest = torch.tensor(sk.rest_joints(), dtype=F64)
    time = torch.arange(frames, dtype=F64) / sk.FPS
    turn = Q.from_axis_angle(torch.tensor([0.0, 1.0, 0.0], dtype=F64).expand(frames, 3), 0.8 * time)
    pelvis = rest[sk.PELVIS]
    joints = pelvis + Q.rotate(turn[:, None], (rest - pelvis).expand(frames, -1, 3))
    joints = joints + torch.stack([0.3 * time, 0.02 * torch.sin(6 * time), 1.1 * time], dim=-1)[:, None]
    return joints + 0.01 * torch.randn(*batch, frames, sk.NUM_JOINTS, 3, generator=generator, dtype=F64)


def _bones(joints: torch.Tensor) -> torch.Tensor:
    return joints[..., 1:, :] - joints[..., list(sk.PARENTS[1:]), :]


def test_scaling_scales_bones_and_keeps_angles_and_the_floor():
    joints = _walk()
    scaled = scale_skeleton(joints, 1.2)
    torch.testing.assert_close(_bones(scaled), 1.2 * _bones(joints), atol=1e-14, rtol=0)  # lengths and directions
    unit = _bones(joints) / _bones(joints).norm(dim=-1, keepdim=True)
    unit_scaled = _bones(scaled) / _bones(scaled).norm(dim=-1, keepdim=True)
    cosines = (unit[..., 3:, :] * unit[..., [sk.PARENTS[j] - 1 for j in range(4, 22)], :]).sum(-1)
    cosines_scaled = (unit_scaled[..., 3:, :] * unit_scaled[..., [sk.PARENTS[j] - 1 for j in range(4, 22)], :]).sum(-1)
    torch.testing.assert_close(cosines_scaled, cosines, atol=1e-14, rtol=0)  # angle between each bone and its parent bone
    floor_point = joints[0, sk.PELVIS] * torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    torch.testing.assert_close(scaled - floor_point, 1.2 * (joints - floor_point), atol=1e-14, rtol=0)
    rest = torch.tensor(sk.rest_joints(), dtype=F64)[None]
    assert scale_skeleton(rest, 0.9)[0, sk.LEFT_FOOT, 1].item() == pytest.approx(0.0, abs=1e-15)  # feet stay on the floor


def test_scaling_scales_the_kinematic_acceleration_exactly():
    joints, scale = _walk(), 1.15
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64).expand(joints.shape[0], 4)
    acc, _ = simulate(joints[:, sk.LEFT_WRIST], identity, sk.FPS, gravity=0.0)
    acc_scaled, _ = simulate(scale_skeleton(joints, scale)[:, sk.LEFT_WRIST], identity, sk.FPS, gravity=0.0)
    torch.testing.assert_close(acc_scaled, scale * acc, atol=1e-11, rtol=0)  # measured 4e-13 m/s²


def test_scaling_is_batched_and_differentiable():
    joints = _walk(batch=(3,))
    scale = torch.tensor([0.9, 1.0, 1.2], dtype=F64, requires_grad=True)
    scaled = scale_skeleton(joints, scale)
    for i, factor in enumerate([0.9, 1.0, 1.2]):
        torch.testing.assert_close(scaled[i], scale_skeleton(joints[i], factor), atol=1e-14, rtol=0)
    assert torch.autograd.gradcheck(scale_skeleton, (joints[:, :3].clone().requires_grad_(), scale))


@pytest.mark.parametrize(
    "joints, scale, message",
    [(torch.zeros(4, 22), 1.0, "joints must be a float tensor"), (torch.zeros(2, 4, 22, 3), 0.0, "scale must be positive"),
     (torch.zeros(2, 4, 22, 3), torch.ones(3), "scale must be a number or have the joints' batch shape")],
)
def test_bad_scaling_is_named(joints, scale, message):
    with pytest.raises(ValueError, match=message):
        scale_skeleton(joints, scale)


def test_box_volume_and_closedness():
    vertices, faces = box_mesh()
    assert mesh_volume(vertices, faces).item() == pytest.approx(math.prod(BOX_SIZE), rel=1e-12)
    check_closed_mesh(faces)
    with pytest.raises(ValueError, match=r"box: the mesh is not closed \(3 edges border one face only\)"):
        check_closed_mesh(faces[1:], "box")
    flipped = faces.clone()
    flipped[0] = flipped[0].flip(0)
    with pytest.raises(ValueError, match="box: some edge is traversed twice in the same direction"):
        check_closed_mesh(flipped, "box")


def _box_body_model(path, faces_keep=slice(None)):
    """An SMPL file whose template is the closed box: beta_0 scales its height, beta_1 its girth."""
    vertices, faces = box_mesh()
    shapedirs = np.zeros((len(vertices), 3, 10))
    shapedirs[:, 1, 0] = HEIGHT_PER_BETA0 * vertices[:, 1].numpy()
    shapedirs[:, [0, 2], 1] = GIRTH_PER_BETA1 * vertices[:, [0, 2]].numpy()
    replace = {"v_template": vertices.numpy(), "shapedirs": shapedirs, "f": faces[faces_keep].numpy()}
    file = write_body_model(path, "smpl", num_vertices=len(vertices), replace=replace)
    return smpl.load_body_model(file, model_type="smpl", num_betas=10)


@pytest.fixture(scope="module")
def box_model(tmp_path_factory):
    return _box_body_model(tmp_path_factory.mktemp("box") / "SMPL_BOX.pkl")


def test_rest_height_and_mass_of_the_box(box_model):
    height, mass = rest_height_and_mass(box_model, torch.zeros(10, dtype=F64), DENSITY)
    # smplx keeps the template in float32 (as the real model files are): 1e-7 relative.
    assert height.item() == pytest.approx(BOX_SIZE[1], rel=1e-6)
    assert mass.item() == pytest.approx(DENSITY * math.prod(BOX_SIZE), rel=1e-6)


@pytest.mark.parametrize("name", sorted(BODY_SHAPES))
def test_fit_betas_reaches_each_body(box_model, name):
    body = body_shape(name)
    betas = fit_betas(box_model, body.height_m, body.mass_kg, density_kg_m3=DENSITY)
    height, mass = rest_height_and_mass(box_model, betas, DENSITY)
    assert abs(height.item() - body.height_m) < 1e-3  # measured ≤ 2e-16 m over the eight bodies
    assert abs(mass.item() - body.mass_kg) < 0.5  # measured ≤ 1.3e-4 kg
    # Closed form: height ∝ (1 + 0.1 β0), mass ∝ height · (1 + 0.1 β1)², and the minimum-norm fit leaves β2.. at 0.
    width, _, depth = BOX_SIZE
    beta0 = (body.height_m / BOX_SIZE[1] - 1) / HEIGHT_PER_BETA0
    beta1 = (math.sqrt(body.mass_kg / (DENSITY * width * depth * body.height_m)) - 1) / GIRTH_PER_BETA1
    expected = torch.tensor([beta0, beta1] + [0.0] * 8, dtype=F64)
    torch.testing.assert_close(betas, expected, atol=1e-4, rtol=0)  # measured 9e-6 (float32 template)


def test_fit_betas_reports_an_unreachable_target(box_model):
    with pytest.raises(RuntimeError, match="fit_betas: after 5 steps"):
        fit_betas(box_model, 1.76, 80.0, num_betas=1, steps=5)  # beta_0 alone cannot set both height and mass


@pytest.mark.parametrize(
    "options, message",
    [({"height_m": 0.0}, "height_m must be a positive"), ({"mass_kg": -5.0}, "mass_kg must be a positive"),
     ({"density_kg_m3": 0.0}, "density_kg_m3 must be a positive"), ({"num_betas": 11}, r"num_betas must be an integer in 1\.\.10"),
     ({"steps": 0}, "steps must be a positive integer")],
)
def test_bad_fit_arguments_are_named(box_model, options, message):
    with pytest.raises(ValueError, match=message):
        fit_betas(box_model, **{"height_m": 1.7, "mass_kg": 70.0, **options})


def test_fit_betas_rejects_an_open_mesh(tmp_path):
    model = _box_body_model(tmp_path / "SMPL_OPEN.pkl", faces_keep=slice(1, None))
    with pytest.raises(ValueError, match="body_model's mesh: the mesh is not closed"):
        fit_betas(model, 1.7, 70.0)
