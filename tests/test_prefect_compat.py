"""caseconf's use of Prefect's internals is checked against the installed Prefect: the version
check names what it found and what was checked; `serve` and the production jobs stop at once on
another version; the forms' input keys come from Prefect's own key format."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.prefect_compat import (
    CHECKED,
    PrefectInternalsChanged,
    check_prefect_version,
    form_input_key,
    form_input_prefix,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_prefect_is_a_checked_one_and_another_is_refused_by_name() -> None:
    check_prefect_version()
    with pytest.raises(PrefectInternalsChanged) as refused:
        check_prefect_version("3.99.0")
    said = str(refused.value)
    assert "Prefect 3.99.0 is installed" in said and ", ".join(CHECKED) in said
    assert "tasks/prefect_compat.py" in said and "Upgrading Prefect" in said


def test_a_steps_input_keys_are_prefects_own() -> None:
    """Every attempt's keys of a step share the prefix its forms are forgotten by."""
    prefix = form_input_prefix("case-2026-0001-c1-stakeholders-")
    for part in ("description", "schema", "response"):
        key = form_input_key("case-2026-0001-c1-stakeholders-3", part)
        assert key.startswith(prefix) and key.endswith(part)
    assert not form_input_key("case-2026-0001-c1-stakeholders-security-0", "schema").startswith(
        form_input_prefix("case-2026-0001-c1-stakeholders-0")
    )


@pytest.mark.parametrize(
    "command",
    [("deployments", "serve"), ("deployments.production", "setup")],
    ids=["serve", "setup"],
)
def test_serve_and_the_production_jobs_stop_at_once_on_an_unchecked_prefect(
    command: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text("import prefect\nprefect.__version__ = '3.99.0'\n")
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused: Prefect 3.99.0 is installed; caseconf was checked against" in done.stderr
    assert "Traceback" not in done.stderr
