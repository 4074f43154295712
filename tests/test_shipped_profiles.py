"""The shipped governance profiles: each loads, the schema file is current, and each proposes
sensible participants from the demo directory (one lead of a lead kind, the core group, no
kind a stage rule excludes)."""

import json

import pytest

from models.directory import load_directory
from models.profile import Profile, export_profile_schema, load_profile
from models.settings import PROJECT_ROOT
from models.stakeholders import AgencyView, Selection, propose_participants
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    AgencyKind,
    Classification,
    ConferenceType,
    ConsentScope,
    Need,
    Role,
    Stage,
)

PROFILES_DIR = PROJECT_ROOT / "config" / "profiles"
SCHEMA_FILE = PROJECT_ROOT / "docs" / "profile.schema.json"
NAMES = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
DEMO = [
    AgencyView(a.code, frozenset(str(k) for k in a.kinds))
    for a in load_directory(PROJECT_ROOT / "config" / "directory.demo.yaml").agencies
]
KINDS = {a.code: a.kinds for a in DEMO}
OPEN_STAGES = [s for s in Stage if s != Stage.closed]
SHIPPED = [
    (name, stage, ctype)
    for name in NAMES
    for stage in OPEN_STAGES
    for ctype in load_profile(name, PROFILES_DIR).conference_types
]


def profile(name: str) -> Profile:
    return load_profile(name, PROFILES_DIR)


def propose(
    name: str, stage: Stage, conference_type: ConferenceType, needs: list[Need] | None = None
) -> Selection:
    return propose_participants(
        profile=profile(name),
        agencies=DEMO,
        stage=stage,
        conference_type=conference_type,
        needs=list(Need) if needs is None else needs,
    )


def covered_kinds(selection: Selection) -> set[str]:
    return {kind for p in selection.proposals for kind in KINDS[p.agency_code]}


def test_the_three_profiles_are_shipped() -> None:
    assert {"generic", "catalonia", "austria-neustart"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_profile_loads(name: str) -> None:
    assert profile(name).name == name


def test_schema_file_is_current() -> None:
    expected = json.dumps(export_profile_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "docs/profile.schema.json is out of date with models/profile.py; regenerate it with:\n"
        '  .venv/bin/python -c "import json; from models.profile import export_profile_schema; '
        "open('docs/profile.schema.json', 'w').write("
        'json.dumps(export_profile_schema(), indent=2, sort_keys=True) + chr(10))"'
    )


@pytest.mark.parametrize(("name", "stage", "conference_type"), SHIPPED)
def test_exactly_one_lead_of_a_lead_kind_and_the_core_group(
    name: str, stage: Stage, conference_type: ConferenceType
) -> None:
    rules = profile(name).rules_for(conference_type)
    selection = propose(name, stage, conference_type)
    leads = [p for p in selection.proposals if p.role == Role.lead]
    # One lead of a lead kind, plus one co-lead per co-lead kind the lead does not cover.
    assert len(leads) == 1 + len(rules.co_lead_kinds)
    assert KINDS[leads[0].agency_code] & {str(k) for k in rules.lead_kinds}
    for co_lead, kind in zip(leads[1:], rules.co_lead_kinds, strict=True):
        assert kind in KINDS[co_lead.agency_code]
    assert len({p.agency_code for p in selection.proposals}) == len(selection.proposals)
    excluded = {str(k) for k in profile(name).stage_exclusions(stage)}
    core = {str(k) for k in profile(name).core_kinds.get(conference_type, [])}
    assert core - excluded <= covered_kinds(selection)
    # Client and family are never proposed as agencies.
    assert {p.role for p in selection.proposals} <= PROFESSIONAL_ROLES


@pytest.mark.parametrize("name", NAMES)
def test_post_release_security_conference_leaves_excluded_kinds_out(name: str) -> None:
    if ConferenceType.security not in profile(name).conference_types:
        pytest.skip(f"profile {name} has no security conferences")
    excluded = {str(k) for k in profile(name).stage_exclusions(Stage.post_release)}
    assert excluded, f"profile {name} excludes nobody after release"
    selection = propose(name, Stage.post_release, ConferenceType.security)
    for proposal in selection.proposals:
        assert not KINDS[proposal.agency_code] & excluded, proposal


def test_catalonia_prison_unit_and_municipality_co_lead_with_police_and_case_manager() -> None:
    catalonia = profile("catalonia")
    for ctype in (ConferenceType.security, ConferenceType.social_network):
        rules = catalonia.rules_for(ctype)
        assert rules.lead_kinds == [AgencyKind.prison, AgencyKind.municipality]
        assert rules.co_lead_kinds == [AgencyKind.municipality]
        assert rules.coordinator_kinds == [AgencyKind.municipality]
        assert {AgencyKind.police, AgencyKind.probation} <= set(catalonia.core_kinds[ctype])
        for stage in OPEN_STAGES:
            selection = propose("catalonia", stage, ctype, needs=[])
            roles = {p.agency_code: p.role for p in selection.proposals}
            assert roles == {
                "jva-wien": Role.lead,  # the prison service's unit
                "magistrat-wien": Role.lead,  # the municipality, co-lead
                "lpd-wien": Role.core,  # police
                "neustart-wien": Role.core,  # probation: the case manager
            }
            coordinating = [p.agency_code for p in selection.proposals if p.coordinates]
            assert coordinating == ["magistrat-wien"]  # the co-lead also coordinates
            assert selection.warnings == []
    assert not catalonia.rules_for(ConferenceType.security).client_and_family
    social = catalonia.rules_for(ConferenceType.social_network)
    assert social.client_and_family and social.consent_required
    assert social.consent_scopes == [ConsentScope.social_network_conference]
    assert catalonia.review_weeks == 12


@pytest.mark.parametrize("name", NAMES)
def test_restricted_goes_to_security_authorities_in_security_conferences_only(name: str) -> None:
    shipped = profile(name)
    for kinds in (["security_service"], ["police"], ["prosecution"]):
        assert shipped.clearance_for(ConferenceType.security, kinds) == Classification.restricted
        assert (
            shipped.clearance_for(ConferenceType.social_network, kinds)
            == Classification.professional
        )
    # Neustart (cso and probation) may take part in security conferences: professional only.
    assert (
        shipped.clearance_for(ConferenceType.security, ["cso", "probation"])
        == Classification.professional
    )


@pytest.mark.parametrize("name", ["generic", "austria-neustart"])
def test_family_only_phase_needs_consent_to_involve_the_family(name: str) -> None:
    social = profile(name).rules_for(ConferenceType.social_network)
    assert social.consent_scopes == [
        ConsentScope.social_network_conference,
        ConsentScope.family_involvement,
    ]
    assert profile(name).rules_for(ConferenceType.security).consent_scopes == []


def test_neustart_follow_up_conference_three_months_after_release() -> None:
    assert profile("austria-neustart").post_release_review_weeks == 13
    assert profile("generic").post_release_review_weeks is None


def test_catalonia_needs_bring_in_the_papers_other_stakeholders() -> None:
    needs = [Need.migration, Need.mentoring, Need.mental_health, Need.family_support]
    selection = propose("catalonia", Stage.custody, ConferenceType.social_network, needs=needs)
    dependent = {p.agency_code for p in selection.proposals if p.role == Role.case_dependent}
    assert dependent == {"caritas-migration", "derad-mentoring", "psd-wien", "familienberatung"}


def test_neustart_security_conference_is_led_by_the_security_service() -> None:
    rules = profile("austria-neustart").rules_for(ConferenceType.security)
    assert rules.lead_kinds[0] == AgencyKind.security_service
    assert not rules.client_and_family and not rules.consent_required
    assert "family_only" not in rules.phases
    for stage in (Stage.pre_trial, Stage.custody, Stage.pre_release):
        selection = propose("austria-neustart", stage, ConferenceType.security, needs=[])
        assert selection.lead.agency_code == "dsn"
        assert {p.agency_code: p.role for p in selection.proposals} == {
            "dsn": Role.lead,
            "jva-wien": Role.core,
            "neustart-wien": Role.core,  # the CSO takes part as the probation service
        }
        assert selection.warnings == []


def test_neustart_social_network_conference_is_led_by_neustart() -> None:
    rules = profile("austria-neustart").rules_for(ConferenceType.social_network)
    assert rules.lead_kinds == [AgencyKind.cso]
    assert rules.coordinator_kinds == [AgencyKind.cso]
    assert rules.client_and_family and rules.consent_required
    assert [str(p) for p in rules.phases] == ["information", "family_only", "decision"]
    for stage in OPEN_STAGES:
        selection = propose("austria-neustart", stage, ConferenceType.social_network, needs=[])
        assert selection.lead.agency_code == "neustart-wien"
        assert "also coordinates (cso)" in selection.lead.rule
        assert selection.warnings == []
    custody = propose("austria-neustart", Stage.custody, ConferenceType.social_network, needs=[])
    assert {p.agency_code: p.role for p in custody.proposals} == {
        "neustart-wien": Role.lead,  # cso and probation
        "sta-wien": Role.core,  # the public prosecutor's office
    }


@pytest.mark.parametrize("stage", OPEN_STAGES)
@pytest.mark.parametrize("conference_type", list(ConferenceType))
def test_neustart_raises_no_client_or_family_issue(
    stage: Stage, conference_type: ConferenceType
) -> None:
    selection = propose("austria-neustart", stage, conference_type)
    assert {p.role for p in selection.proposals} <= PROFESSIONAL_ROLES
    for warning in selection.warnings:
        assert not any(word in warning for word in ("client", "family", "consent")), warning
