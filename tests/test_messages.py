"""Message texts: every event, kind and language renders, and nothing but the allowed fields."""

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.messaging.messages import (
    LANGUAGES,
    TEMPLATES,
    Event,
    MessageContext,
    RenderedMessage,
    render,
)

KINDS: tuple[Literal["email", "chat"], ...] = ("email", "chat")
REFERENCE = "CASE-2026-0042"

# The recipient each event is written for.
ROLE = {
    Event.action_escalation: "lead",
    Event.handover_request: "intermediary",
    Event.handover_withdrawn: "intermediary",
}
# Whom a hand-over is for (by role and relation, never a name).
FOR = {Event.handover_request: "family:parent", Event.handover_withdrawn: "client"}

# The free-text context fields, and which of them each event may show.
TEXT_FIELDS = (
    "reference",
    "agency_file_number",
    "location",
    "action_description",
    "owner_agency",
    "minutes_pointer",
)
_CASE = {"reference", "agency_file_number"}
_MEETING = _CASE | {"location"}
_ACTION = _CASE | {"action_description"}
SHOWN: dict[Event, set[str]] = {
    Event.invitation: _MEETING,
    Event.reminder: _MEETING,
    Event.rescheduled: _MEETING,
    Event.cancelled: _CASE,
    Event.consent_withdrawn: _CASE,
    Event.minutes: _CASE | {"minutes_pointer"},
    Event.action_assigned: _ACTION,
    Event.action_due_soon: _ACTION,
    Event.action_overdue: _ACTION,
    Event.action_escalation: _ACTION | {"owner_agency"},
    Event.review_due: _CASE,
    Event.handover_request: _MEETING,
    Event.review_moved: _CASE,
    Event.review_cancelled: _CASE,
    Event.review_run_cancelled: _CASE,
    Event.case_run_cancelled: _CASE,
    Event.invitation_updated: _MEETING,
    Event.participation_cancelled: _CASE,
    Event.handover_withdrawn: _CASE,
}


def _context(event: Event, **changes: Any) -> MessageContext:
    """A context with every field set; `changes` override."""
    context = MessageContext(
        reference=REFERENCE,
        recipient_role=ROLE.get(event, "core"),
        agency_file_number=None,
        starts_at=datetime(2027, 1, 12, 9, 0, tzinfo=UTC),
        time_zone="Europe/Vienna",
        location="Neustart Wien, Room 3",
        cycle=1,
        action_description="Arrange the housing appointment",
        action_due_on=date(2027, 2, 5),
        owner_agency="AT-POL-VIE",
        minutes_pointer="The minutes are in the probation case system.",
        minutes_attached=False,
        handover_for=FOR.get(event),
    )
    return replace(context, **changes)


def _text(message: RenderedMessage) -> str:
    return f"{message.subject}\n{message.body}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", list(Event))
def test_every_event_renders(event: Event, kind: Literal["email", "chat"], language: str) -> None:
    message = render(event=event, kind=kind, language=language, context=_context(event))
    text = _text(message)
    for leftover in ("{{", "}}", "{%", "%}", "{#", "None"):
        assert leftover not in text
    assert REFERENCE in message.body
    if kind == "email":
        assert REFERENCE in message.subject
        assert message.subject and "\n" not in message.subject
        assert message.body.endswith("\n") and not message.body.startswith("\n")
    else:
        assert message.subject == ""
        assert "\n" not in message.body


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", list(Event))
def test_english_and_german_differ(event: Event, kind: Literal["email", "chat"]) -> None:
    context = _context(event)
    english = render(event=event, kind=kind, language="en", context=context)
    german = render(event=event, kind=kind, language="de", context=context)
    assert english != german
    assert english.body != german.body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", list(Event))
def test_file_number_only_when_given(
    event: Event, kind: Literal["email", "chat"], language: str
) -> None:
    with_number = render(
        event=event,
        kind=kind,
        language=language,
        context=_context(event, agency_file_number="AZ 17/2026"),
    )
    without = render(event=event, kind=kind, language=language, context=_context(event))
    assert "AZ 17/2026" in with_number.body
    for label in ("file", "Aktenzeichen"):
        assert label not in _text(without)


def test_every_language_has_every_template() -> None:
    expected = {f"{event.value}.{kind}.j2" for event in Event for kind in KINDS}
    for language in LANGUAGES:
        present = {path.name for path in (TEMPLATES / language).glob("*.j2")}
        assert present - {"_macros.j2"} == expected


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("en", "Tuesday 12 January 2027, 10:00 (Europe/Vienna)"),
        ("de", "Dienstag, 12. Januar 2027, 10:00 Uhr (Europe/Vienna)"),
    ],
)
def test_time_is_shown_in_the_conference_zone(language: str, shown: str) -> None:
    message = render(
        event=Event.invitation, kind="email", language=language, context=_context(Event.invitation)
    )
    assert shown in message.body


def test_german_words() -> None:
    message = render(
        event=Event.invitation, kind="email", language="de", context=_context(Event.invitation)
    )
    assert message.subject == f"Einladung: Fallkonferenz {REFERENCE}"


@pytest.mark.parametrize(("language", "expected"), [("fr", "en"), ("de-AT", "de"), ("DE", "de")])
def test_language_fallback(language: str, expected: str) -> None:
    context = _context(Event.reminder)
    assert render(event=Event.reminder, kind="email", language=language, context=context) == (
        render(event=Event.reminder, kind="email", language=expected, context=context)
    )


def test_minutes_attached_or_pointer() -> None:
    pointer = "The minutes are in the probation case system."
    attached = render(
        event=Event.minutes,
        kind="email",
        language="en",
        context=_context(Event.minutes, minutes_attached=True),
    )
    pointed = render(
        event=Event.minutes, kind="email", language="en", context=_context(Event.minutes)
    )
    assert "attached" in attached.body and pointer not in attached.body
    assert pointer in pointed.body


def test_consent_withdrawn_says_only_that_it_will_not_go_on() -> None:
    message = render(
        event=Event.consent_withdrawn,
        kind="email",
        language="en",
        context=_context(Event.consent_withdrawn, recipient_role="family"),
    )
    assert "will not go ahead as planned" in message.body
    assert "coordinator will be in touch" in message.body
    for word in ("consent", "withdr", "reason", "Neustart", "2027"):
        assert word not in _text(message)


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        (Event.invitation, {"starts_at": None}),
        (Event.invitation, {"location": None}),
        (Event.action_assigned, {"action_due_on": None}),
        (Event.action_escalation, {"owner_agency": None}),
        (Event.minutes, {"minutes_pointer": None}),
        (Event.action_assigned, {"recipient_role": "client"}),
        (Event.action_overdue, {"recipient_role": "family"}),
        (Event.action_escalation, {"recipient_role": "core"}),
        (Event.handover_request, {"recipient_role": "client"}),
        (Event.handover_request, {"handover_for": None}),
        (Event.handover_withdrawn, {"recipient_role": "core"}),
        (Event.invitation_updated, {"recipient_role": "client"}),
    ],
)
def test_rejects_missing_fields_and_wrong_recipients(event: Event, changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render(event=event, kind="email", language="en", context=_context(event, **changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"starts_at": datetime(2027, 1, 12, 10, 0)},
        {"time_zone": "Europe/Nowhere"},
        {"recipient_role": "judge"},
        {"reference": ""},
        {"reference": "CASE-1\nBcc: someone@example.org"},
        {"location": "Room 3\r\nX-Header: 1"},
        {"cycle": -1},
        {"handover_for": "Max Mustermann"},
        {"handover_for": "family:cousin"},
    ],
)
def test_context_rejects_unsafe_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _context(Event.invitation, **changes)


_LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_noise = st.text(
    st.characters(codec="utf-8", exclude_characters="⟦⟧" + _LINE_BREAKS),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event", list(Event))
@settings(max_examples=50, deadline=None)
@given(
    attached=st.booleans(),
    noise=st.fixed_dictionaries({name: _noise for name in TEXT_FIELDS}),
)
def test_only_allowed_fields_reach_a_message(
    event: Event,
    kind: Literal["email", "chat"],
    language: str,
    attached: bool,
    noise: dict[str, str],
) -> None:
    """Random text (template syntax included) in every field: an event shows exactly its
    allowed fields, verbatim, and apart from them the message is fixed template text."""
    shown = SHOWN[event] - ({"minutes_pointer"} if attached else set())

    def rendered(values: dict[str, str]) -> str:
        marked = {name: f"⟦{name}:{value}⟧" for name, value in values.items()}
        context = _context(event, minutes_attached=attached, **marked)
        text = _text(render(event=event, kind=kind, language=language, context=context))
        for name in TEXT_FIELDS:
            assert (marked[name] in text) == (name in shown), name
            text = text.replace(marked[name], f"⟦{name}⟧")
        return text

    skeleton = rendered(dict.fromkeys(TEXT_FIELDS, "x"))
    assert rendered(noise) == skeleton


@pytest.mark.parametrize(
    ("language", "target", "said"),
    [
        ("en", "client", "the client"),
        ("en", "family:sibling", "a family member or friend of the client (sibling)"),
        ("de", "family:parent", "eine angehörige Person oder Vertrauensperson (Elternteil)"),
        ("de", "family", "die Angehörigen"),
    ],
)
def test_a_handover_says_for_whom_and_that_the_file_is_not_the_intermediarys(
    language: str, target: str, said: str
) -> None:
    context = _context(Event.handover_request, handover_for=target)
    email = render(event=Event.handover_request, kind="email", language=language, context=context)
    assert said in email.subject and said in email.body
    assert ("own invitation" if language == "en" else "eigene Einladung") in email.body
    chat = render(event=Event.handover_request, kind="chat", language=language, context=context)
    assert said in chat.body


@pytest.mark.parametrize(
    "event", [Event.action_assigned, Event.action_due_soon, Event.action_overdue]
)
def test_an_action_of_the_client_goes_to_the_intermediary_addressed_for_hand_over(
    event: Event,
) -> None:
    theirs = _context(event, recipient_role="intermediary", handover_for="client")
    email = render(event=event, kind="email", language="en", context=theirs)
    assert "This action is for the client, whom your agency reaches as intermediary" in email.body
    assert "(the client)" in render(event=event, kind="chat", language="en", context=theirs).body
    own = render(event=event, kind="email", language="en", context=_context(event))
    assert "intermediary" not in own.body and "\n\n\n" not in own.body
