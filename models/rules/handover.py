"""Hand-overs: the client and the family have no channel, an intermediary agency reaches them.

A hand-over message says for whom it is (the client, or a family member by relation, never by
name) and carries the meeting as a file to hand over, not as a meeting request into the
intermediary's own calendar (models/messaging/delivery.py). An intermediary that also attends gets its
own invitation besides.
"""

from enum import StrEnum

from models.vocabulary import Role

#: Roles reached through an intermediary.
HANDED_OVER_ROLES = frozenset({Role.client, Role.family})


class Relation(StrEnum):
    """A family member's or friend's relation to the client, by role (never a name)."""

    parent = "parent"
    sibling = "sibling"
    partner = "partner"
    child = "child"
    grandparent = "grandparent"
    other_relative = "other_relative"
    friend = "friend"


def handover_for(role: Role | str, relation: str | None) -> str:
    """Whom a hand-over is for, as a code the templates label: `client`, `family`, or
    `family:<relation>`."""
    role = Role(role)
    if role not in HANDED_OVER_ROLES:
        raise ValueError(f"{role} is not handed over")
    if role == Role.family and relation:
        return f"family:{Relation(relation)}"
    return str(role)


def handover_recipient(agency_id: int, role: Role | str, relation: str | None, number: int) -> str:
    """The outbox recipient of a hand-over: one per person handed to (a family member by relation
    and number, so two siblings get two hand-overs)."""
    if Role(role) == Role.family and relation:
        return f"{agency_id}:family:{relation}-{number}"
    return f"{agency_id}:{role}"


def handover_file_name(target: str) -> str:
    """The name of the .ics file to hand over: `invitation-client.ics`, ...-family-parent.ics."""
    return "invitation-" + target.replace(":", "-").replace("_", "-") + ".ics"
