"""Stakeholder selection: who a governance profile invites to a conference, and why.

`propose_participants` applies a profile to the directory; `apply_changes` applies the
coordinator's additions and removals. Both are pure: the caller stores the result.

Choices made here:
- One agency per kind: a kind already covered by a chosen agency is not filled again (Neustart,
  a cso and probation, covers both), otherwise the first active agency in directory order is taken.
- An agency is excluded at a stage if any of its kinds is excluded there (hard or default).
- The lead coordinates when it has the first coordinator kind available (or the profile names
  none): then there is one Proposal with role `lead` whose rule says it also coordinates;
  `coordinator_code` finds the coordinating agency either way.
- The core group, counted against `core_cap`, is the lead, the coordinator and the core agencies.
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


@dataclass(frozen=True)
class AgencyView:
    """What selection needs to know of an agency."""

    code: str
    kinds: frozenset[str]
    active: bool = True

    @classmethod
    def of(cls, agency: Agency) -> "AgencyView":
        return cls(code=agency.code, kinds=frozenset(agency.kinds), active=agency.active)


@dataclass(frozen=True)
class Selection:
    """The proposed participants (lead first, then by role) and warnings for the coordinator."""

    proposals: list[Proposal]
    warnings: list[str] = field(default_factory=list)

    @property
    def lead(self) -> Proposal:
        return next(p for p in self.proposals if p.role == Role.lead)


def coordinator_code(proposals: list[Proposal]) -> str | None:
    """The coordinating agency: the coordinator if there is one, else the lead."""
    for role in (Role.coordinator, Role.lead):
        for proposal in proposals:
            if proposal.role == role:
                return proposal.agency_code
    return None


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


def propose_participants(
    *,
    profile: Profile,
    agencies: list[AgencyView],
    stage: Stage,
    conference_type: ConferenceType,
    needs: list[Need],
) -> Selection:
    """Propose exactly one lead, a coordinator, the core group and an agency for each need.

    Raises Refusal if the profile has no rules for the conference type, the case is closed,
    or no active agency may lead at this stage.
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
    chosen: dict[str, Proposal] = {}
    warnings: list[str] = []

    def first_of(kind: AgencyKind) -> AgencyView | None:
        return next((a for a in eligible if kind in a.kinds), None)

    def covered(kind: AgencyKind) -> bool:
        return any(kind in a.kinds for a in eligible if a.code in chosen)

    lead = lead_kind = None
    for kind in rules.lead_kinds:
        lead = first_of(kind)
        if lead is not None:
            lead_kind = kind
            break
    if lead is None:
        raise Refusal.of(
            "lead",
            f"no active agency of kind {_kinds(rules.lead_kinds)} may lead {where} "
            f"at stage {stage}",
        )
    lead_rule = f"lead of {where} ({lead_kind})"

    coordinator = coordinator_kind = None
    for kind in rules.coordinator_kinds:
        coordinator = lead if kind in lead.kinds else first_of(kind)
        if coordinator is not None:
            coordinator_kind = kind
            break
    if coordinator is None or coordinator.code == lead.code:
        if not rules.coordinator_kinds:
            lead_rule += "; also coordinates (the profile names no coordinator kind)"
        elif coordinator is None:
            lead_rule += "; also coordinates (no agency of a coordinator kind available)"
            warnings.append(
                f"no active agency of kind {_kinds(rules.coordinator_kinds)} may coordinate "
                f"at stage {stage}: the lead coordinates"
            )
        else:
            lead_rule += f"; also coordinates ({coordinator_kind})"
        chosen[lead.code] = Proposal(lead.code, Role.lead, lead_rule)
    else:
        chosen[lead.code] = Proposal(lead.code, Role.lead, lead_rule)
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

    Raises Refusal naming each problem: no reason; an unknown or inactive agency; removing the
    lead or the coordinator; adding an agency a hard stage rule excludes. An agency a default
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
            problems.append(Problem(here, f"the lead cannot be removed ({proposal.rule})"))
        elif code == coordinator:
            problems.append(Problem(here, f"the coordinator cannot be removed ({proposal.rule})"))
        removed.add(code)

    if problems:
        raise Refusal(*problems)
    kept = [p for p in selection if p.agency_code not in removed]
    return sorted(kept + added, key=lambda p: _ROLE_RANK.get(p.role, len(_ROLE_RANK)))
