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
from collections.abc import Mapping
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
