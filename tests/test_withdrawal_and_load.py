"""A consent withdrawal tells the professionals without a reason; `load` refuses half-configured
channels and loads nothing."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from deployments.__main__ import main
from models.record.tables import Agency, Notification
from models.rules.consent import consent_in_force, ledger, withdraw
from models.rules.invitations import queue_invitations
from models.rules.participants import record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import ConferenceType, ConsentDecision, ConsentScope, Role
from tests.test_conference_rules import NOW, new_conference

pytestmark = pytest.mark.database


def test_a_withdrawal_stops_consent_and_tells_only_the_professionals(session: Session) -> None:
    from models.rules.consent import record_consent

    conference = new_conference(session, ConferenceType.social_network)
    case_id = conference.case_id
    record_consent(
        session,
        case_id=case_id,
        scope=ConsentScope.social_network_conference,
        decision=ConsentDecision.granted,
        recorded_by_id=1,
        expires_on=None,
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=[Proposal("fsw-wohnen", Role.case_dependent, "need housing")],
        client_and_family=True,
        family_involved=True,
        intermediary_code="jva-wien",
    )
    later = NOW + timedelta(days=3)
    withdraw(session, case_id=case_id, recorded_by_id=1, now=later)
    assert not consent_in_force(
        session, case_id=case_id, scope=ConsentScope.social_network_conference, today=later.date()
    )
    assert [r.decision for r in ledger(session, case_id=case_id)] == ["granted", "withdrawn"]

    from models.record.tables import Case

    case = session.get(Case, case_id)
    assert case is not None
    ids = queue_invitations(
        session, case=case, conference=conference, now=later, event="consent_withdrawn"
    )
    notices = [session.get(Notification, i) for i in ids]
    assert notices and all(n is not None and n.event == "consent_withdrawn" for n in notices)
    # The client and family are not told through the intermediary: only professionals are.
    assert {str(n.recipient_role) for n in notices if n} <= {"lead", "core", "case_dependent"}
    agencies = {a.id: a.code for a in session.exec(select(Agency))}
    assert "fsw-wohnen" in {agencies[n.recipient_agency_id] for n in notices if n}


def load_with(monkeypatch: pytest.MonkeyPatch, **files: Path) -> int:
    from models.config.settings import get_settings

    for name, path in files.items():
        monkeypatch.setenv(f"CASECONF_{name.upper()}", str(path))
    get_settings.cache_clear()
    try:
        return main(["load"])
    finally:
        get_settings.cache_clear()


def test_load_refuses_a_channel_tag_without_a_url_and_loads_nothing(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = Path(__file__).parent.parent / "config"
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        (demo / "directory.demo.yaml")
        .read_text()
        .replace("{kind: email, tag: ams-wien,", "{kind: email, tag: ams-wien-new,")
    )
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text((demo / "apprise.demo.yaml").read_text())
    assert load_with(monkeypatch, directory=directory, apprise_config=apprise) == 2
    message = capsys.readouterr().err
    assert "ams-wien-new" in message and "refused" in message
    from models.record.database import session_scope
    from models.record.tables import Channel

    with session_scope() as s:
        assert s.exec(select(Channel).where(Channel.tag == "ams-wien-new")).first() is None


def test_load_refuses_an_apprise_config_that_does_not_parse_without_echoing_secrets(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text(
        "version: 1\nurls:\n  - caseconfmail://user:s3cretpw@127.0.0.1:2525/?to=a@b.example\n"
    )
    assert load_with(monkeypatch, apprise_config=apprise) == 2
    message = capsys.readouterr().err
    assert str(apprise) in message and "s3cretpw" not in message
