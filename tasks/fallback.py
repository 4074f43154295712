"""Going on as a security conference after the participants were confirmed: the new list."""

from prefect import task
from sqlmodel import Session, select

from models.record.database import saved_id, session_scope
from models.record.tables import Agency, Representative
from models.rules import cases
from models.rules.conference import get_conference, participants
from models.rules.fallback import changes, describe_changes, reselect_as_security
from models.rules.participants import (
    last_representatives,
    proposed_representatives,
)
from models.steps.forms import Stakeholders
from tasks.policies import CHECK, DATABASE_RETRIES, StepOutcome, apply_once, now
from tasks.stakeholders import _selection, audit_list_changes, confirmed_list


def _known_representatives(
    session: Session, *, case_id: int, conference_id: int, cycle: int
) -> dict[str, str]:
    """Agency code -> representative code: who is named for this conference already, else who
    attended last time."""
    known = last_representatives(session, case_id=case_id, before_cycle=cycle)
    for p in participants(session, conference_id=conference_id):
        if p.agency_id is None or p.representative_id is None:
            continue
        agency = session.get(Agency, p.agency_id)
        rep = session.get(Representative, p.representative_id)
        if agency is not None and rep is not None:
            known[agency.code] = rep.code
    return known


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def describe_security_list(
    case_id: int, conference_id: int
) -> tuple[str, list[dict[str, str | None]]]:
    """The new list under the security type's rules, as a Markdown table of who leaves, stays
    and joins and why, and who represents each agency (never persisted: read anew each time)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        _, _, selection = _selection(session, case, conference)
        agencies = {saved_id(a): a for a in session.exec(select(Agency))}
        current = participants(session, conference_id=conference_id)
        text = describe_changes(changes(current, agencies, selection.proposals))
        if selection.warnings:
            text += "\n\n" + "\n".join(f"> **Warning:** {w}" for w in selection.warnings)
        known = _known_representatives(
            session, case_id=case_id, conference_id=conference_id, cycle=conference.cycle
        )
        representatives = proposed_representatives(
            session, agencies=[p.agency_code for p in selection.proposals], last=known
        )
        return text, representatives


@task(**DATABASE_RETRIES)
def confirm_security_participants(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: Stakeholders
) -> StepOutcome:
    """Replace the participants by the security list as confirmed; each is told once."""

    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        chosen = confirmed_list(
            session, case=case, conference=conference, answer=answer, actor_id=rep.id, at=at
        )
        found = reselect_as_security(
            session,
            case=case,
            conference=conference,
            confirmed=chosen.proposals,
            representatives=chosen.named,
            last=chosen.last,
            actor_id=rep.id,
            now=at,
        )
        audit_list_changes(session, case_id=case_id, actor_id=rep.id, at=at, answer=answer)
        return {"changes": len(found)}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)
