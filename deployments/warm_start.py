"""Serve the deployments so that each flow run starts warm: forked from a process that has
Prefect and caseconf imported, instead of a fresh interpreter that imports them again.

Why: `prefect.serve` starts every run, and every resume of a waiting case, as
`python -m prefect.engine`, which spends about 3 s of CPU importing Prefect, SQLAlchemy and
caseconf and loading the flow from its entrypoint before the run does anything. Prefect's runner
also knows a direct start for flows it holds in memory (`run_flow_in_subprocess`, the path
`flow.serve()` takes); here every served deployment's flow is handed to the runner, and that
start forks from a forkserver that imported the flows once. The run's process is still its own:
a crash, a SIGKILL or a cancellation behaves as before, and Prefect hands it the run's
environment and settings itself. `CASECONF_WARM_START=false` serves as `prefect.serve` does.

The forkserver only imports: no database connection is opened and no directory or profile is
read there, so every run reads them fresh, as before.
"""

import asyncio
import contextlib
import multiprocessing
import multiprocessing.context
from types import ModuleType
from typing import Any, cast
from uuid import UUID

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

from tasks.prefect_compat import announce_serving, hold_flow, start_held_runs_with

#: What the forkserver imports besides the served flows' modules: the message, calendar and
#: template libraries a run imports only when it sends, and Apprise with its plugins loaded
#: (deployments/warm_preload.py), so a run that sends pays nothing for them.
PRELOAD = [
    "prefect.flow_engine",
    "models.messaging.channels",
    "models.messaging.messages",
    "models.messaging.calendar",
    "icalendar",
    "jinja2",
    "deployments.warm_preload",
]


class _Multiprocessing(ModuleType):
    """`multiprocessing` as `prefect.flow_engine` sees it: asked for "spawn", it gets the
    forkserver; everything else is the real module's."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        super().__init__("multiprocessing")
        self._context = context

    def get_context(self, method: str | None = None) -> Any:
        return self._context if method in (None, "spawn") else multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def start_runs_warm(preload: list[str]) -> None:
    """From now on, this process starts in-memory flows' runs from a forkserver that imported
    `preload` (Prefect's own start asks `multiprocessing` for "spawn")."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    start_held_runs_with(_Multiprocessing(context))


def serve_warm(
    deployments: list[RunnerDeployment], flows: dict[str, Flow[Any, Any]], **runner: Any
) -> None:
    """`prefect.serve(*deployments, **runner)`, with each deployment's flow held by the runner so
    that its runs start from the forkserver."""
    start_runs_warm([*PRELOAD, *sorted({flow.fn.__module__ for flow in flows.values()})])
    served = Runner(**runner)
    for deployment in deployments:
        deployment_id = cast(UUID, served.add_deployment(deployment))  # sync: a UUID
        # What Runner.add_flow does; add_deployment alone makes every run import the flow anew.
        flow = flows[str(deployment.flow_name)]
        hold_flow(served, deployment_id, flow)
    announce_serving(*deployments)
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):  # as prefect.serve
        asyncio.run(served.start())
