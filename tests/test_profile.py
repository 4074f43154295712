"""Governance profiles: the shipped profile loads, broken ones are refused naming the path."""

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from models.config.profile import (
    CoreSlot,
    Profile,
    ProfileError,
    export_profile_schema,
    load_profile,
    parse_profile,
)
from models.config.settings import PROJECT_ROOT, get_settings
from models.vocabulary import (
    AgencyKind,
    Classification,
    ConferenceType,
    ConsentScope,
    Need,
    Phase,
    Stage,
)

PROFILES = PROJECT_ROOT / "config" / "profiles"

kinds = st.sampled_from(list(AgencyKind))


@st.composite
def type_rules(draw: st.DrawFn) -> dict[str, Any]:
    client = draw(st.booleans())
    family_only = client and draw(st.booleans())
    return {
        "phases": ["information", *(["family_only"] if family_only else []), "decision"],
        "consent_required": client and draw(st.booleans()),
        "client_and_family": client,
        "lead_kinds": [str(k) for k in draw(st.lists(kinds, min_size=1, max_size=4, unique=True))],
        "coordinator_kinds": [str(k) for k in draw(st.lists(kinds, max_size=3, unique=True))],
    }


@st.composite
def profile_data(draw: st.DrawFn) -> dict[str, Any]:
    """Valid profile data, as a YAML file would hold it."""
    types = draw(st.lists(st.sampled_from(list(ConferenceType)), min_size=1, unique=True))
    stage_rules = []
    for stage in draw(st.lists(st.sampled_from(list(Stage)), max_size=3, unique=True)):
        excluded = draw(st.lists(kinds, min_size=1, max_size=6, unique=True))
        cut = draw(st.integers(0, len(excluded)))
        for hard, part in ((True, excluded[:cut]), (False, excluded[cut:])):
            if part:
                stage_rules.append(
                    {
                        "stage": str(stage),
                        "exclude_kinds": [str(k) for k in part],
                        "hard": hard,
                        "reason": "generated rule",
                    }
                )
    needs = draw(st.lists(st.sampled_from(list(Need)), max_size=len(Need), unique=True))
    return {
        "name": "generated",
        "title": "A generated profile",
        "conference_types": {str(t): draw(type_rules()) for t in types},
        "default_conference_type": str(draw(st.sampled_from(types))),
        "core_kinds": {
            str(t): [str(k) for k in draw(st.lists(kinds, max_size=4, unique=True))] for t in types
        },
        "core_cap": draw(st.integers(1, 8)),
        "need_kinds": {
            str(n): [str(k) for k in draw(st.lists(kinds, min_size=1, max_size=3, unique=True))]
            for n in needs
        },
        "stage_rules": stage_rules,
        "review_weeks": draw(st.integers(1, 104)),
    }


def generic_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROFILES / "generic.yaml").read_text())
    return data


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, "broken.yaml")
    return str(caught.value)


def test_generic_profile_loads_with_the_papers_recommendations() -> None:
    profile = load_profile("generic", PROFILES)
    assert profile.name == "generic"
    assert profile.default_conference_type == ConferenceType.social_network
    security = profile.conference_types[ConferenceType.security]
    assert security.phases == [Phase.information, Phase.decision]
    assert not security.consent_required and not security.client_and_family
    assert security.lead_kinds == [AgencyKind.security_service, AgencyKind.police]
    social = profile.conference_types[ConferenceType.social_network]
    assert social.phases == [Phase.information, Phase.family_only, Phase.decision]
    assert social.consent_required and social.client_and_family
    assert social.lead_kinds == [AgencyKind.cso, AgencyKind.probation]
    assert social.coordinator_kinds == [AgencyKind.cso]
    assert profile.core_kinds[ConferenceType.security] == [
        CoreSlot(kind=AgencyKind.prison),
        CoreSlot(kind=AgencyKind.probation),
    ]
    assert [s.kind for s in profile.core_kinds[ConferenceType.social_network]] == [
        AgencyKind.probation,
        AgencyKind.cso,
    ]
    # Before trial: the prosecution and the court, not the prison.
    assert [s.kind for s in profile.core_for(ConferenceType.security, Stage.pre_trial)] == [
        AgencyKind.probation,
        AgencyKind.prosecution,
        AgencyKind.court,
    ]
    assert (
        profile.core_for(ConferenceType.security, Stage.custody)
        == (profile.core_kinds[ConferenceType.security])
    )
    assert set(profile.need_kinds) == set(Need)
    assert profile.need_kinds[Need.housing] == [AgencyKind.housing, AgencyKind.municipality]
    assert profile.need_kinds[Need.migration] == [AgencyKind.migrant_charity]
    (rule,) = profile.stage_rules
    assert rule.stage == Stage.post_release and not rule.hard
    assert set(rule.exclude_kinds) == {
        AgencyKind.security_service,
        AgencyKind.prosecution,
        AgencyKind.court,
    }
    assert profile.review_weeks == 12


def test_load_profile_defaults_to_the_settings_folder() -> None:
    assert load_profile("generic") == load_profile("generic", get_settings().profiles_dir)


def test_load_profile_uses_the_given_folder(tmp_path: Path) -> None:
    data = generic_data() | {"name": "elsewhere"}
    (tmp_path / "elsewhere.yaml").write_text(yaml.safe_dump(data))
    assert load_profile("elsewhere", tmp_path).name == "elsewhere"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda d: d["conference_types"]["security"]["lead_kinds"].append("warden"),
            "conference_types.security.lead_kinds[2]",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(client_and_family=False),
            "conference_types.social_network.phases",
        ),
        (
            lambda d: d["conference_types"]["security"].update(consent_required=True),
            "conference_types.security.consent_required",
        ),
        (
            lambda d: d["conference_types"]["security"].update(phases=["information"]),
            "conference_types.security.phases",
        ),
        (
            lambda d: d["conference_types"]["security"].update(phases=["decision", "information"]),
            "conference_types.security.phases",
        ),
        (
            lambda d: d["conference_types"]["security"].update(
                phases=["information", "release", "decision"]
            ),
            "conference_types.security.phases[1]",
        ),
        (
            lambda d: d["conference_types"]["security"].update(lead_kinds=[]),
            "conference_types.security.lead_kinds",
        ),
        (
            lambda d: d["conference_types"]["security"].update(lead_kinds=["police", "police"]),
            "conference_types.security.lead_kinds[1]",
        ),
        (lambda d: d["conference_types"]["security"].update(leader="x"), "security.leader"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["need_kinds"].update(astrology=["mentor"]), "need_kinds.astrology"),
        (lambda d: d["need_kinds"].update(debt=[]), "need_kinds.debt"),
        (lambda d: d.update(core_cap="4"), "core_cap"),
        (lambda d: d.update(core_cap=0), "core_cap"),
        (lambda d: d["conference_types"]["security"].update(client_and_family="no"), "security"),
        (lambda d: d.pop("title"), "title"),
        (
            lambda d: d["conference_types"].pop("security"),
            "core_kinds.security",
        ),
        (
            lambda d: (
                d.update(default_conference_type="security")
                or d["conference_types"].pop("security")
                or d["core_kinds"].pop("security")
            ),
            "default_conference_type",
        ),
        (
            lambda d: d["stage_rules"].append(
                {"stage": "post_release", "exclude_kinds": ["court"], "reason": "again"}
            ),
            "stage_rules[1].exclude_kinds[0]",
        ),
        (lambda d: d["stage_rules"][0].update(stage="released"), "stage_rules[0].stage"),
        (lambda d: d["stage_rules"][0].update(reason=" "), "stage_rules[0].reason"),
        # clearance: restricted outside a security conference, unknown type, kind or level
        (
            lambda d: d["clearance"].update(social_network={"police": "restricted"}),
            "clearance.social_network.police: restricted may only be granted in a security",
        ),
        (
            lambda d: (
                d["conference_types"].pop("security"),
                d["core_kinds"].pop("security"),
                d["core_kinds_by_stage"]["pre_trial"].pop("security"),
            ),
            "clearance.security: not one of this profile's conference_types",
        ),
        (
            lambda d: d["clearance"]["security"].update(astrologer="shared"),
            "clearance.security.astrologer",
        ),
        (
            lambda d: d["clearance"]["security"].update(police="secret"),
            "clearance.security.police",
        ),
        # consent scopes: contradictions with consent_required and the phases
        (
            lambda d: d["conference_types"]["social_network"].update(consent_scopes=[]),
            "conference_types.social_network.consent_scopes: consent_required: true needs",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(consent_required=False),
            "conference_types.social_network.consent_scopes: contradicts consent_required: false",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(
                consent_scopes=["family_involvement"]
            ),
            "conference_types.social_network.consent_scopes: social_network_conference is required",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(
                consent_scopes=["social_network_conference", "social_network_conference"]
            ),
            "conference_types.social_network.consent_scopes[1]: ",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(
                phases=["information", "decision"]
            ),
            "conference_types.social_network.consent_scopes[1]: family_involvement is needed "
            "before the family_only phase",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(
                consent_scopes=["social_network_conference", "share_with:dsn"]
            ),
            "conference_types.social_network.consent_scopes[1]",
        ),
        # co-leads and leads by stage
        (
            lambda d: d["conference_types"]["social_network"].update(co_lead_kinds=["cso"]),
            "conference_types.social_network.co_lead_kinds[0]: cso is the preferred lead kind",
        ),
        (
            lambda d: d["conference_types"]["social_network"].update(
                co_lead_kinds=["municipality", "municipality"]
            ),
            "conference_types.social_network.co_lead_kinds[1]: 'municipality' is listed twice",
        ),
        (
            lambda d: d["conference_types"]["security"].update(
                lead_kinds_by_stage={"closed": ["police"]}
            ),
            "conference_types.security.lead_kinds_by_stage.closed: a closed case",
        ),
        (
            lambda d: d["conference_types"]["security"].update(
                lead_kinds_by_stage={"post_release": []}
            ),
            "conference_types.security.lead_kinds_by_stage.post_release: at least one",
        ),
        (
            lambda d: d["conference_types"]["security"].update(
                lead_kinds_by_stage={"post_release": ["police", "probation", "police"]}
            ),
            "conference_types.security.lead_kinds_by_stage.post_release[2]: 'police' is listed",
        ),
        (
            lambda d: d["conference_types"]["security"].update(
                lead_kinds_by_stage={"released": ["police"]}
            ),
            "conference_types.security.lead_kinds_by_stage.released: not a valid key",
        ),
        (lambda d: d.update(pre_release_weeks=0), "pre_release_weeks"),
        (lambda d: d.update(post_release_review_weeks=105), "post_release_review_weeks"),
        (lambda d: d.update(post_release_review_weeks="13"), "post_release_review_weeks"),
    ],
)
def test_broken_profile_is_refused_naming_the_path(change: Any, path: str) -> None:
    data = generic_data()
    change(data)
    message = refusal(data)
    assert message.startswith("broken.yaml: ")
    assert path in message


def test_contradictions_name_the_field_and_the_reason() -> None:
    data = generic_data()
    data["conference_types"]["security"]["consent_required"] = True
    assert refusal(data) == (
        "broken.yaml: conference_types.security.consent_required: "
        "contradicts client_and_family: false (consent is asked of an invited client)"
    )
    data = generic_data()
    data["conference_types"]["social_network"]["client_and_family"] = False
    data["conference_types"]["social_network"]["consent_required"] = False
    assert "family_only phase needs client_and_family" in refusal(data)


def test_consent_scopes_default_from_consent_required() -> None:
    data = generic_data()
    for rules in data["conference_types"].values():
        rules.pop("consent_scopes")
    profile = parse_profile(data, "derived.yaml")
    social = profile.rules_for(ConferenceType.social_network)
    assert social.consent_scopes == [ConsentScope.social_network_conference]
    assert profile.rules_for(ConferenceType.security).consent_scopes == []


def test_an_agency_with_several_kinds_gets_the_highest_grant_among_them() -> None:
    data = generic_data()
    data["clearance"] = {
        "security": {"police": "restricted", "cso": "shared", "mentor": "shared"},
        "social_network": {"cso": "shared"},
    }
    profile = parse_profile(data, "grants.yaml")
    security, social = ConferenceType.security, ConferenceType.social_network
    assert profile.clearance_for(security, ["cso"]) == Classification.shared
    assert profile.clearance_for(security, ["cso", "mentor"]) == Classification.shared
    # probation is not listed: professional, and the agency holds that role too
    assert profile.clearance_for(security, ["cso", "probation"]) == Classification.professional
    assert profile.clearance_for(security, ["cso", "police"]) == Classification.restricted
    assert profile.clearance_for(social, ["police"]) == Classification.professional
    assert profile.clearance_for(social, []) == Classification.professional


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"missing\.yaml: file not found"):
        load_profile("missing", tmp_path)
    (tmp_path / "bad.yaml").write_text("name: bad\ntitle: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: not valid YAML at line"):
        load_profile("bad", tmp_path)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ProfileError, match="top level must be a mapping"):
        load_profile("list", tmp_path)
    text = (PROFILES / "generic.yaml").read_text()
    (tmp_path / "twice.yaml").write_text(
        text.replace("name: generic", "name: twice") + "core_cap: 9\n"
    )
    with pytest.raises(ProfileError, match="key 'core_cap' is given twice"):
        load_profile("twice", tmp_path)
    (tmp_path / "other.yaml").write_text(text)
    with pytest.raises(ProfileError, match=r"other\.yaml: name: must be 'other'"):
        load_profile("other", tmp_path)
    with pytest.raises(ProfileError, match="profile names are"):
        load_profile("../generic", tmp_path)


def test_schema_refuses_unknown_keys() -> None:
    schema = export_profile_schema()
    assert schema["additionalProperties"] is False
    assert {"conference_types", "core_kinds", "need_kinds", "stage_rules"} <= set(
        schema["properties"]
    )


@settings(max_examples=60, deadline=None)
@given(profile_data())
def test_valid_profiles_load_from_a_file(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "generated.yaml").write_text(yaml.safe_dump(data))
        profile = load_profile("generated", Path(folder))
    assert profile == Profile.model_validate(data)
    for ctype, rules in profile.conference_types.items():
        assert rules.phases[0] == Phase.information and rules.phases[-1] == Phase.decision
        assert rules.lead_kinds
        if rules.consent_required or Phase.family_only in rules.phases:
            assert rules.client_and_family, ctype


@settings(max_examples=60, deadline=None)
@given(profile_data(), st.data())
def test_client_free_types_with_consent_or_family_only_are_refused(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    ctype = draw.draw(st.sampled_from(sorted(data["conference_types"])))
    broken = copy.deepcopy(data)
    rules = broken["conference_types"][ctype]
    rules["client_and_family"] = False
    if draw.draw(st.booleans()):
        rules["consent_required"] = True
        rules["phases"] = ["information", "decision"]
        field = "consent_required"
    else:
        rules["consent_required"] = False
        rules["phases"] = ["information", "family_only", "decision"]
        field = "phases"
    assert f"broken.yaml: conference_types.{ctype}.{field}: " in refusal(broken)


@settings(max_examples=60, deadline=None)
@given(profile_data(), st.data())
def test_an_unknown_kind_anywhere_is_refused_naming_its_path(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    broken = copy.deepcopy(data)
    places: list[tuple[list[str], str]] = [
        (rules["lead_kinds"], f"conference_types.{t}.lead_kinds")
        for t, rules in broken["conference_types"].items()
    ]
    places += [(ks, f"core_kinds.{t}") for t, ks in broken["core_kinds"].items()]
    places += [(ks, f"need_kinds.{n}") for n, ks in broken["need_kinds"].items()]
    kinds_list, path = draw.draw(st.sampled_from(places))
    kinds_list.append("astrologer")
    assert f"{path}[{len(kinds_list) - 1}]: " in refusal(broken)


def test_client_and_family_may_attend_some_phases_only() -> None:
    data = generic_data()
    data["conference_types"]["social_network"]["client_and_family_phases"] = [
        "family_only",
        "decision",
    ]
    profile = parse_profile(data, "phases.yaml")
    social = profile.rules_for(ConferenceType.social_network)
    assert social.client_phases() == [Phase.family_only, Phase.decision]
    assert profile.rules_for(ConferenceType.security).client_phases() == []
    # Left out: every phase of the type.
    everything = parse_profile(generic_data(), "all.yaml").rules_for(ConferenceType.social_network)
    assert everything.client_phases() == everything.phases


@pytest.mark.parametrize(
    ("conference_type", "phases", "reason"),
    [
        (
            "security",
            ["information"],
            "conference_types.security.client_and_family_phases: only with client_and_family: "
            "true (nobody would attend)",
        ),
        (
            "social_network",
            ["decision"],
            "conference_types.social_network.client_and_family_phases: must include "
            "family_only: that phase is theirs alone",
        ),
        (
            "social_network",
            ["family_only", "preparation"],
            "conference_types.social_network.client_and_family_phases[1]: 'preparation' is not "
            "one of this type's phases",
        ),
        (
            "social_network",
            [],
            "conference_types.social_network.client_and_family_phases: name at least one "
            "phase, or leave it out for all of them",
        ),
    ],
)
def test_client_and_family_phases_that_make_no_sense_are_refused(
    conference_type: str, phases: list[str], reason: str
) -> None:
    data = generic_data()
    data["conference_types"][conference_type]["client_and_family_phases"] = phases
    assert refusal(data) == f"broken.yaml: {reason}"


# --- core seats with a directory scope, core groups per stage, phases per kind ---------------


def test_a_core_seat_may_name_a_directory_scope_beside_plain_kinds() -> None:
    data = generic_data()
    data["core_kinds"]["security"] = [
        {"kind": "police", "scope": "local"},
        {"kind": "police", "scope": "regional"},
        "probation",
    ]
    profile = parse_profile(data, "scoped.yaml")
    seats = profile.core_for(ConferenceType.security, Stage.custody)
    assert [(s.kind, s.scope) for s in seats] == [
        (AgencyKind.police, "local"),
        (AgencyKind.police, "regional"),
        (AgencyKind.probation, None),
    ]
    assert [s.label for s in seats] == [
        "police, scope local",
        "police, scope regional",
        "probation",
    ]
    assert seats[0].fits({"police"}, "local") and not seats[0].fits({"police"}, "regional")
    assert not seats[0].fits({"police"}, None) and seats[2].fits({"cso", "probation"}, "x")
    # The dump validates again to the same profile (the form code uses).
    assert Profile.model_validate(profile.model_dump(mode="json")) == profile


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (
            [{"kind": "police", "scope": "local"}, {"kind": "police", "scope": "local"}],
            "core_kinds.security[1]: 'police, scope local' is listed twice",
        ),
        (
            ["police", {"kind": "police", "scope": "local"}],
            "core_kinds.security[0]: police is listed with and without a scope; give each police "
            "seat a scope, or list the kind once without one",
        ),
        ([{"kind": "police", "scope": "Local"}], "core_kinds.security[0].scope: String should"),
        ([{"kind": "police", "area": "x"}], "core_kinds.security[0].area: Extra inputs"),
        ([{"kind": "astrologer"}], "core_kinds.security[0].kind: Input should be 'prison'"),
        (["astrologer"], "core_kinds.security[0]: Input should be 'prison'"),
        ([7], "core_kinds.security[0]: Input should be a valid dictionary"),
    ],
)
def test_core_seats_that_make_no_sense_are_refused_naming_the_entry(
    entries: list[Any], reason: str
) -> None:
    data = generic_data()
    data["core_kinds"]["security"] = entries
    assert f"broken.yaml: {reason}" in refusal(data)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: d["core_kinds_by_stage"].update(closed={"security": ["prison"]}),
            "core_kinds_by_stage.closed: a closed case holds no conference",
        ),
        (
            lambda d: d["core_kinds_by_stage"].update(
                post_release={"security": ["probation", "prosecution"]}
            ),
            "core_kinds_by_stage.post_release.security[1]: prosecution is excluded at "
            "post_release by stage_rules[0]",
        ),
        (
            lambda d: d["core_kinds_by_stage"].update(custody={"review": ["prison"]}),
            "core_kinds_by_stage.custody.review: not a valid key: Input should be",
        ),
        (
            lambda d: d["core_kinds_by_stage"]["pre_trial"].update(security=["court", "court"]),
            "core_kinds_by_stage.pre_trial.security[1]: 'court' is listed twice",
        ),
        (
            lambda d: (
                d["conference_types"].pop("security"),
                d["core_kinds"].pop("security"),
                d["clearance"].pop("security"),
            ),
            "core_kinds_by_stage.pre_trial.security: not one of this profile's conference_types",
        ),
    ],
)
def test_core_groups_per_stage_that_make_no_sense_are_refused(change: Any, reason: str) -> None:
    data = generic_data()
    change(data)
    assert f"broken.yaml: {reason}" in refusal(data)


def test_a_stage_without_its_own_core_group_keeps_core_kinds_per_type() -> None:
    data = generic_data()
    data["core_kinds_by_stage"] = {"custody": {"social_network": ["mentor"]}}
    profile = parse_profile(data, "stage.yaml")
    assert [s.kind for s in profile.core_for(ConferenceType.social_network, Stage.custody)] == [
        AgencyKind.mentor
    ]
    assert profile.core_path(ConferenceType.social_network, Stage.custody) == (
        "core_kinds_by_stage.custody.social_network"
    )
    assert (
        profile.core_for(ConferenceType.security, Stage.custody)
        == (profile.core_kinds[ConferenceType.security])
    )
    assert profile.core_path(ConferenceType.security, Stage.custody) == "core_kinds.security"


def test_phases_per_kind_and_type_union_of_kinds_never_family_only() -> None:
    data = generic_data()
    data["conference_types"]["social_network"]["phases_by_kind"] = {
        "mentor": ["information"],
        "school": ["information"],
        "prosecution": ["decision"],
    }
    profile = parse_profile(data, "phases.yaml")
    social = ConferenceType.social_network
    assert profile.phases_for(social, ["mentor"]) == [Phase.information]
    assert profile.phases_for(social, ["mentor", "school"]) == [Phase.information]
    # Several kinds: the phases of each, in the type's order.
    assert profile.phases_for(social, ["prosecution", "mentor"]) == [
        Phase.information,
        Phase.decision,
    ]
    # A kind not listed attends every phase but family_only, which is the client's and family's.
    assert profile.phases_for(social, ["cso"]) == [Phase.information, Phase.decision]
    assert profile.phases_for(social, ["mentor", "cso"]) == [Phase.information, Phase.decision]
    # The shipped generic profile: the court attends the decision only, in both types.
    generic = load_profile("generic", PROFILES)
    for ctype in ConferenceType:
        assert generic.phases_for(ctype, ["court"]) == [Phase.decision]
        assert generic.phases_for(ctype, ["court", "probation"]) == [
            Phase.information,
            Phase.decision,
        ]


@pytest.mark.parametrize(
    ("conference_type", "phases", "reason"),
    [
        (
            "social_network",
            ["family_only"],
            "phases_by_kind.mentor[0]: family_only is the client's and family's alone; no "
            "professional attends",
        ),
        (
            "security",
            ["information", "preparation"],
            "phases_by_kind.mentor[1]: 'preparation' is not one of this type's phases",
        ),
        ("security", ["decision", "decision"], "phases_by_kind.mentor[1]: 'decision' is listed"),
        (
            "security",
            [],
            "phases_by_kind.mentor: name at least one phase, or leave the kind out for all",
        ),
    ],
)
def test_phases_per_kind_that_make_no_sense_are_refused(
    conference_type: str, phases: list[str], reason: str
) -> None:
    data = generic_data()
    data["conference_types"][conference_type]["phases_by_kind"] = {"mentor": phases}
    assert f"broken.yaml: conference_types.{conference_type}.{reason}" in refusal(data)
