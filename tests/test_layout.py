"""The house rules, read from the source: which stage may import what, no cycles, small modules,
and ruff and mypy clean.

Every import counts, the ones inside functions too (a lazy import is still a dependency). The
stages of the flow, lowest first, are listed in ``STAGES``; a module may import its own stage
and the stages below it, never one above (``tuner/__init__.py``, the public API, is the top).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tuner"
PLUGINS = ROOT / "plugins"
MAX_LINES = 700

# stage -> rank; the foundation is tuner's top-level private modules and errors
STAGES = {"foundation": 0, "data": 1, "train": 2, "model": 3, "testing": 4, "study": 5, "tracking": 6,
          "api": 7, "cli": 8, "top": 9}
# third-party libraries and the only stages allowed to import them
LIBRARY_HOMES = {
    "optuna": {"study", "testing"},
    "mlflow": {"tracking", "model"},
    "click": {"cli"},
    "sqlalchemy": {"study"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def tuner_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> str:
    parts = module.split(".")
    if module in ("tuner", "tuner.__main__"):  # the package and `python -m tuner`, the command line's entry
        return "top"
    if len(parts) >= 2 and parts[1] in STAGES and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "foundation"


def imports_of(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports, absolute, with its line: top-level and lazy alike."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from tuner.study import _search` names a module
                yield f"{target}.{alias.name}", node.lineno


def tuner_edges() -> dict[str, set[tuple[str, int]]]:
    """Module -> the tuner modules it imports (names resolved to the module that defines them)."""
    modules = tuner_modules()
    edges: dict[str, set[tuple[str, int]]] = {}
    for name, path in modules.items():
        found: set[tuple[str, int]] = set()
        for target, line in imports_of(path, name):
            if target in modules and target != name:
                found.add((target, line))
        edges[name] = found
    return edges


def test_every_module_is_at_most_700_lines() -> None:
    too_long = {str(p.relative_to(ROOT)): n for p in [*PACKAGE.rglob("*.py"), *PLUGINS.rglob("*.py")]
                if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_no_module_imports_a_stage_above_its_own() -> None:
    wrong = []
    for name, targets in tuner_edges().items():
        here = stage_of(name)
        for target, line in targets:
            there = stage_of(target)
            if STAGES[there] > STAGES[here]:
                wrong.append(f"{name}:{line} ({here}) imports {target} ({there})")
    assert not wrong, "imports against the flow:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("library", sorted(LIBRARY_HOMES))
def test_each_library_is_imported_only_by_its_stages(library: str) -> None:
    homes = LIBRARY_HOMES[library]
    wrong = []
    for name, path in tuner_modules().items():
        for target, line in imports_of(path, name):
            if target.split(".")[0] == library and stage_of(name) not in homes:
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, f"{library} imported outside {sorted(homes)}:\n" + "\n".join(sorted(set(wrong)))


def test_sqlalchemy_is_built_in_the_storage_modules_alone() -> None:
    """The storage layer: URLs, engines and stores (``_storage``), this process's engines and
    SQLite files (``_connections``)."""
    users = {name for name, path in tuner_modules().items()
             if any(t.split(".")[0] == "sqlalchemy" for t, _ in imports_of(path, name))}
    assert users <= {"tuner.study._storage", "tuner.study._connections"}, users


def test_the_trainer_imports_no_study_tracking_or_cli_library() -> None:
    banned = {"optuna", "mlflow", "click", "sqlalchemy"}
    wrong = [f"{name} imports {t}" for name, path in tuner_modules().items() if stage_of(name) == "train"
             for t, _ in imports_of(path, name) if t.split(".")[0] in banned]
    assert not wrong, wrong


def test_there_is_no_import_cycle() -> None:
    edges = {name: {t for t, _ in targets} for name, targets in tuner_edges().items()}
    # a package's __init__ importing its own submodules is how re-exports work; a submodule
    # importing its package's __init__ back is the cycle this test is for
    cycles = _strongly_connected(edges)
    assert not cycles, "import cycles (lazy imports included): " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative; only the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_built_in_plugins_use_the_public_api_only() -> None:
    """The built-ins register the way a third party does, so they import only ``tuner``'s public names."""
    wrong = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for target, line in imports_of(path, "logreg_tuner_plugins." + path.stem):
            if target.startswith("tuner.") and not target.startswith(("tuner.testing", "tuner.errors")):
                parent, _, leaf = target.rpartition(".")
                if parent == "tuner" and not leaf.startswith("_"):
                    continue  # `from tuner import Penalty` yields tuner.Penalty: a public name
                wrong.append(f"{path.name}:{line} imports {target}")
    assert not wrong, wrong


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: `pip install -e '.[test]'` installs it"
    return found


def test_ruff_is_clean() -> None:
    proc = subprocess.run([_tool("ruff"), "check", "tuner", "plugins", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_mypy_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
