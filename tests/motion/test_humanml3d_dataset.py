"""HumanML3D folder reader, on fixture folders written in the published layout."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motion.humanml3d import canonicalize_joints, extract_features, recover_from_ric
from motion.humanml3d_dataset import HumanML3DDataset, pad_collate
from motion.procedural import generate_clip

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "humanml3d_sample"

WALK_LINES = [
    "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0",
    "someone takes a few steps.#someone/PRON take/VERB a/DET few/ADJ step/NOUN#0.0#0.0",
    "the person walks.#the/DET person/NOUN walk/VERB#0.5#3.0",
    "a man strolls.#a/DET man/NOUN stroll/VERB#0.52#3.04",  # same frames 10:60 as the line above
    "a short step.#a/DET short/ADJ step/NOUN#1.0#2.0",  # 20 frames: too short, left out
]


def _write_clip(root: Path, clip_id: str, features: np.ndarray, lines: list[str]) -> None:
    np.save(root / "new_joint_vecs" / f"{clip_id}.npy", features.astype(np.float32))
    (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def humanml3d_root(tmp_path):
    """A folder in the HumanML3D layout; returns (root, walking joints [80, 22, 3], its features [79, 263])."""
    for folder in ("new_joint_vecs", "texts"):
        (tmp_path / folder).mkdir()
    joints = generate_clip("walking", np.random.default_rng(5), duration_s=4.0).joints
    walk = extract_features(joints)
    rng = np.random.default_rng(0)
    _write_clip(tmp_path, "000001", walk, WALK_LINES)
    _write_clip(tmp_path, "000002", rng.normal(size=(199, 263)), ["long.#long/ADJ#0.0#0.0"])
    _write_clip(tmp_path, "000003", rng.normal(size=(200, 263)), ["too long.#too/ADV long/ADJ#0.0#0.0"])
    _write_clip(tmp_path, "000004", rng.normal(size=(30, 263)), ["too short.#too/ADV short/ADJ#nan#nan"])
    _write_clip(tmp_path, "000005", rng.normal(size=(150, 263)), ["first part.#first/ADJ part/NOUN#0.0#4.5"])
    _write_clip(tmp_path, "000006", rng.normal(size=(60, 263)), [""])  # no descriptions
    np.save(tmp_path / "Mean.npy", walk.mean(0).astype(np.float32))
    np.save(tmp_path / "Std.npy", (walk.std(0) + 0.1).astype(np.float32))
    (tmp_path / "train.txt").write_text("000001\n000002\n000003\n000004\n000005\n000006\n")
    (tmp_path / "test.txt").write_text("000002\n")
    return tmp_path, joints, walk


def test_items_follow_the_length_rule_and_sub_clip_spans(humanml3d_root):
    root, _, _ = humanml3d_root
    dataset = HumanML3DDataset(root=root, split="train")
    assert [dataset[i]["id"] for i in range(len(dataset))] == ["000001", "000001@10-60", "000002", "000005@0-90"]
    assert [dataset[i]["length"] for i in range(len(dataset))] == [79, 50, 196, 90]  # 199 frames cropped to 196
    assert sorted(dataset.skipped) == [
        ("000001@20-40", "20 frames, outside [40, 199]"),
        ("000003", "200 frames, outside [40, 199]"),
        ("000004", "30 frames, outside [40, 199]"),
        ("000006", "no descriptions"),
    ]
    assert [d.caption for d in dataset.descriptions(1)] == ["the person walks.", "a man strolls."]
    assert dataset.descriptions(0)[1].tokens == ("someone/PRON", "take/VERB", "a/DET", "few/ADJ", "step/NOUN")
    assert len(HumanML3DDataset(root=root, split="test")) == 1


def test_features_are_the_z_normalised_file_rows(humanml3d_root):
    root, _, walk = humanml3d_root
    dataset = HumanML3DDataset(root=root, split="train")
    mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    sub_clip = dataset[1]
    assert sub_clip["features"].dtype == torch.float32 and sub_clip["start_frame"] == 10
    expected = (walk[10:60].astype(np.float32) - mean) / std
    np.testing.assert_allclose(sub_clip["features"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(dataset.denormalize(sub_clip["features"]).numpy(), walk[10:60], atol=1e-5)
    raw = HumanML3DDataset(root=root, split="train", normalize=False)[1]["features"]
    np.testing.assert_allclose(raw.numpy(), walk[10:60], atol=1e-6)


def test_joints_decode_the_item(humanml3d_root):
    root, joints, walk = humanml3d_root
    dataset = HumanML3DDataset(root=root, split="train")
    whole = dataset.joints(0)
    assert whole.shape == (79, 22, 3)
    # float32 storage of the features: decoded joints within 1e-5 m of the canonical clip.
    np.testing.assert_allclose(whole.numpy(), canonicalize_joints(joints)[:-1], atol=1e-5)
    sub_clip = recover_from_ric(torch.from_numpy(walk[10:60].astype(np.float32)))
    torch.testing.assert_close(dataset.joints(1), sub_clip, atol=0, rtol=0)


def test_crop_and_caption_are_deterministic_per_seed_and_index(humanml3d_root):
    root, _, _ = humanml3d_root
    first = HumanML3DDataset(root=root, split="train", seed=3)
    again = HumanML3DDataset(root=root, split="train", seed=3)
    for index in range(len(first)):
        a, b = first[index], again[index]
        assert a["caption"] == b["caption"] and a["start_frame"] == b["start_frame"]
        torch.testing.assert_close(a["features"], b["features"], atol=0, rtol=0)
    captions = {HumanML3DDataset(root=root, split="train", seed=s)[0]["caption"] for s in range(20)}
    assert captions == {"a person walks forward.", "someone takes a few steps."}
    offsets = {HumanML3DDataset(root=root, split="test", seed=s)[0]["start_frame"] for s in range(40)}
    assert offsets == {0, 1, 2, 3}  # 199 → 196 frames: 4 possible windows
    pinned = HumanML3DDataset(root=root, split="train", caption_index=1)
    assert pinned[0]["caption"] == "someone takes a few steps." and pinned[2]["caption"] == "long."


def test_no_crop_when_max_frames_is_none(humanml3d_root):
    root, _, _ = humanml3d_root
    item = HumanML3DDataset(root=root, split="test", max_frames=None)[0]
    assert item["length"] == 199 and item["start_frame"] == 0


def test_pad_collate_batches_variable_lengths(humanml3d_root):
    root, _, _ = humanml3d_root
    loader = DataLoader(HumanML3DDataset(root=root, split="train"), batch_size=4, collate_fn=pad_collate)
    batch = next(iter(loader))
    assert batch["features"].shape == (4, 196, 263)
    assert batch["length"].tolist() == [79, 50, 196, 90]
    assert batch["mask"].sum(1).tolist() == [79, 50, 196, 90]
    assert (batch["features"][1, 50:] == 0).all()
    assert batch["tokens"][2] == ["long/ADJ"] and batch["id"][0] == "000001"


@pytest.mark.parametrize(
    "line, message",
    [
        ("no fields here", r"000001\.txt:2: expected 4 '#'-separated fields"),
        ("a caption#a/DET#0.0", r"000001\.txt:2: expected 4"),
        ("a caption#a/DET caption/NOUN#x#0.0", r"000001\.txt:2: start and end must be seconds"),
        ("a caption#a/DET caption/NOUN#-1.0#2.0", r"000001\.txt:2: start and end must be finite and ≥ 0"),
        ("a caption#a/DET caption/NOUN#0.0#inf", r"000001\.txt:2: start and end must be finite"),
        ("a caption#a caption/NOUN#0.0#0.0", r"000001\.txt:2: tokens must be word/POS"),
    ],
)
def test_malformed_text_line_names_file_and_line(humanml3d_root, line, message):
    root, _, _ = humanml3d_root
    (root / "texts" / "000001.txt").write_text(WALK_LINES[0] + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        HumanML3DDataset(root=root, split="train")


def test_missing_or_bad_files_are_named(humanml3d_root):
    root, _, _ = humanml3d_root
    with pytest.raises(ValueError, match=r"split 'val'.*val\.txt not found"):
        HumanML3DDataset(root=root, split="val")
    with pytest.raises(ValueError, match="is not a folder"):
        HumanML3DDataset(root=root / "absent", split="train")
    (root / "texts" / "000005.txt").unlink()
    with pytest.raises(ValueError, match=r"texts/000005\.txt: file not found"):
        HumanML3DDataset(root=root, split="train")
    (root / "new_joint_vecs" / "000002.npy").unlink()
    with pytest.raises(ValueError, match=r"new_joint_vecs/000002\.npy: file not found"):
        HumanML3DDataset(root=root, split="test")


def test_bad_arrays_are_named(humanml3d_root):
    root, _, _ = humanml3d_root
    np.save(root / "new_joint_vecs" / "000002.npy", np.zeros((199, 251), np.float32))
    with pytest.raises(ValueError, match=r"000002\.npy: expected features \[T, 263\]"):
        HumanML3DDataset(root=root, split="test")
    (root / "new_joint_vecs" / "000002.npy").write_bytes(b"not a npy file")
    with pytest.raises(ValueError, match=r"000002\.npy: not a readable \.npy file"):
        HumanML3DDataset(root=root, split="test")
    nan_rows = np.zeros((199, 263), np.float32)
    nan_rows[5, 7] = np.nan
    np.save(root / "new_joint_vecs" / "000002.npy", nan_rows)
    dataset = HumanML3DDataset(root=root, split="test", max_frames=None)
    with pytest.raises(ValueError, match=r"000002\.npy: frames 0–199 contain non-finite"):
        dataset[0]
    np.save(root / "Std.npy", np.zeros(263, np.float32))
    with pytest.raises(ValueError, match=r"Std\.npy: standard deviations must be > 0"):
        HumanML3DDataset(root=root, split="test")
    np.save(root / "Mean.npy", np.zeros(262, np.float32))
    with pytest.raises(ValueError, match=r"Mean\.npy: expected 263 finite values"):
        HumanML3DDataset(root=root, split="test")


def test_bad_arguments_are_named(humanml3d_root):
    root, _, _ = humanml3d_root
    for kwargs, name in [
        ({"min_frames": 1}, "min_frames"),
        ({"max_frames": 10}, "max_frames"),
        ({"max_source_frames": 39}, "max_source_frames"),
        ({"caption_index": -1}, "caption_index"),
        ({"seed": 1.5}, "seed"),
    ]:
        with pytest.raises(ValueError, match=name):
            HumanML3DDataset(root=root, split="train", **kwargs)
    dataset = HumanML3DDataset(root=root, split="train")
    with pytest.raises(IndexError, match="index"):
        dataset[len(dataset)]
    with pytest.raises(ValueError, match="features must be a tensor"):
        dataset.denormalize(torch.zeros(4, 262))
    with pytest.raises(ValueError, match="batch"):
        pad_collate([])


@pytest.mark.skipif(
    not all((SAMPLE / name).exists() for name in ("Mean.npy", "Std.npy", "new_joint_vecs")),
    reason=f"HumanML3D sample files not found under {SAMPLE} (shared data folder absent)",
)
def test_reads_the_published_sample_files(tmp_path):
    """The sample's own Mean/Std and feature files, linked into a folder with fixture captions and split."""
    for name in ("Mean.npy", "Std.npy", "new_joint_vecs"):
        (tmp_path / name).symlink_to(SAMPLE / name)
    (tmp_path / "texts").mkdir()
    ids = sorted(path.stem for path in (SAMPLE / "new_joint_vecs").glob("*.npy"))
    for clip_id in ids:
        (tmp_path / "texts" / f"{clip_id}.txt").write_text("a motion.#a/DET motion/NOUN#0.0#0.0\n")
    (tmp_path / "all.txt").write_text("\n".join(ids) + "\n")
    dataset = HumanML3DDataset(root=tmp_path, split="all")
    assert len(dataset) == len(ids)
    mean, std = np.load(SAMPLE / "Mean.npy"), np.load(SAMPLE / "Std.npy")
    for index, clip_id in enumerate(ids):
        item = dataset[index]
        raw = np.load(SAMPLE / "new_joint_vecs" / f"{clip_id}.npy")
        assert item["length"] == min(len(raw), 196)
        window = raw[item["start_frame"] : item["start_frame"] + item["length"]].astype(np.float32)
        np.testing.assert_allclose(item["features"].numpy(), (window - mean) / std, rtol=1e-5, atol=1e-5)
        # Most channels of a real clip lie within a few standard deviations of the published mean.
        assert np.median(np.abs(item["features"].numpy())) < 3.0
    joints_file = SAMPLE / "new_joints" / "012314.npy"
    if "012314" in ids and joints_file.exists():
        decoded = dataset.joints(ids.index("012314")).numpy()
        assert np.abs(decoded - np.load(joints_file)).max() <= 1e-5  # measured 0.0 (both float32)
