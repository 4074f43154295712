"""One conference cycle of a case, from preparation to the scheduled review; flows only coordinate."""

from datetime import date
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from flows.notifications import deliver_messages
from flows.timeline import ask  # flows.steps.ask, and the timeline refreshed per step
from models.config.profile import Profile, load_profile
from models.rules.cases import CaseView
from models.rules.conference import ConferenceView
from models.steps.forms import (
    ActionReview,
    Consent,
    ConsentRefused,
    Decision,
    FamilyPlan,
    Information,
    Preparation,
    Stakeholders,
)
from models.vocabulary import ClosureReason, ConferenceType, Phase
from tasks.choices import (
    acting_choices,
    decision_choices,
    information_choices,
    preparation_choices,
)
from tasks.conference import (
    NO_PLAN,
    close_after_decision,
    conference_view,
    describe_open_actions,
    describe_plan,
    plan_numbers,
    prepare,
    record_decision,
    record_family_plan,
    record_information,
    review_actions,
)
from tasks.consent import after_refusal, missing_consent, record_consent
from tasks.fallback import confirm_security_participants, describe_security_list
from tasks.invitations import invite
from tasks.referral import case_view, conference_defaults, follows
from tasks.release import release_decision, schedule_review
from tasks.runs import label_run, placement_tags, register_run, retagged, run_name
from tasks.stages import next_conference_default
from tasks.stakeholders import (
    confirm_participants,
    describe_proposal,
    invitations_queued,
    publish_continuity,
    stakeholder_choices,
)
from tasks.steps import ledger_read_once, step_answered

#: A cycle's steps: a replay reads their ledger rows at once (`tasks.steps.ledger_read_once`).
STEPS = (
    "preparation",
    "consent",
    "consent-refused",
    "stakeholders",
    "stakeholders-security",
    "action-review",
    "information",
    "family-only",
    "decision",
)


def step_key(case: CaseView, step: str) -> str:
    """A Prefect pause key and ledger key: lowercase letters, digits and dashes only."""
    return f"{case.reference.lower()}-c{case.cycle}-{step}"


def run_cycle(case_id: int) -> str:
    """Walk the case's current cycle; every step is skipped if the ledger says it is done (the
    ledger is read once for the cycle's steps, and again only after a write)."""
    case = case_view(case_id)
    with ledger_read_once([step_key(case, step) for step in STEPS]):
        _follow(case)
        profile = load_profile(case.profile)
        conference_id = _prepare(case, case_id, profile)
        if not _confirm_and_invite(case, case_id, conference_id, profile):
            return "closed"
        decided = _phases(case, case_id, conference_id, profile)
        if decided is None or not _consent_holds(
            case, case_id, conference_id, profile, Phase.release
        ):
            return "closed"
        return _release(case, case_id, conference_id, decided)


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


def _prepare(case: CaseView, case_id: int, profile: Profile) -> int:
    """The preparation step (type, time and place); returns the conference's id."""
    time_zone, starts_at = conference_defaults(case_id)
    review = case.cycle > 1

    key = step_key(case, "preparation")
    prepared = ask(
        case_id=case_id,
        step_key=key,
        form=Preparation,
        description=(
            f"### {case.reference}: prepare the {'review ' if review else ''}conference\n"
            "Choose the conference type, when and where it meets. The next form proposes who "
            "takes part, by the rules of profile "
            f"**{profile.name}**.\n\n"
            "- *security*: security authorities exchange confidential information; the client "
            "and family do not take part; no consent is needed.\n"
            "- *social_network*: the client, family and welfare services take part; only with "
            "the client's recorded consent. Who leads follows the profile."
        ),
        apply=lambda answer, attempt: prepare(key, attempt, case_id, answer),
        defaults={
            "conference_type": case.conference_type or profile.default_conference_type,
            "time_zone": time_zone,
            "starts_at": starts_at,
        },
        choices=preparation_choices,
    )
    return int(prepared["conference_id"])


def _confirm_and_invite(case: CaseView, case_id: int, conference_id: int, profile: Profile) -> bool:
    """The client's consent where the type needs it, the participants, their invitations sent;
    False when the case closed instead."""
    if _needs_consent(profile, conference_view(conference_id)) and missing_consent(
        case_id, conference_id, Phase.consent, profile
    ):
        key = step_key(case, "consent")
        ask(
            case_id=case_id,
            step_key=key,
            form=Consent,
            description=(
                f"### {case.reference}: the client's consent\n"
                "A social-network conference takes place only with the client's consent, "
                "recorded before any invitation goes out. Record the client's answer as given "
                "to you; a refusal needs no reason from the client."
            ),
            apply=lambda answer, attempt: record_consent(key, attempt, case_id, answer),
            choices=acting_choices,
        )
    if not _consent_holds(case, case_id, conference_id, profile, Phase.stakeholders):
        return False
    # Read after the gate: going on as a security conference changes the type.
    _label(str(flow_run.get_id()), case, conference_view(conference_id).conference_type)
    proposal, intermediary, representatives = describe_proposal(case_id, conference_id, profile)
    key = step_key(case, "stakeholders")
    ask(
        case_id=case_id,
        step_key=key,
        form=Stakeholders,
        description=(
            f"### {case.reference}: who takes part\n"
            "Proposed by the profile's rules (the lead and any co-leads, the core group, and "
            "agencies for the "
            "case's needs). Confirm, or add and remove agencies with a reason; no lead can "
            "be removed. Under *representatives*, who attended for an agency last time is "
            "proposed again; name someone else to record a substitute, or leave it empty for "
            "the agency to decide. Invitations go out when you submit.\n\n" + proposal
        ),
        apply=lambda answer, attempt: confirm_participants(
            key, attempt, case_id, conference_id, answer
        ),
        defaults={"intermediary": intermediary, "representatives": representatives},
        choices=lambda: stakeholder_choices(case_id, conference_id),
    )
    if not _consent_holds(case, case_id, conference_id, profile, Phase.invitation):
        return False
    if not invitations_queued(case_id, conference_id):  # a replay finds them queued: no task
        invite(case_id, conference_id)
    deliver_messages(case_id, case.reference)
    return True


def _holds(profile: Profile, conference_id: int, phase: Phase) -> bool:
    """Whether the conference's type, as it is now, has `phase`."""
    return phase in profile.rules_for(conference_view(conference_id).conference_type).phases


def _phases(
    case: CaseView, case_id: int, conference_id: int, profile: Profile
) -> dict[str, Any] | None:
    """The information, family-only and decision phases the type has, each behind its consent
    gate; returns the decision, or None when the case closed at a gate."""
    decided: dict[str, Any] | None = None
    for phase in (Phase.information, Phase.family_only, Phase.decision):
        # A phase the type lacks has no gate. The gate can make the conference a security
        # conference (consent refused, going on as security), which may lack the phase: so the
        # type is read again after it.
        if not _holds(profile, conference_id, phase):
            continue
        if not _consent_holds(case, case_id, conference_id, profile, phase):
            return None
        if not _holds(profile, conference_id, phase):
            continue
        if phase == Phase.information:
            if case.cycle > 1:
                _review_actions(case, case_id)
            _information(case, case_id, conference_id)
        elif phase == Phase.family_only:
            _family_only(case, case_id, conference_id)
        else:
            decided = _decision(case, case_id, conference_id, profile)
    assert decided is not None, "every conference type has a decision phase"
    return decided


def _release(case: CaseView, case_id: int, conference_id: int, decided: dict[str, Any]) -> str:
    """Minutes and action notices sent; the case closes, or its review is scheduled."""
    release_decision(case_id, conference_id)
    deliver_messages(case_id, case.reference)
    publish_continuity(case_id, case.reference)
    if decided.get("close_reason"):
        close_after_decision(
            case_id, ClosureReason(decided["close_reason"]), decided.get("actor_id")
        )
        get_run_logger().info("%s: closed by the conference.", case.reference)
        return "closed"
    review_on = date.fromisoformat(str(decided["next_review_on"]))
    run = schedule_review(case_id, conference_id, review_on)
    get_run_logger().info("%s: review scheduled as flow run %s.", case.reference, run)
    return "review_scheduled"


def _needs_consent(profile: Profile, conference: ConferenceView) -> bool:
    return bool(profile.rules_for(conference.conference_type).consent_scopes)


def _consent_holds(
    case: CaseView, case_id: int, conference_id: int, profile: Profile, phase: Phase
) -> bool:
    """Before every step of a type that needs consent: every scope the type needs before
    `phase` (models.rules.consent.missing_consent), checked never from cache, so a replay weeks later
    sees a withdrawal or an expiry. Without it the track stops: go on as a security conference
    (True) or close the case (False)."""
    if (
        _needs_consent(profile, conference_view(conference_id))
        and missing_consent(case_id, conference_id, phase, profile)
        and not _after_consent_stopped(case, case_id, conference_id)
    ):
        return False
    _confirm_security_list(case, case_id, conference_id)
    return True


def _after_consent_stopped(case: CaseView, case_id: int, conference_id: int) -> bool:
    """Ask what follows a refused or withdrawn consent; False when the case closed."""
    key = step_key(case, "consent-refused")
    answered = ask(
        case_id=case_id,
        step_key=key,
        form=ConsentRefused,
        description=(
            f"### {case.reference}: no consent, no social-network conference\n"
            "The client has not given (or no longer gives) consent. The case can go on as a "
            "security case, without client and family, or close. Say why."
        ),
        apply=lambda answer, attempt: after_refusal(key, attempt, case_id, conference_id, answer),
        choices=acting_choices,
    )
    return answered["next_step"] != "close_case"


def _confirm_security_list(case: CaseView, case_id: int, conference_id: int) -> None:
    """After going on as a security conference with participants confirmed already: the
    coordinator confirms the security type's list (who leaves, stays, joins, and why) under a
    step key of its own; removed, added and kept participants are told once. Asked at every
    gate until answered, so the replay after its resume reaches it again."""
    fallback = step_answered(step_key(case, "consent-refused"))
    if not fallback or not fallback.get("reselect"):
        return
    key = step_key(case, "stakeholders-security")
    if step_answered(key) is not None:
        return
    table, representatives = describe_security_list(case_id, conference_id)
    ask(
        case_id=case_id,
        step_key=key,
        form=Stakeholders,
        description=(
            f"### {case.reference}: who takes part in the security conference\n"
            "The conference goes on as a security conference: selection ran again under the "
            "security type's rules for the case's stage. The client and family leave, and so "
            "does any agency those rules do not propose; the security type's lead and core "
            "group come in. Confirm, or add and remove agencies with a reason (no lead can be "
            "removed). Information already recorded stays. When you submit, those who leave "
            "get a cancellation (the client's and family's intermediary is told the meeting "
            "no longer includes them, without a reason), those who join an invitation, and the "
            "others an update.\n\n" + table
        ),
        apply=lambda answer, attempt: confirm_security_participants(
            key, attempt, case_id, conference_id, answer
        ),
        defaults={"representatives": representatives},
        choices=lambda: stakeholder_choices(case_id, conference_id),
    )
    deliver_messages(case_id, case.reference)


def _review_actions(case: CaseView, case_id: int) -> None:
    key = step_key(case, "action-review")
    ask(
        case_id=case_id,
        step_key=key,
        form=ActionReview,
        description=(
            f"### {case.reference}: review of the open actions\n"
            "Go through every open action: done, not done (with a reason code) or carried over "
            "(with a new due date).\n\n" + describe_open_actions(case_id)
        ),
        apply=lambda answer, attempt: review_actions(key, attempt, case_id, answer),
        choices=acting_choices,
    )


def _family_only(case: CaseView, case_id: int, conference_id: int) -> None:
    key = step_key(case, "family-only")
    ask(
        case_id=case_id,
        step_key=key,
        form=FamilyPlan,
        description=(
            f"### {case.reference}: the family-only phase\n"
            "The client, family and friends draft their own plan, with no professionals "
            "present. Record their plan items as they wrote them, without names."
        ),
        apply=lambda answer, attempt: record_family_plan(
            key, attempt, case_id, conference_id, answer
        ),
        choices=acting_choices,
    )


def _information(case: CaseView, case_id: int, conference_id: int) -> None:
    key = step_key(case, "information")
    ask(
        case_id=case_id,
        step_key=key,
        form=Information,
        description=(
            f"### {case.reference}: the information phase\n"
            "Each agency contributes what it knows, one entry per item, with its "
            "classification:\n"
            "- **restricted** (security conferences only, from an agency cleared for it): give "
            "only a *pointer*, which agency holds what and where; caseconf never stores the "
            "content;\n"
            "- **professional**: a short summary for the professionals of this conference;\n"
            "- **shared**: a short summary that may also reach the client and family.\n\n"
            "Write no names."
        ),
        apply=lambda answer, attempt: record_information(
            key, attempt, case_id, conference_id, answer
        ),
        choices=lambda: information_choices(conference_id),
    )


def _decision(case: CaseView, case_id: int, conference_id: int, profile: Profile) -> dict[str, Any]:
    """Ask the decision; returns the next conference's date, or the reason the case closes."""
    conference = conference_view(conference_id)
    next_on, rule = next_conference_default(case_id, conference_id, profile)
    plan = ""
    drafted = describe_plan(conference_id)
    # A conference that went on as security after the family-only phase keeps the family's
    # plan: it is decided all the same.
    if conference.conference_type == ConferenceType.social_network or drafted != NO_PLAN:
        plan = (
            "\n\n**The family's plan.** Decide each item: accepted, amended (give the "
            "amendment) or rejected, each with a reason, and who may read it (classification; "
            "the family's own items are shared unless you say professional).\n\n" + drafted
        )
    key = step_key(case, "decision")
    decided = ask(
        case_id=case_id,
        step_key=key,
        form=Decision,
        description=(
            f"### {case.reference}: the decision phase\n"
            "Record the professionals' decisions and the actions agreed, each with an owner "
            "agency of this conference and a due date, and the date of the next conference "
            f"(proposed: {next_on.isoformat()}, {rule}); or, if the conference closes the case, "
            "the reason." + plan
        ),
        apply=lambda answer, attempt: record_decision(key, attempt, case_id, conference_id, answer),
        # One entry per plan item, ready for its outcome and reason.
        defaults={
            "next_review_on": next_on,
            **(
                {"plan_decisions": [{"item": n} for n in plan_numbers(conference_id)]}
                if plan
                else {}
            ),
        },
        choices=lambda: decision_choices(conference_id),
    )
    return decided
