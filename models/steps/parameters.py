"""The parameters of the deployments a coordinator starts on an existing case (close, reschedule,
hand-over, consent withdrawal, stage move, transfer, review plan): forms too, on each
deployment's Run page. Nothing here identifies a person; no typed value reaches an error."""

from datetime import date, datetime

from pydantic import BaseModel, Field

from models.answers import ANSWER_CONFIG, CODE, acting
from models.rules.cases import REFERENCE_PATTERN
from models.rules.handover import Relation
from models.steps.preparation import PLACE
from models.vocabulary import (
    ClosureReason,
    HandoverRole,
    ReviewChangeKind,
    ReviewChangeReason,
    Stage,
    StageMoveReason,
    TransferReason,
)


class CaseParameters(BaseModel):
    """What every deployment that acts on an existing case is given first: its reference."""

    model_config = ANSWER_CONFIG

    case_reference: str = Field(
        description="The case's pseudonymous reference, e.g. CASE-2026-0042.",
        pattern=REFERENCE_PATTERN,
        max_length=32,
    )


class Closure(CaseParameters):
    """The parameters of `case-close/close`."""

    reason: ClosureReason = Field(description="Why the case closes.")
    acting_representative: str = acting()


class Reschedule(CaseParameters):
    """The parameters of `case-conference/reschedule`."""

    starts_at: datetime = Field(
        description="The new start. A time without an offset is read in the time zone below."
    )
    time_zone: str = Field(
        default="Europe/Vienna", description="IANA time zone of the conference.", max_length=64
    )
    location: str | None = Field(
        default=None, max_length=300, description=f"A new place; empty keeps it. {PLACE}"
    )
    acting_representative: str = acting()


class Handover(CaseParameters):
    """The parameters of `case-handover/record`."""

    handed_to: HandoverRole = Field(description="Whom the intermediary handed the invitation to.")
    relation: Relation | None = Field(
        default=None,
        description="For a family member: their relation to the client, as on the hand-over "
        "request; empty: every family member's invitation.",
    )
    acting_representative: str = acting()


class ConsentWithdrawal(CaseParameters):
    """The parameters of `case-consent/withdraw`: no reason is asked, none is given."""

    acting_representative: str = acting()


class StageMove(CaseParameters):
    """The parameters of `case-stage/move`: a move along the continuum, or a new release date."""

    to_stage: Stage = Field(
        description="The stage the case moves to: pre_trial -> custody or post_release; custody "
        "-> pre_release (with the release date); pre_release -> post_release (released); "
        "post_release -> custody (recall). To change the release date, choose pre_release again. "
        "Closing is case-close."
    )
    reason: StageMoveReason = Field(description="Why the case moves.")
    effective_on: date | None = Field(
        default=None,
        description="The day it happened (the day of release, of the recall); empty means today.",
    )
    release_on: date | None = Field(
        default=None,
        description="Moves to pre_release only: the expected release date. The pre-release "
        "conference is scheduled the profile's lead time before it.",
    )
    acting_representative: str = acting()


class Transfer(CaseParameters):
    """The parameters of `case-transfer/transfer`: another area or lead; the history stays."""

    area: str | None = Field(
        default=None,
        description="The area the case goes to, as the agency directory names it (e.g. Wien).",
        max_length=100,
        pattern=r"^\w[\w .-]*$",
    )
    lead_agency: str | None = Field(
        default=None,
        description="Directory code of the agency that leads from the next conference on.",
        max_length=64,
        pattern=CODE,
    )
    reason: TransferReason = Field(description="Why the case is transferred.")
    acting_representative: str = acting()


class ReviewChange(CaseParameters):
    """The parameters of `case-review-plan/change`: move or cancel a case's scheduled review."""

    action: ReviewChangeKind = Field(
        description="move: the review takes place on the date below instead (also schedules a "
        "review again after a cancellation); cancel: the case has no next review until a move."
    )
    review_on: date | None = Field(
        default=None,
        description="Moves only: the new date of the review conference, after today, in the "
        "conference's time zone; it starts at the usual hour (10:00). Empty to cancel.",
    )
    reason: ReviewChangeReason = Field(description="Why the review moves or is cancelled.")
    acting_representative: str = acting()
