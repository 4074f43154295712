"""What the README and the Makefile's help say is what the code does: every setting in the
settings table with its default, every operator command, every test marker, every make target
and bench."""

import argparse
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from bench.__main__ import BENCHES
from deployments.__main__ import parser
from models.config.settings import PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
CODE = ("flows", "tasks", "models", "deployments", "tests", "Makefile", ".ci")


def _table_after(header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header row is `header`, each a list of its cells."""
    lines = README.splitlines()
    at = lines.index(header)
    rows = []
    for line in lines[at + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _shown(value: Any) -> str:
    """A default as the README writes it."""
    if isinstance(value, Path):
        return value.relative_to(PROJECT_ROOT).as_posix()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value).replace(str(PROJECT_ROOT), "<project>")


def test_the_settings_table_names_every_setting_with_its_default() -> None:
    rows = {
        name: cells[1].strip("`")
        for cells in _table_after("| Variable | Default | Meaning |")
        for name in re.findall(r"`(CASECONF_[A-Z_]+)`", cells[0])
    }
    for field, info in Settings.model_fields.items():
        variable = f"CASECONF_{field.upper()}"
        assert variable in rows, f"README.md's settings table lacks {variable}"
        assert info.default is not PydanticUndefined
        assert rows[variable] == _shown(info.default), variable
    settings = {f"CASECONF_{f.upper()}" for f in Settings.model_fields}
    unused = [
        v
        for v in sorted(set(rows) - settings)
        if subprocess.run(["git", "grep", "-q", v, "--", *CODE], cwd=ROOT).returncode != 0
    ]
    assert unused == [], "the table names variables nothing reads"


def test_the_operator_commands_are_those_of_python_m_deployments() -> None:
    listed = {
        cells[0].strip("`").split()[0] for cells in _table_after("| Command | What it does |")
    }
    [commands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert listed == set(commands.choices)


def test_the_test_markers_are_the_suites_own() -> None:
    markers = {
        line.split(":", 1)[0]
        for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
            "ini_options"
        ]["markers"]
    }
    row = next(line for line in README.splitlines() if line.startswith("| `tests/` |"))
    assert set(re.findall(r"`([a-z]+)`", row.split("markers", 1)[1])) == markers


def _targets() -> set[str]:
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE, re.M)
    assert phony
    return set(phony.group(1).split())


def test_the_makefiles_help_lists_every_target_and_every_bench() -> None:
    help_text = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    helped = set(re.findall(r"^make (\w+)", help_text, re.M))
    assert helped == _targets() - {"help", "venv"}
    benches = help_text.split("make bench", 1)[1].split("\n")[0]
    assert re.findall(r"\b[a-z]+\b", benches.split(":", 1)[1]) == list(BENCHES)


def test_every_make_target_the_readme_names_exists() -> None:
    named = set(re.findall(r"(?:`|^)make (\w+)", README, re.M))
    assert named - _targets() == set()
