"""A step is one module and its registration: a toy step (tests/toy_step.py), named in
CASECONF_STEP_MODULES, is asked in the phase a test profile gives it, between information and
decision, in a real Prefect server, and the case walks on to its review. A profile naming a phase
no step asks is refused when loaded, with the file, the phase and why."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.schemas.objects import StateType
from sqlmodel import col, select

from deployments.__main__ import main
from models.config.profile import ProfileError, parse_profile
from models.config.settings import PROJECT_ROOT, get_settings
from models.record.database import session_scope
from models.record.tables import AuditEvent, Case, Conference, Effect
from models.steps import registry
from models.vocabulary import Phase
from tests.prefect_harness import FINAL, Serving, Walk, wait_for

TOY = "tests.toy_step"
PROFILES = PROJECT_ROOT / "config" / "profiles"
REP = "neustart-wien-1"


def toy_profile(phases: list[str]) -> dict[str, Any]:
    """The generic profile as `toy`, its security conferences with these phases."""
    data = yaml.safe_load((PROFILES / "generic.yaml").read_text())
    data["name"] = "toy"
    data["default_conference_type"] = "security"
    data["conference_types"]["security"]["phases"] = phases
    return data


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy step's module named in the settings, the registry put back afterwards."""
    monkeypatch.setattr(registry, "_STEPS", dict(registry._STEPS))
    monkeypatch.setattr(registry, "_INSTALLED", set(registry._INSTALLED))
    monkeypatch.setenv("CASECONF_STEP_MODULES", f'["{TOY}"]')
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_registered_step_is_asked_in_its_phase_and_a_profile_may_list_it(
    toy_registered: None,
) -> None:
    [toy] = registry.steps_for("check_in")
    assert toy.name == "check-in" and registry.step("check-in") is toy
    assert [s.name for s in registry.steps_for(Phase.information)] == [
        "action-review",
        "information",
    ]
    profile = parse_profile(toy_profile(["information", "check_in", "decision"]), "toy.yaml")
    rules = profile.conference_types["security"]
    assert registry.missing_steps(profile) == []
    assert rules.phase_after(Phase.information) == "check_in"
    assert rules.phase_after("check_in") == Phase.decision
    assert rules.phase_after(Phase.decision) == Phase.release
    assert registry.late_after_days()["check_in"] == 2
    assert "check_in" in registry.waiting_phases()


def test_a_phase_no_step_asks_is_named_and_the_order_is_kept(toy_registered: None) -> None:
    typo = parse_profile(toy_profile(["information", "check_inn", "decision"]), "toy.yaml")
    assert registry.missing_steps(typo) == [
        "conference_types.security.phases[1]: no step is registered for phase 'check_inn' "
        "(an installation's own steps are named in CASECONF_STEP_MODULES)"
    ]
    with pytest.raises(ProfileError, match=r"phases: information comes first and decision last"):
        parse_profile(toy_profile(["check_in", "information", "decision"]), "toy.yaml")
    with pytest.raises(ProfileError, match=r"phases\[1\]: 'release' is not a conference phase"):
        parse_profile(toy_profile(["information", "release", "decision"]), "toy.yaml")


def test_load_refuses_a_profile_whose_phase_no_step_asks(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for shipped in PROFILES.glob("*.yaml"):
        shutil.copy(shipped, tmp_path)
    (tmp_path / "toy.yaml").write_text(
        yaml.safe_dump(toy_profile(["information", "check_in", "decision"]))
    )
    monkeypatch.setenv("CASECONF_PROFILES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["load"]) == 2
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().err.startswith(
        f"caseconf: refused: {tmp_path / 'toy.yaml'}: conference_types.security.phases[1]: no "
        "step is registered for phase 'check_in'"
    )


class _WithToyStep:
    """The session's Prefect server as a serving process sees it: the toy step's module named,
    and a profiles folder that holds the toy profile beside the shipped ones."""

    def __init__(self, server: Any, profiles: Path) -> None:
        self.server, self.profiles = server, profiles
        self.api_url, self.home = server.api_url, server.home

    def env(self) -> dict[str, str]:
        return {
            **self.server.env(),
            "CASECONF_STEP_MODULES": f'["{TOY}"]',
            "CASECONF_PROFILES_DIR": str(self.profiles),
        }


@pytest.fixture
def serving_toy(serving: Serving, prefect_server: Any, tmp_path: Path) -> Iterator[Serving]:
    """The session's serving process, restarted with the toy step registered."""
    for shipped in PROFILES.glob("*.yaml"):
        shutil.copy(shipped, tmp_path)
    (tmp_path / "toy.yaml").write_text(
        yaml.safe_dump(toy_profile(["information", "check_in", "decision"]))
    )
    serving.stop()
    toy = Serving(_WithToyStep(prefect_server, tmp_path), serving.log_path)  # type: ignore[arg-type]
    toy.start()
    try:
        yield toy
    finally:
        toy.stop()
        serving.start()


@pytest.mark.flow
def test_a_case_walks_through_a_toy_step_between_information_and_decision(
    serving_toy: Serving, database: str, mail: Any
) -> None:
    today = datetime.now(UTC).date()  # read once: the walk's dates count from it
    walk = Walk.refer("neustart-wien", stage="custody", profile="toy")
    walk.waits_at("referral")
    walk.answer(file_number="TOY-1", needs=[], acting_representative=REP)
    run = walk.waits_at("preparation")
    reference = run.name
    walk.answer(
        conference_type="security",
        starts_at=f"{today + timedelta(days=10)}T10:00:00",
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    walk.waits_at("stakeholders")
    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    walk.answer(contributions=[], acting_representative=REP)

    walk.waits_at("check-in")
    assert "Has every participant confirmed?" in walk.description()
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        conference = session.exec(select(Conference).where(Conference.case_id == case.id)).one()
        assert (case.phase, conference.phase) == ("check_in", "check_in")
    walk.answer(everyone_reached=True, acting_representative=REP)

    walk.waits_at("decision")
    walk.answer(
        decisions=["Go on"],
        next_review_on=str(today + timedelta(days=60)),
        acting_representative=REP,
    )
    done = wait_for(walk.run_id, FINAL)
    assert done.state is not None and done.state.type == StateType.COMPLETED, done.state
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        assert case.phase == Phase.review_scheduled
        key = f"{reference.lower()}-c1-check-in"
        effect = session.get(Effect, key)
        assert effect is not None and effect.result == {"reached": True}
        checked = session.exec(
            select(AuditEvent).where(
                AuditEvent.case_id == case.id, col(AuditEvent.action) == "toy.checked_in"
            )
        ).all()
        assert [a.detail for a in checked] == ["everyone reached: True"]
