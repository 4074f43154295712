"""A profile asks the directory for agencies: `load` refuses a default profile the directory
cannot supply (file, entry, reason), names other profiles it cannot supply, and each shipped
profile is supplied by its own demo directory."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine, select

from deployments.__main__ import main
from models.config.directory import load_directory
from models.config.profile import load_profile
from models.config.settings import PROJECT_ROOT, get_settings
from models.record.agencies import sync_directory
from models.record.database import RecordSession, session_scope
from models.record.tables import Agency
from models.rules.stakeholders import AgencyView, propose_participants, unsupplied
from models.vocabulary import ConferenceType, Stage

CONFIG = PROJECT_ROOT / "config"
PROFILES = CONFIG / "profiles"
VIENNA = CONFIG / "directory.demo.yaml"
BARCELONA = CONFIG / "directory.barcelona.yaml"


def views(path: Path) -> list[AgencyView]:
    return [AgencyView.of_entry(a) for a in load_directory(path).agencies]


@pytest.fixture
def load_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def run(**settings: str | Path) -> int:
        for name, value in settings.items():
            monkeypatch.setenv(f"CASECONF_{name.upper()}", str(value))
        get_settings.cache_clear()
        return main(["load"])

    yield run
    get_settings.cache_clear()


def agencies_in(database: str) -> list[tuple[str, bool, str | None]]:
    with session_scope() as session:
        rows = session.exec(select(Agency).order_by(Agency.code))
        return [(a.code, a.active, a.scope) for a in rows]


@pytest.mark.parametrize(
    ("profile", "directory"),
    [("generic", VIENNA), ("austria-neustart", VIENNA), ("catalonia", BARCELONA)],
)
def test_each_shipped_profile_is_supplied_by_its_demo_directory(
    profile: str, directory: Path
) -> None:
    assert unsupplied(load_profile(profile, PROFILES), views(directory)) == []


def test_two_police_forces_asked_of_a_directory_with_one_are_named() -> None:
    vienna = views(VIENNA)
    problems = unsupplied(load_profile("catalonia", PROFILES), vienna)
    reason = (
        "no active agency of kind police with scope local in the directory "
        "(of kind police it has: lpd-wien (scope regional))"
    )
    assert problems == [
        ("core_kinds.security[0]", reason),
        ("core_kinds.social_network[0]", reason),
        ("core_kinds_by_stage.pre_trial.security[0]", reason),
        ("core_kinds_by_stage.pre_trial.social_network[0]", reason),
    ]
    # An inactive agency supplies nothing; a missing lead kind is named per stage.
    inactive = [
        AgencyView(a.code, a.kinds, active=a.code not in {"dsn", "lpd-wien"}, scope=a.scope)
        for a in vienna
    ]
    assert (
        "conference_types.security.lead_kinds",
        "no active agency of kind "
        "security_service, police in the directory may lead at pre_trial, custody, "
        "pre_release, post_release",
    ) in unsupplied(load_profile("generic", PROFILES), inactive)


def test_load_refuses_a_default_profile_the_directory_cannot_supply(
    database: str, load_with, capsys: pytest.CaptureFixture[str]
) -> None:
    before = agencies_in(database)
    assert load_with(profile="catalonia") == 2  # the Vienna directory has one police force
    message = capsys.readouterr().err
    assert message.startswith(
        f"caseconf: refused: {PROFILES / 'catalonia.yaml'}: core_kinds.security[0]: no active "
        "agency of kind police with scope local in the directory"
    )
    assert f"(the default profile asks for agencies {VIENNA} does not have)" in message
    assert agencies_in(database) == before  # nothing loaded


def test_load_refuses_when_the_barcelona_directory_loses_its_regional_police(
    database: str, load_with, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(BARCELONA.read_text())
    data["agencies"] = [a for a in data["agencies"] if a["code"] != "mossos"]
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump(data, allow_unicode=True))
    before = agencies_in(database)
    code = load_with(
        profile="catalonia",
        directory=directory,
        apprise_config=CONFIG / "apprise.barcelona.yaml",
    )
    assert code == 2
    message = capsys.readouterr().err
    assert (
        f"{PROFILES / 'catalonia.yaml'}: core_kinds.security[1]: no active agency of kind police "
        "with scope regional in the directory (of kind police it has: guardia-urbana-bcn "
        "(scope local))"
    ) in message
    assert agencies_in(database) == before


def test_load_names_another_profile_it_cannot_supply_and_goes_on(
    database: str, load_with, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default profile (generic) is supplied by the Vienna directory; catalonia is not.
    assert load_with(profile="generic", directory=VIENNA) == 0
    captured = capsys.readouterr()
    assert f"caseconf: note: profile catalonia cannot be fully supplied by {VIENNA}" in (
        captured.err
    )
    assert "austria-neustart" not in captured.err and "generic" not in captured.err
    assert "valid" in captured.out
    scopes = {code: scope for code, active, scope in agencies_in(database) if active}
    assert scopes["lpd-wien"] == "regional"


def test_the_scope_reaches_the_database_and_selection_reads_it_from_there() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    try:
        with RecordSession(engine) as session:
            sync_directory(session, load_directory(BARCELONA))
            session.commit()
        with RecordSession(engine) as session:
            from_rows = [AgencyView.of(a) for a in session.exec(select(Agency))]
    finally:
        engine.dispose()
    catalonia = load_profile("catalonia", PROFILES)
    for agencies in (from_rows, views(BARCELONA)):
        selection = propose_participants(
            profile=catalonia,
            agencies=agencies,
            stage=Stage.custody,
            conference_type=ConferenceType.security,
            needs=[],
        )
        assert {p.agency_code for p in selection.proposals} == {
            "dgap-unitat",
            "ajuntament-bcn",
            "guardia-urbana-bcn",
            "mossos",
            "smpa-bcn",
        }
