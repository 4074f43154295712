"""The date-sensitive tests pass whatever the machine's clock says.

Rules take their "now" as a parameter and tests compute theirs once; this proves it by running
every test module that deals in dates (the whole-case walks excepted: each resume is a new
process, too slow to repeat here) again in a child pytest whose clock libfaketime sets to:

- a summer day at 23:30 UTC in a year after 2030 (Vienna is already on the next day, in summer
  time);
- with CASECONF_ALL_CLOCKS=1, also a winter night ten seconds before midnight UTC on a leap
  day: the run crosses midnight, and the month changes under it.

Debian's `faketime` package provides the library (.ci/run installs it).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLOCKS = {
    "summer-2330-utc-2031": "@2031-07-15 23:30:00",
    "leap-day-midnight-2032": "@2032-02-29 23:59:50",
}
#: `make test` runs the first clock (a summer date, 23:30 UTC and a year after 2030 at once);
#: CASECONF_ALL_CLOCKS=1 adds the run across midnight on a leap day (each clock is a child pytest
#: of a few minutes, and the suite must stay within its budget).
RUN_CLOCKS = CLOCKS if os.environ.get("CASECONF_ALL_CLOCKS") else dict(list(CLOCKS.items())[:1])
DATED = re.compile(r"\b(datetime|date|timedelta)\b")
#: Modules whose dates are all fixed moments given to the rules (a clock changes nothing there),
#: and the one that runs a PostgreSQL server of its own (not under a faked clock).
CLOCK_FREE = {"test_fuzz_forms.py", "test_day_boundaries.py", "test_postgres_restart.py"}


def dated_modules() -> list[str]:
    """Every test module that deals in dates, found afresh so new ones are covered too."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").glob("test_*.py")
        if path.name != Path(__file__).name
        and path.name not in CLOCK_FREE
        and DATED.search(path.read_text())
    )


@pytest.mark.parametrize("clock", list(RUN_CLOCKS.values()), ids=list(RUN_CLOCKS))
def test_the_dated_tests_pass_under_another_clock(clock: str, tmp_path: Path) -> None:
    faketime = shutil.which("faketime")
    if faketime is None:
        if os.environ.get("CI"):
            pytest.fail("faketime is missing: .ci/run installs Debian's faketime package")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    modules = dated_modules()
    assert "tests/test_stages.py" in modules and "tests/test_followup.py" in modules
    # The child has a database of its own (SQLite, from its conftest): never the PostgreSQL one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASECONF_")}
    env.update({"TZ": "UTC", "PYTHONDONTWRITEBYTECODE": "1"})
    finished = subprocess.run(
        [
            faketime,
            "-f",
            clock,
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "0",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not flow",
            f"--basetemp={tmp_path / 'child'}",
            *modules,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = finished.stdout[-6000:] + finished.stderr[-2000:]
    assert "passed" in finished.stdout, report
    assert finished.returncode == 0, report
