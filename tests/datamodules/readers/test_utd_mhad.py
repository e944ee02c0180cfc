import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from datamodules.readers.base import RecordingFileError
from datamodules.readers.utd_mhad import (
    ACTIONS,
    UTDSkeletonSet,
    action_names,
    load_utd_inertial,
    pad_to_length,
    read_utd_inertial,
)
from motion.skeleton import estimate_stature_m, joint_index
from tests.datamodules.readers.fall_fixtures import SHARED_DATA, STANDARD_GRAVITY
from tests.motion.kinect_fixtures import to_kinect_camera, world_skeleton

# By hand from the UTD-MHAD action list: boxing and the two-hand push are fighting/shoving; jog, walk and
# the two chair transitions have shared classes; every other action (arm gestures, sports) is "other".
SHARED_LABEL = {13: "fighting", 18: "fighting", 22: "running", 23: "walking", 24: "sit_stand", 25: "sit_stand"}
G_AND_DEG_S = np.array([0.0, 0.6, 0.8, 90.0, 0.0, -45.0])
"""One inertial row in the file's units: acc (g, |acc| = 1 g), gyro (°/s)."""
SI = np.array([0.0, 0.6 * STANDARD_GRAVITY, 0.8 * STANDARD_GRAVITY, math.pi / 2, 0.0, -math.pi / 4])
"""The same row in m/s² and rad/s: 1 g = 9.80665 m/s², 90 °/s = π/2 rad/s."""
EXACT = 1e-12


def write_inertial(
    root: Path, action: int, subject: int, trial: int, data: np.ndarray | None = None, samples: int = 151
) -> Path:
    folder = root / "Inertial"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"a{action}_s{subject}_t{trial}_inertial.mat"
    scipy.io.savemat(path, {"d_iner": np.tile(G_AND_DEG_S, (samples, 1)) if data is None else data})
    return path


def write_skeleton_trial(root: Path, action: int, subject: int, trial: int, *, frames: int, samples: int) -> Path:
    """Skeleton (`d_skel` 20 × 3 × T, seen by a camera pitched 15°) and inertial files of one trial.

    The skeleton's world motion (`world_skeleton`) is timed at the rate that spans the inertial recording.
    """
    fps = (frames - 1) * 50.0 / (samples - 1)
    kinect = to_kinect_camera(world_skeleton(frames, fps=fps), pitch_deg=15.0)
    folder = root / "Skeleton"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"a{action}_s{subject}_t{trial}_skeleton.mat"
    scipy.io.savemat(path, {"d_skel": kinect.transpose(1, 2, 0)})
    write_inertial(root, action, subject, trial, samples=samples)
    return path


# ---------------------------------------------------------------- inertial


def test_inertial_units_are_converted_exactly(tmp_path):
    recording = read_utd_inertial(write_inertial(tmp_path, 7, 3, 2))
    assert recording.fs == 50.0 and recording.acc.shape == (151, 3)
    np.testing.assert_allclose(recording.imu, np.tile(SI, (151, 1)), rtol=0, atol=EXACT)
    names = (recording.dataset, recording.subject, recording.trial, recording.activity, recording.position)
    assert names == ("utd_mhad", "3", "2", "basketball_shoot", "right_wrist")
    assert (recording.label, recording.safety) == ("other", "safe")


def test_inertial_resampled_to_the_requested_rate(tmp_path):
    recording = read_utd_inertial(write_inertial(tmp_path, 1, 1, 1), fs=25.0)
    # ceil(151 / 2) = 76 samples; a constant passes the 2:1 decimation unchanged.
    assert recording.fs == 25.0 and recording.imu.shape == (76, 6)
    np.testing.assert_allclose(recording.imu, np.tile(SI, (76, 1)), rtol=0, atol=1e-9)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_gets_its_shared_label_and_position(tmp_path, action):
    recording = read_utd_inertial(write_inertial(tmp_path, action, 1, 1, samples=10))
    assert recording.label == SHARED_LABEL.get(action, "other")
    assert recording.safety == ("unsafe" if action in (13, 18) else "safe")
    assert recording.position == ("right_wrist" if action <= 21 else "right_thigh")
    assert recording.activity == ACTIONS[action][0]


def test_action_names_keep_the_given_order():
    assert action_names((3, 1, 13, 27)) == ("wave", "swipe_left", "boxing", "squat")
    assert len(set(name for name, _ in ACTIONS.values())) == 27
    with pytest.raises(ValueError, match=r"actions \[0, 28\] are not UTD-MHAD action numbers 1–27"):
        action_names((1, 0, 28))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"inertial": np.zeros((10, 6))}, "no 'd_iner' variable"),
        ({"d_iner": np.zeros((10, 5))}, r"d_iner must be \[N, 6\], got \(10, 5\)"),
        ({"d_iner": np.tile(G_AND_DEG_S, (1, 1))}, "d_iner has 1 samples"),
        ({"d_iner": np.where(np.arange(6) == 2, np.nan, np.tile(G_AND_DEG_S, (10, 1)))}, "d_iner contains NaN"),
        # acc already in m/s² (read as g: 96.2 m/s²); gyro 60 times too large (|π/2, 0, −π/4|·60 = 105 rad/s).
        ({"d_iner": np.tile(G_AND_DEG_S * np.repeat([STANDARD_GRAVITY, 1.0], 3), (10, 1))}, r"median \|acc\| is 96.2"),
        ({"d_iner": np.tile(G_AND_DEG_S * np.repeat([1.0, 60.0], 3), (10, 1))}, r"median \|gyro\| is 105,"),
    ],
)
def test_bad_inertial_files_raise_naming_the_file(tmp_path, content, message):
    path = tmp_path / "a2_s1_t1_inertial.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(RecordingFileError, match=f"a2_s1_t1_inertial.mat: {message}"):
        read_utd_inertial(path)


def test_unreadable_or_misnamed_inertial_files(tmp_path):
    garbage = tmp_path / "a2_s1_t1_inertial.mat"
    garbage.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(RecordingFileError, match="a2_s1_t1_inertial.mat: not a readable .mat file"):
        read_utd_inertial(garbage)
    misnamed = tmp_path / "walk_inertial.mat"
    scipy.io.savemat(misnamed, {"d_iner": np.tile(G_AND_DEG_S, (10, 1))})
    with pytest.raises(RecordingFileError, match="walk_inertial.mat: expected a name like a1_s1_t1_inertial.mat"):
        read_utd_inertial(misnamed)


def test_load_selects_subjects_and_actions_and_skips_bad_files(tmp_path):
    for action, subject, trial in [(1, 1, 1), (1, 1, 4), (1, 2, 1), (22, 1, 1), (5, 1, 2)]:
        write_inertial(tmp_path, action, subject, trial)
    bad = write_inertial(tmp_path, 5, 2, 3, data=np.zeros((10, 6)))  # |acc| = 0: no gravity
    report = load_utd_inertial(tmp_path, subjects=(1, 2), actions=(5, 1))
    # Order: actions as given, then subjects, then trials; missing trials are simply absent.
    assert [(r.activity, r.subject, r.trial) for r in report.recordings] == [
        ("throw", "1", "2"), ("swipe_left", "1", "1"), ("swipe_left", "1", "4"), ("swipe_left", "2", "1")
    ]
    assert [path for path, _ in report.skipped] == [str(bad)]
    assert len(load_utd_inertial(tmp_path)) == 4  # default: actions 1–21 (the wrist), subjects 1–8
    assert [r.position for r in load_utd_inertial(tmp_path, actions=(22,)).recordings] == ["right_thigh"]
    with pytest.raises(ValueError, match=r"actions \[30\] are not UTD-MHAD action numbers"):
        load_utd_inertial(tmp_path, actions=(30,))
    with pytest.raises(FileNotFoundError, match="Inertial not found"):
        load_utd_inertial(tmp_path / "elsewhere")


# ---------------------------------------------------------------- pad_to_length


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (9, [0, 0, 0, 1, 2, 3, 4, 4, 4]),  # 4 extra frames: 2 before, 2 after
        (8, [0, 0, 1, 2, 3, 4, 4, 4]),  # 3 extra: the odd one after
        (6, [0, 1, 2, 3, 4, 4]),
        (5, [0, 1, 2, 3, 4]),
        (3, [1, 2, 3]),  # 2 too many: one cropped at each end
        (2, [1, 2]),  # 3 too many: the odd one cropped at the end
        (1, [2]),
    ],
)
def test_pad_to_length_centres_and_crops_exactly(length, expected):
    series = np.arange(5)[:, None, None] * np.ones((1, 22, 3))
    out = pad_to_length(series, length)
    assert out.shape == (length, 22, 3)
    np.testing.assert_array_equal(out[:, 0, 0], expected)


# ---------------------------------------------------------------- UTDSkeletonSet


@pytest.fixture
def skeleton_root(tmp_path) -> Path:
    # Skeleton rates 15, 25 and 30 Hz (frames spread over the inertial span): 3 s, 2.4 s and 5 s trials.
    write_skeleton_trial(tmp_path, 1, 1, 1, frames=46, samples=151)
    write_skeleton_trial(tmp_path, 1, 1, 2, frames=61, samples=121)
    write_skeleton_trial(tmp_path, 3, 1, 1, frames=151, samples=251)
    write_skeleton_trial(tmp_path, 13, 2, 1, frames=46, samples=151)
    write_inertial(tmp_path, 3, 2, 4)  # inertial without skeleton: not a skeleton trial
    return tmp_path


def test_skeleton_set_lengths_order_and_repeats(skeleton_root):
    clips = UTDSkeletonSet(root=skeleton_root, subjects=(1, 2), actions=(3, 1, 13), fps=20.0, duration_s=4.0, repeats=2)
    assert clips.activities == ("wave", "swipe_left", "boxing")
    assert clips.frames == 81 and len(clips) == 8  # 4 trials × 2 repeats
    order = ["wave", "swipe_left", "swipe_left", "boxing"]
    assert [clips.activity_of(i) for i in range(8)] == order * 2
    for i in range(4):
        first, again = clips[i], clips[i + 4]
        np.testing.assert_array_equal(first.joints, again.joints)
        assert first.activity == again.activity == order[i] and first.caption == again.caption
    clip = clips[3]
    assert clip.joints.shape == (81, 22, 3) and clip.joints.dtype == np.float32 and clip.fps == 20.0
    assert (clip.safety, clip.caption) == ("unsafe", "UTD-MHAD boxing s2_t1")
    assert clips[0].safety == "safe" and clips[0].caption == "UTD-MHAD wave s1_t1"
    assert clip.foot_contact.shape == (81, 4) and not clip.foot_contact.any()
    for index in (8, -1):
        with pytest.raises(IndexError, match="out of range for 8 clips"):
            clips[index]


@pytest.mark.parametrize(
    ("action", "trial", "offset", "held_end"),
    [
        (1, 1, 10, 1.2),  # 15 Hz, 3 s → 61 frames at 20 Hz, centred in 81: 10 held frames each side
        (1, 2, 16, 0.96),  # 25 Hz, 2.4 s → 49 frames: 16 before, 16 after
        (3, 1, -10, None),  # 30 Hz, 5 s → 101 frames: 10 cropped at each end
    ],
)
def test_skeleton_frames_are_timed_by_the_inertial_span(skeleton_root, action, trial, offset, held_end):
    clips = UTDSkeletonSet(root=skeleton_root, subjects=(1,), actions=(action,), fps=20.0, duration_s=4.0)
    index = [clip.caption for clip in clips].index(f"UTD-MHAD {ACTIONS[action][0]} s1_t{trial}")
    pelvis_x = clips[index].joints[:, joint_index("pelvis"), 0]
    # The body moves 0.4 m/s along x: at 20 Hz, 0.02 m per frame from the first skeleton frame.
    frames = np.arange(81)
    moving = (frames >= offset) & (frames < 81 - max(offset, 0))
    np.testing.assert_allclose(pelvis_x[moving], 0.02 * (frames[moving] - offset), rtol=0, atol=1e-5)
    if held_end is not None:
        np.testing.assert_allclose(pelvis_x[:offset], 0.0, atol=1e-6)
        np.testing.assert_allclose(pelvis_x[81 - offset :], held_end, atol=1e-5)


def test_skeleton_set_errors(skeleton_root, tmp_path):
    with pytest.raises(ValueError, match="repeats must be ≥ 1, got 0"):
        UTDSkeletonSet(root=skeleton_root, repeats=0)
    with pytest.raises(ValueError, match=r"actions \[28\] are not UTD-MHAD action numbers"):
        UTDSkeletonSet(root=skeleton_root, actions=(1, 28))
    with pytest.raises(ValueError, match=r"no skeleton trials for subjects \[5\] and actions \[1\]"):
        UTDSkeletonSet(root=skeleton_root, subjects=(5,), actions=(1,))
    with pytest.raises(FileNotFoundError, match="Skeleton not found"):
        UTDSkeletonSet(root=tmp_path / "nowhere")
    (skeleton_root / "Inertial" / "a13_s2_t1_inertial.mat").unlink()
    with pytest.raises(RecordingFileError, match="a13_s2_t1_inertial.mat: not a readable .mat file"):
        UTDSkeletonSet(root=skeleton_root, subjects=(2,), actions=(13,))


# ---------------------------------------------------------------- real data

UTD = SHARED_DATA / "utd_mhad"
needs_utd = pytest.mark.skipif(
    not ((UTD / "Inertial").is_dir() and (UTD / "Skeleton").is_dir()),
    reason=f"UTD-MHAD not in {SHARED_DATA} (shared data folder lacks it)",
)


def files_present(kind: str, actions, subjects) -> int:
    folder = UTD / ("Inertial" if kind == "inertial" else "Skeleton")
    names = [f"a{a}_s{s}_t{t}_{kind}.mat" for a in actions for s in subjects for t in range(1, 5)]
    return sum((folder / name).is_file() for name in names)


@needs_utd
def test_real_wrist_trials_all_load():
    report = load_utd_inertial(UTD)
    expected = files_present("inertial", range(1, 22), range(1, 9))
    # 21 actions × 8 subjects × 4 trials, less at most the 3 trials missing upstream.
    assert 21 * 8 * 4 - 3 <= expected <= 21 * 8 * 4
    assert report.skipped == [] and len(report) == expected
    assert {r.position for r in report.recordings} == {"right_wrist"}
    assert all(r.fs == 50.0 and np.isfinite(r.imu).all() for r in report.recordings)


@needs_utd
def test_real_skeletons_of_one_subject_convert_to_a_plausible_body():
    clips = UTDSkeletonSet(root=UTD, subjects=(1,), fps=20.0, duration_s=7.0)
    assert len(clips) == files_present("skeleton", range(1, 22), (1,)) > 0
    for i in range(len(clips)):
        joints = clips[i].joints
        assert joints.shape == (141, 22, 3) and np.isfinite(joints).all()
        # An adult: 1.4–2.0 m from the bone lengths (median over frames: Kinect bones jitter).
        assert 1.4 < float(np.median(estimate_stature_m(joints))) < 2.0, clips[i].caption
        # Upright at the start: head well above the pelvis, feet near the floor.
        assert joints[0, joint_index("head"), 1] - joints[0, joint_index("pelvis"), 1] > 0.4
        assert abs(joints[:, [joint_index("left_foot"), joint_index("right_foot")], 1].min()) < 0.05
