"""Load an installation's configuration: every governance profile validated, the agency directory
and the Apprise config checked and the directory synced into the record, and the served
deployments' parameter choices refreshed; nothing is loaded when anything is wrong."""

import sys
from pathlib import Path

from deployments.parameters import refresh_registered
from deployments.serve import FLOWS
from deployments.serve import deployments as served_deployments
from models.config.directory import Directory, DirectoryError, channel_tags, load_directory
from models.config.profile import Profile, ProfileError, load_profile
from models.config.settings import get_settings
from models.messaging.channels import ChannelConfigError, check_tags, load_apprise_config
from models.record.agencies import sync_directory
from models.record.database import session_scope
from models.rules.stakeholders import AgencyView, unsupplied
from models.steps import registry


def supply_problems(profile: Profile, path: Path, directory: Directory) -> list[str]:
    """`<file>: <entry>: <reason>` for each thing the profile asks of the directory in vain."""
    views = [AgencyView.of_entry(entry) for entry in directory.agencies]
    return [f"{path}: {entry}: {why}" for entry, why in unsupplied(profile, views)]


def load() -> int:
    """Validate every profile and load the agency directory; refuse to go on half-configured.

    Every phase a profile lists must have a registered step (models/steps/registry.py):
    caseconf's own, or one of the installation's modules named in CASECONF_STEP_MODULES.

    The default profile (CASECONF_PROFILE) must get from the directory every lead, co-lead and
    core-group seat it asks for; another profile that does not is named on stderr (its cases'
    selections warn of what is missing), since one folder may hold other jurisdictions' profiles.
    """
    settings = get_settings()
    notes: list[str] = []
    try:
        names = sorted(p.stem for p in settings.profiles_dir.glob("*.yaml"))
        profiles = {name: load_profile(name, settings.profiles_dir) for name in names}
        for name, profile in profiles.items():
            unasked = registry.missing_steps(profile)
            if unasked:
                path = settings.profiles_dir / f"{name}.yaml"
                raise ProfileError("\n".join(f"{path}: {problem}" for problem in unasked))
        if settings.profile not in names:
            raise ProfileError(
                f"{settings.profiles_dir}: the default profile {settings.profile!r} "
                "(CASECONF_PROFILE) has no file"
            )
        directory = load_directory(settings.directory)
        channels = load_apprise_config(settings.apprise_config)
        check_tags(channels.tags, channel_tags(directory))
        for name, profile in profiles.items():
            problems = supply_problems(profile, settings.profiles_dir / f"{name}.yaml", directory)
            if problems and name == settings.profile:
                raise ProfileError(
                    "\n".join(problems)
                    + f"\n(the default profile asks for agencies {settings.directory} does not have)"
                )
            if problems:
                notes.append(
                    f"caseconf: note: profile {name} cannot be fully supplied by "
                    f"{settings.directory}:\n  " + "\n  ".join(problems)
                )
    except (ProfileError, DirectoryError, ChannelConfigError) as error:
        print(f"caseconf: refused: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(note, file=sys.stderr)
    with session_scope() as session:
        sync_directory(session, directory)
    print(
        f"caseconf: profiles {', '.join(names)} valid; "
        f"{len(directory.agencies)} agencies loaded from {settings.directory}"
    )
    refresh_choices()
    return 0


def refresh_choices() -> None:
    """The served deployments' parameter forms offer the directory's agencies, representatives
    and profiles: register them anew where a Prefect server already has the deployments (a
    running `serve` keeps going); without one, `serve` builds them when it starts."""
    try:
        updated = refresh_registered(served_deployments(), FLOWS)
    except Exception as error:  # no server yet is the usual case
        print(
            "caseconf: the deployments' parameter choices were not refreshed "
            f"({type(error).__name__}); `serve` builds them when it starts",
            file=sys.stderr,
        )
        return
    if updated:
        print(f"caseconf: parameter choices refreshed on {updated} deployments")
