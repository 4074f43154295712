"""The choices a form offers, read when it is asked (never from cache: a directory loaded while
a case waits shows in its next form)."""

from prefect import task

from models.config.settings import get_settings
from models.record.database import session_scope
from models.rules import choices
from models.rules.conference import get_conference
from models.steps.forms import Choice
from models.vocabulary import ConferenceType
from tasks.policies import CHECK, DATABASE_RETRIES

Offered = dict[str, list[Choice]]


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def acting_choices() -> Offered:
    """Every form's `acting_representative`: the directory's active representatives."""
    with session_scope() as session:
        return {"acting_representative": choices.representatives(session)}


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def preparation_choices() -> Offered:
    """The directory's venues (unless this installation lets coordinators type a place)."""
    with session_scope() as session:
        offered = {"acting_representative": choices.representatives(session)}
        if not get_settings().free_text_place:
            offered["location"] = choices.venues(session)
        return offered


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def referral_choices() -> Offered:
    with session_scope() as session:
        return {
            "referring_agency": choices.agencies(session),
            "profile": choices.profiles(get_settings().profiles_dir),
            "stage": choices.referral_stages(),
            "acting_representative": choices.representatives(session),
        }


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def information_choices(conference_id: int) -> Offered:
    """Contributors attending the information phase; the classifications the type allows."""
    with session_scope() as session:
        conference = get_conference(session, conference_id)
        return {
            "contributions.agency": choices.contributors(session, conference_id),
            "contributions.classification": choices.information_classifications(
                ConferenceType(conference.conference_type)
            ),
            "acting_representative": choices.representatives(session),
        }


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def decision_choices(conference_id: int) -> Offered:
    """Owners of actions (the conference's professionals); plan items and actions are never
    restricted."""
    with session_scope() as session:
        return {
            "actions.owner_agency": choices.owners(session, conference_id),
            "actions.classification": choices.item_classifications(),
            "plan_decisions.classification": choices.item_classifications(),
            "acting_representative": choices.representatives(session),
        }
