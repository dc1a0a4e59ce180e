"""docker-compose.yml against the Compose specification, and what it wires together: the
gateway's settings and secret, Prometheus, Grafana, the ``scale`` profile behind Nginx
(issue 13, item 4)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.dockerfile import parse
from deploy.settings_env import settings_from
from deploy.validators import check_compose, check_prometheus_config
from support.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
GATEWAYS = ("gateway", "gateway-replica")
OPERATIONS_DOC = ROOT / "docs" / "operations.md"


def load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, anchors and merge keys resolved."""
    return load(COMPOSE)


def seconds(duration: str) -> float:
    """A Compose duration such as ``30s`` or ``1m30s`` in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert duration
    assert parts is not None, duration
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_compose_file_with_a_misspelt_key_fails_the_validation(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periode:"))
    assert check_compose(broken).returncode != 0


@pytest.mark.parametrize("service", GATEWAYS)
def test_the_gateways_settings_exist_and_validate(compose: dict[str, Any], service: str) -> None:
    gateway = compose["services"][service]
    settings = settings_from(gateway["environment"])
    secret = gateway["secrets"][0]
    assert settings.auth.private_key_file == Path("/run/secrets") / secret
    assert settings.auth.issuer
    assert settings.auth.audience
    # Docker waits this long after SIGTERM before SIGKILL: the grace period must fit in it.
    assert seconds(gateway["stop_grace_period"]) > settings.shutdown_grace_s
    assert gateway["image"] == "tensorgate:0.1.0"
    assert gateway["build"]["dockerfile"] == "Dockerfile"
    assert "./models:/models:ro" in gateway["volumes"]


def test_the_gateway_publishes_the_ports_its_image_exposes(compose: dict[str, Any]) -> None:
    exposed = parse((ROOT / "Dockerfile").read_text()).image.last("EXPOSE").arguments.split()
    assert compose["services"]["gateway"]["ports"] == [f"{port}:{port}" for port in exposed]


def test_the_jwt_key_is_a_secret_file_that_git_ignores(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        path = secret["file"].removeprefix("./")
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"secret {name}: {path} is not in .gitignore"
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, check=False
        )
        assert tracked.returncode != 0, f"secret {name}: {path} is committed"
        # docs/operations.md shows how to create it.
        assert path in OPERATIONS_DOC.read_text()


def test_every_bind_mount_exists_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_the_scale_profile_puts_three_replicas_behind_nginx(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replica, nginx = services["gateway-replica"], services["nginx"]
    assert replica["profiles"] == ["scale"] == nginx["profiles"]
    assert replica["deploy"]["replicas"] == 3
    assert "ports" not in replica  # reached through Nginx only
    assert nginx["depends_on"]["gateway-replica"]["condition"] == "service_healthy"
    config = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)\b", config, re.MULTILINE)
    assert servers == [("gateway-replica", "8000")]
    listen = re.findall(r"^\s*listen\s+(\d+);", config, re.MULTILINE)
    assert [port.split(":")[1] for port in nginx["ports"]] == listen
    # Nginx must not refuse what the gateway would answer itself (413 with its JSON error).
    limit = re.search(r"client_max_body_size\s+(\d+)m;", config)
    assert limit is not None
    gateway_cap = settings_from(replica["environment"]).max_request_body_bytes
    assert int(limit.group(1)) * 1024 * 1024 >= gateway_cap


def test_the_prometheus_config_passes_promtool() -> None:
    result = check_prometheus_config(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_prometheus_config_fails_promtool(tmp_path: Path) -> None:
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    broken = tmp_path / "prometheus.yml"
    broken.write_text(config.replace("scrape_interval: 15s", "scrape_interval: fifteen"))
    assert check_prometheus_config(broken).returncode != 0


def test_prometheus_scrapes_every_gateway_service(compose: dict[str, Any]) -> None:
    config = load(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "tensorgate"]
    (discovery,) = job["dns_sd_configs"]
    assert tuple(discovery["names"]) == GATEWAYS
    assert discovery["port"] == 8000
    assert job["metrics_path"] == "/metrics"
    assert set(GATEWAYS) <= set(compose["services"])
    mount = "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in compose["services"]["prometheus"]["volumes"]


def test_grafana_provisions_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = ROOT / "deploy" / "grafana"
    (datasource,) = load(grafana / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    (provider,) = load(grafana / "provisioning" / "dashboards" / "tensorgate.yml")["providers"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard = json.loads((grafana / "dashboards" / "tensorgate.json").read_text())
    uids = {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    }
    assert uids == {datasource["uid"]}
