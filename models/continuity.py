"""Personnel continuity per agency in a case: does the same person come to each conference?

The share is taken over the conferences where the agency named who attended: an agency that
names nobody says nothing about continuity (`share` is None), and the named count shows how
much the share rests on. Agency codes and numbers only: never a representative.
"""

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, false, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from models.tables import (
    Agency,
    AgencyParticipation,
    AgencyParticipationMonth,
    Conference,
    Participant,
)
from models.vocabulary import PROFESSIONAL_ROLES, Role

#: The roles that are not professional (client, family): their participations never count.
NOT_PROFESSIONAL = [str(r) for r in Role if r not in PROFESSIONAL_ROLES]


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


def participations() -> Any:
    """A query of the professional participations: (case, agency, representative or None, the
    conference's preparation date) each."""
    return (
        select(
            col(Conference.case_id),
            col(Participant.agency_id),
            col(Participant.representative_id),
            col(Conference.created_at),
        )
        .join(Participant, col(Participant.conference_id) == col(Conference.id))
        .where(
            col(Participant.role).not_in(NOT_PROFESSIONAL), col(Participant.agency_id).is_not(None)
        )
    )


def summarise(rows: Any) -> dict[tuple[int, int], dict[str, Any]]:
    """Participation rows (`participations`) summed per case and agency: how many, how many
    named, how many by the most frequent person, the first and last conference's date."""
    found: dict[tuple[int, int], dict[str, Any]] = {}
    people: dict[tuple[int, int], Counter[int]] = {}
    for case_id, agency_id, person, at in rows:
        pair = (case_id, agency_id)
        row = found.setdefault(pair, {"first_at": at, "last_at": at, "participations": 0})
        row["first_at"], row["last_at"] = min(row["first_at"], at), max(row["last_at"], at)
        row["participations"] += 1
        named = people.setdefault(pair, Counter())
        if person is not None:
            named[person] += 1
    for pair, row in found.items():
        row["named"] = sum(people[pair].values())
        row["same_person"] = max(people[pair].values(), default=0)
        row["first_month"] = month_of(row["first_at"])
    return found


def month_of(moment: datetime) -> date:
    """The first day of `moment`'s month, in UTC."""
    day = moment.astimezone(UTC).date()
    return day.replace(day=1)


COUNTS = ("participations", "named", "same_person")


@cache
def _refresh_queries(every: bool) -> tuple[Any, Any, Any]:
    """The participations, the summaries' counts by month and their deletion, for the cases
    bound as `cases` (or every case)."""
    summary = AgencyParticipation
    query = participations()
    old = select(  # type: ignore[call-overload]
        col(summary.agency_id),
        col(summary.first_month),
        col(summary.participations),
        col(summary.named),
        col(summary.same_person),
    )
    if every:
        return query, old.where(false()), delete(summary)
    bound: Any = bindparam("cases", expanding=True)
    return (
        query.where(col(Conference.case_id).in_(bound)),
        old.where(col(summary.case_id).in_(bound)),
        delete(summary).where(col(summary.case_id).in_(bound)),
    )


def refresh_participation(connection: Connection, case_ids: Collection[int] | None) -> None:
    """Write `AgencyParticipation` afresh for `case_ids` (every case if None), and add what
    changed to `AgencyParticipationMonth`. Its statements are built once: this runs at every
    flush that touches a conference or a participant."""
    query, old, gone = _refresh_queries(case_ids is None)
    bound: dict[str, Any] = {} if case_ids is None else {"cases": list(case_ids)}
    found = summarise(connection.execute(query, bound))
    change: dict[tuple[int, date], list[int]] = {}
    for agency_id, month, *counts in connection.execute(old, bound):
        was = change.setdefault((agency_id, month), [0, 0, 0])
        change[(agency_id, month)] = [a - b for a, b in zip(was, counts, strict=True)]
    for (_, agency_id), row in found.items():
        was = change.setdefault((agency_id, row["first_month"]), [0, 0, 0])
        added = [row[c] for c in COUNTS]
        change[(agency_id, row["first_month"])] = [a + b for a, b in zip(was, added, strict=True)]
    connection.execute(gone, bound)
    if case_ids is None:
        connection.execute(delete(AgencyParticipationMonth))
    if found:
        connection.execute(
            insert(AgencyParticipation),
            [{"case_id": c, "agency_id": a, **row} for (c, a), row in found.items()],
        )
    add_counts(
        connection,
        AgencyParticipationMonth,
        [
            {"agency_id": a, "month": m, **dict(zip(COUNTS, n, strict=True))}
            for (a, m), n in sorted(change.items())
            if any(n)
        ],
    )


def add_counts(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Add `rows` to the counts of a tally `table` (its primary key, then counts), inserting the
    rows it does not hold yet: one statement, in key order (no deadlock between writers)."""
    if rows:
        connection.execute(_upsert(table, connection.dialect.name, tuple(rows[0])), rows)


@cache
def _upsert(table: Any, dialect: str, columns: tuple[str, ...]) -> Any:
    table = table.__table__
    keys = [c.name for c in table.primary_key.columns]
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    counts = {c: table.c[c] + upsert.excluded[c] for c in columns if c not in keys}
    return upsert.on_conflict_do_update(index_elements=keys, set_=counts)
