"""The managers' read-only gateway: Prefect's own UI and API, with every change refused (403).

Prefect's open-source server has no roles: whoever reaches it may resume, cancel or delete a
run. Managers reach it through this gateway instead, a small ASGI app (Starlette) proxying with
httpx. It passes:

- every GET and HEAD (the UI's pages and assets, and the API's reads);
- the POSTs that only read: Prefect reads lists through POST `.../filter`, `/count`,
  `/paginate`, `/history` and a few more (`READ_POSTS`, checked against Prefect's OpenAPI
  routes by tests/test_gateway.py);

and refuses everything else (POST, PUT, PATCH, DELETE: resume, cancel, set state, create,
delete, edit) with 403 before it reaches Prefect. The UI learns where the API is from
`/ui-settings`; the gateway answers with its own address there, so the UI served through it also
calls the API through it (otherwise the browser would call the server directly).

Run: `python -m deployments.gateway --upstream http://127.0.0.1:4200 --port 4201`
(`make run` starts it on `CASECONF_MANAGER_PORT`).
"""

import argparse
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from models.config.settings import get_settings

#: POST routes of Prefect 3.9.1's API that read and change nothing.
READ_POSTS = re.compile(
    r"^/api/(?:"
    r"(?:[a-z0-9_]+/)*(?:filter|count|paginate|history|lateness)"  # lists, counts, histories
    r"|events/count-by/[a-z_]+"
    r"|ui/flow_runs/count-task-runs|ui/flows/count-deployments|ui/flows/next-runs"
    r"|ui/task_runs/dashboard/counts|ui/schemas/validate"
    r"|flow_runs/[0-9a-f-]{36}/input/filter"
    r"|work_pools/[^/]+/(?:queues|workers)/filter|work_pools/[^/]+/concurrency_status"
    r"|work_queues/[0-9a-f-]{36}/concurrency_status"
    r")/?$"
)
READ_METHODS = frozenset({"GET", "HEAD"})
REFUSAL = (
    "Read-only access: this address is the managers' view of caseconf; it shows runs, "
    "artifacts and dashboards and changes nothing (resume, cancel, delete, create and edit "
    "are refused). Coordinators use the Prefect UI itself."
)
# Hop-by-hop headers, and those the proxy recomputes.
DROP_REQUEST = {
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "upgrade"}


def allowed(method: str, path: str) -> bool:
    """Whether the gateway passes this request on to Prefect."""
    method = method.upper()
    if method in READ_METHODS:
        return True
    return method == "POST" and READ_POSTS.match(path) is not None


def create_app(upstream: str) -> Starlette:
    """The gateway in front of the Prefect server at `upstream` (e.g. http://127.0.0.1:4200)."""
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), timeout=60.0)

    async def ui_settings(request: Request) -> Response:
        upstream_response = await client.get(request.url.path, headers=_forwarded(request))
        settings = upstream_response.json()
        # The UI calls the API where this says: here, through the gateway, never around it.
        settings["api_url"] = f"{str(request.base_url).rstrip('/')}/api"
        return JSONResponse(settings, status_code=upstream_response.status_code)

    async def proxy(request: Request) -> Response:
        path = request.url.path
        if not allowed(request.method, path):
            return JSONResponse({"detail": REFUSAL}, status_code=403)
        if path.endswith("/ui-settings") and request.method == "GET":
            return await ui_settings(request)
        outgoing = client.build_request(
            request.method,
            path,
            params=request.url.query,
            headers=_forwarded(request),
            content=await request.body(),
        )
        answer = await client.send(outgoing, stream=True)
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() not in DROP_RESPONSE},
            background=BackgroundTask(answer.aclose),
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", proxy, methods=methods)], lifespan=lifespan)


def _forwarded(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="http://127.0.0.1:4200", help="the Prefect server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=get_settings().manager_port)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.upstream), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
