"""Stakeholder selection: who a governance profile invites to a conference, and why.

`propose_participants` applies a profile to the directory; `apply_changes` applies the
coordinator's additions and removals. Both are pure: the caller stores the result.

Choices made here:
- One agency per kind: a kind already covered by a chosen agency is not filled again (Neustart,
  a cso and probation, covers both), otherwise the first active agency in directory order is taken.
- With the case's area, agencies of that area come first, then those without an area (national),
  then the others (with a warning); directory order decides within each group.
- An agency is excluded at a stage if any of its kinds is excluded there (hard or default).
- The lead is the agency chosen at a transfer if it may lead at this stage, else the first of the
  stage's lead kinds (`lead_kinds_by_stage`, else `lead_kinds`). Each co-lead kind not already
  covered by a lead adds one agency in role `lead`; `Selection.lead` is the first.
- A lead (first or co-lead) coordinates when it has the first coordinator kind available (or the
  profile names none): its rule says it also coordinates and `coordinates` is set; otherwise a
  separate agency has role `coordinator`. `coordinator_code` finds the coordinating agency.
- The core group, counted against `core_cap`, is the leads, the coordinator and the core agencies.
- Client and family are not agencies and are never proposed here.
"""

import re
from dataclasses import dataclass, field

from models.errors import Problem, Refusal
from models.profile import Profile, StageRule
from models.tables import Agency
from models.vocabulary import AgencyKind, ConferenceType, Need, Role, Stage

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


@dataclass(frozen=True)
class AgencyView:
    """What selection needs to know of an agency."""

    code: str
    kinds: frozenset[str]
    active: bool = True
    area: str | None = None  # None: national, serves every area

    @classmethod
    def of(cls, agency: Agency) -> "AgencyView":
        return cls(
            code=agency.code, kinds=frozenset(agency.kinds), active=agency.active, area=agency.area
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
    where = f"{conference_type} conferences in profile {profile.name}"
    eligible = [a for a in agencies if a.active and _exclusion(profile, stage, a) is None]
    if area is not None:
        eligible.sort(key=lambda a: _area_rank(a, area))  # stable: directory order within a rank
    chosen: dict[str, Proposal] = {}
    warnings: list[str] = []

    def first_of(kind: AgencyKind) -> AgencyView | None:
        return next((a for a in eligible if kind in a.kinds), None)

    def covered(kind: AgencyKind) -> bool:
        return any(kind in a.kinds for a in eligible if a.code in chosen)

    def taken(agency: AgencyView, purpose: str) -> AgencyView:
        if area is not None and agency.area not in (None, area):
            warnings.append(
                f"{purpose}: '{agency.code}' of area {agency.area} is proposed; no agency of "
                f"area {area} or without an area is available"
            )
        return agency

    stage_kinds = rules.lead_kinds_by_stage.get(stage)
    lead_kinds = stage_kinds or rules.lead_kinds
    lead = lead_kind = None
    lead_rule = ""
    if preferred_lead is not None:
        found = _transfer_lead(
            preferred_lead,
            profile=profile,
            agencies=agencies,
            stage=stage,
            lead_kinds=lead_kinds,
            where=where,
        )
        if isinstance(found, str):
            warnings.append(
                f"the lead chosen at the transfer, agency {_named(preferred_lead)}, {found}: "
                "the profile's rule chooses the lead"
            )
        else:
            lead, lead_kind = found
            lead_rule = (
                f"lead by transfer (agency chosen by the coordinator; {lead_kind} may lead "
                f"{where}{f' at {stage}' if stage_kinds else ''})"
            )
    if lead is None:
        for kind in lead_kinds:
            lead = first_of(kind)
            if lead is not None:
                lead_kind = kind
                break
        if lead is None:
            raise Refusal.of(
                "lead",
                f"no active agency of kind {_kinds(lead_kinds)} may lead {where} at stage {stage}",
            )
        taken(lead, "lead")
        at_stage = f" at {stage}" if stage_kinds else ""
        lead_rule = f"lead{at_stage} of {where} ({lead_kind})"

    leads = [lead]
    lead_rules = {lead.code: lead_rule}
    for kind in rules.co_lead_kinds:
        if any(kind in a.kinds for a in leads):
            continue
        co_lead = first_of(kind)
        if co_lead is None:
            warnings.append(f"co-lead: no active agency of kind {kind} may lead at stage {stage}")
            continue
        leads.append(taken(co_lead, "co-lead"))
        lead_rules[co_lead.code] = f"co-lead of {where} ({kind})"

    coordinator = coordinator_kind = coordinating = None
    for kind in rules.coordinator_kinds:
        coordinator = next((a for a in leads if kind in a.kinds), None) or first_of(kind)
        if coordinator is not None:
            coordinator_kind = kind
            break
    if coordinator is None or coordinator in leads:
        coordinating = coordinator or lead
        if not rules.coordinator_kinds:
            note = "the profile names no coordinator kind"
        elif coordinator is None:
            note = "no agency of a coordinator kind available"
            warnings.append(
                f"no active agency of kind {_kinds(rules.coordinator_kinds)} may coordinate "
                f"at stage {stage}: the lead coordinates"
            )
        else:
            note = str(coordinator_kind)
        lead_rules[coordinating.code] += f"; also coordinates ({note})"
    for head in leads:
        chosen[head.code] = Proposal(
            head.code,
            Role.lead,
            lead_rules[head.code],
            coordinates=coordinating is not None and head.code == coordinating.code,
        )
    if coordinator is not None and coordinator not in leads:
        taken(coordinator, "coordinator")
        chosen[coordinator.code] = Proposal(
            coordinator.code, Role.coordinator, f"coordinator of {where} ({coordinator_kind})"
        )

    for kind in profile.core_kinds.get(conference_type, []):
        if covered(kind):
            continue
        agency = first_of(kind)
        if agency is None:
            if not any(kind in a.kinds for a in agencies if a.active):
                warnings.append(f"core group: no active agency of kind {kind} in the directory")
            continue
        taken(agency, f"core group ({kind})")
        chosen[agency.code] = Proposal(agency.code, Role.core, f"core group of {where} ({kind})")

    core_group = len(chosen)
    if core_group > profile.core_cap:
        warnings.append(
            f"core group has {core_group} agencies, more than core_cap {profile.core_cap} "
            f"of profile {profile.name}"
        )

    for need in dict.fromkeys(needs):
        kinds = profile.need_kinds.get(need)
        if not kinds:
            warnings.append(f"need {need}: profile {profile.name} names no agency kind for it")
            continue
        for kind in kinds:
            if covered(kind):
                continue
            agency = first_of(kind)
            if agency is None:
                if not any(kind in a.kinds for a in agencies if a.active):
                    warnings.append(
                        f"need {need}: no active agency of kind {kind} in the directory"
                    )
                continue
            taken(agency, f"need {need} ({kind})")
            chosen[agency.code] = Proposal(
                agency.code, Role.case_dependent, f"need {need} in profile {profile.name} ({kind})"
            )

    proposals = sorted(chosen.values(), key=lambda p: _ROLE_RANK[p.role])
    return Selection(proposals=proposals, warnings=warnings)


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
) -> list[Proposal]:
    """Add agencies (role case_dependent) and remove others, for a reason; all or nothing.

    Raises Refusal naming each problem: no reason; an unknown or inactive agency; removing a
    lead (co-leads too) or the coordinator; adding an agency a hard stage rule excludes. An agency a default
    stage rule excludes may be added: its rule records the override. The caller records the
    removals and their reason (the returned list no longer holds them).
    """
    if not add and not remove:
        return list(selection)
    problems: list[Problem] = []
    text = (reason or "").strip()
    if not text:
        problems.append(Problem("reason", "required when the list is changed"))
    elif len(text) > MAX_REASON:
        problems.append(Problem("reason", f"at most {MAX_REASON} characters"))

    directory = {a.code: a for a in agencies}
    on_list = {p.agency_code: p for p in selection}
    coordinator = coordinator_code(selection)
    first_lead = next((p.agency_code for p in selection if p.role == Role.lead), None)
    added: list[Proposal] = []
    seen: set[str] = set()
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
                added.append(
                    Proposal(
                        code,
                        Role.case_dependent,
                        f"added by the coordinator over default stage rule "
                        f"stage_rules[{excluded[0]}] ({stage}): {text}",
                        override_reason=text,
                    )
                )
            else:
                added.append(
                    Proposal(
                        code,
                        Role.case_dependent,
                        f"added by the coordinator: {text}",
                        override_reason=text,
                    )
                )
        seen.add(code)

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

    if problems:
        raise Refusal(*problems)
    kept = [p for p in selection if p.agency_code not in removed]
    return sorted(kept + added, key=lambda p: _ROLE_RANK.get(p.role, len(_ROLE_RANK)))
