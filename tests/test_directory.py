"""The agency directory: the demo loads, broken entries are refused, sync upserts by code."""

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

from models.config.directory import Directory, DirectoryError, load_directory, parse_directory
from models.config.settings import PROJECT_ROOT, get_settings
from models.record.agencies import sync_directory
from models.record.database import RecordSession
from models.record.tables import Agency, Representative
from models.vocabulary import AgencyKind, Classification

DEMO = PROJECT_ROOT / "config" / "directory.demo.yaml"


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(data, "dir.yaml")
    return str(caught.value)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_demo_directory_loads() -> None:
    directory = load_directory(DEMO)
    codes = {a.code for a in directory.agencies}
    assert {
        "neustart-wien",
        "jva-wien",
        "dsn",
        "lpd-wien",
        "sta-wien",
        "magistrat-wien",
        "psd-wien",
        "fsw-wohnen",
        "ams-wien",
        "derad-mentoring",
        "familienberatung",
        "caritas-migration",
    } <= codes
    neustart = directory.agency("neustart-wien")
    assert neustart is not None
    assert set(neustart.kinds) == {AgencyKind.cso, AgencyKind.probation, AgencyKind.case_manager}
    police = directory.agency("lpd-wien")
    assert police is not None and police.scope == "regional"
    for code, clearance in [
        ("jva-wien", Classification.professional),
        ("dsn", Classification.restricted),
        ("lpd-wien", Classification.restricted),
        ("sta-wien", Classification.restricted),
    ]:
        entry = directory.agency(code)
        assert entry is not None and entry.clearance == clearance
    languages = {a.code: a.language for a in directory.agencies}
    assert languages["neustart-wien"] == "de" and languages["caritas-migration"] == "en"
    assert all(a.time_zone == "Europe/Vienna" for a in directory.agencies)
    assert all(1 <= len(a.representatives) <= 2 for a in directory.agencies)


def test_default_path_comes_from_settings() -> None:
    assert load_directory() == load_directory(get_settings().directory)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda d: d["agencies"][1].update(code="neustart-wien"),
            "agencies[1] (neustart-wien).code",
        ),
        (lambda d: d["agencies"][1].update(kinds=["warden"]), "agencies[1] (jva-wien).kinds[0]"),
        (lambda d: d["agencies"][1].update(kinds=[]), "agencies[1] (jva-wien).kinds"),
        (lambda d: d["agencies"][1].update(kinds=["prison", "prison"]), "(jva-wien).kinds[1]"),
        (lambda d: d["agencies"][1].update(time_zone="Europe/Wein"), "(jva-wien).time_zone"),
        (lambda d: d["agencies"][1].update(representatives=[]), "(jva-wien).representatives"),
        (lambda d: d["agencies"][1].pop("representatives"), "(jva-wien).representatives"),
        (lambda d: d["agencies"][1].update(clearance="secret"), "(jva-wien).clearance"),
        (lambda d: d["agencies"][1].update(language="German"), "(jva-wien).language"),
        (lambda d: d["agencies"][1].update(fax="0"), "(jva-wien).fax"),
        (lambda d: d["agencies"][1].update(code="JVA Wien"), "agencies[1].code"),
        (
            lambda d: d["agencies"][2]["representatives"][0].update(code="jva-wien-1"),
            "agencies[2] (dsn).representatives[0].code",
        ),
        (lambda d: d.update(agencies=[]), "agencies"),
        (lambda d: d["agencies"][1].update(channels=[]), "(jva-wien).channels"),
        (lambda d: d["agencies"][1].pop("channels"), "(jva-wien).channels"),
        (
            lambda d: d["agencies"][1]["channels"][0].update(kind="fax"),
            "(jva-wien).channels[0].kind",
        ),
        (
            lambda d: d["agencies"][1]["channels"][0].update(tag="neustart-wien"),
            "agencies[1] (jva-wien).channels[0].tag",
        ),
    ],
)
def test_broken_directory_is_refused_naming_the_entry(change: Any, where: str) -> None:
    data = demo_data()
    change(data)
    message = refusal(data)
    assert message.startswith("dir.yaml: ")
    assert where in message


def test_refusals_never_repeat_a_representatives_name() -> None:
    data = demo_data()
    data["agencies"][0]["representatives"].append({"code": "Bad Code", "name": "Erika Muster"})
    data["agencies"][0]["representatives"].append({"code": "ok-code", "name": ""})
    message = refusal(data)
    assert "representatives[2].code" in message and "representatives[3].name" in message
    assert "Erika" not in message


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=r"nowhere\.yaml: file not found"):
        load_directory(tmp_path / "nowhere.yaml")
    (tmp_path / "twice.yaml").write_text(
        DEMO.read_text().replace("area: Wien", "area: Wien\n    area: Graz", 1)
    )
    with pytest.raises(DirectoryError, match="key 'area' is given twice"):
        load_directory(tmp_path / "twice.yaml")


def rows(session: Session) -> tuple[dict[str, Agency], dict[str, Representative]]:
    agencies = {a.code: a for a in session.exec(select(Agency)).all()}
    reps = {r.code: r for r in session.exec(select(Representative)).all()}
    return agencies, reps


def test_sync_inserts_updates_and_deactivates(engine: Engine) -> None:
    directory = load_directory(DEMO)
    with RecordSession(engine) as session:
        sync_directory(session, directory)
        session.commit()
    with RecordSession(engine) as session:
        agencies, reps = rows(session)
        assert set(agencies) == {a.code for a in directory.agencies}
        assert agencies["neustart-wien"].kinds == ["cso", "probation", "case_manager"]
        assert agencies["dsn"].clearance == Classification.restricted
        assert agencies["lpd-wien"].scope == "regional" and agencies["dsn"].scope is None
        assert reps["neustart-wien-2"].agency_id == agencies["neustart-wien"].id
        assert all(a.active for a in agencies.values()) and all(r.active for r in reps.values())
        ids = {code: a.id for code, a in agencies.items()}

    data = demo_data()
    data["agencies"] = [a for a in data["agencies"] if a["code"] != "ams-wien"]
    data["agencies"][0]["representatives"].pop()  # neustart-wien-2 leaves
    data["agencies"][1]["name"] = "Justizanstalt Wien-Josefstadt"
    data["agencies"][1]["kinds"] = ["prison", "social_services"]
    data["agencies"][1]["scope"] = "josefstadt"
    with RecordSession(engine) as session:
        sync_directory(session, parse_directory(data, "changed.yaml"))
        session.commit()
    with RecordSession(engine) as session:
        agencies, reps = rows(session)
        assert {code: a.id for code, a in agencies.items()} == ids  # upserted, never replaced
        assert not agencies["ams-wien"].active and not reps["ams-wien-1"].active
        assert not reps["neustart-wien-2"].active and reps["neustart-wien-1"].active
        assert agencies["jva-wien"].name == "Justizanstalt Wien-Josefstadt"
        assert agencies["jva-wien"].kinds == ["prison", "social_services"]
        assert agencies["jva-wien"].scope == "josefstadt"

    with RecordSession(engine) as session:  # back in the file: active again
        sync_directory(session, directory)
        session.commit()
    with RecordSession(engine) as session:
        agencies, reps = rows(session)
        assert all(a.active for a in agencies.values()) and all(r.active for r in reps.values())


def test_sync_is_all_or_nothing(engine: Engine) -> None:
    with RecordSession(engine) as session:
        sync_directory(session, load_directory(DEMO))
        session.rollback()  # what session_scope does when the block raises
    with RecordSession(engine) as session:
        assert rows(session) == ({}, {})


def test_a_representative_may_move_to_another_agency(engine: Engine) -> None:
    with RecordSession(engine) as session:
        sync_directory(session, load_directory(DEMO))
        session.commit()
    data = demo_data()
    moved = data["agencies"][0]["representatives"].pop()
    data["agencies"][1]["representatives"].append(moved)
    with RecordSession(engine) as session:
        sync_directory(session, parse_directory(data, "moved.yaml"))
        session.commit()
    with RecordSession(engine) as session:
        agencies, reps = rows(session)
        assert reps[moved["code"]].agency_id == agencies["jva-wien"].id
        assert reps[moved["code"]].active


codes = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)


@st.composite
def directory_data(draw: st.DrawFn) -> dict[str, Any]:
    agency_codes = draw(st.lists(codes, min_size=1, max_size=6, unique=True))
    agencies = []
    for code in agency_codes:
        kinds = draw(
            st.lists(st.sampled_from(list(AgencyKind)), min_size=1, max_size=3, unique=True)
        )
        agencies.append(
            {
                "code": code,
                "name": f"Agency {code}",
                "kinds": [str(k) for k in kinds],
                "time_zone": draw(st.sampled_from(["Europe/Vienna", "Europe/Madrid", "UTC"])),
                "language": draw(st.sampled_from(["de", "en", "es", "ca"])),
                "clearance": str(draw(st.sampled_from(list(Classification)))),
                "representatives": [
                    {"code": f"{code}-r{i}", "name": f"Demo Representative {i}"}
                    for i in range(draw(st.integers(1, 2)))
                ],
                "channels": [{"kind": "email", "tag": code}],
            }
        )
    return {"agencies": agencies}


@settings(max_examples=40, deadline=None)
@given(first=directory_data(), second=directory_data())
def test_sync_leaves_exactly_the_files_entries_active(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    try:
        for data in (first, second):
            directory = parse_directory(data, "generated.yaml")
            with RecordSession(engine) as session:
                sync_directory(session, directory)
                session.commit()
        with RecordSession(engine) as session:
            agencies, reps = rows(session)
        expected = Directory.model_validate(second)
        assert {c for c, a in agencies.items() if a.active} == {a.code for a in expected.agencies}
        assert {c for c, r in reps.items() if r.active} == {
            r.code for a in expected.agencies for r in a.representatives
        }
        assert set(agencies) == {a["code"] for d in (first, second) for a in d["agencies"]}
    finally:
        engine.dispose()


@settings(max_examples=40, deadline=None)
@given(directory_data(), st.data())
def test_a_duplicate_code_is_always_refused(data: dict[str, Any], draw: st.DataObject) -> None:
    broken = copy.deepcopy(data)
    source = draw.draw(st.sampled_from(broken["agencies"]))
    broken["agencies"].append(
        copy.deepcopy(source) | {"representatives": [{"code": "fresh-1", "name": "N"}]}
    )
    message = refusal(broken)
    assert f"agencies[{len(broken['agencies']) - 1}] ({source['code']}).code: " in message


BARCELONA = PROJECT_ROOT / "config" / "directory.barcelona.yaml"


def test_barcelona_demo_directory_has_both_police_forces_and_a_case_manager() -> None:
    directory = load_directory(BARCELONA)
    police = {a.code: a.scope for a in directory.agencies if AgencyKind.police in a.kinds}
    assert police == {"guardia-urbana-bcn": "local", "mossos": "regional"}
    managers = [a.code for a in directory.agencies if AgencyKind.case_manager in a.kinds]
    assert managers == ["smpa-bcn"]
    smpa = directory.agency("smpa-bcn")
    assert smpa is not None and AgencyKind.probation in smpa.kinds


def test_barcelona_channels_each_have_an_apprise_url() -> None:
    from models.config.directory import channel_tags
    from models.messaging.channels import check_tags, load_apprise_config

    config = load_apprise_config(PROJECT_ROOT / "config" / "apprise.barcelona.yaml")
    check_tags(config.tags, channel_tags(load_directory(BARCELONA)))
    assert set(config.tags) == channel_tags(load_directory(BARCELONA))


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("Local", "String should match pattern"),
        ("", "String should match pattern"),
        ("a" * 65, "String should have at most 64 characters"),
    ],
)
def test_a_scope_that_is_not_a_slug_is_refused_naming_the_entry(scope: str, reason: str) -> None:
    data = demo_data()
    data["agencies"][3]["scope"] = scope
    assert f"dir.yaml: agencies[3] (lpd-wien).scope: {reason}" in refusal(data)
