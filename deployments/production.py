"""Production on Prefect's own stack (docker/compose.yaml): the two one-shot jobs and crash detection
for runs whose worker died (a crashed case run triggers `case-recover`, flows/recover.py).

    python -m deployments.production migrate   # before the API replicas start
    python -m deployments.production setup     # once the API answers
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from typing import cast

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessWorker

from deployments.configuration import load
from deployments.serve import deployments
from models.config.settings import PROJECT_ROOT
from models.record.database import migrate as migrate_caseconf
from tasks.prefect_compat import PrefectInternalsChanged, check_prefect_version, parameter_schema

#: The work pool every caseconf deployment runs on (prefect.yaml).
POOL = "caseconf"
#: The automation that marks a run Crashed when its heartbeats stop (its worker died).
CRASH_AUTOMATION = "caseconf: crash case runs whose process died"
#: Events that end a run's wait for its next heartbeat: another heartbeat, or a state in which no
#: process runs (a suspended case run waits for a form with no process at all). Running and the
#: heartbeat are also what opens a wait (`after`): Prefect's trigger starts a new window on an
#: event that both opens and ends one. Without Running here, a run resumed within the window its
#: last suspension closed, and killed before its first heartbeat, would never be noticed.
_ALIVE_OR_DONE = {
    "prefect.flow-run.Running",
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Suspended",
    "prefect.flow-run.Paused",
}


def crash_after() -> timedelta:
    """How long a running case run may go without a heartbeat before it counts as crashed:
    `CASECONF_CRASH_AFTER_SECONDS` (default 90), more than PREFECT_FLOWS_HEARTBEAT_FREQUENCY."""
    return timedelta(seconds=int(os.environ.get("CASECONF_CRASH_AFTER_SECONDS", "90")))


def crash_automation() -> Automation:
    """Prefect's documented zombie-run automation, limited to caseconf's runs."""
    return Automation(
        name=CRASH_AUTOMATION,
        description="A caseconf run whose heartbeats stopped (its worker or machine died) is "
        "marked Crashed; the `case-recover/recover` deployment's trigger then brings it back.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
            expect=_ALIVE_OR_DONE,
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.caseconf"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=crash_after(),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message="No heartbeat: the process running this case step died.",
            )
        ],
    )


def ensure_crash_detection() -> str:
    """Create the automation, or bring an existing one (same name) to this definition."""
    wanted = crash_automation()
    try:
        existing = cast(Automation, Automation.read(name=CRASH_AUTOMATION))
    except ValueError:
        wanted.create()
        return "created"
    existing.trigger = wanted.trigger
    existing.actions = wanted.actions
    existing.description = wanted.description
    existing.enabled = True
    existing.update()
    return "updated"


def ensure_pool() -> str:
    """The `caseconf` process work pool; an existing one is left as the operator set it."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(POOL)
            return "exists"
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=POOL,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
            return "created"


def wait_for_api(timeout: float = 180) -> None:
    """Wait until the Prefect API (PREFECT_API_URL, through the proxy in compose) is ready."""
    url = os.environ["PREFECT_API_URL"].rstrip("/")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=5):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no ready Prefect API at {url}: {error}") from None
            time.sleep(1)


def _run(*command: str) -> None:
    print(f"caseconf setup: $ {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=PROJECT_ROOT, check=True)


async def _register_block_types() -> None:
    """What each API server does as it starts, done once (replicas set
    PREFECT_SERVER_REGISTER_BLOCKS_ON_START=false)."""
    # The Prefect server's own code: seconds to import, and only this job needs it.
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    db = provide_database_interface()
    async with await db.session() as session:
        await run_block_auto_registration(session=session)
        await session.commit()


def same_forms_as_serve() -> int:
    """Give each registered deployment the parameter schema `serve` gives it (serve adds the
    directory's choices to the generated one), so the run forms are the same in both."""
    served = deployments()
    with get_client(sync_client=True) as client:
        for deployment in served:
            registered = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            # What RunnerDeployment.apply() sends under serve.
            schema = parameter_schema(deployment).model_dump(exclude_unset=True)
            client.update_deployment(
                registered.id, DeploymentUpdate(parameter_openapi_schema=schema)
            )
    return len(served)


def migrate() -> int:
    """Prefect's database, then caseconf's: the API replicas cannot start before (they write
    Prefect's block types at start-up) and never migrate on start themselves."""
    prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
    _run(prefect, "server", "database", "upgrade", "-y")
    asyncio.run(_register_block_types())
    print("caseconf migrate: Prefect's block types registered", flush=True)
    migrate_caseconf()
    print("caseconf migrate: both databases at the newest revision", flush=True)
    return 0


def setup() -> int:
    """The directory and profiles, the pool, crash detection and the deployments of prefect.yaml,
    through the API; each step can run again without harm."""
    if load() != 0:
        return 2
    wait_for_api()
    print(f"caseconf setup: work pool {POOL!r} {ensure_pool()}", flush=True)
    print(f"caseconf setup: crash detection {ensure_crash_detection()}", flush=True)
    prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
    _run(prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "prefect.yaml")
    print(f"caseconf setup: forms as under serve for {same_forms_as_serve()} deployment(s)")
    print("caseconf setup: done", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.production", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="the compose `migrate` job: Prefect's database, caseconf's")
    sub.add_parser("setup", help="the compose `setup` job: directory, pool, deployments")
    args = parser.parse_args(argv)
    try:
        check_prefect_version()
    except PrefectInternalsChanged as error:
        print(f"caseconf {args.command}: refused: {error}", file=sys.stderr)
        return 2
    return migrate() if args.command == "migrate" else setup()


if __name__ == "__main__":
    sys.exit(main())
