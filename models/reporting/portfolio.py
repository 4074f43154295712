"""The managers' portfolio: every open case at a glance, from aggregate SQL over the record.

Each figure is a grouped query over an index, or reads summaries kept on every write (a case's
lead, continuity per case and agency, the stage tallies of past quarter ends: the last section
of this module), so the report reads few rows per case. Lists (the waiting cases, the reviews)
show the oldest `LIST_LIMIT` rows and say how many more there are. References, codes, dates
and counts only: nothing a coordinator typed.
"""

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from statistics import median
from typing import Any

from sqlalchemy import (
    String,
    and_,
    case,
    func,
    literal,
    or_,
    type_coerce,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.record.summaries import (
    NOT_PROFESSIONAL,
    UNKNOWN_STAGE,
    add_months,
    aware,
    midnight,
    month_of,
    quarter_of,
)
from models.record.tables import (
    ActionItem,
    Agency,
    AgencyParticipation,
    AgencyParticipationMonth,
    Case,
    Channel,
    Conference,
    ConsentRecord,
    Notification,
    Participant,
    Review,
    StageChange,
    StageTally,
    UTCDateTime,
)
from models.vocabulary import (
    ActionStatus,
    CaseStatus,
    ConferenceKind,
    ConsentDecision,
    NotificationStatus,
    Phase,
    ReviewStatus,
    Role,
)

#: Rows shown in a list before "and N more".
LIST_LIMIT = 50
#: How far ahead the report looks for reviews.
REVIEW_HORIZON = timedelta(days=30)
#: A repeat referral: the same agency file number referred again within this time of a closure.
REPEAT_WINDOW = timedelta(days=365)
#: How long back a retried message counts.
RETRY_WINDOW = timedelta(days=30)
#: Personnel continuity counts the conferences prepared this long back (a year, as reported).
CONTINUITY_WINDOW = timedelta(days=365)
#: The steps at which a case waits for a person (the coordinator) rather than for time.
WAITING_PHASES = (
    Phase.preparation,
    Phase.consent,
    Phase.stakeholders,
    Phase.information,
    Phase.family_only,
    Phase.decision,
    Phase.review_cancelled,
)
NONE = "(none)"
NOT_CHOSEN = "(not chosen yet)"


# --- placement: where an open case belongs ------------------------------------------------------

_referrer = aliased(Agency)
_transferred_lead = aliased(Agency)
_conference_lead_agency = aliased(Agency)


@dataclass(frozen=True)
class Portfolio:
    """Open cases counted by stage, conference type, profile, area and lead agency."""

    open_cases: int
    by: dict[str, dict[str, int]]  # dimension -> value -> open cases
    unplaced: list[str]  # what the report could not place, each a sentence with counts


DIMENSIONS = ("stage", "conference_type", "profile", "area", "lead")


def portfolio(session: Session, *, known_profiles: Iterable[str]) -> Portfolio:
    """Open cases by each dimension: one grouped query over the case's own dimensions and its
    area (the transferred one, else the referring agency's), one over its lead. Each groups
    the case's own columns in the order of an index (`ix_case_status_placement`,
    `ix_case_status_lead`: no sort, no row read); agencies are placed here, from the directory."""
    own = (
        col(Case.stage),
        col(Case.conference_type),
        col(Case.profile),
        col(Case.area),
        col(Case.referring_agency_id),
    )
    counted = session.exec(
        select(*own, func.count())  # type: ignore[call-overload]
        .where(col(Case.status) == CaseStatus.open)
        .group_by(*own)
    ).all()
    agencies = session.exec(select(Agency.id, Agency.area, Agency.code)).all()
    area_of = {id_: area for id_, area, _ in agencies}
    code_of = {id_: code for id_, _, code in agencies}
    rows = [
        (stage, type_, profile, area if area is not None else area_of.get(referrer), n)
        for stage, type_, profile, area, referrer, n in counted
    ]
    # The lead: a transfer's, else the latest conference's (kept on the case), by code.
    lead_counts: Counter[str | None] = Counter()
    for transferred, confirmed, n in session.exec(
        select(  # type: ignore[call-overload]
            col(Case.lead_agency_id), col(Case.conference_lead_agency_id), func.count()
        )
        .where(col(Case.status) == CaseStatus.open)
        .group_by(col(Case.lead_agency_id), col(Case.conference_lead_agency_id))
    ):
        lead_counts[code_of.get(transferred) or code_of.get(confirmed)] += int(n)
    by: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    total = 0
    for *values, count in rows:
        total += count
        for dimension, value in zip(DIMENSIONS[:-1], values, strict=True):
            label = (
                value
                if value is not None
                else (NOT_CHOSEN if dimension == "conference_type" else NONE)
            )
            by[dimension][str(label)] = by[dimension].get(str(label), 0) + count
    for value, count in lead_counts.items():
        by["lead"][str(value if value is not None else NONE)] = count
    known = set(known_profiles)
    unplaced: list[str] = []
    removed = {p: n for p, n in by["profile"].items() if p not in known}
    for name, count in sorted(removed.items()):
        unplaced.append(
            f"{count} open case(s) follow profile `{name}`, which no longer exists in the "
            "profiles folder: counted under its name; their next conference cannot be prepared."
        )
    if by["conference_type"].get(NOT_CHOSEN):
        unplaced.append(
            f"{by['conference_type'][NOT_CHOSEN]} open case(s) have no conference yet: "
            f"counted under type {NOT_CHOSEN}."
        )
    if by["area"].get(NONE):
        unplaced.append(
            f"{by['area'][NONE]} open case(s) have no area (not transferred to one, referred by "
            f"a national agency): counted under area {NONE}."
        )
    if by["lead"].get(NONE):
        unplaced.append(
            f"{by['lead'][NONE]} open case(s) have no lead agency yet (no conference has "
            f"confirmed one): counted under lead {NONE}."
        )
    return Portfolio(open_cases=total, by=by, unplaced=unplaced)


# --- waiting for a person ----------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    reference: str
    step: str
    since: datetime
    who_acts: str
    late: bool


@dataclass(frozen=True)
class WaitingReport:
    total: int
    by_step: dict[str, tuple[int, int]]  # step -> (waiting, late)
    oldest: list[Waiting]
    late_after_days: dict[str, int]


def waiting_since() -> Any:
    """When the case entered its current phase (a transfer or a stage move leaves it alone); the
    last change to the record for rows written before it was kept."""
    return func.coalesce(col(Case.phase_since), col(Case.updated_at))


def waiting(
    session: Session,
    *,
    now: datetime,
    late_after_days: dict[str, int],
    phases: Collection[str] = WAITING_PHASES,
) -> WaitingReport:
    """Open cases waiting at a human step (in one of `phases`: caseconf's own, unless the steps
    an installation registered add theirs), oldest first. `since` is when the case reached its
    current step; who acts is the agency coordinating the current conference, else the referring
    agency (looked up for the listed cases only)."""
    since = waiting_since()
    waiting_rows = and_(
        col(Case.status) == CaseStatus.open,
        col(Case.phase).in_([str(p) for p in phases]),
    )
    late_when = [
        (and_(col(Case.phase) == step, since < now - timedelta(days=days)), 1)
        for step, days in late_after_days.items()
    ]
    late = case(*late_when, else_=0) if late_when else literal(0)
    counts = session.exec(
        select(col(Case.phase), func.count(), func.sum(late))  # type: ignore[call-overload]
        .where(waiting_rows)
        .group_by(col(Case.phase))
    ).all()
    by_step = {str(step): (int(n), int(k or 0)) for step, n, k in counts}
    oldest = session.exec(
        select(  # type: ignore[call-overload]
            col(Case.id), col(Case.reference), col(Case.phase), since, col(_referrer.code)
        )
        .join(_referrer, col(_referrer.id) == col(Case.referring_agency_id))
        .where(waiting_rows)
        .order_by(since, col(Case.reference))
        .limit(LIST_LIMIT)
    ).all()
    coordinators = _coordinators(session, case_ids=[row[0] for row in oldest])
    listed = [
        Waiting(
            reference=ref,
            step=str(step),
            since=aware(_as_datetime(moment)),
            who_acts=coordinators.get(case_id, referrer),
            late=step in late_after_days
            and aware(_as_datetime(moment)) < now - timedelta(days=late_after_days[step]),
        )
        for case_id, ref, step, moment, referrer in oldest
    ]
    return WaitingReport(
        total=sum(n for n, _ in by_step.values()),
        by_step=by_step,
        oldest=listed,
        late_after_days=dict(late_after_days),
    )


def _coordinators(session: Session, *, case_ids: list[int]) -> dict[int, str]:
    """The agency coordinating each case's latest conference that has a coordinator."""
    rows = session.exec(
        select(Conference.case_id, Conference.cycle, Agency.code)
        .join(Participant, col(Participant.conference_id) == col(Conference.id))
        .join(Agency, col(Agency.id) == col(Participant.agency_id))
        .where(
            col(Conference.case_id).in_(case_ids),
            col(Participant.role) == str(Role.coordinator),
        )
        .order_by(col(Conference.case_id), col(Conference.cycle).desc(), col(Agency.code))
    ).all()
    found: dict[int, str] = {}
    for case_id, _, code in rows:
        found.setdefault(case_id, code)
    return found


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite gives a COALESCE of timestamps back as text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# --- reviews -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewDue:
    reference: str
    cycle: int
    due_on: date


@dataclass(frozen=True)
class ReviewReport:
    upcoming: int
    overdue: int
    without_review: int  # open cases whose review was cancelled and none planned again
    upcoming_list: list[ReviewDue]
    overdue_list: list[ReviewDue]


def reviews(session: Session, *, now: datetime) -> ReviewReport:
    """Reviews due in the next 30 days, and overdue ones: still scheduled past their date (their
    run never started), or started but their conference not yet decided by the date."""
    base = (
        select(Case.reference, Review.cycle, Review.due_at)
        .join(Case, col(Case.id) == col(Review.case_id))
        .where(col(Case.status) == CaseStatus.open)
    )
    upcoming_where = and_(
        col(Review.status) == ReviewStatus.scheduled,
        col(Review.due_at) >= now,
        col(Review.due_at) < now + REVIEW_HORIZON,
    )
    overdue_where = and_(
        col(Review.due_at) < now,
        or_(
            col(Review.status) == ReviewStatus.scheduled,
            and_(
                col(Review.status) == ReviewStatus.started,
                col(Review.cycle) == col(Case.cycle),
                col(Case.phase).not_in([str(Phase.release), str(Phase.review_scheduled)]),
            ),
        ),
    )

    def listed(where: Any) -> tuple[int, list[ReviewDue]]:
        count = session.exec(
            select(func.count())
            .select_from(Review)
            .join(Case, col(Case.id) == col(Review.case_id))
            .where(col(Case.status) == CaseStatus.open, where)
        ).one()
        rows = session.exec(
            base.where(where).order_by(col(Review.due_at), col(Case.reference)).limit(LIST_LIMIT)
        ).all()
        return int(count), [ReviewDue(r, c, aware(d).date()) for r, c, d in rows]

    upcoming, upcoming_list = listed(upcoming_where)
    overdue, overdue_list = listed(overdue_where)
    without = session.exec(
        select(func.count()).where(
            col(Case.status) == CaseStatus.open, col(Case.phase) == Phase.review_cancelled
        )
    ).one()
    return ReviewReport(upcoming, overdue, int(without), upcoming_list, overdue_list)


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencyActions:
    agency: str
    open: int
    overdue: int


def actions(session: Session, *, today: date) -> list[AgencyActions]:
    """Open actions of open cases by owner agency, and how many are past their due date."""
    overdue = func.sum(case((col(ActionItem.due_on) < today, 1), else_=0))
    # Grouped by owner in the order of `ix_actionitem_status_owner` (no sort); codes joined after.
    by_owner = (
        select(  # type: ignore[call-overload]
            col(ActionItem.owner_agency_id).label("owner"),
            func.count().label("open"),
            overdue.label("overdue"),
        )
        .join(Case, col(Case.id) == col(ActionItem.case_id))
        .where(col(ActionItem.status) == ActionStatus.open, col(Case.status) == CaseStatus.open)
        .group_by(col(ActionItem.owner_agency_id))
        .subquery("by_owner")
    )
    rows = session.exec(
        select(Agency.code, by_owner.c.open, by_owner.c.overdue)  # type: ignore[call-overload]
        .join(by_owner, by_owner.c.owner == col(Agency.id))
        .order_by(Agency.code)
    ).all()
    return [AgencyActions(code, int(n), int(late or 0)) for code, n, late in rows]


# --- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    agency: str
    channel: str  # the channel's kind (email, chat), or "hand-over"
    failed: int  # failed and not yet re-sent
    retried: int  # sent after more than one attempt within RETRY_WINDOW


def delivery(session: Session, *, now: datetime) -> list[DeliveryRow]:
    """Failed and retried messages by recipient agency and channel kind."""
    failed = func.sum(case((col(Notification.status) == NotificationStatus.failed, 1), else_=0))
    retried = func.sum(
        case(
            (
                and_(
                    col(Notification.status) == NotificationStatus.sent,
                    col(Notification.attempts) > 1,
                ),
                1,
            ),
            else_=0,
        )
    )
    # Grouped by the agency's and channel's ids, named after: no lookup per message.
    recipient, channel = col(Notification.recipient_agency_id), col(Notification.channel)
    counted = session.exec(
        select(recipient, channel, failed, retried)  # type: ignore[call-overload]
        .where(
            recipient.is_not(None),
            or_(
                col(Notification.status) == NotificationStatus.failed,
                and_(
                    col(Notification.attempts) > 1,
                    col(Notification.created_at) >= now - RETRY_WINDOW,
                ),
            ),
        )
        .group_by(recipient, channel)
    ).all()
    code_of = dict(session.exec(select(Agency.id, Agency.code)).all())
    kind_of = {tag: str(kind) for tag, kind in session.exec(select(Channel.tag, Channel.kind))}
    rows: dict[tuple[str, str], list[int]] = {}
    for agency_id, tag, f, r in counted:
        row = rows.setdefault((code_of[agency_id], kind_of.get(tag, "hand-over")), [0, 0])
        row[0], row[1] = row[0] + int(f or 0), row[1] + int(r or 0)
    return [DeliveryRow(a, k, f, r) for (a, k), (f, r) in sorted(rows.items())]


# --- personnel continuity ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuityRow:
    agency: str
    conferences: int  # participations in conferences (professional roles)
    named: int  # of those with a named representative
    same_person: int  # attended by the agency's most frequent representative in each case

    @property
    def share(self) -> float | None:
        return self.same_person / self.named if self.named else None


def continuity(session: Session, *, now: datetime) -> list[ContinuityRow]:
    """Per agency, over the conferences prepared in the last `CONTINUITY_WINDOW` (12 months):
    the share of its named participations attended by the person who most often represents it
    in that case (as `models.reporting.continuity`, over those conferences, summed over cases).

    From the summaries kept per case and agency: the cases whose first conference with the
    agency falls in a month after the window's first are summed per month already; those of
    the window's first month are read one by one; only those with conferences on both sides of
    the window's start are counted afresh, from their participations within it."""
    since = now - CONTINUITY_WINDOW
    first_month = month_of(since)
    summary, months = AgencyParticipation, AgencyParticipationMonth
    totals: dict[int, list[int]] = {}

    def add(agency_id: int, counts: Iterable[int]) -> None:
        was = totals.get(agency_id, [0, 0, 0])
        totals[agency_id] = [a + int(b) for a, b in zip(was, counts, strict=True)]

    for agency_id, *counts in session.exec(
        select(  # type: ignore[call-overload]
            col(months.agency_id),
            func.sum(col(months.participations)),
            func.sum(col(months.named)),
            func.sum(col(months.same_person)),
        )
        .where(col(months.month) > first_month)
        .group_by(col(months.agency_id))
    ):
        add(agency_id, counts)
    for agency_id, *counts in session.exec(
        select(  # type: ignore[call-overload]
            col(summary.agency_id),
            func.sum(col(summary.participations)),
            func.sum(col(summary.named)),
            func.sum(col(summary.same_person)),
        )
        .where(
            col(summary.first_at) >= since,
            col(summary.first_at) < midnight(add_months(first_month, 1)),
        )
        .group_by(col(summary.agency_id))
    ):
        add(agency_id, counts)
    for (_, agency_id), counts in _straddling(session, since=since).items():
        add(agency_id, counts)
    codes = dict(
        session.exec(select(Agency.id, Agency.code).where(col(Agency.id).in_(list(totals)))).all()
    )
    return sorted(
        (ContinuityRow(codes[a], *counts) for a, counts in totals.items() if counts[0]),
        key=lambda r: r.agency,
    )


def _straddling(session: Session, *, since: datetime) -> dict[tuple[int, int], list[int]]:
    """The cases and agencies with conferences prepared both before and from `since`, counted
    over those from `since` (participations, named, by the most frequent person): one index
    range per month before it, then each person's count in those cases."""
    summary = AgencyParticipation
    earliest = session.exec(select(func.min(col(summary.first_month)))).one()
    if earliest is None:
        return {}
    before = [earliest]
    while before[-1] < month_of(since):
        before.append(add_months(before[-1], 1))
    straddles = and_(
        col(summary.first_month).in_(before),
        col(summary.last_at) >= since,
        col(summary.first_at) < since,
    )
    connection = session.connection()
    found: dict[tuple[int, int], list[int]] = {
        (case_id, agency_id): [0, 0, 0]
        for case_id, agency_id in connection.execute(
            select(col(summary.case_id), col(summary.agency_id)).where(straddles)
        )
    }
    if not found:
        return {}
    person = col(Participant.representative_id)
    for case_id, agency_id, rep, n in connection.execute(
        select(col(Conference.case_id), col(Participant.agency_id), person, func.count())
        .join(Participant, col(Participant.conference_id) == col(Conference.id))
        .where(
            col(Conference.case_id).in_(select(col(summary.case_id)).where(straddles)),
            col(Conference.created_at) >= since,
            col(Participant.role).not_in(NOT_PROFESSIONAL),
        )
        .group_by(col(Conference.case_id), col(Participant.agency_id), person)
    ):
        pair: tuple[Any, Any] = (case_id, agency_id)  # an agency where one took part
        counts = found.get(pair)
        if counts is not None:
            counts[0] += n
            if rep is not None:
                counts[1] += n
                counts[2] = max(counts[2], n)
    return found


# --- the quarter -------------------------------------------------------------------------------


def quarter_label(first: date) -> str:
    return f"{first.year}-Q{(first.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Quarter:
    label: str
    start: date
    end: date  # exclusive
    referrals: int
    repeat_referrals: int
    conferences_held: dict[str, int]  # by conference type
    consent: dict[str, int]  # refused, withdrawn
    first_conferences: int  # first conferences held, the median rests on these
    median_days_to_first_conference: float | None
    reviews_held: int
    reviews_on_time: int
    closures: dict[str, int] = field(default_factory=dict)  # by reason


def quarter(session: Session, *, start: date, end: date) -> Quarter:
    """One quarter's figures (`quarters`)."""
    return quarters(session, [(start, end)])[0]


@dataclass(frozen=True)
class _Bounds:
    """Consecutive quarters (UTC days), each as `quarters` gives it: which rows fall in which."""

    bounds: list[tuple[date, date]]

    def within(self, moment: Any) -> Any:
        """`moment` falls in one of the quarters."""
        return and_(moment >= midnight(self.bounds[0][0]), moment < midnight(self.bounds[-1][1]))

    def which(self, moment: Any) -> Any:
        """The index of the quarter `moment` falls in (`within` all of them)."""
        return case(
            *(
                (moment < literal(midnight(e), UTCDateTime), i)
                for i, (_, e) in enumerate(self.bounds)
            ),
            else_=len(self.bounds) - 1,
        )

    def of(self, moment: datetime) -> int:
        """The quarter a moment read back falls in (it is `within` all of them)."""
        day = aware(moment)
        return next(i for i, (_, e) in enumerate(self.bounds) if day < midnight(e))

    def grouped(
        self, session: Session, value: Any, moment: Any, *where: Any
    ) -> list[dict[Any, int]]:
        """Rows counted by `value`, per quarter of `moment`. Computed inside and grouped on
        outside: PostgreSQL would not match the same parameterised CASE written twice."""
        inner = select(value.label("value"), self.which(moment).label("q")).where(
            self.within(moment), *where
        )
        placed = inner.subquery("placed")
        found: list[dict[Any, int]] = [{} for _ in self.bounds]
        for v, q, n in session.exec(
            select(placed.c.value, placed.c.q, func.count()).group_by(  # type: ignore[call-overload]
                placed.c.value, placed.c.q
            )
        ):
            found[q][v] = int(n)
        return found


def quarters(session: Session, bounds: list[tuple[date, date]]) -> list[Quarter]:
    """Consecutive quarters' figures (UTC days), each quarter as `bounds` gives it, first to
    last: referrals, repeats, conferences held (decision released), consent refused and
    withdrawn, days from referral to the first conference, reviews held on time (on or before
    their due day), closures by reason. Each figure is one query over all the quarters, each
    row placed in its quarter, rather than one query per quarter."""
    if any(end != start for (_, end), (start, _) in pairwise(bounds)):
        raise ValueError("quarters: bounds must follow one another")
    placed = _Bounds(bounds)
    referrals = placed.grouped(session, literal("all"), col(Case.created_at))
    repeats = _repeat_referrals(session, placed)
    released = col(Conference.released_at)
    held = placed.grouped(session, col(Conference.conference_type), released)
    consent = placed.grouped(
        session,
        col(ConsentRecord.decision),
        col(ConsentRecord.recorded_at),
        col(ConsentRecord.decision).in_(
            [str(ConsentDecision.refused), str(ConsentDecision.withdrawn)]
        ),
    )
    days = _days_to_first_conference(session, placed)
    reviews_held, on_time = _reviews_held(session, placed)
    closures = placed.grouped(session, col(Case.closure_reason), col(Case.closed_at))
    return [
        Quarter(
            label=quarter_label(start),
            start=start,
            end=end,
            referrals=referrals[i].get("all", 0),
            repeat_referrals=len(repeats[i]),
            conferences_held={str(k): v for k, v in held[i].items()},
            consent={str(k): v for k, v in consent[i].items()},
            first_conferences=len(days[i]),
            median_days_to_first_conference=round(median(days[i]), 1) if days[i] else None,
            reviews_held=reviews_held[i],
            reviews_on_time=on_time[i],
            closures={str(k or NONE): v for k, v in closures[i].items()},
        )
        for i, (start, end) in enumerate(bounds)
    ]


def _repeat_referrals(session: Session, placed: _Bounds) -> list[set[int]]:
    """Per quarter, the cases referred in it within `REPEAT_WINDOW` of a closed case of the
    same agency file number."""
    earlier = aliased(Case)
    # Identities stay with the agencies: the same person is the same agency file number.
    pairs = session.exec(
        select(Case.id, Case.created_at, earlier.closed_at)
        .join(
            earlier,
            and_(
                col(earlier.referring_agency_id) == col(Case.referring_agency_id),
                col(earlier.referral_file_number) == col(Case.referral_file_number),
                col(earlier.id) != col(Case.id),
                col(earlier.status) == CaseStatus.closed,
            ),
        )
        .where(placed.within(col(Case.created_at)))
    ).all()
    repeats: list[set[int]] = [set() for _ in placed.bounds]
    for case_id, created, closed in pairs:
        if (
            case_id is not None
            and closed is not None
            and (aware(closed) <= aware(created) <= aware(closed) + REPEAT_WINDOW)
        ):
            repeats[placed.of(created)].add(case_id)
    return repeats


def _days_to_first_conference(session: Session, placed: _Bounds) -> list[list[float]]:
    """Per quarter, the days from referral to each first conference held in it."""
    released = col(Conference.released_at)
    firsts = (
        session.connection()
        .execute(
            select(  # type: ignore[call-overload]
                placed.which(released), _raw(col(Case.created_at)), _raw(col(Conference.starts_at))
            )
            .join(Case, col(Case.id) == col(Conference.case_id))
            .where(
                placed.within(released),
                col(Conference.cycle) == 1,
                col(Conference.starts_at).is_not(None),
            )
        )
        .all()
    )
    days: list[list[float]] = [[] for _ in placed.bounds]
    for q, c, s in firsts:
        if s is not None:
            started, referred = _as_datetime(s), _as_datetime(c)
            if (started.tzinfo is None) != (referred.tzinfo is None):  # both UTC, one naive
                started, referred = aware(started), aware(referred)
            days[q].append((started - referred).total_seconds() / 86400)
    return days


def _raw(moment: Any) -> Any:
    """A timestamp column read as the driver gives it (SQLite: text, parsed by `_as_datetime`),
    without the row-by-row conversion of `UTCDateTime`: for figures over thousands of rows."""
    return type_coerce(moment, String)


def _reviews_held(session: Session, placed: _Bounds) -> tuple[list[int], list[int]]:
    """Per quarter, the review conferences held in it and those held on or before their due
    day."""
    released = col(Conference.released_at)
    review_rows = session.exec(
        select(placed.which(released), Conference.starts_at, Review.due_at)  # type: ignore[call-overload]
        .join(
            Review,
            and_(
                col(Review.case_id) == col(Conference.case_id),
                col(Review.cycle) == col(Conference.cycle),
                col(Review.status) == ReviewStatus.started,
            ),
        )
        .where(placed.within(released), col(Conference.kind) == ConferenceKind.review)
    ).all()
    reviews_held = [0 for _ in placed.bounds]
    on_time = [0 for _ in placed.bounds]
    for q, s, d in review_rows:
        reviews_held[q] += 1
        if s is not None and aware(s).date() <= aware(d).date():
            on_time[q] += 1
    return reviews_held, on_time


# --- cases by stage over the last quarters ------------------------------------------------------


@dataclass(frozen=True)
class StageSnapshot:
    label: str  # the quarter, or "now"
    at: datetime
    by_stage: dict[str, int]  # open cases at `at` by their stage then
    unknown: int  # cases since closed without a recorded move: their stage then is not known


def stage_at(at: datetime) -> Any:
    """A case's stage at `at`, from its stage history: where its last change before `at` left it,
    else where its first change after `at` came from, else its stage now if it is still open."""
    before = (
        select(StageChange.to_stage)
        .where(col(StageChange.case_id) == col(Case.id), col(StageChange.at) <= at)
        .order_by(col(StageChange.at).desc(), col(StageChange.id).desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    after = (
        select(StageChange.from_stage)
        .where(col(StageChange.case_id) == col(Case.id), col(StageChange.at) > at)
        .order_by(col(StageChange.at), col(StageChange.id))
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    now_if_open = case((col(Case.status) == CaseStatus.open, col(Case.stage)), else_=None)
    return func.coalesce(before, after, now_if_open)


def stages_over_quarters(
    session: Session, *, now: datetime, quarters: int = 4
) -> list[StageSnapshot]:
    """Open cases by stage at the end of each of the last `quarters` quarters, and now.

    A case's stage at a quarter's end is what `stage_at` says. `StageTally` keeps, per quarter
    end and stage, how many cases each write adds or takes away from then on (`stage_changes`),
    so a quarter's picture is the sum of the rows up to its end: a read of a few rows per
    quarter of history, whatever the number of cases.
    """
    first, _ = quarter_of(now.date())
    ends = [add_months(first, -3 * k + 3) for k in range(quarters, 0, -1)]
    tallies = session.exec(
        select(col(StageTally.at), col(StageTally.stage), col(StageTally.cases)).where(
            col(StageTally.at) <= ends[-1]
        )
    ).all()
    snapshots = []
    for end in ends:
        totals: Counter[str | None] = Counter()
        for at, stage, n in tallies:
            if at <= end:
                totals[None if stage == UNKNOWN_STAGE else stage] += n
        snapshots.append(_snapshot(quarter_label(add_months(end, -3)), midnight(end), totals))
    # "now" is the record as it is, not a reconstruction: a stage set without a history row
    # (or a history dated after `now`) must not make today's column disagree with the cases.
    today = session.exec(
        select(Case.stage, func.count())  # type: ignore[call-overload]
        .where(col(Case.status) == CaseStatus.open)
        .group_by(Case.stage)
    )
    return [*snapshots, _snapshot("now", now, Counter({str(s): n for s, n in today}))]


def _snapshot(label: str, at: datetime, totals: Counter[str | None]) -> StageSnapshot:
    return StageSnapshot(
        label,
        at,
        {s: n for s, n in sorted(totals.items(), key=str) if s is not None and n},
        totals[None],
    )


# --- kept on every write: the stage tallies, the leads, continuity -----------------------------


def placement(session: Session, *, case_id: int) -> tuple[str | None, str | None]:
    """One case's area and lead agency code, placed as the portfolio places them."""
    row = session.exec(
        select(  # type: ignore[call-overload]
            func.coalesce(col(Case.area), col(_referrer.area)),
            func.coalesce(col(_transferred_lead.code), col(_conference_lead_agency.code)),
        )
        .join(_referrer, col(_referrer.id) == col(Case.referring_agency_id))
        .outerjoin(_transferred_lead, col(_transferred_lead.id) == col(Case.lead_agency_id))
        .outerjoin(
            _conference_lead_agency,
            col(_conference_lead_agency.id) == col(Case.conference_lead_agency_id),
        )
        .where(col(Case.id) == case_id)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)
