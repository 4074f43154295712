"""One conference cycle of a case, from preparation to the scheduled review; flows only coordinate.

The cycle asks preparation, the client's consent where the type needs it, and the stakeholders;
sends the invitations; then walks the conference phases of the case's profile, asking each
phase's steps (models/steps/registry.py); and releases the decision. A type that needs consent
checks it before each of these, never from cache.
"""

from datetime import date
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from flows.notifications import deliver_messages
from flows.steps import ask
from models.config.profile import Profile, load_profile
from models.rules.cases import CaseView
from models.steps import registry
from models.steps.step import Asked, Step
from models.vocabulary import ClosureReason, ConferenceType, Phase
from tasks.conference import close_after_decision, conference_view
from tasks.consent import missing_consent
from tasks.invitations import invitations_queued, invite
from tasks.portfolio import publish_continuity
from tasks.referral import case_view, follows
from tasks.release import release_decision, schedule_review
from tasks.runs import label_run, placement_tags, register_run, retagged, run_name
from tasks.steps import asks, ledger_read_once, step_answered


def step_key(case: CaseView, step: str) -> str:
    """A Prefect pause key and ledger key: lowercase letters, digits and dashes only."""
    return f"{case.reference.lower()}-c{case.cycle}-{step}"


def run_cycle(case_id: int) -> str:
    """Walk the case's current cycle; every step is skipped if the ledger says it is done (the
    ledger is read once for every step's key, and again only after a write)."""
    case = case_view(case_id)
    keys = [step_key(case, s.name) for s in registry.every_step()]
    with ledger_read_once(keys):
        _follow(case)
        profile = load_profile(case.profile)
        prepared = _ask(case, "preparation", Asked(case_id=case_id))
        asked = Asked(case_id=case_id, conference_id=int(prepared["conference_id"]))
        if not _confirm_and_invite(case, asked, profile):
            return "closed"
        decided = _phases(case, asked, profile)
        if decided is None or not _consent_holds(case, asked, profile, Phase.release):
            return "closed"
        return _release(case, asked, decided)


def _ask(case: CaseView, name: str, asked: Asked) -> dict[str, Any]:
    return ask(name, step_key=step_key(case, name), asked=asked)


def _follow(case: CaseView) -> None:
    """Make this run the one the case follows, named and tagged as the case; a replay finds
    both done already and starts no task for them."""
    run_id = str(flow_run.get_id())
    if not follows(case.id, run_id):
        register_run(case.id, run_id)
    _label(run_id, case, case.conference_type)


def _label(run_id: str, case: CaseView, conference_type: ConferenceType | None) -> None:
    """`label_run`, unless the run has that name and those tags already (as this process
    found it: a replay after the resume that labelled it)."""
    tags = retagged(
        flow_run.tags, case.reference, case.stage, conference_type, placement_tags(case.reference)
    )
    if flow_run.name != run_name(case.reference, case.cycle) or set(tags) != set(flow_run.tags):
        label_run(run_id, case.reference, case.cycle, case.stage, conference_type)


def _type(asked: Asked) -> ConferenceType:
    """The conference's type as it is now (going on as security changes it)."""
    assert asked.conference_id is not None
    return conference_view(asked.conference_id).conference_type


def _confirm_and_invite(case: CaseView, asked: Asked, profile: Profile) -> bool:
    """The client's consent where the type needs it, the participants, their invitations sent;
    False when the case closed instead."""
    if _missing(asked, profile, Phase.consent):
        _ask(case, "consent", asked)
    if not _consent_holds(case, asked, profile, Phase.stakeholders):
        return False
    # Read after the gate: going on as a security conference changes the type.
    _label(str(flow_run.get_id()), case, _type(asked))
    _ask(case, "stakeholders", asked)
    if not _consent_holds(case, asked, profile, Phase.invitation):
        return False
    assert asked.case_id is not None and asked.conference_id is not None
    if not invitations_queued(asked.case_id, asked.conference_id):  # a replay: no task
        invite(asked.case_id, asked.conference_id)
    deliver_messages(case.id, case.reference)
    return True


def _phases(case: CaseView, asked: Asked, profile: Profile) -> dict[str, Any] | None:
    """The profile's conference phases for the type, each behind its consent gate, each phase's
    steps asked in turn; returns the decision, or None when the case closed at a gate."""
    decided: dict[str, Any] | None = None
    passed: set[str] = set()
    # The gate can make the conference a security conference (consent refused, going on as
    # security), whose phases differ: so the type's phases are read again for each phase.
    while pending := [p for p in profile.rules_for(_type(asked)).phases if p not in passed]:
        phase = pending[0]
        passed.add(phase)
        if not _consent_holds(case, asked, profile, phase):
            return None
        if not _holds(profile, asked, phase):
            continue
        for step in _steps_of(phase):
            if step_answered(step_key(case, step.name)) is None and not asks(step.name, asked):
                continue
            answered = _ask(case, step.name, asked)
            if phase == Phase.decision:
                decided = answered
    assert decided is not None, "every conference type has a decision phase"
    return decided


def _steps_of(phase: str) -> list[Step[Any]]:
    steps = registry.steps_for(phase)
    if not steps:
        raise LookupError(
            f"no step is registered for phase {phase!r}: name its module in CASECONF_STEP_MODULES"
        )
    return steps


def _holds(profile: Profile, asked: Asked, phase: str) -> bool:
    """Whether the conference's type, as it is now, has `phase`."""
    return phase in profile.rules_for(_type(asked)).phases


def _release(case: CaseView, asked: Asked, decided: dict[str, Any]) -> str:
    """Minutes and action notices sent; the case closes, or its review is scheduled."""
    assert asked.case_id is not None and asked.conference_id is not None
    release_decision(asked.case_id, asked.conference_id)
    deliver_messages(case.id, case.reference)
    publish_continuity(case.id, case.reference)
    if decided.get("close_reason"):
        close_after_decision(
            case.id, ClosureReason(decided["close_reason"]), decided.get("actor_id")
        )
        get_run_logger().info("%s: closed by the conference.", case.reference)
        return "closed"
    review_on = date.fromisoformat(str(decided["next_review_on"]))
    run = schedule_review(case.id, asked.conference_id, review_on)
    get_run_logger().info("%s: review scheduled as flow run %s.", case.reference, run)
    return "review_scheduled"


def _missing(asked: Asked, profile: Profile, phase: str) -> bool:
    """A type that needs consent, and a scope it needs before `phase` not in force today
    (read from the ledger at each call, never from cache)."""
    assert asked.case_id is not None and asked.conference_id is not None
    rules = profile.rules_for(_type(asked))
    return bool(rules.consent_scopes) and bool(
        missing_consent(asked.case_id, asked.conference_id, phase, profile)
    )


def _consent_holds(case: CaseView, asked: Asked, profile: Profile, phase: str) -> bool:
    """Before every step of a type that needs consent: every scope the type needs before
    `phase`, checked never from cache, so a replay weeks later sees a withdrawal or an expiry.
    Without it the track stops: go on as a security conference (True) or close the case
    (False)."""
    if _missing(asked, profile, phase):
        answered = _ask(case, "consent-refused", asked)
        if answered["next_step"] == "close_case":
            return False
    _confirm_security_list(case, asked)
    return True


def _confirm_security_list(case: CaseView, asked: Asked) -> None:
    """After going on as a security conference with participants confirmed already: the
    coordinator confirms the security type's list under a step key of its own; removed, added
    and kept participants are told once. Asked at every gate until answered, so the replay
    after its resume reaches it again."""
    fallback = step_answered(step_key(case, "consent-refused"))
    if not fallback or not fallback.get("reselect"):
        return
    key = step_key(case, "stakeholders-security")
    if step_answered(key) is not None:
        return
    _ask(case, "stakeholders-security", asked)
    deliver_messages(case.id, case.reference)
