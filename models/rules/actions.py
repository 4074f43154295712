"""Action items: reviewed one by one at every review conference."""

from datetime import date, datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG
from models.errors import Problem, Refusal
from models.record.database import saved_id
from models.record.tables import Agency
from models.rules.conference import open_actions
from models.vocabulary import ActionStatus, NotDoneReason


class ActionUpdate(BaseModel):
    """What became of one open action."""

    model_config = ANSWER_CONFIG

    action: int = Field(ge=1, description="Number of the action, as listed above.")
    status: ActionStatus = Field(
        description="done; not_done (give a reason code); carried_over (give a new due date)."
    )
    not_done_reason: NotDoneReason | None = Field(
        default=None, description="Required when not done."
    )
    new_due_on: date | None = Field(default=None, description="Required when carried over.")


def describe_open_actions(session: Session, *, case_id: int) -> str:
    rows = open_actions(session, case_id=case_id)
    if not rows:
        return "_No open actions._"
    lines = []
    for number, action in enumerate(rows, start=1):
        owner = session.get(Agency, action.owner_agency_id)
        lines.append(
            f"{number}. {action.description} (owner: `{owner.code if owner else '?'}`, "
            f"due {action.due_on.isoformat()})"
        )
    return "\n".join(lines)


def review_open_actions(
    session: Session, *, case_id: int, updates: list[ActionUpdate], today: date, now: datetime
) -> list[int]:
    """Apply the review of every open action; each open action must be reviewed exactly once."""
    rows = open_actions(session, case_id=case_id)
    problems: list[Problem] = []
    seen: set[int] = set()
    for i, update in enumerate(updates):
        field = f"updates[{i}]"
        if not 1 <= update.action <= len(rows):
            problems.append(Problem(f"{field}.action", "no open action with this number"))
            continue
        if update.action in seen:
            problems.append(Problem(f"{field}.action", "this action is reviewed twice"))
        seen.add(update.action)
        if update.status == ActionStatus.open:
            problems.append(
                Problem(f"{field}.status", "say what became of it: done, not_done or carried_over")
            )
        if update.status == ActionStatus.not_done and update.not_done_reason is None:
            problems.append(Problem(f"{field}.not_done_reason", "required when not done"))
        if update.status != ActionStatus.not_done and update.not_done_reason is not None:
            problems.append(Problem(f"{field}.not_done_reason", "only for actions not done"))
        if update.status != ActionStatus.carried_over and update.new_due_on is not None:
            problems.append(Problem(f"{field}.new_due_on", "only for actions carried over"))
        if update.status == ActionStatus.carried_over and (
            update.new_due_on is None or update.new_due_on <= today
        ):
            problems.append(Problem(f"{field}.new_due_on", "a date after today is required"))
    missing = sorted(set(range(1, len(rows) + 1)) - seen)
    if missing:
        problems.append(Problem("updates", f"every open action needs a review; missing: {missing}"))
    if problems:
        raise Refusal(*problems)
    for update in updates:
        action = rows[update.action - 1]
        if update.status == ActionStatus.carried_over:
            assert update.new_due_on is not None
            action.due_on = update.new_due_on
            action.status = ActionStatus.open
            action.status_reason = ActionStatus.carried_over
        else:
            action.status = update.status
            action.status_reason = update.not_done_reason
        action.updated_at = now
        session.add(action)
    session.flush()
    return [saved_id(a) for a in rows]
