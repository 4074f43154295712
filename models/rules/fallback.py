"""Going on as a security conference after its participants were confirmed.

A refused, withdrawn or expired consent ends the social-network track; the coordinator may go
on as a security conference. Selection then runs again under the security type's rules for the
case's stage, and the coordinator confirms the new list with the reasons shown. What changes:

- the client and the family leave (a security conference never includes them); their
  intermediary is told the meeting no longer includes them, with no reason, and gets a
  cancellation file to hand on;
- agencies the security rules do not propose leave and get the iMIP CANCEL;
- agencies the security rules bring in (lead, core, needs) get the iMIP REQUEST;
- agencies that stay get an update (same meeting, SEQUENCE + 1), in their new role.

Messages go out only if the invitations had gone out; otherwise the list is simply replaced and
the invitations follow as usual. Information, plan items and actions already recorded stay; the
minutes follow the new list, since they are composed per participant.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.record.audit import audit
from models.record.database import saved_id
from models.record.outbox import queue_to_agency
from models.record.tables import Agency, Case, Conference, Notification, Participant, Representative
from models.rules.handover import HANDED_OVER_ROLES
from models.rules.invitations import queue_handover
from models.rules.participants import record_participants, substitutions
from models.rules.stakeholders import Proposal
from models.vocabulary import ConferenceType, Role

#: Outbox events that mean the participants were invited.
INVITED_EVENTS = ("invitation", "handover_request")

CLIENT_AND_FAMILY_LEAVE = (
    "a security conference never includes the client and family: the intermediary {agency} is "
    "told the meeting no longer includes them, without a reason"
)


@dataclass(frozen=True)
class Change:
    """One line of the new list: who, the role before and after (None: not a participant)."""

    who: str
    before: Role | None
    after: Role | None
    why: str

    @property
    def verb(self) -> str:
        if self.before is None:
            return "joins"
        if self.after is None:
            return "leaves"
        return "stays" if self.before == self.after else f"stays, was {self.before}"


def was_invited(session: Session, *, conference_id: int) -> bool:
    """Did invitations (or hand-over requests) go out, or wait in the outbox to go out?"""
    return (
        session.exec(
            select(Notification.id).where(
                Notification.conference_id == conference_id,
                col(Notification.event).in_(INVITED_EVENTS),
            )
        ).first()
        is not None
    )


def _who(participant: Participant, agencies: Mapping[int, Agency]) -> str:
    if participant.agency_id is not None:
        return agencies[participant.agency_id].code
    return f"{participant.role}" + (f" ({participant.relation})" if participant.relation else "")


def changes(
    current: list[Participant], agencies: Mapping[int, Agency], confirmed: list[Proposal]
) -> list[Change]:
    """Who leaves, stays and joins when `confirmed` replaces `current`, each with the reason."""
    new = {p.agency_code: p for p in confirmed}
    result: list[Change] = []
    seen: set[str] = set()
    for participant in current:
        who = _who(participant, agencies)
        if participant.agency_id is None:
            intermediary = agencies.get(participant.intermediary_agency_id or 0)
            reason = CLIENT_AND_FAMILY_LEAVE.format(
                agency=intermediary.code if intermediary else "?"
            )
            result.append(Change(who, Role(participant.role), None, reason))
            continue
        seen.add(who)
        proposal = new.get(who)
        if proposal is None:
            result.append(
                Change(
                    who,
                    Role(participant.role),
                    None,
                    f"not proposed by the security type's rules (it was: {participant.rule[:120]})",
                )
            )
        else:
            result.append(Change(who, Role(participant.role), proposal.role, proposal.rule))
    for proposal in confirmed:
        if proposal.agency_code not in seen:
            result.append(Change(proposal.agency_code, None, proposal.role, proposal.rule))
    return result


def describe_changes(found: list[Change]) -> str:
    """The new list as a Markdown table: who, role, what changes and why."""
    rows = ["| who | role | change | why |", "|---|---|---|---|"]
    for c in found:
        rows.append(f"| `{c.who}` | {c.after or c.before} | {c.verb} | {c.why} |")
    return "\n".join(rows)


def reselect_as_security(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    confirmed: list[Proposal],
    representatives: Mapping[str, Representative],
    last: Mapping[str, str],
    actor_id: int | None,
    now: datetime,
) -> list[Change]:
    """Replace the conference's participants by `confirmed` (the security type's selection, as
    the coordinator confirmed it) and queue what each one is told. Returns the changes."""
    if conference.conference_type != ConferenceType.security:
        raise ValueError("re-selection is only for a conference that goes on as security")
    agencies = {saved_id(a): a for a in session.exec(select(Agency))}
    by_code = {a.code: a for a in agencies.values()}
    current = list(
        session.exec(
            select(Participant)
            .where(Participant.conference_id == conference.id)
            .order_by(col(Participant.id))
        )
    )
    found = changes(current, agencies, confirmed)
    invited = was_invited(session, conference_id=saved_id(conference))
    if invited:
        conference.ical_sequence += 1
        session.add(conference)
        session.flush()
    new = {p.agency_code: p for p in confirmed}
    tell = _Teller(session, case, conference, now)
    kept = _update_current(
        tell,
        current,
        agencies=agencies,
        new=new,
        representatives=representatives,
        substitutes=substitutions(representatives, last),
        invited=invited,
    )
    session.flush()
    added = [p for p in confirmed if p.agency_code not in kept]
    phase = conference.phase
    record_participants(
        session,
        conference=conference,
        proposals=added,
        client_and_family=False,
        family_involved=False,
        intermediary_code=None,
        representatives={c: r for c, r in representatives.items() if c in new},
        last=last,
    )
    conference.phase = phase  # recording participants must not move the conference back
    session.add(conference)
    if invited:
        for proposal in added:
            tell("invitation", saved_id(by_code[proposal.agency_code]), proposal.role)
    left = sorted(c.who for c in found if c.after is None)
    joined = sorted(c.who for c in found if c.before is None)
    audit(
        session,
        action="participants.reselected_as_security",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=f"left {left}, joined {joined}"[:1000],
    )
    session.flush()
    return found


@dataclass(frozen=True)
class _Teller:
    """Queues what one agency of the re-selected conference is told, under its sequence."""

    session: Session
    case: Case
    conference: Conference
    now: datetime

    def __call__(
        self, event: str, agency_id: int, role: Role, key_event: str | None = None
    ) -> None:
        queue_to_agency(
            self.session,
            case=self.case,
            conference=self.conference,
            event=event,
            key_event=key_event,
            agency_id=agency_id,
            role=role,
            now=self.now,
            recipient=f"{agency_id}:{role}",
            version=self.conference.ical_sequence,
        )


def _update_current(
    tell: _Teller,
    current: list[Participant],
    *,
    agencies: Mapping[int, Agency],
    new: Mapping[str, Proposal],
    representatives: Mapping[str, Representative],
    substitutes: Mapping[str, tuple[str, str]],
    invited: bool,
) -> set[str]:
    """Remove the participants the new list leaves out and update those it keeps, telling each
    once invitations went out; returns the codes kept."""
    session, case, conference, now = tell.session, tell.case, tell.conference, tell.now
    kept: set[str] = set()
    for participant in current:
        if participant.role in HANDED_OVER_ROLES or participant.agency_id is None:
            if invited:
                queue_handover(
                    session,
                    case=case,
                    conference=conference,
                    participant=participant,
                    event="removed",
                    now=now,
                )
            session.delete(participant)
            continue
        code = agencies[participant.agency_id].code
        proposal = new.get(code)
        if proposal is None:
            if invited:
                tell(
                    "participation_cancelled",
                    participant.agency_id,
                    Role(participant.role),
                    "removed",
                )
            session.delete(participant)
            continue
        kept.add(code)
        participant.role = proposal.role
        participant.rule = proposal.rule[:300]
        participant.override_reason = proposal.override_reason
        participant.phases = None if proposal.phases is None else [str(p) for p in proposal.phases]
        rep = representatives.get(code)
        participant.representative_id = rep.id if rep else None
        participant.is_substitute = code in substitutes
        session.add(participant)
        if invited:
            # Keyed as this sequence's invitation: the invitation step after it adds nothing.
            tell("invitation_updated", participant.agency_id, proposal.role, "invitation")
    return kept
