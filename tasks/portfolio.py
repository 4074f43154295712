"""Publish the managers' portfolio, a case's timeline and its personnel continuity as keyed Prefect
artifacts."""

from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from sqlmodel import select

from models.config.settings import get_settings
from models.record.database import session_scope
from models.record.tables import Effect
from models.reporting.continuity import continuity, continuity_table
from models.reporting.portfolio_report import ARTIFACTS, build_report
from models.reporting.timeline import artifact_key, timeline, timeline_markdown
from models.rules import cases
from models.steps import registry
from tasks.policies import CHECK, DATABASE_RETRIES, now


def known_profiles() -> set[str]:
    """The profiles a case may follow today: one YAML file each in the profiles folder."""
    return {path.stem for path in get_settings().profiles_dir.glob("*.yaml")}


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def publish_portfolio(at: datetime | None = None) -> list[str]:
    """Compute every portfolio figure as of `at` (default now) and publish one artifact per key;
    returns the keys."""
    moment = at or now()
    with session_scope() as session:
        report = build_report(
            session,
            now=moment,
            known_profiles=known_profiles(),
            late_after_days=registry.late_after_days(),
            waiting_phases=registry.waiting_phases(),
        )
    for key, markdown in report.items():
        create_markdown_artifact(key=key, markdown=markdown, description=ARTIFACTS[key])
    return sorted(report)


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def refresh_timeline(step_key: str) -> int | None:
    """Publish the timeline of the case whose step `step_key` was just accepted (the ledger
    knows the case); returns the case's id, or None for a step of no case."""
    with session_scope() as session:
        effect = session.exec(select(Effect).where(Effect.key == step_key)).first()
        if effect is None or effect.case_id is None:
            return None
        case_id = effect.case_id
    publish_timeline(case_id)
    return case_id


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def refresh_case_timeline(case_id: int) -> None:
    """Publish the case's timeline after a change made outside its steps (a closure)."""
    publish_timeline(case_id)


def publish_timeline(case_id: int) -> None:
    """Publish the case's timeline artifact as the record stands now (inside a flow or task run:
    the artifact links to it)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        markdown = timeline_markdown(case, timeline(session, case=case), now=now())
        key = artifact_key(case.reference)
    create_markdown_artifact(
        key=key, markdown=markdown, description="caseconf: the case's story across its runs"
    )


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def publish_continuity(case_id: int, reference: str) -> None:
    """The personnel-continuity report as an artifact: agency codes and numbers, no person."""
    with session_scope() as session:
        text = continuity_table(reference, continuity(session, case_id))
    create_markdown_artifact(
        key=f"continuity-{reference.lower()}",
        markdown=text,
        description="caseconf: personnel continuity per agency",
    )
