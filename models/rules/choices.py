"""What a form offers: the codes the rules accept at the moment it is asked, each with the label
a person reads. Built from the directory, the profiles and the case; plain functions."""

from pathlib import Path

from sqlmodel import Session, col, select

from models.answers import Choice
from models.config.profile import Profile, ProfileError, load_profile
from models.errors import Refusal
from models.record.tables import Agency, Representative
from models.rules.conference import professional_agencies
from models.rules.stakeholders import AgencyView, Proposal, apply_changes
from models.rules.venues import active_venues
from models.vocabulary import Classification, ConferenceType, Phase, Stage


def agencies(session: Session) -> list[Choice]:
    """Every active agency of the directory."""
    rows = session.exec(select(Agency).where(col(Agency.active)).order_by(col(Agency.code)))
    return [(a.code, a.name) for a in rows]


def representatives(session: Session, agency_codes: list[str] | None = None) -> list[Choice]:
    """Active representatives (of `agency_codes`, else of every active agency), by code and
    agency: a representative's name never reaches Prefect."""
    query = (
        select(Representative, Agency)
        .join(Agency, col(Agency.id) == col(Representative.agency_id))
        .where(col(Representative.active), col(Agency.active))
        .order_by(col(Agency.code), col(Representative.code))
    )
    if agency_codes is not None:
        query = query.where(col(Agency.code).in_(agency_codes))
    return [(r.code, f"for {a.code}") for r, a in session.exec(query)]


def venues(session: Session) -> list[Choice]:
    """The places the directory's active agencies offer, with the label invitations carry."""
    return [(v.code, v.label) for v in active_venues(session)]


def areas(session: Session) -> list[Choice]:
    rows = session.exec(select(Agency.area).where(col(Agency.active)).distinct())
    return [(a, a) for a in sorted({a for a in rows if a})]


def profiles(directory: Path) -> list[Choice]:
    """The governance profiles that load (a broken file is offered to no one)."""
    found: list[Choice] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            load_profile(path.stem, directory)
        except ProfileError:
            continue
        found.append((path.stem, path.stem))
    return found


def referral_stages() -> list[Choice]:
    return [(str(s), str(s)) for s in Stage if s != Stage.closed]


def contributors(session: Session, conference_id: int) -> list[Choice]:
    """The conference's professional participants attending its information phase."""
    found = professional_agencies(session, conference_id=conference_id, phase=Phase.information)
    return [(code, found[code].name) for code in sorted(found)]


def owners(session: Session, conference_id: int) -> list[Choice]:
    """Who may own an action: the conference's professional participants."""
    found = professional_agencies(session, conference_id=conference_id)
    return [(code, found[code].name) for code in sorted(found)]


def information_classifications(conference_type: ConferenceType) -> list[Choice]:
    """Professional first; restricted only in security conferences."""
    allowed = [Classification.professional, Classification.shared]
    if conference_type == ConferenceType.security:
        allowed.append(Classification.restricted)
    return [(str(c), str(c)) for c in allowed]


def item_classifications() -> list[Choice]:
    """Plan items and actions: never restricted."""
    return [(str(c), str(c)) for c in (Classification.professional, Classification.shared)]


def changes_accepted(
    proposals: list[Proposal],
    *,
    profile: Profile,
    directory: list[AgencyView],
    stage: Stage,
    conference_type: ConferenceType,
    names: dict[str, str],
) -> dict[str, list[Choice]]:
    """The stakeholders form's choices: agencies the rules let the coordinator add, proposed ones
    they let them remove, and who may hand invitations over or be named for an agency."""

    def accepted(**change: list[str]) -> bool:
        try:
            apply_changes(
                proposals,
                reason="asked",
                profile=profile,
                agencies=directory,
                stage=stage,
                conference_type=conference_type,
                **{"add": [], "remove": [], **change},
            )
        except Refusal:
            return False
        return True

    on_list = [p.agency_code for p in proposals]
    addable = [a.code for a in directory if a.active and a.code not in on_list]
    add = [code for code in sorted(addable) if accepted(add=[code])]
    remove = [code for code in on_list if accepted(remove=[code])]
    participating = [(c, names.get(c, c)) for c in [*on_list, *add]]
    return {
        "add": [(c, names.get(c, c)) for c in add],
        "remove": [(c, names.get(c, c)) for c in remove],
        "intermediary": [(c, n) for c, n in participating if c in names],
        "representatives.agency": participating,
    }
