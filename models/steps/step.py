"""What a human step is: a form a coordinator answers in the Prefect UI, the choices it offers,
the Markdown description above it, its pre-filled answers, and `apply`, which writes the answer
to the record (or refuses it) and names the phase the case moves to. Plain functions over a
session: no Prefect here (`flows/steps.py` asks, `tasks/steps.py` applies)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlmodel import Session

from models.answers import Choices
from models.config.profile import Profile, load_profile
from models.record.tables import Case, Conference
from models.rules import cases, choices
from models.rules.conference import get_conference
from models.vocabulary import ConferenceType

F = TypeVar("F", bound=BaseModel)


@dataclass(frozen=True)
class Asked:
    """Where a step is asked: the case and its conference once they exist, the flow run it waits
    in, and what that run was started with (the referral's parameters). Ids and codes only."""

    case_id: int | None = None
    conference_id: int | None = None
    run_id: str | None = None
    given: Mapping[str, Any] = field(default_factory=dict)

    def case(self, session: Session) -> Case:
        if self.case_id is None:
            raise LookupError("this step is asked before the case exists")
        return cases.get_case(session, self.case_id)

    def conference(self, session: Session) -> Conference:
        if self.conference_id is None:
            raise LookupError("this step is asked before the conference exists")
        return get_conference(session, self.conference_id)

    def profile(self, session: Session) -> Profile:
        return load_profile(self.case(session).profile)

    def conference_type(self, session: Session) -> ConferenceType:
        return ConferenceType(self.conference(session).conference_type)


@dataclass(frozen=True)
class Applied:
    """What an accepted answer wrote (ids only: the ledger keeps it as the step's result) and
    the phase the case (and its conference) moves to, if any."""

    result: dict[str, Any]
    next_phase: str | None = None


@dataclass(frozen=True)
class Form:
    """A step's form as it is asked now: its description, the choices it offers and its
    pre-filled answers, and a problem found before the first attempt (shown above it)."""

    description: str
    choices: Choices
    defaults: dict[str, Any]
    notice: str | None = None


def _no_choices(session: Session, asked: Asked, now: datetime) -> Choices:
    return {}


def _no_defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    return {}


def _no_notice(session: Session, asked: Asked, now: datetime) -> str | None:
    return None


def _always(session: Session, asked: Asked, now: datetime) -> bool:
    return True


@dataclass(frozen=True)
class Step(Generic[F]):
    """One human step. `name` is its part of the step key (`<reference>-c<cycle>-<name>`) and
    never changes once released: a case waiting at the step is found under it. `phase` is where
    the registry lists it (a cycle walks the profile's phases and asks each phase's steps whose
    `asks` holds). `late_after_days`: how long a case may wait at the step's phase before the
    portfolio counts it late (unless CASECONF_LATE_AFTER_DAYS says otherwise)."""

    name: str
    phase: str
    form: type[F]
    describe: Callable[[Session, Asked, datetime], str]
    apply: Callable[[Session, Asked, F, datetime], Applied]
    choices: Callable[[Session, Asked, datetime], Choices] = _no_choices
    defaults: Callable[[Session, Asked, datetime], dict[str, Any]] = _no_defaults
    notice: Callable[[Session, Asked, datetime], str | None] = _no_notice
    asks: Callable[[Session, Asked, datetime], bool] = _always
    late_after_days: int | None = None

    def read(self, session: Session, asked: Asked, now: datetime) -> Form:
        """The form as it is asked now (never cached: the directory may have changed)."""
        return Form(
            description=self.describe(session, asked, now),
            choices=self.choices(session, asked, now),
            defaults=self.defaults(session, asked, now),
            notice=self.notice(session, asked, now),
        )


def heading(session: Session, asked: Asked, title: str) -> str:
    """A form's first line: the case's reference and what is asked."""
    return f"### {asked.case(session).reference}: {title}\n"


def acting_choices(session: Session, asked: Asked, now: datetime) -> Choices:
    """Every form's `acting_representative`: the directory's active representatives (a form
    with no other choices offers these alone)."""
    return {"acting_representative": choices.representatives(session)}
