"""The client's one-page summary: consent as it stands, who takes part and what each may receive;
exporting it is audited with its reason."""

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from deployments.__main__ import main
from models.record.database import session_scope
from models.record.tables import AuditEvent, Case, InformationItem
from models.reporting.consent_summary import consent_summary
from models.rules.consent import record_consent, withdraw
from models.vocabulary import Classification, ConferenceType, ConsentDecision, ConsentScope
from tests.test_conference_rules import NOW, new_conference

pytestmark = pytest.mark.database


def test_summary_says_what_each_participant_may_receive_and_where_consent_stands(
    session: Session,
) -> None:
    conference = new_conference(session, ConferenceType.security)
    case = session.get(Case, conference.case_id)
    assert case is not None
    session.add(
        InformationItem(
            conference_id=conference.id,  # type: ignore[arg-type]
            agency_id=1,
            classification=Classification.professional,
            summary="Secret-ish summary text",
        )
    )
    record_consent(
        session,
        case_id=case.id,
        scope=ConsentScope.social_network_conference,  # type: ignore[arg-type]
        decision=ConsentDecision.granted,
        recorded_by_id=1,
        expires_on=None,
        now=NOW,
    )
    withdraw(session, case_id=case.id, recorded_by_id=1, now=NOW + timedelta(days=1))  # type: ignore[arg-type]
    text = consent_summary(session, case=case, today=NOW.date() + timedelta(days=2))
    assert case.reference in text
    assert "granted" in text and "withdrawn" in text and "**not in force**" in text
    # The security service is cleared for restricted pointers in a security conference.
    dsn = next(line for line in text.splitlines() if "Staatsschutz" in line)
    assert "never the information itself" in dsn
    prison = next(line for line in text.splitlines() if "Justizanstalt" in line)
    assert "never the information itself" not in prison and "only the professionals" in prison
    assert "do not take part" in text
    # Agencies by name, never people, and never the content of an information item.
    assert "Demo Representative" not in text and "Secret-ish" not in text


def test_exporting_the_summary_is_audited_with_its_reason(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.rules.cases import refer_case
    from models.vocabulary import Stage

    with session_scope() as session:  # committed: a prefix of its own, so no other test sees it
        reference = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number="SUM-1",
            stage=Stage.custody,
            needs=[],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="SUMM",
            flow_run_id=None,
            now=NOW,
        ).reference
    assert (
        main(
            [
                "consent-summary",
                reference,
                "--representative",
                "neustart-wien-1",
                "--reason",
                "client asked in the meeting of today",
            ]
        )
        == 0
    )
    assert reference in capsys.readouterr().out
    with session_scope() as session:
        exported = session.exec(
            select(AuditEvent).where(AuditEvent.action == "consent.summary.exported")
        ).all()
    assert [e.justification for e in exported][-1] == "client asked in the meeting of today"
    assert main(["consent-summary", reference, "--representative", "nobody", "--reason", "x"]) == 2
    assert "--representative" in capsys.readouterr().err
