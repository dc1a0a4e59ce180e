"""The Kubernetes base rendered by kustomize and validated against the Kubernetes schemas,
and what its parts must agree on: probes, grace period, selectors, ports, the Secret, the
settings; plus the examples (issue 13, item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.dockerfile import parse
from deploy.settings_env import settings_from
from deploy.validators import check_kubernetes, documents, render_kustomization
from support.paths import ROOT

BASE = ROOT / "deploy" / "kubernetes"
EXAMPLES = BASE / "examples"
LABELS = {"app.kubernetes.io/name": "tensorgate", "app.kubernetes.io/component": "gateway"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kubectl kustomize deploy/kubernetes``, written to a file."""
    path = tmp_path_factory.mktemp("kustomize") / "rendered.yaml"
    path.write_text(render_kustomization(BASE))
    return path


@pytest.fixture(scope="module")
def manifests(rendered: Path) -> dict[str, dict[str, Any]]:
    """The rendered objects by kind (one of each)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in documents(rendered.read_text()):
        assert doc["kind"] not in by_kind, f"two {doc['kind']}s"
        by_kind[doc["kind"]] = doc
    return by_kind


def pod_spec(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = manifests["Deployment"]["spec"]["template"]["spec"]
    return spec


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (gateway,) = pod_spec(manifests)["containers"]
    assert isinstance(gateway, dict)
    return gateway


def test_the_rendered_base_validates_against_the_kubernetes_schemas(rendered: Path) -> None:
    result = check_kubernetes([rendered])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_manifest_with_an_unknown_field_fails_the_validation(
    rendered: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("readinessProbe:", "readynessProbe:"))
    assert check_kubernetes([broken]).returncode != 0


def test_the_base_has_every_part_and_no_secret(manifests: dict[str, dict[str, Any]]) -> None:
    assert set(manifests) == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    namespaced = [doc for kind, doc in manifests.items() if kind != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {"tensorgate"}


def test_the_probes_ask_the_health_routes(manifests: dict[str, dict[str, Any]]) -> None:
    gateway = container(manifests)
    ports = {port["name"]: port["containerPort"] for port in gateway["ports"]}
    probes = {
        name: gateway[name]["httpGet"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/v2/health/live"
    assert probes["startupProbe"]["path"] == "/v2/health/live"
    assert probes["readinessProbe"]["path"] == "/v2/health/ready"
    assert {probe["port"] for probe in probes.values()} == {"http"}
    expose = parse((ROOT / "Dockerfile").read_text()).image.last("EXPOSE").arguments.split()
    assert ports == {"http": int(expose[0]), "grpc": int(expose[1])}
    assert gateway["resources"]["requests"]["cpu"]
    assert gateway["resources"]["limits"]["memory"]


def test_settings_come_from_the_config_map_and_validate(
    manifests: dict[str, dict[str, Any]],
) -> None:
    gateway = container(manifests)
    config_map = manifests["ConfigMap"]
    (source,) = gateway["envFrom"]
    assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
    variables = {**config_map["data"], **{e["name"]: e["value"] for e in gateway["env"]}}
    settings = settings_from(variables)
    assert settings.shutdown_grace_s == 20  # explicit in the ConfigMap
    assert settings.auth.issuer
    assert settings.auth.audience
    # Service links would put TENSORGATE_PORT=tcp://... into the pod's environment.
    assert pod_spec(manifests)["enableServiceLinks"] is False


def test_the_pod_outlives_the_gateways_grace_period(manifests: dict[str, dict[str, Any]]) -> None:
    gateway = container(manifests)
    grace = settings_from(manifests["ConfigMap"]["data"]).shutdown_grace_s
    command = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    # Kubernetes counts the preStop hook inside terminationGracePeriodSeconds.
    budget = pod_spec(manifests)["terminationGracePeriodSeconds"]
    assert budget >= 30
    assert budget > int(command[1]) + grace


def test_the_jwt_key_is_mounted_from_a_secret_that_the_docs_create(
    manifests: dict[str, dict[str, Any]],
) -> None:
    spec = pod_spec(manifests)
    gateway = container(manifests)
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    (mount,) = [m for m in gateway["volumeMounts"] if m["name"] == volume["name"]]
    key_file = Path(
        settings_from({e["name"]: e["value"] for e in gateway["env"]}).auth.private_key_file or ""
    )
    assert key_file.parent == Path(mount["mountPath"])
    assert mount["readOnly"] is True
    secret = volume["secret"]["secretName"]
    command = f"kubectl -n tensorgate create secret generic {secret} --from-file={key_file.name}="
    assert command in (ROOT / "docs" / "operations.md").read_text()
    assert command in (BASE / "kustomization.yaml").read_text()


def test_the_pod_runs_as_the_images_user_without_privileges(
    manifests: dict[str, dict[str, Any]],
) -> None:
    context = pod_spec(manifests)["securityContext"]
    image_user = parse((ROOT / "Dockerfile").read_text()).image.last("USER").arguments
    assert f"{context['runAsUser']}:{context['runAsGroup']}" == image_user
    assert context["runAsNonRoot"] is True
    container_context = container(manifests)["securityContext"]
    assert container_context["allowPrivilegeEscalation"] is False
    assert container_context["readOnlyRootFilesystem"] is True


def test_service_budget_and_autoscaler_point_at_the_deployments_pods(
    manifests: dict[str, dict[str, Any]],
) -> None:
    deployment = manifests["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == LABELS
    assert LABELS.items() <= pod_labels.items()
    service = manifests["Service"]["spec"]
    assert service["selector"].items() <= pod_labels.items()
    assert [port["targetPort"] for port in service["ports"]] == ["http", "grpc"]
    container_ports = {
        port["name"]: port["containerPort"] for port in container(manifests)["ports"]
    }
    # Each Service port is the container's port of the same name, at the same number.
    assert {port["name"]: port["port"] for port in service["ports"]} == container_ports
    budget = manifests["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
    autoscaler = manifests["HorizontalPodAutoscaler"]["spec"]
    target = autoscaler["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert autoscaler["minReplicas"] >= 2  # with the budget, a drain never empties the Service
    (metric,) = autoscaler["metrics"]
    assert metric["resource"]["name"] == "cpu"


def example(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_queue_depth_autoscaler_validates_and_uses_the_adapters_metric(
    manifests: dict[str, dict[str, Any]],
) -> None:
    path = EXAMPLES / "horizontalpodautoscaler-queue-depth.yaml"
    result = check_kubernetes([path])
    assert result.returncode == 0, result.stdout + result.stderr
    autoscaler = example(path.name)
    assert (
        autoscaler["metadata"]["name"] == manifests["HorizontalPodAutoscaler"]["metadata"]["name"]
    )
    pods = [
        m["pods"]["metric"]["name"] for m in autoscaler["spec"]["metrics"] if m["type"] == "Pods"
    ]
    (rule,) = example("prometheus-adapter-values.yaml")["rules"]["custom"]
    assert pods == [rule["name"]["as"]]
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_the_service_monitor_selects_the_service_and_its_port(
    manifests: dict[str, dict[str, Any]],
) -> None:
    monitor = example("servicemonitor.yaml")
    service = manifests["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
