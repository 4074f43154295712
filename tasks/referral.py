"""Referral: open the case and issue its pseudonymous reference."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import task
from sqlmodel import Session, select

from models.config.profile import ProfileError, load_profile
from models.config.settings import get_settings
from models.errors import Refusal
from models.record.database import session_scope
from models.record.tables import Agency, Review
from models.rules import cases
from models.rules.review import REVIEW_START
from models.steps.forms import Referral, ReferralDetails
from models.vocabulary import Stage
from tasks.policies import DATABASE_RETRIES, StepOutcome, apply_once, now


def check_referral(referral: Referral) -> tuple[list[str], dict[str, str]]:
    """Problems with the run's parameters, each naming the field, and the valid ones (to
    pre-fill the referral form); never a value typed."""
    problems = []
    valid: dict[str, str] = {}
    with session_scope() as session:
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


@task(**DATABASE_RETRIES)
def refer(step_key: str, attempt: int, answer: ReferralDetails, flow_run_id: str) -> StepOutcome:
    settings = get_settings()

    def write(session: Session) -> dict[str, int]:
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
            reference_prefix=settings.reference_prefix,
            flow_run_id=flow_run_id,
            now=now(),
        )
        assert case.id is not None
        return {"case_id": case.id}

    return apply_once(step_key=step_key, case_id=None, attempt=attempt, write=write)


def case_view(case_id: int) -> cases.CaseView:
    """The case as it stands now: never cached, so a replay sees what changed in between."""
    with session_scope() as session:
        return cases.view(cases.get_case(session, case_id))


def follows(case_id: int, flow_run_id: str) -> bool:
    """Whether the case follows this run already (`register_run` done)."""
    with session_scope() as session:
        return cases.get_case(session, case_id).current_flow_run_id == flow_run_id


def find_case(case_reference: str) -> cases.CaseView:
    with session_scope() as session:
        return cases.view(cases.case_by_reference(session, case_reference))


def conference_defaults(case_id: int) -> tuple[str, datetime]:
    """The time zone (the referring agency's) and a proposed local start for the cycle's conference.

    A review proposes its due date; a first conference two weeks from today; both at 10:00.
    """
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        agency = session.get(Agency, case.referring_agency_id)
        time_zone = agency.time_zone if agency else "UTC"
        due = session.exec(
            select(Review.due_at).where(Review.case_id == case_id, Review.cycle == case.cycle)
        ).first()
    zone = ZoneInfo(time_zone)
    day = due.astimezone(zone).date() if due else datetime.now(zone).date() + timedelta(days=14)
    return time_zone, datetime.combine(day, REVIEW_START)
