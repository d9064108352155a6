"""What a newcomer meets: the README's two commands, CI calling them, one lock that pip, conda and Colab agree on."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from modaverse_lite import tutorial

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-cpu.lock"
#: What the notebooks use on Colab: the Colab install cell pins each at the lock's version.
COLAB_PINNED = {"transformers", "peft", "diffusers", "accelerate", "tokenizers", "huggingface-hub", "safetensors",
                "ipywidgets"}


def _locked() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{LOCK.name}: {line!r} is not an exact pin"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def _conda_pip_entries() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    return pip


def _make(*args: str) -> str:
    """What make would run, printed and not run (-n), whatever is installed already (-B)."""
    done = subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def test_the_lock_pins_every_dependency_inside_its_range():
    locked = _locked()
    for req in _pyproject_requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} ({req}) is in pyproject.toml but not in {LOCK.name}: run `make lock`"
        assert req.specifier.contains(locked[name], prereleases=True), \
            f"{LOCK.name} pins {name}=={locked[name]}, outside pyproject.toml's {req}: run `make lock`"
    assert "imageio-ffmpeg" in locked, "imageio[ffmpeg]'s extra is locked too"


def test_the_lock_takes_the_cpu_build_of_torch_and_no_cuda_packages():
    locked = _locked()
    assert locked["torch"].local == "cpu", f"torch=={locked['torch']}: the lock is the CPU build"
    cuda = sorted(n for n in locked if n.startswith(("nvidia-", "triton", "cuda-")))
    assert not cuda, f"the CPU lock must not pull CUDA packages: {cuda}"


def test_environment_yml_pins_what_the_lock_pins():
    entries = _conda_pip_entries()
    assert f"-c {LOCK.name}" in entries, "every package pip pulls in comes from the lock too"
    assert "-e ." in entries
    pins = {canonicalize_name(Requirement(e).name): Requirement(e) for e in entries if not e.startswith("-")}
    wanted = {canonicalize_name(r.name): r for r in _pyproject_requirements()}
    assert set(pins) == set(wanted), f"only in pyproject: {set(wanted) - set(pins)}; only in environment.yml: " \
                                     f"{set(pins) - set(wanted)}"
    locked = _locked()
    for name, req in pins.items():
        assert str(req.specifier) == f"=={locked[name]}", f"environment.yml: {req}; the lock: {name}=={locked[name]}"
        assert req.extras == wanted[name].extras, f"environment.yml: {req} lost the extras of {wanted[name]}"


def test_colab_install_cells_pin_the_locks_versions():
    locked = _locked()
    for notebook in tutorial.NOTEBOOKS:
        nb = nbformat.read(notebook, as_version=4)
        (cell,) = [c for c in nb.cells if c.cell_type == "code" and '"google.colab" in sys.modules' in c.source]
        strings = [n.value for n in ast.walk(ast.parse(cell.source))
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        (package,) = [s for s in strings if s.startswith("modaverse_lite")]
        assert Requirement(package).extras == {"notebooks"} and package.endswith(f"@ git+{tutorial.REPO_URL}")
        pins = {canonicalize_name(Requirement(s).name): Requirement(s) for s in strings if "==" in s}
        assert set(pins) == COLAB_PINNED, f"{notebook.name} pins {sorted(pins)}; expected {sorted(COLAB_PINNED)}"
        for name, req in pins.items():
            assert str(req.specifier) == f"=={locked[name]}", \
                f"{notebook.name}: {req}, but {LOCK.name} says {name}=={locked[name]}"
        assert not any(s.startswith("torch") for s in strings), "Colab keeps its own CUDA build of torch"


def test_this_environment_is_the_lock():
    """What the tests run in is what `make` installed: every locked package at its locked version (with a GPU,
    where the Makefile keeps the platform's torch, torch may be another one)."""
    wrong = []
    gpu = shutil.which("nvidia-smi") is not None  # the Makefile's own test
    for name, version in _locked().items():
        if name == "torch" and gpu:
            continue
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} (missing)")
            continue
        if installed != version:
            wrong.append(f"{name} {installed} (locked {version})")
    assert not wrong, f"not the lock's versions: {wrong}; `make install` installs the lock"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make tutorial" in readme and "make test" in readme and "make lock" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call `make test`, the README's test command"


def test_makefile_installs_the_cpu_torch_first_then_exactly_the_lock():
    script = _make("install")
    torch = f"torch=={_locked()['torch']}"
    cpu_torch = script.index(f'pip install --no-deps --no-index "{torch}"')
    lock = script.index(f"pip install -r {LOCK.name}")
    project = script.index("pip install --no-deps -e .")
    assert cpu_torch < lock < project, "torch's CPU build, then the lock, then this project without new packages"
    gpu = script.index("command -v nvidia-smi")
    assert gpu < cpu_torch and f"grep -v '^torch==' {LOCK.name}" in script, "with a GPU the platform's torch stays"


def test_make_lab_opens_the_notebooks_with_the_tutorials_cache_and_the_stripping_config(tmp_path):
    """`make lab` run for real, with stand-ins for the venv's python and jupyter that print what they were given."""
    for tool in ("python", "jupyter"):
        script = tmp_path / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $* cache=$MODAVERSE_CACHE"\n')
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MODAVERSE_CACHE"}
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "lab", f"BIN={tmp_path}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    zoo, lab = done.stdout.splitlines()
    cache = f"cache={ROOT / '.cache'}"  # where `make tutorial` leaves the dataset and the checkpoint
    assert zoo == f"python -m modaverse_lite zoo {cache}"
    assert lab == f"jupyter lab --config=jupyter_server_config.py --ServerApp.root_dir=notebooks {cache}"
    assert "modaverse_lite.tutorial.strip_on_save" in (ROOT / "jupyter_server_config.py").read_text()


def test_make_lock_compiles_pyproject_with_uv():
    script = _make("lock")
    assert "uv pip compile pyproject.toml --extra notebooks --extra dev" in script
    assert f"-o {LOCK.name}" in script and "-c lock-constraints.txt" in script


def test_generated_data_is_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for path in ("runs/", ".cache/", ".venv/", ".lock-venv/"):
        assert path in ignored
