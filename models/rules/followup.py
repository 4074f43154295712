"""Follow-up notices that fall due with time: reminders, due and overdue actions, reviews.

`now` is a parameter: a sweep at any moment queues exactly what is due then, once per key.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.record.outbox import queue_to_agency
from models.record.tables import ActionItem, Case, Conference, Participant, Review
from models.rules.invitations import queue_invitations
from models.rules.release import queue_action_notice
from models.vocabulary import ActionStatus, CaseStatus, ReviewStatus, Role


def queue_due_notices(
    session: Session, *, now: datetime, reminder_lead: timedelta, due_soon: timedelta
) -> list[int]:
    """Queue every notice due at `now` that has not been queued before."""
    ids: list[int] = []
    open_cases = {c.id: c for c in session.exec(select(Case).where(Case.status == CaseStatus.open))}
    for conference in session.exec(
        select(Conference).where(
            Conference.released_at == None,  # noqa: E711
            Conference.starts_at != None,  # noqa: E711
        )
    ):
        case = open_cases.get(conference.case_id)
        assert conference.starts_at is not None
        if case and now < conference.starts_at <= now + reminder_lead:
            ids += queue_invitations(
                session, case=case, conference=conference, now=now, event="reminder"
            )
    for action in session.exec(select(ActionItem).where(ActionItem.status == ActionStatus.open)):
        case = open_cases.get(action.case_id)
        if case is None:
            continue
        # A due date is a day where the conference met: at 23:30 UTC it is tomorrow in Vienna.
        agreed_at = session.get(Conference, action.conference_id)
        zone = ZoneInfo(agreed_at.time_zone if agreed_at else "UTC")
        today = now.astimezone(zone).date()
        if action.due_on < today:
            for event, to_lead in (("action_overdue", False), ("action_escalation", True)):
                ids += queue_action_notice(
                    session,
                    case=case,
                    action=action,
                    event=f"{event}",
                    now=now,
                    to_lead=to_lead,
                    due_on=action.due_on,
                )
        elif action.due_on <= (now + due_soon).astimezone(zone).date():
            ids += queue_action_notice(
                session,
                case=case,
                action=action,
                event="action_due_soon",
                now=now,
                due_on=action.due_on,
            )
    for review in session.exec(select(Review).where(Review.status == ReviewStatus.scheduled)):
        case = open_cases.get(review.case_id)
        if case is None or not now < review.due_at <= now + due_soon:
            continue
        last = session.exec(
            select(Conference).where(
                Conference.case_id == case.id, Conference.cycle == review.cycle - 1
            )
        ).first()
        if last is None:
            continue
        lead = session.exec(
            select(Participant).where(
                Participant.conference_id == last.id, Participant.role == Role.lead
            )
        ).first()
        if lead is None or lead.agency_id is None:
            continue
        ids += queue_to_agency(
            session,
            case=case,
            conference=last,
            event="review_due",
            agency_id=lead.agency_id,
            role=Role.lead,
            now=now,
            cycle=review.cycle,
            version=review.version,
            detail={"review_id": review.id},
        )
    return ids
