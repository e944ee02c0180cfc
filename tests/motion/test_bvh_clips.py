import json
import math
from pathlib import Path

import numpy as np
import pytest

from datamodules.labels import SHARED_CLASSES, safety_of
from motion import skeleton as sk
from motion.bvh import BVHJoint, format_bvh
from motion.bvh_clips import (BANDAI_CONTENTS, BANDAI_TO_SHARED, CMU_TRIALS, CONTACT_MAX_SPEED_M_S, BVHClipSet,
                              bandai_entries, cmu_entries, crop_starts, foot_contact)
from motion.procedural.dataset import MotionClip
from motion.retarget import load_bvh_as_humanml3d

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "cmu_bvh").is_dir() or not (DATA / "bvh").is_dir()
                                or not (DATA / "bandai_namco_bvh").is_dir(), reason=f"shared BVH data not found under {DATA}")

SAFETY = {"walking": "safe", "falling": "unsafe", "running": "safe"}

# The template T-pose (cm) under Bandai-Namco joint names, so the rig is detected: (name, parent, template joints summed).
BANDAI_LAYOUT = [
    ("Hips", "joint_Root", ["pelvis"]), ("Spine", "Hips", ["spine1"]), ("Chest", "Spine", ["spine2", "spine3"]),
    ("Neck", "Chest", ["neck"]), ("Head", "Neck", ["head"]),
    *[(f"{part}_{s}", parent, [f"{side}_{joint}"]) for side, s in (("left", "L"), ("right", "R")) for part, parent, joint in (
        ("Shoulder", "Chest", "collar"), ("UpperArm", f"Shoulder_{s}", "shoulder"), ("LowerArm", f"UpperArm_{s}", "elbow"),
        ("Hand", f"LowerArm_{s}", "wrist"), ("UpperLeg", "Hips", "hip"), ("LowerLeg", f"UpperLeg_{s}", "knee"),
        ("Foot", f"LowerLeg_{s}", "ankle"), ("Toes", f"Foot_{s}", "foot"))],
]


def bandai_like_file(path: Path, frames: int, speed_cm_s: float = 0.0) -> Path:
    """`frames` at 30 fps of the template standing (feet on y = 0) and sliding along +z at `speed_cm_s`."""
    offsets = sk.rest_offsets() * 100.0
    offsets[sk.PELVIS] = [0.0, sk.TEMPLATE_PELVIS_HEIGHT_M * 100.0, 0.0]
    names = ["joint_Root"] + [name for name, _, _ in BANDAI_LAYOUT]
    joints = [BVHJoint(name="joint_Root", parent=-1, offset=np.zeros(3), channels=("Xposition", "Yposition", "Zposition"))]
    joints += [BVHJoint(name=name, parent=names.index(parent), channels=(),
                        offset=sum(offsets[sk.joint_index(joint)] for joint in template))
               for name, parent, template in BANDAI_LAYOUT]
    values = np.zeros((frames, 3))
    values[:, 2] = speed_cm_s * np.arange(frames) / 30.0
    path.write_text(format_bvh(joints, 1.0 / 30.0, values))
    return path


def frames_at_20(frames_at_30: int) -> int:
    return math.floor((frames_at_30 - 1) * 20 / 30) + 1


@pytest.fixture
def files(tmp_path):
    """Files of 101, 80, 161, 50 and 30 frames at 20 fps (5.05, 4, 8.05, 2.5 and 1.5 s)."""
    made = {name: bandai_like_file(tmp_path / f"{name}.bvh", frames, speed)
            for name, frames, speed in [("long", 151, 0.0), ("exact", 120, 0.0), ("longer", 241, 150.0),
                                        ("short", 75, 0.0), ("too_short", 45, 0.0)]}
    assert [frames_at_20(n) for n in (151, 120, 241, 75, 45)] == [101, 80, 161, 50, 30]
    return made


def test_crop_starts_cover_the_recording():
    assert crop_starts(101, 80, 40) == [0, 21]  # the last crop ends on the last frame
    assert crop_starts(120, 80, 40) == [0, 40]
    assert crop_starts(161, 80, 40) == [0, 40, 80, 81]
    assert crop_starts(80, 80, 40) == [0]
    assert crop_starts(50, 80, 40) == [0]


def test_crops_and_padding_are_exact(files):
    entries = [(files[name], activity) for name, activity in
               [("long", "walking"), ("exact", "walking"), ("longer", "running"), ("short", "falling"), ("too_short", "walking")]]
    with pytest.warns(UserWarning, match=r"too_short.bvh: 1.50 s is shorter than min_duration_s=2.0 s; skipped"):
        clips = BVHClipSet(entries=entries, safety_of=SAFETY.__getitem__)
    assert clips.skipped == [files["too_short"]]
    assert len(clips) == 2 + 1 + 4 + 1
    assert clips.crops == [(0, 0), (0, 21), (1, 0), (2, 0), (2, 40), (2, 80), (2, 81), (3, 0)]
    assert clips.activities == ("falling", "running", "walking")
    longer = load_bvh_as_humanml3d(files["longer"]).astype(np.float32)
    for item, start in zip(range(3, 7), (0, 40, 80, 81)):
        clip = clips[item]
        assert isinstance(clip, MotionClip) and clip.activity == "running" == clips.activity_of(item)
        np.testing.assert_array_equal(clip.joints, longer[start : start + 80])
    padded = clips[-1]
    short = load_bvh_as_humanml3d(files["short"]).astype(np.float32)
    np.testing.assert_array_equal(padded.joints[:50], short)
    np.testing.assert_array_equal(padded.joints[50:], np.broadcast_to(short[-1], (30, 22, 3)))
    assert padded.safety == "unsafe" and padded.activity == "falling" and padded.caption == "short 0.00–4.00 s"
    assert clips[1].caption == "long 1.05–5.05 s" and clips[1].safety == "safe"


def test_clip_fields_and_foot_contacts(files):
    clips = BVHClipSet(entries=[(files["exact"], "walking"), (files["longer"], "running")], safety_of=SAFETY.__getitem__)
    still, sliding = clips[0], clips[1]
    for clip in (still, sliding):
        assert clip.joints.shape == (80, 22, 3) and clip.joints.dtype == np.float32 and clip.fps == 20.0
        assert clip.foot_contact.shape == (80, 4) and clip.foot_contact.dtype == bool
    assert still.foot_contact.all()  # standing still
    assert not sliding.foot_contact.any()  # every foot joint moves at 1.5 m/s > 0.894 m/s


def test_foot_contact_speed_rule():
    assert CONTACT_MAX_SPEED_M_S == pytest.approx(0.894, abs=1e-3)  # sqrt(0.002 m²) per 1/20 s
    t = np.arange(40) / 20.0
    joints = np.zeros((40, 22, 3))
    joints[:, sk.LEFT_ANKLE, 2] = 0.8 * t  # below the limit
    joints[:, sk.RIGHT_FOOT, 2] = 1.0 * t  # above it
    contact = foot_contact(joints, 20.0)
    np.testing.assert_array_equal(contact, np.broadcast_to([True, True, True, False], (40, 4)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        foot_contact(joints[:1], 20.0)


def test_fixed_class_list_cache_and_indexing(files):
    entries = [(files["exact"], "walking"), (files["short"], "walking")]
    cached = BVHClipSet(entries=entries, safety_of=safety_of, activities=SHARED_CLASSES)
    fresh = BVHClipSet(entries=entries, safety_of=safety_of, activities=SHARED_CLASSES, cache=False)
    assert cached.activities == SHARED_CLASSES and len(cached) == len(fresh) == 2
    for index in (0, 1, -1):
        np.testing.assert_array_equal(cached[index].joints, fresh[index].joints)
    assert cached.activity_of(-1) == "walking"
    with pytest.raises(IndexError):
        cached[2]
    with pytest.raises(TypeError):
        cached[0.5]


def test_bad_arguments(files):
    entry = [(files["exact"], "walking")]
    good = dict(entries=entry, safety_of=SAFETY.__getitem__)
    for change, message in [
        (dict(entries=[]), "entries"), (dict(entries=[str(files["exact"])]), "pairs"),
        (dict(safety_of={"walking": "safe"}), "safety_of must be a callable"),
        (dict(safety_of=lambda activity: "risky"), r"safety_of must return one of \('safe', 'unsafe'\)"),
        (dict(activities=("running",)), r"missing \['walking'\]"), (dict(activities=("walking", "walking")), "once"),
        (dict(duration_s=0.0), "duration_s"), (dict(stride_s=-1.0), "stride_s"), (dict(fps=float("nan")), "fps"),
        (dict(min_duration_s=-1.0), "min_duration_s"), (dict(duration_s=0.05), "at least 2 frames"),
    ]:
        with pytest.raises(ValueError, match=message):
            BVHClipSet(**{**good, **change})
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="every entry is shorter"):
        BVHClipSet(entries=[(files["too_short"], "walking")], safety_of=SAFETY.__getitem__)


def test_cmu_entries_by_trial_in_the_file_name(tmp_path):
    for name in ("90_17.bvh", "cmu_16_15_walk.bvh", "99_99.bvh", "notes.bvh", "90_17.txt"):
        (tmp_path / name).write_text("")
    assert cmu_entries(tmp_path) == [(tmp_path / "90_17.bvh", "falling"), (tmp_path / "cmu_16_15_walk.bvh", "walking")]
    with pytest.raises(ValueError, match="not a directory"):
        cmu_entries(tmp_path / "missing")
    assert {label for _, label in CMU_TRIALS.values()} <= set(SHARED_CLASSES)


def test_bandai_entries_by_json_content(tmp_path):
    def meta(name: str, content) -> None:
        (tmp_path / f"{name}.json").write_text(json.dumps({"content": content, "style": 0}))
        (tmp_path / f"{name}.bvh").write_text("")

    for name, content in [("a_walk", 0), ("b_dash", 2), ("c_kick", 13), ("d_bow", 6), ("e_slash", 14)]:
        meta(name, content)
    assert bandai_entries(tmp_path) == [(tmp_path / "a_walk.bvh", "walking"), (tmp_path / "b_dash.bvh", "running"),
                                        (tmp_path / "c_kick.bvh", "fighting"), (tmp_path / "e_slash.bvh", "fighting")]
    assert set(BANDAI_TO_SHARED) <= set(BANDAI_CONTENTS) and set(BANDAI_TO_SHARED.values()) <= set(SHARED_CLASSES)
    meta("f_odd", 17)
    with pytest.raises(ValueError, match=r"f_odd.json: content must be an id in 0…16, got 17"):
        bandai_entries(tmp_path)
    (tmp_path / "f_odd.json").write_text("{not json")
    with pytest.raises(ValueError, match="f_odd.json: cannot read the 'content' id"):
        bandai_entries(tmp_path)
    meta("f_odd", 1)
    (tmp_path / "f_odd.bvh").unlink()
    with pytest.raises(ValueError, match="f_odd.json: its motion file f_odd.bvh is missing"):
        bandai_entries(tmp_path)


@needs_data
def test_labels_of_the_shared_folders():
    cmu = cmu_entries(DATA / "cmu_bvh")
    # the labels of cmu_bvh/INDEX.md mapped to shared classes
    expected = {"90_16": "falling", "90_17": "falling", "90_18": "falling", "104_13": "stumbling", "77_17": "lying",
                "113_15": "sit_stand", "113_20": "stairs", "118_03": "jumping"}
    assert {path.stem: label for path, label in cmu} == expected
    assert {path.name: label for path, label in cmu_entries(DATA / "bvh")} == {
        "cmu_16_15_walk.bvh": "walking", "cmu_141_01_run.bvh": "running"}
    bandai = bandai_entries(DATA / "bandai_namco_bvh")
    assert bandai and all(path.is_file() for path, _ in bandai)
    for path, label in bandai:  # the .json content agrees with the motion named in the file name
        assert label == BANDAI_TO_SHARED[path.stem.split("_")[1]], path.name


@needs_data
def test_shared_clip_set_loads_with_exact_crops():
    bandai = [entry for entry in bandai_entries(DATA / "bandai_namco_bvh") if entry[0].stem.endswith("normal_001")]
    entries = cmu_entries(DATA / "cmu_bvh") + cmu_entries(DATA / "bvh") + bandai
    with pytest.warns(UserWarning, match="shorter than min_duration_s"):  # the short CMU run and Bandai run/dash
        clips = BVHClipSet(entries=entries, safety_of=safety_of, activities=SHARED_CLASSES)
    assert len(clips) > len(entries) - len(clips.skipped)
    labels = set()
    for index in range(len(clips)):
        clip = clips[index]
        assert clip.joints.shape == (80, 22, 3) and clip.joints.dtype == np.float32 and np.isfinite(clip.joints).all()
        assert clip.activity == clips.activity_of(index) and clip.safety == safety_of(clip.activity)
        labels.add(clip.activity)
    assert {"falling", "stumbling", "lying", "sit_stand", "stairs", "jumping", "walking", "fighting"} <= labels
