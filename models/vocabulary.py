"""caseconf's vocabulary as enums; docs/domain.md explains each value."""

from enum import StrEnum


class AgencyKind(StrEnum):
    prison = "prison"
    security_service = "security_service"
    police = "police"
    prosecution = "prosecution"
    court = "court"
    probation = "probation"
    # The agency whose case manager follows the person across stages and agencies (Catalonia's
    # "case manager", always present); an agency may hold it beside its other kinds.
    case_manager = "case_manager"
    cso = "cso"
    municipality = "municipality"
    social_services = "social_services"
    mental_health = "mental_health"
    mentor = "mentor"
    school = "school"
    migrant_charity = "migrant_charity"
    family_support = "family_support"
    housing = "housing"
    employment = "employment"
    religious_guidance = "religious_guidance"
    substance_use = "substance_use"
    debt_advice = "debt_advice"


class Need(StrEnum):
    mental_health = "mental_health"
    housing = "housing"
    employment = "employment"
    education = "education"
    family_support = "family_support"
    migration = "migration"
    substance_use = "substance_use"
    debt = "debt"
    religious_guidance = "religious_guidance"
    mentoring = "mentoring"


class Stage(StrEnum):
    pre_trial = "pre_trial"
    custody = "custody"
    pre_release = "pre_release"
    post_release = "post_release"
    closed = "closed"


class ConferenceType(StrEnum):
    security = "security"
    social_network = "social_network"


class ConferenceKind(StrEnum):
    """The first conference of a case, or a review conference of an earlier one."""

    first = "first"
    review = "review"


class Phase(StrEnum):
    """Where a case stands in its current conference cycle."""

    referral = "referral"
    preparation = "preparation"
    consent = "consent"
    stakeholders = "stakeholders"
    invitation = "invitation"
    information = "information"
    family_only = "family_only"
    decision = "decision"
    release = "release"
    review_scheduled = "review_scheduled"
    closed = "closed"
    review_cancelled = "review_cancelled"  # no next review until a move plans one


def phase_named(value: str) -> str:
    """A stored phase as caseconf's own `Phase` where it is one, else as the name an
    installation's own step gave it (a profile may add phases of its own)."""
    return Phase(value) if value in Phase.__members__ else value


class Role(StrEnum):
    lead = "lead"
    coordinator = "coordinator"
    core = "core"
    case_dependent = "case_dependent"
    client = "client"
    family = "family"
    observer = "observer"


PROFESSIONAL_ROLES = frozenset(
    {Role.lead, Role.coordinator, Role.core, Role.case_dependent, Role.observer}
)


class Classification(StrEnum):
    restricted = "restricted"
    professional = "professional"
    shared = "shared"


class PlanOutcome(StrEnum):
    accepted = "accepted"
    amended = "amended"
    rejected = "rejected"


class ActionStatus(StrEnum):
    open = "open"
    done = "done"
    not_done = "not_done"
    carried_over = "carried_over"


class NotDoneReason(StrEnum):
    circumstances_changed = "circumstances_changed"
    agency_did_not_act = "agency_did_not_act"
    client_declined = "client_declined"
    no_capacity = "no_capacity"
    other = "other"


class ConsentScope(StrEnum):
    """Fixed scopes; `share_with:<agency>` scopes are built with `share_with_scope`."""

    social_network_conference = "social_network_conference"
    family_involvement = "family_involvement"


def share_with_scope(agency_code: str) -> str:
    return f"share_with:{agency_code}"


class ConsentDecision(StrEnum):
    granted = "granted"
    refused = "refused"
    withdrawn = "withdrawn"


class CaseStatus(StrEnum):
    open = "open"
    closed = "closed"


class ClosureReason(StrEnum):
    consent_refused = "consent_refused"
    plan_completed = "plan_completed"
    transferred_out = "transferred_out"
    client_deceased = "client_deceased"
    no_longer_assessed_at_risk = "no_longer_assessed_at_risk"
    referral_withdrawn = "referral_withdrawn"
    other = "other"


class ReviewStatus(StrEnum):
    scheduled = "scheduled"
    started = "started"
    cancelled = "cancelled"
    superseded = "superseded"


class NotificationStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"
    handed_over = "handed_over"


class ChannelKind(StrEnum):
    email = "email"
    chat = "chat"


class StageChangeKind(StrEnum):
    """What a row of a case's stage history records."""

    move = "move"  # along the continuum (docs/domain.md: stages and moves)
    transfer = "transfer"  # another area or lead; the stage stays
    release_date = "release_date"  # a release date recorded or changed; the stage may stay


class StageMoveReason(StrEnum):
    """Why a case moved between stages (docs/domain.md: stages and moves)."""

    remanded = "remanded"  # pre_trial -> custody
    sentenced = "sentenced"  # pre_trial -> custody
    non_custodial_outcome = "non_custodial_outcome"  # pre_trial -> post_release
    released_from_pre_trial_detention = "released_from_pre_trial_detention"
    release_date_known = "release_date_known"  # custody -> pre_release
    released = "released"  # pre_release (or custody) -> post_release
    recalled = "recalled"  # post_release -> custody
    new_custodial_sentence = "new_custodial_sentence"  # post_release -> custody
    transferred = "transferred"  # another area or lead
    other = "other"


class TransferReason(StrEnum):
    """Why a case went to another area or lead (a code: no free text reaches Prefect)."""

    client_moved = "client_moved"  # residence after release, or another prison
    prison_transfer = "prison_transfer"
    lead_agency_change = "lead_agency_change"  # agreed between the agencies
    capacity = "capacity"
    other = "other"


class ReviewChangeKind(StrEnum):
    """What `case-review-plan/change` does to a case's next review."""

    move = "move"
    cancel = "cancel"


class ReviewChangeReason(StrEnum):
    """Why a scheduled review moves or is cancelled (a code: no free text reaches Prefect)."""

    participants_unavailable = "participants_unavailable"
    earlier_review_needed = "earlier_review_needed"
    later_review_agreed = "later_review_agreed"
    stage_move = "stage_move"  # a pre-release or follow-up conference replaces the review
    transferred = "transferred"
    review_not_needed = "review_not_needed"
    other = "other"


class ConsentAnswer(StrEnum):
    """The client's answer to taking part in a social-network conference (the consent form)."""

    granted = "granted"
    refused = "refused"


class AfterRefusal(StrEnum):
    """What follows a refused or withdrawn consent (the consent-refused form)."""

    security = "continue_as_security"
    close = "close_case"


class HandoverRole(StrEnum):
    """Whom an intermediary handed an invitation to (`case-handover/record`)."""

    client = "client"
    family = "family"
