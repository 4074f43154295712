"""The managers' portfolio report: every figure checked against the database it came from.

Cases are written straight into the database (the report reads the record, not Prefect), at
different steps; `now` is fixed once per test. The figures are recomputed here in plain Python
over all rows, so other tests' rows in the same database cannot make these fail or pass.
"""

import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import pytest
from sqlalchemy import func, or_
from sqlmodel import Session, SQLModel, col, create_engine, select

from models.config.directory import load_directory
from models.config.profile import load_profile
from models.record.agencies import sync_directory
from models.record.database import RecordSession
from models.record.summaries import add_months, quarter_of, stage_tallies
from models.record.tables import (
    ActionItem,
    Agency,
    AgencyParticipation,
    AgencyParticipationMonth,
    AuditEvent,
    Case,
    Channel,
    Conference,
    ConsentRecord,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Representative,
    Review,
    StageChange,
    StageTally,
)
from models.reporting.portfolio import (
    CONTINUITY_WINDOW,
    WAITING_PHASES,
    continuity,
    stage_at,
    stages_over_quarters,
)
from models.reporting.portfolio_report import ARTIFACTS, build_report
from models.rules.cases import close_case, refer_case
from models.rules.conference import open_conference
from models.rules.fallback import reselect_as_security
from models.rules.participants import record_participants
from models.rules.stages import move_stage, transfer_case
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ClosureReason,
    ConferenceKind,
    ConferenceType,
    Phase,
    Role,
    Stage,
    StageMoveReason,
    TransferReason,
)

pytestmark = pytest.mark.database

NOW = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)
KNOWN = {"generic", "austria-neustart", "catalonia"}
LATE = {"preparation": 7, "decision": 7, "review_cancelled": 7}
CANARY = "CANARY-7c1e Typed By A Coordinator"
PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles"


def table(markdown: str, heading: str | None = None) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after `heading` (or the first)."""
    text = markdown if heading is None else markdown.split(heading, 1)[1]
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def counts(markdown: str, heading: str) -> dict[str, int]:
    return {r[0].strip("`"): int(r[1]) for r in table(markdown, heading)}


class World:
    """Writes cases straight into the database, at the steps a test needs."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.agency = {a.code: a for a in session.exec(select(Agency))}
        self.rep = {r.code: r for r in session.exec(select(Representative))}
        self.n = 0
        self.tag = uuid.uuid4().hex[:8]

    def case(
        self, *, agency: str = "neustart-wien", days_ago: float = 30, **fields: object
    ) -> Case:
        self.n += 1
        created = NOW - timedelta(days=days_ago)
        values: dict[str, object] = {
            "reference": f"PFT-2026-{self.n:04d}-{id(self) % 10_000:04d}",
            "referring_agency_id": self.agency[agency].id,
            # Unique across worlds: cases other tests leave open in the same database count.
            "referral_file_number": f"{CANARY} file {self.n} {self.tag}",
            "profile": "generic",
            "stage": "custody",
            "phase": "preparation",
            "created_at": created,
            "updated_at": created,
        }
        values.update(fields)
        case = Case(**values)  # type: ignore[arg-type]
        self.s.add(case)
        self.s.flush()
        self.s.add(
            AuditEvent(case_id=case.id, action="case.referred", at=created, justification=CANARY)
        )
        return case

    def conference(
        self,
        case: Case,
        *,
        cycle: int = 1,
        type_: str = "security",
        starts: datetime,
        released: datetime | None = None,
        people: dict[str, tuple[str, str | None]] | None = None,
    ) -> Conference:
        conference = Conference(
            case_id=case.id,
            cycle=cycle,
            kind="first" if cycle == 1 else "review",
            conference_type=type_,
            starts_at=starts,
            location=f"{CANARY} room",
            ical_uid=f"{case.reference}-{cycle}@test",
            phase="release" if released else "information",
            created_at=starts - timedelta(days=7),
            released_at=released,
        )
        self.s.add(conference)
        self.s.flush()
        for code, (role, rep) in (people or {}).items():
            self.s.add(
                Participant(
                    conference_id=conference.id,
                    agency_id=self.agency[code].id,
                    representative_id=self.rep[rep].id if rep else None,
                    role=role,
                    rule="test",
                    override_reason=CANARY,
                )
            )
        self.s.add(
            InformationItem(
                conference_id=conference.id,
                agency_id=self.agency["jva-wien"].id,
                classification="professional",
                summary=CANARY,
            )
        )
        self.s.add(
            PlanItem(
                conference_id=conference.id,
                number=1,
                drafted_by="lead",
                text=CANARY,
                outcome="amended" if released else None,
                amendment=CANARY,
                reason=CANARY,
            )
        )
        self.s.flush()
        return conference

    def action(
        self, case: Case, conference: Conference, *, owner: str, due: date, status: str = "open"
    ) -> None:
        self.s.add(
            ActionItem(
                case_id=case.id,
                conference_id=conference.id,
                owner_agency_id=self.agency[owner].id,
                description=CANARY,
                due_on=due,
                status=status,
            )
        )

    def message(self, case: Case, *, to: str, status: str, attempts: int) -> None:
        channel = self.s.exec(
            select(Channel).where(Channel.agency_id == self.agency[to].id)
        ).first()
        assert channel is not None
        self.s.add(
            Notification(
                key=f"{case.reference}/{to}/{status}/{attempts}",
                case_id=case.id,
                event="invitation",
                recipient_agency_id=self.agency[to].id,
                recipient_role="core",
                channel=channel.tag,
                status=status,
                attempts=attempts,
                last_error=CANARY,
                created_at=NOW - timedelta(days=2),
            )
        )


def scenario(session: Session) -> dict[str, Case]:
    """Cases at different steps, each with what its figures need."""
    w = World(session)
    made: dict[str, Case] = {}
    # Waiting at preparation for 10 days (late after 7), no conference yet.
    made["late"] = w.case(phase="preparation", updated_at=NOW - timedelta(days=10))
    # Waiting at the decision for 2 days; a conference with a lead and a coordinator.
    fresh = w.case(
        stage="pre_release",
        profile="austria-neustart",
        phase="decision",
        conference_type="security",
        updated_at=NOW - timedelta(days=2),
    )
    w.conference(
        fresh,
        starts=NOW + timedelta(days=1),
        people={
            "jva-wien": ("lead", "jva-wien-1"),
            "neustart-wien": ("coordinator", "neustart-wien-1"),
            "dsn": ("core", None),
        },
    )
    made["fresh"] = fresh
    # A profile removed since, referred by a national agency (no area); first conference held
    # this quarter; a review in 10 days; actions open, overdue and done; consent withdrawn.
    removed = w.case(
        agency="dsn",
        stage="post_release",
        profile="retired-profile",
        phase="review_scheduled",
        conference_type="social_network",
        days_ago=60,
    )
    first = w.conference(
        removed,
        type_="social_network",
        starts=NOW - timedelta(days=45),
        released=NOW - timedelta(days=44),
        people={"neustart-wien": ("lead", "neustart-wien-1"), "jva-wien": ("core", "jva-wien-2")},
    )
    w.action(removed, first, owner="jva-wien", due=NOW.date() - timedelta(days=1))
    w.action(removed, first, owner="jva-wien", due=NOW.date() + timedelta(days=20))
    w.action(removed, first, owner="ams-wien", due=NOW.date() - timedelta(days=5), status="done")
    session.add(
        Review(
            case_id=removed.id,
            cycle=2,
            due_at=NOW + timedelta(days=10),
            idempotency_key=f"{removed.reference}/review/c2/v1",
        )
    )
    rep = w.rep["neustart-wien-1"].id
    session.add(
        ConsentRecord(
            case_id=removed.id,
            scope="social_network_conference",
            decision="granted",
            recorded_by_id=rep,
            recorded_at=NOW - timedelta(days=55),
        )
    )
    session.add(
        ConsentRecord(
            case_id=removed.id,
            scope="social_network_conference",
            decision="withdrawn",
            recorded_by_id=rep,
            recorded_at=NOW - timedelta(days=3),
        )
    )
    w.message(removed, to="dsn", status="failed", attempts=2)
    w.message(removed, to="jva-wien", status="sent", attempts=3)
    made["removed"] = removed
    # A review overdue (scheduled, its date passed); transferred to area Wien, lead neustart.
    overdue = w.case(
        stage="custody",
        phase="review_scheduled",
        conference_type="security",
        days_ago=200,
        area="Wien",
        lead_agency_id=w.agency["neustart-wien"].id,
    )
    held = w.conference(
        overdue,
        starts=NOW - timedelta(days=150),
        released=NOW - timedelta(days=150),
        people={
            "jva-wien": ("lead", "jva-wien-1"),
            "neustart-wien": ("coordinator", "neustart-wien-2"),
        },
    )
    w.conference(
        overdue,
        cycle=2,
        starts=NOW - timedelta(days=20),
        released=NOW - timedelta(days=20),
        people={
            "jva-wien": ("lead", "jva-wien-1"),
            "neustart-wien": ("coordinator", "neustart-wien-1"),
        },
    )
    session.add(
        Review(
            case_id=overdue.id,
            cycle=2,
            due_at=NOW - timedelta(days=21),
            status="started",
            idempotency_key=f"{overdue.reference}/review/c2/v1",
        )
    )
    session.add(
        Review(
            case_id=overdue.id,
            cycle=3,
            due_at=NOW - timedelta(days=3),
            idempotency_key=f"{overdue.reference}/review/c3/v1",
        )
    )
    session.add(
        StageChange(
            case_id=overdue.id,
            kind="transfer",
            from_stage="custody",
            to_stage="custody",
            reason="client_moved",
            area="Wien",
            lead_agency_id=w.agency["neustart-wien"].id,
            at=NOW - timedelta(days=100),
        )
    )
    session.add(
        StageChange(
            case_id=overdue.id,
            kind="move",
            from_stage="pre_trial",
            to_stage="custody",
            reason="sentenced",
            at=NOW - timedelta(days=180),
        )
    )
    w.action(overdue, held, owner="neustart-wien", due=NOW.date() - timedelta(days=30))
    made["overdue"] = overdue
    # A closed case, and the same agency file number referred again this quarter: a repeat.
    closed = w.case(
        stage="closed",
        status="closed",
        phase="closed",
        days_ago=420,
        referral_file_number="W-REPEAT",
        closure_reason="plan_completed",
        closed_at=NOW - timedelta(days=100),
    )
    # A conference before the continuity window: its participations are not counted.
    w.conference(
        closed,
        starts=NOW - timedelta(days=400),
        released=NOW - timedelta(days=400),
        people={"jva-wien": ("core", "jva-wien-2"), "dsn": ("core", None)},
    )
    made["closed"] = closed
    made["repeat"] = w.case(
        referral_file_number="W-REPEAT",
        days_ago=5,
        phase="review_cancelled",
        updated_at=NOW - timedelta(days=4),
    )
    session.flush()
    return made


def report(session: Session) -> dict[str, str]:
    return build_report(session, now=NOW, known_profiles=KNOWN, late_after_days=LATE)


def test_each_artifact_matches_the_database(session: Session) -> None:
    made = scenario(session)
    out = report(session)
    assert set(out) == set(ARTIFACTS)
    cases = list(session.exec(select(Case)))
    open_cases = [c for c in cases if c.status == "open"]

    # caseconf-portfolio: open cases by stage, type, profile, area and lead.
    portfolio = out["caseconf-portfolio"]
    assert f"# Open cases: {len(open_cases)}" in portfolio
    assert counts(portfolio, "### By stage") == Counter(str(c.stage) for c in open_cases)
    assert counts(portfolio, "### By profile") == Counter(c.profile for c in open_cases)
    assert counts(portfolio, "### By conference type") == Counter(
        str(c.conference_type) if c.conference_type else "(not chosen yet)" for c in open_cases
    )
    areas = counts(portfolio, "### By area")
    leads = counts(portfolio, "### By lead agency")
    assert sum(areas.values()) == sum(leads.values()) == len(open_cases)
    assert areas.get("(none)", 0) >= 1  # the case referred by the national agency
    codes = {a.id: a for a in session.exec(select(Agency))}
    assert areas.get("Wien", 0) == sum(
        1 for c in open_cases if (c.area or codes[c.referring_agency_id].area) == "Wien"
    )
    assert leads.get("neustart-wien", 0) >= 2  # transferred lead, and lead of a conference
    assert "`retired-profile`, which no longer exists" in portfolio
    assert "have no conference yet" in portfolio
    assert "data:image/svg+xml;base64," in portfolio
    now_row = next(r for r in table(portfolio, "### Open cases by stage, end of") if r[0] == "now")
    assert [int(x) for x in now_row[1:5]] == [
        sum(1 for c in open_cases if c.stage == s)
        for s in ("pre_trial", "custody", "pre_release", "post_release")
    ]

    # caseconf-waiting: every case waiting for a person, oldest first, late per step.
    waiting = out["caseconf-waiting"]
    waits = [c for c in open_cases if c.phase in {str(p) for p in WAITING_PHASES}]
    assert f"# Waiting for a person: {len(waits)} case(s)" in waiting
    by_step = {r[0]: (int(r[1]), int(r[2])) for r in table(waiting)}
    for step in {str(c.phase) for c in waits}:
        late = sum(
            1
            for c in waits
            if c.phase == step
            and step in LATE
            and c.phase_since is not None
            and c.phase_since < NOW - timedelta(days=LATE[step])
        )
        assert by_step[step] == (sum(1 for c in waits if c.phase == step), late)
    listed = table(waiting, "### Oldest first")
    order = [r[0] for r in listed]
    expected = sorted(waits, key=lambda c: (c.phase_since, c.reference))[: len(order)]
    assert order == [c.reference for c in expected]
    row = {r[0]: r for r in listed}
    assert row[made["late"].reference][5] == "**late**"
    assert row[made["fresh"].reference][4] == "`neustart-wien`"  # the coordinator acts
    assert row[made["late"].reference][4] == "`neustart-wien`"  # no conference: the referrer
    assert row[made["repeat"].reference][1] == "review_cancelled"

    # caseconf-reviews: next 30 days, overdue.
    reviews_md = out["caseconf-reviews"]
    by_ref = {c.id: c for c in cases}
    rows = list(session.exec(select(Review)))
    upcoming = [
        r
        for r in rows
        if r.status == "scheduled"
        and by_ref[r.case_id].status == "open"
        and NOW <= r.due_at < NOW + timedelta(days=30)
    ]
    overdue = [
        r
        for r in rows
        if by_ref[r.case_id].status == "open"
        and r.due_at < NOW
        and (
            r.status == "scheduled"
            or (
                r.status == "started"
                and r.cycle == by_ref[r.case_id].cycle
                and by_ref[r.case_id].phase not in ("release", "review_scheduled")
            )
        )
    ]
    assert f"# Reviews: {len(upcoming)} in the next 30 days, {len(overdue)} overdue" in reviews_md
    assert [made["overdue"].reference, "2", (NOW - timedelta(days=3)).date().isoformat()] in table(
        reviews_md, "### Overdue"
    )
    assert [made["removed"].reference, "1", (NOW + timedelta(days=10)).date().isoformat()] in table(
        reviews_md, "### In the next 30 days"
    )
    cancelled = sum(1 for c in open_cases if c.phase == "review_cancelled")
    assert f"**{cancelled} open case(s) have no review planned**" in reviews_md

    # caseconf-actions: open and overdue by owner agency (open cases only).
    actions_md = out["caseconf-actions"]
    open_ids = {c.id for c in open_cases}
    acts = [
        a for a in session.exec(select(ActionItem)) if a.status == "open" and a.case_id in open_ids
    ]
    expected_actions = {
        codes[agency].code: (
            sum(1 for a in acts if a.owner_agency_id == agency),
            sum(1 for a in acts if a.owner_agency_id == agency and a.due_on < NOW.date()),
        )
        for agency in {a.owner_agency_id for a in acts}
    }
    assert {r[0].strip("`"): (int(r[1]), int(r[2])) for r in table(actions_md)} == expected_actions
    assert expected_actions["jva-wien"][1] >= 1 and "`ams-wien`" not in actions_md  # done

    # caseconf-delivery: failed, and retried within 30 days, by agency and channel kind.
    delivery_md = out["caseconf-delivery"]
    kinds = {ch.tag: str(ch.kind) for ch in session.exec(select(Channel))}
    expected_delivery: Counter[tuple[str, str, str]] = Counter()
    for n in session.exec(select(Notification)):
        where = (codes[n.recipient_agency_id].code, kinds.get(n.channel, "hand-over"))
        if n.status == "failed":
            expected_delivery[(*where, "failed")] += 1
        elif n.status == "sent" and n.attempts > 1 and n.created_at >= NOW - timedelta(days=30):
            expected_delivery[(*where, "retried")] += 1
    got: Counter[tuple[str, str, str]] = Counter()
    for r in table(delivery_md):
        got[(r[0].strip("`"), r[1], "failed")] += int(r[2])
        got[(r[0].strip("`"), r[1], "retried")] += int(r[3])
    assert +got == expected_delivery
    assert got[("dsn", "email", "failed")] >= 1 and got[("jva-wien", "email", "retried")] >= 1

    # caseconf-continuity: per agency, summed over cases, conferences of the last 12 months.
    continuity_md = out["caseconf-continuity"]
    conferences = {c.id: c for c in session.exec(select(Conference))}
    professional = {"lead", "coordinator", "core", "case_dependent", "observer"}
    recent = {i for i, c in conferences.items() if c.created_at >= NOW - CONTINUITY_WINDOW}
    parts = [
        p
        for p in session.exec(select(Participant))
        if p.role in professional and p.conference_id in recent and p.agency_id is not None
    ]
    expected_cont = {}
    for agency in {p.agency_id for p in parts}:
        mine = [p for p in parts if p.agency_id == agency]
        named = [p for p in mine if p.representative_id is not None]
        per_case: dict[int, Counter[int]] = {}
        for p in named:
            per_case.setdefault(conferences[p.conference_id].case_id, Counter())[
                p.representative_id
            ] += 1
        same = sum(max(c.values()) for c in per_case.values())
        share = "n/a" if not named else f"{same / len(named):.0%}"
        expected_cont[codes[agency].code] = [str(len(mine)), str(len(named)), share]
    assert {r[0].strip("`"): r[1:] for r in table(continuity_md)} == expected_cont
    # The conference before the window counts nowhere (it adds to both agencies' participations).
    old = {c for c in conferences if c not in recent}
    assert old and all(
        int(expected_cont[code][0])
        < sum(
            1
            for p in session.exec(select(Participant))
            if p.role in professional and codes[p.agency_id].code == code
        )
        for code in ("jva-wien", "dsn")
    )
    # The transferred case's coordinator changed person between its two conferences: 50%.

    # caseconf-quarter: this quarter and the one before.
    quarter_md = out["caseconf-quarter"]
    start, end = quarter_of(NOW.date())
    lo, hi = (datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (start, end))
    rows_q = {r[0]: r[1:] for r in table(quarter_md)}
    this = -1  # the last column is the current quarter
    referred = [c for c in cases if lo <= c.created_at < hi]
    assert int(rows_q["Referrals"][this]) == len(referred)
    repeats = sum(
        1
        for c in referred
        if any(
            o.id != c.id
            and o.status == "closed"
            and o.referring_agency_id == c.referring_agency_id
            and o.referral_file_number == c.referral_file_number
            and o.closed_at is not None
            and o.closed_at <= c.created_at <= o.closed_at + timedelta(days=365)
            for o in cases
        )
    )
    assert int(rows_q["Repeat referrals (within 12 months of a closed case)"][this]) == repeats >= 1
    held = [c for c in conferences.values() if c.released_at and lo <= c.released_at < hi]
    assert int(rows_q["Conferences held"][this]) == len(held)
    for t, n in Counter(str(c.conference_type) for c in held).items():
        assert int(rows_q[f"&nbsp;&nbsp;{t}"][this]) == n
    consents = [r for r in session.exec(select(ConsentRecord)) if lo <= r.recorded_at < hi]
    assert (
        int(rows_q["Consent withdrawn"][this])
        == sum(r.decision == "withdrawn" for r in consents)
        >= 1
    )
    assert int(rows_q["Consent refused"][this]) == sum(r.decision == "refused" for r in consents)
    firsts = [
        (c.starts_at - by_ref[c.case_id].created_at).total_seconds() / 86400
        for c in held
        if c.cycle == 1 and c.starts_at
    ]
    cell = rows_q["Median days, referral to first conference"][this]
    assert cell == (f"{round(median(firsts), 1):g} (of {len(firsts)})" if firsts else "n/a")
    reviews_held = [
        (c, r)
        for c in held
        if c.kind == "review"
        for r in rows
        if r.case_id == c.case_id and r.cycle == c.cycle and r.status == "started"
    ]
    assert int(rows_q["Reviews held"][this]) == len(reviews_held) >= 1
    assert int(rows_q["&nbsp;&nbsp;on time"][this]) == sum(
        1 for c, r in reviews_held if c.starts_at.date() <= r.due_at.date()
    )
    closed = [c for c in cases if c.closed_at and lo <= c.closed_at < hi]
    assert int(rows_q["Closures"][this]) == len(closed)
    previous = quarter_of(add_months(start, -3))
    plo, phi = (datetime(d.year, d.month, d.day, tzinfo=UTC) for d in previous)
    assert (
        int(rows_q["Closures"][0])
        == sum(1 for c in cases if c.closed_at and plo <= c.closed_at < phi)
        >= 1
    )


def test_no_typed_text_reaches_an_artifact(session: Session) -> None:
    """Canary: every free-text field of the scenario carries it; no artifact does."""
    from models.reporting.timeline import timeline, timeline_markdown

    made = scenario(session)
    published = list(report(session).values())
    for case in made.values():
        published.append(timeline_markdown(case, timeline(session, case=case), now=NOW))
    for text in published:
        assert "CANARY" not in text.upper()
        assert "room" not in text  # the location


def test_empty_database_still_publishes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    SQLModel.metadata.create_all(engine)
    with RecordSession(engine) as session:
        sync_directory(session, load_directory())
        session.commit()
        out = report(session)
    assert set(out) == set(ARTIFACTS)
    assert (
        "# Open cases: 0" in out["caseconf-portfolio"]
        and "No open cases." in out["caseconf-portfolio"]
    )
    assert "No case waits for a person." in out["caseconf-waiting"]
    assert "# Reviews: 0 in the next 30 days, 0 overdue" in out["caseconf-reviews"]
    assert "No open actions." in out["caseconf-actions"]
    assert "No failed or retried messages." in out["caseconf-delivery"]
    assert "No conference participants recorded yet." in out["caseconf-continuity"]
    rows_q = {r[0]: r[1:] for r in table(out["caseconf-quarter"])}
    assert rows_q["Referrals"] == ["0", "0"]
    assert rows_q["Median days, referral to first conference"] == ["n/a", "n/a"]


def test_quarters_are_calendar_quarters() -> None:
    assert quarter_of(date(2026, 5, 20)) == (date(2026, 4, 1), date(2026, 7, 1))
    assert quarter_of(date(2026, 12, 31)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert add_months(date(2026, 1, 1), -3) == date(2025, 10, 1)
    assert re.fullmatch(r"\d{4}-Q[1-4]", "2026-Q2")


def test_waiting_since_is_when_the_case_reached_its_step(session: Session) -> None:
    """A transfer or a stage move touches the record but not how long the case has waited; a
    new step starts the wait again, from the step's own "now"."""
    w = World(session)
    entered = NOW - timedelta(days=9)
    case = w.case(phase="preparation", updated_at=entered)
    session.flush()
    assert case.phase_since == entered
    case.area, case.updated_at = "Wien", NOW - timedelta(days=1)  # a transfer
    session.add(case)
    session.flush()
    session.refresh(case)
    assert case.phase_since == entered
    row = {r[0]: r for r in table(report(session)["caseconf-waiting"], "### Oldest first")}
    if case.reference in row:  # listed among the oldest: since the step, and late
        assert row[case.reference][2] == entered.strftime("%Y-%m-%d %H:%M")
        assert row[case.reference][5] == "**late**"
    case.phase, case.updated_at = Phase.stakeholders, NOW - timedelta(hours=2)
    session.add(case)
    session.flush()
    session.refresh(case)
    assert case.phase_since == NOW - timedelta(hours=2)


def test_continuity_counts_who_came_most_often_in_each_case(session: Session) -> None:
    """Where several people represented an agency in one case, the one who came most often
    counts (2 of 3); where one did, all its named participations count, unnamed ones do not.
    Other tests' cases share the database, so the test looks at what its case adds."""
    before = {r.agency: r for r in continuity(session, now=NOW)}
    w = World(session)
    shifting = w.case(phase="decision")
    for cycle, (rep, jva) in enumerate(
        [
            ("neustart-wien-1", "jva-wien-1"),
            ("neustart-wien-2", "jva-wien-1"),
            ("neustart-wien-1", None),
        ],
        start=1,
    ):
        w.conference(
            shifting,
            cycle=cycle,
            starts=NOW - timedelta(days=100 - 30 * cycle),
            people={"neustart-wien": ("lead", rep), "jva-wien": ("core", jva)},
        )
    session.flush()
    after = {r.agency: r for r in continuity(session, now=NOW)}

    def added(code: str) -> tuple[int, int, int]:
        was, now = before.get(code), after[code]
        return (
            now.conferences - (was.conferences if was else 0),
            now.named - (was.named if was else 0),
            now.same_person - (was.same_person if was else 0),
        )

    assert added("neustart-wien") == (3, 3, 2)
    assert added("jva-wien") == (3, 2, 2)


def test_continuity_at_the_edges_of_the_year(session: Session) -> None:
    """Only the conferences prepared within the window count: of a case with conferences on
    both sides of its start, those after it; a case first seen in the window's first month
    counts from its start on, not before."""
    before = {r.agency: r for r in continuity(session, now=NOW)}
    since = NOW - CONTINUITY_WINDOW
    w = World(session)
    both_sides = w.case(phase="decision", days_ago=400)
    for cycle, (days, rep) in enumerate(
        [(375, "neustart-wien-1"), (200, "neustart-wien-2"), (100, "neustart-wien-2")], start=1
    ):
        w.conference(
            both_sides,
            cycle=cycle,
            starts=NOW - timedelta(days=days) + timedelta(days=7),  # prepared `days` ago
            people={"neustart-wien": ("core", rep)},
        )
    in_first_month = w.case(phase="decision", days_ago=370)
    w.conference(
        in_first_month,
        starts=since + timedelta(days=2, hours=1) + timedelta(days=7),
        people={"jva-wien": ("core", "jva-wien-1")},
    )
    just_before = w.case(phase="decision", days_ago=370)
    w.conference(
        just_before,
        starts=since - timedelta(hours=1) + timedelta(days=7),
        people={"dsn": ("core", "dsn-1")},
    )
    assert (since + timedelta(days=2)).month == (since - timedelta(hours=1)).month == since.month
    session.flush()
    after = {r.agency: r for r in continuity(session, now=NOW)}

    def added(code: str) -> tuple[int, int, int]:
        was, now = before.get(code), after.get(code)
        return (
            (now.conferences if now else 0) - (was.conferences if was else 0),
            (now.named if now else 0) - (was.named if was else 0),
            (now.same_person if now else 0) - (was.same_person if was else 0),
        )

    assert added("neustart-wien") == (2, 2, 2)
    assert added("jva-wien") == (1, 1, 1)
    assert added("dsn") == (0, 0, 0)


# --- the summaries kept on every write --------------------------------------------------------


def recomputed_lead(session: Session, case_id: int) -> int | None:
    """The lead of the case's latest conference that has one (first by code), from the rows."""
    codes = {a.id: a.code for a in session.exec(select(Agency))}
    conferences = session.exec(select(Conference).where(Conference.case_id == case_id)).all()
    for conference in sorted(conferences, key=lambda c: c.cycle, reverse=True):
        leads = [
            p.agency_id
            for p in session.exec(
                select(Participant).where(Participant.conference_id == conference.id)
            )
            if p.role == "lead" and p.agency_id is not None
        ]
        if leads:
            return min(leads, key=lambda a: codes[a])
    return None


def recomputed_participation(session: Session, case_id: int) -> dict[int, tuple]:
    """Per agency: (first, last, participations, named, by the most frequent person)."""
    professional = {"lead", "coordinator", "core", "case_dependent", "observer"}
    found: dict[int, list] = {}
    people: dict[int, Counter[int]] = {}
    for conference in session.exec(select(Conference).where(Conference.case_id == case_id)):
        for p in session.exec(
            select(Participant).where(Participant.conference_id == conference.id)
        ):
            if p.role not in professional or p.agency_id is None:
                continue
            row = found.setdefault(p.agency_id, [conference.created_at, conference.created_at, 0])
            row[0], row[1] = min(row[0], conference.created_at), max(row[1], conference.created_at)
            row[2] += 1
            named = people.setdefault(p.agency_id, Counter())
            if p.representative_id is not None:
                named[p.representative_id] += 1
    return {
        a: (*row, sum(people[a].values()), max(people[a].values(), default=0))
        for a, row in found.items()
    }


def assert_summaries_match_the_record(session: Session, case_ids: list[int]) -> None:
    session.flush()
    for case_id in case_ids:
        stored = session.exec(select(Case).where(Case.id == case_id)).one()
        assert stored.conference_lead_agency_id == recomputed_lead(session, case_id)
        kept = {
            r.agency_id: (r.first_at, r.last_at, r.participations, r.named, r.same_person)
            for r in session.exec(
                select(AgencyParticipation).where(AgencyParticipation.case_id == case_id)
            )
        }
        assert kept == recomputed_participation(session, case_id)
    # The months add up to the cases (the whole table: every write goes through the ORM).
    months: Counter[tuple[int, date]] = Counter()
    for r in session.exec(select(AgencyParticipation)):
        for i, n in enumerate((r.participations, r.named, r.same_person)):
            months[(r.agency_id, r.first_at.replace(day=1).date(), i)] += n
    kept_months: Counter[tuple[int, date]] = Counter()
    for m in session.exec(select(AgencyParticipationMonth)):
        for i, n in enumerate((m.participations, m.named, m.same_person)):
            kept_months[(m.agency_id, m.month, i)] += n
    assert +kept_months == +months
    # The stage tallies equal those written afresh from every case and its history.
    tallies = Counter({(t.at, t.stage): t.cases for t in session.exec(select(StageTally))})
    assert +tallies == +stage_tallies(session.connection(), None)


def stages_by_definition(session: Session, case_ids: list[int], at: datetime) -> Counter:
    """The cases open at `at` by their stage then, as `stage_at` defines it (None: not known)."""
    # Grouped outside: PostgreSQL does not group by an expression holding correlated subqueries.
    stages = (
        select(stage_at(at).label("stage"))
        .where(
            col(Case.id).in_(case_ids),
            col(Case.created_at) <= at,
            or_(col(Case.closed_at).is_(None), col(Case.closed_at) > at),
        )
        .subquery()
    )
    alive = session.exec(select(stages.c.stage, func.count()).group_by(stages.c.stage)).all()
    return Counter({stage: n for stage, n in alive})


def test_the_summaries_follow_every_writer(session: Session) -> None:
    """Cases written straight, then referred, moved, transferred, closed, conferences opened and
    participants recorded and re-selected through caseconf's own functions: after each, the
    summaries kept on write equal a recomputation from the record, and the picture of past
    quarters equals each case's stage at each quarter's end by its definition."""
    before = stages_over_quarters(session, now=NOW)
    made = scenario(session)
    mine = [c.id for c in made.values()]
    assert_summaries_match_the_record(session, mine)
    # History written alone: the closed case moved once after all, the transferred one before
    # it was even referred (it counts from its referral on).
    for case_, from_, to, days in (
        (made["closed"], "pre_trial", "custody", 300),
        (made["overdue"], "custody", "pre_trial", 450),
    ):
        session.add(
            StageChange(
                case_id=case_.id,
                kind="move",
                from_stage=from_,
                to_stage=to,
                reason="other",
                at=NOW - timedelta(days=days),
            )
        )
        session.flush()
        assert_summaries_match_the_record(session, mine)
    # A change recorded after the case was closed counts nowhere.
    gone = World(session).case(
        status="closed",
        phase="closed",
        stage="closed",
        days_ago=400,
        closed_at=NOW - timedelta(days=250),
    )
    mine.append(gone.id)
    session.add(
        StageChange(
            case_id=gone.id,
            kind="move",
            from_stage="custody",
            to_stage="pre_release",
            reason="other",
            at=NOW - timedelta(days=150),
        )
    )
    assert_summaries_match_the_record(session, mine)
    rep = {r.code: r for r in session.exec(select(Representative))}
    neustart = load_profile("austria-neustart", PROFILES)
    at = NOW - timedelta(days=300)
    case = refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=f"{CANARY} summaries {uuid.uuid4().hex[:8]}",
        stage=Stage.custody,
        needs=[],
        profile="austria-neustart",
        acting_representative_code="neustart-wien-1",
        reference_prefix="PFS",
        flow_run_id=None,
        now=at,
    )
    mine.append(case.id)

    def conference(now: datetime, cycle: int, leads: str, reps: dict[str, str]) -> Conference:
        case.cycle = cycle
        held = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first if cycle == 1 else ConferenceKind.review,
            conference_type=ConferenceType.security,
            starts_at=now + timedelta(days=10),
            time_zone="Europe/Vienna",
            location="Room 1",
            now=now,
        )
        record_participants(
            session,
            conference=held,
            proposals=[
                Proposal(a, Role.lead if a in leads.split() else Role.core, "test")
                for a in ("neustart-wien", "jva-wien", "dsn")
            ],
            client_and_family=False,
            family_involved=False,
            intermediary_code=None,
            representatives={a: rep[code] for a, code in reps.items()},
        )
        return held

    # Two agencies lead the first conference: the first by code counts.
    first = conference(
        at + timedelta(days=1), 1, "neustart-wien jva-wien", {"neustart-wien": "neustart-wien-1"}
    )
    assert_summaries_match_the_record(session, mine)
    moved_at = NOW - timedelta(days=150)
    move_stage(
        session,
        case=case,
        to_stage=Stage.pre_release,
        reason=StageMoveReason.release_date_known,
        effective_on=moved_at.date(),
        release_on=moved_at.date() + timedelta(weeks=30),
        actor_id=None,
        now=moved_at,
    )
    assert_summaries_match_the_record(session, mine)
    transfer_case(
        session,
        case=case,
        area="Wien",
        lead_agency="neustart-wien",
        profile=neustart,
        actor_id=None,
        reason=TransferReason.client_moved,
        now=NOW - timedelta(days=100),
    )
    second = conference(
        NOW - timedelta(days=60),
        2,
        "jva-wien",
        {"jva-wien": "jva-wien-2", "neustart-wien": "neustart-wien-2"},
    )
    assert_summaries_match_the_record(session, mine)
    # Re-selected (participants changed in place and removed): the lead passes to dsn.
    reselect_as_security(
        session,
        case=case,
        conference=second,
        confirmed=[Proposal("dsn", Role.lead, "test"), Proposal("jva-wien", Role.core, "test")],
        representatives={"jva-wien": rep["jva-wien-1"]},
        last={},
        actor_id=None,
        now=NOW - timedelta(days=55),
    )
    assert (
        case.conference_lead_agency_id
        == session.exec(select(Agency.id).where(Agency.code == "dsn")).one()
    )
    assert_summaries_match_the_record(session, mine)
    # Written straight, each alone: a participant removed, one moved to another case's
    # conference, a conference's date changed, a lead no longer leading.
    jva = session.exec(
        select(Participant)
        .join(Agency, col(Agency.id) == col(Participant.agency_id))
        .where(Participant.conference_id == second.id, Agency.code == "jva-wien")
    ).one()
    session.delete(jva)
    assert_summaries_match_the_record(session, mine)
    moved = session.exec(
        select(Participant).where(
            Participant.conference_id == second.id, Participant.role == Role.lead
        )
    ).one()
    elsewhere = session.exec(select(Conference).where(Conference.case_id == made["fresh"].id)).one()
    moved.conference_id = elsewhere.id
    session.add(moved)
    assert_summaries_match_the_record(session, mine)
    first.created_at = NOW - timedelta(days=400)
    session.add(first)
    assert_summaries_match_the_record(session, mine)
    demoted = session.exec(
        select(Participant)
        .join(Agency, col(Agency.id) == col(Participant.agency_id))
        .where(Participant.conference_id == first.id, Agency.code == "jva-wien")
    ).one()
    demoted.role = Role.core
    session.add(demoted)
    assert_summaries_match_the_record(session, mine)
    close_case(
        session,
        case=made["late"],
        reason=ClosureReason.other,
        actor_id=None,
        note=None,
        now=NOW - timedelta(days=5),
    )
    assert_summaries_match_the_record(session, mine)
    after = stages_over_quarters(session, now=NOW)
    for was, now in zip(before[:-1], after[:-1], strict=True):
        added = Counter(now.by_stage)
        added.subtract(was.by_stage)
        added[None] = now.unknown - was.unknown
        assert +added == +stages_by_definition(session, mine, now.at), now.label
