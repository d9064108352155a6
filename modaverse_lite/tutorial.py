"""The notebooks, headless: run them all with papermill, keep them clean in git, link them to Colab.

Every notebook in ``notebooks/`` has exactly one cell tagged ``parameters`` holding plain literal assignments
(``profile = "auto"``, ``steps = 0``). Papermill runs a notebook with some of those values replaced, so CI, a
teacher's ``make tutorial`` and a student on Colab all execute the very same file::

    run_notebooks("runs", {"profile": "tiny", "records": 2000, "steps": 300})

Each notebook receives only the parameters its own ``parameters`` cell declares (``steps`` goes to 02, not to
01), and a name that no notebook declares is an error, so a typo never silently does nothing.

Notebooks are committed *stripped* — no outputs, no execution counts, no widget state — so a diff shows only
what a person changed; ``strip`` does it and ``is_stripped`` checks it (the tests check every notebook).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import ModaVerseError
from .files import atomic_path

#: The project's home: the Colab links and the notebooks' install cells use it (the tests keep them equal).
REPO_URL = "https://github.com/modaverse-lite/modaverse_lite"
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: The notebooks in reading order (their names start with a two-digit number).
NOTEBOOKS: list[Path] = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
KERNEL = "python3"  # the kernel name notebooks are saved with; Colab knows only this one
PARAMETERS_TAG = "parameters"


class NotebookError(ModaVerseError):
    """A notebook is malformed (its parameters cell) or raised an error while it ran."""


# ---- links -------------------------------------------------------------------------------------------------
def colab_url(name: str | os.PathLike) -> str:
    """``"01_build_dataset.ipynb"`` → the URL that opens that notebook of ``REPO_URL`` on Colab."""
    org_repo = REPO_URL.removeprefix("https://github.com/").strip("/")
    return f"https://colab.research.google.com/github/{org_repo}/blob/main/notebooks/{Path(name).name}"


# ---- Colab ---------------------------------------------------------------------------------------------------
#: Where ``use_drive_cache`` keeps the cache on Colab: a folder of the student's Google Drive.
DRIVE_MOUNT = "/content/drive"
DRIVE_CACHE = "MyDrive/modaverse_lite/cache"


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def use_drive_cache(folder: str = DRIVE_CACHE, mount_point: str = DRIVE_MOUNT) -> Path | None:
    """On Colab, keep the cache (datasets, features, checkpoints) on Google Drive; elsewhere, do nothing.

    Every Colab notebook runs in a runtime of its own, whose disk is wiped when it ends: notebook 03 would not
    find notebook 02's checkpoint and would train again. This mounts Drive (Colab asks for permission once) and
    points ``MODAVERSE_CACHE`` at ``mount_point/folder``, so every notebook of every runtime reads and writes the
    same folder. Returns that folder, or None outside Colab (papermill, CI, a laptop), where the cache stays where
    it was.
    """
    if not on_colab():
        return None
    from google.colab import drive

    drive.mount(mount_point)
    path = Path(mount_point) / folder
    path.mkdir(parents=True, exist_ok=True)
    os.environ["MODAVERSE_CACHE"] = str(path)
    print(f"the cache is on Google Drive: {path}")
    return path


# ---- the parameters cell -----------------------------------------------------------------------------------
def _read(path: str | os.PathLike):
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for a damaged file
        raise NotebookError(f"{path}: not a readable notebook ({err})") from err


def parameters_cell(nb, where: str = "notebook"):
    """The one code cell tagged ``parameters``; NotebookError if there is none or more than one."""
    cells = [c for c in nb.cells
             if c.cell_type == "code" and PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookError(f"{where}: expected exactly one code cell tagged {PARAMETERS_TAG!r}, found "
                            f"{len(cells)}; tag the cell of plain assignments (Jupyter: the Tags field)")
    return cells[0]


def notebook_parameters(path: str | os.PathLike) -> dict[str, object]:
    """The names and default values of a notebook's parameters cell, in order.

    The cell must hold only assignments of literals to plain names (``steps = 0``, ``profile = "auto"``):
    anything else (an import, a call, an expression) raises NotebookError naming the line.
    """
    path = Path(path)
    source = parameters_cell(_read(path), path.name).source
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise NotebookError(f"{path.name}: the parameters cell is not valid Python: {err}") from err
    values: dict[str, object] = {}
    for node in tree.body:
        plain = isinstance(node, ast.Assign) and len(node.targets) == 1 and type(node.targets[0]) is ast.Name
        if not plain:
            raise NotebookError(f"{path.name}: parameters cell line {node.lineno} is not `name = literal`; "
                                "keep code out of the parameters cell (put it in the next cell)")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as err:
            raise NotebookError(f"{path.name}: parameters cell line {node.lineno}: the value of "
                                f"{node.targets[0].id!r} is not a literal") from err
    return values


def _coerce(name: str, value, default, where: str):
    """A value from the command line (a string) → the type of the notebook's default."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise NotebookError(f"{where}: parameter {name}={value!r} is not a Python literal "
                                f"(the default is {default!r})") from err
    ok = (type(value) is type(default) or (isinstance(default, float) and type(value) is int)
          or default is None)
    if not ok:
        raise NotebookError(f"{where}: parameter {name}={value!r} is a {type(value).__name__}; "
                            f"the notebook's default {default!r} is a {type(default).__name__}")
    return float(value) if isinstance(default, float) else value


# ---- stripped notebooks ------------------------------------------------------------------------------------
_RUN_METADATA = ("execution", "papermill", "collapsed", "scrolled", "jp-MarkdownHeadingCollapsed")


def is_stripped(path: str | os.PathLike) -> bool:
    """True when a notebook holds no outputs, no execution counts and no widget or papermill state."""
    nb = _read(path)
    if "widgets" in nb.metadata or "papermill" in nb.metadata:
        return False
    for cell in nb.cells:
        if any(k in cell.get("metadata", {}) for k in _RUN_METADATA):
            return False
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            return False
    return True


def _strip_content(nb) -> None:
    """Outputs, execution counts and widget / papermill state out of a notebook's JSON (a dict or NotebookNode)."""
    for key in ("widgets", "papermill"):
        nb.get("metadata", {}).pop(key, None)
    for cell in nb.get("cells", []):
        for key in _RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None


def strip(path: str | os.PathLike) -> Path:
    """Remove outputs, execution counts and widget / papermill state from a notebook, in place, atomically."""
    import nbformat

    path = Path(path)
    nb = _read(path)
    _strip_content(nb)
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)
    return path


def strip_on_save(model: dict, **kwargs) -> None:
    """Jupyter's ``pre_save_hook``: a notebook is written stripped, whatever the open tab shows.

    ``make lab`` sets it (``jupyter_server_config.py``), so a class can run the notebooks in JupyterLab and the
    files stay as committed. Other files pass untouched.
    """
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        _strip_content(model["content"])


# ---- running -----------------------------------------------------------------------------------------------
@contextmanager
def _this_python_as_kernel():
    """Make kernel ``python3`` mean *this* interpreter while notebooks run.

    A ``python3`` kernelspec elsewhere (a user's ``~/.local/share/jupyter``, another environment) could
    otherwise run the notebooks in a Python without this package. A kernelspec written to a temporary folder
    at the front of ``JUPYTER_PATH`` wins over all of them; nothing is installed anywhere.
    """
    try:
        from ipykernel.kernelspec import write_kernel_spec
    except ImportError as err:
        raise NotebookError("running notebooks needs ipykernel and papermill in this environment: "
                            "pip install 'modaverse_lite[notebooks]'") from err
    with tempfile.TemporaryDirectory(prefix="modaverse-kernel-") as tmp:
        write_kernel_spec(Path(tmp) / "kernels" / KERNEL,
                          overrides={"display_name": "Python 3 (modaverse_lite)"})
        before = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([before] if before else []))
        try:
            yield KERNEL
        finally:
            if before is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = before


def _select(names) -> list[Path]:
    if not NOTEBOOKS:
        raise NotebookError(f"no notebooks found in {NOTEBOOK_DIR}; run from a checkout of {REPO_URL}")
    if not names:
        return list(NOTEBOOKS)
    chosen = []
    for name in names:
        stem = Path(str(name)).name.removesuffix(".ipynb")
        hits = [nb for nb in NOTEBOOKS if nb.stem == stem or nb.stem.startswith(stem + "_")]
        if len(hits) != 1:
            raise NotebookError(f"{name!r} names {len(hits)} notebooks; expected one of "
                                f"{[nb.stem for nb in NOTEBOOKS]} (or their number, e.g. '01')")
        chosen.append(hits[0])
    return chosen


def _failure(err, notebook: Path, output: Path) -> NotebookError:
    """A papermill error → one line naming the notebook, the cell, the error and where the traceback is."""
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    where = ""
    if getattr(err, "exec_count", None) is not None or getattr(err, "source", None):
        first = next((ln for ln in (getattr(err, "source", "") or "").splitlines() if ln.strip()), "")
        where = f" in cell In [{getattr(err, 'exec_count', '?')}] (starting {first.strip()[:60]!r})"
    return NotebookError(f"{notebook.name} failed{where}: {ename}: {evalue}. "
                         f"The executed notebook, with the full traceback, is {output}")


def _kernel_config():
    """The kernel manager's settings: CurveZMQ transport encryption wherever this pyzmq and jupyter_client have it.

    Recent ipykernels warn "Kernel is running over TCP without encryption" at every start unless the kernel
    manager provisions CurveZMQ keys; the matching jupyter_client does it with ``KernelManager.transport_encryption
    = "auto"`` for a kernelspec that declares ``supported_encryption`` (ours does: ``write_kernel_spec``). Older
    versions neither warn nor know the option, so nothing is set there; neither is it without CurveZMQ in pyzmq.
    """
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    try:
        import zmq

        curve = zmq.has("curve")
    except ImportError:
        curve = False
    if not curve or not KernelManager.class_traits().get("transport_encryption"):
        return {}
    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})}


def run_notebooks(out_dir: str | os.PathLike = "runs", parameters: dict | None = None, names=None,
                  progress: bool = True) -> list[dict]:
    """Execute notebooks in reading order with papermill; returns ``[{"name", "seconds", "output"}, ...]``.

    ``parameters`` replace the defaults of the notebooks' parameters cells; each notebook gets the ones it
    declares, and strings (from a command line) become the type of the default (``"300"`` → ``300``).
    ``names`` picks notebooks by file name, stem or number (``["01", "02_align_train"]``); default: all.
    Executed copies are written to ``out_dir/<name>``, which is also the notebooks' working folder. The first
    error stops the run with a NotebookError naming the notebook and the cell.
    """
    import papermill

    chosen = _select(names)
    parameters = dict(parameters or {})
    declared = {nb: notebook_parameters(nb) for nb in chosen}
    unknown = sorted(set(parameters) - {k for d in declared.values() for k in d})
    if unknown:
        known = sorted({k for d in declared.values() for k in d})
        raise NotebookError(f"no notebook has parameter(s) {unknown}; the parameters are {known}")
    given_to = {nb: {k: _coerce(k, v, declared[nb][k], nb.name)  # every value checked before anything runs
                     for k, v in parameters.items() if k in declared[nb]} for nb in chosen}
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with _this_python_as_kernel() as kernel:
        for nb in chosen:
            given = given_to[nb]
            output = out / nb.name
            if progress:
                shown = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "defaults"
                print(f"running {nb.name} ({shown}) → {output}", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                papermill.execute_notebook(str(nb), str(output), parameters=given, kernel_name=kernel,
                                           cwd=str(out), progress_bar=progress, log_output=False,
                                           **_kernel_config())
            except papermill.PapermillExecutionError as err:
                raise _failure(err, nb, output) from None
            except Exception as err:  # a dead kernel, a timeout: still name the notebook
                raise NotebookError(f"{nb.name} could not run: {type(err).__name__}: {err}. "
                                    f"Partial output: {output}") from err
            seconds = round(time.perf_counter() - began, 1)
            results.append({"name": nb.name, "seconds": seconds, "output": str(output)})
            if progress:
                print(f"done {nb.name} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return results
