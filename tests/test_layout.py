"""The shape of the package: imports go one way, modules stay readable, notebooks keep to the public API."""

import ast
import json
from pathlib import Path

import modaverse_lite as mv

PACKAGE = Path(mv.__file__).resolve().parent
NOTEBOOKS = PACKAGE.parent / "notebooks"
MAX_LINES = 550


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The package modules one import statement names (``from . import media`` → ``modaverse_lite.media``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE.name]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
        if base.split(".")[0] != PACKAGE.name:
            return []
    else:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
    names = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    return names or [base]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for node in tree.body:
            edges.update(_imported(node, name, path.name == "__init__.py", set(modules)))
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_the_package_imports_have_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else path + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_cycle_walker_finds_a_cycle(tmp_path, monkeypatch):
    """The walker itself: a made-up package whose two modules import each other is caught."""
    fake = tmp_path / PACKAGE.name
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from . import b\n")
    (fake / "b.py").write_text("from .a import thing\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = _graph()
    assert graph[f"{PACKAGE.name}.a"] == {f"{PACKAGE.name}.b"} and graph[f"{PACKAGE.name}.b"] == {f"{PACKAGE.name}.a"}


def test_package_imports_sit_at_the_top_of_their_file():
    """A function-level import of another package module is how an import cycle hides: there are none."""
    hidden = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                if isinstance(node, ast.ImportFrom) and node.level or _imported(node, name, False, set()):
                    hidden.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not hidden, f"package imports inside functions: {hidden}"


def test_every_module_is_readable_in_one_sitting():
    sizes = {str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines())
             for p in _modules().values()}
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _api_problems(source: str) -> list[str]:
    """Everything in a code cell that reaches into the package past ``mv.<public name>``."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE.name:
            problems.append(f"line {node.lineno}: from {node.module} import … (use `import {PACKAGE.name} as mv`)")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE.name and (alias.name != PACKAGE.name or alias.asname != "mv"):
                    problems.append(f"line {node.lineno}: import {alias.name} (use `import {PACKAGE.name} as mv`)")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "mv":
            if node.attr not in mv.__all__:
                problems.append(f"line {node.lineno}: mv.{node.attr} is not in modaverse_lite.__all__")
    return problems


def test_notebooks_use_only_the_public_api():
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    found = {}
    for notebook in notebooks:
        problems = [p for source in _code_cells(notebook) for p in _api_problems(source)]
        if problems:
            found[notebook.name] = problems
    assert not found, found


def test_the_api_checker_catches_a_private_name():
    assert _api_problems("import modaverse_lite as mv\nmv.align_train") == []
    assert _api_problems("import modaverse_lite as mv\nmv.train.align_train")
    assert _api_problems("from modaverse_lite.train import align_train")
    assert _api_problems("import modaverse_lite")


def test_the_public_api_is_small_and_every_name_exists():
    assert 20 <= len(mv.__all__) <= 40, len(mv.__all__)  # one name per idea a notebook teaches
    assert len(set(mv.__all__)) == len(mv.__all__)
    missing = [name for name in mv.__all__ if not hasattr(mv, name)]
    assert not missing, missing
