"""The agency directory: agencies, their kinds and representatives, as validated YAML data.

`load_directory` reads and validates the file (`DirectoryError` names the file, the entry and the
reason); `models.record.agencies.sync_directory` brings the record's tables in line with it.
"""

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.config.profile import SLUG, describe_errors, read_yaml_mapping, rule_error
from models.config.settings import get_settings
from models.vocabulary import AgencyKind, ChannelKind, Classification

Code = str  # a slug: lower-case letters and digits joined by '-' or '_'


class DirectoryError(Exception):
    """A directory file that cannot be used; the message names the file, the entry and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepresentativeEntry(_Strict):
    """A person who represents an agency; `name` is personal data and never leaves the database."""

    code: Code = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class ChannelEntry(_Strict):
    """How an agency is reached: the Apprise tag of its URL(s) and what the channel may carry.

    The URLs themselves (with their secrets) live in the Apprise config, not in the directory.
    """

    kind: ChannelKind = Field(description="email (with calendar invitations) or chat (short text).")
    tag: Code = Field(pattern=SLUG, max_length=64, description="The Apprise tag of its URL(s).")
    clearance: Classification = Field(
        default=Classification.shared,
        description="The most sensitive minutes this channel may carry as an attachment.",
    )


class VenueEntry(_Strict):
    """A place the agency offers for conferences: a meeting room or a video link.

    The label travels in every invitation and hand-over request, so it says where to go and
    nothing about anyone."""

    code: Code = Field(pattern=SLUG, max_length=64)
    label: str = Field(min_length=2, max_length=300, pattern=r"\S")


class AgencyEntry(_Strict):
    """One agency of the directory."""

    code: Code = Field(pattern=SLUG, max_length=64)
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    kinds: list[AgencyKind] = Field(min_length=1, description="One agency may have several.")
    time_zone: str = Field(max_length=64, description="An IANA time zone, e.g. Europe/Vienna.")
    language: str = Field(
        pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", max_length=8, description="e.g. de, en, de-AT."
    )
    area: str | None = Field(default=None, min_length=1, max_length=100)
    scope: Code | None = Field(
        default=None,
        pattern=SLUG,
        max_length=64,
        description="Tells apart agencies of one kind that a profile asks for separately "
        "(e.g. police: local, regional); a profile's core seat {kind: police, scope: local} "
        "is filled by an agency with this scope.",
    )
    clearance: Classification = Classification.professional
    representatives: list[RepresentativeEntry] = Field(min_length=1)
    channels: list[ChannelEntry] = Field(
        min_length=1, description="At least one; agencies are only ever reached through these."
    )
    venues: list[VenueEntry] = Field(
        default_factory=list,
        description="Places it offers for conferences; the preparation form chooses from these.",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA time zone (e.g. Europe/Vienna)") from None
        return value

    @model_validator(mode="after")
    def _no_duplicate_kinds(self) -> "AgencyEntry":
        seen: set[AgencyKind] = set()
        for i, kind in enumerate(self.kinds):
            if kind in seen:
                raise rule_error(f"kinds[{i}]", f"'{kind}' is listed twice")
            seen.add(kind)
        return self


class Directory(_Strict):
    """All agencies; agency, representative and venue codes and channel tags are each unique in
    the file."""

    agencies: list[AgencyEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> "Directory":
        agency_at: dict[str, int] = {}
        for i, agency in enumerate(self.agencies):
            if agency.code in agency_at:
                raise rule_error(
                    f"agencies[{i}].code",
                    f"'{agency.code}' is already used by agencies[{agency_at[agency.code]}]",
                )
            agency_at[agency.code] = i
        _unique_across(self.agencies, "representatives", "code")
        _unique_across(self.agencies, "channels", "tag")
        _unique_across(self.agencies, "venues", "code")
        return self

    def agency(self, code: str) -> AgencyEntry | None:
        return next((a for a in self.agencies if a.code == code), None)


def _unique_across(agencies: list[AgencyEntry], part: str, key: str) -> None:
    """Each `key` of the agencies' `part` entries is used once in the whole directory."""
    used_at: dict[str, str] = {}
    for i, agency in enumerate(agencies):
        for j, entry in enumerate(getattr(agency, part)):
            here = f"agencies[{i}].{part}[{j}]"
            value = getattr(entry, key)
            if value in used_at:
                raise rule_error(f"{here}.{key}", f"'{value}' is already used by {used_at[value]}")
            used_at[value] = here


def _label_entries(message: str, data: dict[str, Any]) -> str:
    """Name each `agencies[i]` by its code where the data has one (codes are not personal)."""
    raw = data.get("agencies")
    if not isinstance(raw, list):
        return message
    for i, entry in enumerate(raw):
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str) and len(code) <= 64 and re.fullmatch(SLUG, code):
            message = message.replace(f"agencies[{i}]", f"agencies[{i}] ({code})")
    return message


def parse_directory(data: dict[str, Any], source: str) -> Directory:
    """Validate directory data read from `source`."""
    try:
        return Directory.model_validate(data)
    except ValidationError as exc:
        raise DirectoryError(_label_entries(describe_errors(source, exc), data)) from None


def load_directory(path: Path | None = None) -> Directory:
    """Read and validate the directory file (default: settings.directory)."""
    if path is None:
        path = get_settings().directory
    try:
        data = read_yaml_mapping(path)
    except ValueError as exc:
        raise DirectoryError(f"{path}: {exc}") from None
    return parse_directory(data, str(path))


def channel_tags(directory: Directory) -> set[str]:
    """Every Apprise tag the directory's channels need a URL for."""
    return {c.tag for a in directory.agencies for c in a.channels}
