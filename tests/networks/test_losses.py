import pytest
import torch

from motion.humanml3d import FOOT_CONTACTS, feature_dim
from motion.skeleton import FOOT_JOINTS, LEFT_ANKLE, LEFT_FOOT, NUM_JOINTS, RIGHT_ANKLE, RIGHT_FOOT
from networks.losses import (
    acceleration_loss,
    foot_contact_loss,
    frame_mask,
    masked_l2,
    position_loss,
    velocity_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TEMPORAL_LOSSES = (masked_l2, velocity_loss, acceleration_loss)


def _features(values: torch.Tensor) -> torch.Tensor:
    """`[B, T, C]` → MDM layout `[B, C, 1, T]`."""
    return values.permute(0, 2, 1).unsqueeze(2)


def _quadratic(a: torch.Tensor, frames: int) -> torch.Tensor:
    """`[1, C, 1, T]` with channel c = a_c i² + 0.3 i − 2 at frame i: second difference 2 a_c, first
    difference a_c (2i + 1) + 0.3."""
    i = torch.arange(frames, dtype=torch.float64)
    return _features((a[:, None] * i**2 + 0.3 * i - 2).T[None])


def test_frame_mask():
    mask = frame_mask(torch.tensor([1, 3]), 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, True, False]]


def test_masked_l2_known_offset_and_per_sample_normalisation():
    target = torch.zeros(2, 3, 1, 6, dtype=torch.float64)
    prediction = target + 0.5
    prediction[1, 0, 0, :4] = 2.0  # sample 1: one channel off by 2 on its 4 frames
    lengths = torch.tensor([2, 4])
    # Sample 0: every entry off by 0.5 → 0.25 whatever its length. Sample 1: channel 0 contributes
    # 4 frames × 2², channels 1, 2 contribute 4 × 0.5² each → (16 + 2) / (4 frames × 3 channels) = 1.5.
    torch.testing.assert_close(masked_l2(target, prediction, lengths), torch.tensor([0.25, 1.5], dtype=torch.float64))


def test_acceleration_of_a_quadratic_is_constant():
    """x = a i² + b i + c: the second difference is 2a at every valid i, so against a zero prediction the
    loss is the mean over channels of (2a)², for any length ≥ 3."""
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    target = _quadratic(a, 9)
    expected = ((2 * a) ** 2).mean()  # (1 + 4 + 16) / 3 = 7
    for length in (3, 5, 9):
        loss = acceleration_loss(target, torch.zeros_like(target), torch.tensor([length]))
        assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    # A prediction that differs by any affine function of time has the same acceleration: loss 0.
    i = torch.arange(9, dtype=torch.float64)
    shifted = target + 4.0 - 1.5 * i
    assert acceleration_loss(target, shifted, torch.tensor([9])).item() == pytest.approx(0.0, abs=1e-12)


def test_velocity_of_a_quadratic():
    a = torch.tensor([0.5, -1.0], dtype=torch.float64)
    target = _quadratic(a, 6)
    length = 4  # pairs i = 0, 1, 2: differences a (2i + 1) + 0.3
    diffs = torch.stack([a * (2 * i + 1) + 0.3 for i in range(length - 1)])
    expected = (diffs**2).sum() / ((length - 1) * 2)
    loss = velocity_loss(target, torch.zeros_like(target), torch.tensor([length]))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    # A constant offset moves no velocity.
    assert velocity_loss(target, target + 3.0, torch.tensor([6])).item() == pytest.approx(0.0, abs=1e-12)


def test_acceleration_uses_only_positions_inside_the_clip():
    """Length 4 → i = 1, 2 only: a spike on the last valid frame counts once (at i = 2, weight 1), a
    spike on the first padded frame not at all."""
    target = torch.zeros(1, 1, 1, 6, dtype=torch.float64)
    prediction = target.clone()
    prediction[..., 3] = 1.0  # second differences: i = 2 → 1, i = 3 → −2 (outside), i = 4 → 1 (outside)
    assert acceleration_loss(target, prediction, torch.tensor([4])).item() == pytest.approx(1 / 2, abs=1e-12)
    prediction[..., 4] = 100.0
    assert acceleration_loss(target, prediction, torch.tensor([4])).item() == pytest.approx(1 / 2, abs=1e-12)


def test_padded_boundary_does_not_explode():
    """Clips padded with zeros (target) and garbage (prediction): the second difference across the clip
    end is huge, so an unmasked loss explodes; the masked loss equals the loss on the clip alone."""
    a = torch.tensor([0.25, 1.0, -0.5], dtype=torch.float64)
    length, frames = 7, 12
    clip_target = _quadratic(a, length) + 40.0  # far from the zero padding
    noise = torch.randn(clip_target.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    clip_prediction = clip_target + 0.1 * noise
    target = torch.zeros(1, 3, 1, frames, dtype=torch.float64)
    prediction = torch.empty_like(target).uniform_(-1e6, 1e6, generator=torch.Generator().manual_seed(1))
    target[..., :length], prediction[..., :length] = clip_target, clip_prediction
    for loss in TEMPORAL_LOSSES:
        masked = loss(target, prediction, torch.tensor([length]))
        alone = loss(clip_target, clip_prediction, torch.tensor([length]))
        unmasked = loss(target, prediction, torch.tensor([frames]))
        assert masked.item() == pytest.approx(alone.item(), abs=1e-15), loss.__name__  # summation order only
        assert unmasked.item() > 1e6 * masked.item(), loss.__name__


def test_samples_are_normalised_separately():
    """Same per-frame error, different lengths → same loss; each sample by its own valid count."""
    target = torch.zeros(2, 4, 1, 10, dtype=torch.float64)
    i = torch.arange(10, dtype=torch.float64)
    prediction = (0.5 * i**2).expand(2, 4, 1, 10).clone()  # second difference 1 everywhere
    lengths = torch.tensor([3, 10])
    torch.testing.assert_close(acceleration_loss(target, prediction, lengths), torch.ones(2, dtype=torch.float64))
    ones = torch.ones_like(prediction)
    torch.testing.assert_close(masked_l2(target, ones, lengths), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(velocity_loss(target, ones * i, lengths), torch.ones(2, dtype=torch.float64))


def test_gradient_flows_only_through_valid_frames():
    target = torch.randn(2, 3, 1, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lengths = torch.tensor([5, 8])
    for loss, first_padded in ((masked_l2, 5), (velocity_loss, 5), (acceleration_loss, 5)):
        prediction = torch.zeros_like(target).requires_grad_()
        loss(target, prediction, lengths).sum().backward()
        assert (prediction.grad[0, ..., first_padded:] == 0).all(), loss.__name__
        assert (prediction.grad[0, ..., :first_padded].abs().sum(-1) > 0).all(), loss.__name__
    # masked L2: d/dp Σ (t − p)² / (len · C) = −2 (t − p) / (len · C) on the valid frames.
    prediction = torch.zeros_like(target).requires_grad_()
    masked_l2(target, prediction, lengths).sum().backward()
    expected = -2 * target / (lengths.view(2, 1, 1, 1) * 3) * frame_mask(lengths, 8)[:, None, None, :]
    torch.testing.assert_close(prediction.grad, expected, atol=1e-12, rtol=0)


def test_position_loss():
    target = torch.zeros(2, 5, NUM_JOINTS, 3, dtype=torch.float64)
    prediction = target.clone()
    prediction[:, :, 4, 0] = 0.1  # left knee 10 cm off along x on every frame
    prediction[0, 3:] = 7.0  # garbage past sample 0's length
    loss = position_loss(target, prediction, torch.tensor([3, 5]))
    expected = 0.1**2 / (NUM_JOINTS * 3)
    torch.testing.assert_close(loss, torch.full((2,), expected, dtype=torch.float64), atol=1e-15, rtol=0)


def test_contact_columns_are_the_humanml3d_ones():
    assert FOOT_JOINTS == (LEFT_ANKLE, LEFT_FOOT, RIGHT_ANKLE, RIGHT_FOOT) == (7, 10, 8, 11)
    assert FOOT_CONTACTS.stop == feature_dim(NUM_JOINTS) and FOOT_CONTACTS.stop - FOOT_CONTACTS.start == 4


def _walking_feet(speed_m_s: torch.Tensor, frames: int, fps: float) -> torch.Tensor:
    """`[1, T, 22, 3]`: each foot joint k of `FOOT_JOINTS` moves along x at `speed_m_s[k]`, the rest still."""
    joints = torch.zeros(1, frames, NUM_JOINTS, 3, dtype=torch.float64)
    time_s = torch.arange(frames, dtype=torch.float64) / fps
    for k, joint in enumerate(FOOT_JOINTS):
        joints[0, :, joint, 0] = speed_m_s[k] * time_s
    return joints


def test_foot_contact_loss_hand_computed():
    fps = 20.0
    speed = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)  # m/s of joints 7, 10, 8, 11
    joints = _walking_feet(speed, 6, fps)
    contacts = torch.ones(1, 6, 4, dtype=torch.float64)
    # All in contact: mean over 4 joints × 3 coordinates of v² = (0.25 + 1 + 4 + 16) / 12.
    loss = foot_contact_loss(joints, contacts, torch.tensor([6]), fps)
    assert loss.item() == pytest.approx(21.25 / 12, abs=1e-12)
    # Column k gates joint FOOT_JOINTS[k]: only the right ankle (8, column 2) in contact → 4 / 12.
    contacts = torch.zeros(1, 6, 4, dtype=torch.float64)
    contacts[..., 2] = 1.0
    assert foot_contact_loss(joints, contacts, torch.tensor([6]), fps).item() == pytest.approx(4 / 12, abs=1e-12)
    # Row i gates the step i → i+1: contact on frame 1 only (of 5 steps) → 4 / (5 × 12); a soft
    # contact of 0.5 scales v by 0.5, v² by 0.25.
    contacts = torch.zeros(1, 6, 4, dtype=torch.float64)
    contacts[0, 1, 2] = 0.5
    assert foot_contact_loss(joints, contacts, torch.tensor([6]), fps).item() == pytest.approx(
        0.25 * 4 / 60, abs=1e-12
    )


def test_foot_contact_loss_ignores_padding_and_non_foot_joints():
    fps = 20.0
    joints = _walking_feet(torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64), 8, fps)
    contacts = torch.ones(1, 8, 4, dtype=torch.float64)
    reference = foot_contact_loss(joints[:, :5], contacts[:, :5], torch.tensor([5]), fps)
    garbage = torch.randn(3, NUM_JOINTS, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    joints[0, 5:] = 1e4 * garbage
    joints[0, :5, [0, 4, 15]] += 0.3 * torch.arange(5, dtype=torch.float64)[:, None, None]  # non-feet moving
    padded = foot_contact_loss(joints, contacts, torch.tensor([5]), fps)
    assert padded.item() == pytest.approx(reference.item(), abs=1e-12)
    assert reference.item() == pytest.approx(21.25 / 12, abs=1e-12)


def test_foot_contact_gradient_only_on_feet_in_contact_within_the_clip():
    # Random motion: a constant velocity would cancel the gradient on interior frames.
    joints = torch.randn(1, 6, NUM_JOINTS, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    joints.requires_grad_()
    contacts = torch.zeros(1, 6, 4, dtype=torch.float64)
    contacts[0, :, 0] = 1.0  # left ankle only
    foot_contact_loss(joints, contacts, torch.tensor([4]), 20.0).sum().backward()
    moved = joints.grad.abs().sum(-1)[0]  # [T, J]
    assert (moved[:4, LEFT_ANKLE] > 0).all()
    moved[:4, LEFT_ANKLE] = 0
    assert (moved == 0).all()


def test_bad_inputs_are_named():
    x = torch.zeros(2, 3, 1, 5)
    lengths = torch.tensor([5, 3])
    nan = x.clone()
    nan[1, 0, 0, 4] = float("nan")
    joints = torch.zeros(2, 5, NUM_JOINTS, 3)
    contacts = torch.zeros(2, 5, 4)
    cases = [
        (lambda: masked_l2(x, x, lengths.float()), "lengths"),
        (lambda: masked_l2(x, x, lengths > 0), "lengths"),
        (lambda: masked_l2(x, x, lengths[:1]), "lengths"),
        (lambda: masked_l2(x, x, torch.tensor([0, 3])), "lengths"),
        (lambda: masked_l2(x, x, torch.tensor([6, 3])), "lengths"),
        (lambda: velocity_loss(x, x, torch.tensor([1, 3])), "lengths"),
        (lambda: acceleration_loss(x, x, torch.tensor([2, 3])), "lengths"),
        (lambda: masked_l2(nan, x, lengths), "target"),
        (lambda: masked_l2(x, nan, lengths), "prediction"),
        (lambda: masked_l2(x[0], x[0], lengths), "target"),
        (lambda: masked_l2(x, x[..., :4], lengths), "prediction"),
        (lambda: masked_l2(x.long(), x, lengths), "target"),
        (lambda: position_loss(joints, joints[:, :, :21], lengths), "predicted_joints"),
        (lambda: position_loss(joints[..., :2], joints[..., :2], lengths), "target_joints"),
        (lambda: foot_contact_loss(joints[:, :, :11], contacts, lengths, 20.0), "predicted_joints"),
        (lambda: foot_contact_loss(joints, contacts[..., :2], lengths, 20.0), "contacts"),
        (lambda: foot_contact_loss(joints, contacts + 2, lengths, 20.0), "contacts"),
        (lambda: foot_contact_loss(joints, contacts * float("nan"), lengths, 20.0), "contacts"),
        (lambda: foot_contact_loss(joints, contacts, lengths, 0.0), "fps"),
        (lambda: foot_contact_loss(joints, contacts, torch.tensor([1, 5]), 20.0), "lengths"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            call()
    with pytest.raises(ValueError, match="acceleration needs 3 frames"):
        acceleration_loss(x, x, torch.tensor([2, 3]))
