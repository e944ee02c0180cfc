"""Body-shape variation: named adult bodies, skeleton scaling, and SMPL shape coefficients fitted to them.

Two ways to vary the body behind a motion:
  * without a body model, scale the joint positions (`scale_skeleton` by `skeleton_scale`): geometric
    similarity, the same motion performed by a larger or smaller person, and scale sensor stand-offs from
    the bone by `limb_girth_scale`;
  * with an SMPL-family model, fit shape coefficients to a height and mass (`fit_betas`) and pose the mesh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from motion.smpl import rest_vertices

SEXES = ("male", "female")

# Adult averages, rounded: men 1.76 m, 80 kg (BMI 25.8 kg/m²), women 1.63 m, 65 kg (BMI 24.5 kg/m²), close
# to the means of high-income Western countries in the NCD Risk Factor Collaboration's height (eLife
# 2016;5:e13410) and BMI (Lancet 2017;390:2627) estimates. Within a population, adult height has a standard
# deviation of about 7 cm (men) and 6.5 cm (women) (e.g. CDC NHANES anthropometric reference data, Vital
# Health Stat 3(46), 2021). Tall / short = mean ± 2 SD at the average BMI; adipose = average height at
# BMI 35 (WHO obesity class II).
_AVERAGE = {"male": (1.76, 80.0), "female": (1.63, 65.0)}  # height (m), mass (kg)
_HEIGHT_SD_M = {"male": 0.07, "female": 0.065}
_ADIPOSE_BMI = 35.0


@dataclass(frozen=True)
class BodyShape:
    """An adult body: sex ("male" or "female"), standing height (m) and mass (kg)."""

    name: str
    sex: str
    height_m: float
    mass_kg: float

    def __post_init__(self):
        if self.sex not in SEXES:
            raise ValueError(f"{self.name}: sex must be one of {SEXES}, got {self.sex!r}")
        _check_positive("height_m", self.height_m)
        _check_positive("mass_kg", self.mass_kg)

    @property
    def bmi(self) -> float:
        """Body-mass index, kg/m²."""
        return self.mass_kg / self.height_m**2


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _body(sex: str, build: str) -> BodyShape:
    height, mass = _AVERAGE[sex]
    bmi = _ADIPOSE_BMI if build == "adipose" else mass / height**2
    height += {"average": 0.0, "tall": 2.0, "short": -2.0, "adipose": 0.0}[build] * _HEIGHT_SD_M[sex]
    return BodyShape(f"{sex}_{build}", sex, round(height, 3), round(bmi * height**2, 1))


BODY_SHAPES = {
    body.name: body for body in (_body(sex, build) for sex in SEXES for build in ("average", "tall", "short", "adipose"))
}
"""Eight bodies: male / female × average, tall, short, adipose (see the sources above)."""


def body_shape(name: str) -> BodyShape:
    if name not in BODY_SHAPES:
        raise ValueError(f"unknown body shape {name!r}; choose one of {sorted(BODY_SHAPES)}")
    return BODY_SHAPES[name]


def skeleton_scale(shape: BodyShape, reference_height_m: float) -> float:
    """Factor that scales a skeleton of height `reference_height_m` to `shape`'s height."""
    _check_positive("reference_height_m", reference_height_m)
    return shape.height_m / reference_height_m


def limb_girth_scale(shape: BodyShape, reference: BodyShape) -> float:
    """Factor on limb radii (e.g. a sensor's stand-off from the bone) from `reference` to `shape`.

    A limb of fixed density and length ∝ height has a cross-section ∝ mass / height, so its radius scales
    with sqrt((mass / height) / (mass_ref / height_ref)).
    """
    return math.sqrt((shape.mass_kg / shape.height_m) / (reference.mass_kg / reference.height_m))


def scale_skeleton(joints: torch.Tensor, scale) -> torch.Tensor:
    """Joints `[..., T, J, 3]` (m, y up) scaled by `scale` (a number or `[...]`) about the root's floor point.

    The fixed point is below the root joint (joint 0) at the first frame, on the floor y = 0, so a body
    standing on the floor stays on it; every bone, and the path travelled, scales by `scale`, and joint
    angles do not change. Batched and differentiable in both arguments.
    """
    if not (isinstance(joints, torch.Tensor) and joints.is_floating_point() and joints.ndim >= 3 and joints.shape[-1] == 3):
        raise ValueError(f"joints must be a float tensor [..., T, J, 3], got {getattr(joints, 'shape', joints)!r}")
    scale = torch.as_tensor(scale, dtype=joints.dtype, device=joints.device)
    if scale.shape != joints.shape[:-3] and scale.ndim != 0:
        raise ValueError(
            f"scale must be a number or have the joints' batch shape {tuple(joints.shape[:-3])}, got {tuple(scale.shape)}"
        )
    if not (torch.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("scale must be positive and finite")
    floor_point = joints[..., :1, :1, :] * joints.new_tensor([1.0, 0.0, 1.0])  # [..., 1, 1, 3]
    return floor_point + scale[..., None, None, None] * (joints - floor_point)


def mesh_volume(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Enclosed volume `[...]` (m³) of a closed, outward-oriented triangle mesh `[..., V, 3]`, faces `[F, 3]`.

    Sum of the signed volumes of the tetrahedra (origin, a, b, c): a · (b × c) / 6 (divergence theorem).
    """
    a, b, c = vertices[..., faces, :].unbind(-2)
    return (a * torch.linalg.cross(b, c, dim=-1)).sum((-2, -1)) / 6.0


def check_closed_mesh(faces: torch.Tensor, name: str = "faces") -> None:
    """Every edge must be shared by exactly two faces that run along it in opposite directions.

    That is what makes `mesh_volume` the enclosed volume: a hole or a flipped face breaks it.
    """
    faces = faces.long()
    directed = torch.stack((faces, faces.roll(-1, dims=1)), dim=-1).reshape(-1, 2)  # a→b, b→c, c→a
    size = int(faces.max()) + 1
    keys = directed[:, 0] * size + directed[:, 1]
    if torch.unique(keys).numel() != keys.numel():
        raise ValueError(f"{name}: some edge is traversed twice in the same direction (flipped or non-manifold faces)")
    open_edges = int((~torch.isin(directed[:, 1] * size + directed[:, 0], keys)).sum())
    if open_edges:
        raise ValueError(
            f"{name}: the mesh is not closed ({open_edges} edges border one face only); its volume is undefined"
        )


def rest_height_and_mass(
    body_model: torch.nn.Module, betas: torch.Tensor, density_kg_m3: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Height (m, vertical extent) and mass (kg, density × enclosed volume) of the rest-pose mesh for `betas` `[B]`."""
    vertices = rest_vertices(body_model, betas)
    height = vertices[:, 1].max() - vertices[:, 1].min()  # SMPL's rest frame is y up
    return height, density_kg_m3 * mesh_volume(vertices, body_model.faces_tensor).abs()


def fit_betas(
    body_model: torch.nn.Module,
    height_m: float,
    mass_kg: float,
    *,
    num_betas: int | None = None,
    density_kg_m3: float = 985.0,
    steps: int = 50,
    height_tolerance_m: float = 1e-5,
    mass_tolerance_kg: float = 1e-3,
) -> torch.Tensor:
    """Shape coefficients `[num_betas]` whose rest-pose (T-pose) mesh has height `height_m` and mass `mass_kg`.

    Height is the mesh's vertical extent (SMPL's rest frame is y up), mass = `density_kg_m3` × the volume
    the closed mesh encloses (`mesh_volume`); 985 kg/m³ is a whole-body density with the lungs' air. Two
    targets leave the other directions of shape space free, so the fit takes minimum-norm Gauss–Newton
    steps from the mean shape (betas = 0), with autograd gradients of both quantities: the solution stays
    as close to the mean body as the targets allow, and converges in a few steps where plain gradient
    descent would need thousands for millimetre accuracy.

    Args:
        body_model: an smplx `SMPL`, `SMPLH` or `SMPLX` module (closed mesh `faces_tensor`).
        height_m, mass_kg: targets (m, kg).
        num_betas: how many leading shape coefficients to fit (default: all the model keeps).
        steps: most Gauss–Newton steps; a target still missed by more than its tolerance then raises.
    """
    _check_positive("height_m", height_m)
    _check_positive("mass_kg", mass_kg)
    _check_positive("density_kg_m3", density_kg_m3)
    available = body_model.num_betas
    num_betas = available if num_betas is None else num_betas
    if not isinstance(num_betas, int) or not 1 <= num_betas <= available:
        raise ValueError(
            f"num_betas must be an integer in 1..{available} (the model's shape coefficients), got {num_betas!r}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    check_closed_mesh(body_model.faces_tensor, "body_model's mesh")
    targets = torch.tensor([height_m, mass_kg], dtype=body_model.v_template.dtype, device=body_model.v_template.device)

    def relative_error(betas: torch.Tensor) -> torch.Tensor:
        return torch.stack(rest_height_and_mass(body_model, betas, density_kg_m3)) / targets - 1.0

    betas = targets.new_zeros(num_betas)
    for step in range(steps + 1):
        with torch.no_grad():
            error = relative_error(betas)
        reached = (error + 1.0) * targets
        if abs(reached[0] - height_m) <= height_tolerance_m and abs(reached[1] - mass_kg) <= mass_tolerance_kg:
            return betas
        if step < steps:
            jacobian = torch.autograd.functional.jacobian(relative_error, betas)  # [2, num_betas]
            betas = betas - torch.linalg.pinv(jacobian) @ error
    raise RuntimeError(
        f"fit_betas: after {steps} steps the rest mesh is {float(reached[0]):.4f} m, {float(reached[1]):.2f} kg; "
        f"targets {height_m} m, {mass_kg} kg (outside what {num_betas} shape coefficients of this model reach?)"
    )
