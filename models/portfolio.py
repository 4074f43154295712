"""The managers' portfolio: every open case at a glance, from aggregate SQL over the record.

Each figure is one grouped query, so the report's cost grows with the number of groups, not of
cases. Lists (the waiting cases, the reviews) show the oldest `LIST_LIMIT` rows and say how many
more there are. References, codes, dates and counts only: nothing a coordinator typed.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from statistics import median
from typing import Any

from sqlalchemy import and_, case, func, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.tables import (
    ActionItem,
    Agency,
    Case,
    Channel,
    Conference,
    ConsentRecord,
    Notification,
    Participant,
    Review,
    StageChange,
    UTCDateTime,
)
from models.vocabulary import (
    PROFESSIONAL_ROLES,
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


def _conference_role_code(role: Role) -> Any:
    """The code of the agency in `role` at the case's latest conference that has one (the first
    code where several agencies share it), correlated to the enclosing query's case.

    Two index lookups per case (its conferences latest first, stopping at the first with such
    an agency; then that conference's agencies by `min`): no sort per case and no window over
    every case's conferences, which SQLite answers several times slower at 10,000 cases."""
    latest, holder = aliased(Conference), aliased(Participant)
    held = (
        select(holder.id)
        .where(
            col(holder.conference_id) == col(latest.id),
            col(holder.role) == str(role),
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
        select(func.min(col(Agency.code)))
        .select_from(Participant)
        .join(Agency, col(Agency.id) == col(Participant.agency_id))
        .where(
            col(Participant.conference_id) == latest_conference,
            col(Participant.role) == str(role),
        )
        .correlate(Case)
        .scalar_subquery()
    )


def _leads() -> Any:
    """Every open case's lead: the transferred lead, else the lead of its latest conference that
    has one (NULL where there is none)."""
    return (
        select(  # type: ignore[call-overload]
            func.coalesce(col(_transferred_lead.code), _conference_role_code(Role.lead)).label(
                "lead"
            ),
        )
        .select_from(Case)
        .outerjoin(_transferred_lead, col(_transferred_lead.id) == col(Case.lead_agency_id))
        .where(col(Case.status) == CaseStatus.open)
        .subquery("leads")
    )


@dataclass(frozen=True)
class Portfolio:
    """Open cases counted by stage, conference type, profile, area and lead agency."""

    open_cases: int
    by: dict[str, dict[str, int]]  # dimension -> value -> open cases
    unplaced: list[str]  # what the report could not place, each a sentence with counts


DIMENSIONS = ("stage", "conference_type", "profile", "area", "lead")


def portfolio(session: Session, *, known_profiles: Iterable[str]) -> Portfolio:
    """Open cases by each dimension: one grouped query over the case's own dimensions and its
    area (the transferred one, else the referring agency's), one over its lead. The first
    groups the case's own columns in the order of `ix_case_status_placement` (no sort, no row
    read); the referring agency's area is placed here, from the agencies."""
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
    area_of = dict(session.exec(select(Agency.id, Agency.area)).all())
    rows = [
        (stage, type_, profile, area if area is not None else area_of.get(referrer), n)
        for stage, type_, profile, area, referrer, n in counted
    ]
    leads = _leads()
    lead_counts = session.exec(
        select(leads.c.lead, func.count()).group_by(leads.c.lead)  # type: ignore[call-overload]
    ).all()
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
    for value, count in lead_counts:
        by["lead"][str(value if value is not None else NONE)] = int(count)
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


def waiting(session: Session, *, now: datetime, late_after_days: dict[str, int]) -> WaitingReport:
    """Open cases waiting at a human step, oldest first. `since` is when the case reached its
    current step; who acts is the agency coordinating the current conference, else the referring
    agency (looked up for the listed cases only)."""
    since = waiting_since()
    waiting_rows = and_(
        col(Case.status) == CaseStatus.open,
        col(Case.phase).in_([str(p) for p in WAITING_PHASES]),
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
            since=_aware(_as_datetime(moment)),
            who_acts=coordinators.get(case_id, referrer),
            late=step in late_after_days
            and _aware(_as_datetime(moment)) < now - timedelta(days=late_after_days[step]),
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


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        return int(count), [ReviewDue(r, c, _aware(d).date()) for r, c, d in rows]

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
    kind = func.coalesce(col(Channel.kind), literal("hand-over"))
    rows = session.exec(
        select(Agency.code, kind, failed, retried)  # type: ignore[call-overload]
        .join(Agency, col(Agency.id) == col(Notification.recipient_agency_id))
        .outerjoin(Channel, col(Channel.tag) == col(Notification.channel))
        .where(
            or_(
                col(Notification.status) == NotificationStatus.failed,
                and_(
                    col(Notification.attempts) > 1,
                    col(Notification.created_at) >= now - RETRY_WINDOW,
                ),
            )
        )
        .group_by(Agency.code, kind)
        .order_by(Agency.code, kind)
    ).all()
    return [DeliveryRow(a, str(k), int(f or 0), int(r or 0)) for a, k, f, r in rows]


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
    in that case (as `models.continuity`, over those conferences, summed over cases)."""
    since = now - CONTINUITY_WINDOW
    # The roles that are not professional: one index range per conference, not five.
    not_professional = [str(r) for r in Role if r not in PROFESSIONAL_ROLES]
    person = col(Participant.representative_id)
    # One sort of the participations, by case and agency (case first: conferences come case by
    # case from their index). Where one person, or nobody, was named for an agency in a case,
    # that person attended all its named participations; only where two or more were named is
    # each one's count looked up (one small grouped lookup per such case and agency).
    per_case = (
        select(  # type: ignore[call-overload]
            col(Conference.case_id).label("case_id"),
            col(Participant.agency_id).label("agency_id"),
            func.count().label("all"),
            func.count(person).label("named"),
            func.min(person).label("first"),
            func.max(person).label("last"),
        )
        .select_from(Conference)
        .join(Participant, col(Participant.conference_id) == col(Conference.id))
        .where(
            col(Conference.created_at) >= since,
            col(Participant.role).not_in(not_professional),
            col(Participant.agency_id).is_not(None),
        )
        .group_by(col(Conference.case_id), col(Participant.agency_id))
        .subquery("per_case")
    )
    attended = aliased(Conference)
    attending = aliased(Participant)
    per_person = (
        select(func.count().label("n"))  # type: ignore[call-overload]
        .select_from(attended)
        .join(attending, col(attending.conference_id) == col(attended.id))
        .where(
            col(attended.case_id) == per_case.c.case_id,
            col(attending.agency_id) == per_case.c.agency_id,
            col(attended.created_at) >= since,
            col(attending.role).not_in(not_professional),
            col(attending.representative_id).is_not(None),
        )
        .group_by(col(attending.representative_id))
        .correlate(per_case)
        .subquery("per_person")
    )
    most = select(func.max(per_person.c.n)).correlate(per_case).scalar_subquery()
    same = case(
        (or_(per_case.c.named <= 1, per_case.c["first"] == per_case.c["last"]), per_case.c.named),
        else_=most,
    )
    per_agency = (
        select(  # type: ignore[call-overload]
            per_case.c.agency_id,
            func.sum(per_case.c["all"]).label("all"),
            func.sum(per_case.c.named).label("named"),
            func.sum(same).label("same"),
        )
        .group_by(per_case.c.agency_id)
        .subquery("per_agency")
    )
    rows = session.exec(
        select(  # type: ignore[call-overload]
            Agency.code, per_agency.c["all"], per_agency.c.named, per_agency.c.same
        )
        .join(Agency, col(Agency.id) == per_agency.c.agency_id)
        .order_by(Agency.code)
    ).all()
    return [ContinuityRow(code, int(n), int(named), int(same)) for code, n, named, same in rows]


# --- the quarter -------------------------------------------------------------------------------


def quarter_of(day: date) -> tuple[date, date]:
    """First day of `day`'s quarter and first day of the next."""
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return first, add_months(first, 3)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_label(first: date) -> str:
    return f"{first.year}-Q{(first.month - 1) // 3 + 1}"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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


def quarters(session: Session, bounds: list[tuple[date, date]]) -> list[Quarter]:
    """Consecutive quarters' figures (UTC days), each quarter as `bounds` gives it, first to
    last: referrals, repeats, conferences held (decision released), consent refused and
    withdrawn, days from referral to the first conference, reviews held on time (on or before
    their due day), closures by reason. Each figure is one query over all the quarters, each
    row placed in its quarter, rather than one query per quarter."""
    if any(end != start for (_, end), (start, _) in pairwise(bounds)):
        raise ValueError("quarters: bounds must follow one another")
    lo, hi = _midnight(bounds[0][0]), _midnight(bounds[-1][1])

    def within(moment: Any) -> Any:
        return and_(moment >= lo, moment < hi)

    def which(moment: Any) -> Any:
        """The index of the quarter `moment` falls in (`within` all of them)."""
        return case(
            *((moment < literal(_midnight(e), UTCDateTime), i) for i, (_, e) in enumerate(bounds)),
            else_=len(bounds) - 1,
        )

    def grouped(value: Any, moment: Any, *where: Any) -> list[dict[Any, int]]:
        """Rows counted by `value`, per quarter of `moment`. Computed inside and grouped on
        outside: PostgreSQL would not match the same parameterised CASE written twice."""
        inner = select(value.label("value"), which(moment).label("q")).where(within(moment), *where)
        placed = inner.subquery("placed")
        found: list[dict[Any, int]] = [{} for _ in bounds]
        for v, q, n in session.exec(
            select(placed.c.value, placed.c.q, func.count()).group_by(  # type: ignore[call-overload]
                placed.c.value, placed.c.q
            )
        ):
            found[q][v] = int(n)
        return found

    def of(moment: datetime) -> int:
        """The quarter a moment read back falls in (it is `within` all of them)."""
        day = _aware(moment)
        return next(i for i, (_, e) in enumerate(bounds) if day < _midnight(e))

    referrals = grouped(literal("all"), col(Case.created_at))
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
        .where(within(col(Case.created_at)))
    ).all()
    repeats: list[set[int]] = [set() for _ in bounds]
    for case_id, created, closed in pairs:
        if (
            case_id is not None
            and closed is not None
            and (_aware(closed) <= _aware(created) <= _aware(closed) + REPEAT_WINDOW)
        ):
            repeats[of(created)].add(case_id)
    released = col(Conference.released_at)
    held = grouped(col(Conference.conference_type), released)
    consent = grouped(
        col(ConsentRecord.decision),
        col(ConsentRecord.recorded_at),
        col(ConsentRecord.decision).in_(
            [str(ConsentDecision.refused), str(ConsentDecision.withdrawn)]
        ),
    )
    firsts = session.exec(
        select(which(released), Case.created_at, Conference.starts_at)  # type: ignore[call-overload]
        .join(Case, col(Case.id) == col(Conference.case_id))
        .where(within(released), col(Conference.cycle) == 1, col(Conference.starts_at).is_not(None))
    ).all()
    days: list[list[float]] = [[] for _ in bounds]
    for q, c, s in firsts:
        if s is not None:
            days[q].append((_aware(s) - _aware(c)).total_seconds() / 86400)
    review_rows = session.exec(
        select(which(released), Conference.starts_at, Review.due_at)  # type: ignore[call-overload]
        .join(
            Review,
            and_(
                col(Review.case_id) == col(Conference.case_id),
                col(Review.cycle) == col(Conference.cycle),
                col(Review.status) == ReviewStatus.started,
            ),
        )
        .where(within(released), col(Conference.kind) == ConferenceKind.review)
    ).all()
    reviews_held = [0 for _ in bounds]
    on_time = [0 for _ in bounds]
    for q, s, d in review_rows:
        reviews_held[q] += 1
        if s is not None and _aware(s).date() <= _aware(d).date():
            on_time[q] += 1
    closures = grouped(col(Case.closure_reason), col(Case.closed_at))
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

    A case's stage at a point is what `stage_at` says, counted without looking a stage up per
    case and point: a case alive at a point starts from the stage its first change came from,
    and each change up to the point adds the stage it went to and takes away the one before it
    (the sum telescopes to the last change's stage). So each case and each change is read once,
    grouped by the range of points it counts for.
    """
    first, _ = quarter_of(now.date())
    points = [
        (quarter_label(add_months(first, -3 * k)), _midnight(add_months(first, -3 * k + 3)))
        for k in range(quarters, 0, -1)
    ] + [("now", now)]

    def first_point_from(moment: Any) -> Any:
        """Index of the first point at or after `moment`; len(points) if none (or NULL)."""
        return case(
            *((moment <= literal(at, UTCDateTime), i) for i, (_, at) in enumerate(points)),
            else_=len(points),
        )

    alive_from, alive_until = first_point_from(Case.created_at), first_point_from(Case.closed_at)
    changes = select(  # type: ignore[call-overload]
        col(StageChange.case_id).label("case_id"),
        col(StageChange.from_stage).label("from_stage"),
        col(StageChange.to_stage).label("to_stage"),
        col(StageChange.at).label("at"),
        func.lag(col(StageChange.to_stage))
        .over(
            partition_by=col(StageChange.case_id),
            order_by=(col(StageChange.at), col(StageChange.id)),
        )
        .label("before"),
    ).subquery("changes")
    relevant = or_(col(Case.closed_at).is_(None), col(Case.closed_at) > points[0][1])
    # Buckets are computed inside and grouped on outside: PostgreSQL would not match the same
    # parameterised CASE written twice.
    change_buckets = (
        select(  # type: ignore[call-overload]
            changes.c.from_stage,
            changes.c.to_stage,
            changes.c.before,
            first_point_from(changes.c.at).label("since"),
            alive_from.label("born"),
            alive_until.label("gone"),
        )
        .join(Case, col(Case.id) == changes.c.case_id)
        .where(relevant)
        .subquery("change_buckets")
    )
    by_change = session.exec(
        select(*change_buckets.c, func.count()).group_by(*change_buckets.c)  # type: ignore[call-overload]
    ).all()
    unchanged_buckets = (
        select(  # type: ignore[call-overload]
            case((col(Case.status) == CaseStatus.open, col(Case.stage)), else_=None).label("stage"),
            alive_from.label("born"),
            alive_until.label("gone"),
        )
        .where(
            relevant,
            ~select(StageChange.id)
            .where(col(StageChange.case_id) == col(Case.id))
            .correlate(Case)
            .exists(),
        )
        .subquery("unchanged_buckets")
    )
    unchanged = session.exec(
        select(*unchanged_buckets.c, func.count()).group_by(*unchanged_buckets.c)  # type: ignore[call-overload]
    ).all()
    totals: list[Counter[str | None]] = [Counter() for _ in points]

    def add(stage: str | None, lo: int, hi: int, n: int) -> None:
        for i in range(lo, hi):
            totals[i][stage] += n

    for from_stage, to_stage, before, since, born, gone, n in by_change:
        if before is None:  # the case's first change: where it was before any
            add(str(from_stage), born, gone, n)
            before = from_stage
        add(str(to_stage), max(since, born), gone, n)
        add(str(before), max(since, born), gone, -n)
    for stage, born, gone, n in unchanged:
        add(str(stage) if stage is not None else None, born, gone, n)
    # "now" is the record as it is, not a reconstruction: a stage set without a history row
    # (or a history dated after `now`) must not make today's column disagree with the cases.
    totals[-1] = Counter(
        {
            str(stage): n
            for stage, n in session.exec(
                select(Case.stage, func.count())  # type: ignore[call-overload]
                .where(col(Case.status) == CaseStatus.open)
                .group_by(Case.stage)
            )
        }
    )
    return [
        StageSnapshot(
            label,
            at,
            {s: n for s, n in sorted(t.items(), key=str) if s is not None and n},
            t[None],
        )
        for (label, at), t in zip(points, totals, strict=True)
    ]


def placement(session: Session, *, case_id: int) -> tuple[str | None, str | None]:
    """One case's area and lead agency code, placed as the portfolio places them."""
    lead = _conference_role_code(Role.lead)
    row = session.exec(
        select(  # type: ignore[call-overload]
            func.coalesce(col(Case.area), col(_referrer.area)),
            func.coalesce(col(_transferred_lead.code), lead),
        )
        .join(_referrer, col(_referrer.id) == col(Case.referring_agency_id))
        .outerjoin(_transferred_lead, col(_transferred_lead.id) == col(Case.lead_agency_id))
        .where(col(Case.id) == case_id)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)
