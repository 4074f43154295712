"""Personnel continuity per agency in a case: does the same person come to each conference?

The share is taken over the conferences where the agency named who attended: an agency that
names nobody says nothing about continuity (`share` is None), and the named count shows how
much the share rests on. Agency codes and numbers only: never a representative.
"""

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, col, select

from models.record.tables import (
    Agency,
    Conference,
    Participant,
)
from models.vocabulary import PROFESSIONAL_ROLES


@dataclass(frozen=True)
class AgencyContinuity:
    """How one agency was represented at a case's conferences."""

    agency: str
    conferences: int  # conferences of the case the agency took part in
    named: int  # of those, with a named representative
    same_person: int  # of those, attended by its most frequent representative
    substitutions: int  # participations recorded as a substitute

    @property
    def share(self) -> float | None:
        """Share of the named conferences attended by the same (most frequent) person."""
        return self.same_person / self.named if self.named else None


def continuity(session: Session, case_id: int) -> list[AgencyContinuity]:
    """Per agency that took part in the case's conferences, by agency code."""
    rows = session.exec(
        select(Agency.code, Participant)
        .join(Participant, col(Participant.agency_id) == col(Agency.id))
        .join(Conference, col(Conference.id) == col(Participant.conference_id))
        .where(Conference.case_id == case_id)
    ).all()
    conferences: dict[str, set[int]] = {}
    people: dict[str, Counter[int]] = {}
    substitutes: Counter[str] = Counter()
    for code, participant in rows:
        if participant.role not in PROFESSIONAL_ROLES:
            continue
        conferences.setdefault(code, set()).add(participant.conference_id)
        named = people.setdefault(code, Counter())
        if participant.representative_id is not None:
            named[participant.representative_id] += 1
        substitutes[code] += int(participant.is_substitute)
    return [
        AgencyContinuity(
            agency=code,
            conferences=len(conferences[code]),
            named=sum(people[code].values()),
            same_person=max(people[code].values(), default=0),
            substitutions=substitutes[code],
        )
        for code in sorted(conferences)
    ]


def continuity_table(reference: str, rows: list[AgencyContinuity]) -> str:
    """A Markdown report: agency codes and numbers only."""
    lines = [
        f"### Personnel continuity, {reference}",
        "",
        "Same person: share of the conferences with a named representative that the agency's "
        "most frequent representative attended.",
        "",
        "| agency | conferences | named | same person | substitutions |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        share = "n/a" if row.share is None else f"{row.share:.0%}"
        lines.append(
            f"| `{row.agency}` | {row.conferences} | {row.named} | {share} | {row.substitutions} |"
        )
    if not rows:
        lines.append("| (no participants recorded yet) | | | | |")
    return "\n".join(lines) + "\n"


# --- kept per case and agency for the portfolio ------------------------------------------------
