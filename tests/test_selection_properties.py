"""Selection properties over random profiles (scoped core seats, core groups per stage, phases
per kind) and random directories (several agencies of a kind, told apart by scope): every seat is
filled by an agency of its own or named in a warning, phases follow the profile, the core cap
counts the whole core, and a directory `load` accepts for a profile never leaves a seat empty."""

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from models.config.profile import Profile
from models.errors import Refusal
from models.rules.stakeholders import (
    CORE_GROUP,
    AgencyView,
    attended_phases,
    core_cap_warning,
    propose_participants,
    unsupplied,
)
from models.vocabulary import ConferenceType, Phase, Role, Stage

# A few kinds and scopes, so that agencies collide on them often.
KINDS = ["police", "prison", "probation", "cso", "court", "prosecution", "mentor"]
SCOPES = ["local", "regional"]
OPEN_STAGES = [s for s in Stage if s != Stage.closed]

kinds = st.sampled_from(KINDS)


@st.composite
def seats(draw: st.DrawFn, excluded: frozenset[str] = frozenset()) -> list[Any]:
    """A core list: plain kinds, or scoped seats of a kind (never both for one kind)."""
    chosen = draw(st.lists(kinds.filter(lambda k: k not in excluded), max_size=3, unique=True))
    entries: list[Any] = []
    for kind in chosen:
        scopes = draw(st.lists(st.sampled_from(SCOPES), max_size=2, unique=True))
        entries += [{"kind": kind, "scope": s} for s in scopes] if scopes else [kind]
    return entries


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    types = draw(st.lists(st.sampled_from(list(ConferenceType)), min_size=1, unique=True))
    rule_stage = draw(st.sampled_from(OPEN_STAGES))
    excluded = frozenset(draw(st.lists(kinds, max_size=2, unique=True)))
    conference_types = {}
    for ctype in types:
        family_only = ctype == ConferenceType.social_network
        phases = ["information", *(["family_only"] if family_only else []), "decision"]
        conference_types[str(ctype)] = {
            "phases": phases,
            "consent_required": False,
            "client_and_family": family_only,
            "lead_kinds": draw(st.lists(kinds, min_size=1, max_size=2, unique=True)),
            "phases_by_kind": draw(
                st.dictionaries(
                    kinds,
                    st.lists(st.sampled_from(["information", "decision"]), min_size=1, unique=True),
                    max_size=3,
                )
            ),
        }
    by_stage = {
        str(stage): {str(t): draw(seats(excluded if stage == rule_stage else frozenset()))}
        for stage in draw(st.lists(st.sampled_from(OPEN_STAGES), max_size=2, unique=True))
        for t in [draw(st.sampled_from(types))]
    }
    return Profile.model_validate(
        {
            "name": "generated",
            "title": "A generated profile",
            "conference_types": conference_types,
            "default_conference_type": str(types[0]),
            "core_kinds": {str(t): draw(seats()) for t in types},
            "core_kinds_by_stage": by_stage,
            "core_cap": draw(st.integers(1, 5)),
            "stage_rules": [
                {"stage": str(rule_stage), "exclude_kinds": sorted(excluded), "reason": "rule"}
            ]
            if excluded
            else [],
        }
    )


@st.composite
def directories(draw: st.DrawFn) -> list[AgencyView]:
    size = draw(st.integers(2, 9))
    return [
        AgencyView(
            f"a{i}",
            frozenset(draw(st.lists(kinds, min_size=1, max_size=3, unique=True))),
            active=draw(st.sampled_from([True, True, True, False])),
            scope=draw(st.none() | st.sampled_from(SCOPES)),
        )
        for i in range(size)
    ]


@st.composite
def supplying(draw: st.DrawFn, profile: Profile) -> list[AgencyView]:
    """A random directory, plus (mostly) an agency for each seat and lead kind of the profile."""
    agencies = draw(directories())
    wanted = [(str(k), None) for r in profile.conference_types.values() for k in r.lead_kinds]
    wanted += [
        (str(seat.kind), seat.scope)
        for slots in [
            *profile.core_kinds.values(),
            *(s for by_type in profile.core_kinds_by_stage.values() for s in by_type.values()),
        ]
        for seat in slots
    ]
    for i, (kind, scope) in enumerate(wanted):
        if draw(st.integers(0, 9)):
            agencies.append(AgencyView(f"s{i}", frozenset({kind}), scope=scope))
    return agencies


def excluded_at(profile: Profile, stage: Stage, agency: AgencyView) -> bool:
    return bool(agency.kinds & {str(k) for k in profile.stage_exclusions(stage)})


@settings(max_examples=150, deadline=None)
@given(
    profile=profiles(),
    agencies=directories(),
    stage=st.sampled_from(OPEN_STAGES),
    data=st.data(),
)
def test_every_seat_is_filled_or_named_and_phases_and_cap_follow_the_profile(
    profile: Profile, agencies: list[AgencyView], stage: Stage, data: st.DataObject
) -> None:
    ctype = data.draw(st.sampled_from(sorted(profile.conference_types)))
    try:
        selection = propose_participants(
            profile=profile, agencies=agencies, stage=stage, conference_type=ctype, needs=[]
        )
    except Refusal as refusal:
        assert [p.field for p in refusal.problems] == ["lead"]
        event("no lead")
        return
    event("proposed")
    by_code = {a.code: a for a in agencies}
    proposed = [by_code[p.agency_code] for p in selection.proposals]
    assert all(a.active and not excluded_at(profile, stage, a) for a in proposed)
    path = profile.core_path(ctype, stage)
    for i, seat in enumerate(profile.core_for(ctype, stage)):
        fits = [a for a in proposed if seat.fits(a.kinds, a.scope)]
        eligible = [
            a
            for a in agencies
            if a.active and not excluded_at(profile, stage, a) and seat.fits(a.kinds, a.scope)
        ]
        if eligible:
            assert fits, (seat, selection)
        elif not any(a.active and seat.fits(a.kinds, a.scope) for a in agencies):
            assert any(f"({path}[{i}] of profile" in w for w in selection.warnings), seat
    # Scoped seats of one kind never share an agency (an agency has one scope): a kind with k
    # scoped seats that can all be filled has k agencies of that kind on the list.
    scoped = [s for s in profile.core_for(ctype, stage) if s.scope]
    for kind in {s.kind for s in scoped}:
        seats_of_kind = [s for s in scoped if s.kind == kind]
        filled = [s for s in seats_of_kind if any(s.fits(a.kinds, a.scope) for a in proposed)]
        holders = {a.code for a in proposed if any(s.fits(a.kinds, a.scope) for s in filled)}
        assert len(holders) >= len(filled)
    for p in selection.proposals:
        agency = by_code[p.agency_code]
        assert p.phases == attended_phases(profile, ctype, agency.kinds, p.role)
        assert Phase.family_only not in (p.phases or ())
        if p.role in (Role.lead, Role.coordinator):
            assert p.phases is None
    size = sum(1 for p in selection.proposals if p.role in CORE_GROUP)
    cap = core_cap_warning(selection.proposals, profile)
    assert (cap is not None) == (size > profile.core_cap)
    assert (
        (cap in selection.warnings) if cap else not any("core_cap" in w for w in selection.warnings)
    )


@settings(max_examples=150, deadline=None)
@given(profile=profiles(), data=st.data())
def test_a_directory_load_accepts_leaves_no_lead_or_seat_empty(
    profile: Profile, data: st.DataObject
) -> None:
    agencies = data.draw(supplying(profile))
    missing = unsupplied(profile, agencies)
    event("refused at load" if missing else "accepted at load")
    if missing:
        return
    for stage in OPEN_STAGES:
        for ctype in profile.conference_types:
            selection = propose_participants(
                profile=profile, agencies=agencies, stage=stage, conference_type=ctype, needs=[]
            )  # no Refusal: a lead is available at every stage
            assert not [w for w in selection.warnings if "in the directory" in w], selection
