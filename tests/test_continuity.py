"""Personnel continuity: per agency, how often the same person attended a case's conferences."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from deployments.__main__ import main
from models.record.database import session_scope
from models.record.tables import Case, Representative
from models.reporting.continuity import AgencyContinuity, continuity, continuity_table
from models.rules.cases import refer_case
from models.rules.conference import open_conference
from models.rules.participants import last_representatives, record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import ConferenceKind, ConferenceType, Role, Stage
from tests.test_conference_rules import NOW

pytestmark = pytest.mark.database

# Who attended for each agency at cycles 1, 2 and 3 (None: the agency decided, nobody named).
ATTENDED: list[dict[str, str | None]] = [
    {"neustart-wien": "neustart-wien-1", "jva-wien": "jva-wien-1", "dsn": None},
    {"neustart-wien": "neustart-wien-1", "jva-wien": "jva-wien-2", "dsn": None},
    {
        "neustart-wien": "neustart-wien-1",
        "jva-wien": "jva-wien-1",
        "dsn": "dsn-1",
        "fsw-wohnen": None,
    },
]


def run_conferences(session: Session, prefix: str) -> Case:
    """A case whose three conferences were attended as in ATTENDED."""
    case = refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=f"{prefix}-1",
        stage=Stage.custody,
        needs=[],
        profile="generic",
        acting_representative_code="neustart-wien-1",
        reference_prefix=prefix,
        flow_run_id=None,
        now=NOW,
    )
    assert case.id is not None
    for cycle, attended in enumerate(ATTENDED, start=1):
        case.cycle = cycle
        conference = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first if cycle == 1 else ConferenceKind.review,
            conference_type=ConferenceType.security,
            starts_at=NOW + timedelta(weeks=12 * cycle),
            time_zone="Europe/Vienna",
            location="Room 1",
            now=NOW,
        )
        named = {
            agency: session.exec(select(Representative).where(Representative.code == code)).one()
            for agency, code in attended.items()
            if code is not None
        }
        record_participants(
            session,
            conference=conference,
            proposals=[Proposal(agency, Role.core, "test") for agency in attended],
            client_and_family=False,
            family_involved=False,
            intermediary_code=None,
            representatives=named,
            last=last_representatives(session, case_id=case.id, before_cycle=cycle),
        )
    return case


def test_continuity_per_agency(session: Session) -> None:
    case = run_conferences(session, "CONT")
    assert case.id is not None
    assert last_representatives(session, case_id=case.id, before_cycle=3) == {
        "neustart-wien": "neustart-wien-1",
        "jva-wien": "jva-wien-2",  # the most recent, not the most frequent
    }
    rows = continuity(session, case.id)
    assert rows == [
        AgencyContinuity("dsn", conferences=3, named=1, same_person=1, substitutions=0),
        AgencyContinuity("fsw-wohnen", conferences=1, named=0, same_person=0, substitutions=0),
        # jva-wien-2 stood in at cycle 2, and jva-wien-1 was back at cycle 3: two substitutions
        AgencyContinuity("jva-wien", conferences=3, named=3, same_person=2, substitutions=2),
        AgencyContinuity("neustart-wien", conferences=3, named=3, same_person=3, substitutions=0),
    ]
    assert [r.share for r in rows] == [1.0, None, pytest.approx(2 / 3), 1.0]


def test_the_report_carries_agency_codes_and_numbers_only(session: Session) -> None:
    case = run_conferences(session, "CONR")
    assert case.id is not None
    text = continuity_table(case.reference, continuity(session, case.id))
    assert f"Personnel continuity, {case.reference}" in text
    assert "| `jva-wien` | 3 | 3 | 67% | 2 |" in text
    assert "| `fsw-wohnen` | 1 | 0 | n/a | 0 |" in text
    for code in ("neustart-wien-1", "jva-wien-1", "jva-wien-2", "dsn-1", "Demo Representative"):
        assert code not in text
    assert "no participants recorded yet" in continuity_table("CASE-2034-0001", [])


def test_continuity_command(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope() as session:  # committed: a prefix of its own, so no other test sees it
        reference = run_conferences(session, "CONC").reference
    assert main(["continuity", reference]) == 0
    out = capsys.readouterr().out
    assert reference in out and "| `neustart-wien` | 3 | 3 | 100% | 0 |" in out
    assert "jva-wien-2" not in out
    assert main(["continuity", "CASE-1999-0001"]) == 2
    assert "case_reference: no case with this reference exists" in capsys.readouterr().err
