"""The referral: the run's parameters checked, the referral's details asked, the case opened and
its pseudonymous reference issued. Asked before the case exists, under `<run id>-referral`."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, CODE, Choices, acting
from models.config.profile import ProfileError, load_profile
from models.config.settings import get_settings
from models.errors import Refusal
from models.rules import cases, choices
from models.steps.step import Applied, Asked, Step
from models.vocabulary import Need, Phase, Stage


class Referral(BaseModel):
    """The parameters of `case-lifecycle/referral`: nothing here identifies the person."""

    model_config = ANSWER_CONFIG

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

    model_config = ANSWER_CONFIG

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
    acting_representative: str = acting()


def check_referral(session: Session, referral: Referral) -> tuple[list[str], dict[str, str]]:
    """Problems with the run's parameters, each naming the field, and the valid ones (to
    pre-fill the referral form); never a value typed."""
    problems = []
    valid: dict[str, str] = {}
    agency = cases.agency_by_code(session, referral.referring_agency)
    if agency is None or not agency.active:
        problems.append("referral.referring_agency: not an active agency in the directory")
    else:
        valid["referring_agency"] = agency.code
    if referral.stage == Stage.closed:
        problems.append("referral.stage: a case cannot be referred as closed")
    else:
        valid["stage"] = str(referral.stage)
    profile = referral.profile or get_settings().profile
    try:
        load_profile(profile)
    except ProfileError:
        problems.append("referral.profile: no valid governance profile of this name")
    else:
        valid["profile"] = profile
    return problems, valid


def _given(asked: Asked) -> Referral:
    return Referral.model_validate(asked.given)


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return (
        "### Refer a case\n"
        "Check the referring agency, the stage and the governance profile, then give the "
        "referral's details.\n\n"
        "caseconf issues the case's pseudonymous reference; only that reference is ever "
        "shown in Prefect and in messages. The agency's own file number stays in "
        "caseconf's database and is deleted from Prefect once saved. Do not type names."
    )


def offered(session: Session, asked: Asked, now: datetime) -> Choices:
    return {
        "referring_agency": choices.agencies(session),
        "profile": choices.profiles(get_settings().profiles_dir),
        "stage": choices.referral_stages(),
        "acting_representative": choices.representatives(session),
    }


def defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    """The run's parameters that are valid: no parameter fails the run."""
    return check_referral(session, _given(asked))[1]


def notice(session: Session, asked: Asked, now: datetime) -> str | None:
    """What is wrong with the run's parameters, shown above the form, which asks for it again."""
    return "; ".join(check_referral(session, _given(asked))[0]) or None


def apply(session: Session, asked: Asked, answer: ReferralDetails, now: datetime) -> Applied:
    try:
        load_profile(answer.profile)
    except ProfileError as error:
        raise Refusal.of("profile", "no valid governance profile of this name") from error
    case = cases.refer_case(
        session,
        referring_agency=answer.referring_agency,
        file_number=answer.file_number.strip(),
        stage=Stage(answer.stage),
        needs=answer.needs,
        profile=answer.profile,
        acting_representative_code=answer.acting_representative,
        reference_prefix=get_settings().reference_prefix,
        flow_run_id=asked.run_id,
        now=now,
    )
    assert case.id is not None
    return Applied({"case_id": case.id})


STEP = Step(
    name="referral",
    phase=Phase.referral,
    form=ReferralDetails,
    describe=describe,
    apply=apply,
    choices=offered,
    defaults=defaults,
    notice=notice,
)
