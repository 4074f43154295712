"""A human step that also tells the case's story: `flows.steps.ask`, refreshing the case's
timeline artifact and its runs' tags once a step's answer is accepted (its effects are committed
by then, so the timeline shows the step and a lead just confirmed reaches the `lead:` tag)."""

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, wait

from flows.steps import F
from flows.steps import ask as ask_step
from models.steps.forms import Choices
from tasks.policies import CHECK, StepOutcome
from tasks.portfolio import refresh_timeline
from tasks.runs import relabel_open_runs


def ask(
    *,
    case_id: int,
    step_key: str,
    form: type[F],
    description: str,
    apply: Callable[[F, int], StepOutcome],
    defaults: dict[str, Any] | None = None,
    choices: Choices | Callable[[], Choices] | None = None,
) -> dict[str, Any]:
    """`flows.steps.ask`; an accepted answer refreshes the case's timeline and its runs' tags
    (a replay, which answers from the ledger, does not)."""
    views: list[PrefectFuture[Any]] = []

    def apply_and_tell(answer: F, attempt: int) -> StepOutcome:
        outcome = apply(answer, attempt)
        if outcome.result is not None:
            # Both views at once, while the step's forms are forgotten (Prefect API calls all).
            # Never from cache: the same case id asks again after each step (a lead confirmed).
            retag = relabel_open_runs.with_options(cache_policy=CHECK, persist_result=False)
            views.extend([refresh_timeline.submit(step_key), retag.submit(case_id)])
        return outcome

    answered = ask_step(
        step_key=step_key,
        form=form,
        description=description,
        apply=apply_and_tell,
        defaults=defaults,
        choices=choices,
    )
    if views:
        wait(views)
        # Views: failing to refresh them must not fail the case's run.
        if not all(future.state.is_completed() for future in views):
            get_run_logger().warning("%s: timeline or tags not refreshed.", step_key)
    return answered
