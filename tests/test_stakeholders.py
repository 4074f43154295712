"""Stakeholder selection: one lead, the profile's rules, the coordinator's changes with reasons."""

from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from models.directory import load_directory
from models.errors import Refusal
from models.profile import Profile, load_profile
from models.settings import PROJECT_ROOT
from models.stakeholders import (
    MAX_REASON,
    AgencyView,
    Proposal,
    Selection,
    apply_changes,
    coordinator_code,
    propose_participants,
)
from models.tables import Agency
from models.vocabulary import PROFESSIONAL_ROLES, AgencyKind, ConferenceType, Need, Role, Stage

GENERIC = load_profile("generic", PROJECT_ROOT / "config" / "profiles")
DEMO = [
    AgencyView(a.code, frozenset(str(k) for k in a.kinds))
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
    assert selection.warnings == ["core group: no active agency of kind prison in the directory"]


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


# Property tests -----------------------------------------------------------------------------

# A few kinds only, so that generated directories often hold the kinds generated profiles ask for.
kinds = st.sampled_from([str(k) for k in list(AgencyKind)[:8]])


@st.composite
def type_rules(draw: st.DrawFn) -> dict[str, Any]:
    client = draw(st.booleans())
    return {
        "phases": ["information", "decision"],
        "consent_required": client and draw(st.booleans()),
        "client_and_family": client,
        "lead_kinds": draw(st.lists(kinds, min_size=1, max_size=4, unique=True)),
        "coordinator_kinds": draw(st.lists(kinds, max_size=3, unique=True)),
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


@st.composite
def directories(draw: st.DrawFn) -> list[AgencyView]:
    size = draw(st.integers(0, 14))
    return [
        AgencyView(
            f"agency-{i}",
            frozenset(draw(st.lists(kinds, min_size=1, max_size=3))),
            draw(st.booleans() | st.just(True)),
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
    if data.draw(st.booleans()):  # usually someone who may lead
        kind = data.draw(st.sampled_from(rules.lead_kinds))
        agencies = [*agencies, AgencyView("may-lead", frozenset({str(kind)}))]
    eligible = [
        a for a in agencies if a.active and not excluded(profile, stage, a, hard_only=False)
    ]
    try:
        selection = propose_participants(
            profile=profile, agencies=agencies, stage=stage, conference_type=ctype, needs=needs
        )
    except Refusal as refusal:
        event("no lead available")
        assert [p.field for p in refusal.problems] == ["lead"]
        assert not any(str(k) in a.kinds for a in eligible for k in rules.lead_kinds)
        return
    by_code = {a.code: a for a in agencies}
    proposals = selection.proposals
    assert [p.role for p in proposals].count(Role.lead) == 1
    assert proposals[0].role == Role.lead
    assert [p.role for p in proposals].count(Role.coordinator) <= 1
    assert len({p.agency_code for p in proposals}) == len(proposals)
    for p in proposals:
        agency = by_code[p.agency_code]
        assert agency.active
        assert not excluded(profile, stage, agency, hard_only=True)
        assert not excluded(profile, stage, agency, hard_only=False)
        assert p.role in PROFESSIONAL_ROLES and p.role != Role.observer
        assert 0 < len(p.rule) <= 300 and f"profile {profile.name}" in p.rule
    # the lead is the first available in order of preference
    lead_kind = next(k for k in rules.lead_kinds if any(str(k) in a.kinds for a in eligible))
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
    kind = data.draw(st.sampled_from(profile.conference_types[ctype].lead_kinds))
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
    lead = selection.lead
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
    assert lead in result and [p.role for p in result].count(Role.lead) == 1
    assert len({p.agency_code for p in result}) == len(result)
    assert {p.agency_code for p in result} == (
        {p.agency_code for p in selection.proposals} - set(remove)
    ) | set(add)
    for p in result:
        assert not excluded(profile, stage, by_code[p.agency_code], hard_only=True)
        assert by_code[p.agency_code].active
        assert len(p.rule) <= 300
