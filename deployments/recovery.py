"""Bring back every open case whose run a stop of the serving process cancelled or crashed, and
bring the record in line with runs cancelled outside caseconf."""

import logging
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from sqlmodel import col, select

from models.database import session_scope
from models.tables import Case
from models.vocabulary import CaseStatus, Phase
from tasks.reviews import RUNNER_SHUTDOWN, reconcile_reviews
from tasks.runs import start_cycle_run
from tasks.steps import forget_inputs

__all__ = ["RUNNER_SHUTDOWN", "cut_off", "reconcile_reviews", "recover_cases"]

logger = logging.getLogger("caseconf.recovery")


def cut_off(state_type: StateType | None, message: str | None) -> bool:
    """A run that died with the serving process, rather than one a person cancelled."""
    if state_type == StateType.CRASHED:
        return True
    return state_type == StateType.CANCELLED and RUNNER_SHUTDOWN in (message or "")


def recover_cases() -> list[str]:
    """Start a new run for each open case cut off mid-step; returns the case references."""
    with session_scope() as session:
        open_cases = [
            (c.reference, c.cycle, c.stage, c.conference_type, c.current_flow_run_id)
            for c in session.exec(
                select(Case).where(
                    Case.status == CaseStatus.open,
                    col(Case.phase).not_in([Phase.review_scheduled, Phase.review_cancelled]),
                )
            )
            if c.current_flow_run_id
        ]
    recovered = []
    with get_client(sync_client=True) as client:
        for reference, cycle, stage, conference_type, run_id in open_cases:
            run = client.read_flow_run(UUID(run_id))
            state = run.state
            if state is None or not cut_off(state.type, state.message):
                continue  # a run cancelled by hand: reconcile_reviews records it
            new_run = start_cycle_run(
                reference, cycle, stage, conference_type, key=f"{reference}-recover-{run_id}"
            )
            # The cut-off run will never read its forms again: its answers go with it.
            forget_inputs(UUID(run_id))
            logger.warning("%s: brought back as flow run %s.", reference, new_run)
            recovered.append(reference)
    return recovered
