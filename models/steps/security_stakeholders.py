"""The security re-selection: after going on as a security conference with participants confirmed
already, the coordinator confirms the security type's list (who leaves, stays, joins, and why);
each is told once (`models.rules.fallback`)."""

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.record.database import saved_id
from models.record.tables import Agency, Representative
from models.rules import cases
from models.rules.conference import participants
from models.rules.fallback import changes, describe_changes, reselect_as_security
from models.rules.participants import last_representatives, proposed_representatives
from models.steps.stakeholders import (
    Stakeholders,
    audit_list_changes,
    confirmed_list,
    offered,
    proposed_for,
    warnings,
)
from models.steps.step import Applied, Asked, Step, heading
from models.vocabulary import Phase


def _known_representatives(session: Session, asked: Asked) -> dict[str, str]:
    """Agency code -> representative code: who is named for this conference already, else who
    attended last time."""
    conference = asked.conference(session)
    known = last_representatives(
        session, case_id=saved_id(asked.case(session)), before_cycle=conference.cycle
    )
    for p in participants(session, conference_id=saved_id(conference)):
        if p.agency_id is None or p.representative_id is None:
            continue
        agency = session.get(Agency, p.agency_id)
        rep = session.get(Representative, p.representative_id)
        if agency is not None and rep is not None:
            known[agency.code] = rep.code
    return known


def describe(session: Session, asked: Asked, now: datetime) -> str:
    """The new list under the security type's rules: who leaves, stays and joins, and why."""
    found = proposed_for(session, asked)
    proposed = found.selection
    agencies = {saved_id(a): a for a in session.exec(select(Agency))}
    current = participants(session, conference_id=saved_id(found.conference))
    table = describe_changes(changes(current, agencies, proposed.proposals)) + warnings(proposed)
    return heading(session, asked, "who takes part in the security conference") + (
        "The conference goes on as a security conference: selection ran again under the "
        "security type's rules for the case's stage. The client and family leave, and so "
        "does any agency those rules do not propose; the security type's lead and core "
        "group come in. Confirm, or add and remove agencies with a reason (no lead can be "
        "removed). Information already recorded stays. When you submit, those who leave "
        "get a cancellation (the client's and family's intermediary is told the meeting "
        "no longer includes them, without a reason), those who join an invitation, and the "
        "others an update.\n\n" + table
    )


def defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    """Who represents each agency: who is named already, else who attended last time."""
    representatives = proposed_representatives(
        session,
        agencies=[p.agency_code for p in proposed_for(session, asked).selection.proposals],
        last=_known_representatives(session, asked),
    )
    return {"representatives": representatives}


def apply(session: Session, asked: Asked, answer: Stakeholders, now: datetime) -> Applied:
    """Replace the participants by the security list as confirmed; each is told once."""
    rep = cases.acting_representative(session, code=answer.acting_representative)
    case, conference = asked.case(session), asked.conference(session)
    chosen = confirmed_list(
        session, found=proposed_for(session, asked), answer=answer, actor_id=rep.id, at=now
    )
    found = reselect_as_security(
        session,
        case=case,
        conference=conference,
        confirmed=chosen.proposals,
        representatives=chosen.named,
        last=chosen.last,
        actor_id=rep.id,
        now=now,
    )
    audit_list_changes(session, case_id=case.id, actor_id=rep.id, at=now, answer=answer)
    return Applied({"changes": len(found)})


STEP = Step(
    name="stakeholders-security",
    phase=Phase.stakeholders,
    form=Stakeholders,
    describe=describe,
    apply=apply,
    choices=offered,
    defaults=defaults,
)
