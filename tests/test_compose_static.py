"""docker/compose.yaml, the image and prefect.yaml, read as files: pinned, guarded, secret-free,
and the deployments the same as under `serve`."""

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml

from tests.compose_native import (
    COMPOSE_FILE,
    ROOT,
    ComposeError,
    interpolate,
    load_compose,
    read_env_file,
    service_command,
    service_environment,
)

DOCKER = ROOT / "docker"
EXAMPLE = read_env_file(DOCKER / ".env.example")
SECRET_WORDS = ("PASSWORD", "AUTH_STRING", "SECRET", "TOKEN")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(EXAMPLE)


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services(compose).items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag), (
            f"{name}: image {image!r} is not pinned to a version"
        )
        if repository == "caseconf":
            assert tag == version and service["build"]["dockerfile"] == "docker/Dockerfile"
    [base] = re.findall(r"^FROM (\S+)", (DOCKER / "Dockerfile").read_text(), re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base


def test_every_service_has_a_healthcheck_or_waits_on_a_condition(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, rule in depends.items():
            condition = rule.get("condition")
            assert condition in (
                "service_healthy",
                "service_completed_successfully",
            ), f"{name} -> {dependency}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in all_services[dependency], dependency
        assert "healthcheck" in service or depends, f"{name}: neither healthcheck nor condition"


def test_the_topology_is_prefects_self_hosted_one(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    apis = [n for n, s in all_services.items() if service_command(s)[1:3] == ["server", "start"]]
    assert len(apis) == 2
    for name in apis:
        assert "--no-services" in service_command(all_services[name])
    assert [
        n
        for n, s in all_services.items()
        if service_command(s)[1:4] == ["server", "services", "start"]
    ] == ["prefect-services"]
    workers = [n for n, s in all_services.items() if service_command(s)[1:3] == ["worker", "start"]]
    assert len(workers) == 2
    for name in [*apis, "prefect-services"]:
        env = service_environment(all_services[name])
        assert env["PREFECT_MESSAGING_BROKER"] == "prefect_redis.messaging"
        assert env["PREFECT_MESSAGING_CACHE"] == "prefect_redis.messaging"
        assert env["PREFECT_SERVER_EVENTS_CAUSAL_ORDERING"] == "prefect_redis.ordering"
        assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == "prefect_redis.lease_storage"
        assert env["PREFECT_SERVER_DOCKET_URL"].startswith("redis://")
        assert env["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"
        assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "false"
        assert env["PREFECT_SERVER_API_AUTH_STRING"] == EXAMPLE["PREFECT_AUTH_STRING"]
    prefect_db = service_environment(all_services[apis[0]])["PREFECT_API_DATABASE_CONNECTION_URL"]
    caseconf_db = service_environment(all_services["worker-1"])["CASECONF_DATABASE_URL"]
    assert "@postgres:5432/prefect" in prefect_db and "//prefect:" in prefect_db
    assert "@postgres:5432/caseconf" in caseconf_db and "//caseconf:" in caseconf_db
    for name in workers:
        command, env = service_command(all_services[name]), service_environment(all_services[name])
        assert command[command.index("--pool") + 1] == "caseconf"
        # Results on the volume every worker mounts: any worker can replay any run.
        assert "results:/var/lib/caseconf/results" in all_services[name]["volumes"]
        assert env["PREFECT_LOCAL_STORAGE_PATH"] == "/var/lib/caseconf/results"
        assert env["PREFECT_API_AUTH_STRING"] == EXAMPLE["PREFECT_AUTH_STRING"]
    for job in ("migrate", "setup"):
        assert service_command(all_services[job]) == ["python", "-m", "deployments.production", job]
        assert all_services[job]["restart"] == "no"
    for name in apis:
        assert all_services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_only_the_proxy_publishes_a_port(compose: dict[str, Any]) -> None:
    published = {n for n, s in services(compose).items() if s.get("ports")}
    assert published == {"proxy"}
    caddyfile = (DOCKER / "Caddyfile").read_text()
    assert "tls {$CASECONF_TLS}" in caddyfile and "health_uri /api/health" in caddyfile


def test_the_compose_file_refuses_to_start_without_its_secrets() -> None:
    for secret in [k for k in EXAMPLE if any(w in k for w in SECRET_WORDS)]:
        with pytest.raises(ComposeError, match=secret):
            load_compose({k: v for k, v in EXAMPLE.items() if k != secret})


def test_env_example_shows_every_variable_and_no_secret() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used <= set(EXAMPLE) | {"CASECONF_PROFILES_DIR"}, used - set(EXAMPLE)
    assert "CASECONF_PROFILES_DIR" in (DOCKER / ".env.example").read_text()
    for key, value in EXAMPLE.items():
        if any(word in key for word in SECRET_WORDS):
            assert "CHANGE" in value, f"{key}: .env.example must only show a placeholder"


def test_no_secret_in_a_committed_file() -> None:
    committed = subprocess.run(
        # committed, or not ignored (would be committed)
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "docker", "prefect.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "docker/.env" not in committed
    for private in ("docker/.env", "docker/config/apprise.yaml"):
        ignored = subprocess.run(["git", "check-ignore", "-q", private], cwd=ROOT)
        assert ignored.returncode == 0, f"{private} must be git-ignored"
    # KEY: value (YAML) or KEY=value (env, shell): the value must be a reference, not a secret.
    literal = re.compile(
        r"\b([A-Z_]*(?:PASSWORD|AUTH_STRING|SECRET|TOKEN)[A-Z_]*)(?::[ \t]+|=)[\"']?(?!\$)(\S+)"
    )
    for path in committed:
        if path.endswith(".env.example"):
            continue
        for match in literal.finditer((ROOT / path).read_text()):
            assert match.group(2).startswith(("CHANGE", '"$$')), f"{path}: {match.group(0)}"
        text = (ROOT / path).read_text()
        assert not re.search(r"://[^\s:/@${}]+:[^\s@${}]+@", text), f"{path}: URL with a password"


def test_interpolation_follows_compose() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("${A}-${B:-x}-${EMPTY:-y}-${EMPTY-z}-$$A", env) == "1-x-y--$A"
    with pytest.raises(ComposeError, match="B: give B"):
        interpolate("${B:?give B}", env)


# --- prefect.yaml against the deployments `serve` makes -------------------------------------------


def prefect_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "prefect.yaml").read_text()))


def test_prefect_yaml_has_every_served_deployment_with_the_same_parameters(database: str) -> None:
    """(`serve` reads the directory as it builds its deployments: hence the database.)"""
    from prefect.flows import load_flow_from_entrypoint

    from deployments.serve import deployments

    declared = {d["name"]: d for d in prefect_yaml()["deployments"]}
    served = {d.name: d for d in deployments()}
    assert set(served) <= set(declared), f"not in prefect.yaml: {set(served) - set(declared)}"
    assert set(declared) - set(served) == {"recover"}
    for name, runner in served.items():
        spec = declared[name]
        assert spec["entrypoint"] == runner.entrypoint, name
        flow: Any = load_flow_from_entrypoint(str(ROOT / spec["entrypoint"]))
        assert flow.name == runner.flow_name, name
        assert (spec.get("parameters") or {}) == runner.parameters, name
        assert spec["tags"] == runner.tags, name
        assert spec["description"] == runner.description, name
        assert spec["work_pool"]["name"] == "caseconf", name
        intervals = [s.schedule.interval.total_seconds() for s in runner.schedules]  # type: ignore[union-attr]
        assert [s["interval"] for s in spec.get("schedules") or []] == intervals, name
    recover: Any = load_flow_from_entrypoint(str(ROOT / declared["recover"]["entrypoint"]))
    assert recover.name == "case-recover" and recover.parameters.properties == {}
    [trigger] = declared["recover"]["triggers"]
    assert trigger["expect"] == ["prefect.flow-run.Crashed"]
    assert trigger["match_related"]["prefect.resource.id"] == "prefect.tag.caseconf"
    assert "caseconf" not in declared["recover"]["tags"]  # its own crash does not trigger it


def test_prefect_yaml_pulls_the_code_from_where_the_worker_has_it() -> None:
    [step] = prefect_yaml()["pull"]
    assert step == {
        "prefect.deployments.steps.set_working_directory": {"directory": "{{ $CASECONF_HOME }}"}
    }
    assert "CASECONF_HOME=/opt/caseconf" in (DOCKER / "Dockerfile").read_text()


def test_the_image_installs_the_lock_as_a_user_without_root() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    [user] = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user not in ("root", "0")
    lock = (DOCKER / "requirements.lock").read_text()
    assert re.search(r"^prefect==3\.9\.1 ", lock, re.M)
    assert re.search(r"^prefect-redis==0\.3\.\d+ ", lock, re.M)
    assert "config/directory" not in dockerfile and "apprise" not in dockerfile
