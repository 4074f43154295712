"""`python -m deployments load` while caseconf serves and a case waits: the registered
deployments' parameter forms offer the directory as it is now, and the waiting form still
accepts what it offered if that is still valid, and refuses with the field named what is not."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.client.orchestration import get_client

from models.config.settings import PROJECT_ROOT
from tests.prefect_harness import PrefectServer, Walk

pytestmark = pytest.mark.flow

DEMO = PROJECT_ROOT / "config" / "directory.demo.yaml"
REP = "neustart-wien-1"


def load(server: PrefectServer, directory: Path) -> str:
    """Run the operator's command against the test server and database; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "deployments", "load"],
        env={**server.env(), "CASECONF_DIRECTORY": str(directory)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def offered(deployment: str, model: str, field: str) -> list[str]:
    """The codes a registered deployment's parameter form offers for `model.field`."""
    with get_client(sync_client=True) as client:
        schema: dict[str, Any] = client.read_deployment_by_name(deployment).parameter_openapi_schema
    spec = schema["definitions"][model]["properties"][field]
    options = spec.get("anyOf", [spec])
    return [code for option in options for code in option.get("enum", [])]


@pytest.fixture
def reloaded_directory(serving, prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Path]:
    """The demo directory with one venue gone and a venue and representative added; the demo
    directory is loaded again afterwards, whatever the test did."""
    data = yaml.safe_load(DEMO.read_text())
    jva = next(a for a in data["agencies"] if a["code"] == "jva-wien")
    jva["venues"] = [{"code": "jva-wien-room-9", "label": "Justizanstalt Wien, room 9"}]
    jva["representatives"].append({"code": "jva-wien-9", "name": "Demo Representative Z"})
    changed = tmp_path / "directory.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        yield changed
    finally:
        load(prefect_server, DEMO)


def test_a_reloaded_directory_reaches_the_forms_and_the_waiting_case(
    serving, database, prefect_server: PrefectServer, reloaded_directory: Path
) -> None:
    now = datetime.now(ZoneInfo("Europe/Vienna"))
    walk = Walk.refer("neustart-wien", stage="custody")
    walk.waits_at("referral")
    walk.answer(file_number=f"RELOAD-{now:%H%M%S%f}", acting_representative=REP)
    walk.waits_at("preparation")
    assert "jva-wien-room-2" in walk.schema()["properties"]["location"]["enum"]
    assert "jva-wien-room-2" in offered("case-conference/reschedule", "Reschedule", "location")
    assert "jva-wien-9" not in offered("case-close/close", "Closure", "acting_representative")

    said = load(prefect_server, reloaded_directory)

    assert "parameter choices refreshed on" in said
    venues = offered("case-conference/reschedule", "Reschedule", "location")
    assert "jva-wien-room-9" in venues and "jva-wien-room-2" not in venues
    assert "jva-wien-9" in offered("case-close/close", "Closure", "acting_representative")

    # The waiting form offered jva-wien-room-2; it is gone now: refused, the field named.
    starts_at = (now + timedelta(days=10)).replace(tzinfo=None).isoformat(timespec="minutes")
    answer = {
        "conference_type": "security",
        "starts_at": starts_at,
        "time_zone": "Europe/Vienna",
        "acting_representative": REP,
    }
    walk.answer(**answer, location="jva-wien-room-2")
    walk.waits_at("preparation", attempt=1)
    # Checked against the choices as they are now: the reason names the field and what is valid.
    reason = walk.description().split("\n\n", 1)[0]
    assert "location" in reason and "jva-wien-room-9" in reason
    asked = walk.schema()["properties"]["location"]["enum"]
    assert "jva-wien-room-9" in asked and "jva-wien-room-2" not in asked
    # What the earlier form offered and is still valid is accepted.
    walk.answer(**answer, location="neustart-wien-room-3")
    walk.waits_at("stakeholders")
