"""docker/compose.yaml and its observability configs, checked offline (no Docker here).

Every service under services/ runs in compose, Prometheus scrapes each one's metrics port
with the labels the dashboards select by, Grafana is provisioned with Prometheus and the
chart's own dashboards folder, and the OpenTelemetry Collector takes OTLP for traces and
metrics from the services.
"""

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DASHBOARDS = ROOT / "deploy" / "helm" / "helpdesk" / "files" / "dashboards"

# The house plan's ports: gRPC, metrics.
PORTS = {
    "intake": (50051, 9101),
    "routing": (50052, 9102),
    "sla": (50053, 9103),
    "notification": (50054, 9104),
    "knowledge": (50055, 9105),
}

Config = dict[str, Any]


def runnable_services() -> list[str]:
    """Services that start as processes: a folder under services/ with an app.py or a
    __main__.py (core is a library; a service whose code is not wired yet has neither)."""
    return sorted(
        folder.name
        for folder in (ROOT / "services").iterdir()
        if any(
            (folder / "src" / "helpdesk" / folder.name / room).is_file()
            for room in ("app.py", "__main__.py")
        )
    )


def load(path: Path) -> Config:
    loaded: Config = yaml.safe_load(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def compose() -> Config:
    return load(COMPOSE)


def _mounts(service: Config) -> dict[str, Path]:
    """Container path -> host path of a compose service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def _mounted_file(compose: Config, service: str, container_path: str) -> Path:
    mounts = _mounts(compose["services"][service])
    for target, source in mounts.items():
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{service}: nothing mounted at {container_path} ({mounts})")


# ---------------------------------------------------------------------------- the checks


def service_problems(compose: Config, names: list[str]) -> list[str]:
    """Every runnable service runs from the image of its name, on the house plan's ports,
    sending OTLP to the collector."""
    problems = []
    services = compose["services"]
    for name in names:
        if name not in PORTS:
            problems.append(f"{name}: not in the house plan's port table (add it here)")
            continue
        service = services.get(name)
        if service is None:
            problems.append(f"{name}: no compose service")
            continue
        grpc_port, metrics_port = PORTS[name]
        env = service.get("environment", {})
        if service.get("build", {}).get("args", {}).get("SERVICE") != name:
            problems.append(f"{name}: not built with SERVICE={name}")
        if env.get("HELPDESK_GRPC_PORT") != str(grpc_port):
            problems.append(f"{name}: HELPDESK_GRPC_PORT is not {grpc_port}")
        if env.get("HELPDESK_METRICS_PORT") != str(metrics_port):
            problems.append(f"{name}: HELPDESK_METRICS_PORT is not {metrics_port}")
        endpoint = urlsplit(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
        if endpoint.hostname not in services or endpoint.port != 4317:
            problems.append(f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT is not a compose service's :4317")
    return problems


def scrape_problems(prometheus: Config, compose: Config, names: list[str]) -> list[str]:
    """Prometheus scrapes each service's metrics port, labelled as the chart's
    ServiceMonitors label it (helpdesk_component, namespace)."""
    scraped: dict[str, dict[str, str]] = {}
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                scraped[target] = static.get("labels", {})
    problems = []
    for name in names:
        target = f"{name}:{PORTS[name][1]}"
        if target not in scraped:
            problems.append(f"{name}: {target} is not scraped")
            continue
        labels = scraped[target]
        if labels.get("helpdesk_component") != name or not labels.get("namespace"):
            problems.append(f"{name}: {target} lacks helpdesk_component={name} or namespace")
    for target in scraped:
        if target.split(":")[0] not in compose["services"]:
            problems.append(f"{target}: no such compose service")
    return problems


def collector_problems(collector: Config, compose: Config) -> list[str]:
    """An OTLP receiver on 4317, pipelines for traces and metrics from it, and every
    component a pipeline names defined (the collector refuses to start otherwise)."""
    problems = []
    grpc = collector.get("receivers", {}).get("otlp", {}).get("protocols", {}).get("grpc")
    if not grpc or not str(grpc.get("endpoint", "")).endswith(":4317"):
        problems.append("no OTLP gRPC receiver on :4317")
    pipelines = collector.get("service", {}).get("pipelines", {})
    for signal in ("traces", "metrics"):
        pipeline = pipelines.get(signal)
        if not pipeline:
            problems.append(f"no {signal} pipeline")
            continue
        if "otlp" not in pipeline.get("receivers", []):
            problems.append(f"the {signal} pipeline does not take OTLP")
        if not pipeline.get("exporters"):
            problems.append(f"the {signal} pipeline exports nowhere")
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                if component not in collector.get(kind, {}):
                    problems.append(f"{signal}: {kind[:-1]} {component} is not defined")
    for name, exporter in collector.get("exporters", {}).items():
        endpoint = str(exporter.get("endpoint", ""))
        host = endpoint.split("://")[-1].split(":")[0]
        if host and host != "0.0.0.0" and host not in compose["services"]:
            problems.append(f"exporter {name}: {host} is not a compose service")
    return problems


# ---------------------------------------------------------------------------- the tests


def test_runnable_services_are_found() -> None:
    names = runnable_services()
    assert {"intake", "routing", "sla", "notification"} <= set(names)
    assert "core" not in names


def test_every_service_runs_in_compose(compose: Config) -> None:
    assert service_problems(compose, runnable_services()) == []


def test_prometheus_scrapes_every_service(compose: Config) -> None:
    prometheus = load(_mounted_file(compose, "prometheus", "/etc/prometheus/prometheus.yml"))
    assert scrape_problems(prometheus, compose, runnable_services()) == []


def test_grafana_has_prometheus_and_the_charts_dashboards(compose: Config) -> None:
    provisioning = _mounted_file(compose, "grafana", "/etc/grafana/provisioning")
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yaml"))
        for source in load(path)["datasources"]
    ]
    (prometheus,) = [s for s in sources if s["type"] == "prometheus"]
    assert prometheus["isDefault"] is True
    url = urlsplit(prometheus["url"])
    assert (url.hostname, url.port) == ("prometheus", 9090), prometheus["url"]
    assert "prometheus" in compose["services"]

    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yaml"))
        for provider in load(path)["providers"]
    ]
    (provider,) = providers
    folder = _mounted_file(compose, "grafana", provider["options"]["path"])
    assert folder == DASHBOARDS.resolve(), "Grafana must read the chart's dashboards folder"
    files = sorted(folder.glob("*.json"))
    assert {f.name for f in files} >= {"kafka.json", "notification.json", "red.json"}
    for file in files:
        dashboard = json.loads(file.read_text())
        assert dashboard["uid"], file.name
        # the dashboards pick their data source by type: the provisioned one must match
        (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert variable["query"] == prometheus["type"], file.name


def test_collector_takes_otlp_for_traces_and_metrics(compose: Config) -> None:
    command = compose["services"]["otel-collector"]["command"]
    (config_arg,) = [arg for arg in command if arg.startswith("--config=")]
    collector = load(_mounted_file(compose, "otel-collector", config_arg.split("=", 1)[1]))
    assert collector_problems(collector, compose) == []


def test_every_mounted_file_exists(compose: Config) -> None:
    for name, service in compose["services"].items():
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_the_checks_can_fail(compose: Config) -> None:
    """Each check must see a service left out, a port wrong, a pipeline missing."""
    broken = copy.deepcopy(compose)
    del broken["services"]["routing"]
    broken["services"]["sla"]["environment"]["HELPDESK_METRICS_PORT"] = "9999"
    problems = service_problems(broken, ["intake", "routing", "sla", "billing"])
    assert problems == [
        "routing: no compose service",
        "sla: HELPDESK_METRICS_PORT is not 9103",
        "billing: not in the house plan's port table (add it here)",
    ]

    prometheus = load(_mounted_file(compose, "prometheus", "/etc/prometheus/prometheus.yml"))
    prometheus["scrape_configs"][0]["static_configs"].pop(0)  # intake's target
    assert scrape_problems(prometheus, compose, ["intake", "routing"]) == [
        "intake: intake:9101 is not scraped"
    ]

    collector = load(DOCKER / "otel-collector.yaml")
    del collector["service"]["pipelines"]["metrics"]
    collector["service"]["pipelines"]["traces"]["exporters"].append("zipkin")
    assert collector_problems(collector, compose) == [
        "traces: exporter zipkin is not defined",
        "no metrics pipeline",
    ]
