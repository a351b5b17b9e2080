"""The README's two commands are the contract; CI must run exactly the test one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_ci_runs_exactly_the_readme_test_command():
    commands = _readme_commands()
    test_commands = [c for c in commands if "pytest" in c]
    assert len(test_commands) >= 1
    ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l and not l.startswith("#")]
    assert test_commands[0] in ci_lines


def test_requirements_pin_keras3_tensorflow():
    reqs = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^tensorflow>=2\.21,<2\.22$", reqs, re.M)
    assert re.search(r"^keras>=3", reqs, re.M)
