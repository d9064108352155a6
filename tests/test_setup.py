"""What a newcomer meets: the README's two commands, CI calling them, conda and pip agreeing."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    reqs = [line.strip()[2:] for line in pip_block.splitlines() if line.strip().startswith("- ")]
    return {_name(r): r.replace(" ", "") for r in reqs if not r.startswith("-e")}


def test_environment_yml_installs_the_same_set_as_pyproject():
    pip, conda = _pyproject_requirements(), _conda_pip_requirements()
    assert set(pip) == set(conda), f"only in pyproject: {set(pip) - set(conda)}; only in environment.yml: " \
                                   f"{set(conda) - set(pip)}"
    for name, req in pip.items():
        if name == "torch":  # conda pins the CPU build; pyproject takes any torch >= its floor
            assert conda[name] == "torch==2.13.0"
            continue
        assert conda[name] == req, f"{name}: pyproject says {req!r}, environment.yml says {conda[name]!r}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make tutorial" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call `make test`, the README's test command"


def test_makefile_pins_cpu_torch_before_installing():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile
    assert makefile.index("torch==2.13.0") < makefile.index('pip install -e ".[notebooks,dev]"')


def test_generated_data_is_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for path in ("runs/", ".cache/", ".venv/"):
        assert path in ignored
