"""Run docker/compose.yaml's services natively, from the file's own definitions.

No Docker daemon here: each service's command is started as a process on this machine with the
environment the file gives it (anchors, merges and ${VAR} interpolation from an env file, as
`docker compose` does). Only addresses and paths are translated: a service name becomes its
native address (`postgres:5432` -> 127.0.0.1:5432), a container path its native folder
(`/var/lib/caseconf/results` -> a shared temporary folder). Whatever else differs is passed
explicitly as an override by the caller, so a reader sees every deviation in one place.
"""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
BIN = Path(sys.executable).parent

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\})")


class ComposeError(ValueError):
    """The compose file asks for something the env file does not give (`${VAR:?message}`)."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, and $$ for a literal dollar."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        missing = not value if op in (":-", ":?") else value is None
        if op and op.endswith("-") and missing:
            return interpolate(arg or "", env)
        if op and op.endswith("?") and missing:
            raise ComposeError(f"{name}: {arg or 'is required'}")
        return value or ""

    return _VARIABLE.sub(one, text)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(n, env) for n in node]
    if isinstance(node, dict):
        return {k: _walk(v, env) for k, v in node.items()}
    return node


def load_compose(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with anchors merged and every variable interpolated from `env`."""
    raw = yaml.safe_load(path.read_text())
    return dict(_walk(raw, env))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blanks skipped), as `docker compose --env-file` reads them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def service_command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


@dataclass
class NativeStack:
    """The compose file's services as processes on this machine."""

    compose: dict[str, Any]
    workdir: Path
    #: "service:port" -> native "host:port"
    addresses: dict[str, str]
    #: container path prefix -> native path
    paths: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.compose["services"][name])

    def translate(self, value: str) -> str:
        for compose_address, native in self.addresses.items():
            value = re.sub(rf"(?<![\w.-]){re.escape(compose_address)}(?![\w-])", native, value)
        hosts = {a.split(":")[0]: n.split(":")[0] for a, n in self.addresses.items()}
        if value in hosts:
            return hosts[value]
        for container, native_path in self.paths.items():
            if value == container or value.startswith(container + "/"):
                value = str(native_path) + value[len(container) :]
        return value

    def environment(self, name: str) -> dict[str, str]:
        """What the service's process gets: a clean base, the compose environment translated,
        then the caller's overrides for this service."""
        base = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            "HOME": str(self.workdir / name / "home"),
            "PREFECT_HOME": str(self.workdir / name / "prefect"),
            "PYTHONUNBUFFERED": "1",
        }
        env = {k: self.translate(v) for k, v in service_environment(self.service(name)).items()}
        return {**base, **env, **self.overrides.get(name, {})}

    def command(self, name: str) -> list[str]:
        command = [self.translate(c) for c in service_command(self.service(name))]
        if command and command[0] in ("prefect", "python"):
            command[0] = str(BIN / command[0])
        return command

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str, command: list[str] | None = None) -> subprocess.Popen[bytes]:
        env = self.environment(name)
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(name), "ab")  # noqa: SIM115
        process = subprocess.Popen(
            command or self.command(name),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a container
        )
        self.processes[name] = process
        return process

    def run_once(self, name: str, timeout: float = 300) -> None:
        """A one-shot service (`restart: "no"`): start it and require exit status 0."""
        process = self.start(name)
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)
            raise
        if status != 0:
            tail = self.log_path(name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {status}:\n{tail}")

    def wait_http(self, name: str, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=3):
                    return
            except OSError:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    tail = self.log_path(name).read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited:\n{tail}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no answer from {url} in {timeout} s") from None
                time.sleep(0.3)

    def stop(self, name: str, timeout: float = 30) -> None:
        """`docker compose stop`: SIGTERM to the service's processes, SIGKILL after `timeout`."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)

    def terminate(self, name: str) -> None:
        """SIGTERM to the service, without waiting for it to finish its shutdown."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)

    def kill(self, name: str) -> list[int]:
        """`docker kill`: SIGKILL to the service's main process and everything it started
        (a flow run's process runs in a session of its own). Returns the pids killed."""
        process = self.processes.get(name)
        if process is None:
            return []
        pids = [process.pid, *descendants(process.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        return pids

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name, timeout=15)
        for name in self.processes:
            for pid in descendants(self.processes[name].pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def children() -> dict[int, list[int]]:
    """Parent pid -> child pids, read from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident memory in bytes) of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


# --- the whole stack, for the topology test and the bench -------------------------------------


class Unavailable(RuntimeError):
    """PostgreSQL or Redis does not answer on loopback: the native topology cannot run."""


PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def dockerfile_env(path: Path = ROOT / "docker" / "Dockerfile") -> dict[str, str]:
    """The ENV the image sets (KEY=value pairs of every ENV instruction)."""
    text = path.read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                found[key] = value
    return found


def check_backing_services() -> None:
    import socket

    import redis

    for host, port in (PG, REDIS):
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as error:
            raise Unavailable(f"nothing answers on {host}:{port}: {error}") from None
    try:
        redis.Redis(host=REDIS[0], port=REDIS[1], socket_timeout=3).ping()
    except redis.RedisError as error:
        raise Unavailable(f"Redis on {REDIS[0]}:{REDIS[1]} does not answer PING: {error}") from None


def _psql(*sql: str) -> None:
    for statement in sql:
        subprocess.run(
            [
                "psql",
                "-w",
                "-q",
                "-h",
                PG[0],
                "-p",
                str(PG[1]),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )


@dataclass
class Running:
    """A native stack that is up: where its parts answer, and its credentials."""

    stack: NativeStack
    env: dict[str, str]
    api_urls: list[str]
    proxy_url: str | None
    public_url: str | None
    caseconf_database_url: str
    auth_string: str

    def api_settings(self, url: str) -> Any:
        """Prefect client settings that talk to `url` with the auth string."""
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        return temporary_settings(
            updates={PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: self.auth_string}
        )


def native_stack(
    workdir: Path,
    *,
    mail_port: int,
    chat_port: int,
    redis_dbs: tuple[int, int],
    crash_after: int = 90,
    worker_query_seconds: int = 5,
    use_proxy: bool = True,
) -> "Iterator[Running]":
    """Bring docker/compose.yaml's stack up natively (a generator: use with contextlib)."""
    import secrets
    import shutil
    import uuid

    import redis

    from deployments.mailcatcher import free_port

    check_backing_services()
    suffix = uuid.uuid4().hex[:8]
    auth = f"caseconf:{secrets.token_urlsafe(16)}"
    https_port, proxy_port = free_port(), free_port()
    caddy = shutil.which("caddy") if use_proxy else None
    env = read_env_file(ROOT / "docker" / ".env.example") | {
        "PREFECT_AUTH_STRING": auth,
        "POSTGRES_PASSWORD": secrets.token_hex(8),
        "PREFECT_DB_NAME": f"prefect_{suffix}",
        "PREFECT_DB_USER": f"prefect_{suffix}",
        "PREFECT_DB_PASSWORD": secrets.token_hex(8),
        "CASECONF_DB_NAME": f"caseconf_{suffix}",
        "CASECONF_DB_USER": f"caseconf_{suffix}",
        "CASECONF_DB_PASSWORD": secrets.token_hex(8),
        "REDIS_PASSWORD": secrets.token_hex(8),
        "PREFECT_REDIS_MESSAGING_DB": str(redis_dbs[0]),
        "PREFECT_DOCKET_DB": str(redis_dbs[1]),
        "CASECONF_PUBLIC_HOST": f"127.0.0.1:{https_port}",
        "CASECONF_TLS": "internal",
        "CASECONF_CRASH_AFTER_SECONDS": str(crash_after),
        "CASECONF_MAIL_FROM": "caseconf@demo.invalid",
    }
    compose = load_compose(env)
    api_ports = [free_port(), free_port()]
    apis = [f"127.0.0.1:{p}" for p in api_ports]
    addresses = {
        "postgres:5432": f"{PG[0]}:{PG[1]}",
        "redis:6379": f"{REDIS[0]}:{REDIS[1]}",
        "prefect-api-1:4200": apis[0],
        "prefect-api-2:4200": apis[1],
        # Without Caddy installed, the proxy's internal listener is replaced by replica 1.
        "proxy:8080": f"127.0.0.1:{proxy_port}" if caddy else apis[0],
    }
    config = workdir / "config"
    config.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "directory.demo.yaml", config / "directory.yaml")
    (config / "apprise.yaml").write_text(
        (ROOT / "config" / "apprise.demo.yaml")
        .read_text()
        .replace("127.0.0.1:2525", f"127.0.0.1:{mail_port}")
        .replace("127.0.0.1:8765", f"127.0.0.1:{chat_port}")
    )
    stack = NativeStack(
        compose,
        workdir,
        addresses,
        {
            "/var/lib/caseconf/results": workdir / "results",
            "/var/lib/caseconf/prefect": workdir / "prefect-home",
            "/etc/caseconf": config,
            "/opt/caseconf": ROOT,
        },
    )
    image = {k: stack.translate(v) for k, v in dockerfile_env().items()}
    image.pop("PREFECT_HOME")  # each service keeps its own, as each container does
    # The local Redis has no password (compose's has one): clients connect without.
    no_redis_password = {
        "PREFECT_REDIS_MESSAGING_PASSWORD": "",
        "PREFECT_SERVER_DOCKET_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_dbs[1]}",
    }
    for name, service in compose["services"].items():
        overrides = dict(image) if str(service.get("image", "")).startswith("caseconf:") else {}
        if "PREFECT_REDIS_MESSAGING_HOST" in service_environment(service):
            overrides |= no_redis_password
        stack.overrides[name] = overrides
    for index, name in enumerate(("prefect-api-1", "prefect-api-2")):
        stack.overrides[name] |= {
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(api_ports[index]),
        }
    for name in ("worker-1", "worker-2"):
        stack.overrides[name] |= {
            "PREFECT_WORKER_WEBSERVER_PORT": str(free_port()),
            "PREFECT_WORKER_QUERY_SECONDS": str(worker_query_seconds),
        }
    stack.overrides["proxy"] = {
        "XDG_DATA_HOME": str(workdir / "proxy" / "data"),
        "XDG_CONFIG_HOME": str(workdir / "proxy" / "config"),
        "CASECONF_INTERNAL_ADDRESS": f"127.0.0.1:{proxy_port}",
    }

    postgres = stack.environment("postgres")
    redis_client = redis.Redis(host=REDIS[0], port=REDIS[1])
    databases = [
        (env["PREFECT_DB_NAME"], env["PREFECT_DB_USER"]),
        (env["CASECONF_DB_NAME"], env["CASECONF_DB_USER"]),
    ]
    try:
        # The postgres service's init script, run against the local server.
        subprocess.run(
            ["bash", str(ROOT / "docker" / "postgres" / "init-databases.sh")],
            env={**postgres, "POSTGRES_USER": "postgres", "PGHOST": PG[0], "PGPORT": str(PG[1])},
            check=True,
            capture_output=True,
        )
        for db in redis_dbs:
            redis.Redis(host=REDIS[0], port=REDIS[1], db=db).flushdb()
        stack.run_once("migrate")
        for name in ("prefect-api-1", "prefect-api-2"):
            stack.start(name)
        if caddy:
            stack.start("proxy", [caddy, "run", "--config", str(ROOT / "docker" / "Caddyfile")])
        api_urls = [f"http://{a}/api" for a in apis]
        for name, url in zip(("prefect-api-1", "prefect-api-2"), api_urls, strict=True):
            stack.wait_http(name, f"{url}/health")
        proxy_url = f"http://127.0.0.1:{proxy_port}/api" if caddy else None
        if proxy_url:
            stack.wait_http("proxy", f"{proxy_url}/health")
        stack.run_once("setup")
        stack.start("prefect-services")
        for name in ("worker-1", "worker-2"):
            stack.start(name)
        for name in ("worker-1", "worker-2"):
            port = stack.overrides[name]["PREFECT_WORKER_WEBSERVER_PORT"]
            stack.wait_http(name, f"http://127.0.0.1:{port}/health")
        yield Running(
            stack=stack,
            env=env,
            api_urls=api_urls,
            proxy_url=proxy_url,
            public_url=f"https://127.0.0.1:{https_port}" if caddy else None,
            caseconf_database_url=stack.environment("worker-1")["CASECONF_DATABASE_URL"],
            auth_string=auth,
        )
    finally:
        stack.stop_all()
        for db in redis_dbs:
            redis.Redis(host=REDIS[0], port=REDIS[1], db=db).flushdb()
        redis_client.close()
        for database, role in databases:
            with contextlib.suppress(subprocess.CalledProcessError):
                _psql(
                    f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                    f'DROP ROLE IF EXISTS "{role}"',
                )
