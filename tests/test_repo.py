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


def test_every_public_name_a_module_exports_exists_once():
    """``from dcganlib.X import *`` must not fail: each ``__all__`` names only what its module defines."""
    import importlib
    import pkgutil

    import dcganlib

    modules = [m.name for m in pkgutil.walk_packages(dcganlib.__path__, "dcganlib.") if not m.name.endswith("__main__")]
    assert len(modules) > 30  # the walk found the package's modules
    problems = {}
    for name in modules:
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", [])
        missing = [n for n in exported if not hasattr(module, n)]
        repeated = sorted({n for n in exported if exported.count(n) > 1})
        if missing or repeated:
            problems[name] = {"missing": missing, "repeated": repeated}
    assert problems == {}
