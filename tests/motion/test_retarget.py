import functools
import math
from pathlib import Path

import numpy as np
import pytest

from motion import skeleton as sk
from motion.bvh import BVHJoint, format_bvh, read_bvh
from motion.retarget import (BANDAI_NAMCO, CMU_ASF, CMU_CGSPEED, MAPPED_JOINTS, RIGS, SPINE_FRACTIONS, Rig, detect_rig,
                             load_bvh_as_humanml3d, retarget)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
WALK, RUN = DATA / "bvh" / "cmu_16_15_walk.bvh", DATA / "bvh" / "cmu_141_01_run.bvh"
CMU_FILES = sorted((DATA / "cmu_bvh").glob("*.bvh"))
BANDAI = {kind: DATA / "bandai_namco_bvh" / f"dataset-1_{kind}_normal_001.bvh" for kind in ("walk", "run", "dash", "punch")}
REAL_FILES = [WALK, RUN, *CMU_FILES, *BANDAI.values()]
needs_data = pytest.mark.skipif(not all(path.is_file() for path in REAL_FILES) or not CMU_FILES,
                                reason=f"shared BVH data not found under {DATA}")

NAMED_AS_HUMANML3D = Rig(name="humanml3d_names", joints={name: name for name in MAPPED_JOINTS},
                         spine=("pelvis", "spine1", "spine2", "spine3", "neck"), scale_m=0.01)
"""A rig whose BVH joints carry the HumanML3D names (the spine joints are then interpolated back onto themselves)."""


def template_file(tmp_path: Path, *, frames: int = 121, fps: float = 60.0, speed_cm_s: float = 100.0,
                  yaw_deg_s: float = 90.0, lift_cm: float = 10.0, z_up: bool = False) -> Path:
    """The template T-pose in centimetres, pelvis `lift_cm` above standing height, moving along +z at `speed_cm_s`
    and turning about the vertical at `yaw_deg_s`; written y-up, or z-up (y-up (a, b, c) = z-up (a, −c, b))."""
    to_file = (lambda v: np.stack((v[..., 0], -v[..., 2], v[..., 1]), -1)) if z_up else (lambda v: v)
    offsets = to_file(sk.rest_offsets() * 100.0)
    root_channels = ("Xposition", "Yposition", "Zposition", "Yrotation", "Zrotation")
    joints = [BVHJoint(name=name, parent=parent, offset=offsets[j] if j else np.zeros(3),
                       channels=root_channels if j == 0 else ("Zrotation", "Xrotation"))
              for j, (name, parent) in enumerate(zip(sk.JOINT_NAMES, sk.PARENTS))]
    t = np.arange(frames) / fps
    root = to_file(np.stack((np.zeros_like(t), np.full_like(t, sk.TEMPLATE_PELVIS_HEIGHT_M * 100 + lift_cm), speed_cm_s * t), -1))
    yaw = yaw_deg_s * t
    values = np.zeros((frames, 5 + 2 * 21))
    values[:, :3] = root
    values[:, 4 if z_up else 3] = yaw  # the vertical axis: file z when z-up, else y
    path = tmp_path / ("template_z_up.bvh" if z_up else "template.bvh")
    path.write_text(format_bvh(joints, 1.0 / fps, values))
    return path


def expected_template_motion(fps_out: float, frames_out: int, speed_m_s: float, yaw_deg_s: float) -> np.ndarray:
    t = np.arange(frames_out) / fps_out
    rest = sk.rest_joints()
    angle = np.deg2rad(yaw_deg_s) * t
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, z = rest[None, :, 0], rest[None, :, 2]
    turned = np.stack((cos * x + sin * z, np.broadcast_to(rest[:, 1], (len(t), 22)), -sin * x + cos * z), -1)  # R_y
    return turned + np.stack((0 * t, 0 * t, speed_m_s * t), -1)[:, None]


def test_spine_fractions_are_the_templates():
    rest = sk.rest_joints()
    chain = rest[[sk.PELVIS, sk.SPINE1, sk.SPINE2, sk.SPINE3, sk.NECK]]
    arc = np.concatenate(([0], np.cumsum(np.linalg.norm(np.diff(chain, axis=0), axis=1))))
    np.testing.assert_allclose(SPINE_FRACTIONS, arc[1:4] / arc[-1], atol=1e-12)
    assert np.all(np.diff(SPINE_FRACTIONS) > 0) and 0 < SPINE_FRACTIONS[0] and SPINE_FRACTIONS[-1] < 1


def test_retarget_is_the_identity_on_the_template():
    rest = np.broadcast_to(sk.rest_joints(), (3, 22, 3))
    np.testing.assert_allclose(retarget(rest, sk.JOINT_NAMES, NAMED_AS_HUMANML3D), rest, atol=1e-12)


def test_retarget_checks_the_positions_shape():
    with pytest.raises(ValueError, match=r"positions must have shape \[T, 22, 3\]"):
        retarget(np.zeros((3, 21, 3)), sk.JOINT_NAMES, NAMED_AS_HUMANML3D)


def test_spine_joints_lie_on_a_chain_with_a_zero_length_segment():
    # cgspeed-like: a spine joint sitting on the pelvis, then a straight 0.5 m spine up to the neck
    rig = Rig(name="zero_segment", joints={name: name for name in MAPPED_JOINTS},
              spine=("pelvis", "lowerback", "upperback", "neck"), scale_m=1.0)
    names = list(MAPPED_JOINTS) + ["lowerback", "upperback"]
    positions = np.random.default_rng(0).normal(size=(2, len(names), 3))
    pelvis, neck = names.index("pelvis"), names.index("neck")
    positions[:, pelvis] = [0.0, 1.0, 0.0]
    positions[:, names.index("lowerback")] = [0.0, 1.0, 0.0]
    positions[:, names.index("upperback")] = [0.0, 1.2, 0.0]
    positions[:, neck] = [0.0, 1.5, 0.0]
    out = retarget(positions, names, rig)
    spine = out[:, [sk.SPINE1, sk.SPINE2, sk.SPINE3]]
    np.testing.assert_allclose(spine[..., 1], np.broadcast_to(1.0 + 0.5 * SPINE_FRACTIONS, (2, 3)), atol=1e-12)
    np.testing.assert_allclose(spine[..., [0, 2]], 0.0, atol=1e-12)
    for name in MAPPED_JOINTS:
        np.testing.assert_array_equal(out[:, sk.joint_index(name)], positions[:, names.index(name)])


@pytest.mark.parametrize("z_up", [False, True])
def test_moving_turning_template_comes_back_exactly(tmp_path, z_up):
    rig = Rig(name="z_up", joints=NAMED_AS_HUMANML3D.joints, spine=NAMED_AS_HUMANML3D.spine, scale_m=0.01, up_axis="z") \
        if z_up else NAMED_AS_HUMANML3D
    joints = load_bvh_as_humanml3d(template_file(tmp_path, z_up=z_up), fps=20.0, rig=rig)
    assert joints.shape == (41, 22, 3)  # floor((121 − 1) · 20 / 60) + 1
    expected = expected_template_motion(20.0, 41, speed_m_s=1.0, yaw_deg_s=90.0)
    np.testing.assert_allclose(joints, expected, atol=2e-5)  # float32 resampling; the turn bends the filter's end extension
    np.testing.assert_allclose(joints[10:31], expected[10:31], atol=2e-6)  # away from the ends
    assert joints[..., 1].min() == 0.0  # the 10 cm lift is removed: floor at the lowest joint
    np.testing.assert_allclose(sk.bone_lengths(joints), np.broadcast_to(sk.bone_lengths(sk.rest_joints()), (41, 21)), atol=1e-6)


def test_output_length_and_other_rates(tmp_path):
    path = template_file(tmp_path, frames=100, fps=30.0)
    assert load_bvh_as_humanml3d(path, fps=20.0, rig=NAMED_AS_HUMANML3D).shape[0] == math.floor(99 * 20 / 30) + 1
    assert load_bvh_as_humanml3d(path, fps=30.0, rig=NAMED_AS_HUMANML3D).shape[0] == 100
    assert load_bvh_as_humanml3d(path, fps=60.0, rig=NAMED_AS_HUMANML3D).shape[0] == 199


def test_skip_frames_drops_the_reference_frame(tmp_path):
    path = template_file(tmp_path)
    motion = read_bvh(path)
    values = motion.values.copy()
    values[0, :3] = [500.0, 0.0, -300.0]  # a reference pose somewhere else
    skipped = tmp_path / "reference_first.bvh"
    skipped.write_text(format_bvh(motion.joints, motion.frame_time_s, values))
    rig = Rig(name="skip", joints=NAMED_AS_HUMANML3D.joints, spine=NAMED_AS_HUMANML3D.spine, scale_m=0.01, skip_frames=1)
    out = load_bvh_as_humanml3d(skipped, rig=rig)
    assert out.shape[0] == math.floor(119 * 20 / 60) + 1
    # frame 0 now is the file's frame 1 (t = 1/60 s): still on the straight path, nowhere near the reference pose
    np.testing.assert_allclose(out[0, sk.PELVIS, [0, 2]], [0.0, 1.0 / 60], atol=1e-3)


def test_rig_validation():
    good = dict(joints={name: name for name in MAPPED_JOINTS}, spine=("pelvis", "neck"), scale_m=1.0)
    Rig(name="ok", **good)
    with pytest.raises(ValueError, match=r"missing \['head'\]"):
        Rig(name="no_head", **{**good, "joints": {k: v for k, v in good["joints"].items() if k != "head"}})
    with pytest.raises(ValueError, match=r"extra \['spine1'\]"):
        Rig(name="spine_mapped", **{**good, "joints": {**good["joints"], "spine1": "x"}})
    with pytest.raises(ValueError, match="spine must run"):
        Rig(name="spine", **{**good, "spine": ("neck", "pelvis")})
    with pytest.raises(ValueError, match="scale_m"):
        Rig(name="scale", **{**good, "scale_m": 0.0})
    with pytest.raises(ValueError, match="skip_frames"):
        Rig(name="skip", **good, skip_frames=-1)
    with pytest.raises(ValueError, match="up_axis"):
        Rig(name="up", **good, up_axis="x")


def test_detect_rig_by_joint_names():
    for rig in RIGS.values():
        assert detect_rig(sorted(rig.required) + ["extra_joint"]) is rig
    names = sorted(BANDAI_NAMCO.required - {"Hand_L", "Toes_R"})
    with pytest.raises(ValueError, match=r"odd.bvh: .*'bandai_namco', lacks \['Hand_L', 'Toes_R'\]"):
        detect_rig(names, source="odd.bvh")


def test_load_errors_name_the_problem(tmp_path):
    path = template_file(tmp_path)
    with pytest.raises(ValueError, match="template.bvh: joint names match no known rig"):
        load_bvh_as_humanml3d(path)
    with pytest.raises(ValueError, match=r"template.bvh: rig 'bandai_namco' needs joints the file lacks: \['Chest'"):
        load_bvh_as_humanml3d(path, rig="bandai_namco")
    with pytest.raises(ValueError, match="rig must be a Rig or one of"):
        load_bvh_as_humanml3d(path, rig="smpl")
    with pytest.raises(ValueError, match="rig must be a Rig, a rig name or None"):
        load_bvh_as_humanml3d(path, rig=3)
    with pytest.raises(ValueError, match="fps"):
        load_bvh_as_humanml3d(path, fps=0.0, rig=NAMED_AS_HUMANML3D)
    metres = Rig(name="metres", joints=NAMED_AS_HUMANML3D.joints, spine=NAMED_AS_HUMANML3D.spine, scale_m=1.0)
    with pytest.raises(ValueError, match=r"template.bvh: body height 170 m .* scale_m"):
        load_bvh_as_humanml3d(path, rig=metres)
    with pytest.raises(ValueError, match="at least 2 motion frames"):
        load_bvh_as_humanml3d(template_file(tmp_path, frames=1), rig=NAMED_AS_HUMANML3D)


# ---- the shared CMU and Bandai-Namco files ----

@functools.lru_cache(maxsize=None)
def load(path: Path) -> np.ndarray:
    return load_bvh_as_humanml3d(path)


def horizontal_speed_m_s(joints: np.ndarray) -> float:
    return float(np.linalg.norm(joints[-1, sk.PELVIS, [0, 2]] - joints[0, sk.PELVIS, [0, 2]]) / ((len(joints) - 1) / 20.0))


@needs_data
def test_rig_families_of_the_shared_files():
    for path, rig in [(WALK, CMU_ASF), (RUN, CMU_CGSPEED), *[(p, CMU_CGSPEED) for p in CMU_FILES],
                      *[(p, BANDAI_NAMCO) for p in BANDAI.values()]]:
        assert detect_rig(read_bvh(path).names) is rig, path.name


@needs_data
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda path: path.name)
def test_shared_files_give_plausible_bodies(path):
    joints = load(path)
    motion = read_bvh(path)
    skipped = detect_rig(motion.names).skip_frames
    duration_s = (motion.num_frames - skipped) * motion.frame_time_s
    assert joints.shape[1:] == (22, 3) and joints.dtype == np.float64 and np.isfinite(joints).all()
    assert abs(len(joints) - duration_s * 20.0) <= 1.0
    stature = float(np.median(sk.estimate_stature_m(joints)))
    assert 1.4 <= stature <= 2.0, stature
    assert joints[..., 1].min() == 0.0
    feet_min = joints[:, list(sk.FOOT_JOINTS), 1].min()
    lying_at_some_point = path.stem in ("77_17", "90_18")  # the body itself is the lowest part, not the feet
    assert feet_min <= (0.15 if lying_at_some_point else 0.02), feet_min
    lengths = sk.bone_lengths(joints)
    spread = lengths.std(axis=0) / lengths.mean(axis=0)
    assert spread.max() < 0.03, spread.max()  # spine and neck bones span several rig bones and bend a little
    limbs = [j - 1 for j in range(1, 22) if sk.JOINT_NAMES[j].split("_")[-1] in ("knee", "ankle", "foot", "elbow", "wrist")]
    assert spread[limbs].max() < 1e-6, spread[limbs].max()  # limb bones are single rig bones: rigid


@needs_data
def test_walking_and_running_speeds_and_facing():
    speeds = {}
    for name, path in [("cmu walk", WALK), ("cmu run", RUN), *[(f"bandai {k}", p) for k, p in BANDAI.items() if k != "punch"]]:
        joints = load(path)
        speeds[name] = horizontal_speed_m_s(joints)
        # HumanML3D: forward = left × up. A mirrored (left-handed) import would face backwards.
        left = joints[:, sk.LEFT_HIP] - joints[:, sk.RIGHT_HIP]
        forward = np.cross(left, [0.0, 1.0, 0.0]).mean(axis=0)[[0, 2]]
        travel = joints[-1, sk.PELVIS, [0, 2]] - joints[0, sk.PELVIS, [0, 2]]
        assert forward @ travel / np.linalg.norm(forward) / np.linalg.norm(travel) > 0.9, name
    assert 0.5 <= speeds["cmu walk"] <= 2.5 and 0.5 <= speeds["bandai walk"] <= 2.5, speeds
    assert speeds["cmu run"] > 2.5 and speeds["bandai run"] > speeds["bandai walk"], speeds
    assert speeds["bandai dash"] > speeds["bandai run"], speeds
