"""Participants of a conference: the confirmed selection, who represents each agency, and client
and family.

Personnel continuity: an agency's "last representative" in a case is the person named for it at
the most recent earlier conference of the case where it had someone named. Naming someone else
is a substitution (`Participant.is_substitute`); naming nobody leaves the choice to the agency.
"""

from collections.abc import Collection, Mapping, Sequence

from sqlmodel import Session, col, select

from models.errors import Problem, Refusal
from models.record.database import saved_id
from models.record.tables import Agency, Conference, Participant, Representative
from models.rules.stakeholders import Proposal
from models.vocabulary import ConferenceType, Phase, Role


def last_representatives(session: Session, *, case_id: int, before_cycle: int) -> dict[str, str]:
    """Agency code -> the code of its last named representative in this case's earlier cycles."""
    rows = session.exec(
        select(Agency.code, Representative.code)
        .join(Participant, col(Participant.agency_id) == col(Agency.id))
        .join(Representative, col(Representative.id) == col(Participant.representative_id))
        .join(Conference, col(Conference.id) == col(Participant.conference_id))
        .where(Conference.case_id == case_id, col(Conference.cycle) < before_cycle)
        .order_by(col(Conference.cycle).desc(), col(Participant.id).desc())
    ).all()
    last: dict[str, str] = {}
    for agency, representative in rows:
        last.setdefault(agency, representative)
    return last


def proposed_representatives(
    session: Session, *, agencies: Sequence[str], last: Mapping[str, str]
) -> list[dict[str, str | None]]:
    """One entry per agency: last time's representative if still active for it, else none."""
    active = {
        rep.code: agency
        for rep, agency in session.exec(
            select(Representative, Agency.code)
            .join(Agency, col(Agency.id) == col(Representative.agency_id))
            .where(col(Representative.active))
        )
    }
    proposed: list[dict[str, str | None]] = []
    for code in agencies:
        rep = last.get(code)
        still = rep is not None and active.get(rep) == code
        proposed.append({"agency": code, "representative": rep if still else None})
    return proposed


def named_representatives(
    session: Session,
    *,
    entries: Sequence[tuple[str, str | None]],
    participating: Collection[str],
    left_out: Collection[str] = (),
    field: str = "representatives",
) -> dict[str, Representative]:
    """Agency code -> the representative named for it; all or nothing.

    Entries for agencies in `left_out` (removed from the list) are ignored. Raises Refusal for
    an agency not participating or named twice, or a representative who is not an active
    representative of that agency (the typed value is never repeated).
    """
    problems: list[Problem] = []
    named: dict[str, Representative] = {}
    seen: dict[str, int] = {}
    for i, (agency, code) in enumerate(entries):
        here = f"{field}[{i}]"
        if agency in seen:
            problems.append(
                Problem(
                    f"{here}.agency", f"this agency is listed already at {field}[{seen[agency]}]"
                )
            )
            continue
        seen[agency] = i
        if agency in left_out and agency not in participating:
            continue
        if agency not in participating:
            problems.append(
                Problem(f"{here}.agency", "not an agency of this conference's confirmed list")
            )
            continue
        if not code:
            continue
        rep = session.exec(
            select(Representative)
            .join(Agency, col(Agency.id) == col(Representative.agency_id))
            .where(Representative.code == code, Agency.code == agency)
        ).first()
        if rep is None or not rep.active:
            problems.append(
                Problem(
                    f"{here}.representative",
                    f"not an active representative of agency '{agency}' in the directory",
                )
            )
            continue
        named[agency] = rep
    if problems:
        raise Refusal(*problems)
    return named


def substitutions(
    named: Mapping[str, Representative], last: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Agency code -> (last time's representative, this time's), where the person changed."""
    return {
        agency: (last[agency], rep.code)
        for agency, rep in named.items()
        if agency in last and last[agency] != rep.code
    }


def record_participants(
    session: Session,
    *,
    conference: Conference,
    proposals: list[Proposal],
    client_and_family: bool,
    family_involved: bool,
    intermediary_code: str | None,
    client_phases: Sequence[str] = (),
    representatives: Mapping[str, Representative] | None = None,
    last: Mapping[str, str] | None = None,
    family_relations: Sequence[str] = (),
) -> list[int]:
    """Store who takes part, why and who represents each agency (a substitute if not last
    time's representative); client and family are reached through an intermediary."""
    agencies = {a.code: a for a in session.exec(select(Agency))}
    named = dict(representatives or {})
    substitutes = substitutions(named, last or {})
    ids: list[int] = []

    def add(participant: Participant) -> None:
        session.add(participant)
        session.flush()
        ids.append(saved_id(participant))

    for proposal in proposals:
        add(
            Participant(
                conference_id=saved_id(conference),
                agency_id=agencies[proposal.agency_code].id,
                role=proposal.role,
                rule=proposal.rule[:300],
                override_reason=proposal.override_reason,
                representative_id=named[proposal.agency_code].id
                if proposal.agency_code in named
                else None,
                is_substitute=proposal.agency_code in substitutes,
                # None: every phase professionals attend (family_only is never theirs).
                phases=None if proposal.phases is None else [str(p) for p in proposal.phases],
            )
        )
    # A security conference never includes the client and family, whatever a profile says.
    if client_and_family and conference.conference_type != ConferenceType.security:
        if intermediary_code not in agencies or not agencies[intermediary_code].active:
            raise Refusal.of(
                "intermediary",
                "name an active agency of the directory (prison staff, the CSO) to hand the "
                "invitation to the client and family",
            )
        intermediary = agencies[intermediary_code]
        # One family participant per family member named by relation (never by name), else one
        # for the family as a whole; each gets a hand-over of its own.
        people: list[tuple[Role, str | None]] = [(Role.client, None)]
        if family_involved:
            people += [(Role.family, str(r)) for r in family_relations] or [(Role.family, None)]
        for role, relation in people:
            add(
                Participant(
                    conference_id=saved_id(conference),
                    role=role,
                    rule=f"{role}{f' ({relation})' if relation else ''} of a social-network "
                    "conference"
                    + (f" ({', '.join(client_phases)})" if client_phases else "")
                    + f", invited through {intermediary.code}",
                    intermediary_agency_id=intermediary.id,
                    relation=relation,
                    phases=[str(p) for p in client_phases] if client_phases else None,
                )
            )
    conference.phase = Phase.information
    session.add(conference)
    session.flush()
    return ids
