"""The package's shape holds: every import (at the top of a module or inside a function) goes to
the same package or one below it, no modules import each other in a circle, and no file grows
past 400 lines. The layers, lowest first, are those of ``docs/guide.md`` ("The map")."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tamis"
# A package may import its own modules and those of any package of a lower rank; packages of
# the same rank (the stages) do not import each other.
RANKS = {
    "base": 0,
    "data": 1,
    "model": 2,
    "scorers": 3,
    "select": 4,
    "clear": 4,
    "predict": 4,
    "transfer": 4,
    "report": 5,
    "engines": 6,
    "cli": 7,
}
MAX_LINES = 400


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The tamis modules ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tamis" or node.module.startswith("tamis."):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tamis"))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        # "from tamis.x import y" names module tamis.x.y when y is a module, else tamis.x
        graph[name] = {m for m in _imports(path) if m in files and m != name}
    return graph


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else None


def test_every_module_is_in_a_ranked_package():
    loose = [m for m in _graph() if _package(m) is None and m not in ("tamis", "tamis.__main__")]
    assert loose == [], f"modules outside the packages of RANKS: {loose}"


def test_imports_go_down_or_sideways_within_a_package():
    upward = []
    for module, deps in _graph().items():
        here = _package(module)
        if here is None:  # the package root (the public API) and __main__ may import anything
            continue
        for dep in deps:
            there = _package(dep)
            if dep == "tamis" or there is None:
                upward.append(f"{module} -> {dep} (the package root)")
            elif there != here and RANKS[there] >= RANKS[here]:
                upward.append(f"{module} -> {dep}")
    assert upward == [], "imports that go up or across:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = _graph()
    circles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                circles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package's __init__ re-exporting its own modules is not a circle of behaviour
    circles = [c for c in circles if not _reexport(c, graph)]
    assert circles == [], "import circles:\n" + "\n".join(circles)


def _reexport(circle: str, graph) -> bool:
    nodes = circle.split(" -> ")
    return any(n == _package_init(n, graph) for n in nodes[:-1])


def _package_init(module: str, graph) -> str | None:
    parts = module.split(".")
    return module if len(parts) == 2 and parts[1] in RANKS else None


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_file_over_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)}: {lines} lines; split it by concern"


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    # the check itself: a stage importing a job, and two modules in a circle, are found
    pkg = tmp_path / "tamis"
    for sub in ("base", "engines"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "base" / "a.py").write_text("def f():\n    from tamis.engines.b import g\n")
    (pkg / "engines" / "b.py").write_text("from tamis.base.a import f\n")
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    with pytest.raises(AssertionError, match=r"tamis.base.a -> tamis.engines.b"):
        test_imports_go_down_or_sideways_within_a_package()
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circles()
