"""The managers' gateway in front of a real Prefect server: reads pass, every change is refused
with 403 and leaves the run as it was."""

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Paused

from deployments.gateway import allowed
from tests.browser import gateway  # noqa: F401  (fixture)

READ_SUMMARY = (
    "Read ",
    "Count ",
    "Paginate ",
    "Filter ",
    "Flow Run History",
    "Task Run History",
    "Average Flow Run Lateness",
    "Next Runs By Flow",
    "Validate Obj",
)
SOME_ID = "0e8a0b1c-1111-2222-3333-444455556666"


def example_path(route: str) -> str:
    for name in ("{id}", "{lease_id}"):
        route = route.replace(name, SOME_ID)
    for name in ("{name}", "{work_pool_name}", "{tag}", "{countable}", "{key}", "{slug}"):
        route = route.replace(name, "day")
    return "/api" + route


def test_the_gateway_passes_exactly_the_routes_that_read(gateway) -> None:  # noqa: F811
    spec = httpx.get(f"{gateway.url}/api/openapi.json", timeout=30).json()
    passed, refused = [], []
    for route, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "get":
                continue
            (passed if allowed(method, example_path(route)) else refused).append(
                (method.upper(), route, operation["summary"])
            )
    assert passed and refused
    for method, route, summary in passed:
        assert method == "POST" and summary.startswith(READ_SUMMARY), (method, route, summary)
    needed = {
        "/flow_runs/filter",
        "/artifacts/filter",
        "/artifacts/latest/filter",
        "/logs/filter",
        "/flow_runs/history",
        "/ui/flow_runs/history",
        "/task_runs/count",
    }
    assert needed <= {route for _, route, _ in passed}
    assert ("POST", "/flow_runs/{id}/resume", "Resume Flow Run") in refused
    assert ("POST", "/flow_runs/{id}/set_state", "Set Flow Run State") in refused
    assert ("DELETE", "/flow_runs/{id}", "Delete Flow Run") in refused


def make_paused_run(name: str) -> str:
    with get_client(sync_client=True) as client:
        # From a deployment, as every case run is (the UI offers Cancel only for those).
        flow_id = client.create_flow_from_name("gateway-test")
        deployment_id = client.create_deployment(flow_id=flow_id, name="waiting")
        run = client.create_flow_run_from_deployment(
            deployment_id, name=name, tags=[f"case:{name}"]
        )
        client.set_flow_run_state(run.id, Paused(pause_key="step-0", reschedule=True), force=True)
        return str(run.id)


def test_changes_are_refused_and_the_run_stays_as_it_was(gateway, prefect_server) -> None:  # noqa: F811
    run_id = make_paused_run("CASE-2026-9901")
    with get_client(sync_client=True) as client:
        before = client.read_flow_run(run_id)
    api = f"{gateway.url}/api"
    attempts = [
        ("POST", f"/flow_runs/{run_id}/resume", {"run_input": {"x": 1}}),
        (
            "POST",
            f"/flow_runs/{run_id}/set_state",
            {"state": {"type": "CANCELLING"}, "force": True},
        ),
        ("PATCH", f"/flow_runs/{run_id}", {"name": "renamed", "tags": []}),
        ("DELETE", f"/flow_runs/{run_id}", None),
        ("POST", "/flow_runs/", {"flow_id": str(before.flow_id)}),
        ("POST", "/flow_runs/bulk_delete", {}),
        ("POST", "/variables/", {"name": "x", "value": "y"}),
        ("PUT", "/flow_runs/x", {}),
    ]
    with httpx.Client(timeout=30) as http:
        for method, path, body in attempts:
            answer = http.request(method, api + path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "Read-only" in answer.json()["detail"]
        # Reads pass: the run itself and the lists the UI asks for by POST.
        assert http.get(f"{api}/flow_runs/{run_id}").json()["name"] == "CASE-2026-9901"
        found = http.post(f"{api}/flow_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}})
        assert found.status_code == 200 and [r["id"] for r in found.json()] == [run_id]
        assert http.post(f"{api}/flow_runs/count", json={}).json() >= 1
        # The UI served through the gateway calls the API through the gateway.
        settings = http.get(f"{gateway.url}/ui-settings").json()
        assert settings["api_url"] == f"{gateway.url}/api"
        page = http.get(f"{gateway.url}/v2/runs", headers={"accept": "text/html"})
        assert page.status_code == 200 and "<html" in page.text
    with get_client(sync_client=True) as client:
        after = client.read_flow_run(run_id)
    assert after.state is not None and after.state.type == StateType.PAUSED
    assert after.state.id == before.state.id  # not even a new state of the same type
    assert (after.name, after.tags) == (before.name, before.tags)
