"""The deployments' parameter forms with the directory's choices: built when `serve` starts and
registered again by `python -m deployments load` when the directory or the profiles change."""

import inspect
from typing import Any

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.deployments.runner import RunnerDeployment
from prefect.utilities.callables import ParameterSchema, parameter_schema
from pydantic import BaseModel

from models.answers import Choices, with_choices
from models.config.settings import get_settings
from models.record.database import session_scope
from models.rules import choices
from tasks.prefect_compat import set_parameter_schema

#: Parameter model name -> its fields that offer choices (read from the directory and profiles).
ACTING = ("acting_representative",)


def parameter_choices() -> dict[str, Choices]:
    """Each parameter model's choices, read now."""
    settings = get_settings()
    with session_scope() as session:
        representatives = choices.representatives(session)
        agencies = choices.agencies(session)
        areas = choices.areas(session)
        venues = [] if settings.free_text_place else choices.venues(session)
    acting = {"acting_representative": representatives}
    return {
        "Referral": {
            "referring_agency": agencies,
            "profile": choices.profiles(settings.profiles_dir),
            "stage": choices.referral_stages(),
        },
        "Closure": acting,
        "Reschedule": {**acting, "location": venues} if venues else acting,
        "Handover": acting,
        "ConsentWithdrawal": acting,
        "StageMove": acting,
        "Transfer": {**acting, "lead_agency": agencies, "area": areas},
        "ReviewChange": acting,
    }


def schema_with_choices(flow: Flow[Any, Any], offered: dict[str, Choices]) -> ParameterSchema:
    """The flow's parameter schema, each parameter model narrowed to its choices."""
    signature = inspect.signature(flow.fn, eval_str=True)
    settings = get_settings()
    parameters = []
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            narrowed = with_choices(
                annotation,
                offered.get(annotation.__name__, {}),
                required={"profile"} if annotation.__name__ == "Referral" else (),
            )
            if annotation.__name__ == "Referral":
                # The installation's profile is pre-selected: no empty option to toggle.
                narrowed.model_fields["profile"].default = settings.profile
                narrowed.model_rebuild(force=True)
            annotation = narrowed
        parameters.append(parameter.replace(annotation=annotation))

    def stand_in() -> None: ...

    stand_in.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    stand_in.__doc__ = flow.fn.__doc__
    return parameter_schema(stand_in)


def with_parameter_choices(made: list[RunnerDeployment], flows: dict[str, Flow[Any, Any]]) -> None:
    """Give each deployment's parameter schema the choices of the directory as it is now."""
    offered = parameter_choices()
    for deployment in made:
        set_parameter_schema(
            deployment, schema_with_choices(flows[str(deployment.flow_name)], offered)
        )


def refresh_registered(made: list[RunnerDeployment], flows: dict[str, Flow[Any, Any]]) -> int:
    """Update the parameter schemas of the deployments already registered with the Prefect
    server (a running `serve` keeps serving them); returns how many were updated."""
    offered = parameter_choices()
    updated = 0
    with get_client(sync_client=True) as client:
        for deployment in made:
            try:
                found = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            except Exception:  # not registered yet: serve registers it
                continue
            schema = schema_with_choices(flows[str(deployment.flow_name)], offered)
            client.update_deployment(
                found.id, DeploymentUpdate(parameter_openapi_schema=schema.model_dump())
            )
            updated += 1
    return updated
