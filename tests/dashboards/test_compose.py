"""The docker-compose stack, validated as far as a machine without a Docker engine allows: compose itself
(`docker compose`, or Debian's `docker-compose` that `make venv` installs) checks the file against its schema and
resolves it; the other tests check what the services would trip over — files that are not there, mounts that do
not line up with the configs that use them, ports, dependencies — and run `promtool check config`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from costline.dashboards import build
from costline.dashboards.config import DEFAULT_CONFIG

from .conftest import GENERATED, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
COLLECTOR_YAML = REPO / "deploy" / "otel-collector" / "config.yaml"


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path (relative to the repo) of a service's bind mounts."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = source
    return mounts


def _container_to_host(service: str, container_path: str) -> Path:
    for target, source in _mounts(service).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return REPO / source / Path(container_path).relative_to(target)
    raise AssertionError(f"{service}: {container_path} is not on a bind mount")


def _published_ports(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def test_the_stack_has_every_part():
    assert {"processor", "otel-collector", "prometheus", "alertmanager", "grafana", "fake-provider"} <= set(SERVICES)
    demo = [name for name in SERVICES if name.startswith("demo-")]
    assert len(demo) == 3, demo
    assert "opentelemetry-collector-contrib" in SERVICES["otel-collector"]["image"]
    assert SERVICES["processor"]["command"][:2] == ["costline", "serve"]


def test_every_service_has_an_image_or_a_buildable_dockerfile():
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"]
            context = REPO / build["context"]
            assert (context / build["dockerfile"]).is_file(), name


def test_dockerfile_copies_only_what_exists():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text("utf-8")
    for source in re.findall(r"^COPY\s+(\S+)\s", dockerfile, flags=re.M):
        assert (REPO / source).exists(), source


def test_every_bind_mount_exists_and_named_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: named volume {source} not declared"


def test_host_ports_are_unique_and_dependencies_exist():
    host_ports = [str(p).split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports
    for name, service in SERVICES.items():
        depends = service.get("depends_on", [])
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in SERVICES and dependency != name, (name, dependency)
    assert SERVICES["otel-collector"]["depends_on"]["processor"]["condition"] == "service_healthy"
    assert "healthcheck" in SERVICES["processor"]


def test_prometheus_scrapes_the_processor_under_the_mixins_selector_and_loads_the_rules():
    config = yaml.safe_load(PROMETHEUS_YML.read_text("utf-8"))
    job = DEFAULT_CONFIG.costline_selector.split('"')[1]
    (costline,) = [c for c in config["scrape_configs"] if c["job_name"] == job]
    (target,) = costline["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "processor" and int(port) in _published_ports("processor")
    assert _container_to_host("prometheus", "/etc/prometheus/prometheus.yml") == PROMETHEUS_YML
    (rule_glob,) = config["rule_files"]
    rules_dir = _container_to_host("prometheus", str(Path(rule_glob).parent))
    assert rules_dir.resolve() == (GENERATED / "prometheus").resolve()
    assert sorted(rules_dir.glob(Path(rule_glob).name)), "the rule glob matches the generated rules"


def test_promtool_check_config_with_the_generated_rules(promtool, tmp_path):
    # The shipped file points at the container's rule path; check the same config with the rules where they are here.
    config = yaml.safe_load(PROMETHEUS_YML.read_text("utf-8"))
    config["rule_files"] = [str(GENERATED / "prometheus" / "*.yaml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config), "utf-8")
    for path in (PROMETHEUS_YML, local):
        result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_prometheus_sends_alerts_to_the_alertmanager_running_the_generated_config():
    config = yaml.safe_load(PROMETHEUS_YML.read_text("utf-8"))
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (target,) = alertmanagers["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "alertmanager" and int(port) in _published_ports("alertmanager")
    command = SERVICES["alertmanager"]["command"]
    (config_flag,) = [arg for arg in command if arg.startswith("--config.file=")]
    mounted = _container_to_host("alertmanager", config_flag.split("=", 1)[1])
    assert mounted.resolve() == (GENERATED / build.ALERTMANAGER).resolve()


def test_collector_config_wires_otlp_in_to_the_processor_out():
    config = yaml.safe_load(COLLECTOR_YAML.read_text("utf-8"))
    assert _container_to_host("otel-collector", "/etc/otelcol-contrib/config.yaml") == COLLECTOR_YAML
    assert any("/etc/otelcol-contrib/config.yaml" in arg for arg in SERVICES["otel-collector"]["command"])
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} used but not defined under {kind}"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]
    # Applications reach the Collector's OTLP ports; the Collector reaches the processor's OTLP/HTTP port.
    protocols = config["receivers"]["otlp"]["protocols"]
    assert {int(p["endpoint"].rsplit(":", 1)[1]) for p in protocols.values()} <= _published_ports("otel-collector")
    endpoint = urlparse(config["exporters"]["otlphttp/costline"]["endpoint"])
    assert endpoint.hostname == "processor" and endpoint.port == 4318
    assert "4318" in (REPO / "deploy" / "Dockerfile").read_text("utf-8")


def test_grafana_is_provisioned_from_the_generated_files():
    provisioning = _container_to_host("grafana", "/etc/grafana/provisioning")
    assert provisioning.resolve() == (GENERATED / "grafana" / "provisioning").resolve()
    datasources = yaml.safe_load((provisioning / "datasources" / "costline.yaml").read_text("utf-8"))
    url = urlparse(datasources["datasources"][0]["url"])
    assert url.hostname in SERVICES and url.port in _published_ports(url.hostname)
    providers = yaml.safe_load((provisioning / "dashboards" / "costline.yaml").read_text("utf-8"))
    dashboards = _container_to_host("grafana", providers["providers"][0]["options"]["path"])
    assert sorted(p.name for p in dashboards.glob("*.json")) == sorted(
        p.name for p in (GENERATED / "grafana" / "dashboards").glob("*.json")
    )
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _container_to_host("grafana", home).is_file()


def test_demo_services_run_the_demo_workload_through_the_collector():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text("utf-8")
    for name in (n for n in SERVICES if n.startswith("demo-")):
        service = SERVICES[name]
        script = service["command"][service["command"].index("python") + 1]
        assert script.startswith("/opt/costline/demo/") and (REPO / "demo" / Path(script).name).is_file(), name
        endpoint = urlparse(service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.hostname == "otel-collector" and endpoint.port in _published_ports("otel-collector")
        assert urlparse(service["environment"]["OPENAI_BASE_URL"]).hostname == "fake-provider"
        team = name.removeprefix("demo-")
        assert f"costline.team={team}" in service["environment"]["OTEL_RESOURCE_ATTRIBUTES"]
        assert service["command"][service["command"].index("--service") + 1] == team
    assert "WORKDIR /opt/costline" in dockerfile and "COPY demo/ demo/" in dockerfile


def test_processor_config_mounted_into_the_container_exists():
    command = SERVICES["processor"]["command"]
    config_path = command[command.index("--config") + 1]
    assert _container_to_host("processor", config_path).is_file()


def _compose_command() -> list[str] | None:
    """`docker compose` (plugin) or Debian's `docker-compose` (v1): both validate a file without an engine."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _compose(*args: str) -> subprocess.CompletedProcess:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose client installed (`make venv` installs Debian's docker-compose: "
                    "scripts/install-docker-compose.sh)")
    return subprocess.run([*command, "-f", "docker-compose.yml", *args], cwd=REPO, capture_output=True, text=True)


def test_docker_compose_config_validates_the_file():
    """Schema validation by compose itself (no engine is needed for `config`): unknown keys, wrong types, services
    that depend on services that do not exist."""
    result = _compose("config", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_resolves_the_file_as_these_tests_read_it():
    """The static tests read the file with PyYAML; compose resolves the `x-` anchor and the `<<` merges of the demo
    services itself. Both must see the same services, images, commands and environments."""
    result = _compose("config")
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert set(resolved) == set(SERVICES)
    for name, service in SERVICES.items():
        for field in ("image", "command"):
            assert resolved[name].get(field) == service.get(field), (name, field)
        environment = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        assert (resolved[name].get("environment") or {}) == environment, name
    for name in (n for n in SERVICES if n.startswith("demo-")):
        team = name.removeprefix("demo-")
        assert resolved[name]["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert f"costline.team={team}" in resolved[name]["environment"]["OTEL_RESOURCE_ATTRIBUTES"], name


def _documented_tokens() -> set[str]:
    """The bearer tokens the compose file's header and the README tell users to read the API with."""
    pattern = r'Authorization: Bearer ([^"\s]+)" "?localhost:9464/api/v1/'
    found = {name: set(re.findall(pattern, (REPO / name).read_text("utf-8"))) for name in
             ("docker-compose.yml", "README.md")}
    assert all(found.values()), found
    return set().union(*found.values())


def test_the_host_reads_the_processors_api_with_the_documented_token(tmp_path):
    """Host requests reach the processor through Docker's bridge, not loopback: the API must answer them with the
    token the docs show (a read-only role) and refuse them without one; Prometheus scrapes /metrics without a token."""
    from costline.processor.config.settings import Address, Settings
    from costline.processor.http.server import Request
    from costline.processor.service import Service
    from costline.testing.local import free_port

    command = SERVICES["processor"]["command"]
    config = _container_to_host("processor", command[command.index("--config") + 1])
    settings = Settings(config_path=config, db_url=f"sqlite:///{tmp_path / 'l.db'}", otlp_http=None, otlp_grpc=None,
                        http=Address("0.0.0.0", free_port()))
    service = Service(settings).start()
    try:
        api = service.admin.router
        bridge = "172.18.0.1"  # the host as the container sees it

        def status(path: str, token: str | None = None, method: str = "GET", **query: str) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            request = Request(method, path, {k: [v] for k, v in query.items()}, headers, client=bridge)
            return api(request).status

        for token in _documented_tokens():
            assert status("/api/v1/budgets", token) == 200, token
            assert status("/api/v1/usage", token, group_by="team,model", format="csv") == 200, token
            assert status("/api/v1/reload", token, method="POST") == 403, "the documented token is not an admin's"
        assert status("/api/v1/budgets") == 401
        assert status("/metrics") == 200
        prometheus = yaml.safe_load(PROMETHEUS_YML.read_text("utf-8"))
        assert all("authorization" not in job for job in prometheus["scrape_configs"])
    finally:
        service.stop(1)


def test_grafana_lets_anonymous_visitors_view_only():
    environment = SERVICES["grafana"]["environment"]
    if str(environment.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() == "true":
        assert environment.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"
    assert str(environment.get("GF_AUTH_DISABLE_LOGIN_FORM", "false")).lower() != "true"  # editors can sign in
    assert "GF_AUTH_BASIC_ENABLED" not in environment or str(environment["GF_AUTH_BASIC_ENABLED"]).lower() == "true"
