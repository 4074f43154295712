"""The human steps by name and by phase: caseconf's own, and those an installation registers.

A cycle walks the conference phases of the case's profile and asks each phase's steps in the
order they were registered (flows/cycle.py). An installation adds a step with one module that
defines it and calls `register` (its module named in CASECONF_STEP_MODULES); a new conference
phase is then one a profile may list between information and decision.
"""

import importlib

from models.config.profile import Profile
from models.config.settings import get_settings
from models.steps import (
    action_review,
    consent,
    consent_refused,
    decision,
    family_only,
    information,
    preparation,
    referral,
    security_stakeholders,
    stakeholders,
)
from models.steps.step import Step
from models.vocabulary import Phase

#: Days a case whose review was cancelled may wait for the coordinator to plan one.
REVIEW_CANCELLED_LATE_AFTER_DAYS = 7

_STEPS: dict[str, Step] = {}
_INSTALLED: set[str] = set()


def register(step: Step) -> Step:
    """Make `step` known by its name and phase; a name is registered once."""
    known = _STEPS.get(step.name)
    if known is not None and known is not step:
        raise ValueError(f"a step named {step.name!r} is registered already")
    _STEPS[step.name] = step
    return step


#: caseconf's own steps, in the order a cycle meets them.
BUILT_IN: tuple[Step, ...] = (
    referral.STEP,
    preparation.STEP,
    consent.STEP,
    consent_refused.STEP,
    stakeholders.STEP,
    security_stakeholders.STEP,
    action_review.STEP,
    information.STEP,
    family_only.STEP,
    decision.STEP,
)
for _step in BUILT_IN:
    register(_step)


def _installed() -> dict[str, Step]:
    """Every step, those of the installation's own modules (CASECONF_STEP_MODULES) imported on
    first use: each registers its steps when imported."""
    for module in get_settings().step_modules:
        if module not in _INSTALLED:
            importlib.import_module(module)
            _INSTALLED.add(module)
    return _STEPS


def step(name: str) -> Step:
    """The step of this name; LookupError names what is known when there is none."""
    found = _installed().get(name)
    if found is None:
        raise LookupError(f"no step named {name!r} (known: {', '.join(sorted(_STEPS))})")
    return found


def steps_for(phase: str) -> list[Step]:
    """The steps asked in `phase`, in the order they were registered."""
    return [s for s in _installed().values() if s.phase == phase]


def late_after_days() -> dict[str, int]:
    """How long a case may wait at each phase before the portfolio counts it late:
    CASECONF_LATE_AFTER_DAYS where it is set, else the steps' own figures (and a cancelled
    review's, which waits for the coordinator to plan one)."""
    configured = get_settings().late_after_days
    if configured:
        return dict(configured)
    found: dict[str, int] = {}
    for s in _installed().values():
        if s.late_after_days is not None:
            found.setdefault(str(s.phase), s.late_after_days)
    return {**found, Phase.review_cancelled: REVIEW_CANCELLED_LATE_AFTER_DAYS}


def waiting_phases() -> list[str]:
    """The phases in which a case waits for a person: those of the steps asked in a cycle, and
    a cancelled review's."""
    phases = [str(s.phase) for s in _installed().values() if s.phase != Phase.referral]
    return list(dict.fromkeys([*phases, Phase.review_cancelled]))


def missing_steps(profile: Profile) -> list[str]:
    """`conference_types.<type>.phases[i]: ...` for each phase of the profile no step asks."""
    return [
        f"conference_types.{ctype}.phases[{i}]: no step is registered for phase '{phase}' "
        "(an installation's own steps are named in CASECONF_STEP_MODULES)"
        for ctype, rules in profile.conference_types.items()
        for i, phase in enumerate(rules.phases)
        if not steps_for(phase)
    ]


def every_step() -> list[Step]:
    """Every registered step, in the order registered."""
    return list(_installed().values())
