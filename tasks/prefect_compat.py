"""Every use caseconf makes of Prefect's internals, in one place, with the Prefect versions it was
checked against (`CHECKED`). `serve`, `move-to-workers` and the production jobs call
`check_prefect_version()` first and stop with a clear message on any other version.

What each internal is, and how to check it on an upgrade (docs/operations.md, "Upgrading
Prefect"):
- `RunInput._description`: the Markdown a suspended run's form shows above its fields
  (`form_described`).
- The flow-run input keys of a suspended run, `suspended-<pause key>-description|schema|response`:
  derived here from Prefect's own `keyset_from_paused_state`, never spelled out elsewhere
  (`form_input_prefix`).
- `RunnerDeployment._parameter_openapi_schema`: the parameter form a deployment registers
  (`parameter_schema`, `set_parameter_schema`).
- The warm start (deployments/warm_start.py, only when CASECONF_WARM_START is on):
  `prefect.flow_engine.multiprocessing` (the module Prefect asks for a "spawn" context to start
  a held flow's run), `Runner._deployment_registry.register_flow` (what `Runner.add_flow` does
  for a deployment) and `prefect.flows._display_serve_start_message` (what `prefect.serve`
  prints; tests wait for it).

Private names are looked up when used, never when this module is imported, so a Prefect that
renamed one fails where it is used, with the name, not at every import.
"""

from collections.abc import Callable
from types import ModuleType
from typing import Any
from uuid import UUID

import prefect
import prefect.flow_engine
import prefect.flows
from prefect.deployments.runner import RunnerDeployment
from prefect.input import RunInput, keyset_from_paused_state
from prefect.runner import Runner
from prefect.states import Suspended
from prefect.utilities.callables import ParameterSchema

#: The Prefect versions whose internals above were read and tested with caseconf.
CHECKED = ("3.9.1",)


class PrefectInternalsChanged(RuntimeError):
    """Prefect is not a version caseconf was checked against, or an internal it uses is gone."""


def check_prefect_version(version: str | None = None) -> None:
    """Stop unless the installed Prefect (or `version`) is one caseconf was checked against."""
    found = version or prefect.__version__
    if found not in CHECKED:
        raise PrefectInternalsChanged(
            f"Prefect {found} is installed; caseconf was checked against Prefect "
            f"{', '.join(CHECKED)} only. It uses Prefect internals that may differ in {found}: "
            "install a checked version (pip install 'prefect==" + CHECKED[-1] + "'), or check "
            "each internal listed in tasks/prefect_compat.py (docs/operations.md, 'Upgrading "
            "Prefect') and add the version to CHECKED."
        )


def _internal(owner: object, name: str) -> Any:
    """`owner.name`, a private Prefect name; PrefectInternalsChanged names it when it is gone."""
    try:
        return getattr(owner, name)
    except AttributeError:
        where = getattr(owner, "__name__", type(owner).__name__)
        raise PrefectInternalsChanged(
            f"Prefect {prefect.__version__} has no {where}.{name}, which caseconf uses "
            "(tasks/prefect_compat.py; docs/operations.md, 'Upgrading Prefect')"
        ) from None


# --- forms -------------------------------------------------------------------------------------


def form_described(model: type[RunInput], description: str) -> type[RunInput]:
    """Give a form the Markdown the UI shows above its fields, as `with_initial_data` would
    (which caseconf does not use: it drops the fields' descriptions and constraints)."""
    _internal(model, "_description")
    model._description = description  # type: ignore[attr-defined]
    return model


def form_description(model: type[RunInput]) -> str | None:
    """The Markdown a form shows above its fields (`form_described`)."""
    found = _internal(model, "_description")
    return found if isinstance(found, str) else None


def form_input_prefix(pause_key: str) -> str:
    """What the flow-run input keys of a run suspended with `pause_key` start with: where it
    keeps its form's description and schema and the answer (Prefect's own key format). A pause
    key's own prefix gives the prefix of every key under it (`<step key>-`: every attempt)."""
    keys = keyset_from_paused_state(Suspended(pause_key=pause_key))
    return keys["description"].removesuffix("-description")


def form_input_key(pause_key: str, part: str) -> str:
    """The key of one part (`description`, `schema`, `response`) of a suspended run's form."""
    return str(keyset_from_paused_state(Suspended(pause_key=pause_key))[part])  # type: ignore[index]


# --- deployments -------------------------------------------------------------------------------


def parameter_schema(deployment: RunnerDeployment) -> ParameterSchema:
    """The parameter form a deployment registers (as `RunnerDeployment.apply` sends it)."""
    return _internal(deployment, "_parameter_openapi_schema")  # type: ignore[no-any-return]


def set_parameter_schema(deployment: RunnerDeployment, schema: ParameterSchema) -> None:
    _internal(deployment, "_parameter_openapi_schema")
    deployment._parameter_openapi_schema = schema


# --- the warm start ----------------------------------------------------------------------------


def start_held_runs_with(multiprocessing: ModuleType) -> None:
    """Prefect starts a run of a flow its runner holds with `multiprocessing.get_context("spawn")`
    as `prefect.flow_engine` sees the module: from now on, `multiprocessing` answers."""
    _internal(prefect.flow_engine, "multiprocessing")
    prefect.flow_engine.multiprocessing = multiprocessing  # type: ignore[attr-defined]


def hold_flow(runner: Runner, deployment_id: UUID, flow: prefect.Flow[Any, Any]) -> None:
    """What `Runner.add_flow` does for a deployment: the runner starts its runs from `flow` in
    memory instead of loading it from its entrypoint."""
    registry = _internal(runner, "_deployment_registry")
    register: Callable[[UUID, prefect.Flow[Any, Any]], None] = _internal(registry, "register_flow")
    register(deployment_id, flow)


def announce_serving(*deployments: RunnerDeployment) -> None:
    """What `prefect.serve` prints when its deployments are served."""
    _internal(prefect.flows, "_display_serve_start_message")(*deployments)
