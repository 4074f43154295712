"""The shipped governance profiles: each loads, the schema file is current, and each proposes
sensible participants from its demo directory (one lead of a lead kind, the core group, no
kind a stage rule excludes), with the paper's cases per profile: Catalonia with and without
needs, Neustart's two conference types, before trial and after release."""

import json

import pytest

from models.config.directory import load_directory
from models.config.profile import Profile, export_profile_schema, load_profile
from models.config.settings import PROJECT_ROOT
from models.rules.stakeholders import AgencyView, Selection, propose_participants
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    AgencyKind,
    Classification,
    ConferenceType,
    ConsentScope,
    Need,
    Phase,
    Role,
    Stage,
)

PROFILES_DIR = PROJECT_ROOT / "config" / "profiles"
SCHEMA_FILE = PROJECT_ROOT / "docs" / "profile.schema.json"
NAMES = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
DEMO = [
    AgencyView.of_entry(a)
    for a in load_directory(PROJECT_ROOT / "config" / "directory.demo.yaml").agencies
]
BARCELONA = [
    AgencyView.of_entry(a)
    for a in load_directory(PROJECT_ROOT / "config" / "directory.barcelona.yaml").agencies
]
#: Each shipped profile's own demo directory.
HOME = {"catalonia": BARCELONA}
KINDS = {a.code: a.kinds for a in DEMO + BARCELONA}
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
    name: str,
    stage: Stage,
    conference_type: ConferenceType,
    needs: list[Need] | None = None,
    agencies: list[AgencyView] | None = None,
) -> Selection:
    return propose_participants(
        profile=profile(name),
        agencies=HOME.get(name, DEMO) if agencies is None else agencies,
        stage=stage,
        conference_type=conference_type,
        needs=list(Need) if needs is None else needs,
    )


def roles(selection: Selection) -> dict[str, Role]:
    return {p.agency_code: p.role for p in selection.proposals}


def test_the_three_profiles_are_shipped() -> None:
    assert {"generic", "catalonia", "austria-neustart"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_profile_loads(name: str) -> None:
    assert profile(name).name == name


def test_schema_file_is_current() -> None:
    expected = json.dumps(export_profile_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "docs/profile.schema.json is out of date with models/config/profile.py; regenerate it with:\n"
        '  .venv/bin/python -c "import json; from models.config.profile import export_profile_schema; '
        "open('docs/profile.schema.json', 'w').write("
        'json.dumps(export_profile_schema(), indent=2, sort_keys=True) + chr(10))"'
    )


@pytest.mark.parametrize(("name", "stage", "conference_type"), SHIPPED)
def test_exactly_one_lead_of_a_lead_kind_and_the_core_group(
    name: str, stage: Stage, conference_type: ConferenceType
) -> None:
    shipped = profile(name)
    rules = shipped.rules_for(conference_type)
    selection = propose(name, stage, conference_type)
    leads = [p for p in selection.proposals if p.role == Role.lead]
    lead_kinds = rules.lead_kinds_by_stage.get(stage) or rules.lead_kinds
    # One lead of a lead kind, plus one co-lead per co-lead kind the lead does not cover.
    assert KINDS[leads[0].agency_code] & {str(k) for k in lead_kinds}
    co_leads = [k for k in rules.co_lead_kinds if k not in KINDS[leads[0].agency_code]]
    assert len(leads) == 1 + len(co_leads)
    for co_lead, kind in zip(leads[1:], co_leads, strict=True):
        assert kind in KINDS[co_lead.agency_code]
    assert len({p.agency_code for p in selection.proposals}) == len(selection.proposals)
    # Every seat of the stage's core group is filled by an agency of its own, in its home
    # directory, unless a stage rule leaves its kind out.
    excluded = {str(k) for k in shipped.stage_exclusions(stage)}
    home = {a.code: a for a in HOME.get(name, DEMO)}
    filled: set[str] = set()
    for seat in shipped.core_for(conference_type, stage):
        if seat.kind in excluded:
            continue
        fits = [
            p.agency_code
            for p in selection.proposals
            if seat.fits(home[p.agency_code].kinds, home[p.agency_code].scope)
        ]
        assert fits, (seat, selection.proposals)
        if seat.scope is not None:
            assert not set(fits) & filled, seat  # a scoped seat has an agency of its own
            filled.update(fits)
    assert not [w for w in selection.warnings if w.startswith(("core group", "co-lead"))]
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


ALWAYS_PRESENT = {
    "guardia-urbana-bcn": Role.core,  # local police
    "mossos": Role.core,  # regional police (Mossos d'Esquadra)
    "smpa-bcn": Role.core,  # the case manager (probation service, kind case_manager)
}


@pytest.mark.parametrize("conference_type", list(ConferenceType))
@pytest.mark.parametrize("stage", [Stage.custody, Stage.pre_release, Stage.post_release])
def test_catalonia_prison_unit_and_municipality_lead_with_both_police_forces_and_case_manager(
    stage: Stage, conference_type: ConferenceType
) -> None:
    catalonia = profile("catalonia")
    rules = catalonia.rules_for(conference_type)
    assert rules.lead_kinds == [AgencyKind.prison, AgencyKind.municipality]
    assert rules.co_lead_kinds == [AgencyKind.municipality]
    assert rules.coordinator_kinds == [AgencyKind.municipality]
    selection = propose("catalonia", stage, conference_type, needs=[])
    assert roles(selection) == {
        "dgap-unitat": Role.lead,  # the prison service's specialised unit
        "ajuntament-bcn": Role.lead,  # the municipality, co-lead
        **ALWAYS_PRESENT,
    }
    coordinating = [p.agency_code for p in selection.proposals if p.coordinates]
    assert coordinating == ["ajuntament-bcn"]  # the co-lead also coordinates
    rules_of = {p.agency_code: p.rule for p in selection.proposals}
    assert rules_of["guardia-urbana-bcn"].endswith("in profile catalonia (police, scope local)")
    assert rules_of["mossos"].endswith("in profile catalonia (police, scope regional)")
    assert rules_of["smpa-bcn"].endswith("in profile catalonia (case_manager)")
    # Five in the core group: within Catalonia's cap, so no warning.
    assert selection.warnings == []
    # Nobody is limited to some phases: the paper says nothing of it for Catalonia.
    assert all(p.phases is None for p in selection.proposals)


@pytest.mark.parametrize("conference_type", list(ConferenceType))
def test_catalonia_before_trial_the_municipality_leads_with_prosecution_and_court(
    conference_type: ConferenceType,
) -> None:
    selection = propose("catalonia", Stage.pre_trial, conference_type, needs=[])
    assert roles(selection) == {
        "ajuntament-bcn": Role.lead,  # leads and coordinates; no prison unit before trial
        **ALWAYS_PRESENT,
        "fiscalia-an": Role.core,
        "audiencia-nacional": Role.core,
    }
    assert selection.lead.coordinates
    court = next(p for p in selection.proposals if p.agency_code == "audiencia-nacional")
    assert court.rule == (
        f"core group of {conference_type} conferences in profile catalonia at pre_trial (court)"
    )
    assert selection.warnings == []  # six: exactly Catalonia's core_cap


def test_catalonia_consent_and_client_and_family() -> None:
    catalonia = profile("catalonia")
    assert not catalonia.rules_for(ConferenceType.security).client_and_family
    social = catalonia.rules_for(ConferenceType.social_network)
    assert social.client_and_family and social.consent_required
    assert social.consent_scopes == [ConsentScope.social_network_conference]
    assert social.client_phases() == [Phase.information, Phase.decision]
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


@pytest.mark.parametrize("stage", OPEN_STAGES)
def test_catalonia_with_needs_brings_in_the_papers_other_stakeholders_besides_the_core(
    stage: Stage,
) -> None:
    needs = [Need.migration, Need.mentoring, Need.mental_health, Need.family_support]
    selection = propose("catalonia", stage, ConferenceType.social_network, needs=needs)
    dependent = {p.agency_code for p in selection.proposals if p.role == Role.case_dependent}
    assert dependent == {
        "caritas-bcn",  # migrant charities
        "mentoria-bcn",  # mentors
        "csma-bcn",
        "families-bcn",
        "serveis-socials-bcn",  # welfare services (family support)
    }
    # Both police forces and the case manager, whatever the needs.
    assert ALWAYS_PRESENT.items() <= roles(selection).items()
    assert selection.warnings == []


def test_catalonia_where_the_directory_lacks_a_police_force_selection_names_it() -> None:
    without_local = [a for a in BARCELONA if a.code != "guardia-urbana-bcn"]
    selection = propose(
        "catalonia", Stage.custody, ConferenceType.security, needs=[], agencies=without_local
    )
    assert "mossos" in roles(selection)
    assert selection.warnings == [
        "core group: no active agency of kind police with scope local in the directory "
        "(core_kinds.security[0] of profile catalonia)"
    ]
    # The regional police never stands in for the local one.
    assert [p.agency_code for p in selection.proposals if p.role == Role.core] == [
        "mossos",
        "smpa-bcn",
    ]


def test_neustart_security_conference_is_led_by_the_security_service() -> None:
    rules = profile("austria-neustart").rules_for(ConferenceType.security)
    assert rules.lead_kinds[0] == AgencyKind.security_service
    assert not rules.client_and_family and not rules.consent_required
    assert rules.consent_scopes == [] and rules.client_phases() == []
    assert rules.phases == [Phase.information, Phase.decision]
    for stage in (Stage.custody, Stage.pre_release):
        selection = propose("austria-neustart", stage, ConferenceType.security, needs=[])
        assert selection.lead.agency_code == "dsn"
        assert roles(selection) == {
            "dsn": Role.lead,
            "jva-wien": Role.core,
            "neustart-wien": Role.core,  # the CSO takes part as the probation service
        }
        assert selection.warnings == []
        assert all(p.phases is None for p in selection.proposals)


def test_neustart_security_conference_before_trial_and_after_release() -> None:
    pre_trial = propose("austria-neustart", Stage.pre_trial, ConferenceType.security, needs=[])
    assert roles(pre_trial) == {
        "dsn": Role.lead,
        "neustart-wien": Role.core,
        "sta-wien": Role.core,  # the prosecution and the court before trial ...
        "lg-wien": Role.core,
    }  # ... and no prison
    assert pre_trial.warnings == []
    post = propose("austria-neustart", Stage.post_release, ConferenceType.security, needs=[])
    # The security service is left out after release: the police lead.
    assert roles(post) == {"lpd-wien": Role.lead, "jva-wien": Role.core, "neustart-wien": Role.core}


def test_neustart_social_network_conference_is_led_by_neustart_with_welfare_services() -> None:
    rules = profile("austria-neustart").rules_for(ConferenceType.social_network)
    assert rules.lead_kinds == [AgencyKind.cso]
    assert rules.coordinator_kinds == [AgencyKind.cso]
    assert rules.client_and_family and rules.consent_required
    assert rules.consent_scopes == [
        ConsentScope.social_network_conference,
        ConsentScope.family_involvement,
    ]
    assert rules.phases == [Phase.information, Phase.family_only, Phase.decision]
    # The family-only phase is the client's and family's alone; professionals attend the rest.
    assert rules.client_phases() == rules.phases
    assert profile("austria-neustart").phases_for(
        ConferenceType.social_network, ["social_services"]
    ) == [Phase.information, Phase.decision]
    for stage in OPEN_STAGES:
        selection = propose("austria-neustart", stage, ConferenceType.social_network, needs=[])
        assert selection.lead.agency_code == "neustart-wien"
        assert "also coordinates (cso)" in selection.lead.rule
        assert selection.warnings == []
    expected = {
        Stage.pre_trial: {"sta-wien", "lg-wien", "sozialzentrum-wien"},
        Stage.custody: {"sta-wien", "sozialzentrum-wien"},
        Stage.pre_release: {"sta-wien", "sozialzentrum-wien"},
        # After release the prosecutor's office is left out by default.
        Stage.post_release: {"sozialzentrum-wien"},
    }
    for stage, core in expected.items():
        selection = propose("austria-neustart", stage, ConferenceType.social_network, needs=[])
        assert roles(selection) == {
            "neustart-wien": Role.lead,  # cso and probation
            **dict.fromkeys(core, Role.core),
        }, stage


def test_generic_before_trial_the_court_attends_the_decision_only() -> None:
    selection = propose("generic", Stage.pre_trial, ConferenceType.security, needs=[])
    assert roles(selection) == {
        "dsn": Role.lead,
        "neustart-wien": Role.core,
        "sta-wien": Role.core,
        "lg-wien": Role.core,
    }  # no prison before trial
    court = next(p for p in selection.proposals if p.agency_code == "lg-wien")
    assert court.phases == (Phase.decision,)
    assert court.rule == (
        "core group of security conferences in profile generic at pre_trial (court); "
        "attends decision only"
    )
    assert all(p.phases is None for p in selection.proposals if p.agency_code != "lg-wien")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("conference_type", list(ConferenceType))
def test_after_release_no_security_or_criminal_justice_actor_is_proposed(
    name: str, conference_type: ConferenceType
) -> None:
    selection = propose(name, Stage.post_release, conference_type)
    for proposal in selection.proposals:
        assert not KINDS[proposal.agency_code] & {"security_service", "prosecution", "court"}


@pytest.mark.parametrize("stage", OPEN_STAGES)
@pytest.mark.parametrize("conference_type", list(ConferenceType))
def test_neustart_raises_no_client_or_family_issue(
    stage: Stage, conference_type: ConferenceType
) -> None:
    selection = propose("austria-neustart", stage, conference_type)
    assert {p.role for p in selection.proposals} <= PROFESSIONAL_ROLES
    for warning in selection.warnings:
        assert not any(word in warning for word in ("client", "family", "consent")), warning
