"""The code's structure as docs/architecture.md draws it: no import cycle among flows/, tasks/,
models/ and deployments/; no import from a higher layer; no import inside a function but the
ones the page lists with their reason; and Prefect's private names (and its input-key format)
touched only in tasks/prefect_compat.py."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
ROOMS = ("flows", "tasks", "models", "deployments")
COMPAT = "tasks/prefect_compat.py"


def _section(heading: str) -> str:
    _, found, rest = ARCHITECTURE.partition(f"\n## {heading}\n")
    assert found, f"docs/architecture.md has no '## {heading}' section"
    return rest.split("\n## ", 1)[0]


def _layers() -> list[list[str]]:
    """The layers, top first: each a list of rooms (`models/rules/`) or modules."""
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", _section("Layers"), re.M)
    assert rows, "docs/architecture.md's Layers section has no table"
    return [re.findall(r"`([^`]+)`", rooms) for _, rooms in rows]


def _allowed_in_functions() -> set[tuple[str, str]]:
    """(module, top-level package it imports) for each import the page allows in a function."""
    table = _section("Layers").split("inside a function", 1)[1]
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \| .+ \|$", table, re.M)
    return {(module, name) for module, names in rows for name in re.findall(r"`([^`]+)`", names)}


def _modules() -> Iterator[Path]:
    for room in ROOMS:
        yield from sorted(p for p in (ROOT / room).rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _target(dotted: str) -> str | None:
    """The file of one of caseconf's modules (or packages) named `a.b.c`, if it is one."""
    if dotted.split(".")[0] not in ROOMS:
        return None
    base = ROOT.joinpath(*dotted.split("."))
    for found in (base.with_suffix(".py"), base / "__init__.py"):
        if found.exists():
            return _name(found)
    return None


def _imports(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """(node, dotted name) for every name an import may bring in, module or attribute."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module
            for alias in node.names:
                yield node, f"{node.module}.{alias.name}"


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in _modules():
        found = edges.setdefault(_name(path), set())
        for _, dotted in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _target(dotted)
            if target is not None and target != _name(path):
                found.add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_every_module_is_in_a_layer_and_imports_only_its_own_or_lower_ones() -> None:
    layers = _layers()

    def layer_of(module: str) -> int | None:
        for at, rooms in enumerate(layers):
            for room in rooms:
                if module == room or (room.endswith("/") and module.startswith(room)):
                    return at
        return None

    unplaced = [m for m in _graph() if layer_of(m) is None and not m.endswith("__init__.py")]
    assert unplaced == []
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if (here := layer_of(module)) is not None
        and (there := layer_of(target)) is not None
        and there < here
    ]
    assert upward == []


def _function_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of each import inside a function or method."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node, dotted in _imports(function):
            if isinstance(node, ast.Import) or dotted == node.module:  # type: ignore[attr-defined]
                yield node.lineno, dotted.split(".")[0]  # type: ignore[attr-defined]


def test_no_import_inside_a_function_but_those_listed_with_their_reason() -> None:
    allowed = _allowed_in_functions()
    found = {(_name(p), package) for p in _modules() for _, package in _function_imports(p)}
    assert sorted(found - allowed) == [], "an import inside a function the page does not list"
    assert sorted(allowed - found) == [], "the page lists an import inside a function that is gone"


def test_prefect_private_names_and_key_format_only_in_the_compatibility_module() -> None:
    touched = []
    for path in _modules():
        if _name(path) == COMPAT:
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                touched.append(f"{_name(path)}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prefect"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private or any(p.startswith("_") for p in (node.module or "").split(".")):
                    touched.append(f"{_name(path)}:{node.lineno}: {node.module} {private}")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.search(r"\bsuspended-", node.value)
            ):
                touched.append(f"{_name(path)}:{node.lineno}: Prefect's input-key format")
    assert touched == []
