"""Governance profiles: a jurisdiction's standard operating procedure as validated YAML data.

A profile lives in `<profiles_dir>/<name>.yaml`. `load_profile` reads and validates it and raises
`ProfileError` naming the file, the path inside it and the reason. Cross-field rules are checked
inside the models, so a `Profile` built in code is held to the same rules as one read from a file.
"""

import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.config.settings import get_settings
from models.vocabulary import (
    AgencyKind,
    Classification,
    ConferenceType,
    ConsentScope,
    Need,
    Phase,
    Stage,
    phase_named,
)

SLUG = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
_SLUG_RE = re.compile(SLUG)

#: caseconf's own conference phases, in the only order they may run. An installation may add
#: phases of its own between information and decision: any other name that is not one of a
#: case's phases (`Phase`), each asked by a step registered for it (models/steps/registry.py).
CONFERENCE_PHASES: tuple[Phase, ...] = (Phase.information, Phase.family_only, Phase.decision)


#: A phase of a conference: one of CONFERENCE_PHASES, or an installation's own (a slug).
PhaseName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=24,
        examples=list(CONFERENCE_PHASES),
        description="information, family_only, decision, or the phase of a step the "
        "installation registered",
    ),
    AfterValidator(phase_named),
]

#: Classifications from the least to the most sensitive; a clearance covers its rank and below.
RANK: dict[Classification, int] = {
    Classification.shared: 0,
    Classification.professional: 1,
    Classification.restricted: 2,
}

#: What an agency kind receives in a conference type when the profile grants it nothing else.
DEFAULT_CLEARANCE = Classification.professional

StrictBool = Annotated[bool, Strict()]
StrictInt = Annotated[int, Strict()]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]

_RULE_ERROR = "profile_rule"


class ProfileError(Exception):
    """A profile that cannot be used; the message names the file, the path inside it and why."""


def rule_error(field: str, reason: str) -> PydanticCustomError:
    """A cross-field error whose `field` is appended to the location when reported."""
    return PydanticCustomError(_RULE_ERROR, "{reason}", {"field": field, "reason": reason})


def _duplicates(field: str, items: list[Any]) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise rule_error(f"{field}[{i}]", f"'{item}' is listed twice")
        seen.add(item)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreSlot(_Strict):
    """One seat of the core group: an agency of `kind`; with `scope`, one whose directory entry
    has that scope (Catalonia: the local and the regional police are two seats of kind police)."""

    kind: AgencyKind
    scope: str | None = Field(
        default=None,
        pattern=SLUG,
        max_length=64,
        description="The directory's scope of the agency that fills this seat (e.g. local, "
        "regional); omitted: any agency of the kind.",
    )

    @property
    def label(self) -> str:
        """`police` or `police, scope local`: how rules and warnings name the seat."""
        return str(self.kind) if self.scope is None else f"{self.kind}, scope {self.scope}"

    def fits(self, kinds: Collection[str], scope: str | None) -> bool:
        """Whether an agency with these kinds and this directory scope fills the seat."""
        return self.kind in kinds and (self.scope is None or self.scope == scope)

    def __str__(self) -> str:
        return self.label


def _entry_tag(value: Any) -> str:
    return "[kind]" if isinstance(value, str) else "[seat]"


def _as_slot(value: AgencyKind | CoreSlot) -> CoreSlot:
    return value if isinstance(value, CoreSlot) else CoreSlot(kind=value)


#: A core-group entry in a profile file: a plain agency kind (`police`) or a seat of a kind with a
#: directory scope (`{kind: police, scope: local}`); both are held as a CoreSlot. The tags keep
#: error paths short (`core_kinds.security[0]: ...`; error_path skips them).
if TYPE_CHECKING:
    CoreEntry = CoreSlot
else:
    CoreEntry = Annotated[
        Annotated[AgencyKind, Tag("[kind]")] | Annotated[CoreSlot, Tag("[seat]")],
        Discriminator(_entry_tag),
        AfterValidator(_as_slot),
    ]


def _check_core(field: str, slots: list[CoreSlot]) -> None:
    """No seat twice, and a kind either has one plain seat or only scoped seats."""
    _duplicates(field, slots)
    for i, slot in enumerate(slots):
        if slot.scope is None and any(s.kind == slot.kind and s.scope for s in slots):
            raise rule_error(
                f"{field}[{i}]",
                f"{slot.kind} is listed with and without a scope; give each {slot.kind} seat "
                "a scope, or list the kind once without one",
            )


class ConferenceTypeRules(_Strict):
    """How one conference type runs: its phases, consent, who is invited, who leads."""

    phases: list[PhaseName] = Field(
        description="Ordered phases: information first, decision last, family_only and an "
        "installation's own phases (each with a registered step) between."
    )
    consent_required: StrictBool = Field(
        description="The client's recorded consent is needed before the conference."
    )
    consent_scopes: list[ConsentScope] = Field(
        default_factory=list,
        description="The consent scopes this type needs: social_network_conference before every "
        "step, family_involvement from the consent step up to the family_only phase. Omitted: "
        "[social_network_conference] if consent_required, else none.",
    )
    client_and_family: StrictBool = Field(description="The client and family are invited.")
    client_and_family_phases: list[PhaseName] | None = Field(
        default=None,
        description="The phases the client and family attend, among this type's phases; "
        "omitted: all of them. The family_only phase is always theirs. Only with "
        "client_and_family: true.",
    )
    lead_kinds: list[AgencyKind] = Field(
        min_length=1, description="Agency kinds that may lead, in order of preference."
    )
    coordinator_kinds: list[AgencyKind] = Field(
        default_factory=list,
        description="Agency kinds that may coordinate, in order of preference; "
        "empty means the lead coordinates.",
    )
    co_lead_kinds: list[AgencyKind] = Field(
        default_factory=list,
        description="Agency kinds that lead together with the lead (Catalonia: the municipality "
        "beside the prison's specialised unit); each is proposed in the lead role.",
    )
    lead_kinds_by_stage: dict[Stage, list[AgencyKind]] = Field(
        default_factory=dict,
        description="At these stages, these kinds may lead instead of lead_kinds, in order of "
        "preference (e.g. probation leads after release).",
    )
    share_with_consent_kinds: list[AgencyKind] = Field(
        default_factory=list,
        description="Agencies of these kinds receive professional items about the client only "
        "with the client's share_with:<agency code> consent in force; without it, shared "
        "items only.",
    )
    phases_by_kind: dict[AgencyKind, list[PhaseName]] = Field(
        default_factory=dict,
        description="The phases an agency of a kind attends, among this type's phases; kinds "
        "not listed attend every phase but family_only (the client's and family's alone). An "
        "agency with several kinds attends the phases of each. Leads and the coordinator always "
        "attend every phase.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_scopes(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "consent_scopes" not in data:
            needed = data.get("consent_required") is True
            return {**data, "consent_scopes": [ConsentScope.social_network_conference] * needed}
        return data

    def _check_client_phases(self) -> None:
        attended = self.client_and_family_phases
        if attended is None:
            return
        field = "client_and_family_phases"
        if not self.client_and_family:
            raise rule_error(field, "only with client_and_family: true (nobody would attend)")
        if not attended:
            raise rule_error(field, "name at least one phase, or leave it out for all of them")
        for i, phase in enumerate(attended):
            if phase not in self.phases:
                raise rule_error(f"{field}[{i}]", f"'{phase}' is not one of this type's phases")
        _duplicates(field, attended)
        if Phase.family_only in self.phases and Phase.family_only not in attended:
            raise rule_error(field, "must include family_only: that phase is theirs alone")

    def _check_phases_by_kind(self) -> None:
        for kind, attended in self.phases_by_kind.items():
            field = f"phases_by_kind.{kind}"
            if not attended:
                raise rule_error(field, "name at least one phase, or leave the kind out for all")
            for i, phase in enumerate(attended):
                if phase == Phase.family_only:
                    raise rule_error(
                        f"{field}[{i}]",
                        "family_only is the client's and family's alone; no professional attends",
                    )
                if phase not in self.phases:
                    raise rule_error(f"{field}[{i}]", f"'{phase}' is not one of this type's phases")
            _duplicates(field, attended)

    def phase_after(self, phase: str) -> str:
        """The phase that follows `phase` in this type's conferences: the next of its phases,
        or the release after the last (the decision)."""
        at = self.phases.index(phase)
        return self.phases[at + 1] if at + 1 < len(self.phases) else Phase.release

    def professional_phases(self) -> list[str]:
        """The phases professionals may attend: every phase of the type but family_only."""
        return [p for p in self.phases if p != Phase.family_only]

    def client_phases(self) -> list[str]:
        """The phases the client and family attend (none if they are not invited)."""
        if not self.client_and_family:
            return []
        attended = self.client_and_family_phases or self.phases
        return [p for p in self.phases if p in attended]

    @model_validator(mode="after")
    def _consistent(self) -> "ConferenceTypeRules":
        for i, phase in enumerate(self.phases):
            if isinstance(phase, Phase) and phase not in CONFERENCE_PHASES:
                allowed = ", ".join(CONFERENCE_PHASES)
                raise rule_error(f"phases[{i}]", f"'{phase}' is not a conference phase ({allowed})")
        _duplicates("phases", self.phases)
        order = [CONFERENCE_PHASES.index(p) for p in self.phases if p in CONFERENCE_PHASES]
        if order != sorted(order):
            raise rule_error("phases", "must run in the order information, family_only, decision")
        for needed in (Phase.information, Phase.decision):
            if needed not in self.phases:
                raise rule_error("phases", f"the {needed} phase is required")
        if self.phases[0] != Phase.information or self.phases[-1] != Phase.decision:
            raise rule_error(
                "phases", "information comes first and decision last; other phases go between"
            )
        if Phase.family_only in self.phases and not self.client_and_family:
            raise rule_error(
                "phases", "a family_only phase needs client_and_family: true (nobody would attend)"
            )
        if self.consent_required and not self.client_and_family:
            raise rule_error(
                "consent_required",
                "contradicts client_and_family: false (consent is asked of an invited client)",
            )
        self._check_consent_scopes()
        self._check_client_phases()
        self._check_phases_by_kind()
        _duplicates("lead_kinds", self.lead_kinds)
        _duplicates("coordinator_kinds", self.coordinator_kinds)
        _duplicates("co_lead_kinds", self.co_lead_kinds)
        for i, kind in enumerate(self.co_lead_kinds):
            # A later lead kind may also co-lead (it leads where no agency of the preferred kind
            # is available); the preferred kind itself never could: its lead covers it.
            if kind == self.lead_kinds[0]:
                raise rule_error(
                    f"co_lead_kinds[{i}]",
                    f"{kind} is the preferred lead kind (lead_kinds[0]); a kind cannot lead "
                    "beside itself",
                )
        for stage, kinds in self.lead_kinds_by_stage.items():
            if stage == Stage.closed:
                raise rule_error(
                    f"lead_kinds_by_stage.{stage}", "a closed case holds no conference"
                )
            if not kinds:
                raise rule_error(
                    f"lead_kinds_by_stage.{stage}", "at least one agency kind is required"
                )
            _duplicates(f"lead_kinds_by_stage.{stage}", kinds)
        return self

    def _check_consent_scopes(self) -> None:
        _duplicates("consent_scopes", self.consent_scopes)
        if self.consent_required and not self.consent_scopes:
            raise rule_error("consent_scopes", "consent_required: true needs at least one scope")
        if self.consent_scopes and not self.consent_required:
            raise rule_error(
                "consent_scopes", "contradicts consent_required: false (no consent is asked)"
            )
        if (
            self.consent_scopes
            and ConsentScope.social_network_conference not in self.consent_scopes
        ):
            raise rule_error(
                "consent_scopes",
                "social_network_conference is required with any other scope "
                "(the client consents to the conference first)",
            )
        if (
            ConsentScope.family_involvement in self.consent_scopes
            and Phase.family_only not in self.phases
        ):
            i = self.consent_scopes.index(ConsentScope.family_involvement)
            raise rule_error(
                f"consent_scopes[{i}]",
                "family_involvement is needed before the family_only phase, and this type has none",
            )


class StageRule(_Strict):
    """Kinds not invited at a stage: refused if `hard`, else a default one may override."""

    stage: Stage
    exclude_kinds: list[AgencyKind] = Field(min_length=1)
    hard: StrictBool = False
    reason: Text

    @model_validator(mode="after")
    def _no_duplicates(self) -> "StageRule":
        _duplicates("exclude_kinds", self.exclude_kinds)
        return self


class Profile(_Strict):
    """A jurisdiction's governance profile (see config/profiles/generic.yaml)."""

    name: str = Field(pattern=SLUG, max_length=64, description="Equals the file's name.")
    title: Text
    conference_types: dict[ConferenceType, ConferenceTypeRules] = Field(min_length=1)
    default_conference_type: ConferenceType
    core_kinds: dict[ConferenceType, list[CoreEntry]] = Field(
        default_factory=dict,
        description="Who always attends, per conference type: agency kinds, or seats of a kind "
        "with the directory's scope ({kind: police, scope: local}) where one kind needs "
        "several agencies.",
    )
    core_kinds_by_stage: dict[Stage, dict[ConferenceType, list[CoreEntry]]] = Field(
        default_factory=dict,
        description="At these stages, this core group instead of core_kinds, per conference type "
        "(types not listed keep core_kinds); e.g. pre_trial: prosecution and court.",
    )
    core_cap: StrictInt = Field(
        ge=1,
        description="Warn when the core group (leads, coordinator, core, the coordinator's "
        "additions to it) is larger.",
    )
    need_kinds: dict[Need, list[AgencyKind]] = Field(
        default_factory=dict, description="Agency kinds brought in for each need."
    )
    stage_rules: list[StageRule] = Field(default_factory=list)
    clearance: dict[ConferenceType, dict[AgencyKind, Classification]] = Field(
        default_factory=dict,
        description="The most an agency of a kind may receive in minutes and messages of a "
        "conference type; kinds not listed get professional; restricted only in security. "
        "An agency with several kinds gets the highest grant among them.",
    )
    review_weeks: StrictInt = Field(
        default=12, ge=1, le=104, description="First review this many weeks after the decision."
    )
    pre_release_weeks: StrictInt = Field(
        default=12,
        ge=1,
        le=104,
        description="The pre-release conference comes this many weeks before the release date.",
    )
    post_release_review_weeks: StrictInt | None = Field(
        default=None,
        ge=1,
        le=104,
        description="A follow-up conference this many weeks after release (Neustart: 13, about "
        "3 months); none means the usual review_weeks cadence goes on.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Profile":
        if self.default_conference_type not in self.conference_types:
            raise rule_error(
                "default_conference_type",
                f"'{self.default_conference_type}' is not one of this profile's conference_types",
            )
        for ctype, slots in self.core_kinds.items():
            if ctype not in self.conference_types:
                raise rule_error(
                    f"core_kinds.{ctype}", "not one of this profile's conference_types"
                )
            _check_core(f"core_kinds.{ctype}", slots)
        for need, kinds in self.need_kinds.items():
            if not kinds:
                raise rule_error(f"need_kinds.{need}", "at least one agency kind is required")
            _duplicates(f"need_kinds.{need}", kinds)
        seen: dict[tuple[Stage, AgencyKind], int] = {}
        for i, rule in enumerate(self.stage_rules):
            for j, kind in enumerate(rule.exclude_kinds):
                earlier = seen.setdefault((rule.stage, kind), i)
                if earlier != i:
                    raise rule_error(
                        f"stage_rules[{i}].exclude_kinds[{j}]",
                        f"{kind} at {rule.stage} is already excluded by stage_rules[{earlier}]",
                    )
        for stage, by_type in self.core_kinds_by_stage.items():
            here = f"core_kinds_by_stage.{stage}"
            if stage == Stage.closed:
                raise rule_error(here, "a closed case holds no conference")
            for ctype, slots in by_type.items():
                if ctype not in self.conference_types:
                    raise rule_error(
                        f"{here}.{ctype}", "not one of this profile's conference_types"
                    )
                _check_core(f"{here}.{ctype}", slots)
                for i, slot in enumerate(slots):
                    if (stage, slot.kind) in seen:
                        rule_at = seen[(stage, slot.kind)]
                        raise rule_error(
                            f"{here}.{ctype}[{i}]",
                            f"{slot.kind} is excluded at {stage} by stage_rules[{rule_at}]",
                        )
        for ctype, grants in self.clearance.items():
            if ctype not in self.conference_types:
                raise rule_error(f"clearance.{ctype}", "not one of this profile's conference_types")
            for kind, level in grants.items():
                if level == Classification.restricted and ctype != ConferenceType.security:
                    raise rule_error(
                        f"clearance.{ctype}.{kind}",
                        "restricted may only be granted in a security conference",
                    )
        return self

    def rules_for(self, conference_type: ConferenceType) -> ConferenceTypeRules:
        """The rules of a conference type; KeyError if the profile has none."""
        return self.conference_types[conference_type]

    def core_for(self, conference_type: ConferenceType, stage: Stage) -> list[CoreSlot]:
        """The core group's seats of a conference type at a stage (core_kinds_by_stage first)."""
        by_stage = self.core_kinds_by_stage.get(stage, {})
        if conference_type in by_stage:
            return by_stage[conference_type]
        return self.core_kinds.get(conference_type, [])

    def core_path(self, conference_type: ConferenceType, stage: Stage) -> str:
        """Where `core_for` reads from, as a path in the profile file (for messages)."""
        if conference_type in self.core_kinds_by_stage.get(stage, {}):
            return f"core_kinds_by_stage.{stage}.{conference_type}"
        return f"core_kinds.{conference_type}"

    def phases_for(self, conference_type: ConferenceType, kinds: Iterable[str]) -> list[str]:
        """The phases an agency with these kinds attends (several kinds: each kind's phases),
        in the type's order; never family_only. Leads and the coordinator attend every phase
        whatever this says (`models.rules.stakeholders` applies that)."""
        rules = self.rules_for(conference_type)
        every = rules.professional_phases()
        by_kind = {str(k): phases for k, phases in rules.phases_by_kind.items()}
        attended: set[str] = set()
        for kind in kinds:
            attended.update(by_kind.get(kind, every))
        return [p for p in every if p in attended]

    def clearance_for(
        self, conference_type: ConferenceType, kinds: Iterable[str]
    ) -> Classification:
        """The most an agency with these kinds may receive: the highest grant among its kinds,
        since it holds each role (a kind not listed gets professional)."""
        grants = self.clearance.get(conference_type, {})
        levels = [grants.get(AgencyKind(k), DEFAULT_CLEARANCE) for k in kinds]
        return max(levels, key=RANK.__getitem__, default=DEFAULT_CLEARANCE)

    def stage_exclusions(self, stage: Stage) -> dict[AgencyKind, tuple[int, StageRule]]:
        """Kinds excluded at a stage, each with the index and rule that excludes it."""
        return {
            kind: (i, rule)
            for i, rule in enumerate(self.stage_rules)
            if rule.stage == stage
            for kind in rule.exclude_kinds
        }


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' is given twice", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; ValueError says what is wrong (no path)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ValueError(f"not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ValueError("the top level must be a mapping")
    return data


def error_path(loc: tuple[int | str, ...], ctx: Mapping[str, Any] | None = None) -> str:
    """`('conference_types', 'security', 'lead_kinds', 0)` -> `...security.lead_kinds[0]`."""
    path = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("[") and part.endswith("]"):
            continue  # "[key]", and the tags of a union such as CoreEntry's
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    if ctx and "field" in ctx:
        field = str(ctx["field"])
        path = f"{path}{field}" if field.startswith("[") else (f"{path}.{field}" if path else field)
    return path or "(top level)"


def describe_errors(source: str, exc: ValidationError) -> str:
    """One line per problem: `<source>: <path>: <reason>` (never the offending value)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        ctx = err.get("ctx") if err["type"] == _RULE_ERROR else None
        reason = err["msg"].removeprefix("Value error, ")
        if err["loc"] and err["loc"][-1] == "[key]":
            reason = f"not a valid key: {reason}"
        lines.append(f"{source}: {error_path(tuple(err['loc']), ctx)}: {reason}")
    return "\n".join(lines)


def parse_profile(data: Mapping[str, Any], source: str, *, name: str | None = None) -> Profile:
    """Validate profile data read from `source`; if `name` is given the profile must carry it."""
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(describe_errors(source, exc)) from None
    if name is not None and profile.name != name:
        raise ProfileError(f"{source}: name: must be '{name}', the file's name")
    return profile


#: Each profile file as last read, with its modification time and size then: a step reads its
#: case's profile several times (the cycle, its form, its apply), and parsing the YAML costs 8
#: to 40 ms.
_READ: dict[Path, tuple[int, int, Profile]] = {}


def load_profile(name: str, profiles_dir: Path | None = None) -> Profile:
    """Read and validate `<profiles_dir>/<name>.yaml` (default folder: settings.profiles_dir);
    read again whenever the file changes."""
    if profiles_dir is None:
        profiles_dir = get_settings().profiles_dir
    if not _SLUG_RE.fullmatch(name) or len(name) > 64:
        raise ProfileError(
            f"{profiles_dir}: profile names are lower-case letters, digits, '-' and '_'"
        )
    path = profiles_dir / f"{name}.yaml"
    try:
        stat = path.stat()
    except OSError:
        stat = None  # read_yaml_mapping says why
    read = _READ.get(path.absolute())
    if stat is not None and read is not None and read[:2] == (stat.st_mtime_ns, stat.st_size):
        return read[2]
    try:
        data = read_yaml_mapping(path)
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}") from None
    profile = parse_profile(data, str(path), name=name)
    if stat is not None:
        _READ[path.absolute()] = (stat.st_mtime_ns, stat.st_size, profile)
    return profile


def export_profile_schema() -> dict[str, Any]:
    """The JSON schema of a profile file, for editors and reviewers."""
    return Profile.model_json_schema()
