"""A case's timeline and its runs' tags, against a real Prefect server: the tags the UI's filters
use follow a transfer, and every run the timeline links to exists."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client

from flows.review import case_review
from models.record.database import RecordSession, get_engine
from models.record.tables import Effect, Review, StageChange
from models.reporting.timeline import timeline, timeline_markdown
from tasks.runs import placement_tags, relabel_open_runs, start_cycle_run
from tests.test_gateway import make_paused_run
from tests.test_portfolio import World

pytestmark = pytest.mark.database


def tags_of(run_id: str) -> list[str]:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).tags


def test_tags_follow_the_case_and_the_timeline_links_its_runs(
    database: str, prefect_server: Any
) -> None:
    case_review.to_deployment(name="review").apply()
    now = datetime.now(UTC)
    reference = f"CASE-2026-{now.strftime('%H%M%S')}"
    referral_run = make_paused_run(reference)
    with RecordSession(get_engine(database), expire_on_commit=False) as session:
        world = World(session)
        case = world.case(
            reference=reference,
            phase="review_scheduled",
            conference_type="security",
            current_flow_run_id=referral_run,
        )
        world.conference(
            case,
            starts=now - timedelta(days=3),
            released=now - timedelta(days=3),
            people={"jva-wien": ("lead", "jva-wien-1")},
        )
        session.add(Effect(key=f"{referral_run}-referral", case_id=case.id, result={}))
        session.commit()
        assert placement_tags(reference) == ["profile:generic", "area:Wien", "lead:jva-wien"]
        review_run = start_cycle_run(
            reference,
            2,
            "custody",
            "security",
            key=f"{reference}/t/v1",
            at=now + timedelta(days=30),
        )
        assert {"profile:generic", "area:Wien", "lead:jva-wien", f"case:{reference}"} <= set(
            tags_of(review_run)
        )
        session.add(
            Review(
                case_id=case.id,
                cycle=2,
                due_at=now + timedelta(days=44),
                idempotency_key=f"{reference}/t/v1",
                flow_run_id=review_run,
            )
        )
        # A transfer to another lead: the waiting run and the scheduled review are retagged.
        case.lead_agency_id = world.agency["neustart-wien"].id
        session.add(case)
        session.add(
            StageChange(
                case_id=case.id,
                kind="transfer",
                from_stage="custody",
                to_stage="custody",
                reason="lead_agency_change",
                lead_agency_id=case.lead_agency_id,
                at=now,
            )
        )
        session.commit()
        assert relabel_open_runs.fn(case.id) == 2
        for run_id in (referral_run, review_run):
            tags = tags_of(run_id)
            assert "lead:neustart-wien" in tags and "lead:jva-wien" not in tags
            assert [t for t in tags if t.startswith("area:")] == ["area:Wien"]
        markdown = timeline_markdown(case, timeline(session, case=case), now=now)
    linked = set(re.findall(r"\(/runs/flow-run/([0-9a-f-]{36})\)", markdown))
    assert linked == {referral_run, review_run}
    with get_client(sync_client=True) as client:
        for run_id in linked:
            assert client.read_flow_run(run_id).name.startswith(reference)
    assert "Transferred: lead `neustart-wien` (lead_agency_change)" in markdown
    assert "Review 1 planned for" in markdown and "First conference (security)" in markdown


def test_scheduling_the_review_refreshes_the_timeline(database: str, prefect_server: Any) -> None:
    """The cycle's last step is scheduling the review, after the decision: the timeline shows it
    without waiting for the next accepted step."""
    from prefect import flow
    from prefect.artifacts import Artifact

    from models.reporting.timeline import artifact_key
    from tasks.release import schedule_review

    case_review.to_deployment(name="review").apply()
    now = datetime.now(UTC)
    reference = f"CASE-2026-R{now.strftime('%H%M%S%f')[:8]}"
    with RecordSession(get_engine(database), expire_on_commit=False) as session:
        world = World(session)
        case = world.case(
            reference=reference,
            referral_file_number=f"T-{reference}",
            phase="release",
            conference_type="security",
        )
        held = world.conference(
            case, starts=now - timedelta(days=1), released=now - timedelta(hours=1)
        )
        session.commit()
        case_id, conference_id = case.id, held.id
    assert case_id is not None and conference_id is not None
    review_on = (now + timedelta(days=60)).date()

    @flow(name="test-end-of-cycle")
    def end_of_cycle() -> str:
        return schedule_review(case_id, conference_id, review_on)

    run_id = end_of_cycle()
    artifact = Artifact.get(artifact_key(reference))
    assert artifact is not None and isinstance(artifact.data, str)
    assert f"Review 1 planned for {review_on}" in artifact.data
    assert f"[run](/runs/flow-run/{run_id})" in artifact.data  # the review's run, linked
    assert "phase **review_scheduled**" in artifact.data
