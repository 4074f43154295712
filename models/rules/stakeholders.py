"""Stakeholder selection: who a governance profile invites to a conference, and why.

`propose_participants` applies a profile to the directory; `apply_changes` applies the
coordinator's additions and removals. Both are pure: the caller stores the result.

Choices made here:
- One agency per seat of the core group (`Profile.core_for`: the conference type's core at the
  stage). A plain seat is a kind: a kind already covered by a chosen agency is not filled again
  (Neustart, a cso and probation, covers both), otherwise the first active agency in directory
  order is taken. A scoped seat (`{kind: police, scope: local}`) needs an agency of that kind
  whose directory scope matches, so one kind can fill several seats (Catalonia's two police
  forces). Leads, coordinators and case-dependent agencies: one per kind, as before.
- With the case's area, agencies of that area come first, then those without an area (national),
  then the others (with a warning); directory order decides within each group.
- An agency is excluded at a stage if any of its kinds is excluded there (hard or default).
- The lead is the agency chosen at a transfer if it may lead at this stage, else the first of the
  stage's lead kinds (`lead_kinds_by_stage`, else `lead_kinds`). Each co-lead kind not already
  covered by a lead adds one agency in role `lead`; `Selection.lead` is the first.
- A lead (first or co-lead) coordinates when it has the first coordinator kind available (or the
  profile names none): its rule says it also coordinates and `coordinates` is set; otherwise a
  separate agency has role `coordinator`. `coordinator_code` finds the coordinating agency.
- The core group, counted against `core_cap` (`core_cap_warning`), is every proposal in role
  lead, coordinator or core: the coordinator's additions of a core kind join it in role core.
- Phases: leads and the coordinator attend every phase; other agencies the phases the profile
  gives their kinds (`Profile.phases_for`); `Proposal.phases` is None when that is every phase
  professionals attend (family_only is never theirs), and the rule names the phases otherwise.
- Client and family are not agencies and are never proposed here.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.config.profile import ConferenceTypeRules, CoreSlot, Profile, StageRule
from models.errors import Problem, Refusal
from models.record.tables import Agency
from models.vocabulary import AgencyKind, ConferenceType, Need, Role, Stage

if TYPE_CHECKING:
    from models.config.directory import AgencyEntry

#: Longest reason the coordinator may give; the rule built from it fits Participant.rule (300).
MAX_REASON = 200

_ROLE_RANK = {
    Role.lead: 0,
    Role.coordinator: 1,
    Role.core: 2,
    Role.case_dependent: 3,
    Role.observer: 4,
}
_CODE_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Proposal:
    """One agency proposed for a conference, in a role, with the rule that put it there."""

    agency_code: str
    role: Role
    rule: str
    override_reason: str | None = None  # the coordinator's reason, for Participant.override_reason
    coordinates: bool = False  # a lead that also coordinates
    phases: tuple[str, ...] | None = None  # None: every phase professionals attend


@dataclass(frozen=True)
class AgencyView:
    """What selection needs to know of an agency."""

    code: str
    kinds: frozenset[str]
    active: bool = True
    area: str | None = None  # None: national, serves every area
    scope: str | None = None  # tells agencies of one kind apart (e.g. local, regional police)

    @classmethod
    def of(cls, agency: Agency) -> "AgencyView":
        return cls(
            code=agency.code,
            kinds=frozenset(agency.kinds),
            active=agency.active,
            area=agency.area,
            scope=agency.scope,
        )

    @classmethod
    def of_entry(cls, entry: "AgencyEntry") -> "AgencyView":
        """An agency as the directory file lists it (every listed agency is active)."""
        return cls(
            code=entry.code,
            kinds=frozenset(str(k) for k in entry.kinds),
            area=entry.area,
            scope=entry.scope,
        )


@dataclass(frozen=True)
class Selection:
    """The proposed participants (lead first, then by role) and warnings for the coordinator."""

    proposals: list[Proposal]
    warnings: list[str] = field(default_factory=list)

    @property
    def lead(self) -> Proposal:
        """The first lead (co-leads follow it in role `lead`)."""
        return next(p for p in self.proposals if p.role == Role.lead)


def coordinator_code(proposals: list[Proposal]) -> str | None:
    """The coordinating agency: the coordinator, else the lead that coordinates, else the lead."""
    found = (
        [p for p in proposals if p.role == Role.coordinator]
        + [p for p in proposals if p.role == Role.lead and p.coordinates]
        + [p for p in proposals if p.role == Role.lead]
    )
    return found[0].agency_code if found else None


#: The roles that make up the core group counted against the profile's core_cap.
CORE_GROUP = frozenset({Role.lead, Role.coordinator, Role.core})


def core_cap_warning(proposals: Iterable[Proposal], profile: Profile) -> str | None:
    """The warning for a core group (leads, coordinator, core) larger than `core_cap`, if it is:
    for the proposal and again for the list the coordinator confirms, additions included."""
    size = sum(1 for p in proposals if p.role in CORE_GROUP)
    if size <= profile.core_cap:
        return None
    return (
        f"core group has {size} agencies, more than core_cap {profile.core_cap} "
        f"of profile {profile.name}"
    )


def attended_phases(
    profile: Profile, conference_type: ConferenceType, kinds: Iterable[str], role: Role
) -> tuple[str, ...] | None:
    """The phases a participant in this role attends; None when every professional phase
    (leads and the coordinator always; others by the profile's phases_by_kind)."""
    if role in (Role.lead, Role.coordinator):
        return None
    attended = profile.phases_for(conference_type, kinds)
    if attended == profile.rules_for(conference_type).professional_phases():
        return None
    return tuple(attended)


def _attends(phases: tuple[str, ...]) -> str:
    return f"attends {', '.join(phases)} only"


def _phase_note(phases: tuple[str, ...] | None) -> str:
    return "" if phases is None else f"; {_attends(phases)}"


def _exclusion(profile: Profile, stage: Stage, agency: AgencyView) -> tuple[int, StageRule] | None:
    """The stage rule that excludes this agency at this stage (hard rules first), if any."""
    found = [
        (i, rule)
        for i, rule in enumerate(profile.stage_rules)
        if rule.stage == stage and agency.kinds & {str(k) for k in rule.exclude_kinds}
    ]
    found.sort(key=lambda pair: not pair[1].hard)
    return found[0] if found else None


def _kinds(kinds: list[AgencyKind]) -> str:
    return ", ".join(str(k) for k in kinds)


def _area_rank(agency: AgencyView, area: str) -> int:
    """0: the case's area, 1: national (no area), 2: another area."""
    if agency.area == area:
        return 0
    return 1 if agency.area is None else 2


def _transfer_lead(
    code: str,
    *,
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    lead_kinds: list[AgencyKind],
    where: str,
) -> tuple[AgencyView, AgencyKind] | str:
    """The agency chosen at a transfer and its lead kind, or why it may not lead here."""
    agency = next((a for a in agencies if a.code == code), None)
    if agency is None:
        return "is not in the directory"
    if not agency.active:
        return "is inactive in the directory"
    excluded = _exclusion(profile, stage, agency)
    if excluded is not None:
        index, rule = excluded
        return f"is excluded at stage {stage} (stage_rules[{index}]: {rule.reason})"
    kind = next((k for k in lead_kinds if k in agency.kinds), None)
    if kind is None:
        return f"is of no kind that may lead {where} at stage {stage} ({_kinds(lead_kinds)})"
    return agency, kind


@dataclass
class _Picking:
    """A proposal being made: what it picks from, and what it has chosen and warned of so far."""

    profile: Profile
    agencies: list[AgencyView]
    stage: Stage
    conference_type: ConferenceType
    area: str | None
    eligible: list[AgencyView]
    where: str
    chosen: dict[str, Proposal] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def first_of(self, kind: AgencyKind) -> AgencyView | None:
        return next((a for a in self.eligible if kind in a.kinds), None)

    def covered(self, kind: AgencyKind) -> bool:
        return any(kind in a.kinds for a in self.eligible if a.code in self.chosen)

    def taken(self, agency: AgencyView, purpose: str) -> AgencyView:
        """`agency`, with a warning when it is of another area than the case's."""
        if self.area is not None and agency.area not in (None, self.area):
            self.warnings.append(
                f"{purpose}: '{agency.code}' of area {agency.area} is proposed; no agency of "
                f"area {self.area} or without an area is available"
            )
        return agency


def propose_participants(
    *,
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    conference_type: ConferenceType,
    needs: list[Need],
    area: str | None = None,
    preferred_lead: str | None = None,
) -> Selection:
    """Propose the lead (and co-leads), a coordinator, the core group and an agency per need.

    `area` is the case's area (agencies of it are preferred); `preferred_lead` the code of the
    agency a transfer made the lead. Raises Refusal if the profile has no rules for the
    conference type, the case is closed, or no active agency may lead at this stage.
    """
    if stage == Stage.closed:
        raise Refusal.of("stage", "no conference is held for a closed case")
    if conference_type not in profile.conference_types:
        raise Refusal.of(
            "conference_type",
            f"profile {profile.name} has no rules for {conference_type} conferences",
        )
    rules = profile.rules_for(conference_type)
    eligible = [a for a in agencies if a.active and _exclusion(profile, stage, a) is None]
    if area is not None:
        eligible.sort(key=lambda a: _area_rank(a, area))  # stable: directory order within a rank
    picking = _Picking(
        profile,
        agencies,
        stage,
        conference_type,
        area,
        eligible,
        where=f"{conference_type} conferences in profile {profile.name}",
    )
    lead, lead_rule = _lead(picking, rules, preferred_lead)
    leads, lead_rules = _co_leads(picking, rules, lead, lead_rule)
    _coordinator(picking, rules, leads, lead_rules)
    _core_group(picking)
    cap = core_cap_warning(picking.chosen.values(), profile)
    if cap is not None:
        picking.warnings.append(cap)
    _needs(picking, needs)
    proposals = sorted(picking.chosen.values(), key=lambda p: _ROLE_RANK[p.role])
    return Selection(proposals=proposals, warnings=picking.warnings)


def _lead(
    picking: _Picking, rules: ConferenceTypeRules, preferred_lead: str | None
) -> tuple[AgencyView, str]:
    """The lead and its rule: the agency chosen at a transfer if it may lead here, else the
    first agency of the stage's lead kinds."""
    stage, where = picking.stage, picking.where
    stage_kinds = rules.lead_kinds_by_stage.get(stage)
    lead_kinds = stage_kinds or rules.lead_kinds
    if preferred_lead is not None:
        found = _transfer_lead(
            preferred_lead,
            profile=picking.profile,
            agencies=picking.agencies,
            stage=stage,
            lead_kinds=lead_kinds,
            where=where,
        )
        if isinstance(found, str):
            picking.warnings.append(
                f"the lead chosen at the transfer, agency {_named(preferred_lead)}, {found}: "
                "the profile's rule chooses the lead"
            )
        else:
            lead, lead_kind = found
            return lead, (
                f"lead by transfer (agency chosen by the coordinator; {lead_kind} may lead "
                f"{where}{f' at {stage}' if stage_kinds else ''})"
            )
    for kind in lead_kinds:
        first = picking.first_of(kind)
        if first is not None:
            picking.taken(first, "lead")
            at_stage = f" at {stage}" if stage_kinds else ""
            return first, f"lead{at_stage} of {where} ({kind})"
    raise Refusal.of(
        "lead",
        f"no active agency of kind {_kinds(lead_kinds)} may lead {where} at stage {stage}",
    )


def _co_leads(
    picking: _Picking, rules: ConferenceTypeRules, lead: AgencyView, lead_rule: str
) -> tuple[list[AgencyView], dict[str, str]]:
    """The lead and a co-lead per co-lead kind no lead covers yet, with each one's rule."""
    leads = [lead]
    lead_rules = {lead.code: lead_rule}
    for kind in rules.co_lead_kinds:
        if any(kind in a.kinds for a in leads):
            continue
        co_lead = picking.first_of(kind)
        if co_lead is None:
            picking.warnings.append(
                f"co-lead: no active agency of kind {kind} may lead at stage {picking.stage}"
            )
            continue
        leads.append(picking.taken(co_lead, "co-lead"))
        lead_rules[co_lead.code] = f"co-lead of {picking.where} ({kind})"
    return leads, lead_rules


def _coordinator(
    picking: _Picking,
    rules: ConferenceTypeRules,
    leads: list[AgencyView],
    lead_rules: dict[str, str],
) -> None:
    """Propose the leads and the coordinator: a lead of the first coordinator kind available
    coordinates (the first lead, when none is available), otherwise an agency of that kind."""
    coordinator = coordinator_kind = coordinating = None
    for kind in rules.coordinator_kinds:
        coordinator = next((a for a in leads if kind in a.kinds), None) or picking.first_of(kind)
        if coordinator is not None:
            coordinator_kind = kind
            break
    if coordinator is None or coordinator in leads:
        coordinating = coordinator or leads[0]
        if not rules.coordinator_kinds:
            note = "the profile names no coordinator kind"
        elif coordinator is None:
            note = "no agency of a coordinator kind available"
            picking.warnings.append(
                f"no active agency of kind {_kinds(rules.coordinator_kinds)} may coordinate "
                f"at stage {picking.stage}: the lead coordinates"
            )
        else:
            note = str(coordinator_kind)
        lead_rules[coordinating.code] += f"; also coordinates ({note})"
    for head in leads:
        picking.chosen[head.code] = Proposal(
            head.code,
            Role.lead,
            lead_rules[head.code],
            coordinates=coordinating is not None and head.code == coordinating.code,
        )
    if coordinator is not None and coordinator not in leads:
        picking.taken(coordinator, "coordinator")
        picking.chosen[coordinator.code] = Proposal(
            coordinator.code,
            Role.coordinator,
            f"coordinator of {picking.where} ({coordinator_kind})",
        )


def _core_group(picking: _Picking) -> None:
    """Propose an agency for each seat of the core group no chosen agency fills yet."""
    profile, conference_type, stage = picking.profile, picking.conference_type, picking.stage
    core_path = profile.core_path(conference_type, stage)
    at_stage = f" at {stage}" if core_path.startswith("core_kinds_by_stage") else ""
    for i, slot in enumerate(profile.core_for(conference_type, stage)):
        if any(slot.fits(a.kinds, a.scope) for a in picking.eligible if a.code in picking.chosen):
            continue
        agency = next((a for a in picking.eligible if slot.fits(a.kinds, a.scope)), None)
        if agency is None:
            if not any(slot.fits(a.kinds, a.scope) for a in picking.agencies if a.active):
                picking.warnings.append(
                    f"core group: no active agency of {_seat(slot)} in the directory "
                    f"({core_path}[{i}] of profile {profile.name})"
                )
            continue
        picking.taken(agency, f"core group ({slot.label})")
        phases = attended_phases(profile, conference_type, agency.kinds, Role.core)
        picking.chosen[agency.code] = Proposal(
            agency.code,
            Role.core,
            f"core group of {picking.where}{at_stage} ({slot.label}){_phase_note(phases)}",
            phases=phases,
        )


def _needs(picking: _Picking, needs: list[Need]) -> None:
    """Propose an agency of each kind the profile names for a need, unless one is chosen."""
    profile = picking.profile
    for need in dict.fromkeys(needs):
        kinds = profile.need_kinds.get(need)
        if not kinds:
            picking.warnings.append(
                f"need {need}: profile {profile.name} names no agency kind for it"
            )
            continue
        for kind in kinds:
            if picking.covered(kind):
                continue
            agency = picking.first_of(kind)
            if agency is None:
                if not any(kind in a.kinds for a in picking.agencies if a.active):
                    picking.warnings.append(
                        f"need {need}: no active agency of kind {kind} in the directory"
                    )
                continue
            picking.taken(agency, f"need {need} ({kind})")
            phases = attended_phases(
                profile, picking.conference_type, agency.kinds, Role.case_dependent
            )
            picking.chosen[agency.code] = Proposal(
                agency.code,
                Role.case_dependent,
                f"need {need} in profile {profile.name} ({kind}){_phase_note(phases)}",
                phases=phases,
            )


def _seat(slot: CoreSlot) -> str:
    return f"kind {slot.kind}" + (f" with scope {slot.scope}" if slot.scope else "")


def _named(code: str) -> str:
    """An agency code for a message, or a neutral phrase if the input is not code-shaped."""
    return f"'{code}'" if _CODE_RE.fullmatch(code) and len(code) <= 64 else "with this code"


def apply_changes(
    selection: list[Proposal],
    *,
    add: list[str],
    remove: list[str],
    reason: str | None,
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    conference_type: ConferenceType | None = None,
) -> list[Proposal]:
    """Add agencies and remove others, for a reason; all or nothing.

    An added agency that fits a seat of the conference type's core group at this stage (a
    second police force, say) joins in role core and counts against core_cap
    (`core_cap_warning`); any other in role case_dependent. With `conference_type` an addition
    also gets the phases the profile gives its kinds; without it, role case_dependent and every
    phase (callers should pass it).

    Raises Refusal naming each problem: no reason; an unknown or inactive agency; removing a
    lead (co-leads too) or the coordinator; adding an agency a hard stage rule excludes. An
    agency a default stage rule excludes may be added: its rule records the override. The
    caller records the removals and their reason (the returned list no longer holds them).
    """
    if not add and not remove:
        return list(selection)
    problems: list[Problem] = []
    text = (reason or "").strip()
    if not text:
        problems.append(Problem("reason", "required when the list is changed"))
    elif len(text) > MAX_REASON:
        problems.append(Problem("reason", f"at most {MAX_REASON} characters"))
    on_list = {p.agency_code: p for p in selection}
    added = _additions(
        add,
        problems,
        on_list=on_list,
        remove=remove,
        reason=text,
        profile=profile,
        agencies=agencies,
        stage=stage,
        conference_type=conference_type,
    )
    removed = _removals(remove, problems, selection=selection, on_list=on_list)
    if problems:
        raise Refusal(*problems)
    kept = [p for p in selection if p.agency_code not in removed]
    return sorted(kept + added, key=lambda p: _ROLE_RANK.get(p.role, len(_ROLE_RANK)))


def _additions(
    add: list[str],
    problems: list[Problem],
    *,
    on_list: dict[str, Proposal],
    remove: list[str],
    reason: str,
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    conference_type: ConferenceType | None,
) -> list[Proposal]:
    """The proposals for the agencies to add; what stands in the way goes to `problems`."""
    directory = {a.code: a for a in agencies}
    added: list[Proposal] = []
    seen: set[str] = set()
    seats = profile.core_for(conference_type, stage) if conference_type is not None else []

    def addition(agency: AgencyView, over: str) -> Proposal:
        seat = next((s for s in seats if s.fits(agency.kinds, agency.scope)), None)
        role = Role.case_dependent if seat is None else Role.core
        phases = (
            None
            if conference_type is None
            else attended_phases(profile, conference_type, agency.kinds, role)
        )
        notes = [f"to the core group ({seat.label})"] if seat is not None else []
        notes += [over] if over else []
        notes += [f"({_attends(phases)})"] if phases is not None else []
        return Proposal(
            agency.code,
            role,
            " ".join(["added by the coordinator", *notes]) + f": {reason}",
            override_reason=reason,
            phases=phases,
        )

    for i, code in enumerate(add):
        here = f"add[{i}]"
        agency = directory.get(code)
        if agency is None:
            problems.append(Problem(here, f"no agency {_named(code)} in the directory"))
        elif code in seen:
            problems.append(Problem(here, f"agency '{code}' is listed twice"))
        elif not agency.active:
            problems.append(Problem(here, f"agency '{code}' is inactive in the directory"))
        elif code in on_list:
            problems.append(Problem(here, f"agency '{code}' is already on the list"))
        elif code in remove:
            problems.append(Problem(here, f"agency '{code}' is also to be removed"))
        else:
            excluded = _exclusion(profile, stage, agency)
            if excluded is not None and excluded[1].hard:
                index, rule = excluded
                problems.append(
                    Problem(
                        here,
                        f"agency '{code}' is excluded at stage {stage} by a hard rule of profile "
                        f"{profile.name} (stage_rules[{index}]: {rule.reason})",
                    )
                )
            elif excluded is not None:
                over = f"over default stage rule stage_rules[{excluded[0]}] ({stage})"
                added.append(addition(agency, over))
            else:
                added.append(addition(agency, ""))
        seen.add(code)
    return added


def _removals(
    remove: list[str],
    problems: list[Problem],
    *,
    selection: list[Proposal],
    on_list: dict[str, Proposal],
) -> set[str]:
    """The codes to remove; a lead, the coordinator or an agency not on the list goes to
    `problems`."""
    coordinator = coordinator_code(selection)
    first_lead = next((p.agency_code for p in selection if p.role == Role.lead), None)
    removed: set[str] = set()
    for i, code in enumerate(remove):
        here = f"remove[{i}]"
        proposal = on_list.get(code)
        if proposal is None:
            problems.append(Problem(here, f"agency {_named(code)} is not on the list"))
        elif code in removed:
            problems.append(Problem(here, f"agency '{code}' is listed twice"))
        elif proposal.role == Role.lead:
            which = "the lead" if code == first_lead else "a co-lead"
            problems.append(Problem(here, f"{which} cannot be removed ({proposal.rule})"))
        elif code == coordinator:
            problems.append(Problem(here, f"the coordinator cannot be removed ({proposal.rule})"))
        removed.add(code)
    return removed


def unsupplied(profile: Profile, agencies: list[AgencyView]) -> list[tuple[str, str]]:
    """What the profile asks for that these agencies cannot supply: (path in the profile, why).

    Checked: a lead for each conference type at each open stage (stage rules applied), each
    co-lead kind, and each seat of the core group (core_kinds and core_kinds_by_stage, scopes
    included). Needs and coordinator kinds are not: a need is case-dependent and the lead
    coordinates where no coordinator kind is available.
    """
    active = [a for a in agencies if a.active]
    found: list[tuple[str, str]] = []
    for ctype, rules in profile.conference_types.items():
        here = f"conference_types.{ctype}"
        failing: dict[str, list[Stage]] = {}
        for stage in (s for s in Stage if s != Stage.closed):
            by_stage = stage in rules.lead_kinds_by_stage
            kinds = rules.lead_kinds_by_stage[stage] if by_stage else rules.lead_kinds
            path = f"{here}.lead_kinds_by_stage.{stage}" if by_stage else f"{here}.lead_kinds"
            if not any(
                a.kinds & set(kinds) and _exclusion(profile, stage, a) is None for a in active
            ):
                failing.setdefault(path, []).append(stage)
        for path, stages in failing.items():
            kinds = rules.lead_kinds_by_stage.get(stages[0]) or rules.lead_kinds
            found.append(
                (
                    path,
                    f"no active agency of kind {_kinds(kinds)} in the directory may lead at "
                    f"{', '.join(stages)}",
                )
            )
        for i, kind in enumerate(rules.co_lead_kinds):
            if not any(kind in a.kinds for a in active):
                found.append(
                    (
                        f"{here}.co_lead_kinds[{i}]",
                        f"no active agency of kind {kind} in the directory",
                    )
                )
    seats = [(f"core_kinds.{t}", slots) for t, slots in profile.core_kinds.items()]
    seats += [
        (f"core_kinds_by_stage.{stage}.{t}", slots)
        for stage, by_type in profile.core_kinds_by_stage.items()
        for t, slots in by_type.items()
    ]
    for path, slots in seats:
        for i, slot in enumerate(slots):
            if any(slot.fits(a.kinds, a.scope) for a in active):
                continue
            others = [a for a in active if slot.kind in a.kinds]
            there = ", ".join(
                f"{a.code} ({f'scope {a.scope}' if a.scope else 'no scope'})" for a in others
            )
            found.append(
                (
                    f"{path}[{i}]",
                    f"no active agency of {_seat(slot)} in the directory"
                    + (f" (of kind {slot.kind} it has: {there})" if others else ""),
                )
            )
    return found
