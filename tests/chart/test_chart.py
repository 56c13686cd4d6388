"""The Helm chart, checked offline with the real tools.

helm (lint, template), kube-score and promtool (the alert rules' unit tests) are built by
deploy/tools/install.sh into .cache/bin; the Kubernetes JSON schemas come from the
kubernetes-validate package; PromQL is parsed by promql-parser. Nothing here needs a cluster
or the network.
"""

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_names as promql
import pytest
import yaml
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "helpdesk"
PRODUCTION = ROOT / "deploy" / "helm" / "values-production.yaml"
KUBE_SCORE_CONFIG = ROOT / "deploy" / "helm" / ".kube-score.yaml"
INSTALL = ROOT / "deploy" / "tools" / "install.sh"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
BIN = ROOT / ".cache" / "bin"

RELEASE = "helpdesk"
NAMESPACE = "helpdesk"
VALUE_SETS = {"default": [], "production": ["--values", str(PRODUCTION)]}

# The house plan's ports: gRPC, metrics.
PORTS = {
    "intake": (50051, 9101),
    "routing": (50052, 9102),
    "sla": (50053, 9103),
    "notification": (50054, 9104),
    "knowledge": (50055, 9105),
}
ALL_ENABLED = [f"--set=components.{name}.enabled=true" for name in PORTS]
TOPICS = [
    "helpdesk.intake.requests.v1",
    "helpdesk.tickets.events.v1",
    "helpdesk.sla.events.v1",
    "helpdesk.knowledge.events.v1",
    "helpdesk.dlq.helpdesk-intake.v1",
    "helpdesk.dlq.helpdesk-routing.v1",
    "helpdesk.dlq.helpdesk-sla.v1",
    "helpdesk.dlq.helpdesk-notification.v1",
    "helpdesk.dlq.helpdesk-knowledge.v1",
]
# Kinds from the Prometheus Operator's CRDs: no schema ships with kubernetes-validate, so
# they get the structural checks of test_prometheus_operator_objects instead.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]

Manifest = dict[str, Any]


# ---------------------------------------------------------------------------- tools


def _pinned_versions() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(INSTALL), "versions"], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split("=", 1) for line in out.split())


def _tool(name: str, version_args: list[str], expected: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run deploy/tools/install.sh (builds the chart tools)")
    version = subprocess.run(
        [str(path), *version_args], check=True, capture_output=True, text=True
    ).stdout
    if expected not in version:
        pytest.fail(
            f"{path} is not the pinned {expected} ({version.strip()}): run deploy/tools/install.sh"
        )
    return str(path)


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    return _pinned_versions()


@pytest.fixture(scope="session")
def helm(versions: dict[str, str]) -> str:
    return _tool("helm", ["version", "--template", "{{.Version}}"], versions["HELM_VERSION"])


@pytest.fixture(scope="session")
def kube_score(versions: dict[str, str]) -> str:
    return _tool("kube-score", ["version"], f"version: {versions['KUBE_SCORE_VERSION']},")


@pytest.fixture(scope="session")
def promtool(versions: dict[str, str]) -> str:
    return _tool("promtool", ["--version"], f"promtool, version {versions['PROMTOOL_VERSION']} ")


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def template(helm: str, *values: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *values)


def render(helm: str, *values: str, chart: Path = CHART) -> list[Manifest]:
    result = template(helm, *values, chart=chart)
    assert result.returncode == 0, f"helm template {' '.join(values)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def refused(helm: str, *values: str) -> str:
    """helm template's error for values that must be refused."""
    result = template(helm, *values)
    assert result.returncode != 0, f"helm template accepted {values}"
    return result.stderr


@pytest.fixture(scope="session", params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def manifests(helm: str, value_set: str) -> list[Manifest]:
    return render(helm, *VALUE_SETS[value_set])


def values_of(value_set: str) -> dict[str, Any]:
    """The chart's values with the value set's file on top (enough for what the tests read)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in VALUE_SETS[value_set][1::2]:
        _merge(values, yaml.safe_load(Path(path).read_text()))
    return values


def _merge(base: dict[str, Any], top: dict[str, Any]) -> None:
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def by_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def of_component(docs: list[Manifest], component: str) -> list[Manifest]:
    return [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]


def one(docs: list[Manifest], kind: str, component: str) -> Manifest:
    found = by_kind(of_component(docs, component), kind)
    assert len(found) == 1, f"expected one {kind} of {component}, found {len(found)}"
    return found[0]


def enabled_components(docs: list[Manifest]) -> list[str]:
    return sorted(
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in by_kind(docs, "Deployment")
    )


# ---------------------------------------------------------------------------- helm lint


def test_helm_lint(helm: str, value_set: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *VALUE_SETS[value_set])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_default_values_enable_the_built_services(manifests: list[Manifest]) -> None:
    assert enabled_components(manifests) == [
        "intake",
        "knowledge",
        "notification",
        "routing",
        "sla",
    ]


# ---------------------------------------------------------------------------- Kubernetes schemas


def _schema_errors(docs: list[Manifest], version: str) -> list[str]:
    errors = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if doc["kind"] not in OPERATOR_KINDS:
                errors.append(f"{name}: no Kubernetes {version} schema for {doc['apiVersion']}")
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{name} (Kubernetes {version}): {path}: {error.message}")
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_kubernetes_schemas(manifests: list[Manifest], version: str) -> None:
    assert _schema_errors(manifests, version) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_component_enabled_matches_kubernetes_schemas(helm: str, version: str) -> None:
    docs = render(helm, *ALL_ENABLED, "--values", str(PRODUCTION))
    assert enabled_components(docs) == sorted(PORTS)
    assert _schema_errors(docs, version) == []


def test_schema_validation_can_fail(manifests: list[Manifest]) -> None:
    """A typo and a wrong type must be caught, or the schema checks above prove nothing."""
    deployment = copy.deepcopy(by_kind(manifests, "Deployment")[0])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = True
    deployment["spec"]["replicas"] = "three"
    errors = _schema_errors([deployment], KUBERNETES_VERSIONS[-1])
    assert len(errors) == 1, errors  # jsonschema reports the first error


# ---------------------------------------------------------------------------- kube-score


def _kube_score_args(kube_score: str) -> list[str]:
    config = yaml.safe_load(KUBE_SCORE_CONFIG.read_text())
    ignored = {entry["test"]: entry["why"] for entry in config["ignore"]}
    assert all(why.strip() for why in ignored.values()), "every exclusion needs its reason"
    checks = subprocess.run(
        [kube_score, "list"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    known = {line.split(",")[0]: line.split(",")[-1] for line in checks if line}
    assert set(ignored) <= set(known), f"unknown kube-score checks: {set(ignored) - set(known)}"
    args = ["score", "--output-format", "ci", "--exit-one-on-warning"]
    args += ["--kubernetes-version", config["kubernetesVersion"]]
    # every check, the optional ones too, except the reasoned exclusions
    for test, kind in sorted(known.items()):
        if test in ignored:
            args += ["--ignore-test", test]
        elif kind == "optional":
            args += ["--enable-optional-test", test]
    return [kube_score, *args]


def _kube_score_findings(kube_score: str, docs: list[Manifest], tmp_path: Path) -> list[str]:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [*_kube_score_args(kube_score), str(rendered)], capture_output=True, text=True
    )
    findings = [
        line
        for line in result.stdout.splitlines()
        if line.strip() and not line.startswith(("[OK]", "[SKIPPED]"))
    ]
    if result.returncode != 0 and not findings:
        findings = [f"kube-score exited {result.returncode}: {result.stderr.strip()}"]
    return findings


def test_kube_score_reports_nothing(
    kube_score: str, manifests: list[Manifest], tmp_path: Path
) -> None:
    assert _kube_score_findings(kube_score, manifests, tmp_path) == []


def test_kube_score_reports_nothing_with_every_component(
    helm: str, kube_score: str, tmp_path: Path
) -> None:
    docs = render(helm, *ALL_ENABLED, "--values", str(PRODUCTION))
    assert _kube_score_findings(kube_score, docs, tmp_path) == []


def test_kube_score_can_fail(kube_score: str, manifests: list[Manifest], tmp_path: Path) -> None:
    """A writable root file system and no NetworkPolicy must be reported."""
    docs = [copy.deepcopy(d) for d in manifests if d["kind"] != "NetworkPolicy"]
    deployment = by_kind(docs, "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    findings = "\n".join(_kube_score_findings(kube_score, docs, tmp_path))
    assert "writable root filesystem" in findings, findings
    assert "does not have a matching NetworkPolicy" in findings, findings


# ---------------------------------------------------------------------------- values schema


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "components.intake.grpcPort=notaport"], "/components/intake/grpcPort"),
        (["--set", "components.intake.grpcPort=70000"], "/components/intake/grpcPort"),
        (["--set", "components.intake.metricsPort=0"], "/components/intake/metricsPort"),
        (["--set", "components.intake.replicas=-1"], "/components/intake/replicas"),
        (["--set", "components.intake.replicas=two"], "/components/intake/replicas"),
        (["--set", "components.intake.colour=blue"], "additional properties 'colour'"),
        (["--set", "components.intake.image.repository=null"], "repository"),
        (["--set", "components.intake.image.repository="], "repository"),
        (["--set", "components.intake.enabled=yes"], "/components/intake/enabled"),
        (["--set", "components.routing.calls={Intake}"], "/components/routing/calls/0"),
        (["--set", "components.routing.calls={intake,intake}"], "/components/routing/calls"),
        (
            ["--set", "components.notification.egress[0].ports={0}"],
            "/components/notification/egress/0/ports/0",
        ),
        (
            ["--set", "components.notification.egress[0].port=25"],
            "additional properties 'port'",
        ),
        # helm names a wrong path for propertyNames errors, but the right key
        (["--set", "components.intake.settings.lower_case=1"], "'lower_case'"),
        (["--set", "components.Bad_Name.enabled=true"], "/components"),
        (["--set", "components.intake.autoscaling.targetCPUUtilizationPercentage=150"], "150"),
        (["--set", "colour=blue"], "additional properties 'colour'"),
        (["--set", "log.level=verbose"], "/log/level"),
        (["--set", "kafka.bootstrapServers=kafka"], "/kafka/bootstrapServers"),
        (["--set", "kafka.securityProtocol=SASL_SSL"], "/kafka/sasl/existingSecret"),
        (["--set", "kafka.tls.certKey=tls.crt"], "/kafka/tls/keyKey"),
        (["--set", "kafka.topics.replicationFactor=0"], "/kafka/topics/replicationFactor"),
        (["--set", "mongodb.existingSecret="], "/mongodb/existingSecret"),
        (["--set", "prometheus.operator.interval=often"], "/prometheus/operator/interval"),
        (["--set", "prometheus.alerts.consumerLag=-1"], "/prometheus/alerts/consumerLag"),
    ],
)
def test_values_schema_refuses_bad_values(helm: str, values: list[str], message: str) -> None:
    error = refused(helm, *values)
    assert "don't meet the specifications of the schema" in error, error
    assert message in error, error


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "components.intake.metricsPort=50051"], "must differ"),
        (["--set", "components.intake.podDisruptionBudget.minAvailable=2"], "no node could"),
        # knowledge, routing and sla without the intake they call
        (["--set", "components.intake.enabled=false"], "knowledge.calls: intake is not"),
        (
            [
                "--set=components.intake.enabled=false",
                "--set=components.knowledge.enabled=false",
                "--set=components.routing.enabled=false",
            ],
            "sla.calls: intake is not",
        ),
        (["--set", "components.routing.calls={billing}"], "routing.calls: billing is"),
        # intake suggests articles through knowledge
        (["--set", "components.knowledge.enabled=false"], "intake.calls: knowledge is not"),
        (["--set", "components.sla.calls={sla}"], "sla.calls: sla is not"),
        # a mail relay on a port the NetworkPolicy keeps closed
        (
            ["--set", "components.notification.settings.SMTP_PORT=587"],
            "notification.settings.SMTP_PORT (587) is in no rule",
        ),
        (
            [
                "--set",
                "components.intake.autoscaling.enabled=true",
                "--set",
                "components.intake.autoscaling.minReplicas=5",
                "--set",
                "components.intake.autoscaling.maxReplicas=3",
            ],
            "minReplicas (5) is above maxReplicas (3)",
        ),
    ],
)
def test_templates_refuse_inconsistent_values(helm: str, values: list[str], message: str) -> None:
    assert message in refused(helm, *values)


# ---------------------------------------------------------------------------- hardened pods


def _pod_specs(docs: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def test_every_pod_is_hardened(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set], *ALL_ENABLED)
    pods = list(_pod_specs(docs))
    assert len(pods) == len(PORTS) + 1  # the services and the topics Job
    for name, pod in pods:
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["runAsNonRoot"] is True, name
            assert context["runAsUser"] == 10001, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name


def test_every_component_has_probes_spread_and_accounts(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set], *ALL_ENABLED)
    values = values_of(value_set)["components"]
    for component, (grpc_port, metrics_port) in PORTS.items():
        deployment = one(docs, "Deployment", component)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"].endswith(f"/helpdesk-{component}:0.1.0"), container["image"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert (ports["grpc"], ports["metrics"]) == (grpc_port, metrics_port), ports
        # readiness is the service's own grpc.health.v1 (follows MongoDB and Kafka) ...
        assert container["readinessProbe"]["grpc"] == {"port": grpc_port}, component
        # ... liveness is not: a dependency outage must not restart the pods
        liveness = container["livenessProbe"]
        assert "tcpSocket" in liveness or liveness.get("grpc", {}).get("service"), liveness
        assert "startupProbe" in container, component
        spread = pod["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
        }
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert all(c["labelSelector"]["matchLabels"] == selector for c in spread)

        account = one(docs, "ServiceAccount", component)
        assert account["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == account["metadata"]["name"]

        service = one(docs, "Service", component)
        assert service["spec"]["selector"] == selector
        service_ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        assert (service_ports["grpc"], service_ports["metrics"]) == (grpc_port, metrics_port)

        if values[component]["podDisruptionBudget"]["enabled"]:
            pdb = one(docs, "PodDisruptionBudget", component)
            assert pdb["spec"]["selector"]["matchLabels"] == selector
        else:
            assert by_kind(of_component(docs, component), "PodDisruptionBudget") == []


def test_network_policy_of_every_component(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set], *ALL_ENABLED)
    values = values_of(value_set)
    all_grpc = {grpc for grpc, _ in PORTS.values()}
    for component, (grpc_port, metrics_port) in PORTS.items():
        policy = one(docs, "NetworkPolicy", component)["spec"]
        selector = one(docs, "Deployment", component)["spec"]["selector"]["matchLabels"]
        assert policy["podSelector"]["matchLabels"] == selector
        assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
        ingress = {p["port"]: rule["from"] for rule in policy["ingress"] for p in rule["ports"]}
        assert {grpc_port, metrics_port} <= set(ingress), ingress
        # metrics: only from the monitoring namespace (and its Prometheus pods, when named)
        metrics = values["networkPolicy"]["metrics"]
        scraper: Manifest = {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": metrics["namespace"]}
            }
        }
        if metrics["podSelector"]:
            scraper["podSelector"] = {"matchLabels": metrics["podSelector"]}
        assert ingress[metrics_port] == [scraper]
        egress_ports = {(p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"]}
        assert ("UDP", 53) in egress_ports
        for port in [*values["kafka"]["ports"], *values["mongodb"]["ports"], *all_grpc]:
            assert ("TCP", port) in egress_ports, (component, port)
        if values["otel"]["exporterEndpoint"]:
            assert all(("TCP", p) in egress_ports for p in values["otel"]["ports"])


def test_production_network_policy_narrows_callers(helm: str) -> None:
    docs = render(helm, *VALUE_SETS["production"])
    policy = one(docs, "NetworkPolicy", "intake")["spec"]
    callers = policy["ingress"][0]["from"]
    assert {"podSelector": {}} not in callers  # not the whole namespace
    assert any("namespaceSelector" in peer for peer in callers)  # the ingress controller
    kafka = {"protocol": "TCP", "port": 9093}
    kafka_rule = next(r for r in policy["egress"] if kafka in r["ports"])
    assert kafka_rule["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "data"
    }


# ---------------------------------------------------------------------------- disabling


def _names(docs: list[Manifest]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def test_disabling_a_component_removes_its_objects(helm: str) -> None:
    everything = render(helm, *ALL_ENABLED)
    without_sla = render(helm, *ALL_ENABLED, "--set=components.sla.enabled=false")
    sla_objects = _names(of_component(everything, "sla"))
    assert {kind for kind, _ in sla_objects} >= {
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    assert of_component(without_sla, "sla") == []
    assert _names(without_sla) == _names(everything) - sla_objects
    # and nobody may reach for it any more
    for policy in by_kind(without_sla, "NetworkPolicy"):
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert PORTS["sla"][0] not in ports, policy["metadata"]["name"]


def test_disabling_the_built_services_leaves_no_service(helm: str) -> None:
    docs = render(
        helm,
        "--set=components.intake.enabled=false",
        "--set=components.routing.enabled=false",
        "--set=components.sla.enabled=false",
        "--set=components.notification.enabled=false",
        "--set=components.knowledge.enabled=false",
    )
    assert of_component(docs, "intake") == []
    assert by_kind(docs, "Deployment") == []


def test_autoscaling_replaces_the_replica_count(helm: str) -> None:
    docs = render(helm, *VALUE_SETS["production"])
    deployment = one(docs, "Deployment", "intake")
    hpa = one(docs, "HorizontalPodAutoscaler", "intake")
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert one(docs, "PodDisruptionBudget", "intake")["spec"]["minAvailable"] == 2
    default = render(helm)
    assert by_kind(default, "HorizontalPodAutoscaler") == []
    assert one(default, "Deployment", "intake")["spec"]["replicas"] == 2


# ---------------------------------------------------------------------------- settings


def _env(deployment: Manifest) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env: {names}"
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_settings_reach_the_environment(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set])
    values = values_of(value_set)
    env = _env(one(docs, "Deployment", "intake"))
    assert env["HELPDESK_GRPC_PORT"] == "50051"
    assert env["HELPDESK_METRICS_PORT"] == "9101"
    assert env["HELPDESK_HTTP_PORT"] == "8080"
    assert env["HELPDESK_KAFKA_BOOTSTRAP_SERVERS"] == values["kafka"]["bootstrapServers"]
    assert env["HELPDESK_MONGODB_DATABASE"] == "helpdesk_intake"
    assert env["HELPDESK_LOG_LEVEL"] == values["log"]["level"]
    assert env["HELPDESK_INTAKE_CONSUMER_GROUP"] == "helpdesk-intake"
    # the MongoDB URI never appears in the manifests: a reference to the Secret
    assert env["HELPDESK_MONGODB_URI"] == {
        "secretKeyRef": {
            "name": values["mongodb"]["existingSecret"],
            "key": values["mongodb"]["uriKey"],
        }
    }
    assert env["OTEL_SERVICE_NAME"] == "intake"
    assert "k8s.pod.name=$(POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]
    endpoint = values["otel"]["exporterEndpoint"]
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == (endpoint or None)


def _admits(peer: Manifest, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicyPeer without a namespaceSelector admits pods with these labels."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    wanted = peer["podSelector"].get("matchLabels", {})
    return wanted.items() <= labels.items()


@pytest.mark.parametrize("caller", ["routing", "sla"])
@pytest.mark.parametrize(
    ("release", "intake_service"),
    [(RELEASE, "helpdesk-intake"), ("support", "support-helpdesk-intake")],
)
def test_callers_reach_intake(
    helm: str, value_set: str, release: str, intake_service: str, caller: str
) -> None:
    result = run_helm(
        helm, "template", release, str(CHART), "--namespace", NAMESPACE, *VALUE_SETS[value_set]
    )
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    intake_grpc, caller_grpc = PORTS["intake"][0], PORTS[caller][0]
    deployment = one(docs, "Deployment", caller)
    env = _env(deployment)
    assert env["HELPDESK_GRPC_PORT"] == str(caller_grpc)
    assert env["HELPDESK_MONGODB_DATABASE"] == f"helpdesk_{caller}"
    # its dead letters go to a topic the Job creates
    group = env[f"HELPDESK_{caller.upper()}_CONSUMER_GROUP"]
    assert group == f"helpdesk-{caller}"
    assert f"helpdesk.dlq.{group}.v1" in TOPICS
    # intake's Service by the release's own name, on its gRPC port
    service = one(docs, "Service", "intake")
    assert service["metadata"]["name"] == intake_service
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["port"] == intake_grpc
    assert env["HELPDESK_INTAKE_TARGET"] == f"{intake_service}:{intake_grpc}"
    # intake admits the caller's pods on gRPC, and the caller may leave for intake's pods on it
    caller_pod = deployment["spec"]["template"]["metadata"]["labels"]
    intake_policy = one(docs, "NetworkPolicy", "intake")["spec"]
    assert any(
        any(p["port"] == intake_grpc for p in rule["ports"])
        and any(_admits(peer, caller_pod) for peer in rule["from"])
        for rule in intake_policy["ingress"]
    ), intake_policy["ingress"]
    intake_pod = one(docs, "Deployment", "intake")["spec"]["template"]["metadata"]["labels"]
    caller_policy = one(docs, "NetworkPolicy", caller)["spec"]
    assert any(
        any(p["port"] == intake_grpc for p in rule["ports"])
        and any(_admits(peer, intake_pod) for peer in rule.get("to", []))
        for rule in caller_policy["egress"]
    ), caller_policy["egress"]


def _env_value(value: Any) -> str:
    """A setting as the chart renders it into the environment (toString)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _open_egress_ports(policy: Manifest) -> set[int]:
    """Ports an egress rule lets the pods reach at any address."""
    anywhere = [rule for rule in policy["spec"]["egress"] if "to" not in rule]
    return {p["port"] for rule in anywhere for p in rule["ports"]}


def test_notification_mails_and_posts(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set])
    values = values_of(value_set)["components"]["notification"]
    deployment = one(docs, "Deployment", "notification")
    env = _env(deployment)
    assert env["HELPDESK_GRPC_PORT"] == "50054"
    assert env["HELPDESK_METRICS_PORT"] == "9104"
    assert env["HELPDESK_MONGODB_DATABASE"] == "helpdesk_notification"
    # its dead letters go to a topic the Job creates
    group = env["HELPDESK_NOTIFICATION_CONSUMER_GROUP"]
    assert group == "helpdesk-notification"
    assert f"helpdesk.dlq.{group}.v1" in TOPICS
    # it calls no other service
    assert not [name for name in env if name.endswith("_TARGET")]
    settings = values["settings"]
    for key in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "MAIL_FROM"):
        assert env[f"HELPDESK_{key}"] == _env_value(settings[key]), key
    # secrets only as references to a Secret
    for name, value in env.items():
        if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")):
            assert set(value) == {"secretKeyRef"}, name
    if value_set == "production":
        assert env["HELPDESK_SMTP_STARTTLS"] == "true"
        for var, key in (
            ("SMTP_USERNAME", "smtp-username"),
            ("SMTP_PASSWORD", "smtp-password"),
            ("WEBHOOK_SECRET", "webhook-secret"),
        ):
            ref = env[f"HELPDESK_{var}"]["secretKeyRef"]
            assert ref == {"name": "helpdesk-notification", "key": key}, var
    else:
        assert "HELPDESK_SMTP_PASSWORD" not in env
    # one replica: a second delivery worker could send a message twice
    assert deployment["spec"]["replicas"] == 1
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert by_kind(of_component(docs, "notification"), kind) == [], kind
    # it may leave for the mail relay and for HTTPS; the other services may not
    smtp = int(settings["SMTP_PORT"])
    assert {smtp, 443} <= _open_egress_ports(one(docs, "NetworkPolicy", "notification"))
    for other in ("intake", "routing", "sla"):
        policy = one(docs, "NetworkPolicy", other)
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert not {smtp, 443} & ports, other


def test_notification_smtp_port_moves_with_its_egress(helm: str) -> None:
    docs = render(
        helm,
        "--set=components.notification.settings.SMTP_PORT=465",
        "--set=components.notification.egress[0].ports={465}",
    )
    assert _env(one(docs, "Deployment", "notification"))["HELPDESK_SMTP_PORT"] == "465"
    assert 465 in _open_egress_ports(one(docs, "NetworkPolicy", "notification"))
    # without NetworkPolicies nothing is blocked, so nothing is refused
    render(
        helm,
        "--set=components.notification.settings.SMTP_PORT=587",
        "--set=networkPolicy.enabled=false",
    )


def test_kafka_secrets_are_references(helm: str) -> None:
    default_env = _env(one(render(helm), "Deployment", "intake"))
    assert "HELPDESK_KAFKA_SASL_PASSWORD" not in default_env
    assert "HELPDESK_KAFKA_SSL_CAFILE" not in default_env

    docs = render(helm, *VALUE_SETS["production"])
    for deployment in (one(docs, "Deployment", "intake"), *by_kind(docs, "Job")):
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["HELPDESK_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        for var, key in (("USERNAME", "username"), ("PASSWORD", "password")):
            ref = env[f"HELPDESK_KAFKA_SASL_{var}"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "helpdesk-kafka-sasl", "key": key}
        assert env["HELPDESK_KAFKA_SSL_CAFILE"]["value"] == "/etc/helpdesk/kafka-tls/ca.crt"
        tls = next(v for v in spec["volumes"] if v["name"] == "kafka-tls")
        assert tls["secret"]["secretName"] == "helpdesk-kafka-tls"
        assert any(m["name"] == "kafka-tls" and m["readOnly"] for m in container["volumeMounts"])


# ---------------------------------------------------------------------------- topics Job


def test_topics_job_creates_every_topic_before_the_services(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set])
    values = values_of(value_set)
    (job,) = by_kind(docs, "Job")
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = container["args"][0]
    assert "--if-not-exists" in script
    assert container["image"] == "apache/kafka:{tag}".format(**values["kafka"]["topics"]["image"])
    topics = values["kafka"]["topics"]
    for topic in TOPICS:
        line = next(ln for ln in script.splitlines() if ln.strip().startswith(f'create "{topic}"'))
        partitions, replication = line.split()[2:4]
        assert (int(partitions), int(replication)) == (
            topics["partitions"],
            topics["replicationFactor"],
        ), line
    # its account and policy exist before it runs, and go with it
    for kind in ("ServiceAccount", "NetworkPolicy"):
        (hook,) = by_kind(of_component(docs, "kafka-topics"), kind)
        assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


FAKE_KAFKA_TOPICS = """#!/bin/sh
# stands in for Kafka's kafka-topics.sh: records its arguments and the client config it got
echo "$*" >> "$TMPDIR/calls"
while [ $# -gt 0 ]; do
  [ "$1" = --command-config ] && cp "$2" "$TMPDIR/config.seen"
  shift
done
exit "${FAKE_EXIT:-0}"
"""


def _run_topics_script(
    helm: str, tmp_path: Path, *values: str, fail: bool = False
) -> subprocess.CompletedProcess[str]:
    """Runs the Job's script with its rendered environment and a fake kafka-topics.sh."""
    (tmp_path / "kafka-topics.sh").write_text(FAKE_KAFKA_TOPICS)
    (tmp_path / "kafka-topics.sh").chmod(0o755)
    docs = render(helm, *values, f"--set=kafka.topics.binDir={tmp_path}")
    (job,) = by_kind(docs, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "FAKE_EXIT": "1" if fail else "0"}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:  # a Secret's key, as the kubelet would fill it in
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"{ref['name']}.{ref['key']}"
    return subprocess.run(
        [*container["command"], container["args"][0]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_topics_job_script_with_sasl_and_tls(helm: str, tmp_path: Path) -> None:
    result = _run_topics_script(helm, tmp_path, *VALUE_SETS["production"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("topics ready")
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == len(TOPICS)
    for topic, call in zip(TOPICS, calls, strict=True):
        assert f"--topic {topic} --partitions 12 --replication-factor 3" in call
        assert "--create --if-not-exists" in call
    assert "--config retention.ms=2592000000" in calls[-1]
    config = (tmp_path / "config.seen").read_text().splitlines()
    assert config == [
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required"
        ' username="helpdesk-kafka-sasl.username" password="helpdesk-kafka-sasl.password";',
        "ssl.truststore.type=PEM",
        "ssl.truststore.location=/etc/helpdesk/kafka-tls/ca.crt",
    ]


def test_topics_job_script_plaintext_and_failure(helm: str, tmp_path: Path) -> None:
    result = _run_topics_script(helm, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "config.seen").read_text() == "security.protocol=PLAINTEXT\n"
    # a refused creation fails the Job (and so the install), it is not skipped
    (tmp_path / "calls").unlink()
    failed = _run_topics_script(helm, tmp_path, fail=True)
    assert failed.returncode != 0
    assert "topics ready" not in failed.stdout
    assert len((tmp_path / "calls").read_text().splitlines()) == 1


def test_topics_job_can_be_switched_off(helm: str) -> None:
    docs = render(helm, "--set=kafka.topics.create=false")
    assert of_component(docs, "kafka-topics") == []
    assert "HELPDESK_KAFKA_CREATE_TOPICS" not in _env(one(docs, "Deployment", "intake"))


# ---------------------------------------------------------------------------- dashboards, alerts


def _series(kind: str, name: str) -> set[str]:
    """The series names a prometheus_client metric of this kind and name exposes."""
    if kind == "counter":
        return {name if name.endswith("_total") else f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return {name}


def _library_metrics() -> set[str]:
    """What FastStream's KafkaPrometheusMiddleware (create_broker adds it) registers: asked
    of the installed library on a registry of its own, not copied here."""
    registry = CollectorRegistry()
    KafkaPrometheusMiddleware(registry=registry, app_name="helpdesk-chart-test")
    return {name for family in registry.collect() for name in _series(family.type, family.name)}


def _exported_metrics() -> set[str]:
    """Names the services export: prometheus_client declarations in their source, and the
    consumer and publisher metrics of FastStream's middleware where a service adds it."""
    names = {"up"}  # Prometheus's own, per target
    declaration = re.compile(r"\b(Counter|Histogram|Gauge)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    middleware = False
    for source in (ROOT / "services").glob("*/src/**/*.py"):
        text = source.read_text()
        middleware |= "KafkaPrometheusMiddleware(" in text
        for kind, name in declaration.findall(text):
            names |= _series(kind.lower(), name)
    if middleware:
        names |= _library_metrics()
    return names


def test_metric_name_check_can_fail() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql.metric_names("sum(rate(grpc_server_handled_total[5m])")
    exported = _exported_metrics()
    assert "helpdesk_no_such_metric_total" not in exported
    # declared in our source, and FastStream's, with the suffixes they are scraped under
    assert {"helpdesk_sla_met_total", "helpdesk_routing_queue_depth"} <= exported
    assert "helpdesk_sla_timer_lag_seconds_bucket" in exported
    assert "faststream_received_processed_messages_total" in exported
    assert "faststream_received_processed_messages" not in exported


ALERTS = {
    "HelpdeskServiceDown",
    "HelpdeskDependencyDown",
    "HelpdeskGrpcErrorRatioHigh",
    "HelpdeskHttpErrorRatioHigh",
    "HelpdeskOutboxPublishFailing",
    "HelpdeskDeadLetters",
    "HelpdeskKafkaConsumerLagHigh",
    "HelpdeskKafkaConsumerRetrying",
    "HelpdeskSlaBreachRatioHigh",
    "HelpdeskSlaTimerLagHigh",
}
ALERT_BREACH = "HelpdeskSlaBreachRatioHigh"


def test_prometheus_operator_objects(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set], *ALL_ENABLED)
    values = values_of(value_set)
    if not values["prometheus"]["operator"]["enabled"]:
        assert by_kind(docs, "ServiceMonitor") == []
        assert by_kind(docs, "PrometheusRule") == []
        return
    exported = _exported_metrics()
    labels = values["prometheus"]["operator"]["labels"]
    for component in PORTS:
        monitor = one(docs, "ServiceMonitor", component)
        service = one(docs, "Service", component)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert labels.items() <= monitor["metadata"]["labels"].items()
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"
        relabel = {"action": "replace", "targetLabel": "helpdesk_component"}
        assert {**relabel, "replacement": component} in endpoint["relabelings"]
    (rule,) = by_kind(docs, "PrometheusRule")
    assert labels.items() <= rule["metadata"]["labels"].items()
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == ALERTS
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name
        metrics = promql.metric_names(alert["expr"])
        assert metrics, name
        assert metrics <= exported, (name, metrics - exported)
        # every enabled component is watched, in the release's namespace only
        assert f'namespace="{NAMESPACE}"' in alert["expr"], name
        assert "|".join(sorted(PORTS)) in alert["expr"], name


def _rules(helm: str) -> dict[str, Any]:
    """The PrometheusRule's groups, every service enabled, as a Prometheus rules file."""
    docs = render(helm, *ALL_ENABLED, "--set=prometheus.operator.enabled=true")
    (rule,) = by_kind(docs, "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def test_alert_rules_have_firing_and_silent_cases(helm: str) -> None:
    """Each alert has a test where it fires and one where it stays silent."""
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == ["rules.yaml"]
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    alerts = {rule["alert"] for group in _rules(helm)["groups"] for rule in group["rules"]}
    assert alerts == ALERTS
    assert firing == ALERTS, ALERTS ^ firing
    assert silent == ALERTS, ALERTS ^ silent


def test_alert_rules_pass_promtool(helm: str, promtool: str, tmp_path: Path) -> None:
    """`promtool check rules` and `promtool test rules` on the rules as the chart renders them."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rules(helm), sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    for command in (["check", "rules", "rules.yaml"], ["test", "rules", ALERT_TESTS.name]):
        result = subprocess.run(
            [promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_tests_can_fail(helm: str, promtool: str, tmp_path: Path) -> None:
    """With the SLA breach threshold raised, its firing case must fail, or the tests prove
    nothing."""
    rules = _rules(helm)
    (breach,) = (r for g in rules["groups"] for r in g["rules"] if r["alert"] == ALERT_BREACH)
    raised = breach["expr"].replace("> 0.1\n", "> 0.5\n")
    assert raised != breach["expr"], breach["expr"]
    breach["expr"] = raised
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"alertname: {ALERT_BREACH}" in result.stdout + result.stderr


def test_dashboards_config_maps(helm: str, value_set: str) -> None:
    docs = render(helm, *VALUE_SETS[value_set])
    values = values_of(value_set)["grafana"]["dashboards"]
    maps = [d for d in by_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]
    files = sorted(p.name for p in (CHART / "files" / "dashboards").glob("*.json"))
    assert files, "no dashboards in files/dashboards"
    assert set(DASHBOARDS) <= set(files)
    assert sorted(name for m in maps for name in m["data"]) == files
    exported = _exported_metrics()
    uids = []
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == (values["namespace"] or NAMESPACE)
        for name, text in config_map["data"].items():
            dashboard = json.loads(text)
            assert dashboard["uid"], name
            assert dashboard["title"], name
            uids.append(dashboard["uid"])
            panels = list(promql.panels(dashboard))
            assert len({p["id"] for p in panels}) == len(panels), (name, "panel ids repeat")
            for panel in panels:
                position = panel["gridPos"]
                assert position["x"] + position["w"] <= 24, (name, panel["title"])
            targets = [t for p in panels for t in p.get("targets", [])]
            assert targets, name
            for expression in promql.expressions(dashboard):
                metrics = promql.metric_names(expression)
                assert metrics, (name, expression)
                assert metrics <= exported, (name, expression, metrics - exported)
    assert len(set(uids)) == len(uids), uids


def test_intake_dashboard_shows_what_matters() -> None:
    dashboard = promql.dashboard("intake.json")
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "helpdesk_tickets_created_total",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "helpdesk_outbox_lag_seconds_bucket",
        "helpdesk_dead_letters_total",
    ):
        assert metric in expressions, metric
    assert "sum by (channel)" in expressions
    assert "histogram_quantile(0.99" in expressions


# What each dashboard must show: the metrics, and the groupings that make it readable.
DASHBOARDS = {
    "red.json": (
        {
            "grpc_server_handled_total",
            "grpc_server_handling_seconds_bucket",
            "http_server_requests_total",
            "http_server_request_duration_seconds_bucket",
        },
        [
            "grpc_method",
            "route",
            'grpc_code!="OK"',
            'code=~"5.."',
            "histogram_quantile(0.5,",
            "histogram_quantile(0.99,",
            'helpdesk_component=~"$service"',
        ],
    ),
    "kafka.json": (
        {
            "faststream_received_messages_total",
            "faststream_received_processed_messages_total",
            "faststream_received_processed_messages_exceptions_total",
            "helpdesk_dead_letters_total",
            "helpdesk_outbox_published_total",
            "helpdesk_outbox_publish_failures_total",
            "helpdesk_outbox_lag_seconds_bucket",
            "helpdesk_kafka_consumer_lag",
        },
        [
            "sum by (app_name, handler)",
            "sum by (helpdesk_component, topic, reason)",
            # every replica reports the whole group: each partition counted once
            "sum by (namespace, group, topic) (max by (namespace, group, topic, partition)",
        ],
    ),
    "notification.json": (
        {
            "helpdesk_notifications_sent_total",
            "helpdesk_notifications_failed_total",
            "helpdesk_notifications_retried_total",
            "helpdesk_notifications_dead_total",
            "helpdesk_notification_delivery_seconds_bucket",
        },
        [
            "sum by (channel)",
            "sum by (channel, kind)",
            "histogram_quantile(0.5, sum by (channel, le)",
            "histogram_quantile(0.99, sum by (channel, le)",
        ],
    ),
    "routing.json": (
        {
            "helpdesk_routing_decisions_total",
            "helpdesk_routing_time_to_assignment_seconds_bucket",
            "helpdesk_routing_queue_depth",
            "helpdesk_routing_agent_open_tickets",
            "helpdesk_routing_agent_capacity",
        },
        [
            "sum by (rule, outcome)",
            "max by (team)",
            "histogram_quantile(0.5,",
            "histogram_quantile(0.99,",
        ],
    ),
    "sla.json": (
        {
            "helpdesk_sla_open_timers",
            "helpdesk_sla_timer_lag_seconds_bucket",
            "helpdesk_sla_warnings_total",
            "helpdesk_sla_breaches_total",
            "helpdesk_sla_met_total",
            "helpdesk_sla_auto_closed_total",
        },
        [
            "sum by (metric, policy, team)",
            'breached="false"',
            "histogram_quantile(0.99,",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_shows_what_matters(name: str) -> None:
    dashboard = promql.dashboard(name)
    metrics, phrases = DASHBOARDS[name]
    expressions = promql.expressions(dashboard)
    shown = set().union(*(promql.metric_names(e) for e in expressions))
    assert metrics <= shown, metrics - shown
    for phrase in phrases:
        assert any(phrase in e for e in expressions), phrase


def test_consumer_lag_is_exported_for_the_kafka_board() -> None:
    """The lag the Kafka board and the lag alert read is declared in the services' code."""
    assert "helpdesk_kafka_consumer_lag" in _exported_metrics()


# ---------------------------------------------------------------------------- NOTES.txt


def test_notes_render(helm: str, value_set: str, tmp_path: Path) -> None:
    """helm prints NOTES.txt only on a real install; render it through a ConfigMap instead."""
    chart = tmp_path / "helpdesk"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n'
    )
    docs = render(helm, *VALUE_SETS[value_set], chart=chart)
    notes = next(d for d in docs if d["metadata"]["name"] == "notes")["data"]["notes"]
    assert f"port-forward svc/{RELEASE}-intake 50051" in notes, notes
    assert f"port-forward svc/{RELEASE}-sla 50053" in notes, notes
    assert "sla_admin.py --sla 127.0.0.1:50053 put-policy" in notes, notes
    assert f"port-forward svc/{RELEASE}-notification 50054" in notes, notes
    assert "notification_admin.py --notification 127.0.0.1:50054 deliveries" in notes, notes
    assert "create secret generic" in notes, notes
