"""A long history costs nothing extra (issue 5): resume to the next form at cycle 1 and cycle 20.

One execution starts a Prefect server and caseconf's serving process (temporary folders, a
SQLite database, loopback mail and chat catchers, the demo directory), then walks fresh cases
side by side, round after round:

- A, the baseline: a case at cycle 1, referred through `case-lifecycle/referral`;
- B: a case whose 19 earlier cycles are written straight into the database (conferences,
  participants, information, plans, actions in mixed states, the outbox, ledger rows and
  refusals, reviews, audit events, consent given and withdrawn, a stage move) and left as its
  last release leaves it (cycle 19, review scheduled); its cycle-20 run is started through
  `case-review/review`, as the scheduled run would be;
- C, a control: the same with one earlier cycle, so B/C shows the history's length alone, apart
  from what every review does more than a first conference (the action review).

Measured for preparation, stakeholders and information: from `resume_flow_run` to the run's next
pause with that form's schema saved (what `Walk.waits_at` waits for). That includes the runner's
poll for resumed runs (up to 1 s), so the time from the run's Running to its Paused state
(Prefect's own timestamps) is shown as well. The cases' order rotates at every step. Exits
non-zero only on errors, never on a slow ratio.

Run: `make bench` (every bench) or `python -m bench history [--rounds N] [--scale K]`; it takes
about 40 s to start and 65 s a round.
The last measured ratios are in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlmodel import Session, col, func, select

from models.record.outbox import notification_key
from models.record.tables import (
    ActionItem,
    Agency,
    AuditEvent,
    Case,
    Channel,
    Conference,
    ConsentRecord,
    Effect,
    FormRefusal,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Representative,
    Review,
    StageChange,
)
from models.rules.review import review_key, review_starts_at
from models.vocabulary import (
    ActionStatus,
    CaseStatus,
    Classification,
    ConferenceKind,
    ConferenceType,
    ConsentDecision,
    ConsentScope,
    Need,
    NotDoneReason,
    NotificationStatus,
    Phase,
    PlanOutcome,
    ReviewStatus,
    Role,
    Stage,
    StageChangeKind,
)

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

    from tests.prefect_harness import Serving, Walk

ROOT = Path(__file__).resolve().parent.parent
REP = "neustart-wien-1"
ZONE = "Europe/Vienna"
PROFILE = "generic"
EARLIER_CYCLES = 19
ROUNDS = 5
POLL = 0.05  # seconds between looks at the run: small against a step of seconds
STEP_TIMEOUT = 180.0
# B's cycles 5 to 12 were social-network conferences; the client withdrew consent before 13.
SOCIAL_NETWORK = range(5, 13)
# Per cycle, a busy case: information items, further decisions, actions agreed.
INFORMATION_ITEMS = 8
DECISIONS = 4
ACTIONS = 6

# The step answered, and the form each case waits at next (A, a first cycle, has no action review).
NEXT_FORM = {
    "preparation": {"A": "stakeholders", "B": "stakeholders", "C": "stakeholders"},
    "stakeholders": {"A": "information", "B": "action-review", "C": "action-review"},
    "action-review": {"B": "information", "C": "information"},
    "information": {"A": "decision", "B": "decision", "C": "decision"},
}
COMPARED = ("preparation", "stakeholders", "information")
CASES = {
    "A": "cycle 1 (baseline)",
    "B": f"cycle {EARLIER_CYCLES + 1}, {EARLIER_CYCLES} cycles loaded",
    "C": "cycle 2, 1 cycle loaded (control)",
}


def starts_in(days: int) -> str:
    return (datetime.now() + timedelta(days=days)).replace(hour=10, minute=0, second=0).isoformat()


# --- a case's earlier cycles, written straight into caseconf's database ------------------------


@dataclass
class _Directory:
    agencies: dict[str, Agency]
    channels: dict[int, list[Channel]]
    rep: Representative

    @classmethod
    def read(cls, session: Session) -> _Directory:
        channels: dict[int, list[Channel]] = defaultdict(list)
        for channel in session.exec(select(Channel).order_by(col(Channel.tag))):
            channels[channel.agency_id].append(channel)
        rep = session.exec(select(Representative).where(Representative.code == REP)).one()
        return cls({a.code: a for a in session.exec(select(Agency))}, channels, rep)

    def id_of(self, code: str) -> int:
        agency_id = self.agencies[code].id
        assert agency_id is not None
        return agency_id

    @property
    def rep_id(self) -> int:
        assert self.rep.id is not None
        return self.rep.id


@dataclass
class _History:
    """Writes a case's past cycles as the flows, the sweep and the coordinators left them."""

    session: Session
    directory: _Directory
    case: Case
    now: datetime
    scale: int = 1  # multiplies the items, decisions and actions of each cycle

    @property
    def case_id(self) -> int:
        assert self.case.id is not None
        return self.case.id

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def effect(self, key: str, result: dict[str, Any], at: datetime) -> None:
        self.add(Effect(key=key, case_id=self.case_id, result=result, created_at=at))

    def audit(self, action: str, at: datetime, detail: str | None = None) -> None:
        self.add(
            AuditEvent(
                at=at,
                case_id=self.case_id,
                actor_id=self.directory.rep_id,
                action=action,
                detail=detail,
            )
        )

    def consent(
        self, scope: str, decision: ConsentDecision, at: datetime, until: date | None
    ) -> int:
        row = self.add(
            ConsentRecord(
                case_id=self.case_id,
                scope=scope,
                decision=decision,
                recorded_by_id=self.directory.rep_id,
                recorded_at=at,
                expires_on=until,
            )
        )
        self.audit(f"consent.{decision}", at, scope)
        return int(row.id)

    def notify(
        self,
        conference: Conference,
        event: str,
        agency_id: int,
        role: Role,
        at: datetime,
        *,
        recipient: str | None = None,
        key_event: str | None = None,
        version: int = 0,
        detail: dict[str, Any] | None = None,
        status: NotificationStatus = NotificationStatus.sent,
    ) -> list[int]:
        """One message per channel of the agency, delivered (a chat now and then only on retry)."""
        ids = []
        for channel in self.directory.channels[agency_id]:
            retried = channel.kind == "chat" and conference.cycle % 4 == 0
            row = self.add(
                Notification(
                    key=notification_key(
                        reference=self.case.reference,
                        cycle=conference.cycle,
                        event=key_event or event,
                        recipient=recipient or str(agency_id),
                        channel=channel.tag,
                        version=version,
                    ),
                    case_id=self.case_id,
                    conference_id=conference.id,
                    event=event,
                    recipient_agency_id=agency_id,
                    recipient_role=role,
                    channel=channel.tag,
                    detail=detail or {},
                    status=status,
                    attempts=2 if retried else 1,
                    created_at=at,
                    sent_at=at + timedelta(minutes=5 if retried else 0),
                )
            )
            ids.append(int(row.id))
        return ids

    def cycle(self, cycle: int, on: datetime, next_due: datetime, proposals: list[Any]) -> None:
        """One conference cycle, from preparation through release to its next review."""
        ref, social = self.case.reference.lower(), cycle in SOCIAL_NETWORK
        agencies, intermediary = self.directory.agencies, self.directory.id_of("jva-wien")
        prepared, released = on - timedelta(days=14), on + timedelta(hours=3)
        conference = self.add(
            Conference(
                case_id=self.case_id,
                cycle=cycle,
                kind=ConferenceKind.first if cycle == 1 else ConferenceKind.review,
                conference_type=ConferenceType.social_network
                if social
                else ConferenceType.security,
                starts_at=on,
                time_zone=ZONE,
                location="Justizanstalt Wien, room 2",
                ical_uid=f"{uuid.uuid4()}@caseconf",
                ical_sequence=1 if cycle % 3 == 0 else 0,  # every third conference was moved once
                phase=Phase.release,
                created_at=prepared,
                released_at=released,
            )
        )
        if cycle == 1:
            self.effect(f"{uuid.uuid4()}-referral", {"case_id": self.case_id}, prepared)
            self.audit("case.referred", prepared)
        self.effect(f"{ref}-c{cycle}-preparation", {"conference_id": conference.id}, prepared)
        self.audit("conference.prepared", prepared, f"cycle {cycle}, {conference.conference_type}")
        if cycle == SOCIAL_NETWORK.start:
            until = (on + timedelta(days=3 * 365)).date()
            ids = [
                self.consent(scope, ConsentDecision.granted, prepared, until)
                for scope in (
                    ConsentScope.social_network_conference,
                    ConsentScope.family_involvement,
                )
            ]
            self.effect(f"{ref}-c{cycle}-consent", {"consent_ids": ids, "granted": True}, prepared)
        if cycle == SOCIAL_NETWORK.stop:
            self.consent(
                ConsentScope.social_network_conference, ConsentDecision.withdrawn, prepared, None
            )
            self.effect(
                f"{ref}-c{cycle}-consent-refused", {"next_step": "continue_as_security"}, prepared
            )
            self.audit("conference.continued_as_security", prepared)

        invited = prepared + timedelta(hours=1)
        people = [
            self.add(
                Participant(
                    conference_id=conference.id,
                    agency_id=agencies[p.agency_code].id,
                    role=p.role,
                    rule=p.rule[:300],
                )
            )
            for p in proposals
        ]
        if social:
            people += [
                self.add(
                    Participant(
                        conference_id=conference.id,
                        role=role,
                        rule=f"{role} of a social-network conference, invited through jva-wien",
                        intermediary_agency_id=intermediary,
                    )
                )
                for role in (Role.client, Role.family)
            ]
        self.effect(
            f"{ref}-c{cycle}-stakeholders", {"participant_ids": [p.id for p in people]}, invited
        )
        self.audit("participants.confirmed", invited)
        professionals = [p for p in people if p.agency_id is not None]
        lead = next(p for p in professionals if p.role == Role.lead)
        lead_id: int = lead.agency_id
        for p in people:
            to: int = p.agency_id or intermediary
            who = f"{to}:{p.role}"
            events = ("invitation", "reminder") if p.agency_id else ("handover_request",)
            handed = NotificationStatus.handed_over if p.role == Role.client else None
            for event in events:
                self.notify(
                    conference,
                    event,
                    to,
                    Role(p.role),
                    invited,
                    recipient=who,
                    status=handed or NotificationStatus.sent,
                )
            if conference.ical_sequence:
                self.notify(
                    conference, "rescheduled", to, Role(p.role), invited, recipient=who, version=1
                )
        if social:
            self.audit("invitation.handed_over.client", invited + timedelta(days=2))

        if cycle > 1:
            open_actions = self.session.exec(
                select(ActionItem)
                .where(ActionItem.case_id == self.case_id, ActionItem.status == ActionStatus.open)
                .order_by(col(ActionItem.due_on), col(ActionItem.id))
            ).all()
            for i, action in enumerate(open_actions):
                if i % 3 == 0 and cycle >= EARLIER_CYCLES - 1:
                    action.status_reason = ActionStatus.carried_over  # still open today
                    action.due_on = (self.now + timedelta(days=20 + i)).date()
                elif i % 3 == 1:
                    action.status = ActionStatus.not_done
                    action.status_reason = NotDoneReason.agency_did_not_act
                else:
                    action.status = ActionStatus.done
                action.updated_at = on
                self.session.add(action)
            self.effect(
                f"{ref}-c{cycle}-action-review", {"action_ids": [a.id for a in open_actions]}, on
            )
            self.audit("actions.reviewed", on)

        items = []
        for i in range(INFORMATION_ITEMS * self.scale):
            restricted = not social and i == 0
            items.append(
                self.add(
                    InformationItem(
                        conference_id=conference.id,
                        agency_id=lead.agency_id
                        if restricted
                        else professionals[i % len(professionals)].agency_id,
                        classification=Classification.restricted
                        if restricted
                        else (Classification.shared if i % 2 else Classification.professional),
                        pointer=f"case system, entry {cycle}-{i}" if restricted else None,
                        summary=None
                        if restricted
                        else f"Note {i}, cycle {cycle}: attends the programme.",
                        recorded_at=on,
                    )
                )
            )
        self.effect(f"{ref}-c{cycle}-information", {"information_ids": [i.id for i in items]}, on)
        self.audit("conference.information", on, f"{len(items)} items")

        drafted = 0
        if social:
            plan = []
            for outcome in PlanOutcome:
                drafted += 1
                plan.append(
                    self.add(
                        PlanItem(
                            conference_id=conference.id,
                            number=drafted,
                            drafted_by=Role.family,
                            text=f"Family plan item {drafted}",
                            outcome=outcome,
                            amendment="Weekly, not daily"
                            if outcome == PlanOutcome.amended
                            else None,
                            reason="Fits the conditions",
                        )
                    )
                )
            self.effect(f"{ref}-c{cycle}-family-only", {"plan_item_ids": [p.id for p in plan]}, on)
            self.audit("conference.family_plan", on)
        for n in range(1, DECISIONS * self.scale + 1):
            self.add(
                PlanItem(
                    conference_id=conference.id,
                    number=drafted + n,
                    drafted_by=Role.lead,
                    text=f"Decision {n} of cycle {cycle}",
                    outcome=PlanOutcome.accepted,
                )
            )
        if cycle % 3 == 1:  # a decision answer refused by a business rule, then accepted
            self.add(
                FormRefusal(
                    step_key=f"{ref}-c{cycle}-decision",
                    attempt=0,
                    reason="next_review_on: must be after today",
                    at=on,
                )
            )
        actions = [
            self.add(
                ActionItem(
                    case_id=self.case_id,
                    conference_id=conference.id,
                    owner_agency_id=professionals[i % len(professionals)].agency_id,
                    description=f"Action {i} of cycle {cycle}",
                    due_on=(on + timedelta(days=28 + i)).date(),
                    created_at=on,
                    updated_at=on,
                )
            )
            for i in range(ACTIONS * self.scale)
        ]
        self.effect(
            f"{ref}-c{cycle}-decision",
            {"action_ids": [a.id for a in actions], "next_review_on": next_due.date().isoformat()},
            on,
        )
        self.audit("conference.decision", on)

        sent: list[int] = []
        for p in people:
            to = p.agency_id or intermediary
            sent += self.notify(
                conference, "minutes", to, Role(p.role), released, recipient=f"{to}:{p.role}"
            )
        for action in actions:
            owner, notice = action.owner_agency_id, {"action_id": action.id}
            sent += self.notify(
                conference,
                "action_assigned",
                owner,
                Role.core,
                released,
                key_event=f"action_assigned:{action.id}",
                detail=notice,
            )
            due = f"{action.due_on}"
            later = released + timedelta(days=21)
            self.notify(
                conference,
                "action_due_soon",
                owner,
                Role.core,
                later,
                key_event=f"action_due_soon:{action.id}:{due}",
                detail=notice,
            )
            if action.id % 3 == 1:  # overdue first, then not done at the review
                for event, to, role in (
                    ("action_overdue", owner, Role.core),
                    ("action_escalation", lead_id, Role.lead),
                ):
                    self.notify(
                        conference,
                        event,
                        to,
                        role,
                        later + timedelta(days=14),
                        key_event=f"{event}:{action.id}:{due}",
                        detail=notice,
                    )
        self.effect(f"release/{self.case_id}/{conference.id}", {"notification_ids": sent}, released)
        self.audit("conference.released", released, f"cycle {cycle}")

        last = cycle == self.case.cycle
        review = self.add(
            Review(
                case_id=self.case_id,
                cycle=cycle + 1,
                due_at=next_due,
                idempotency_key=review_key(
                    reference=self.case.reference, cycle=cycle + 1, version=1
                ),
                flow_run_id=None if last else str(uuid.uuid4()),
                status=ReviewStatus.scheduled if last else ReviewStatus.started,
                created_at=released,
            )
        )
        if not last:  # the sweep's notice a week before each review that has taken place
            self.notify(
                conference,
                "review_due",
                lead_id,
                Role.lead,
                next_due - timedelta(days=7),
                key_event=f"review_due:{review.id}",
                detail={"review_id": review.id},
            )


def write_history(
    session: Session, *, reference: str, earlier: int, now: datetime, scale: int = 1
) -> int:
    """A case as its release of cycle `earlier` leaves it: review scheduled; returns its id."""
    from models.config.profile import load_profile
    from models.rules.stakeholders import AgencyView, propose_participants

    directory = _Directory.read(session)
    profile = load_profile(PROFILE)
    views = [AgencyView.of(a) for a in directory.agencies.values()]
    spacing = timedelta(weeks=10)
    first = now - spacing * earlier
    case = Case(
        reference=reference,
        referring_agency_id=directory.id_of("neustart-wien"),
        referral_file_number=f"H/{reference}",
        profile=PROFILE,
        stage=Stage.custody,
        status=CaseStatus.open,
        needs=[Need.mental_health],
        conference_type=ConferenceType.security,
        cycle=earlier,
        phase=Phase.review_scheduled,
        created_at=first - timedelta(days=15),
        updated_at=first,
    )
    session.add(case)
    session.flush()
    history = _History(session, directory, case, now, scale)
    if earlier > 1:
        session.add(
            StageChange(
                case_id=history.case_id,
                kind=StageChangeKind.move,
                from_stage=Stage.pre_trial,
                to_stage=Stage.custody,
                reason="sentenced",
                actor_id=directory.rep_id,
                at=first + timedelta(weeks=4),
            )
        )
        history.audit("case.stage_moved", first + timedelta(weeks=4), "pre_trial -> custody")
    for cycle in range(1, earlier + 1):
        on = first + spacing * (cycle - 1)
        next_due = (
            on + spacing
            if cycle < earlier
            else review_starts_at(on=(now + timedelta(days=14)).date(), time_zone=ZONE)
        )
        kind = ConferenceType.social_network if cycle in SOCIAL_NETWORK else ConferenceType.security
        needs = (
            [Need.mental_health, Need.housing, Need.employment]
            if cycle < 8
            else [Need.mental_health]
        )
        selection = propose_participants(
            profile=profile, agencies=views, stage=Stage.custody, conference_type=kind, needs=needs
        )
        history.cycle(cycle, on, next_due.astimezone(UTC), selection.proposals)
    assert case.id is not None
    return case.id


def history_size(session: Session, case_id: int) -> dict[str, int]:
    """Rows the case owns, per table."""
    conferences = select(Conference.id).where(Conference.case_id == case_id)

    def count(model: Any, where: Any) -> int:
        return int(session.exec(select(func.count()).select_from(model).where(where)).one())

    return {
        "conferences": count(Conference, Conference.case_id == case_id),
        "participants": count(Participant, col(Participant.conference_id).in_(conferences)),
        "information items": count(
            InformationItem, col(InformationItem.conference_id).in_(conferences)
        ),
        "plan items": count(PlanItem, col(PlanItem.conference_id).in_(conferences)),
        "actions": count(ActionItem, ActionItem.case_id == case_id),
        "notifications": count(Notification, Notification.case_id == case_id),
        "ledger rows": count(Effect, Effect.case_id == case_id),
        "reviews": count(Review, Review.case_id == case_id),
        "audit events": count(AuditEvent, AuditEvent.case_id == case_id),
        "consent records": count(ConsentRecord, ConsentRecord.case_id == case_id),
    }


# --- the walk and the clock ------------------------------------------------------------------


@dataclass
class Subject:
    label: str
    walk: Walk
    case_id: int


@dataclass(frozen=True)
class Sample:
    label: str
    step: str
    round: int
    total: float  # resume -> next form's schema saved, seconds
    in_run: float  # the run's Running -> Paused, by Prefect's timestamps


def _refer(round_: int) -> Subject:
    from models.record.database import session_scope
    from tests.prefect_harness import Walk

    walk = Walk.refer("neustart-wien", stage="custody", profile=PROFILE)
    walk.waits_at("referral")
    walk.answer(file_number=f"BENCH-{round_}", needs=["mental_health"], acting_representative=REP)
    walk.waits_at("preparation")
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.current_flow_run_id == str(walk.run_id))).one()
        assert case.id is not None
        return Subject("A", walk, case.id)


def _review(label: str, round_: int, earlier: int, scale: int) -> Subject:
    from prefect.deployments import run_deployment

    from models.record.database import session_scope
    from tests.prefect_harness import Walk

    reference = f"{'HIST' if earlier > 1 else 'CTRL'}-{datetime.now().year}-{round_ + 1:04d}"
    with session_scope() as session:
        case_id = write_history(
            session, reference=reference, earlier=earlier, now=datetime.now(UTC), scale=scale
        )
    run = cast(
        "FlowRun",
        run_deployment(
            "case-review/review",
            parameters={"case_reference": reference, "cycle": earlier + 1},
            timeout=0,
        ),
    )
    with session_scope() as session:
        review = session.exec(
            select(Review).where(Review.case_id == case_id, Review.cycle == earlier + 1)
        ).one()
        review.flow_run_id = str(run.id)
        session.add(review)
    walk = Walk(run.id)
    walk.waits_at("preparation")
    return Subject(label, walk, case_id)


def _answer(step: str, subject: Subject) -> dict[str, Any]:
    if step == "preparation":
        return {
            "conference_type": "security",
            "starts_at": starts_in(10),
            "time_zone": ZONE,
            "location": "jva-wien-room-2",
            "acting_representative": REP,
        }
    if step == "stakeholders":
        return {"acting_representative": REP}
    if step == "action-review":
        from models.record.database import session_scope
        from models.rules.conference import open_actions

        with session_scope() as session:
            count = len(open_actions(session, case_id=subject.case_id))
        updates = [{"action": n, "status": "done"} for n in range(1, count + 1)]
        return {"updates": updates, "acting_representative": REP}
    return {
        "contributions": [
            {
                "agency": "dsn",
                "classification": "restricted",
                "pointer": "DSN case system, entry 7",
            },
            {
                "agency": "jva-wien",
                "classification": "professional",
                "summary": "Attends the education programme.",
            },
        ],
        "acting_representative": REP,
    }


def _in_run(client: SyncPrefectClient, run_id: uuid.UUID) -> float:
    from prefect.client.schemas.objects import StateType

    states = sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)
    paused = [s for s in states if s.type == StateType.PAUSED][-1]
    running = [s for s in states if s.type == StateType.RUNNING and s.timestamp <= paused.timestamp]
    return (paused.timestamp - running[-1].timestamp).total_seconds()


def time_resume(
    client: SyncPrefectClient, serving: Serving, walk: Walk, step: str, answer: Any, form: str
) -> tuple[float, float]:
    """Resume the run waiting at `step` with `answer`; returns the seconds until the `form`
    form is saved, and the run's own Running -> Paused seconds (Prefect's timestamps)."""
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.flow_runs import resume_flow_run

    from tasks.prefect_compat import form_input_key

    walk.waits_at(step)
    walk.schema()  # as the UI shows it before anyone answers
    serving.idle(walk.run_id)  # the suspended run's process has left: nothing else runs
    before = walk.pause_key()
    start = time.perf_counter()
    resume_flow_run(walk.run_id, run_input=answer)
    deadline = start + STEP_TIMEOUT
    while True:
        state = client.read_flow_run(walk.run_id).state
        key = (state.state_details.pause_key or "") if state else ""
        if state is not None and state.type == StateType.PAUSED and key != before:
            if not key.endswith(f"-{form}-0"):
                raise RuntimeError(f"{walk.run_id}: {step} answered, the run waits at {key}")
            break
        if state is not None and state.is_final():
            raise RuntimeError(f"{walk.run_id}: {step} answered, the run ended: {state.message}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{walk.run_id}: no {form} form {STEP_TIMEOUT:.0f} s after {step}")
        time.sleep(POLL)
    while True:
        try:
            client.read_flow_run_input(walk.run_id, form_input_key(key, "schema"))
            break
        except (ObjectNotFound, PrefectHTTPStatusError):
            if time.perf_counter() > deadline:
                raise
            time.sleep(POLL)
    total = time.perf_counter() - start
    return total, _in_run(client, walk.run_id)


def timed_step(
    client: SyncPrefectClient, serving: Serving, subject: Subject, step: str, round_: int
) -> Sample:
    """Resume the waiting run with the step's answer; the clock stops when the next form is saved."""
    total, in_run = time_resume(
        client, serving, subject.walk, step, _answer(step, subject), NEXT_FORM[step][subject.label]
    )
    return Sample(subject.label, step, round_, total, in_run)


def measure(
    serving: Serving, rounds: int, scale: int
) -> tuple[list[Sample], dict[str, int], dict[str, Subject]]:
    """Every round: fresh cases A, B and C, walked step by step, their order rotating."""
    from prefect.client.orchestration import get_client

    from models.record.database import session_scope

    samples: list[Sample] = []
    size: dict[str, int] = {}
    subjects: dict[str, Subject] = {}
    with get_client(sync_client=True) as client:
        for round_ in range(rounds):
            subjects = {
                "A": _refer(round_),
                "B": _review("B", round_, EARLIER_CYCLES, scale),
                "C": _review("C", round_, 1, scale),
            }
            if not size:
                with session_scope() as session:
                    size = history_size(session, subjects["B"].case_id)
            for index, step in enumerate(NEXT_FORM):
                labels = [label for label in subjects if label in NEXT_FORM[step]]
                turn = (round_ + index) % len(labels)
                for label in labels[turn:] + labels[:turn]:
                    samples.append(timed_step(client, serving, subjects[label], step, round_))
            totals = {label: _per_round(samples, label)[-1] for label in subjects}
            print(
                f"  round {round_ + 1}/{rounds}: "
                + ", ".join(f"{label} {t:5.2f} s" for label, t in totals.items()),
                flush=True,
            )
    return samples, size, subjects


def reads(subjects: dict[str, Subject], repeat: int = 200) -> list[tuple[str, dict[str, float]]]:
    """The database reads a step makes (plain functions in tasks/, here in-process), per case:
    median microseconds of `repeat` calls, the cases taking turns."""
    from models.record.database import session_scope
    from models.rules import actions, consent
    from models.steps import preparation
    from models.steps.step import Asked
    from tasks.notifications import pending_messages
    from tasks.referral import case_view, find_case
    from tasks.steps import step_answered, step_refusals

    def conference_defaults(case_id: int) -> object:
        with session_scope() as session:
            return preparation.defaults(session, Asked(case_id=case_id), datetime.now(UTC))

    def describe_open_actions(case_id: int) -> object:
        with session_scope() as session:
            return actions.describe_open_actions(session, case_id=case_id)

    def consent_in_force(case_id: int) -> object:
        with session_scope() as session:
            scope = ConsentScope.social_network_conference
            return consent.consent_in_force(
                session, case_id=case_id, scope=scope, today=datetime.now(UTC).date()
            )

    def failures(case_id: int) -> object:
        from models.messaging.sending import failures

        with session_scope() as session:
            return failures(session, case_id=case_id)

    cases = {label: case_view(s.case_id) for label, s in subjects.items()}
    calls: dict[str, Callable[[str], object]] = {
        "find_case": lambda label: find_case(cases[label].reference),
        "case_view": lambda label: case_view(cases[label].id),
        "conference_defaults": lambda label: conference_defaults(cases[label].id),
        "step_answered (ledger)": lambda label: step_answered(
            f"{cases[label].reference.lower()}-c{cases[label].cycle}-preparation"
        ),
        "step_refusals": lambda label: step_refusals(
            f"{cases[label].reference.lower()}-c{cases[label].cycle}-decision"
        ),
        "consent_in_force": lambda label: consent_in_force(cases[label].id),
        "pending_messages (outbox)": lambda label: pending_messages(cases[label].id),
        "failures (outbox)": lambda label: failures(cases[label].id),
        "describe_open_actions": lambda label: describe_open_actions(cases[label].id),
    }
    table = []
    for name, call in calls.items():
        times: dict[str, list[float]] = defaultdict(list)
        for i in range(repeat):
            for label in list(cases)[i % len(cases) :] + list(cases)[: i % len(cases)]:
                start = time.perf_counter()
                call(label)
                times[label].append(time.perf_counter() - start)
        table.append((name, {label: statistics.median(t) for label, t in times.items()}))
    return table


# --- the report --------------------------------------------------------------------------------


def _per_round(
    samples: list[Sample], label: str, step: str | None = None, part: str = "total"
) -> list[float]:
    """Per round, one step's time (or the compared steps' sum, `step` None), in round order."""
    per_round: dict[int, float] = defaultdict(float)
    for s in samples:
        if s.label == label and (s.step == step if step else s.step in COMPARED):
            per_round[s.round] += getattr(s, part)
    return [per_round[r] for r in sorted(per_round)]


def _median(samples: list[Sample], label: str, step: str | None, part: str = "total") -> float:
    return statistics.median(_per_round(samples, label, step, part))


def report(
    samples: list[Sample],
    size: dict[str, int],
    rounds: int,
    reads_table: list[tuple[str, dict[str, float]]],
) -> str:
    ms = 1000.0
    lines = [
        f"history: resume -> next form saved (ms, median of {rounds} round(s)); "
        + "; ".join(f"{label} = {what}" for label, what in CASES.items()),
        "  B's history: " + ", ".join(f"{n} {table}" for table, n in size.items()),
        f"  {'':<20}{'resume -> next form saved':^38}{'in the run: Running -> Paused':^38}",
        f"  {'step':<20}" + f"{'A':>8}{'B':>8}{'C':>8}{'B/A':>7}{'B/C':>7}" * 2,
    ]
    for step in (*COMPARED, "action-review", None):
        name = step or "sum of the three"
        row = f"  {name:<20}"
        for part in ("total", "in_run"):
            a, b, c = (
                _median(samples, label, step, part)
                if label in NEXT_FORM[step or "preparation"]
                else None
                for label in CASES
            )
            cells = [f"{v * ms:8.0f}" if v is not None else f"{'':>8}" for v in (a, b, c)]
            cells.append(f"{b / a:7.2f}" if a and b else f"{'':>7}")
            cells.append(f"{b / c:7.2f}" if b and c else f"{'':>7}")
            row += "".join(cells)
        lines.append(row)
    spread = {label: _per_round(samples, label) for label in CASES}
    ratios = [b / a for a, b in zip(spread["A"], spread["B"], strict=True)]
    lines.append(
        "  spread of the sum over rounds (ms): "
        + ", ".join(f"{label} {min(v) * ms:.0f}-{max(v) * ms:.0f}" for label, v in spread.items())
        + f"; B/A per round {min(ratios):.2f}-{max(ratios):.2f}"
    )
    lines.append(
        f"  {'reads a step makes, in-process (us, median of 200)':<48}{'A':>7}{'B':>7}{'C':>7}{'B/A':>6}"
    )
    for name, by_case in reads_table:
        a, b, c = (by_case[label] * 1e6 for label in CASES)
        lines.append(f"    {name:<46}{a:7.0f}{b:7.0f}{c:7.0f}{b / a:6.2f}")
    lines.append(
        f"  ratio B/A (cycle {EARLIER_CYCLES + 1} / cycle 1), resume -> next form saved: "
        f"{_median(samples, 'B', None) / _median(samples, 'A', None):.2f}"
        "  (1 = a long history costs nothing extra)"
    )
    return "\n".join(lines)


# --- one execution -------------------------------------------------------------------------------


def _configure(folder: Path, mail_port: int, chat_port: int) -> str:
    """Point caseconf (this process and the serving one) at throw-away parts; returns the DB URL."""
    url = f"sqlite:///{folder / 'caseconf.db'}"
    demo = (ROOT / "config" / "apprise.demo.yaml").read_text(encoding="utf-8")
    apprise = folder / "apprise.yaml"
    apprise.write_text(
        demo.replace("127.0.0.1:2525", f"127.0.0.1:{mail_port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{chat_port}"
        ),
        encoding="utf-8",
    )
    os.environ.update(
        {
            "CASECONF_DATABASE_URL": url,
            "CASECONF_APPRISE_CONFIG": str(apprise),
            "CASECONF_PROFILE": PROFILE,
            "CASECONF_DELIVERY_RETRIES": "1",
            "CASECONF_DELIVERY_RETRY_DELAY": "0.2",
            # Prefect reads its home when first imported: never the developer's var/prefect.
            "PREFECT_HOME": str(folder / "prefect"),
        }
    )
    from models.config.settings import get_settings
    from models.record.database import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()
    return url


def main(argv: list[str] | None = None) -> None:
    """Set everything up, measure, print the table; everything is removed afterwards."""
    parser = argparse.ArgumentParser(prog="python -m bench history")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument(
        "--scale", type=int, default=1, help="multiply each past cycle's items and actions"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.scale < 1:
        parser.error("--rounds and --scale must be at least 1")

    from deployments.mailcatcher import ChatCatcher, MailCatcher, free_port

    folder = Path(tempfile.mkdtemp(prefix="caseconf-bench-history-"))
    mail = MailCatcher("127.0.0.1", free_port(), folder / "mail")
    chat = ChatCatcher("127.0.0.1", free_port())
    url = _configure(folder, mail.port, chat.port)

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from models.config.directory import load_directory
    from models.record.agencies import sync_directory
    from models.record.database import migrate, session_scope
    from tests.prefect_harness import PrefectServer, Serving

    migrate(url)
    with session_scope() as session:
        sync_directory(session, load_directory())
    server = PrefectServer(folder / "prefect-server")
    serving = Serving(server, folder / "serve.log")
    ok = False
    try:
        mail.start()
        chat.start()
        server.start()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            serving.start()
            print(
                f"history: Prefect and caseconf serving started; {args.rounds} round(s)", flush=True
            )
            samples, size, last = measure(serving, args.rounds, args.scale)
            reads_table = reads(last)
        with session_scope() as session:
            failed = session.exec(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == NotificationStatus.failed)
            ).one()
        print(report(samples, size, args.rounds, reads_table))
        if failed:
            print(f"  note: {failed} message(s) failed during the walk (retries are in the times)")
        ok = True
    finally:
        serving.stop()
        server.stop()
        chat.stop()
        mail.stop()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"history: logs and databases kept in {folder}")


if __name__ == "__main__":
    main()
