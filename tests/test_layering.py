"""The import rules that keep the layers apart, read from the source (every import,
those inside functions too):

- planners import only types.py, errors.py and each other (they know an objective and
  the action bounds, nothing about models or accelerators);
- models/ imports nothing from accel/ (the definitions are plain torch);
- nothing in the library imports the command package app/ (but `python -m dynaplan`);
- no module imports itself through a circle of others.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dynaplan"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The dynaplan modules `name` imports (a `from X import y` counts as X.y where that is
    a module, else X)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}


def test_the_graph_is_read():
    assert "dynaplan.types" in GRAPH["dynaplan.planners.cem"]
    assert "dynaplan.accel.native_build" in GRAPH["dynaplan.accel"]  # a lazy import counts


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("dynaplan.planners")))
def test_planners_import_only_types_errors_and_each_other(name):
    allowed = {"dynaplan.types", "dynaplan.errors"}
    strays = {m for m in GRAPH[name] if m not in allowed and not m.startswith("dynaplan.planners")}
    assert not strays, f"{name} imports {sorted(strays)}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("dynaplan.models")))
def test_models_import_nothing_from_the_accelerators(name):
    strays = {m for m in GRAPH[name] if m.startswith(("dynaplan.accel", "dynaplan.app"))}
    assert not strays, f"{name} imports {sorted(strays)}"


def test_the_library_never_imports_the_command_package():
    for name, found in GRAPH.items():
        if name.startswith("dynaplan.app") or name == "dynaplan.__main__":
            continue
        strays = {m for m in found if m.startswith("dynaplan.app")}
        assert not strays, f"{name} imports {sorted(strays)}"


def test_no_import_circles():
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        for other in sorted(GRAPH[name]):
            if not name.startswith(other + "."):  # a module's own package is not a circle
                visit(other, [*path, name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])
