"""The instruction JSONL schema: round trips, and errors that name the field (and the line of a file)."""

import json

import pytest

from datamodules.instructions.schema import (
    Clip,
    InstructionExample,
    RealIMU,
    VirtualIMU,
    append_jsonl,
    read_jsonl,
)

SPEC = VirtualIMU(motion_source="procedural", clip_id="seed=0,index=3,duration_s=4.0", placement="left_wrist",
                  sensor="bmi270", seed=7)
FILE = RealIMU(path="imu/trial.csv", format="csv", rate_hz=50)


def example(**changes) -> InstructionExample:
    fields = dict(id="ex-1", source="test", prompt_type="description", instruction="What happens?",
                  response="The person falls — unsafe.", clip=Clip(activity="falling", safety="unsafe", imu=SPEC,
                                                                     video="frames/clip-3"))
    return InstructionExample(**{**fields, **changes})


def test_json_round_trip_of_every_kind():
    comparative = example(id="ex-2", prompt_type="comparative",
                          compared_with=Clip(activity="walking", safety="safe", imu=FILE))
    for original in (example(), comparative):
        line = original.to_json()
        assert "\n" not in line and "—" in line  # one line, non-ASCII kept
        assert InstructionExample.from_json(line) == original
    data = json.loads(comparative.to_json())
    assert data["activity"] == "falling" and data["imu"]["kind"] == "virtual" and data["imu"]["target_hz"] == 50.0
    assert data["compared_with"] == {"activity": "walking", "safety": "safe", "video": None,
                                     "imu": {"kind": "file", "path": "imu/trial.csv", "format": "csv", "rate_hz": 50.0}}


def test_target_hz_defaults_when_absent():
    data = json.loads(example().to_json())
    del data["imu"]["target_hz"]
    assert InstructionExample.from_dict(data).clip.imu.target_hz == 50.0


def test_append_and_read_jsonl(tmp_path):
    path = tmp_path / "sub" / "examples.jsonl"
    assert append_jsonl(path, [example(id="a")]) == 1
    assert append_jsonl(path, [example(id="b"), example(id="c", prompt_type="causal_counterfactual")]) == 2
    assert [e.id for e in read_jsonl(path)] == ["a", "b", "c"]
    assert len(path.read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="InstructionExample"):
        append_jsonl(path, [{"id": "d"}])


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(prompt_type="summary"), "prompt_type"),
    (lambda d: d.update(activity="dancing"), "activity"),
    (lambda d: d.update(safety="safe"), "safety"),  # falling is unsafe
    (lambda d: d.update(response="  "), "response"),
    (lambda d: d.pop("instruction"), "instruction"),
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d.update(video=""), "video"),
    (lambda d: d["imu"].update(sensor="unknown"), "imu.sensor"),
    (lambda d: d["imu"].update(placement="ankle"), "imu.placement"),
    (lambda d: d["imu"].update(seed=-1), "imu.seed"),
    (lambda d: d["imu"].update(kind="hologram"), "imu"),
    (lambda d: d.update(imu={"kind": "file", "path": "x.bin", "format": "bin", "rate_hz": 50}), "imu.format"),
    (lambda d: d.update(imu={"kind": "file", "path": "x.npy", "format": "npy", "rate_hz": 0}), "imu.rate_hz"),
    (lambda d: d.update(compared_with={"activity": "walking", "safety": "safe", "video": None, "imu": d["imu"]}),
     "compared_with"),  # only comparative examples compare
    (lambda d: d.update(prompt_type="comparative"), "compared_with"),
    (lambda d: d.update(prompt_type="comparative", compared_with={
        "activity": "walking", "safety": "unsafe", "video": None, "imu": d["imu"]}), "compared_with.safety"),
])
def test_bad_lines_name_the_line_and_field(tmp_path, edit, field):
    data = json.loads(example().to_json())
    edit(data)
    path = tmp_path / "bad.jsonl"
    path.write_text(example(id="fine").to_json() + "\n" + json.dumps(data) + "\n")
    with pytest.raises(ValueError, match=rf"bad.jsonl line 2: .*{field}"):
        read_jsonl(path)


def test_file_level_errors(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        read_jsonl(tmp_path / "absent.jsonl")
    path = tmp_path / "broken.jsonl"
    path.write_text(example().to_json() + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_jsonl(path)
    path.write_text(example().to_json() + "\n" + example().to_json() + "\n")
    with pytest.raises(ValueError, match="line 2: id 'ex-1' repeats line 1"):
        read_jsonl(path)
    with pytest.raises(ValueError, match="not valid JSON"):
        InstructionExample.from_json("{")
