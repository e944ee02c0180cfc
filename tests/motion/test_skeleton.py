import numpy as np
import pytest

from motion import skeleton as sk


def test_joint_table_sizes_and_names():
    assert len(sk.JOINT_NAMES) == 22 == len(sk.PARENTS)
    assert sk.JOINT_NAMES[0] == "pelvis" and sk.JOINT_NAMES[-1] == "right_wrist"
    assert [sk.JOINT_NAMES[j] for j in sk.FOOT_JOINTS] == ["left_ankle", "left_foot", "right_ankle", "right_foot"]
    assert sk.joint_index("left_wrist") == 20 == sk.LEFT_WRIST
    with pytest.raises(ValueError, match="name"):
        sk.joint_index("left_toe")


def test_parents_are_consistent_with_kinematic_chains():
    assert sk.PARENTS[0] == -1
    assert all(0 <= p < j for j, p in enumerate(sk.PARENTS) if j > 0)  # parents come first
    covered = []
    for chain in sk.KINEMATIC_CHAINS:
        for parent, child in zip(chain[:-1], chain[1:]):
            assert sk.PARENTS[child] == parent, (parent, child)
        covered += chain[1:]
    assert sorted(covered) == list(range(1, 22))  # every bone is in exactly one chain


def test_chains_are_the_humanml3d_ones():
    assert sk.KINEMATIC_CHAINS == (
        [0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]
    )


def test_bone_lengths_of_a_hand_made_skeleton():
    rng = np.random.default_rng(0)
    lengths = rng.uniform(0.05, 0.5, size=21)
    directions = rng.normal(size=(21, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    joints = np.zeros((22, 3))
    joints[0] = [0.3, 0.9, -1.0]
    for j in range(1, 22):
        joints[j] = joints[sk.PARENTS[j]] + lengths[j - 1] * directions[j - 1]
    np.testing.assert_allclose(sk.bone_lengths(joints), lengths, atol=1e-12)
    batched = np.stack([joints, joints + 1.0])  # translation does not change lengths
    assert sk.bone_lengths(batched).shape == (2, 21)
    np.testing.assert_allclose(sk.bone_lengths(batched)[1], lengths, atol=1e-12)


def test_bone_lengths_rejects_wrong_shape():
    with pytest.raises(ValueError, match="joints"):
        sk.bone_lengths(np.zeros((5, 21, 3)))


@pytest.mark.parametrize("stature", [1.50, 1.70, 1.95])
def test_rest_skeleton_is_a_plausible_adult_of_that_height(stature):
    joints = sk.rest_joints(stature)
    scale = stature / 1.70
    assert joints[[sk.LEFT_FOOT, sk.RIGHT_FOOT], 1] == pytest.approx([0.0, 0.0], abs=1e-12)  # balls on the floor
    assert joints[sk.LEFT_ANKLE, 1] == pytest.approx(0.04 * scale)
    # Head joint ~0.15 m (scaled) below the top of the head; shoulders ~81 % and pelvis ~54 % of stature.
    assert 0.88 < joints[sk.HEAD, 1] / stature < 0.93
    assert 0.78 < joints[sk.LEFT_SHOULDER, 1] / stature < 0.84
    assert 0.51 < joints[sk.PELVIS, 1] / stature < 0.56
    assert joints[sk.LEFT_WRIST, 0] > 0 > joints[sk.RIGHT_WRIST, 0]  # left is +x
    assert joints[sk.LEFT_FOOT, 2] > joints[sk.LEFT_ANKLE, 2]  # facing +z
    assert sk.estimate_stature_m(joints) == pytest.approx(stature, rel=1e-9)


def test_rest_offsets_reject_bad_stature():
    with pytest.raises(ValueError, match="stature_m"):
        sk.rest_offsets(0.0)
