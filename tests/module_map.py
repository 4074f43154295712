"""docs/architecture.md's module map, made from the tree: every module of the code's rooms with
the first paragraph of its docstring, so the map says what the modules say of themselves.

    .venv/bin/python -m tests.module_map           # print the map
    .venv/bin/python -m tests.module_map --write   # write it into docs/architecture.md (make map)
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
HEADING = "## Module map\n"
#: Each room, in reading order, with what lives there.
ROOMS = {
    "flows": "what a run coordinates: one flow per deployment, and the human-step pattern",
    "tasks": "thin Prefect tasks over the rules: retries, cache policies, what the UI shows",
    "models": "the domain as plain typed functions and tables; no Prefect",
    "models/config": "",
    "models/record": "",
    "models/rules": "",
    "models/messaging": "",
    "models/reporting": "",
    "models/steps": "",
    "deployments": "operator commands, serving, production, the managers' gateway",
}


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = docstring.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if not text[1:2].isupper() else text


def module_map() -> str:
    """The map's Markdown, below its heading."""
    lines = [
        "Made from the tree by `make map` (`tests/module_map.py`): each module's own docstring.",
        "",
    ]
    for room, what in ROOMS.items():
        # A package says what it holds in its own docstring.
        what = what or _lower_first(summary(ROOT / room / "__init__.py"))
        lines += [f"### `{room}/`: {what}", ""]
        for path in sorted((ROOT / room).glob("*.py")):
            if path.name == "__init__.py":
                continue
            lines.append(f"- `{path.relative_to(ROOT).as_posix()}`: {summary(path)}")
        lines.append("")
    return "\n".join(lines)


def written_map(text: str) -> str:
    """The map as docs/architecture.md has it now."""
    _, found, rest = text.partition("\n" + HEADING)
    return rest.split("\n## ", 1)[0].strip() if found else ""


def write() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    before, found, rest = text.partition("\n" + HEADING)
    if not found:
        raise SystemExit(f"{ARCHITECTURE} has no '{HEADING.strip()}' section")
    _, next_heading, after = rest.partition("\n## ")
    tail = f"\n## {after}" if next_heading else ""
    ARCHITECTURE.write_text(f"{before}\n{HEADING}\n{module_map()}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        print(module_map())
