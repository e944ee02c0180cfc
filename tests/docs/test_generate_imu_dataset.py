"""docs/generate_imu_dataset.py end to end: a tiny MDM trained by train.py (one epoch), then text → motion →
virtual IMU into shards, checked against the quality filter and the pipeline run again on the stored
joints; resuming after lost index lines, a torn line or a stopped run gives the same bytes as one run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from datamodules.generated_imu import INDEX_FILE, META_FILE, REJECTED_FILE, SUMMARY_FILE, GeneratedIMUDataset, shard_path
from datamodules.labels import SAFETY_LABELS, SHARED_CLASSES, safety_of
from motion.quality import QualityThresholds, check_motion, measure_motion
from virtual_imu import devices
from virtual_imu.pipeline import WristIMUPipeline

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("generate_imu_dataset", ROOT / "docs" / "generate_imu_dataset.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

pytestmark = pytest.mark.usefixtures("one_thread")

# tests/test_entry_points.py's MDM_SMALL, smaller still: one epoch on 8 clips
TINY_MDM = ["experiment=mdm_lacc", "logger=csv", "callbacks.rich_progress_bar=null", "data.train_motion.num_clips=8",
            "data.val_motion.num_clips=4", "data.test_motion.num_clips=4", "data.batch_size=8", "trainer.max_epochs=1",
            "test=false"]
PROMPTS = {"walking": ["a person walks forward.", "a person walks in a circle."],
           "falling": ["a person falls down.", "a person trips and falls forward."]}
SEED, FPS, FRAMES, T_IMU = 3, 20.0, 30, 73  # 1.5 s: 30 frames at 20 fps → 73 samples at 50 Hz
# Every threshold out of reach: each sample is kept, so its joints can be checked by hand afterwards.
LOOSE = ["max_bone_length_cv=1e9", "max_joint_speed_m_s=1e9", "max_joint_acceleration_m_s2=1e9",
         "max_skating_fraction=1", "min_mean_joint_speed_m_s=1e-12"]
ALL_FILES = (INDEX_FILE, REJECTED_FILE, SUMMARY_FILE)


@pytest.fixture(scope="module")
def mdm_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("mdm_run")
    command = [sys.executable, str(ROOT / "train.py"), *TINY_MDM, f"hydra.run.dir={run_dir}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return run_dir


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "prompts.yaml"
    path.write_text(yaml.safe_dump({"activities": {name: {"safety": safety_of(name), "prompts": texts}
                                                   for name, texts in PROMPTS.items()}}, sort_keys=False))
    return path


def argv(mdm_run, prompts_file, out, *extra) -> list[str]:
    return ["--run", str(mdm_run), "--prompts", str(prompts_file), "--out", str(out), "--per-prompt", "2",
            "--seconds", "1.5", "--batch", "3", "--ddim-steps", "5", "--sensor", "bmi270", "--seed", str(SEED),
            "--shard-size", "3", "--joints-dtype", "float32", "--device", "cpu", *extra]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of a dataset but meta.json (which keeps the first run's incidental arguments, e.g. --out)."""
    return {path.name: path.read_bytes() for path in sorted(out.iterdir()) if path.name != META_FILE}


@pytest.fixture(scope="module")
def datasets(mdm_run, prompts_file, tmp_path_factory) -> dict:
    """"loose": every sample kept; "mixed": bone-length drift threshold between the 4th and 5th sample's."""
    root = tmp_path_factory.mktemp("generated")
    loose = generate.main(argv(mdm_run, prompts_file, root / "loose", *[f"--quality={q}" for q in LOOSE]))
    assert loose["kept"] == 8
    cvs = []
    for row in lines(root / "loose" / INDEX_FILE):
        with np.load(shard_path(root / "loose", row["shard"])) as shard:
            cvs.append(measure_motion(shard["joints"][row["row"]], FPS).bone_length_cv)
    threshold = float(np.mean(sorted(cvs)[3:5]))
    mixed = generate.main(argv(mdm_run, prompts_file, root / "mixed", f"--quality=max_bone_length_cv={threshold}"))
    return {"root": root, "loose": loose, "mixed": mixed, "threshold": threshold}


def stored_clips(out: Path) -> dict[tuple[str, int], tuple[dict, np.ndarray, np.ndarray]]:
    """(prompt, sample) → (index line, imu, joints) of every kept sample."""
    clips = {}
    for row in lines(out / INDEX_FILE):
        with np.load(shard_path(out, row["shard"])) as shard:
            clips[row["prompt"], row["sample"]] = (row, shard["imu"][row["row"]], shard["joints"][row["row"]])
    return clips


def test_kept_and_rejected_samples_follow_the_quality_check(datasets):
    loose, mixed = stored_clips(datasets["root"] / "loose"), stored_clips(datasets["root"] / "mixed")
    thresholds = QualityThresholds(max_bone_length_cv=datasets["threshold"])
    # The thresholds only filter: the motions are those of the loose run, whose joints give the expected reasons.
    expected = {key: check_motion(joints, FPS, thresholds) for key, (_, _, joints) in loose.items()}
    rejected = {(line["prompt"], line["sample"]): line["reasons"] for line in lines(datasets["root"] / "mixed" / REJECTED_FILE)}
    assert set(mixed) == {key for key, reasons in expected.items() if not reasons} and len(mixed) >= 1
    assert rejected == {key: reasons for key, reasons in expected.items() if reasons} and len(rejected) >= 4
    for key, (row, imu, joints) in mixed.items():
        assert np.array_equal(joints, loose[key][2]) and np.array_equal(imu, loose[key][1])
    summary = json.loads((datasets["root"] / "mixed" / SUMMARY_FILE).read_text())
    assert summary == datasets["mixed"]
    assert summary["samples"] == summary["generated"] == 8 == summary["kept"] + summary["rejected"]
    assert summary["kept"] == len(mixed) and summary["rejected"] == len(rejected)
    counts = Counter(reason for reasons in rejected.values() for reason in reasons)
    assert summary["reasons"] == {reason: counts[reason] for reason in generate.ALL_REASONS}
    assert sum(summary["reasons"].values()) >= summary["rejected"]
    assert list(summary["activities"]) == list(PROMPTS)  # in the prompt file's order
    for activity, texts in PROMPTS.items():
        kept = sum(key[0] in texts for key in mixed)
        assert summary["activities"][activity] == {"kept": kept, "rejected": 4 - kept}


def test_shards_index_and_imu(datasets):
    out = datasets["root"] / "mixed"
    index = lines(out / INDEX_FILE)
    assert [(row["shard"], row["row"]) for row in index] == [divmod(k, 3) for k in range(len(index))]
    shards = sorted(out.glob("shard_*.npz"))
    assert [path.name for path in shards] == [shard_path(out, n).name for n in range(-(-len(index) // 3))]
    for number, path in enumerate(shards):
        rows = min(3, len(index) - 3 * number)
        with np.load(path) as shard:
            assert shard["imu"].shape == (rows, T_IMU, 6) and shard["imu"].dtype == np.float32
            assert shard["joints"].shape == (rows, FRAMES, 22, 3) and shard["joints"].dtype == np.float32
    sensor = devices.device("bmi270")
    pipeline = WristIMUPipeline(placement="left_wrist", motion_fps=FPS, target_hz=50.0, sensor=sensor)
    lsb = torch.tensor([sensor.accelerometer.lsb] * 3 + [sensor.gyroscope.lsb] * 3)
    for (prompt, sample), (row, imu, joints) in stored_clips(out).items():
        activity = next(name for name, texts in PROMPTS.items() if prompt in texts)
        assert row["activity"] == activity and row["safety"] == safety_of(activity) and row["length"] == FRAMES
        assert row["seed"] == generate.stable_seed(SEED, prompt, sample)
        assert np.isfinite(imu).all()
        # One clip alone, draws from its stored seed: the batched run's signal to within one quantisation step.
        draws = {key: value[None] for key, value in pipeline.draw(T_IMU, torch.Generator().manual_seed(row["seed"])).items()}
        again = pipeline(torch.from_numpy(joints)[None], draws)[0]
        assert ((again - torch.from_numpy(imu)).abs() <= lsb + 1e-6).all()


def test_the_reader_gives_the_generated_labels(datasets):
    out = datasets["root"] / "loose"  # both activities
    dataset = GeneratedIMUDataset(out)
    clips = stored_clips(out)
    assert len(dataset) == len(clips)
    for item, (row, imu, _) in zip(dataset, clips.values()):
        assert item["prompt"] == row["prompt"] and item["label"] == SHARED_CLASSES.index(row["activity"])
        assert item["safety"] == SAFETY_LABELS.index(safety_of(row["activity"]))
        assert torch.equal(item["imu"], torch.from_numpy(imu))
    falls = GeneratedIMUDataset(out, classes=["falling"])
    assert len(falls) == sum(row["activity"] == "falling" for row, _, _ in clips.values()) == 4
    assert len(falls) + falls.dropped == len(dataset) and set(falls.labels.tolist()) <= {0}


def test_float16_joints_round_the_float32_ones_the_imu_came_from(datasets, mdm_run, prompts_file, tmp_path):
    generate.main([*argv(mdm_run, prompts_file, tmp_path, *[f"--quality={q}" for q in LOOSE]), "--joints-dtype", "float16"])
    half, full = stored_clips(tmp_path), stored_clips(datasets["root"] / "loose")
    assert half.keys() == full.keys()
    for key, (_, imu, joints) in half.items():
        assert joints.dtype == np.float16 and np.array_equal(joints, full[key][2].astype(np.float16))
        assert np.array_equal(imu, full[key][1])


def test_a_non_finite_imu_rejects_its_sample(mdm_run):
    class FirstClipNaN(WristIMUPipeline):
        def __call__(self, joints, draws=None):
            imu = super().__call__(joints, draws)
            imu[0] = float("nan")
            return imu

    module = generate.load_mdm(mdm_run, mdm_run / "checkpoints" / "last.ckpt")
    pipeline = FirstClipNaN(motion_fps=FPS, sensor=devices.device("bmi270"))
    batch = [("walking", "safe", "a person walks forward.", 0), ("walking", "safe", "a person walks forward.", 1)]
    reasons, joints, imu, seeds = generate.simulate_batch(
        module, pipeline, batch, frames=FRAMES, seed=SEED, scale=2.5, ddim_steps=5,
        thresholds=generate.quality_thresholds(LOOSE))
    assert reasons == [[generate.IMU_REASON], []]
    assert joints.shape == (2, FRAMES, 22, 3) and imu.shape == (2, T_IMU, 6) and torch.isfinite(imu[1]).all()
    assert seeds == [generate.stable_seed(SEED, "a person walks forward.", k) for k in (0, 1)]


def test_resume_after_lost_and_torn_index_lines(datasets, mdm_run, prompts_file, tmp_path):
    source = datasets["root"] / "mixed"
    out = tmp_path / "copy"
    out.mkdir()
    for path in source.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    expected = snapshot(out)
    index = (out / INDEX_FILE).read_text().splitlines(keepends=True)
    (out / INDEX_FILE).write_text("".join(index[:-2]) + '{"shard": 0, "ro')  # two lost lines and a torn one
    (out / SUMMARY_FILE).unlink()
    shard_path(out, 7).write_bytes(b"left by an interrupted commit")
    (out / "shard_00001.npz.partial").write_bytes(b"an interrupted shard write")
    generate.main(argv(mdm_run, prompts_file, out, f"--quality=max_bone_length_cv={datasets['threshold']}"))
    assert snapshot(out) == expected


def test_a_stopped_run_resumes_to_the_same_bytes(mdm_run, prompts_file, tmp_path):
    # Batches of 2 into shards of 3: stopping after two batches leaves a full shard and a partial one.
    args = [*argv(mdm_run, prompts_file, tmp_path / "stopped", *[f"--quality={q}" for q in LOOSE]), "--batch", "2"]
    first = generate.main([*args, "--max-batches", "2"])
    assert (first["generated"], first["kept"]) == (4, 4)
    full = shard_path(tmp_path / "stopped", 0)
    with np.load(shard_path(tmp_path / "stopped", 1)) as partial:
        assert partial["imu"].shape[0] == 1
    written = (full.stat().st_ino, full.stat().st_mtime_ns)
    generate.main(args)
    assert (full.stat().st_ino, full.stat().st_mtime_ns) == written  # a full shard is never rewritten
    straight = [*argv(mdm_run, prompts_file, tmp_path / "straight", *[f"--quality={q}" for q in LOOSE]), "--batch", "2"]
    generate.main(straight)
    assert snapshot(tmp_path / "stopped") == snapshot(tmp_path / "straight")


def test_resuming_with_other_arguments_is_refused(datasets, mdm_run, prompts_file, tmp_path):
    out = datasets["root"] / "loose"
    before = snapshot(out)
    loose = [f"--quality={q}" for q in LOOSE]
    with pytest.raises(ValueError, match=r"other arguments: --seconds \(1.5 there, 2.0 now\)\. Rerun"):
        generate.main(argv(mdm_run, prompts_file, out, "--seconds", "2", *loose))
    with pytest.raises(ValueError, match=r"other arguments: --quality \(the thresholds\); --sensor \('bmi270' there"):
        generate.main(argv(mdm_run, prompts_file, out, "--sensor", "ideal"))
    other = tmp_path / "other.yaml"
    other.write_text(prompts_file.read_text().replace("circle", "square"))
    with pytest.raises(ValueError, match=r"--prompts \(the file's content\)"):
        generate.main(argv(mdm_run, other, out, *loose))
    assert snapshot(out) == before
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no meta.json"):
        generate.main(argv(mdm_run, prompts_file, tmp_path / "busy"))


def test_edited_index_is_refused(datasets, mdm_run, prompts_file, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for path in (datasets["root"] / "loose").iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    index = (out / INDEX_FILE).read_text().splitlines(keepends=True)
    (out / INDEX_FILE).write_text("".join([index[1], index[0], *index[2:]]))
    with pytest.raises(ValueError, match="line 1 points at shard 0 row 1"):
        generate.main(argv(mdm_run, prompts_file, out, *[f"--quality={q}" for q in LOOSE]))


def test_the_prompt_file_covers_the_expressible_shared_classes():
    prompts = generate.load_prompts(generate.DEFAULT_PROMPTS)
    per_activity = Counter(activity for activity, _, _ in prompts)
    assert {"walking", "running", "stairs", "sit_stand", "lying", "jumping", "falling", "stumbling",
            "fighting"} <= set(per_activity) <= set(SHARED_CLASSES) - {"other"}
    assert all(count == 10 for count in per_activity.values())
    assert all(safety == safety_of(activity) for activity, safety, _ in prompts)
    assert len({text for _, _, text in prompts}) == len(prompts)


@pytest.mark.parametrize("content, message", [
    ({"activities": {"dancing": {"safety": "safe", "prompts": ["a person dances."]}}}, "'dancing' is not a shared class"),
    ({"activities": {"falling": {"safety": "safe", "prompts": ["a person falls."]}}}, "falling needs 'safety: unsafe'"),
    ({"activities": {"walking": {"safety": "safe", "prompts": []}}}, "walking.prompts must be a non-empty list"),
    ({"activities": {"walking": {"safety": "safe", "prompts": ["a."]}, "running": {"safety": "safe", "prompts": ["a."]}}},
     r"repeated: \['a.'\]"),
    ({"walking": ["a person walks."]}, "expected 'activities:'"),
])
def test_bad_prompt_files_are_named(tmp_path, content, message):
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ValueError, match=message):
        generate.load_prompts(path)
    with pytest.raises(ValueError, match="is not a file"):
        generate.load_prompts(tmp_path / "absent.yaml")


@pytest.mark.parametrize("extra, message", [
    (["--batch", "0"], "argument --batch"),
    (["--seconds", "-1"], "argument --seconds"),
    (["--sensor", "nokia"], "argument --sensor"),
    (["--placement", "ankle"], "argument --placement"),
    (["--scale", "nan"], "argument --scale"),
    (["--quality", "tallness=2"], "--quality takes NAME=VALUE"),
    (["--quality", "max_bone_length_cv=wide"], "is not a number"),
    (["--quality", "max_bone_length_cv=-1"], "max_bone_length_cv must be a positive"),
])
def test_bad_arguments_are_named_before_any_work(tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        generate.main(["--run", str(tmp_path), "--out", str(tmp_path / "out"), *extra])
    assert not (tmp_path / "out").exists()


def test_bad_run_arguments_are_named(mdm_run, prompts_file, tmp_path):
    with pytest.raises(ValueError, match="no .hydra/config.yaml"):
        generate.main(argv(tmp_path, prompts_file, tmp_path / "out", "--ckpt", str(mdm_run / "checkpoints" / "last.ckpt")))
    with pytest.raises(ValueError, match="--ckpt .*absent.ckpt is not a file"):
        generate.main(argv(mdm_run, prompts_file, tmp_path / "out", "--ckpt", str(tmp_path / "absent.ckpt")))
    with pytest.raises(ValueError, match="--seconds 0.1 is 2 frames"):
        generate.main(argv(mdm_run, prompts_file, tmp_path / "out", "--seconds", "0.1"))
    torch.save({"weights": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        generate.main(argv(mdm_run, prompts_file, tmp_path / "out", "--ckpt", str(tmp_path / "plain.ckpt")))
    with pytest.raises(ValueError, match="--ddim-steps 51 exceeds the model's 50 steps"):
        generate.main(argv(mdm_run, prompts_file, tmp_path / "out", "--ddim-steps", "51"))
    assert not (tmp_path / "out").exists()
