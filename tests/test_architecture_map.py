"""docs/architecture.md's module map names every module of the code's four rooms, and only those."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("flows", "tasks", "models", "deployments")
_PATH = re.compile(r"`((?:" + "|".join(ROOMS) + r")/[A-Za-z0-9_/]+\.py)`")


def _module_map() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    _, found, rest = text.partition("\n## Module map\n")
    assert found, "docs/architecture.md has no '## Module map' section"
    return rest.split("\n## ", 1)[0]


def _modules_in_tree() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for room in ROOMS
        for path in (ROOT / room).rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }


def test_every_module_named_in_the_map_exists() -> None:
    named = set(_PATH.findall(_module_map()))
    assert named, "the module map names no module"
    assert sorted(named - _modules_in_tree()) == []


def test_every_module_of_the_code_is_named_in_the_map() -> None:
    named = set(_PATH.findall(_module_map()))
    assert sorted(_modules_in_tree() - named) == []


def test_the_module_map_is_made_from_the_tree() -> None:
    """The map is what `make map` writes from the modules' own docstrings: a module added,
    removed or described anew shows here until the map is made again."""
    from tests.module_map import module_map, written_map

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert written_map(text) == module_map().strip(), "run `make map`"
