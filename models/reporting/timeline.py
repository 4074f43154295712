"""A case's story across its runs: stages, conferences, decisions and actions by number, reviews,
consent changes, transfers and closure, with links to the runs. Codes, dates and counts only."""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Conference,
    ConsentRecord,
    Effect,
    InformationItem,
    Participant,
    PlanItem,
    Review,
    StageChange,
)
from models.vocabulary import StageChangeKind

REFERRAL_SUFFIX = "-referral"


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str
    run_id: str | None = None


def artifact_key(reference: str) -> str:
    """`case-<reference>-timeline`, lower case (Prefect's artifact keys)."""
    return f"case-{reference.lower()}-timeline"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counter.items())) or "none"


def timeline(session: Session, *, case: Case) -> list[Event]:
    """Every recorded event of the case, oldest first."""
    assert case.id is not None
    codes = dict(session.exec(select(Agency.id, Agency.code)).all())
    events: list[Event] = []
    changes = list(
        session.exec(
            select(StageChange)
            .where(StageChange.case_id == case.id)
            .order_by(col(StageChange.at), col(StageChange.id))
        )
    )
    referred_at = str(changes[0].from_stage if changes else case.stage)
    if case.stage == "closed" and not changes:
        referred_at = "not recorded"
    referral_run = session.exec(
        select(Effect.key).where(
            Effect.case_id == case.id, col(Effect.key).endswith(REFERRAL_SUFFIX)
        )
    ).first()
    events.append(
        Event(
            case.created_at,
            f"Referred by `{codes.get(case.referring_agency_id, '?')}` at stage {referred_at}; "
            f"profile `{case.profile}`",
            referral_run.removesuffix(REFERRAL_SUFFIX) if referral_run else None,
        )
    )
    for change in changes:
        if change.kind == StageChangeKind.transfer:
            parts = []
            if change.area:
                parts.append(f"area {change.area}")
            if change.lead_agency_id:
                parts.append(f"lead `{codes.get(change.lead_agency_id, '?')}`")
            what = f"Transferred: {', '.join(parts)} ({change.reason})"
        elif change.kind == StageChangeKind.release_date:
            what = f"Release date recorded: {change.release_on} ({change.reason})"
        else:
            what = f"Stage {change.from_stage} → {change.to_stage} ({change.reason})"
            if change.release_on:
                what += f", release date {change.release_on}"
        events.append(Event(change.at, what))
    events += _conferences(session, case=case)
    for review in session.exec(
        select(Review).where(Review.case_id == case.id).order_by(col(Review.id))
    ):
        events.append(
            Event(
                review.created_at,
                f"Review {review.cycle - 1} planned for {_aware(review.due_at).date()} "
                f"(version {review.version}; now {review.status})",
                review.flow_run_id,
            )
        )
    for record in session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.case_id == case.id)
        .order_by(col(ConsentRecord.id))
    ):
        expiry = f", until {record.expires_on}" if record.expires_on else ""
        events.append(
            Event(record.recorded_at, f"Consent `{record.scope}`: {record.decision}{expiry}")
        )
    if case.closed_at is not None:
        events.append(Event(case.closed_at, f"Closed ({case.closure_reason})"))
    events.sort(key=lambda e: _aware(e.at))
    return events


def _conferences(session: Session, *, case: Case) -> list[Event]:
    events: list[Event] = []
    conferences = list(
        session.exec(
            select(Conference).where(Conference.case_id == case.id).order_by(col(Conference.cycle))
        )
    )
    for conference in conferences:
        name = "First conference" if conference.cycle == 1 else f"Review {conference.cycle - 1}"
        when = (
            f" for {_aware(conference.starts_at).strftime('%Y-%m-%d %H:%M')} UTC"
            if conference.starts_at
            else ""
        )
        participants = session.exec(
            select(Participant.role).where(Participant.conference_id == conference.id)
        ).all()
        roles = Counter(str(r) for r in participants)
        events.append(
            Event(
                conference.created_at,
                f"{name} ({conference.conference_type}) prepared{when}; "
                f"participants: {_counts(roles)}",
            )
        )
        items = Counter(
            str(c)
            for c in session.exec(
                select(InformationItem.classification).where(
                    InformationItem.conference_id == conference.id
                )
            )
        )
        decisions = Counter(
            str(o or "undecided")
            for o in session.exec(
                select(PlanItem.outcome).where(PlanItem.conference_id == conference.id)
            )
        )
        actions = Counter(
            str(s)
            for s in session.exec(
                select(ActionItem.status).where(ActionItem.conference_id == conference.id)
            )
        )
        if conference.released_at is not None:
            events.append(
                Event(
                    conference.released_at,
                    f"{name}: decision released; information items: {_counts(items)}; "
                    f"plan items: {_counts(decisions)}; actions: {sum(actions.values())} "
                    f"({_counts(actions)}); phase now {conference.phase}",
                )
            )
        elif items or decisions:
            events.append(
                Event(
                    conference.created_at,
                    f"{name}: in phase {conference.phase}; information items: {_counts(items)}; "
                    f"plan items: {_counts(decisions)}",
                )
            )
    return events


def run_ids(session: Session, *, case: Case) -> list[str]:
    """Every run of the case caseconf knows: the referral, the reviews, the one it follows now."""
    found = [e.run_id for e in timeline(session, case=case) if e.run_id]
    if case.current_flow_run_id:
        found.append(case.current_flow_run_id)
    return list(dict.fromkeys(found))


def timeline_markdown(case: Case, events: list[Event], *, now: datetime) -> str:
    """The story as a Markdown table; run links are relative to the UI that shows the artifact."""
    lines = [
        f"# {case.reference}: timeline",
        "",
        f"_As of {now.strftime('%Y-%m-%d %H:%M')} UTC. Stage **{case.stage}**, phase "
        f"**{case.phase}**, cycle {case.cycle}, {case.status}. Every run of the case carries "
        f"the tag `case:{case.reference}`._",
        "",
        "| When (UTC) | What | Run |",
        "|---|---|---|",
    ]
    for event in events:
        link = f"[run](/runs/flow-run/{event.run_id})" if event.run_id else ""
        lines.append(f"| {_aware(event.at).strftime('%Y-%m-%d %H:%M')} | {event.what} | {link} |")
    if case.current_flow_run_id:
        lines += ["", f"The case follows [this run](/runs/flow-run/{case.current_flow_run_id})."]
    return "\n".join(lines) + "\n"
