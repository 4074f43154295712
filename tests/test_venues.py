"""Where a conference meets: venues come from the directory, the form offers them, and a place
that is no venue (typed text, a venue gone since the form was asked) is refused with the field
named, unless the installation allows free text."""

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

from models.answers import with_choices
from models.config.directory import DirectoryError, parse_directory
from models.config.settings import PROJECT_ROOT
from models.errors import Refusal
from models.record.agencies import sync_directory
from models.record.database import RecordSession
from models.record.tables import Venue
from models.rules import choices
from models.rules.venues import place
from models.steps.parameters import Reschedule
from models.steps.preparation import Preparation

DEMO = PROJECT_ROOT / "config" / "directory.demo.yaml"


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    return data


@pytest.fixture
def session() -> Iterator[Session]:
    engine: Engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    SQLModel.metadata.create_all(engine)
    with RecordSession(engine) as session:
        sync_directory(session, parse_directory(demo_data(), "demo.yaml"))
        yield session
    engine.dispose()


def test_the_form_offers_the_directory_venues_with_their_labels(session: Session) -> None:
    offered = choices.venues(session)
    assert ("jva-wien-room-2", "Justizanstalt Wien, conference room 2 (visitors' entrance)") in (
        offered
    )
    form = with_choices(Preparation, {"location": offered})
    schema = form.model_json_schema()
    assert schema["properties"]["location"]["enum"] == [code for code, _ in offered]
    assert (
        "Justizanstalt Wien, conference room 2" in schema["properties"]["location"]["description"]
    )
    assert "travels in every invitation" in schema["properties"]["location"]["description"]
    with pytest.raises(ValidationError, match="location"):
        form.model_validate(
            {
                "conference_type": "security",
                "starts_at": "2040-01-01T10:00",
                "time_zone": "Europe/Vienna",
                "location": "at the family's home, Hauptstrasse 1",
                "acting_representative": "neustart-wien-1",
            }
        )


def test_a_rescheduled_place_is_optional_and_chosen_from_the_venues(session: Session) -> None:
    form = with_choices(Reschedule, {"location": choices.venues(session)})
    spec = form.model_json_schema()["properties"]["location"]
    assert {"type": "null"} in spec["anyOf"]
    assert form.model_fields["location"].default is None


def test_a_venue_code_stands_for_its_label(session: Session) -> None:
    assert place(session, " jva-wien-room-2 ", free_text=False) == (
        "Justizanstalt Wien, conference room 2 (visitors' entrance)"
    )


def test_typed_text_is_refused_unless_the_installation_allows_it(session: Session) -> None:
    typed = "at the family's home, Hauptstrasse 1"
    with pytest.raises(Refusal) as refused:
        place(session, typed, free_text=False)
    assert refused.value.problems[0].field == "location"
    assert "not a venue" in str(refused.value) and typed not in str(refused.value)
    assert place(session, "Rathaus, room 7", free_text=True) == "Rathaus, room 7"
    with pytest.raises(Refusal, match="location"):
        place(session, " x ", free_text=True)


def test_a_venue_removed_while_a_form_waits_is_refused_and_the_rest_still_work(
    session: Session,
) -> None:
    data = demo_data()
    jva = next(a for a in data["agencies"] if a["code"] == "jva-wien")
    jva["venues"] = []
    sync_directory(session, parse_directory(data, "demo.yaml"))
    with pytest.raises(Refusal, match="not a venue of the directory now"):
        place(session, "jva-wien-room-2", free_text=False)
    assert place(session, "neustart-wien-room-3", free_text=False).startswith("NEUSTART Wien")
    assert "jva-wien-room-2" not in [code for code, _ in choices.venues(session)]
    kept = session.exec(select(Venue).where(Venue.code == "jva-wien-room-2")).one()
    assert kept.active is False  # kept for the conferences that met there


def test_an_inactive_agency_offers_no_venue(session: Session) -> None:
    data = demo_data()
    data["agencies"] = [a for a in data["agencies"] if a["code"] != "magistrat-wien"]
    sync_directory(session, parse_directory(data, "demo.yaml"))
    assert all(not code.startswith("magistrat-wien") for code, _ in choices.venues(session))
    with pytest.raises(Refusal):
        place(session, "magistrat-wien-room-1", free_text=False)


def test_a_directory_without_venues_says_what_to_do(session: Session) -> None:
    data = demo_data()
    for agency in data["agencies"]:
        agency.pop("venues", None)
    sync_directory(session, parse_directory(data, "demo.yaml"))
    with pytest.raises(Refusal, match="CASECONF_FREE_TEXT_PLACE"):
        place(session, "jva-wien-room-2", free_text=False)


def test_a_venue_code_used_twice_is_refused_naming_both_entries() -> None:
    data = demo_data()
    neustart = next(a for a in data["agencies"] if a["code"] == "neustart-wien")
    neustart["venues"].append({"code": "jva-wien-room-2", "label": "Somewhere else"})
    with pytest.raises(DirectoryError) as refused:
        parse_directory(data, "dir.yaml")
    assert "(jva-wien).venues[0].code: 'jva-wien-room-2' is already used by" in str(refused.value)
    assert "(neustart-wien).venues[2]" in str(refused.value)
