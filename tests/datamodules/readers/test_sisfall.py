import math

import numpy as np
import pytest

from datamodules.readers.base import RecordingFileError
from datamodules.readers.sisfall import load_sisfall, read_sisfall_file
from tests.datamodules.readers.fall_fixtures import (
    SHARED_DATA,
    STANDARD_GRAVITY,
    sisfall_counts,
    sisfall_text,
    write_sisfall,
)

# By hand from the readme's activity table (see the reader's docstring for the fainting decision).
EXPECTED_LABELS = {
    **{code: "walking" for code in ("D01", "D02")},
    **{code: "running" for code in ("D03", "D04")},
    **{code: "stairs" for code in ("D05", "D06")},
    **{code: "sit_stand" for code in ("D07", "D08", "D09", "D10", "D11")},
    **{code: "lying" for code in ("D12", "D13", "D14")},
    **{code: "other" for code in ("D15", "D16", "D17")},
    "D18": "stumbling",
    "D19": "jumping",
    **{f"F{i:02d}": "falling" for i in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)},
    **{f"F{i:02d}": "fainting" for i in (6, 7, 13, 14, 15)},
}
GYRO_RAD_S = 1000 * 4000 / 65536 * math.pi / 180
"""1000 ITG3200 counts: 1000 · (2·2000 °/s / 2^16) = 61.03515625 °/s, in rad/s."""
TOL = 1e-9
"""m/s² and rad/s: a constant passes the 200 Hz → 50 Hz polyphase decimation exactly up to rounding."""


def test_constant_counts_convert_to_si_and_resample_to_the_requested_rate(tmp_path):
    path = write_sisfall(tmp_path, "D01_SA01_R01.txt", sisfall_text(sisfall_counts(401)))
    recording = read_sisfall_file(path)
    # 401 samples at 200 Hz decimated by 4: ceil(401 / 4) = 101 samples at 50 Hz.
    assert recording.fs == 50.0 and recording.acc.shape == (101, 3) and recording.gyro.shape == (101, 3)
    np.testing.assert_allclose(recording.acc, np.tile([0.0, 0.0, STANDARD_GRAVITY], (101, 1)), rtol=0, atol=TOL)
    np.testing.assert_allclose(recording.gyro, np.tile([GYRO_RAD_S, 0.0, 0.0], (101, 1)), rtol=0, atol=TOL)
    names = (recording.dataset, recording.subject, recording.activity, recording.trial)
    assert names == ("sisfall", "SA01", "D01", "R01")
    assert (recording.label, recording.safety, recording.position) == ("walking", "safe", "waist")
    assert recording.source == str(path)


@pytest.mark.parametrize(("fs", "length"), [(200.0, 401), (100.0, 201), (50.0, 101), (20.0, 41)])
def test_output_length_is_ceil_of_input_length_times_rate_ratio(tmp_path, fs, length):
    path = write_sisfall(tmp_path, "D05_SE02_R03.txt", sisfall_text(sisfall_counts(401)))
    recording = read_sisfall_file(path, fs=fs)
    assert recording.fs == fs and recording.acc.shape == (length, 3)
    assert recording.subject == "SE02" and recording.trial == "R03"


def test_mma8451q_counts_use_its_own_scale(tmp_path):
    # ±8 g 14-bit MMA8451Q: 16 / 16384 g per count, so 512 counts = 0.5 g; the ADXL345 columns hold 1 g.
    path = write_sisfall(tmp_path, "D01_SA01_R01.txt", sisfall_text(sisfall_counts(81, mma=(512, 0, 887))))
    recording = read_sisfall_file(path, accelerometer="MMA8451Q")
    expected = np.array([512, 0, 887]) * 16 / 2**14 * STANDARD_GRAVITY
    np.testing.assert_allclose(recording.acc, np.tile(expected, (21, 1)), rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="accelerometer"):
        read_sisfall_file(path, accelerometer="LIS3DH")


def test_every_activity_code_maps_to_its_shared_class(tmp_path):
    assert len(EXPECTED_LABELS) == 34
    text = sisfall_text(sisfall_counts(40))
    for code in EXPECTED_LABELS:
        write_sisfall(tmp_path, f"{code}_SA01_R01.txt", text)
    report = load_sisfall(tmp_path)
    assert report.skipped == []
    assert {recording.activity: recording.label for recording in report.recordings} == EXPECTED_LABELS


def test_folder_loading_skips_and_reports_a_bad_file(tmp_path):
    text = sisfall_text(sisfall_counts(40))
    write_sisfall(tmp_path, "D01_SA01_R01.txt", text)
    write_sisfall(tmp_path, "F01_SA02_R01.txt", text)
    bad = write_sisfall(tmp_path, "D02_SA02_R01.txt", text + "   17, -179,  -99")
    report = load_sisfall(tmp_path)
    assert sorted(recording.source for recording in report.recordings) == sorted(
        str(tmp_path / sub / name) for sub, name in (("SA01", "D01_SA01_R01.txt"), ("SA02", "F01_SA02_R01.txt"))
    )
    assert len(report.skipped) == 1 and report.skipped[0][0] == str(bad) and "truncated" in report.skipped[0][1]
    with pytest.raises(RecordingFileError, match="D02_SA02_R01.txt"):
        load_sisfall(tmp_path, on_error="raise")
    assert len(load_sisfall(tmp_path, positions=())) == 0
    with pytest.raises(ValueError, match="positions"):
        load_sisfall(tmp_path, positions=("wrist",))
    with pytest.raises(FileNotFoundError):
        load_sisfall(tmp_path / "absent")


GOOD = sisfall_text(sisfall_counts(40))
BAD_FILES = {
    "line without ';'": (GOOD + "   17, -179,  -99,  -18, -504, -352,   76, -697, -27\n", "does not end with ';'"),
    "line with 8 values": (GOOD + "   17, -179,  -99,  -18, -504, -352,   76, -697;\n", "8 values"),
    "not a number": (GOOD.replace("256", "2x6", 1), "not integer"),
    "empty file": ("", "0 samples"),
    "one sample": (sisfall_text(sisfall_counts(1)), "1 samples"),
    "acc already in g": (sisfall_text(sisfall_counts(40, adxl=(0, 0, 1))), "median |acc|"),
    "gyro beyond rad/s": (sisfall_text(sisfall_counts(40, gyro=(30000, 0, 0))), "median |gyro|"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_raises_an_error_naming_it(tmp_path, case):
    text, reason = BAD_FILES[case]
    path = write_sisfall(tmp_path, "D01_SA01_R01.txt", text)
    with pytest.raises(RecordingFileError, match=reason) as error:
        read_sisfall_file(path)
    assert error.value.path == str(path) and str(error.value).startswith(str(path))


@pytest.mark.parametrize(("name", "reason"), [("walk_SA01.txt", "file name"), ("D20_SA01_R01.txt", "unknown activity")])
def test_bad_file_name_raises(tmp_path, name, reason):
    path = tmp_path / name
    path.write_text(GOOD)
    with pytest.raises(RecordingFileError, match=reason):
        read_sisfall_file(path)


@pytest.mark.skipif(
    not (SHARED_DATA / "sisfall").is_dir(), reason=f"SisFall not in {SHARED_DATA} (shared data folder lacks it)"
)
def test_real_sisfall_files_read_with_gravity_at_rest():
    paths = sorted((SHARED_DATA / "sisfall").rglob("D07_SA01_R0*.txt"))[:2]
    assert paths, "expected SA01's D07 (sit in a chair) trials"
    for path in paths:
        recording = read_sisfall_file(path)
        # Sitting still for seconds: the median magnitude is gravity within the ADXL345's ±4 % sensitivity spread.
        assert abs(np.median(np.linalg.norm(recording.acc, axis=1)) - STANDARD_GRAVITY) < 0.1 * STANDARD_GRAVITY
