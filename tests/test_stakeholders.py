"""Stakeholder selection: one lead, the profile's rules, the coordinator's changes with reasons."""

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from models.config.directory import load_directory
from models.config.profile import Profile, load_profile
from models.config.settings import PROJECT_ROOT
from models.errors import Refusal
from models.record.database import session_scope
from models.record.tables import Agency, AuditEvent, Case, Participant, Representative
from models.rules.stakeholders import (
    MAX_REASON,
    AgencyView,
    Proposal,
    Selection,
    apply_changes,
    coordinator_code,
    core_cap_warning,
    propose_participants,
)
from models.steps.stakeholders import RepresentativeEntry, Stakeholders
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    AgencyKind,
    ConferenceKind,
    ConferenceType,
    Need,
    Phase,
    Role,
    Stage,
)
from tests.test_conference_rules import NOW

GENERIC = load_profile("generic", PROJECT_ROOT / "config" / "profiles")
DEMO = [
    AgencyView.of_entry(a)
    for a in load_directory(PROJECT_ROOT / "config" / "directory.demo.yaml").agencies
]


def propose(
    stage: Stage = Stage.custody,
    conference_type: ConferenceType = ConferenceType.social_network,
    needs: list[Need] | None = None,
    agencies: list[AgencyView] | None = None,
    profile: Profile = GENERIC,
) -> Selection:
    return propose_participants(
        profile=profile,
        agencies=DEMO if agencies is None else agencies,
        stage=stage,
        conference_type=conference_type,
        needs=needs or [],
    )


def roles(selection: Selection | list[Proposal]) -> dict[str, Role]:
    proposals = selection.proposals if isinstance(selection, Selection) else selection
    return {p.agency_code: p.role for p in proposals}


def change(selection: Selection, stage: Stage = Stage.custody, **kwargs: Any) -> list[Proposal]:
    kwargs.setdefault("add", [])
    kwargs.setdefault("remove", [])
    kwargs.setdefault("reason", "agreed with the lead")
    return apply_changes(selection.proposals, profile=GENERIC, agencies=DEMO, stage=stage, **kwargs)


def problems(exc: pytest.ExceptionInfo[Refusal]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


def test_social_network_conference_led_and_coordinated_by_neustart() -> None:
    selection = propose(needs=[Need.housing, Need.mental_health])
    assert roles(selection) == {
        "neustart-wien": Role.lead,  # cso and probation: covers both core kinds
        "fsw-wohnen": Role.case_dependent,
        "magistrat-wien": Role.case_dependent,
        "psd-wien": Role.case_dependent,
    }
    assert selection.lead.rule == (
        "lead of social_network conferences in profile generic (cso); also coordinates (cso)"
    )
    assert coordinator_code(selection.proposals) == "neustart-wien"
    housing = next(p for p in selection.proposals if p.agency_code == "magistrat-wien")
    assert housing.rule == "need housing in profile generic (municipality)"
    assert selection.warnings == []


def test_security_conference_in_custody() -> None:
    selection = propose(conference_type=ConferenceType.security)
    assert roles(selection) == {
        "dsn": Role.lead,
        "jva-wien": Role.core,
        "neustart-wien": Role.core,
    }
    assert "also coordinates (the profile names no coordinator kind)" in selection.lead.rule
    core = next(p for p in selection.proposals if p.agency_code == "jva-wien")
    assert core.rule == "core group of security conferences in profile generic (prison)"


def test_post_release_default_leaves_security_actors_out_without_error() -> None:
    selection = propose(stage=Stage.post_release, conference_type=ConferenceType.security)
    assert selection.lead.agency_code == "lpd-wien"  # security_service excluded by default
    assert not {"dsn", "sta-wien"} & set(roles(selection))
    assert selection.warnings == []


def test_separate_coordinator_and_core_cap_warning() -> None:
    agencies = [
        AgencyView("probation-a", frozenset({"probation"})),
        AgencyView("cso-a", frozenset({"cso"})),
        AgencyView("prison-a", frozenset({"prison"})),
    ]
    profile = GENERIC.model_copy(update={"core_cap": 1})
    social = propose(agencies=agencies, profile=profile)
    assert roles(social) == {"cso-a": Role.lead, "probation-a": Role.core}  # cso coordinates
    assert social.warnings == ["core group has 2 agencies, more than core_cap 1 of profile generic"]
    profile = profile.model_copy(
        update={
            "conference_types": GENERIC.conference_types
            | {
                ConferenceType.social_network: GENERIC.conference_types[
                    ConferenceType.social_network
                ].model_copy(update={"lead_kinds": [AgencyKind.probation]})
            }
        }
    )
    selection = propose(agencies=agencies, profile=profile)
    assert roles(selection) == {"probation-a": Role.lead, "cso-a": Role.coordinator}
    assert coordinator_code(selection.proposals) == "cso-a"
    assert selection.warnings == [
        "core group has 2 agencies, more than core_cap 1 of profile generic"
    ]


def test_the_lead_coordinates_when_it_has_the_coordinator_kind() -> None:
    agencies = [
        AgencyView("cso-first", frozenset({"cso"})),
        AgencyView("neustart-wien", frozenset({"cso", "probation"})),
    ]
    social = GENERIC.conference_types[ConferenceType.social_network]
    profile = GENERIC.model_copy(
        update={
            "conference_types": GENERIC.conference_types
            | {
                ConferenceType.social_network: social.model_copy(
                    update={"lead_kinds": [AgencyKind.probation]}
                )
            }
        }
    )
    selection = propose(agencies=agencies, profile=profile)
    assert roles(selection) == {"neustart-wien": Role.lead}
    assert selection.lead.rule.endswith("(probation); also coordinates (cso)")


def test_missing_agencies_are_warned_about() -> None:
    selection = propose(needs=[Need.debt, Need.debt])
    assert selection.warnings == [
        "need debt: no active agency of kind debt_advice in the directory"
    ]
    agencies = [a for a in DEMO if a.code != "jva-wien"]
    selection = propose(conference_type=ConferenceType.security, agencies=agencies)
    assert selection.warnings == [
        "core group: no active agency of kind prison in the directory "
        "(core_kinds.security[0] of profile generic)"
    ]


def test_no_possible_lead_is_refused() -> None:
    agencies = [a for a in DEMO if a.code not in {"dsn", "lpd-wien"}]
    with pytest.raises(Refusal) as caught:
        propose(conference_type=ConferenceType.security, agencies=agencies)
    assert problems(caught) == {
        "lead": "no active agency of kind security_service, police may lead "
        "security conferences in profile generic at stage custody"
    }


def test_closed_case_and_unknown_type_are_refused() -> None:
    with pytest.raises(Refusal, match=r"^stage: "):
        propose(stage=Stage.closed)
    profile = GENERIC.model_copy(
        update={
            "conference_types": {
                ConferenceType.social_network: GENERIC.conference_types[
                    ConferenceType.social_network
                ]
            }
        }
    )
    with pytest.raises(Refusal, match=r"^conference_type: profile generic has no rules"):
        propose(conference_type=ConferenceType.security, profile=profile)


def test_inactive_agencies_are_not_proposed() -> None:
    agencies = [AgencyView(a.code, a.kinds, active=a.code != "neustart-wien") for a in DEMO] + [
        AgencyView("cso-b", frozenset({"cso"}))
    ]
    assert propose(agencies=agencies).lead.agency_code == "cso-b"


def test_agency_view_of_a_row() -> None:
    row = Agency(code="x", name="X", kinds=["cso", "probation"], active=False)
    assert AgencyView.of(row) == AgencyView("x", frozenset({"cso", "probation"}), False)
    scoped = Agency(code="gu", name="GU", kinds=["police"], area="Barcelona", scope="local")
    assert AgencyView.of(scoped) == AgencyView(
        "gu", frozenset({"police"}), area="Barcelona", scope="local"
    )


def test_coordinator_adds_and_removes_with_a_reason() -> None:
    selection = propose(needs=[Need.housing])
    result = change(selection, add=["derad-mentoring"], remove=["fsw-wohnen"], reason="mentor")
    assert roles(result) == {
        "neustart-wien": Role.lead,
        "magistrat-wien": Role.case_dependent,
        "derad-mentoring": Role.case_dependent,
    }
    added = result[-1]
    assert added.rule == "added by the coordinator: mentor"
    assert added.override_reason == "mentor"


def test_default_stage_rule_may_be_overridden_with_a_reason() -> None:
    selection = propose(stage=Stage.post_release)
    result = change(
        selection, stage=Stage.post_release, add=["sta-wien"], reason="the plan needs it"
    )
    added = next(p for p in result if p.agency_code == "sta-wien")
    assert added.role == Role.case_dependent
    assert added.rule == (
        "added by the coordinator over default stage rule stage_rules[0] (post_release): "
        "the plan needs it"
    )
    with pytest.raises(Refusal) as caught:
        change(selection, stage=Stage.post_release, add=["sta-wien"], reason="  ")
    assert problems(caught) == {"reason": "required when the list is changed"}


def test_hard_stage_rule_refuses_the_addition() -> None:
    hard = GENERIC.model_copy(
        update={"stage_rules": [GENERIC.stage_rules[0].model_copy(update={"hard": True})]}
    )
    selection = propose(stage=Stage.post_release, profile=hard)
    with pytest.raises(Refusal) as caught:
        apply_changes(
            selection.proposals,
            add=["dsn"],
            remove=[],
            reason="asked by the prison",
            profile=hard,
            agencies=DEMO,
            stage=Stage.post_release,
        )
    assert problems(caught) == {
        "add[0]": "agency 'dsn' is excluded at stage post_release by a hard rule of profile "
        "generic (stage_rules[0]: security and criminal-justice actors are not likely to be "
        "involved after release)"
    }


def test_every_problem_is_named_and_nothing_is_changed() -> None:
    selection = propose(needs=[Need.housing])
    with pytest.raises(Refusal) as caught:
        change(
            selection,
            add=["nobody", "Erika Muster", "fsw-wohnen", "ams-wien", "ams-wien"],
            remove=["neustart-wien", "jva-wien", "magistrat-wien"],
            reason=None,
        )
    found = problems(caught)
    assert found == {
        "reason": "required when the list is changed",
        "add[0]": "no agency 'nobody' in the directory",
        "add[1]": "no agency with this code in the directory",
        "add[2]": "agency 'fsw-wohnen' is already on the list",
        "add[4]": "agency 'ams-wien' is listed twice",
        "remove[0]": "the lead cannot be removed (lead of social_network conferences in "
        "profile generic (cso); also coordinates (cso))",
        "remove[1]": "agency 'jva-wien' is not on the list",
    }
    assert "Erika" not in str(caught.value)


def test_separate_coordinator_cannot_be_removed() -> None:
    selection = [
        Proposal("probation-a", Role.lead, "lead rule"),
        Proposal("cso-a", Role.coordinator, "coordinator rule"),
    ]
    agencies = [
        AgencyView("probation-a", frozenset({"probation"})),
        AgencyView("cso-a", frozenset({"cso"})),
    ]
    with pytest.raises(Refusal, match=r"remove\[0\]: the coordinator cannot be removed"):
        apply_changes(
            selection,
            add=[],
            remove=["cso-a"],
            reason="x",
            profile=GENERIC,
            agencies=agencies,
            stage=Stage.custody,
        )


def test_inactive_and_overlong_are_refused() -> None:
    selection = propose()
    agencies = [AgencyView(a.code, a.kinds, a.code != "ams-wien") for a in DEMO]
    with pytest.raises(Refusal) as caught:
        apply_changes(
            selection.proposals,
            add=["ams-wien"],
            remove=[],
            reason="x" * (MAX_REASON + 1),
            profile=GENERIC,
            agencies=agencies,
            stage=Stage.custody,
        )
    assert problems(caught) == {
        "reason": f"at most {MAX_REASON} characters",
        "add[0]": "agency 'ams-wien' is inactive in the directory",
    }


def test_no_change_needs_no_reason() -> None:
    selection = propose()
    assert change(selection, reason=None) == selection.proposals


# Co-leads, stage leads, area and transfer ----------------------------------------------------


def profile_with(
    conference_type: ConferenceType = ConferenceType.social_network,
    name: str = "generic",
    **rules: Any,
) -> Profile:
    """The generic profile with changed rules for one conference type, validated."""
    data = GENERIC.model_dump(mode="json")
    data["name"] = name
    data["conference_types"][str(conference_type)].update(rules)
    return Profile.model_validate(data)


CATALONIA = profile_with(
    name="catalonia",
    lead_kinds=["prison", "municipality"],
    coordinator_kinds=["municipality"],
    co_lead_kinds=["municipality"],
)


def test_co_lead_is_proposed_as_a_lead_and_also_coordinates() -> None:
    selection = propose(profile=CATALONIA)
    assert roles(selection) == {
        "jva-wien": Role.lead,
        "magistrat-wien": Role.lead,
        "neustart-wien": Role.core,
    }
    assert selection.lead.agency_code == "jva-wien"
    assert selection.lead.rule == "lead of social_network conferences in profile catalonia (prison)"
    co_lead = selection.proposals[1]
    assert co_lead.rule == (
        "co-lead of social_network conferences in profile catalonia (municipality); "
        "also coordinates (municipality)"
    )
    assert coordinator_code(selection.proposals) == "magistrat-wien"
    assert selection.warnings == []


def test_removing_any_lead_is_refused_with_its_rule() -> None:
    selection = propose(profile=CATALONIA)
    with pytest.raises(Refusal) as caught:
        apply_changes(
            selection.proposals,
            add=[],
            remove=["magistrat-wien", "jva-wien"],
            reason="not needed",
            profile=CATALONIA,
            agencies=DEMO,
            stage=Stage.custody,
        )
    assert problems(caught) == {
        "remove[0]": "a co-lead cannot be removed (co-lead of social_network conferences in "
        "profile catalonia (municipality); also coordinates (municipality))",
        "remove[1]": "the lead cannot be removed (lead of social_network conferences in "
        "profile catalonia (prison))",
    }


def test_a_co_lead_kind_the_lead_has_adds_no_one_and_a_missing_one_is_warned_about() -> None:
    without_prison = [a for a in DEMO if a.code != "jva-wien"]
    selection = propose(profile=CATALONIA, agencies=without_prison)
    assert [p.agency_code for p in selection.proposals if p.role == Role.lead] == ["magistrat-wien"]
    assert selection.lead.rule.endswith("(municipality); also coordinates (municipality)")
    profile = profile_with(co_lead_kinds=["municipality", "mentor"])
    agencies = [a for a in DEMO if a.code != "derad-mentoring"]
    selection = propose(profile=profile, agencies=agencies)
    assert [p.agency_code for p in selection.proposals if p.role == Role.lead] == [
        "neustart-wien",
        "magistrat-wien",
    ]
    assert selection.lead.coordinates and coordinator_code(selection.proposals) == "neustart-wien"
    assert selection.warnings == [
        "co-lead: no active agency of kind mentor may lead at stage custody"
    ]


def test_co_leads_beside_a_separate_coordinator() -> None:
    profile = profile_with(lead_kinds=["prison"], co_lead_kinds=["municipality"])
    selection = propose(profile=profile)
    assert roles(selection) == {
        "jva-wien": Role.lead,
        "magistrat-wien": Role.lead,
        "neustart-wien": Role.coordinator,
    }
    assert not any(p.coordinates for p in selection.proposals)
    assert coordinator_code(selection.proposals) == "neustart-wien"
    assert [p.role for p in selection.proposals][:2] == [Role.lead, Role.lead]


STAGE_LEADS = profile_with(lead_kinds_by_stage={"post_release": ["probation"]}, lead_kinds=["cso"])
SPLIT = [
    AgencyView("probation-a", frozenset({"probation"})),
    AgencyView("cso-a", frozenset({"cso"})),
]


def test_stage_lead_kinds_replace_the_lead_kinds_at_their_stage() -> None:
    custody = propose(profile=STAGE_LEADS, agencies=SPLIT)
    assert custody.lead.agency_code == "cso-a"
    assert custody.lead.rule.startswith("lead of social_network conferences in profile generic")
    released = propose(stage=Stage.post_release, profile=STAGE_LEADS, agencies=SPLIT)
    assert roles(released) == {"probation-a": Role.lead, "cso-a": Role.coordinator}
    assert released.lead.rule == (
        "lead at post_release of social_network conferences in profile generic (probation)"
    )
    with pytest.raises(Refusal) as caught:
        propose(stage=Stage.post_release, profile=STAGE_LEADS, agencies=SPLIT[1:])
    assert problems(caught) == {
        "lead": "no active agency of kind probation may lead social_network conferences in "
        "profile generic at stage post_release"
    }


PRISONS = [
    AgencyView("jva-graz", frozenset({"prison"}), area="Graz"),
    AgencyView("prison-national", frozenset({"prison"})),
    AgencyView("jva-wien", frozenset({"prison"}), area="Wien"),
    AgencyView("dsn", frozenset({"security_service"})),
    AgencyView("neustart-wien", frozenset({"cso", "probation"}), area="Wien"),
]


def security(agencies: list[AgencyView], area: str | None, **kwargs: Any) -> Selection:
    return propose_participants(
        profile=GENERIC,
        agencies=agencies,
        stage=Stage.custody,
        conference_type=ConferenceType.security,
        needs=[],
        area=area,
        **kwargs,
    )


def prison_of(selection: Selection) -> str:
    return next(p.agency_code for p in selection.proposals if "(prison)" in p.rule)


def test_agencies_of_the_case_area_come_first_then_national_then_others() -> None:
    assert prison_of(security(PRISONS, "Wien")) == "jva-wien"
    assert prison_of(security(PRISONS, None)) == "jva-graz"  # no area: directory order
    without_wien = [a for a in PRISONS if a.code != "jva-wien"]
    selection = security(without_wien, "Wien")
    assert prison_of(selection) == "prison-national" and selection.warnings == []
    only_graz = [a for a in without_wien if a.code != "prison-national"]
    selection = security(only_graz, "Wien")
    assert prison_of(selection) == "jva-graz"
    assert selection.warnings == [
        "core group (prison): 'jva-graz' of area Graz is proposed; no agency of area Wien or "
        "without an area is available"
    ]


def test_agency_view_carries_the_area() -> None:
    row = Agency(code="x", name="X", kinds=["prison"], area="Graz")
    assert AgencyView.of(row).area == "Graz"


POLICE_GRAZ = AgencyView("lpd-graz", frozenset({"police"}), area="Graz")


def test_the_lead_chosen_at_a_transfer_leads() -> None:
    selection = security([*PRISONS, POLICE_GRAZ], "Wien", preferred_lead="lpd-graz")
    assert selection.lead.agency_code == "lpd-graz"
    assert selection.lead.rule == (
        "lead by transfer (agency chosen by the coordinator; police may lead security "
        "conferences in profile generic); also coordinates (the profile names no coordinator kind)"
    )
    assert [p.role for p in selection.proposals].count(Role.lead) == 1
    assert "dsn" not in roles(selection)  # dsn would have led; it is no core kind
    assert selection.warnings == []


def test_a_transfer_lead_follows_the_stage_lead_kinds() -> None:
    def released(code: str) -> Selection:
        return propose_participants(
            profile=STAGE_LEADS,
            agencies=[*SPLIT, AgencyView("probation-b", frozenset({"probation"}))],
            stage=Stage.post_release,
            conference_type=ConferenceType.social_network,
            needs=[],
            preferred_lead=code,
        )

    moved = released("probation-b")
    assert moved.lead.agency_code == "probation-b"
    assert moved.lead.rule == (
        "lead by transfer (agency chosen by the coordinator; probation may lead social_network "
        "conferences in profile generic at post_release)"
    )
    assert "probation-a" not in roles(moved)  # probation is covered by the lead
    refused = released("cso-a")  # cso may lead only before release in this profile
    assert refused.lead.agency_code == "probation-a"
    assert refused.warnings == [
        "the lead chosen at the transfer, agency 'cso-a', is of no kind that may lead "
        "social_network conferences in profile generic at stage post_release (probation): "
        "the profile's rule chooses the lead"
    ]


@pytest.mark.parametrize(
    ("agencies", "code", "why"),
    [
        (PRISONS, "nobody", "agency 'nobody', is not in the directory"),
        (PRISONS, "Erika Muster", "agency with this code, is not in the directory"),
        (
            [*PRISONS, AgencyView("lpd-graz", frozenset({"police"}), active=False)],
            "lpd-graz",
            "agency 'lpd-graz', is inactive in the directory",
        ),
        (
            PRISONS,
            "jva-wien",
            "agency 'jva-wien', is of no kind that may lead security conferences in profile "
            "generic at stage custody (security_service, police)",
        ),
    ],
)
def test_a_transfer_lead_that_may_not_lead_gives_way_to_the_rule(
    agencies: list[AgencyView], code: str, why: str
) -> None:
    selection = security(agencies, "Wien", preferred_lead=code)
    assert selection.lead.agency_code == "dsn"
    assert selection.lead.rule.startswith("lead of security conferences")
    assert selection.warnings == [
        f"the lead chosen at the transfer, {why}: the profile's rule chooses the lead"
    ]
    assert "Erika" not in " ".join(selection.warnings)


def test_a_transfer_lead_excluded_at_the_stage_gives_way_to_the_rule() -> None:
    selection = propose(
        stage=Stage.post_release,
        conference_type=ConferenceType.security,
        agencies=[*DEMO],
        profile=GENERIC,
    )
    assert selection.lead.agency_code == "lpd-wien"
    moved = propose_participants(
        profile=GENERIC,
        agencies=DEMO,
        stage=Stage.post_release,
        conference_type=ConferenceType.security,
        needs=[],
        preferred_lead="dsn",
    )
    assert moved.lead.agency_code == "lpd-wien"
    assert moved.warnings == [
        "the lead chosen at the transfer, agency 'dsn', is excluded at stage post_release "
        "(stage_rules[0]: security and criminal-justice actors are not likely to be involved "
        "after release): the profile's rule chooses the lead"
    ]


# Property tests -----------------------------------------------------------------------------

# A few kinds only, so that generated directories often hold the kinds generated profiles ask for.
kinds = st.sampled_from([str(k) for k in list(AgencyKind)[:8]])


@st.composite
def type_rules(draw: st.DrawFn) -> dict[str, Any]:
    client = draw(st.booleans())
    lead_kinds = draw(st.lists(kinds, min_size=1, max_size=4, unique=True))
    stages = draw(
        st.lists(st.sampled_from([str(s) for s in Stage if s != Stage.closed]), unique=True)
    )
    return {
        "phases": ["information", "decision"],
        "consent_required": client and draw(st.booleans()),
        "client_and_family": client,
        "lead_kinds": lead_kinds,
        "coordinator_kinds": draw(st.lists(kinds, max_size=3, unique=True)),
        "co_lead_kinds": draw(
            st.lists(kinds.filter(lambda k: k not in lead_kinds), max_size=2, unique=True)
        ),
        "lead_kinds_by_stage": {
            stage: draw(st.lists(kinds, min_size=1, max_size=3, unique=True)) for stage in stages
        },
    }


@st.composite
def profile_data(draw: st.DrawFn) -> dict[str, Any]:
    """Valid profiles (tests/test_profile.py has the fuller generator for loading)."""
    types = draw(
        st.lists(st.sampled_from([str(t) for t in ConferenceType]), min_size=1, unique=True)
    )
    stage_rules = []
    for stage in draw(st.lists(st.sampled_from([str(s) for s in Stage]), max_size=3, unique=True)):
        excluded = draw(st.lists(kinds, min_size=1, max_size=3, unique=True))
        cut = draw(st.integers(0, len(excluded)))
        for hard, part in ((True, excluded[:cut]), (False, excluded[cut:])):
            if part:
                stage_rules.append(
                    {"stage": stage, "exclude_kinds": part, "hard": hard, "reason": "generated"}
                )
    needs = draw(st.lists(st.sampled_from([str(n) for n in Need]), unique=True))
    return {
        "name": "generated",
        "title": "A generated profile",
        "conference_types": {t: draw(type_rules()) for t in types},
        "default_conference_type": draw(st.sampled_from(types)),
        "core_kinds": {t: draw(st.lists(kinds, max_size=4, unique=True)) for t in types},
        "core_cap": draw(st.integers(1, 6)),
        "need_kinds": {
            n: draw(st.lists(kinds, min_size=1, max_size=3, unique=True)) for n in needs
        },
        "stage_rules": stage_rules,
    }


areas = st.sampled_from([None, "Wien", "Graz"])


@st.composite
def directories(draw: st.DrawFn) -> list[AgencyView]:
    size = draw(st.integers(0, 14))
    return [
        AgencyView(
            f"agency-{i}",
            frozenset(draw(st.lists(kinds, min_size=1, max_size=3))),
            draw(st.booleans() | st.just(True)),
            draw(areas),
        )
        for i in range(size)
    ]


profiles = profile_data().map(Profile.model_validate)
open_stages = st.sampled_from([s for s in Stage if s != Stage.closed])


def excluded(profile: Profile, stage: Stage, agency: AgencyView, *, hard_only: bool) -> bool:
    return any(
        rule.stage == stage
        and (rule.hard or not hard_only)
        and agency.kinds & {str(k) for k in rule.exclude_kinds}
        for rule in profile.stage_rules
    )


@settings(max_examples=100, deadline=None)
@given(
    profile=profiles,
    agencies=directories(),
    stage=open_stages,
    needs=st.lists(st.sampled_from(list(Need)), max_size=5),
    data=st.data(),
)
def test_selection_properties(
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    needs: list[Need],
    data: st.DataObject,
) -> None:
    ctype = data.draw(st.sampled_from(sorted(profile.conference_types)))
    rules = profile.conference_types[ctype]
    lead_kinds = rules.lead_kinds_by_stage.get(stage) or rules.lead_kinds
    area = data.draw(areas)
    if data.draw(st.booleans()):  # usually someone who may lead
        kind = data.draw(st.sampled_from(lead_kinds))
        agencies = [*agencies, AgencyView("may-lead", frozenset({str(kind)}))]
    eligible = [
        a for a in agencies if a.active and not excluded(profile, stage, a, hard_only=False)
    ]
    if area is not None:  # the case's area first, then national, then other areas
        eligible.sort(key=lambda a: (a.area != area, a.area is not None))
    try:
        selection = propose_participants(
            profile=profile,
            agencies=agencies,
            stage=stage,
            conference_type=ctype,
            needs=needs,
            area=area,
        )
    except Refusal as refusal:
        event("no lead available")
        assert [p.field for p in refusal.problems] == ["lead"]
        assert not any(str(k) in a.kinds for a in eligible for k in lead_kinds)
        return
    by_code = {a.code: a for a in agencies}
    proposals = selection.proposals
    leads = [p for p in proposals if p.role == Role.lead]
    assert 1 <= len(leads) <= 1 + len(rules.co_lead_kinds)
    if len(leads) > 1:
        event("co-leads")
    assert proposals[: len(leads)] == leads
    lead_covers = set().union(*(by_code[p.agency_code].kinds for p in leads))
    for kind in rules.co_lead_kinds:
        if any(kind in a.kinds for a in eligible):
            assert kind in lead_covers
    assert [p.role for p in proposals].count(Role.coordinator) <= 1
    coordinating = [p for p in proposals if p.role == Role.coordinator or p.coordinates]
    assert [p.agency_code for p in coordinating] == [coordinator_code(proposals)]
    for p in proposals:
        other_area = area is not None and by_code[p.agency_code].area not in (None, area)
        assert other_area == any(f"'{p.agency_code}' of area" in w for w in selection.warnings)
        if other_area:
            event("an agency of another area")
    assert len({p.agency_code for p in proposals}) == len(proposals)
    for p in proposals:
        agency = by_code[p.agency_code]
        assert agency.active
        assert not excluded(profile, stage, agency, hard_only=True)
        assert not excluded(profile, stage, agency, hard_only=False)
        assert p.role in PROFESSIONAL_ROLES and p.role != Role.observer
        assert 0 < len(p.rule) <= 300 and f"profile {profile.name}" in p.rule
    # the lead is the first available in order of preference
    lead_kind = next(k for k in lead_kinds if any(str(k) in a.kinds for a in eligible))
    assert selection.lead.agency_code == next(a for a in eligible if lead_kind in a.kinds).code
    # every core kind and need kind that can be filled is filled
    chosen_kinds = set().union(*(by_code[p.agency_code].kinds for p in proposals))
    wanted = set(profile.core_kinds.get(ctype, []))
    for need in needs:
        wanted |= set(profile.need_kinds.get(need, []))
    for kind in wanted:
        if any(kind in a.kinds for a in eligible):
            assert kind in chosen_kinds
    core_group = sum(p.role in {Role.lead, Role.coordinator, Role.core} for p in proposals)
    assert (core_group > profile.core_cap) == any("core_cap" in w for w in selection.warnings)


@settings(max_examples=100, deadline=None)
@given(
    profile=profiles,
    agencies=directories(),
    stage=open_stages,
    data=st.data(),
)
def test_change_properties(
    profile: Profile, agencies: list[AgencyView], stage: Stage, data: st.DataObject
) -> None:
    ctype = data.draw(st.sampled_from(sorted(profile.conference_types)))
    rules = profile.conference_types[ctype]
    kind = data.draw(st.sampled_from(rules.lead_kinds_by_stage.get(stage) or rules.lead_kinds))
    agencies = [*agencies, AgencyView("may-lead", frozenset({str(kind)}))]
    try:
        selection = propose_participants(
            profile=profile, agencies=agencies, stage=stage, conference_type=ctype, needs=[]
        )
    except Refusal:
        assume(False)
        return
    codes = [a.code for a in agencies] + ["unknown"]
    add = data.draw(st.lists(st.sampled_from(codes), max_size=3))
    remove = data.draw(st.lists(st.sampled_from(codes), max_size=3))
    reason = data.draw(st.sampled_from([None, "", "agreed at preparation", "needed for the plan"]))
    leads = [p for p in selection.proposals if p.role == Role.lead]
    by_code = {a.code: a for a in agencies}
    try:
        result = apply_changes(
            selection.proposals,
            add=add,
            remove=remove,
            reason=reason,
            profile=profile,
            agencies=agencies,
            stage=stage,
        )
    except Refusal as refusal:
        event("change refused")
        fields = {p.field for p in refusal.problems}
        assert (add or remove) and fields
        if not reason:
            assert "reason" in fields
        for lead in leads:
            if lead.agency_code in remove:
                assert f"remove[{remove.index(lead.agency_code)}]" in fields
        for i, code in enumerate(add):
            if code in by_code and excluded(profile, stage, by_code[code], hard_only=True):
                assert f"add[{i}]" in fields
        return
    if not (add or remove):
        assert result == selection.proposals
        return
    assert reason
    assert [p for p in result if p.role == Role.lead] == leads
    assert len({p.agency_code for p in result}) == len(result)
    assert {p.agency_code for p in result} == (
        {p.agency_code for p in selection.proposals} - set(remove)
    ) | set(add)
    for p in result:
        assert not excluded(profile, stage, by_code[p.agency_code], hard_only=True)
        assert by_code[p.agency_code].active
        assert len(p.rule) <= 300


# Who represents each agency -------------------------------------------------------------------


@pytest.mark.database
def test_named_representatives_are_checked_against_the_agency(session: Session) -> None:
    from models.rules.participants import named_representatives

    on_list = {"dsn", "jva-wien", "neustart-wien"}
    named = named_representatives(
        session,
        entries=[("jva-wien", "jva-wien-2"), ("dsn", None), ("fsw-wohnen", "fsw-wohnen-1")],
        participating=on_list,
        left_out=["fsw-wohnen"],  # removed in the same answer: its entry is ignored
    )
    assert {agency: rep.code for agency, rep in named.items()} == {"jva-wien": "jva-wien-2"}
    retired = session.exec(select(Representative).where(Representative.code == "dsn-1")).one()
    retired.active = False
    session.add(retired)
    session.flush()
    with pytest.raises(Refusal) as caught:
        named_representatives(
            session,
            entries=[
                ("neustart-wien", "neustart-wien-1"),
                ("jva-wien", "neustart-wien-2"),  # of another agency
                ("dsn", "dsn-1"),  # inactive
                ("ams-wien", None),  # not on the list
                ("neustart-wien", None),  # twice
                ("jva-wien", "erika-muster"),  # also twice; the value is never repeated
            ],
            participating=on_list,
        )
    assert problems(caught) == {
        "representatives[1].representative": "not an active representative of agency "
        "'jva-wien' in the directory",
        "representatives[2].representative": "not an active representative of agency 'dsn' "
        "in the directory",
        "representatives[3].agency": "not an agency of this conference's confirmed list",
        "representatives[4].agency": "this agency is listed already at representatives[0]",
        "representatives[5].agency": "this agency is listed already at representatives[1]",
    }
    assert "erika" not in str(caught.value)


def _open(session: Session, case: Case) -> int:
    from models.rules.conference import open_conference

    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first if case.cycle == 1 else ConferenceKind.review,
        conference_type=ConferenceType.security,
        starts_at=NOW + timedelta(days=14 * case.cycle),
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    assert conference.id is not None
    return conference.id


@pytest.mark.database
def test_last_representative_is_proposed_again_and_a_substitute_is_recorded(
    database: str,
) -> None:
    from models.rules.cases import refer_case
    from models.steps import stakeholders
    from models.steps.step import Asked
    from tasks.steps import apply_step

    def describe_proposal(case_id: int, conference_id: int) -> tuple[None, None, object]:
        """What the stakeholders form pre-fills, as the step reads it when it is asked."""
        with session_scope() as session:
            found = stakeholders.defaults(session, Asked(case_id, conference_id), NOW)
        return None, None, found["representatives"]

    def confirm_participants(key: str, attempt: int, case_id: int, conference_id: int, answer):  # type: ignore[no-untyped-def]
        return apply_step.fn("stakeholders", key, attempt, Asked(case_id, conference_id), answer)

    with session_scope() as session:  # committed: a prefix of its own, so no other test sees it
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number="REPR-1",
            stage=Stage.custody,
            needs=[],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="REPR",
            flow_run_id=None,
            now=NOW,
        )
        case_id, reference = case.id, case.reference
        first = _open(session, case)
    assert case_id is not None

    def answer(*entries: tuple[str, str | None]) -> Stakeholders:
        return Stakeholders(
            representatives=[RepresentativeEntry(agency=a, representative=r) for a, r in entries],
            acting_representative="neustart-wien-1",
        )

    key = f"{reference.lower()}-c1-stakeholders"
    _, _, proposed = describe_proposal(case_id, first)
    assert proposed == [
        {"agency": "dsn", "representative": None},  # nobody attended before: the agency decides
        {"agency": "jva-wien", "representative": None},
        {"agency": "neustart-wien", "representative": None},
    ]
    done = confirm_participants(
        key, 0, case_id, first, answer(("dsn", "dsn-1"), ("jva-wien", "jva-wien-1"))
    )
    assert done.result is not None

    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None
        case.cycle = 2
        second = _open(session, case)
    _, _, proposed = describe_proposal(case_id, second)
    assert proposed == [
        {"agency": "dsn", "representative": "dsn-1"},
        {"agency": "jva-wien", "representative": "jva-wien-1"},
        {"agency": "neustart-wien", "representative": None},
    ]
    key = f"{reference.lower()}-c2-stakeholders"
    refused = confirm_participants(
        key, 0, case_id, second, answer(("dsn", "dsn-1"), ("jva-wien", "dsn-1"))
    )
    assert refused.refusal == (
        "representatives[1].representative: not an active representative of agency "
        "'jva-wien' in the directory"
    )
    with session_scope() as session:
        assert (
            session.exec(select(Participant).where(Participant.conference_id == second)).all() == []
        )
    done = confirm_participants(
        key, 1, case_id, second, answer(("dsn", "dsn-1"), ("jva-wien", "jva-wien-2"))
    )
    assert done.result is not None
    with session_scope() as session:
        people = session.exec(
            select(Agency.code, Representative.code, Participant.is_substitute)
            .join(Agency, col(Agency.id) == col(Participant.agency_id))
            .join(
                Representative,
                col(Representative.id) == col(Participant.representative_id),
                isouter=True,
            )
            .where(Participant.conference_id == second)
        ).all()
        assert sorted(tuple(row) for row in people) == [
            ("dsn", "dsn-1", False),
            ("jva-wien", "jva-wien-2", True),
            ("neustart-wien", None, False),
        ]
        swaps = session.exec(
            select(AuditEvent).where(
                AuditEvent.case_id == case_id, AuditEvent.action == "participants.substitution"
            )
        ).all()
        assert [e.detail for e in swaps] == ["jva-wien: jva-wien-2 attends instead of jva-wien-1"]
        assert "Demo Representative" not in str([e.detail for e in swaps])


@pytest.mark.database
def test_only_an_active_representative_of_the_agency_is_proposed_again(session: Session) -> None:
    from models.rules.participants import proposed_representatives

    retired = session.exec(select(Representative).where(Representative.code == "dsn-1")).one()
    retired.active = False
    session.add(retired)
    session.flush()
    last = {"jva-wien": "jva-wien-2", "dsn": "dsn-1", "neustart-wien": "jva-wien-1"}
    assert proposed_representatives(
        session, agencies=["jva-wien", "dsn", "neustart-wien", "ams-wien"], last=last
    ) == [
        {"agency": "jva-wien", "representative": "jva-wien-2"},
        {"agency": "dsn", "representative": None},  # no longer active
        {"agency": "neustart-wien", "representative": None},  # not of this agency
        {"agency": "ams-wien", "representative": None},  # nobody named before
    ]


# --- several agencies of one kind, the whole core counted, phases per kind ------------------

SECOND_POLICE = AgencyView("pi-favoriten", frozenset({"police"}), area="Wien", scope="local")


def police_profile(core: list[Any], cap: int = 3) -> Profile:
    data = GENERIC.model_dump(mode="json")
    data["core_kinds"]["security"] = core
    data["core_cap"] = cap
    return Profile.model_validate(data)


def test_scoped_seats_take_one_agency_each_and_a_plain_seat_takes_the_first() -> None:
    agencies = [*DEMO, SECOND_POLICE]
    plain = propose(
        conference_type=ConferenceType.security,
        profile=police_profile(["police", "probation"]),
        agencies=agencies,
    )
    assert roles(plain) == {"dsn": Role.lead, "lpd-wien": Role.core, "neustart-wien": Role.core}
    scoped = propose(
        conference_type=ConferenceType.security,
        profile=police_profile(
            [{"kind": "police", "scope": "local"}, {"kind": "police", "scope": "regional"}], cap=4
        ),
        agencies=[SECOND_POLICE, *DEMO],
    )
    assert [(p.agency_code, p.rule) for p in scoped.proposals if p.role == Role.core] == [
        (
            "pi-favoriten",
            "core group of security conferences in profile generic (police, scope local)",
        ),
        (
            "lpd-wien",
            "core group of security conferences in profile generic (police, scope regional)",
        ),
    ]
    assert scoped.warnings == []


def test_a_second_force_the_coordinator_adds_joins_the_core_and_the_cap_counts_it() -> None:
    profile = police_profile(["police", "probation"])
    agencies = [*DEMO, SECOND_POLICE]
    selection = propose(conference_type=ConferenceType.security, profile=profile, agencies=agencies)
    assert selection.warnings == []  # dsn, lpd-wien, neustart-wien: three, the cap
    confirmed = apply_changes(
        selection.proposals,
        add=["pi-favoriten", "derad-mentoring"],
        remove=[],
        reason="the local force follows the case too",
        profile=profile,
        agencies=agencies,
        stage=Stage.custody,
        conference_type=ConferenceType.security,
    )
    added = {p.agency_code: p for p in confirmed if p.override_reason}
    assert added["pi-favoriten"].role == Role.core
    assert added["pi-favoriten"].rule == (
        "added by the coordinator to the core group (police): the local force follows the case too"
    )
    assert added["derad-mentoring"].role == Role.case_dependent  # not a core kind: not counted
    assert core_cap_warning(confirmed, profile) == (
        "core group has 4 agencies, more than core_cap 3 of profile generic"
    )
    assert core_cap_warning(selection.proposals, profile) is None
    # Without the conference type an addition cannot be placed in the core (older callers).
    unplaced = apply_changes(
        selection.proposals,
        add=["pi-favoriten"],
        remove=[],
        reason="x",
        profile=profile,
        agencies=agencies,
        stage=Stage.custody,
    )
    assert roles(unplaced)["pi-favoriten"] == Role.case_dependent


def test_leads_and_coordinator_attend_every_phase_others_their_kinds_phases() -> None:
    data = GENERIC.model_dump(mode="json")
    data["conference_types"]["social_network"]["phases_by_kind"] = {
        "cso": ["decision"],
        "probation": ["decision"],
        "mental_health": ["information"],
        "housing": ["information"],
    }
    data["core_kinds"]["social_network"] = ["probation", "cso", "municipality"]
    profile = Profile.model_validate(data)
    selection = propose(profile=profile, needs=[Need.mental_health])
    by_code = {p.agency_code: p for p in selection.proposals}
    # Neustart (cso, probation) leads and coordinates: every phase, whatever its kinds say.
    assert by_code["neustart-wien"].role == Role.lead and by_code["neustart-wien"].phases is None
    assert by_code["magistrat-wien"].phases is None  # municipality: not listed, every phase
    assert by_code["psd-wien"].phases == (Phase.information,)
    assert by_code["psd-wien"].rule == (
        "need mental_health in profile generic (mental_health); attends information only"
    )
    confirmed = apply_changes(
        selection.proposals,
        add=["fsw-wohnen", "lg-wien"],
        remove=[],
        reason="housing first",
        profile=profile,
        agencies=DEMO,
        stage=Stage.custody,
        conference_type=ConferenceType.social_network,
    )
    added = {p.agency_code: p for p in confirmed}
    assert added["fsw-wohnen"].phases == (Phase.information,)
    assert added["fsw-wohnen"].rule == (
        "added by the coordinator (attends information only): housing first"
    )
    assert added["lg-wien"].phases is None  # the court is listed for security conferences only
    assert Phase.family_only not in {ph for p in confirmed for ph in p.phases or ()}


@pytest.mark.database
def test_record_participants_stores_each_agencys_phases(session: Session) -> None:
    from models.rules.conference import open_conference
    from models.rules.participants import record_participants
    from tests.test_conference_rules import new_case

    conference = open_conference(
        session,
        case=new_case(session),
        kind=ConferenceKind.first,
        conference_type=ConferenceType.security,
        starts_at=NOW + timedelta(days=14),
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=[
            Proposal("dsn", Role.lead, "test: lead"),
            Proposal("lg-wien", Role.core, "test: court", phases=(Phase.decision,)),
        ],
        client_and_family=False,
        family_involved=False,
        intermediary_code=None,
    )
    codes = {a.id: a.code for a in session.exec(select(Agency))}
    stored = {
        codes[p.agency_id]: p.phases
        for p in session.exec(select(Participant).where(Participant.conference_id == conference.id))
        if p.agency_id is not None
    }
    assert stored == {"dsn": None, "lg-wien": ["decision"]}
