"""A social-network case whose consent is withdrawn after the invitations went out goes on as a
security conference: selection runs again, and each participant is told what changed, once.

Walked through a real Prefect server as the UI does; every message is read off the SMTP
catcher, message by message.
"""

from collections import defaultdict
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from sqlmodel import select

from models.record.tables import Agency, AuditEvent, Case, Conference, Notification, Participant
from tests.prefect_harness import FINAL, Walk, calendar_parts, text_of, wait_for
from tests.test_case_flow import REP, case_of, db, in_days, rows, starts_in

pytestmark = pytest.mark.flow

PROFILE = "austria-neustart"
CANARY = "QFALLBACKQ"


def messages_for(mail: Any, reference: str) -> dict[str, list[Any]]:
    """The case's e-mails by recipient agency code (`<code>@demo.invalid`)."""
    found: dict[str, list[Any]] = defaultdict(list)
    for message in mail.messages():
        if reference in str(message["Subject"]):
            found[str(message["X-RcptTo"]).split("@")[0]].append(message)
    return found


def imip(message: Any) -> list[tuple[str, int]]:
    """(method, SEQUENCE) of each iMIP part: a meeting request into the recipient's calendar."""
    return [
        (str(method), int(cal.walk("VEVENT")[0]["SEQUENCE"]))
        for method, cal in calendar_parts(message)
        if method
    ]


def files(message: Any) -> dict[str, bytes]:
    """Attached files by name (a hand-over's calendar file among them)."""
    return {
        p.get_filename(): p.get_payload(decode=True) for p in message.walk() if p.get_filename()
    }


def test_withdrawn_consent_goes_on_as_security_and_tells_each_participant_once(
    serving, database, mail
):
    walk = Walk.refer("neustart-wien", stage="custody", profile=PROFILE)
    walk.waits_at("referral")
    walk.answer(file_number="FB-1", needs=[], acting_representative=REP)
    walk.waits_at("preparation")
    walk.answer(
        conference_type="social_network",
        starts_at=starts_in(11),
        time_zone="Europe/Vienna",
        location="neustart-wien-room-3",
        acting_representative=REP,
    )
    walk.waits_at("consent")
    walk.answer(client_consent="granted", family_involvement=True, acting_representative=REP)
    walk.waits_at("stakeholders")
    walk.answer(intermediary="jva-wien", family_members=["parent"], acting_representative=REP)
    walk.waits_at("information")
    case = case_of(database, walk.run_id)
    [conference] = rows(database, Conference, case_id=case.id)
    with db(database) as s:
        codes = {a.id: a.code for a in s.exec(select(Agency))}
    before = rows(database, Participant, conference_id=conference.id)
    agencies_before = {codes[p.agency_id]: str(p.role) for p in before if p.agency_id}
    assert agencies_before["neustart-wien"] == "lead" and "sta-wien" in agencies_before
    assert sorted((str(p.role), p.relation) for p in before if p.agency_id is None) == [
        ("client", None),
        ("family", "parent"),
    ]
    sent = messages_for(mail, case.reference)
    # The hand-overs say for whom, and carry the meeting as a file, not as a request into the
    # prison's own calendar (the prison does not attend this social-network conference).
    handovers = sent["jva-wien"]
    assert len(handovers) == 2 and all(imip(m) == [] for m in handovers)
    assert sorted(str(m["Subject"]).split(":")[1].split(",")[0] for m in handovers) == [
        " Einladung für die Klientin bzw. den Klienten",
        " Einladung für eine angehörige Person oder Vertrauensperson (Elternteil)",
    ]
    assert sorted(name for m in handovers for name in files(m)) == [
        "invitation-client.ics",
        "invitation-family-parent.ics",
    ]
    assert all(b"METHOD:PUBLISH" in data for m in handovers for data in files(m).values())
    assert [imip(m) for m in sent["sta-wien"]] == [[("REQUEST", 0)]]
    mail_before = {code: len(found) for code, found in sent.items()}

    # The client withdraws consent while the run waits at the information form.
    withdrawal = run_deployment(
        "case-consent/withdraw",
        parameters={"withdrawal": {"case_reference": case.reference, "acting_representative": REP}},
        timeout=0,
    )
    assert wait_for(withdrawal.id, FINAL).state.type == StateType.COMPLETED
    with db(database) as s:
        following = s.get(Case, case.id).current_flow_run_id
    walk = Walk(UUID(following))
    walk.waits_at("consent-refused")
    walk.answer(
        next_step="continue_as_security",
        reason=f"{CANARY} security concerns remain",
        acting_representative=REP,
    )

    # The coordinator confirms the security type's list, with the reasons shown.
    run = walk.waits_at("stakeholders-security")
    assert "type:security" in run.tags
    shown = walk.description()
    assert "| `sta-wien` | core | leaves | not proposed by the security type's rules" in shown
    assert "| `dsn` | lead | joins |" in shown
    assert "| `jva-wien` | core | joins |" in shown
    assert "| `neustart-wien` | core | stays, was lead |" in shown
    assert "| `client` | client | leaves | a security conference never includes" in shown
    assert "| `family (parent)` | family | leaves |" in shown
    # Nothing changes before the coordinator confirms.
    assert len(rows(database, Participant, conference_id=conference.id)) == len(before)
    walk.answer(acting_representative=REP)

    walk.waits_at("information")
    after = rows(database, Participant, conference_id=conference.id)
    assert all(p.agency_id is not None for p in after)  # no client, no family
    agencies_after = {codes[p.agency_id]: str(p.role) for p in after}
    assert agencies_after == {"dsn": "lead", "jva-wien": "core", "neustart-wien": "core"}
    [reselected] = [
        e
        for e in rows(database, AuditEvent, case_id=case.id)
        if e.action == "participants.reselected_as_security"
    ]
    assert "sta-wien" in reselected.detail and "dsn" in reselected.detail

    # Message by message: every removed participant a CANCEL, every added one a REQUEST, the
    # others an update, all at SEQUENCE 1; the intermediary is told the meeting no longer
    # includes the client and the family member, without a reason, with no calendar request.
    sent = messages_for(mail, case.reference)
    new = {code: found[mail_before.get(code, 0) :] for code, found in sent.items()}
    # (The withdrawal itself told the professionals the conference will not go ahead as
    # planned, without a reason.)
    told = {
        code: [m for m in found if "nicht wie geplant" in str(m["Subject"])]
        for code, found in new.items()
    }
    assert {code for code, found in told.items() if found} == set(agencies_before)
    withdrawn = {
        code: [m for m in found if "nicht wie geplant" not in str(m["Subject"])]
        for code, found in new.items()
    }
    leavers = set(agencies_before) - set(agencies_after)
    assert "sta-wien" in leavers  # the prosecution is not in the security type's core
    for code in leavers:  # every agency that leaves: one CANCEL, nothing else
        assert [imip(m) for m in withdrawn[code]] == [[("CANCEL", 1)]], code
        assert f"| `{code}` | " in shown and "| leaves |" in shown
    assert [imip(m) for m in withdrawn["dsn"]] == [[("REQUEST", 1)]]
    assert [imip(m) for m in withdrawn["neustart-wien"]] == [[("REQUEST", 1)]]
    assert str(withdrawn["neustart-wien"][0]["Subject"]).startswith("Aktualisiert:")
    prison = withdrawn["jva-wien"]
    requests = [m for m in prison if imip(m)]
    assert [imip(m) for m in requests] == [[("REQUEST", 1)]]  # its own invitation, as core
    no_longer = [m for m in prison if not imip(m)]
    assert sorted(str(m["Subject"]).split(":")[0] for m in no_longer) == [
        "Nicht mehr übergeben",
        "Nicht mehr übergeben",
    ]
    assert sorted(name for m in no_longer for name in files(m)) == [
        "invitation-client.ics",
        "invitation-family-parent.ics",
    ]
    assert all(b"METHOD:CANCEL" in d for m in no_longer for d in files(m).values())
    assert len(prison) == 3
    for found in new.values():
        for message in found:
            assert CANARY not in text(message)  # the reason typed in the form stays out
    assert set(new) <= set(agencies_before) | set(agencies_after)

    # The conference goes on as a security conference; the minutes follow the new list.
    walk.answer(
        contributions=[
            {"agency": "dsn", "classification": "restricted", "pointer": "DSN system, entry 9"},
            {
                "agency": "neustart-wien",
                "classification": "professional",
                "summary": f"{CANARY} attends the programme",
            },
        ],
        acting_representative=REP,
    )
    walk.waits_at("decision")
    walk.answer(
        decisions=["Keep the programme"],
        next_review_on=in_days(80),
        acting_representative=REP,
    )
    run = wait_for(walk.run_id, FINAL)
    assert run.state.type == StateType.COMPLETED, run.state.message
    minutes = rows(database, Notification, case_id=case.id, event="minutes")
    assert {codes[n.recipient_agency_id] for n in minutes} == {"dsn", "jva-wien", "neustart-wien"}
    assert all(str(n.recipient_role) not in ("client", "family") for n in minutes)
    sent = messages_for(mail, case.reference)
    for code in leavers:
        assert not [m for m in sent.get(code, []) if "Protokoll" in str(m["Subject"])]
    assert [m for m in sent["dsn"] if "Protokoll" in str(m["Subject"])]
    handed = rows(database, Notification, case_id=case.id, event="handover_request")
    assert len(handed) == 2  # only the two from before the fallback, never again


def text(message: Any) -> str:
    return text_of(message)
