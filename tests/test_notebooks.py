"""The notebooks: committed stripped, one literal parameters cell each, linked from the README — and they run.

``test_notebooks_run`` executes every notebook headless in the tiny profile with small parameters (a smaller
dataset, a short training run), in a cache of its own that shares only the tiny zoo, so it never overwrites
the dataset or the checkpoint that ``make tutorial`` leaves behind.
"""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from jupyter_server.services.contents.filemanager import FileContentsManager
from traitlets.config import PyFileConfigLoader

from modaverse_lite import tutorial
from modaverse_lite.tutorial import NotebookError

ROOT = Path(__file__).resolve().parents[1]
#: Small enough for CI on 2 cores; the notebooks' defaults are what `make tutorial` runs.
TEST_PARAMETERS = {"profile": "tiny", "records": 2000, "steps": 60, "batch_size": 16, "train_steps": 60,
                   "n_roundtrip": 20, "preset": "quick"}  # preset: notebook 04's comparison budget
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'<>\]]+")
NOTEBOOK_IDS = [nb.name for nb in tutorial.NOTEBOOKS]
#: nbval checks the output of a cell whose code holds this comment (the other cells run, unchecked).
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


def _notebook(*cells, parameters: str | None = "x = 1") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_notebooks_are_found_in_reading_order():
    names = [nb.name for nb in tutorial.NOTEBOOKS]
    assert names[:2] == ["01_build_dataset.ipynb", "02_align_train.ipynb"]
    assert names == sorted(names) and all(nb.parent == ROOT / "notebooks" for nb in tutorial.NOTEBOOKS)


@pytest.mark.parametrize("notebook", tutorial.NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_committed_notebooks_are_stripped(notebook):
    assert tutorial.is_stripped(notebook), (
        f"{notebook.name} holds outputs, execution counts or widget state; strip it before committing: "
        f"python -c \"from modaverse_lite.tutorial import strip; strip('notebooks/{notebook.name}')\"")


@pytest.mark.parametrize("notebook", tutorial.NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_one_parameters_cell_of_literal_assignments(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3", "Colab and papermill both look for kernel python3"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} cells tagged 'parameters'; expected exactly one"
    assert tagged[0].cell_type == "code"
    names = []
    for node in ast.parse(tagged[0].source).body:
        plain = isinstance(node, ast.Assign) and len(node.targets) == 1 and type(node.targets[0]) is ast.Name
        assert plain, f"{notebook.name}: parameters cell line {node.lineno} is not `name = literal`"
        ast.literal_eval(node.value)  # raises for anything but a literal
        names.append(node.targets[0].id)
    assert {"profile", "seed"} <= set(names)
    assert list(tutorial.notebook_parameters(notebook)) == names
    # papermill reads the cell with its own (regex) parser; a quote or '=' in a comment can blind it
    assert list(papermill.inspect_notebook(str(notebook))) == names
    index = nb.cells.index(tagged[0])
    assert "get_profile(profile)" in nb.cells[index + 1].source, "the next cell builds the config from them"


@pytest.mark.parametrize("notebook", tutorial.NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_colab_install_cell_installs_this_repository(notebook):
    nb = nbformat.read(notebook, as_version=4)
    install = [c for c in nb.cells if c.cell_type == "code" and '"google.colab" in sys.modules' in c.source]
    assert len(install) == 1, f"{notebook.name}: expected one install cell guarded by google.colab"
    assert f"git+{tutorial.REPO_URL}" in install[0].source, "the install URL must be tutorial.REPO_URL"
    assert nb.cells.index(install[0]) < nb.cells.index(
        next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])))
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_readme_opens_every_notebook_in_colab():
    readme = (ROOT / "README.md").read_text()
    links = COLAB_LINK.findall(readme)
    expected = {tutorial.colab_url(nb.name) for nb in tutorial.NOTEBOOKS}
    assert links, ("README.md has no 'Open in Colab' links; add one per notebook, e.g. "
                   "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                   f"({tutorial.colab_url(tutorial.NOTEBOOKS[0].name)})")
    wrong = sorted(set(links) - expected)
    assert not wrong, (f"README Colab links to notebooks that do not exist in notebooks/ "
                       f"(or not of {tutorial.REPO_URL}): {wrong}")
    missing = sorted(expected - set(links))
    assert not missing, f"notebooks without an 'Open in Colab' link in README.md: {missing}"


def test_colab_url_points_into_the_repository():
    url = tutorial.colab_url("01_build_dataset.ipynb")
    org_repo = tutorial.REPO_URL.removeprefix("https://github.com/")
    assert url == f"https://colab.research.google.com/github/{org_repo}/blob/main/notebooks/01_build_dataset.ipynb"
    assert tutorial.colab_url(tutorial.NOTEBOOKS[0]) == tutorial.colab_url(tutorial.NOTEBOOKS[0].name)


def test_strip_removes_outputs_and_state_and_keeps_the_code(tmp_path):
    path = tmp_path / "n.ipynb"
    nb = _notebook("print('hi')")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells[1].execution_count = 3
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2024-01-01"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["papermill"] = {"parameters": {}}
    nbformat.write(nb, path)
    assert not tutorial.is_stripped(path)
    tutorial.strip(path)
    assert tutorial.is_stripped(path)
    again = nbformat.read(path, as_version=4)
    assert [c.source for c in again.cells] == [c.source for c in nb.cells]
    assert again.cells[0].metadata["tags"] == ["parameters"]
    for key in ("widgets", "papermill"):  # each kind of state alone makes a notebook unstripped
        dirty = nbformat.read(path, as_version=4)
        dirty.metadata[key] = {}
        nbformat.write(dirty, path)
        assert not tutorial.is_stripped(path)
        tutorial.strip(path)


def _run_notebook_model() -> dict:
    """A notebook as JupyterLab sends it to be saved: JSON, after a run (outputs, counts, widget state)."""
    nb = _notebook("print('hi')", "x")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells[1].execution_count = 7
    nb.cells[2].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=8)]
    nb.cells[2].execution_count = 8
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2024-01-01"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}


def test_strip_on_save_strips_a_notebook_model_and_nothing_else(tmp_path):
    model = _run_notebook_model()
    sources = ["".join(c["source"]) for c in model["content"]["cells"]]
    tutorial.strip_on_save(model=model, path="n.ipynb", contents_manager=None)
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(model["content"]))
    assert tutorial.is_stripped(path)
    again = nbformat.read(path, as_version=4)
    assert [c.source for c in again.cells] == sources and again.cells[0].metadata["tags"] == ["parameters"]
    text = {"type": "file", "format": "text", "content": "outputs: keep me"}
    tutorial.strip_on_save(model=text, path="notes.txt", contents_manager=None)
    assert text["content"] == "outputs: keep me"


def test_make_labs_jupyter_config_saves_notebooks_stripped(tmp_path):
    """The config `make lab` passes to Jupyter, loaded as Jupyter loads it: a notebook saved through the server's
    contents manager lands on disk without outputs."""
    config = PyFileConfigLoader("jupyter_server_config.py", path=str(ROOT)).load_config()
    manager = FileContentsManager(root_dir=str(tmp_path), config=config)
    assert manager.pre_save_hook is tutorial.strip_on_save
    manager.save(_run_notebook_model(), "ran.ipynb")
    assert tutorial.is_stripped(tmp_path / "ran.ipynb")
    unhooked = FileContentsManager(root_dir=str(tmp_path))  # the control: a plain server keeps the outputs
    unhooked.save(_run_notebook_model(), "kept.ipynb")
    assert not tutorial.is_stripped(tmp_path / "kept.ipynb")


def test_parameters_cell_must_be_single_and_literal(tmp_path):
    cases = {"code": _notebook(parameters="import os\nx = 1"), "call": _notebook(parameters="x = len('ab')"),
             "none": _notebook("x = 1", parameters=None)}
    twice = _notebook(parameters="x = 1")
    twice.cells.append(nbformat.v4.new_code_cell("y = 2", metadata={"tags": ["parameters"]}))
    cases["twice"] = twice
    for name, nb in cases.items():
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        with pytest.raises(NotebookError, match=f"{name}.ipynb"):
            tutorial.notebook_parameters(tmp_path / f"{name}.ipynb")
    ok = _notebook(parameters='a = 1\nb = "x"  # a comment\nc = [0.5, None]')
    nbformat.write(ok, tmp_path / "ok.ipynb")
    assert tutorial.notebook_parameters(tmp_path / "ok.ipynb") == {"a": 1, "b": "x", "c": [0.5, None]}


def test_run_rejects_unknown_names_and_parameters(tmp_path):
    with pytest.raises(NotebookError, match="stepz"):
        tutorial.run_notebooks(tmp_path, {"stepz": 3}, progress=False)
    with pytest.raises(NotebookError, match="99_nothing"):
        tutorial.run_notebooks(tmp_path, names=["99_nothing"], progress=False)
    with pytest.raises(NotebookError, match="records"):  # a value that is not of the default's type
        tutorial.run_notebooks(tmp_path, {"records": "many"}, names=["01"], progress=False)
    assert not any(tmp_path.iterdir()), "nothing runs when the request is wrong"


def test_run_names_the_notebook_and_cell_that_failed(tmp_path, monkeypatch):
    bad = tmp_path / "99_broken.ipynb"
    nbformat.write(_notebook("y = x * 2", "z = y / (x - 5)  # fails when x is 5", parameters="x = 1"), bad)
    monkeypatch.setattr(tutorial, "NOTEBOOKS", [bad])
    with pytest.raises(NotebookError) as err:
        tutorial.run_notebooks(tmp_path / "runs", {"x": "5"}, progress=False)  # a string, as from a CLI
    message = str(err.value)
    assert "99_broken.ipynb" in message and "ZeroDivisionError" in message and "z = y / (x - 5)" in message
    executed = nbformat.read(tmp_path / "runs" / "99_broken.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    assert tutorial.run_notebooks(tmp_path / "runs", {"x": 1}, progress=False)[0]["name"] == "99_broken.ipynb"


@pytest.fixture(scope="module")
def executed_notebooks(tmp_path_factory, tiny_zoo):
    """Every notebook executed once, in order, in a cache of its own that shares only the built zoo; the cache stays
    set while the tests that read the executed copies run."""
    from modaverse_lite import files

    tmp_path = tmp_path_factory.mktemp("notebooks")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "zoo").symlink_to(files.cache_dir() / "zoo", target_is_directory=True)  # share the built zoo only
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MODAVERSE_CACHE", str(cache))
        yield tutorial.run_notebooks(tmp_path / "runs", TEST_PARAMETERS, progress=False)
    shutil.rmtree(cache / "features", ignore_errors=True)


def test_notebooks_run(executed_notebooks):
    """Every notebook, in order, in the tiny profile with TEST_PARAMETERS: any error in any cell fails."""
    from modaverse_lite import files

    runs = executed_notebooks
    assert [r["name"] for r in runs] == NOTEBOOK_IDS
    for run in runs:
        executed = nbformat.read(run["output"], as_version=4)
        code = [c for c in executed.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{run['name']}: a cell did not run"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{run['name']}: {errors[0]['ename']}: {errors[0]['evalue']}"
        rich = {"image/png", "text/html"}
        shown = sum(bool(rich & set(o.get("data", {}))) for c in code for o in c.outputs)
        assert shown, f"{run['name']} shows no figure, media or table"
    checkpoint = files.default_run_dir("tiny", 0) / "checkpoint"
    saved = json.loads((checkpoint / "modaverse.json").read_text())
    assert saved["step"] == TEST_PARAMETERS["steps"] and saved["batch_size"] == TEST_PARAMETERS["batch_size"]
    timings = ", ".join(f"{r['name']} {r['seconds']:.0f} s" for r in runs)
    print(f"notebooks with {TEST_PARAMETERS}: {timings}")


def test_kernel_starts_without_the_unencrypted_tcp_warning(tmp_path, monkeypatch, capfd):
    """`make tutorial` used to print ipykernel's "running over TCP without encryption" once per notebook."""
    small = tmp_path / "98_small.ipynb"
    nbformat.write(_notebook("print(x + 1)"), small)
    monkeypatch.setattr(tutorial, "NOTEBOOKS", [small])
    tutorial.run_notebooks(tmp_path / "runs", progress=False)
    executed = nbformat.read(tmp_path / "runs" / small.name, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "2\n"
    assert "without encryption" not in capfd.readouterr().err


def test_use_drive_cache_is_a_no_op_outside_colab_and_mounts_drive_on_colab(tmp_path, monkeypatch):
    import sys
    import types

    import modaverse_lite as mv

    monkeypatch.setenv("MODAVERSE_CACHE", str(tmp_path / "local"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert mv.use_drive_cache() is None  # papermill, CI, a laptop: nothing changes
    assert mv.files.cache_dir() == tmp_path / "local"

    mounted = []
    drive = types.SimpleNamespace(mount=lambda point: mounted.append(point))
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    folder = mv.use_drive_cache(mount_point=str(tmp_path / "drive"))
    assert mounted == [str(tmp_path / "drive")]
    assert folder == tmp_path / "drive" / tutorial.DRIVE_CACHE and folder.is_dir()
    assert mv.files.cache_dir() == folder and mv.default_run_dir("tiny", 0).is_relative_to(folder)


def test_marked_outputs_are_the_same_on_a_second_run(executed_notebooks):
    """Determinism, checked by nbval: every executed notebook holding a cell marked ``# NBVAL_CHECK_OUTPUT`` runs
    once more (its parameters as papermill injected them, the same cache) and those cells must print the same."""
    marked = [r["output"] for r in executed_notebooks if NBVAL_MARK in Path(r["output"]).read_text()]
    assert marked, f"no notebook has a cell marked {NBVAL_MARK!r}"
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q",
                           "-p", "no:cacheprovider", *marked], cwd=Path(marked[0]).parent,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"a marked cell printed something else on a second run:\n{done.stdout[-4000:]}"
