"""HumanML3D features: layout, decoding, extraction, against closed forms and the published sample pair."""

from pathlib import Path

import numpy as np
import pytest
import torch

from motion import humanml3d as h
from motion.humanml3d_extract import REST_DIRECTIONS
from motion.procedural import ACTIVITIES, generate_clip
from motion.skeleton import FPS, PARENTS, bone_lengths, rest_offsets

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "humanml3d_sample"
PAIR_VECS = SAMPLE / "new_joint_vecs" / "012314.npy"
PAIR_JOINTS = SAMPLE / "new_joints" / "012314.npy"
needs_sample = pytest.mark.skipif(
    not (PAIR_VECS.exists() and PAIR_JOINTS.exists()),
    reason=f"HumanML3D sample pair not found under {SAMPLE} (shared data folder absent)",
)
HEADING_KERNEL_RADIUS = 80
"""Frames the smoothed heading looks each way: truncate 4 × σ 20 (scipy's default truncation)."""


def rest_pose(root_height_m: float = 1.0) -> np.ndarray:
    """`[22, 3]` skeleton whose every bone points along its IK rest direction: all local rotations identity."""
    lengths = np.linalg.norm(rest_offsets()[1:], axis=-1)
    joints = np.zeros((22, 3))
    joints[0] = [0.0, root_height_m, 0.0]
    for joint in range(1, 22):
        joints[joint] = joints[PARENTS[joint]] + REST_DIRECTIONS[joint] * lengths[joint - 1]
    return joints


def turning_in_place(frames: int, step_rad: float) -> np.ndarray:
    """`[T, 22, 3]` rest pose turning about the vertical through the root by `step_rad` per frame (+y, CCW)."""
    pose = rest_pose()
    angles = step_rad * np.arange(frames)
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x, z = pose[None, :, 0], pose[None, :, 2]
    return np.stack((c * x + s * z, np.broadcast_to(pose[:, 1], (frames, 22)), -s * x + c * z), axis=-1)


def test_layout_slices_tile_the_263_channels():
    slices = [h.ROOT_ANGULAR_VELOCITY, h.ROOT_LINEAR_VELOCITY, h.ROOT_HEIGHT, h.RIC_POSITIONS,
              h.ROTATIONS_6D, h.LOCAL_VELOCITIES, h.FOOT_CONTACTS]
    assert [s.stop - s.start for s in slices] == [1, 2, 1, 63, 126, 66, 4]
    assert all(a.stop == b.start for a, b in zip(slices[:-1], slices[1:]))
    assert slices[0].start == 0 and h.FEATURE_DIM == slices[-1].stop == 263 == h.feature_dim(22)
    assert h.CONTACT_JOINTS == (7, 10, 8, 11)


def test_constant_velocity_along_z_gives_per_frame_displacement_and_no_turn():
    speed_m_s, frames = 0.5, 30
    pose = rest_pose()
    joints = pose + np.arange(frames)[:, None, None] * np.array([0.0, 0.0, speed_m_s / FPS])
    features = h.extract_features(joints)
    step_m = speed_m_s / FPS  # HumanML3D velocities are per-frame displacements (m/frame)
    assert features.shape == (frames - 1, 263)
    np.testing.assert_allclose(features[:, h.ROOT_ANGULAR_VELOCITY], 0.0, atol=1e-12)
    np.testing.assert_allclose(features[:, h.ROOT_LINEAR_VELOCITY], [[0.0, step_m]] * (frames - 1), atol=1e-12)
    np.testing.assert_allclose(features[:, h.ROOT_HEIGHT], pose[0, 1] - pose[:, 1].min(), atol=1e-12)
    velocities = features[:, h.LOCAL_VELOCITIES].reshape(-1, 22, 3)
    np.testing.assert_allclose(velocities, np.broadcast_to([0.0, 0.0, step_m], velocities.shape), atol=1e-12)
    ric = features[:, h.RIC_POSITIONS].reshape(-1, 21, 3)
    expected_ric = pose[1:] - pose[0] * [1.0, 0.0, 1.0] - [0.0, pose[:, 1].min(), 0.0]
    np.testing.assert_allclose(ric, np.broadcast_to(expected_ric, ric.shape), atol=1e-12)
    identity_6d = np.broadcast_to([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], (frames - 1, 21, 6))
    np.testing.assert_allclose(features[:, h.ROTATIONS_6D].reshape(-1, 21, 6), identity_6d, atol=1e-12)
    # (0.025 m)² = 6.25e-4 m² < 0.002 m²: every foot joint counts as in contact; at 1.5 m/s (5.6e-3 m²) none.
    assert (features[:, h.FOOT_CONTACTS] == 1.0).all()
    fast = pose + np.arange(frames)[:, None, None] * np.array([0.0, 0.0, 1.5 / FPS])
    assert (h.extract_features(fast)[:, h.FOOT_CONTACTS] == 0.0).all()


def test_bent_forearm_gives_the_hand_computed_6d_rotation():
    joints = rest_pose()
    forearm = np.linalg.norm(joints[20] - joints[18])
    joints[20] = joints[18] + [0.0, 0.0, forearm]  # left forearm from hanging (−y) to pointing forward (+z)
    features = h.extract_features(np.stack((joints, joints)))
    rotations = features[0, h.ROTATIONS_6D].reshape(21, 6)
    # −y → +z is 90° about −x: R = [[1, 0, 0], [0, 0, 1], [0, −1, 0]]; 6-D = first two columns.
    np.testing.assert_allclose(rotations[20 - 1], [1.0, 0.0, 0.0, 0.0, 0.0, -1.0], atol=1e-12)
    others = np.delete(rotations, 20 - 1, axis=0)
    np.testing.assert_allclose(others, np.broadcast_to([1.0, 0, 0, 0, 1.0, 0], others.shape), atol=1e-12)


def test_turning_in_place_gives_half_the_yaw_step_and_round_trips_past_180_degrees():
    step_rad, frames = 2 * np.pi / 80, 240  # three full turns
    joints = turning_in_place(frames, step_rad)
    features = h.extract_features(joints)
    # Frames further than the smoothing radius from both ends see the whole (symmetric) kernel.
    middle = slice(HEADING_KERNEL_RADIUS + 1, frames - HEADING_KERNEL_RADIUS - 2)
    # Turning CCW about +y; q_t maps world → heading frame, so it turns by −step: feature = −step / 2.
    np.testing.assert_allclose(features[middle, h.ROOT_ANGULAR_VELOCITY], -step_rad / 2, atol=1e-9)
    ric = features[middle, h.RIC_POSITIONS]
    np.testing.assert_allclose(ric, np.broadcast_to(ric[0], ric.shape), atol=1e-9)
    recovered = h.recover_from_ric(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(recovered, h.canonicalize_joints(joints)[:-1], atol=1e-9)


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_round_trip_of_procedural_clips(activity):
    joints = generate_clip(activity, np.random.default_rng(7)).joints
    features = h.extract_features(joints)
    recovered = h.recover_from_ric(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(recovered, h.canonicalize_joints(joints)[:-1], atol=1e-9)


def test_canonical_clip_starts_at_origin_on_the_floor_facing_z():
    joints = generate_clip("walking", np.random.default_rng(3)).joints
    canonical = h.canonicalize_joints(joints)
    assert canonical[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(canonical[0, 0, [0, 2]], 0.0, atol=1e-12)
    across = (canonical[0, 2] - canonical[0, 1]) + (canonical[0, 17] - canonical[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    np.testing.assert_allclose(forward / np.linalg.norm(forward), [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(bone_lengths(canonical), bone_lengths(joints), atol=1e-5)


def test_target_offsets_give_the_reference_bone_lengths():
    joints = generate_clip("running", np.random.default_rng(1)).joints
    reference = h.offsets_from_joints(generate_clip("walking", np.random.default_rng(2)).joints[0])
    features = h.extract_features(joints, target_offsets=reference)
    recovered = h.recover_from_ric(torch.from_numpy(features)).numpy()
    target = np.linalg.norm(reference[1:], axis=-1)
    np.testing.assert_allclose(bone_lengths(recovered), np.broadcast_to(target, (len(recovered), 21)), atol=1e-9)


def test_torch_input_gives_torch_output_equal_to_numpy():
    joints = generate_clip("jumping", np.random.default_rng(0)).joints
    from_numpy = h.extract_features(joints)
    from_torch = h.extract_features(torch.from_numpy(joints))
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float64
    np.testing.assert_allclose(from_torch.numpy(), from_numpy, atol=0)


def test_recover_is_batched_over_leading_dims():
    rngs = [np.random.default_rng(i) for i in range(6)]
    clips = [h.extract_features(generate_clip(a, rng).joints) for a, rng in zip(ACTIVITIES, rngs)]
    batch = torch.from_numpy(np.stack(clips)).reshape(2, 3, *clips[0].shape)
    joints = h.recover_from_ric(batch)
    assert joints.shape == (2, 3, clips[0].shape[0], 22, 3)
    for i, clip in enumerate(clips):
        np.testing.assert_allclose(joints.reshape(6, *joints.shape[2:])[i].numpy(),
                                   h.recover_from_ric(torch.from_numpy(clip)).numpy(), atol=1e-12)
    heading, root = h.recover_root_rot_pos(batch)
    assert heading.shape == (2, 3, clips[0].shape[0], 4) and root.shape == (2, 3, clips[0].shape[0], 3)
    torch.testing.assert_close(root, joints[..., 0, :], atol=0, rtol=0)


def test_gradient_through_recover_is_finite_and_reaches_every_used_channel():
    features = torch.from_numpy(h.extract_features(turning_in_place(40, 0.1))).requires_grad_(True)
    h.recover_from_ric(features).square().sum().backward()
    grad = features.grad
    assert torch.isfinite(grad).all()
    used = [h.ROOT_ANGULAR_VELOCITY, h.ROOT_LINEAR_VELOCITY, h.ROOT_HEIGHT, h.RIC_POSITIONS]
    assert all(grad[:-1, s].abs().sum() > 0 for s in used)
    unused = [h.ROTATIONS_6D, h.LOCAL_VELOCITIES, h.FOOT_CONTACTS]
    assert all(grad[:, s].abs().sum() == 0 for s in unused)


def test_recover_rejects_bad_features():
    good = torch.zeros(5, 263)
    with pytest.raises(ValueError, match="features has 262 channels"):
        h.recover_from_ric(torch.zeros(5, 262))
    with pytest.raises(ValueError, match=r"joints_num=21.*joints_num=22"):
        h.recover_from_ric(torch.zeros(5, 251))
    with pytest.raises(ValueError, match="joints_num=21 needs 251"):
        h.recover_from_ric(good, joints_num=21)
    with pytest.raises(ValueError, match="joints_num"):
        h.recover_from_ric(good, joints_num=1)
    bad = good.clone()
    bad[2, 10] = float("nan")
    with pytest.raises(ValueError, match="features contains non-finite"):
        h.recover_from_ric(bad)
    with pytest.raises(ValueError, match="features must be a torch.Tensor"):
        h.recover_from_ric(np.zeros((5, 263)))
    with pytest.raises(ValueError, match="features must have shape"):
        h.recover_root_rot_pos(torch.zeros(263))


def test_extract_rejects_bad_joints_and_arguments():
    joints = turning_in_place(10, 0.1)
    with pytest.raises(ValueError, match=r"joints must have shape \[T, 22, 3\]"):
        h.extract_features(joints[:, :21])
    with pytest.raises(ValueError, match="joints needs at least 2 frames"):
        h.extract_features(joints[:1])
    bad = joints.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="joints contains non-finite"):
        h.extract_features(bad)
    with pytest.raises(ValueError, match="joints must be a numpy array"):
        h.extract_features(joints.tolist())
    with pytest.raises(ValueError, match="feet_threshold"):
        h.extract_features(joints, feet_threshold=0.0)
    with pytest.raises(ValueError, match="target_offsets"):
        h.extract_features(joints, target_offsets=np.ones((21, 3)))
    with pytest.raises(ValueError, match="joints must be one finite frame"):
        h.offsets_from_joints(joints)
    collapsed = np.zeros_like(joints)  # every joint at one point: no heading
    collapsed[:, :, 1] = np.linspace(0, 1, 22)
    with pytest.raises(ValueError, match="undefined heading"):
        h.extract_features(collapsed)
    folded = joints.copy()
    folded[:, 20] = folded[:, 18]  # left wrist on the elbow: the forearm has no direction
    with pytest.raises(ValueError, match="zero-length bone"):
        h.extract_features(folded)


@needs_sample
@pytest.mark.parametrize("dtype, tolerance_m", [(torch.float32, 1e-5), (torch.float64, 1e-5)])
def test_recover_matches_the_published_joint_pair(dtype, tolerance_m):
    vecs = torch.from_numpy(np.load(PAIR_VECS)).to(dtype)
    recovered = h.recover_from_ric(vecs).numpy()
    # Measured: 0.0 in float32 (the pair was made by this decoding in float32), 2.1e-7 m in float64.
    assert np.abs(recovered - np.load(PAIR_JOINTS)).max() <= tolerance_m


def _published_pair():
    """The sample's joints (T = 170) plus the frame after the last, rebuilt from the last row's velocities.

    The features of a clip of T + 1 frames have T rows; `new_joints` holds only the first T frames. The
    missing frame changes the smoothed heading of the last 80 rows, so it is restored for an exact match.
    """
    vecs = np.load(PAIR_VECS).astype(np.float64)
    joints = np.load(PAIR_JOINTS).astype(np.float64)
    heading, _ = h.recover_root_rot_pos(torch.from_numpy(vecs))
    step = torch.from_numpy(vecs[-1, h.LOCAL_VELOCITIES].reshape(22, 3))
    from virtual_imu.quaternion import rotate_inverse

    last = joints[-1] + rotate_inverse(heading[-1].expand(22, 4), step).numpy()
    return vecs, joints, np.concatenate((joints, last[None]))


@needs_sample
def test_extract_matches_the_published_features():
    vecs, _, full_joints = _published_pair()
    features = h.extract_features(full_joints)
    assert features.shape == vecs.shape
    # Measured maxima: 1.4e-7 (angular velocity), 3.9e-8 (root velocity), 0 (height), 2.2e-7 (ric),
    # 7.8e-6 (rotations), 3.4e-7 (local velocities), 0 (contacts). The published features were computed
    # in float32, hence the 1e-6-level residue, largest for the rotations (float32 shortest-arc IK).
    tolerances = [(h.ROOT_ANGULAR_VELOCITY, 1e-6), (h.ROOT_LINEAR_VELOCITY, 1e-6), (h.ROOT_HEIGHT, 1e-6),
                  (h.RIC_POSITIONS, 1e-6), (h.ROTATIONS_6D, 2e-5), (h.LOCAL_VELOCITIES, 1e-6)]
    for part, tolerance in tolerances:
        assert np.abs(features[:, part] - vecs[:, part]).max() <= tolerance, part
    np.testing.assert_array_equal(features[:, h.FOOT_CONTACTS], vecs[:, h.FOOT_CONTACTS])


@needs_sample
def test_extract_from_the_published_joints_alone_differs_only_near_the_end():
    vecs, joints, _ = _published_pair()
    features = h.extract_features(joints)  # one frame short of what the publisher had
    unaffected = len(features) - HEADING_KERNEL_RADIUS
    assert np.abs(features[:unaffected] - vecs[:unaffected]).max() <= 2e-5  # measured 7.8e-6
    np.testing.assert_array_equal(features[:, h.FOOT_CONTACTS], vecs[:-1, h.FOOT_CONTACTS])
    np.testing.assert_allclose(features[:, h.ROOT_HEIGHT], vecs[:-1, h.ROOT_HEIGHT], atol=1e-6)
    # The truncated smoothing window moves the late headings slightly (measured 1.3e-2 at most).
    assert np.abs(features - vecs[:-1]).max() <= 2e-2


@needs_sample
def test_round_trip_of_the_published_joints():
    _, joints, _ = _published_pair()
    recovered = h.recover_from_ric(torch.from_numpy(h.extract_features(joints))).numpy()
    np.testing.assert_allclose(recovered, h.canonicalize_joints(joints)[:-1], atol=1e-9)
    # The published joints are already canonical up to float32 rounding (measured 2.9e-7 m).
    np.testing.assert_allclose(h.canonicalize_joints(joints), joints, atol=1e-6)
