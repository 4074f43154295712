"""What the record keeps up to date on every flush of caseconf's own sessions
(`models.record.database.RecordSession`, where the listeners are registered): when a case entered
its phase, the stage tallies of past quarter ends, each case's conference lead, and personnel
continuity per case and agency. The portfolio (`models.reporting.portfolio`) reads them."""

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, false, insert, inspect, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select

from models.record.tables import (
    Agency,
    AgencyParticipation,
    AgencyParticipationMonth,
    Case,
    Conference,
    Participant,
    StageChange,
    StageTally,
    utcnow,
)
from models.vocabulary import PROFESSIONAL_ROLES, CaseStatus, Role


def before_flush(session: OrmSession, context: Any, instances: Any) -> None:
    """A flush is about to write: stamp the phases entered and note which summaries change."""
    keep_phase_since(session, context, instances)
    note_summary_changes(session)


def after_flush(session: OrmSession, context: Any) -> None:
    """A flush has written: bring the summaries it changed up to date."""
    keep_summaries(session)


# --- when a case entered its phase -------------------------------------------------------------


def keep_phase_since(session: OrmSession, context: Any, instances: Any) -> None:
    """A case entering a phase records when: the `updated_at` the change came with (the step's
    own "now"), else the clock."""
    for case in (*session.new, *session.dirty):
        if not isinstance(case, Case):
            continue
        state = inspect(case)
        if case in session.new:
            if case.phase_since is None:
                case.phase_since = case.updated_at
            continue
        phase = state.attrs.phase.history
        if not phase.added or (phase.deleted and phase.deleted[0] == phase.added[0]):
            continue
        if state.attrs.phase_since.history.added:
            continue  # set by hand along with the phase
        updated = state.attrs.updated_at.history
        case.phase_since = case.updated_at if updated.added else utcnow()


# --- time: quarters and months ----------------------------------------------------------------


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def quarter_of(day: date) -> tuple[date, date]:
    """First day of `day`'s quarter and first day of the next."""
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return first, add_months(first, 3)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def month_of(moment: datetime) -> date:
    """The first day of `moment`'s month, in UTC."""
    day = moment.astimezone(UTC).date()
    return day.replace(day=1)


# --- each case's conference lead ---------------------------------------------------------------


def _conference_lead() -> Any:
    """The agency leading the case's latest conference that has a lead (the first by code where
    several share it), correlated to the enclosing query's case: what
    `Case.conference_lead_agency_id` keeps."""
    latest, holder = aliased(Conference), aliased(Participant)
    held = (
        select(holder.id)
        .where(
            col(holder.conference_id) == col(latest.id),
            col(holder.role) == str(Role.lead),
            col(holder.agency_id).is_not(None),  # a foreign key: an agency, read from the index
        )
        .exists()
    )
    latest_conference = (
        select(latest.id)
        .where(col(latest.case_id) == col(Case.id), held)
        .order_by(col(latest.cycle).desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    return (
        select(Agency.id)
        .join(Participant, col(Agency.id) == col(Participant.agency_id))
        .where(
            col(Participant.conference_id) == latest_conference,
            col(Participant.role) == str(Role.lead),
        )
        .order_by(col(Agency.code))
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


@cache
def _leads_query(every: bool) -> Any:
    """(case id, its conference lead) of the cases bound as `cases`, or of every case."""
    query = select(col(Case.id), _conference_lead())  # type: ignore[call-overload]
    return query if every else query.where(col(Case.id).in_(bindparam("cases", expanding=True)))


@cache
def _set_lead() -> Any:
    cases = Case.__table__  # type: ignore[attr-defined]
    return (
        update(cases)
        .where(cases.c.id == bindparam("case"))
        .values(conference_lead_agency_id=bindparam("lead"))
    )


def refresh_leads(session: OrmSession, case_ids: Collection[int] | None) -> None:
    """Set `Case.conference_lead_agency_id` afresh for `case_ids` (every case if None), in the
    database and on the cases this session holds. Its statements are built once: this runs at
    every flush that touches a conference or a participant."""
    connection = session.connection()
    leads = connection.execute(
        _leads_query(case_ids is None), {} if case_ids is None else {"cases": list(case_ids)}
    ).all()
    if not leads:
        return
    connection.execute(_set_lead(), [{"case": case_id, "lead": lead} for case_id, lead in leads])
    for case_id, lead in leads:
        held = session.identity_map.get(identity_key(Case, case_id))
        if held is not None:
            set_committed_value(held, "conference_lead_agency_id", lead)


# --- personnel continuity per case and agency --------------------------------------------------


#: The roles that are not professional (client, family): their participations never count.
NOT_PROFESSIONAL = [str(r) for r in Role if r not in PROFESSIONAL_ROLES]


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


# --- the stage tallies, and what a flush changes ------------------------------------------------


#: `StageTally.stage` of a case closed without any recorded move: its stage then is not known.
UNKNOWN_STAGE = "(unknown)"


#: The case's columns a stage tally rests on.
_TALLIED = ("created_at", "closed_at", "status", "stage")


#: The conference's and participant's columns a lead or a continuity summary rests on.
_CONFERENCE_KEYS = ("case_id", "cycle", "created_at")


_PARTICIPANT_KEYS = ("conference_id", "role", "agency_id", "representative_id")


_PENDING = "caseconf.portfolio.summaries"


def quarter_end_of(moment: datetime) -> date:
    """The first quarter end at or after `moment`: a quarter's first day (midnight UTC)."""
    moment = aware(moment)
    first, after = quarter_of(moment.astimezone(UTC).date())
    return first if moment == midnight(first) else after


def stage_changes(case_row: Any, changes: list[Any]) -> Counter[tuple[date, str]]:
    """What one case adds to (or takes from) the cases by stage from each quarter end on.

    It counts from its creation until its closure: with the stage its first change came from,
    each change then adding the stage it went to and taking away the one before (the sum
    telescopes to the stage of its last change); without changes, with its stage now if open,
    else as not known. `case_row` is (created_at, closed_at, status, stage); `changes` are
    (at, from_stage, to_stage) in time order."""
    created, closed, status, stage = case_row
    born = quarter_end_of(created)
    gone = quarter_end_of(closed) if closed is not None else None
    tally: Counter[tuple[date, str]] = Counter()

    def counts(what: str, start: date, n: int) -> None:
        if gone is not None and start >= gone:
            return
        tally[(start, what)] += n
        if gone is not None:
            tally[(gone, what)] -= n

    if not changes:
        counts(str(stage) if status == CaseStatus.open else UNKNOWN_STAGE, born, 1)
        return tally
    before = str(changes[0][1])
    counts(before, born, 1)
    for at, _, to in changes:
        start = max(quarter_end_of(at), born)
        counts(str(to), start, 1)
        counts(before, start, -1)
        before = str(to)
    return tally


@cache
def _tallied_queries(every: bool) -> tuple[Any, Any]:
    """The cases (bound as `cases`, or every case) and their stage changes in time order."""
    cases = select(  # type: ignore[call-overload]
        col(Case.id), col(Case.created_at), col(Case.closed_at), col(Case.status), col(Case.stage)
    )
    changes = select(
        StageChange.case_id, StageChange.at, StageChange.from_stage, StageChange.to_stage
    ).order_by(col(StageChange.case_id), col(StageChange.at), col(StageChange.id))
    if every:
        return cases, changes
    bound: Any = bindparam("cases", expanding=True)
    return (
        cases.where(col(Case.id).in_(bound)).with_for_update(),
        changes.where(col(StageChange.case_id).in_(bound)),
    )


def stage_tallies(connection: Connection, case_ids: Collection[int] | None) -> Counter[Any]:
    """What `case_ids` (every case if None) add up to, per quarter end and stage, as the
    database holds them now (their rows locked until the transaction ends, where it can)."""
    cases, changes = _tallied_queries(case_ids is None)
    bound: dict[str, Any] = {} if case_ids is None else {"cases": list(case_ids)}
    held = connection.execute(cases, bound).all()  # locked first, then their history read
    history: dict[int, list[Any]] = {}
    for case_id, *change in connection.execute(changes, bound):
        history.setdefault(case_id, []).append(change)
    total: Counter[Any] = Counter()
    for case_id, *row in held:
        total.update(stage_changes(row, history.get(case_id, [])))
    return total


def add_stage_tallies(connection: Connection, change: Counter[Any]) -> None:
    """Add `change` (per quarter end and stage) to `StageTally`."""
    rows = [{"at": at, "stage": s, "cases": n} for (at, s), n in sorted(change.items()) if n]
    add_counts(connection, StageTally, rows)


@dataclass
class _Pending:
    """What a flush changes: cases whose stage tallies move (and what they gave before it),
    cases whose conferences or participants change (their lead and continuity)."""

    tallied: list[Case]
    tallied_ids: set[int]
    before: Counter[Any]
    case_ids: set[int]
    conference_ids: set[int]


def _changed(thing: Any, keys: Iterable[str]) -> bool:
    """New, or one of `keys` changed."""
    state = inspect(thing)
    return not state.persistent or any(state.attrs[k].history.has_changes() for k in keys)


def note_summary_changes(session: OrmSession) -> None:
    """Before a flush: note which summaries it changes and read the stage tallies its cases
    gave before it (`keep_summaries` brings them up to date after it)."""
    pending = _Pending([], set(), Counter(), set(), set())
    deleted = session.deleted  # an identity set: rows are not hashable
    for thing in (*session.new, *session.dirty, *deleted):
        if isinstance(thing, Case) and (thing in deleted or _changed(thing, _TALLIED)):
            pending.tallied.append(thing)
        elif isinstance(thing, StageChange):
            pending.tallied_ids.add(thing.case_id)
        elif isinstance(thing, Conference) and (
            thing in deleted or _changed(thing, _CONFERENCE_KEYS)
        ):
            pending.case_ids.add(thing.case_id)
        elif isinstance(thing, Participant) and (
            thing in deleted or _changed(thing, _PARTICIPANT_KEYS)
        ):
            history = inspect(thing).attrs.conference_id.history
            pending.conference_ids.update(
                c for c in (thing.conference_id, *history.deleted) if c is not None
            )
    known = pending.tallied_ids | {c.id for c in pending.tallied if c.id is not None}
    if known:
        pending.before = stage_tallies(session.connection(), known)
    work = pending.tallied or pending.tallied_ids or pending.case_ids or pending.conference_ids
    session.info[_PENDING] = pending if work else None


def keep_summaries(session: OrmSession) -> None:
    """After a flush: bring the stage tallies, the leads and the continuity summaries of the
    cases it changed up to date."""
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    connection = session.connection()
    tallied = pending.tallied_ids | {c.id for c in pending.tallied if c.id is not None}
    if tallied:
        change = stage_tallies(connection, tallied)
        change.subtract(pending.before)
        add_stage_tallies(connection, change)
    case_ids = set(pending.case_ids)
    if pending.conference_ids:
        case_ids.update(
            connection.execute(
                select(Conference.case_id).where(col(Conference.id).in_(pending.conference_ids))
            ).scalars()
        )
    if case_ids:
        refresh_leads(session, case_ids)
        refresh_participation(connection, case_ids)


def rebuild_summaries(session: OrmSession) -> None:
    """Every summary written afresh from the record: for rows written around the ORM (a
    migration's backfill, a bench's bulk insert)."""
    connection = session.connection()
    connection.execute(delete(StageTally))
    add_stage_tallies(connection, stage_tallies(connection, None))
    refresh_leads(session, None)
    refresh_participation(connection, None)
