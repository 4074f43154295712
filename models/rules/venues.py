"""Where a conference meets: a venue the directory lists, or free text where an installation
allows it. The place travels in every invitation and hand-over request."""

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.errors import Refusal
from models.record.tables import Agency, Venue


def _active() -> SelectOfScalar[Venue]:
    """Venues in use: their own and their agency's entry are active in the directory."""
    return (
        select(Venue)
        .join(Agency, col(Agency.id) == col(Venue.agency_id))
        .where(col(Venue.active), col(Agency.active))
    )


def active_venues(session: Session) -> list[Venue]:
    """The venues of the directory's active agencies, by code."""
    return list(session.exec(_active().order_by(col(Venue.code))))


def place(session: Session, answer: str, *, free_text: bool, field: str = "location") -> str:
    """The label to store and send for `answer`: a venue's code gives its label; any other
    text is refused unless the installation allows free text (`CASECONF_FREE_TEXT_PLACE`)."""
    text = answer.strip()
    venue = session.exec(_active().where(col(Venue.code) == text)).first()
    if venue is not None:
        return venue.label
    if free_text and len(text) >= 2:
        return text
    if free_text:
        raise Refusal.of(field, "name a place or meeting link of at least two characters")
    if not active_venues(session):
        raise Refusal.of(
            field,
            "the directory lists no venue: an administrator adds venues to the directory "
            "(or allows free text with CASECONF_FREE_TEXT_PLACE)",
        )
    raise Refusal.of(field, "not a venue of the directory now: choose one the form offers")
