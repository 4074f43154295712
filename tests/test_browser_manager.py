"""A manager in a real browser, through the read-only gateway: the portfolio and a case's
timeline on the Artifacts pages, and Resume and Cancel refused with the run unchanged.

Screenshots go to a temporary folder; `make screenshots` writes them to docs/screenshots/
(looked at before they are committed)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from models.record.database import RecordSession, get_engine
from models.record.tables import Effect
from models.reporting.timeline import artifact_key
from tasks.portfolio import publish_portfolio, refresh_timeline
from tests.browser import SCREENSHOTS, browser, gateway, page  # noqa: F401  (fixtures)
from tests.test_gateway import make_paused_run
from tests.test_portfolio import World

# A real Prefect server, the gateway and Chromium: once, in the SQLite pass (like the walks).
pytestmark = [pytest.mark.database, pytest.mark.flow]

REFUSED = "Read-only access"


@flow(name="browser-test-report")
def publish(step_key: str) -> None:
    publish_portfolio()
    refresh_timeline(step_key)


@pytest.fixture
def a_case_waiting(database: str, prefect_server: Any) -> tuple[str, str]:
    """A case whose referral run waits at a step (a real paused run), and its artifacts."""
    reference = f"CASE-2026-{datetime.now(UTC).strftime('%H%M%S')}"
    run_id = make_paused_run(reference)
    with RecordSession(get_engine(database), expire_on_commit=False) as session:
        world = World(session)
        case = world.case(reference=reference, phase="stakeholders", current_flow_run_id=run_id)
        session.add(Effect(key=f"{run_id}-referral", case_id=case.id, result={}))
        session.commit()
    publish(f"{run_id}-referral")
    return reference, run_id


def shot(tab: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def refused_toast(tab: Any) -> None:
    tab.get_by_text(REFUSED).first.wait_for(timeout=15_000)
    tab.wait_for_timeout(800)  # let the toast finish sliding in before a screenshot


def run_state(run_id: str) -> tuple[StateType | None, Any, list[str]]:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    return (run.state.type if run.state else None, run.state.id if run.state else None, run.tags)


def test_a_manager_reads_the_portfolio_and_cannot_change_a_run(
    gateway: Any,  # noqa: F811
    page: Any,  # noqa: F811
    a_case_waiting: tuple[str, str],
) -> None:
    reference, run_id = a_case_waiting
    calls: list[tuple[str, str, int]] = []
    page.on("response", lambda r: calls.append((r.request.method, r.url, r.status)))

    page.goto(f"{gateway.url}/v2/artifacts")
    page.get_by_text("caseconf-portfolio").first.wait_for(timeout=30_000)
    for key in ("caseconf-waiting", "caseconf-quarter", artifact_key(reference)):
        assert page.get_by_text(key).count() >= 1, key
    shot(page, "manager-artifacts")

    page.goto(f"{gateway.url}/v2/artifacts/key/caseconf-portfolio")
    page.get_by_text("Created caseconf-portfolio").first.wait_for(timeout=30_000)
    page.locator("a[href*='/artifacts/artifact/']").first.click()
    heading = page.get_by_role("heading", name="Open cases by stage, end of each quarter")
    heading.wait_for(timeout=30_000)
    picture = page.locator("img[alt='Open cases by stage at the end of each quarter']")
    picture.wait_for(timeout=10_000)
    assert picture.evaluate("img => img.naturalWidth") > 0  # the SVG rendered
    heading.scroll_into_view_if_needed()
    shot(page, "manager-portfolio")

    page.goto(f"{gateway.url}/v2/artifacts/key/{artifact_key(reference)}")
    page.locator("a[href*='/artifacts/artifact/']").first.click()
    page.get_by_role("heading", name=f"{reference}: timeline").wait_for(timeout=30_000)
    assert page.locator("td", has_text="Referred by").count() == 1
    shot(page, "manager-timeline")
    page.get_by_role("link", name="run", exact=True).first.click()
    page.get_by_text(reference).first.wait_for(timeout=30_000)
    assert run_id in page.url, page.url

    # Resume, as a coordinator would: the run page's "Open menu" -> "Resume" -> dialog.
    before = run_state(run_id)
    page.goto(f"{gateway.url}/v2/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Open menu").first.click()
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Resume Flow Run").wait_for()
    dialog.get_by_role("button", name="Resume").click()
    refused_toast(page)
    shot(page, "manager-resume-refused")
    assert run_state(run_id) == before

    # Cancel: "Open menu" -> "Cancel" -> the dialog's confirmation.
    page.goto(f"{gateway.url}/v2/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Open menu").first.click()
    page.get_by_role("menuitem", name="Cancel").click()
    dialog = page.locator("[role=dialog], [role=alertdialog]").last
    dialog.wait_for()
    dialog.get_by_role("button", name="Cancel Flow Run").click()
    refused_toast(page)
    shot(page, "manager-cancel-refused")
    assert run_state(run_id) == before

    changes = [(m, u, s) for m, u, s in calls if m not in ("GET", "HEAD") and "/api/" in u]
    assert all(u.startswith(gateway.url) for _, u, _ in calls if "/api/" in u)
    assert [s for m, u, s in changes if u.endswith("/resume")] == [403]
    assert [s for m, u, s in changes if u.endswith("/set_state")] == [403]
