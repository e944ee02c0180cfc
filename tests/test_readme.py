from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = [block.split("```")[0].strip() for block in readme.split("```bash\n")[1:]]
    setup = blocks[:2]  # the two set-up commands, in order: main job, tests
    assert setup[0].endswith("train.py") and "pytest" in setup[1]
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert setup[1] in ci_commands
