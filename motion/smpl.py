"""AMASS / SMPL-family motion as HumanML3D-style joint positions `[T, 22, 3]` (m, y up), through `smplx`.

An AMASS motion file is an `.npz` with
  * `poses` `[T, 72]` (SMPL: root + 23 body joints), `[T, 156]` (SMPL+H: root + 21 body joints + 2 × 15
    hand joints) or `[T, 165]` (SMPL-X: root + 21 body + jaw + 2 eyes + 2 × 15 hand joints), axis-angle, rad;
  * `trans` `[T, 3]` root translation (m), `betas` `[10 or 16]` shape coefficients, `gender`;
  * `mocap_framerate` (AMASS SMPL+H releases) or `mocap_frame_rate` (AMASS SMPL-X releases), Hz.
The world is **z up**. The first 22 SMPL joints are HumanML3D's 22 joints in HumanML3D's order (same
names, same parents: `motion.skeleton`), and they depend only on the body shape and on the first 66 pose
numbers (root + 21 body joints), whatever the model type.

The body model files are not redistributable: register and download them from
https://smpl.is.tue.mpg.de (SMPL), https://mano.is.tue.mpg.de ("Extended SMPL+H model" used by AMASS) or
https://smpl-x.is.tue.mpg.de (SMPL-X).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, lbs, vertices2joints
from smplx.utils import Struct

from motion import skeleton
from virtual_imu.filters import resample
from virtual_imu.surface import SMPL_PRESETS, SurfaceSensor, smpl_preset

MODEL_TYPES = ("smpl", "smplh", "smplx")
POSE_WIDTHS = {"smpl": 72, "smplh": 156, "smplx": 165}
"""Width of AMASS `poses` for each body model type."""
GENDERS = ("male", "female", "neutral")
MODEL_DOWNLOADS = {
    "smpl": "https://smpl.is.tue.mpg.de",
    "smplh": 'https://mano.is.tue.mpg.de ("Extended SMPL+H model" used by AMASS)',
    "smplx": "https://smpl-x.is.tue.mpg.de",
}
_MODEL_SUFFIXES = (".npz", ".pkl")
_MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_HAND_POSE_WIDTH = 45  # 15 joints × 3
_FLAT_HANDS = {
    "hands_componentsl": np.eye(_HAND_POSE_WIDTH),
    "hands_componentsr": np.eye(_HAND_POSE_WIDTH),
    "hands_meanl": np.zeros(_HAND_POSE_WIDTH),
    "hands_meanr": np.zeros(_HAND_POSE_WIDTH),
}
_FRAME_RATE_KEYS = ("mocap_framerate", "mocap_frame_rate")
_REQUIRED_KEYS = ("poses", "trans", "betas", "gender")
_BODY_POSE_WIDTH = 3 * skeleton.NUM_JOINTS  # root + 21 body joints: all the 22 joints depend on

AMASS_TO_Y_UP = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
"""Rotation from the AMASS world (z up) to the project's (y up): `(x, y, z) → (−x, z, y)`.

It is HumanML3D's conversion: its pipeline swaps y and z (a reflection, det −1) and later negates x (a
second reflection), so the composition is a proper rotation (det +1: 180° about `(0, 1, 1)/√2`) and the
frame stays right-handed. A body standing in the usual AMASS way (root rotated +90° about x from the SMPL
rest pose) ends up upright, facing −z with its left on −x; HumanML3D turns every clip to face +z later,
this module keeps the captured heading.
"""
AMASS_TO_Y_UP.setflags(write=False)


@dataclass(frozen=True, eq=False)
class AMASSMotion:
    """The parts of an AMASS motion file this module uses.

    Attributes:
        poses: `[T, 72 | 156 | 165]` axis-angle pose parameters (rad).
        trans: `[T, 3]` root translation (m), AMASS world (z up).
        betas: `[B]` shape coefficients.
        gender: "male", "female" or "neutral".
        fps: capture frame rate (Hz).
        source: the file it was read from.
    """

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str
    fps: float
    source: str


def read_amass(path: str | Path) -> AMASSMotion:
    """Read and check an AMASS motion `.npz` (see the module docstring for its keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such AMASS motion file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from error
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    frame_rate_keys = [key for key in _FRAME_RATE_KEYS if key in data]
    if not frame_rate_keys:
        missing.append(" or ".join(_FRAME_RATE_KEYS))
    if missing:
        raise ValueError(
            f"{path}: missing key(s) {missing}; an AMASS motion file has poses, trans, betas, gender and "
            f"mocap_framerate (or mocap_frame_rate); found {sorted(data)}"
        )
    poses = np.asarray(data["poses"], dtype=np.float64)
    widths = ", ".join(f"[T, {width}] ({kind})" for kind, width in POSE_WIDTHS.items())
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS.values():
        raise ValueError(f"{path}: poses must have shape {widths}, got {poses.shape}")
    if poses.shape[0] < 2:
        raise ValueError(f"{path}: needs at least 2 frames, got {poses.shape[0]}")
    trans = np.asarray(data["trans"], dtype=np.float64)
    if trans.shape != (poses.shape[0], 3):
        raise ValueError(f"{path}: trans must have shape [{poses.shape[0]}, 3] like poses, got {trans.shape}")
    betas = np.asarray(data["betas"], dtype=np.float64)
    if betas.ndim != 1 or betas.size == 0:
        raise ValueError(f"{path}: betas must have shape [B], got {betas.shape}")
    fps = float(np.asarray(data[frame_rate_keys[0]]))
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: {frame_rate_keys[0]} must be a positive frame rate in Hz, got {fps}")
    for name, array in (("poses", poses), ("trans", trans), ("betas", betas)):
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: {name} holds non-finite values")
    gender = np.asarray(data["gender"]).item()
    gender = (gender.decode() if isinstance(gender, bytes) else str(gender)).strip().lower()
    if gender not in GENDERS:
        raise ValueError(f"{path}: gender must be one of {GENDERS}, got {gender!r}")
    return AMASSMotion(poses=poses, trans=trans, betas=betas, gender=gender, fps=fps, source=str(path))


def _check_model_type(model_type: str) -> str:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    return model_type


def _where_to_get(model_type: str) -> str:
    return f"download the {model_type} body models (registration required) from {MODEL_DOWNLOADS[model_type]}"


def resolve_model_file(model_path: str | Path, model_type: str, gender: str) -> Path:
    """The body model file for `model_type` and `gender` under `model_path`.

    `model_path` is the file itself (then `gender` is not used), or a folder in one of these layouts
    (`<type>` is e.g. "smplh", `<TYPE>_<GENDER>` e.g. "SMPLH_MALE"), searched in this order:
    `<gender>/model.<ext>` (AMASS), `<TYPE>_<GENDER>.<ext>` (smplx), and both under `<type>/`.
    """
    _check_model_type(model_type)
    model_path = Path(model_path)
    if not model_path.exists():
        raise FileNotFoundError(f"model_path {model_path} does not exist; {_where_to_get(model_type)}")
    if model_path.is_file():
        if model_path.suffix not in _MODEL_SUFFIXES:
            raise ValueError(f"{model_path}: body model files are .npz or .pkl")
        return model_path
    names = [f"{gender}/model{suffix}" for suffix in _MODEL_SUFFIXES]
    names += [f"{model_type.upper()}_{gender.upper()}{suffix}" for suffix in _MODEL_SUFFIXES]
    candidates = [model_path / name for name in names] + [model_path / model_type / name for name in names]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(candidate.relative_to(model_path)) for candidate in candidates)
    raise FileNotFoundError(
        f"no {model_type} body model for gender {gender!r} in {model_path} (looked for {tried}); "
        f"{_where_to_get(model_type)}"
    )


def load_body_model(
    model_path: str | Path,
    *,
    model_type: str = "smplh",
    gender: str = "neutral",
    num_betas: int = 10,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """The smplx body model (float64, on `device`) for `model_type` and `gender` (see `resolve_model_file`).

    Models are cached per (file, type, num_betas, device): callers share the module and must not modify it.
    smplx keeps at most 10 shape coefficients unless the model file has ≥ 300 (like HumanML3D, which uses 10).
    Hands use the full axis-angle pose (no PCA) with a flat mean, as AMASS stores them, so AMASS's Extended
    SMPL+H files, which lack the hand PCA, load as they are.
    """
    file = resolve_model_file(model_path, model_type, gender)
    return _load_body_model(str(file.resolve()), model_type, gender, int(num_betas), str(torch.device(device)))


def _read_model_data(file: Path) -> dict:
    """The arrays of a body model file, read the way smplx reads them."""
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=True) as archive:  # smplx's reader: model files are trusted downloads
            return {key: archive[key] for key in archive.files}
    with open(file, "rb") as stream:
        return dict(pickle.load(stream, encoding="latin1"))


@functools.lru_cache(maxsize=8)
def _load_body_model(file: str, model_type: str, gender: str, num_betas: int, device: str) -> torch.nn.Module:
    try:
        data = _read_model_data(Path(file))
    except ImportError as error:  # the original SMPL .pkl files pickle chumpy arrays
        hint = f"unpickling needs {error.name}; install it or use a chumpy-free model file"
        raise ValueError(f"{file}: {hint}") from error
    except (OSError, ValueError, EOFError, TypeError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise ValueError(f"{file}: not a readable {model_type} body model file ({error})") from error
    missing = [key for key in _MODEL_KEYS if key not in data]
    if missing:
        raise ValueError(f"{file}: not a {model_type} body model file: missing key(s) {missing}")
    options = dict(gender=gender, num_betas=num_betas, dtype=torch.float64)
    hands = dict(use_pca=False, flat_hand_mean=True)
    try:
        if model_type == "smplx":  # SMPLX takes no data_struct: it reads the file itself
            body_model = smplx.SMPLX(model_path=file, ext=Path(file).suffix[1:], **hands, **options)
        elif model_type == "smplh":
            # AMASS's Extended SMPL+H files have no hand PCA; with use_pca=False and flat_hand_mean=True smplx
            # reads only the hand mean's size, so an identity basis and a zero mean are exact stand-ins.
            data_struct = Struct(**{**_FLAT_HANDS, **data})
            body_model = smplx.SMPLH(model_path=file, data_struct=data_struct, **hands, **options)
        else:
            body_model = smplx.SMPL(model_path=file, data_struct=Struct(**data), **options)
    except (AttributeError, KeyError, IndexError, ValueError, RuntimeError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(f"{file}: not a readable {model_type} body model file ({reason})") from error
    parents = tuple(body_model.parents[: skeleton.NUM_JOINTS].tolist())
    if body_model.J_regressor.shape[0] < skeleton.NUM_JOINTS or parents != skeleton.PARENTS:
        raise ValueError(f"{file}: its first 22 joints do not form the SMPL body tree {skeleton.PARENTS}: {parents}")
    return body_model.to(device).eval()


def _as_model_tensors(body_model: torch.nn.Module, poses, trans, betas, min_pose_width: int):
    """`poses` `[T, P ≥ min_pose_width]`, `trans` `[T, 3]`, `betas` `[B]` as tensors of the model's dtype and device."""
    dtype, device = body_model.v_template.dtype, body_model.v_template.device
    poses = torch.as_tensor(poses, dtype=dtype, device=device)
    trans = torch.as_tensor(trans, dtype=dtype, device=device)
    betas = torch.as_tensor(betas, dtype=dtype, device=device)
    if poses.ndim != 2 or poses.shape[0] == 0 or poses.shape[1] < min_pose_width:
        raise ValueError(f"poses must have shape [T ≥ 1, P ≥ {min_pose_width}], got {tuple(poses.shape)}")
    if trans.shape != (poses.shape[0], 3):
        raise ValueError(f"trans must have shape [{poses.shape[0]}, 3] like poses, got {tuple(trans.shape)}")
    if betas.ndim != 1:
        raise ValueError(f"betas must have shape [B], got {tuple(betas.shape)}")
    return poses, trans, betas


def rest_vertices(body_model: torch.nn.Module, betas) -> torch.Tensor:
    """Vertices `[V, 3]` (m) of the shaped body in its rest pose (SMPL's T-pose), in the model's own frame.

    That frame is SMPL's canonical one: y up, the body facing +z, no root rotation or translation (AMASS
    stands it in its z-up world through the root rotation). Template + shape blend shapes of the first
    min(B, body_model.num_betas) of `betas` `[B]`; differentiable in `betas`.
    """
    betas = torch.as_tensor(betas, dtype=body_model.v_template.dtype, device=body_model.v_template.device)
    if betas.ndim != 1:
        raise ValueError(f"betas must have shape [B], got {tuple(betas.shape)}")
    num_betas = min(betas.shape[0], body_model.num_betas)
    return body_model.v_template + blend_shapes(betas[None, :num_betas], body_model.shapedirs[..., :num_betas])[0]


def smpl_joints(body_model: torch.nn.Module, poses, trans, betas) -> torch.Tensor:
    """Positions `[T, 22, 3]` (m) of the 22 body joints, in the body model's world (z up for AMASS).

    Equal to `body_model(...).joints[:, :22]` (tested) without skinning the mesh: the joints depend only
    on the shaped rest joints (regressed from template + shape blend shapes) and on the chain of root and
    body-joint rotations; pose blend shapes and skinning move vertices only. That saves the `[T, V, 4, 4]`
    skinning work, the bulk of a forward pass.

    Args:
        body_model: an smplx `SMPL`, `SMPLH` or `SMPLX` module.
        poses: `[T, P]` axis-angle (rad), SMPL-family order, P ≥ 66; columns past 66 (hands, jaw, eyes)
            move no body joint and are not read.
        trans: `[T, 3]` root translation (m).
        betas: `[B]` shape coefficients; the first min(B, body_model.num_betas) are used.
    """
    poses, trans, betas = _as_model_tensors(body_model, poses, trans, betas, _BODY_POSE_WIDTH)
    rest_joints = vertices2joints(body_model.J_regressor[: skeleton.NUM_JOINTS], rest_vertices(body_model, betas)[None])
    frames = poses.shape[0]
    rotations = batch_rodrigues(poses[:, :_BODY_POSE_WIDTH].reshape(-1, 3)).reshape(frames, -1, 3, 3)
    posed_joints, _ = batch_rigid_transform(
        rotations, rest_joints.expand(frames, -1, -1), body_model.parents[: skeleton.NUM_JOINTS],
        dtype=body_model.v_template.dtype,
    )
    return posed_joints + trans[:, None, :]


def smpl_vertices(body_model: torch.nn.Module, poses, trans, betas) -> torch.Tensor:
    """Posed mesh vertices `[T, V, 3]` (m) in the project's **y-up** world (`z_up_to_y_up` of the AMASS world).

    Equal to `z_up_to_y_up(body_model(...).vertices)` (tested): template + shape blend shapes
    (`rest_vertices`, shared with `smpl_joints`), pose blend shapes and linear blend skinning by smplx's
    `lbs`, then the root translation. Differentiable in poses, trans and betas. The faces are
    `body_model.faces_tensor`; the joints in the same world are `z_up_to_y_up(smpl_joints(...))`.

    Args:
        body_model: an smplx `SMPL`, `SMPLH` or `SMPLX` module.
        poses: `[T, P]` axis-angle (rad) in AMASS order, P = 3 × the model's joint count (72 SMPL, 156
            SMPL+H, 165 SMPL-X): hands, jaw and eyes move vertices, so every column is read.
        trans: `[T, 3]` root translation (m), AMASS world (z up).
        betas: `[B]` shape coefficients; the first min(B, body_model.num_betas) are used.
    """
    pose_width = 3 * body_model.parents.numel()
    poses, trans, betas = _as_model_tensors(body_model, poses, trans, betas, pose_width)
    if poses.shape[1] != pose_width:
        raise ValueError(f"poses must have shape [T, {pose_width}] for this body model, got {tuple(poses.shape)}")
    pose_mean = getattr(body_model, "pose_mean", None)  # SMPL+H / SMPL-X hand mean (zero for flat hands)
    full_pose = poses if pose_mean is None else poses + pose_mean
    # The shape is already in the template (rest_vertices), so lbs gets no shape coefficients.
    no_betas = betas.new_zeros(poses.shape[0], 0)
    vertices, _ = lbs(
        no_betas, full_pose, rest_vertices(body_model, betas), body_model.shapedirs[..., :0], body_model.posedirs,
        body_model.J_regressor, body_model.parents, body_model.lbs_weights,
    )
    return z_up_to_y_up(vertices + trans[:, None, :])


def z_up_to_y_up(points):
    """`points` `[..., 3]` (numpy or torch) from the AMASS world (z up) to the project's (y up): `AMASS_TO_Y_UP`."""
    if isinstance(points, torch.Tensor):
        return points @ torch.tensor(AMASS_TO_Y_UP, dtype=points.dtype, device=points.device).T
    return np.asarray(points) @ AMASS_TO_Y_UP.T


def _open_amass(path, model_path, model_type: str, fps: float, batch_size: int, device):
    """The checked motion file at `path` and its body model (see `load_amass` for the arguments)."""
    _check_model_type(model_type)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive frame rate in Hz, got {fps}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be ≥ 1 frame, got {batch_size}")
    motion = read_amass(path)
    width = motion.poses.shape[1]
    if width != POSE_WIDTHS[model_type]:
        layout = next(kind for kind, expected in POSE_WIDTHS.items() if expected == width)
        raise ValueError(
            f"{path}: poses has width {width} ({layout} layout) but model_type={model_type!r} expects "
            f"{POSE_WIDTHS[model_type]}; pass model_type={layout!r}"
        )
    body_model = load_body_model(
        model_path, model_type=model_type, gender=motion.gender, num_betas=motion.betas.size, device=device
    )
    return motion, body_model


def _posed(motion: AMASSMotion, pose: Callable, batch_size: int) -> torch.Tensor:
    """`pose(poses, trans, betas)` of the whole motion, `batch_size` frames at a time (bounds the memory)."""
    chunks = (slice(start, start + int(batch_size)) for start in range(0, motion.poses.shape[0], int(batch_size)))
    return torch.cat([pose(motion.poses[chunk], motion.trans[chunk], motion.betas) for chunk in chunks])


def _resampled(points: torch.Tensor, fps_in: float, fps_out: float) -> torch.Tensor:
    """Points `[T, N, 3]` resampled in time from `fps_in` to `fps_out` (`virtual_imu.filters.resample`)."""
    frames, count = points.shape[:2]
    return resample(points.reshape(frames, -1), fps_in, fps_out).reshape(-1, count, 3)


def _y_up_joints(motion: AMASSMotion, body_model: torch.nn.Module, batch_size: int) -> torch.Tensor:
    """The 22 joints `[T, 22, 3]` (m, y up) of every frame of `motion`."""
    return z_up_to_y_up(_posed(motion, functools.partial(smpl_joints, body_model), batch_size))


def load_amass(
    path: str | Path,
    *,
    model_path: str | Path,
    model_type: str = "smplh",
    fps: float = skeleton.FPS,
    device: str | torch.device = "cpu",
    batch_size: int = 4096,
) -> np.ndarray:
    """Joint positions `[T_out, 22, 3]` float32 (m, y up, HumanML3D joint order) of an AMASS motion file.

    The body model (`load_body_model`; a folder `model_path` is searched for the motion's gender) poses the
    22 joints frame by frame (`smpl_joints`, `batch_size` frames at a time), `AMASS_TO_Y_UP` turns them
    y-up, and `virtual_imu.filters.resample` brings them to `fps`: output frame k lies at k / fps s,
    `T_out = floor((T − 1) · fps / fps_in) + 1`, with a zero-phase anti-aliasing low-pass at 0.45 · fps
    when downsampling. Positions are as captured (no re-centring, no facing normalisation).
    """
    motion, body_model = _open_amass(path, model_path, model_type, fps, batch_size, device)
    with torch.no_grad():
        joints = _resampled(_y_up_joints(motion, body_model, batch_size), motion.fps, fps)
    return joints.cpu().numpy().astype(np.float32)


def load_amass_surface(
    path: str | Path,
    *,
    model_path: str | Path,
    model_type: str = "smplh",
    sensor: str | SurfaceSensor,
    fps: float = skeleton.FPS,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joints `[T_out, 22, 3]`, sensor positions `[T_out, 3]` (m) and sensor-to-world orientations
    `[T_out, 4]` (w, x, y, z) of a sensor on the body surface of an AMASS motion file; float32, y up.

    The posed mesh (`smpl_vertices`) and the joints are resampled to `fps` exactly as `load_amass`
    resamples the joints (the joints are `load_amass`'s), then `sensor` (a `SurfaceSensor`, or a name in
    `virtual_imu.surface.SMPL_PRESETS`) is placed on the resampled mesh and joints, so its frame follows
    the resampled surface. Only the vertices the sensor reads (those of the faces around its anchor) are
    kept, `batch_size` frames at a time: a whole resampled mesh would take T · 6890 · 24 bytes. Resampling
    treats every coordinate on its own, so this equals placing the sensor on the whole resampled mesh
    (tested).
    """
    if isinstance(sensor, str):
        sensor = smpl_preset(sensor)
    if not isinstance(sensor, SurfaceSensor):
        raise ValueError(f"sensor must be a SurfaceSensor or a name in {sorted(SMPL_PRESETS)}, got {sensor!r}")
    motion, body_model = _open_amass(path, model_path, model_type, fps, batch_size, device)
    bound = sensor.bind(body_model.faces_tensor, body_model.get_num_verts())
    # The same sensor on the sub-mesh of the vertices it reads (every corner is in one of its faces).
    used, local_faces = torch.unique(bound.faces, return_inverse=True)
    on_used = dataclasses.replace(
        bound, num_vertices=used.numel(), corners=torch.searchsorted(used, bound.corners), faces=local_faces
    )
    with torch.no_grad():
        joints = _resampled(_y_up_joints(motion, body_model, batch_size), motion.fps, fps)
        used_vertices = _posed(motion, lambda *pose: smpl_vertices(body_model, *pose)[:, used], batch_size)
        positions, orientations = on_used.place(_resampled(used_vertices, motion.fps, fps), joints)
    return tuple(array.cpu().numpy().astype(np.float32) for array in (joints, positions, orientations))
