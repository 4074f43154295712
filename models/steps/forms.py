"""The forms a coordinator fills in the Prefect UI: one input model per human step.

No form asks for a name or for restricted content. Every field has a description, and
`hide_input_in_errors` keeps a typed value out of every state message and log.
"""

from collections.abc import Collection, Mapping, Sequence
from copy import copy
from datetime import date, datetime
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
import pydantic
from pydantic import BaseModel, Field, WithJsonSchema
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from models.answers import ANSWER_CONFIG
from models.rules.actions import ActionUpdate
from models.rules.cases import REFERENCE_PATTERN
from models.rules.conference import ActionEntry, InformationEntry, PlanDecisionEntry
from models.rules.handover import Relation
from models.vocabulary import (
    AfterRefusal,
    ClosureReason,
    ConferenceType,
    ConsentAnswer,
    HandoverRole,
    Need,
    ReviewChangeKind,
    ReviewChangeReason,
    Stage,
    StageMoveReason,
    TransferReason,
)

FORM_CONFIG = ANSWER_CONFIG

CODE = r"^[a-z0-9][a-z0-9-]*$"


def _acting() -> Any:
    return Field(
        description="Your representative code in the agency directory (recorded in the audit log).",
        min_length=1,
        max_length=64,
        pattern=CODE,
    )


class Referral(BaseModel):
    """The parameters of `case-lifecycle/referral`: nothing here identifies the person."""

    model_config = FORM_CONFIG

    referring_agency: str = Field(
        description="Directory code of the agency that refers the case, e.g. `neustart-wien`.",
        min_length=1,
        max_length=64,
        pattern=CODE,
    )
    stage: Stage = Field(
        default=Stage.custody,
        description="Where the person stands on the prison-exit continuum today.",
    )
    profile: str | None = Field(
        default=None,
        description="Governance profile to follow; empty (or left as offered) for this "
        "installation's default.",
        max_length=64,
    )


class ReferralDetails(BaseModel):
    """The referral step: the run's parameters again (pre-filled when they were valid, chosen
    again when not), then what only the form asks."""

    model_config = FORM_CONFIG

    referring_agency: str = Field(
        description="The agency that refers the case.", min_length=1, max_length=64, pattern=CODE
    )
    stage: Stage = Field(description="Where the person stands on the prison-exit continuum today.")
    profile: str = Field(description="The governance profile the case follows.", max_length=64)

    file_number: str = Field(
        description="The referring agency's own file number for this person. It stays in "
        "caseconf's database and is deleted from Prefect as soon as it is saved.",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/._-]*$",
    )
    needs: list[Need] = Field(
        default_factory=list,
        description="Needs identified so far; each brings in the agencies the profile maps to it.",
    )
    acting_representative: str = _acting()


PLACE = (
    "Where the conference meets: a venue of the directory (a meeting room or a video link). "
    "The place travels in every invitation and hand-over request, so it never names anything "
    "about the client or the family."
)


class Preparation(BaseModel):
    model_config = FORM_CONFIG

    conference_type: ConferenceType = Field(
        description="security: security authorities exchange confidential information; client "
        "and family do not take part. social_network: with the client's consent, client and "
        "family take part (who leads follows the profile)."
    )
    starts_at: datetime = Field(
        description="When the conference starts. A time without an offset is read in the time "
        "zone below."
    )
    time_zone: str = Field(
        description="IANA time zone of the conference, e.g. Europe/Vienna.", max_length=64
    )
    location: str = Field(description=PLACE, min_length=2, max_length=300)
    acting_representative: str = _acting()


class Consent(BaseModel):
    model_config = FORM_CONFIG

    client_consent: ConsentAnswer = Field(
        description="The client's answer to taking part in a social-network conference."
    )
    family_involvement: bool = Field(
        default=True,
        description="The client also agrees that family and friends are involved.",
    )
    expires_on: date | None = Field(
        default=None, description="When the consent lapses, if the client set a limit."
    )
    acting_representative: str = _acting()


class ConsentRefused(BaseModel):
    model_config = FORM_CONFIG

    next_step: AfterRefusal = Field(
        description="Without consent there is no social-network conference: go on as a security "
        "case, or close the case."
    )
    reason: str = Field(
        description="Why (recorded with the decision; no names).", min_length=3, max_length=500
    )
    acting_representative: str = _acting()


class RepresentativeEntry(BaseModel):
    """Who represents one agency at this conference, by directory code."""

    model_config = FORM_CONFIG

    agency: str = Field(
        description="Directory code of a participating agency.",
        min_length=1,
        max_length=64,
        pattern=CODE,
    )
    representative: str | None = Field(
        default=None,
        description="Directory code of the person who attends for it (pre-filled with who "
        "attended last time); empty: the agency decides.",
        max_length=64,
        pattern=CODE,
    )


class Stakeholders(BaseModel):
    model_config = FORM_CONFIG

    add: list[str] = Field(
        default_factory=list,
        description="Directory codes of agencies to add to the proposal.",
    )
    remove: list[str] = Field(
        default_factory=list,
        description="Directory codes of proposed agencies to leave out (never the lead).",
    )
    reason: str | None = Field(
        default=None,
        description="Required when you add or remove: why the list differs from the rules.",
        max_length=500,
    )
    intermediary: str | None = Field(
        default=None,
        description="Social-network conferences: directory code of the agency whose staff hand "
        "the invitation to the client and family (prison staff, the CSO).",
        max_length=64,
    )
    family_members: list[Relation] = Field(
        default_factory=list,
        max_length=10,
        description="Social-network conferences with the family involved: one entry per family "
        "member or friend invited, by their relation to the client (never a name); each gets "
        "a hand-over of their own. Empty: one invitation for the family.",
    )
    representatives: list[RepresentativeEntry] = Field(
        default=[],  # not a factory: form_with replaces the default with the pre-filled list
        description="Who attends for each agency. Naming someone other than last time's "
        "representative records a substitution.",
        validate_default=True,  # a pre-filled default arrives as JSON and must become entries
    )
    acting_representative: str = _acting()


class ActionReview(BaseModel):
    model_config = FORM_CONFIG

    updates: list[ActionUpdate] = Field(
        default_factory=list, description="One entry per open action listed above."
    )
    acting_representative: str = _acting()


class Information(BaseModel):
    model_config = FORM_CONFIG

    # Not `items`: the v2 UI checks a form against JSON Schema with a property named `items`
    # taken for the keyword, and cannot submit it.
    contributions: list[InformationEntry] = Field(
        default_factory=list,
        description="What each agency contributes, one entry per item.",
    )
    acting_representative: str = _acting()


class FamilyPlan(BaseModel):
    model_config = FORM_CONFIG

    plan_items: list[str] = Field(
        description="The plan the client, family and friends drafted, one item per entry, "
        "in their own order (no names).",
        min_length=1,
    )
    acting_representative: str = _acting()


class Decision(BaseModel):
    model_config = FORM_CONFIG

    plan_decisions: list[PlanDecisionEntry] = Field(
        default=[],  # not a factory: form_with pre-fills one entry per plan item
        description="Social-network conferences: one decision per plan item listed above "
        "(an entry per item is ready: give its outcome and reason).",
        validate_default=True,
    )
    decisions: list[str] = Field(
        default_factory=list,
        description="Further decisions of the professionals, one per entry (no names); "
        "professional: the client and family do not read them. Without a drafted plan, at "
        "least one decision, shared decision or action is needed.",
    )
    shared_decisions: list[str] = Field(
        default_factory=list,
        description="Further decisions that the client and family may read in their minutes "
        "(shared), one per entry (no names).",
    )
    actions: list[ActionEntry] = Field(
        default_factory=list, description="Actions agreed, each with an owner agency and due date."
    )
    next_review_on: date | None = Field(
        default=None,
        description="Date of the next conference (proposed by the profile's rules, above). "
        "Not used when the case closes.",
    )
    close_reason: ClosureReason | None = Field(
        default=None,
        description="Only when the conference decides to close the case: why. The decision is "
        "released as usual, then the case closes and no next conference is scheduled.",
    )
    acting_representative: str = _acting()


class CaseParameters(BaseModel):
    """What every deployment that acts on an existing case is given first: its reference."""

    model_config = FORM_CONFIG

    case_reference: str = Field(
        description="The case's pseudonymous reference, e.g. CASE-2026-0042.",
        pattern=REFERENCE_PATTERN,
        max_length=32,
    )


class Closure(CaseParameters):
    """The parameters of `case-close/close`."""

    reason: ClosureReason = Field(description="Why the case closes.")
    acting_representative: str = _acting()


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
    acting_representative: str = _acting()


class Handover(CaseParameters):
    """The parameters of `case-handover/record`."""

    handed_to: HandoverRole = Field(description="Whom the intermediary handed the invitation to.")
    relation: Relation | None = Field(
        default=None,
        description="For a family member: their relation to the client, as on the hand-over "
        "request; empty: every family member's invitation.",
    )
    acting_representative: str = _acting()


class ConsentWithdrawal(CaseParameters):
    """The parameters of `case-consent/withdraw`: no reason is asked, none is given."""

    acting_representative: str = _acting()


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
    acting_representative: str = _acting()


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
    acting_representative: str = _acting()


ALL_FORMS: tuple[type[BaseModel], ...] = (
    ReferralDetails,
    Preparation,
    Consent,
    ConsentRefused,
    Stakeholders,
    ActionReview,
    Information,
    FamilyPlan,
    Decision,
)


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
    acting_representative: str = _acting()


# --- choices: the codes a form offers, built when it is asked -------------------------------

M = TypeVar("M", bound=BaseModel)
#: One choice: the code the answer carries and the label a person reads (may equal the code).
Choice = tuple[str, str]
#: Field path (`add`, `contributions.agency`, `representatives.representative`) to its choices.
Choices = Mapping[str, Sequence[Choice]]


def with_choices(form: type[M], choices: Choices, *, required: Collection[str] = ()) -> type[M]:
    """`form` with each named text field (or list of texts) restricted to its choices: the JSON
    schema gets an `enum` (the UI a dropdown; a multi-select for lists), and an answer outside
    it is refused by the Prefect server before the run resumes. Descriptions stay; the text
    constraints a choice makes moot go. A field path in `required` loses its empty option.
    An empty list of choices leaves a list field that must stay empty, an optional field that
    must stay empty, or (a required text) the field as it was, for the rule to refuse."""
    if not choices:
        return form
    fields: dict[str, Any] = {}
    nested: dict[str, dict[str, Sequence[Choice]]] = {}
    for path, options in choices.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = options
    for name, original in form.model_fields.items():
        own = choices.get(name)
        inner = nested.get(name)
        if own is None and inner is None:
            continue
        field = copy(original)
        field.metadata = list(original.metadata)
        annotation = original.annotation
        if inner is not None:
            annotation = _narrow_models(
                annotation,
                inner,
                required={r.partition(".")[2] for r in required if r.startswith(f"{name}.")},
            )
        if own is not None:
            annotation, field = _narrow_texts(
                annotation, field, [code for code, _ in own], required=name in required
            )
            labels = {code: label for code, label in own if label != code}
            if labels:
                field.description = (field.description or "") + _legend(own)
        fields[name] = (annotation, field)
    return pydantic.create_model(form.__name__, __base__=form, **fields)  # type: ignore[call-overload,no-any-return]


def _legend(options: Sequence[Choice]) -> str:
    return " Choices: " + "; ".join(f"`{code}` {label}" for code, label in options) + "."


def _choice(codes: list[str]) -> Any:
    """One of `codes`; always an `enum` in the JSON schema (pydantic writes one choice as a
    `const`), so the UI shows a dropdown even when there is one choice."""
    return Annotated[Literal[tuple(codes)], WithJsonSchema({"type": "string", "enum": codes})]


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation)


def _narrow_texts(
    annotation: Any, field: FieldInfo, codes: list[str], *, required: bool
) -> tuple[Any, FieldInfo]:
    optional = _is_optional(annotation)
    base = (
        next((a for a in get_args(annotation) if a is not NoneType), None)
        if optional
        else annotation
    )
    if get_origin(base) is list:
        if not codes:
            field.metadata.append(annotated_types.MaxLen(0))
            field.description = (field.description or "") + " Nothing to choose here now."
            return annotation, field
        return list[_choice(codes)], field  # type: ignore[misc]
    # A choice needs no pattern or length: the text constraints apply to a str only.
    field.metadata = [
        m
        for m in field.metadata
        if not isinstance(m, annotated_types.MinLen | annotated_types.MaxLen)
        and getattr(m, "pattern", None) is None
    ]
    if not codes:
        if optional:
            field.default = None
            return NoneType, field
        return annotation, field
    choice = _choice(codes)
    if optional and not required:
        return choice | None, field
    if optional and field.default is None:
        field.default = PydanticUndefined
    return choice, field


def _narrow_models(
    annotation: Any, choices: dict[str, Sequence[Choice]], *, required: Collection[str]
) -> Any:
    """list[Entry] or Entry (or optional) with Entry's own fields narrowed."""
    if _is_optional(annotation):
        inner = next(a for a in get_args(annotation) if a is not NoneType)
        return _narrow_models(inner, choices, required=required) | None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return list[_narrow_models(item, choices, required=required)]  # type: ignore[misc]
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel), annotation
    return with_choices(annotation, choices, required=required)
