"""caseconf's system of record: SQLModel tables. Prefect holds orchestration state only."""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from models.vocabulary import (
    ActionStatus,
    CaseStatus,
    ChannelKind,
    Classification,
    ConferenceKind,
    ConferenceType,
    ConsentDecision,
    NotificationStatus,
    Phase,
    PlanOutcome,
    ReviewStatus,
    Role,
    Stage,
    StageChangeKind,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: caseconf stores only timezone-aware timestamps")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)  # type: ignore[call-overload]


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Agency(SQLModel, table=True):
    """An organisation that may take part in conferences, loaded from the agency directory."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    kinds: list[str] = _json_list()
    time_zone: str = Field(default="Europe/Vienna", max_length=64)
    language: str = Field(default="en", max_length=8)
    area: str | None = Field(default=None, max_length=100)
    # Tells apart several agencies of one kind (e.g. the local and the regional police).
    scope: str | None = Field(default=None, max_length=64)
    clearance: Classification = Field(default=Classification.professional, sa_type=String(16))
    active: bool = True


class Venue(SQLModel, table=True):
    """A place an agency offers for conferences, loaded from the agency directory.

    Its label travels in every invitation and hand-over request, so it names a meeting room or a
    video link, never anything about the client.
    """

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    code: str = Field(unique=True, max_length=64)
    label: str = Field(max_length=300)
    active: bool = True


class Channel(SQLModel, table=True):
    """How an agency is reached: an Apprise tag (its URLs live in the Apprise config)."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    tag: str = Field(unique=True, max_length=64)
    kind: ChannelKind = Field(sa_type=String(8))
    clearance: Classification = Field(default=Classification.shared, sa_type=String(16))
    active: bool = True


class Representative(SQLModel, table=True):
    """A person who represents an agency at conferences; never sent to Prefect."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=64)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=200)
    active: bool = True


class Case(SQLModel, table=True):
    """One person's case, known outside caseconf's database only by its pseudonymous reference."""

    __table_args__ = (
        Index(
            "uq_case_open_file_number",
            "referring_agency_id",
            "referral_file_number",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        # The portfolio report (models.reporting.portfolio): open cases by phase, referrals and closures
        # by date, repeat referrals by file number whatever the case's status.
        Index("ix_case_status_phase", "status", "phase"),
        Index("ix_case_created_at", "created_at"),
        Index("ix_case_closed_at", "closed_at"),
        Index("ix_case_file_number", "referring_agency_id", "referral_file_number"),
        # The portfolio's open cases by stage, type, profile, area, referrer and lead, read and
        # grouped in the index's order alone (no sort, no row read).
        Index(
            "ix_case_status_placement",
            "status",
            "stage",
            "conference_type",
            "profile",
            "area",
            "referring_agency_id",
            "lead_agency_id",
        ),
        # The portfolio's leads: grouped in this index's order, no case row read.
        Index("ix_case_status_lead", "status", "lead_agency_id", "conference_lead_agency_id"),
        # The portfolio's cases waiting for a person: counted, late or not, and the oldest
        # listed from the index alone.
        Index(
            "ix_case_waiting",
            "status",
            "phase",
            "phase_since",
            "updated_at",
            "reference",
            "referring_agency_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, index=True, max_length=32)
    referring_agency_id: int = Field(foreign_key="agency.id")
    referral_file_number: str = Field(max_length=64)
    profile: str = Field(max_length=64)
    stage: Stage = Field(sa_type=String(16))
    status: CaseStatus = Field(default=CaseStatus.open, sa_type=String(16))
    needs: list[str] = _json_list()
    conference_type: ConferenceType | None = Field(default=None, sa_type=String(16))
    area: str | None = Field(default=None, max_length=100)
    lead_agency_id: int | None = Field(default=None, foreign_key="agency.id")
    release_on: date | None = None
    released_on: date | None = None
    cycle: int = 1
    # A `Phase`, or the phase of a step an installation registered (models/steps/registry.py).
    phase: str = Field(default=Phase.referral, sa_type=String(24))
    current_flow_run_id: str | None = Field(default=None, max_length=36)
    closure_reason: str | None = Field(default=None, max_length=64)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)
    closed_at: datetime | None = _when(default=None)
    # When the case entered its current phase: what "waiting since" means. A transfer or a stage
    # move touches `updated_at` but not this (kept on every flush: `models.record.summaries`). NULL
    # only for rows written around the ORM; they read as `updated_at`.
    phase_since: datetime | None = _when(default=None)
    # The lead of the case's latest conference that has one (the first code where several): the
    # case's lead unless a transfer named one. Kept on every flush (`models.record.summaries`).
    conference_lead_agency_id: int | None = Field(default=None, foreign_key="agency.id")


class StageChange(SQLModel, table=True):
    """Append-only history of a case's moves along the continuum, transfers and closure."""

    # A case's stage at past dates (the portfolio's picture) walks its changes in time order.
    __table_args__ = (Index("ix_stagechange_case_id_at", "case_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: StageChangeKind = Field(sa_type=String(16))
    from_stage: Stage = Field(sa_type=String(16))
    to_stage: Stage = Field(sa_type=String(16))
    reason: str = Field(max_length=64)
    release_on: date | None = None
    area: str | None = Field(default=None, max_length=100)
    lead_agency_id: int | None = Field(default=None, foreign_key="agency.id")
    actor_id: int | None = Field(default=None, foreign_key="representative.id")
    at: datetime = _when(default_factory=utcnow)


class StageTally(SQLModel, table=True):
    """Cases by stage at quarter ends, as changes: at the end of a quarter, the sum of `cases`
    over the rows `at` or before it. Kept from the cases and their stage history on every flush
    (`models.record.summaries`); the portfolio's picture of open cases by stage reads only these."""

    at: date = Field(primary_key=True)  # the first day of a quarter, midnight UTC
    stage: str = Field(primary_key=True, max_length=16)  # or "(unknown)": closed, never moved
    cases: int = 0


class Conference(SQLModel, table=True):
    """One conference cycle of a case: preparation, the phases, release."""

    __table_args__ = (
        UniqueConstraint("case_id", "cycle"),
        # The portfolio report: conferences held in a quarter, and those of the last months.
        Index("ix_conference_released_at", "released_at"),
        Index("ix_conference_created_at", "created_at"),
        # The quarter's conferences held by type, first conferences and reviews held, read
        # from the index alone.
        Index(
            "ix_conference_held",
            "released_at",
            "cycle",
            "kind",
            "conference_type",
            "starts_at",
            "case_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    cycle: int
    kind: ConferenceKind = Field(sa_type=String(16))
    conference_type: ConferenceType = Field(sa_type=String(16))
    starts_at: datetime | None = _when(default=None)
    time_zone: str = Field(default="Europe/Vienna", max_length=64)
    location: str | None = Field(default=None, max_length=300)
    ical_uid: str = Field(max_length=128)
    ical_sequence: int = 0
    phase: str = Field(default=Phase.preparation, sa_type=String(24))  # as Case.phase
    created_at: datetime = _when(default_factory=utcnow)
    released_at: datetime | None = _when(default=None)


class Participant(SQLModel, table=True):
    """Who takes part in a conference, in which role, and the rule that put them there."""

    # The portfolio report reads conferences' participants by role (every case's lead, the
    # coordinators, continuity) from the index alone, without reading the rows.
    __table_args__ = (
        Index(
            "ix_participant_conference_role",
            "conference_id",
            "role",
            "agency_id",
            "representative_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = Field(foreign_key="conference.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")
    representative_id: int | None = Field(default=None, foreign_key="representative.id")
    role: Role = Field(sa_type=String(16))
    rule: str = Field(max_length=300)
    intermediary_agency_id: int | None = Field(default=None, foreign_key="agency.id")
    is_substitute: bool = False
    override_reason: str | None = Field(default=None, max_length=500)
    # The phases this participant attends; None: every phase of the conference type.
    phases: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A family participant's relation to the client by role (parent, sibling, ...), never a name.
    relation: str | None = Field(default=None, max_length=32)


class AgencyParticipation(SQLModel, table=True):
    """How one agency was represented at one case's conferences (professional roles), kept from
    the participants on every flush (`models.record.summaries`) for the portfolio's continuity."""

    __table_args__ = (
        # Cases whose first conference with the agency was prepared after a moment.
        Index(
            "ix_agencyparticipation_first_at",
            "first_at",
            "agency_id",
            "participations",
            "named",
            "same_person",
        ),
        # Cases with such conferences on both sides of a moment: one range per earlier month.
        Index(
            "ix_agencyparticipation_span",
            "first_month",
            "last_at",
            "first_at",
            "case_id",
            "agency_id",
        ),
    )

    case_id: int = Field(foreign_key="case.id", primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    first_at: datetime = _when()  # when the first of these conferences was prepared
    first_month: date  # the first day of `first_at`'s month (UTC)
    last_at: datetime = _when()  # when the last was
    participations: int
    named: int  # with a named representative
    same_person: int  # attended by the agency's most frequent representative in the case


class AgencyParticipationMonth(SQLModel, table=True):
    """`AgencyParticipation` summed per agency and month of the first conference, kept with it:
    the continuity of a year is a dozen of these per agency and the cases at its edges."""

    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    month: date = Field(primary_key=True)
    participations: int = 0
    named: int = 0
    same_person: int = 0


class ConsentRecord(SQLModel, table=True):
    """One entry of the consent ledger: appended, never edited or deleted."""

    __table_args__ = (Index("ix_consentrecord_recorded_at", "recorded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    scope: str = Field(max_length=100)
    decision: ConsentDecision = Field(sa_type=String(16))
    recorded_by_id: int = Field(foreign_key="representative.id")
    recorded_at: datetime = _when(default_factory=utcnow)
    expires_on: date | None = None


class InformationItem(SQLModel, table=True):
    """What an agency contributed in the information phase; restricted items are pointers only."""

    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = Field(foreign_key="conference.id", index=True)
    agency_id: int = Field(foreign_key="agency.id")
    classification: Classification = Field(sa_type=String(16))
    summary: str | None = Field(default=None, max_length=2000)
    pointer: str | None = Field(default=None, max_length=500)
    recorded_at: datetime = _when(default_factory=utcnow)


class PlanItem(SQLModel, table=True):
    """An item of the plan: drafted by client and family or proposed by professionals, then decided."""

    __table_args__ = (UniqueConstraint("conference_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = Field(foreign_key="conference.id", index=True)
    number: int
    drafted_by: Role = Field(sa_type=String(16))
    text: str = Field(max_length=1000)
    outcome: PlanOutcome | None = Field(default=None, sa_type=String(16))
    amendment: str | None = Field(default=None, max_length=1000)
    reason: str | None = Field(default=None, max_length=1000)
    classification: Classification = Field(default=Classification.professional, sa_type=String(16))


class ActionItem(SQLModel, table=True):
    """An action agreed at a conference, owned by one agency, with a due date."""

    # Open actions by owner agency (the portfolio report) without reading the done ones.
    __table_args__ = (
        Index("ix_actionitem_status_owner", "status", "owner_agency_id", "due_on", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    conference_id: int = Field(foreign_key="conference.id")
    # The owning agency; for an action owned by the client or family (owner_role), the
    # intermediary agency that reaches them.
    owner_agency_id: int = Field(foreign_key="agency.id")
    owner_role: Role | None = Field(default=None, sa_type=String(16))
    classification: Classification = Field(default=Classification.professional, sa_type=String(16))
    description: str = Field(max_length=1000)
    due_on: date
    status: ActionStatus = Field(default=ActionStatus.open, sa_type=String(16))
    status_reason: str | None = Field(default=None, max_length=64)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class Review(SQLModel, table=True):
    """A scheduled review conference: a future Prefect flow run until it falls due."""

    # Reviews coming and overdue (the portfolio report): by status, then due date.
    __table_args__ = (
        Index("ix_review_status_due_at", "status", "due_at"),
        # The same, covering what the portfolio's lists join on: no review row read.
        Index("ix_review_due", "status", "due_at", "case_id", "cycle"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    cycle: int
    due_at: datetime = _when()
    version: int = 1
    idempotency_key: str = Field(unique=True, max_length=200)
    flow_run_id: str | None = Field(default=None, max_length=36)
    status: ReviewStatus = Field(default=ReviewStatus.scheduled, sa_type=String(16))
    created_at: datetime = _when(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """The outbox: one message to one recipient on one channel, keyed so it is sent once."""

    # The outbox is read by status (what is still queued, what failed), per case or for all:
    # without this index those reads grow with every case's whole history.
    __table_args__ = (Index("ix_notification_status_case_id", "status", "case_id"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    case_id: int = Field(foreign_key="case.id", index=True)
    conference_id: int | None = Field(default=None, foreign_key="conference.id")
    event: str = Field(max_length=40)
    recipient_agency_id: int | None = Field(default=None, foreign_key="agency.id")
    recipient_role: Role = Field(sa_type=String(16))
    channel: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: NotificationStatus = Field(default=NotificationStatus.queued, sa_type=String(16))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None)


class AuditEvent(SQLModel, table=True):
    """Append-only: who did, saw or exported what, for which case, and why."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(default_factory=utcnow)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="representative.id")
    action: str = Field(max_length=60)
    detail: str | None = Field(default=None, max_length=1000)
    justification: str | None = Field(default=None, max_length=1000)


class Effect(SQLModel, table=True):
    """The idempotency ledger: a side effect happened once under this key, with this (id) result."""

    key: str = Field(primary_key=True, max_length=300)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when(default_factory=utcnow)


class FormRefusal(SQLModel, table=True):
    """A form answer refused by a business rule; the step is asked again under the next attempt."""

    __table_args__ = (UniqueConstraint("step_key", "attempt"),)

    id: int | None = Field(default=None, primary_key=True)
    step_key: str = Field(max_length=200, index=True)
    attempt: int
    reason: str = Field(max_length=2000)
    at: datetime = _when(default_factory=utcnow)
