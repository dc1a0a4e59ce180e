"""The Dockerfiles: non-root, a health check on the live route, 0.0.0.0:8000 (and gRPC's
8001 exposed), ``tensorgate serve`` with flags it has, TENSORGATE_* settings that exist, a
build context that holds what they copy (issue 13, item 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.dockerfile import Dockerfile, ignore_patterns, ignored, parse
from deploy.settings_env import settings_from, unknown_names
from support.paths import ROOT

DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]
PORT = "8000"
GRPC_PORT = "8001"  # grpc.port's default: the command leaves it to the setting
UID = "10001"  # deploy/kubernetes/deployment.yaml runs as the same user


def read(name: str) -> Dockerfile:
    return parse((ROOT / name).read_text())


@pytest.fixture(params=DOCKERFILES)
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    """Each Dockerfile, parsed."""
    name: str = request.param
    return read(name)


def test_the_image_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.image.last("USER").arguments.split(":")[0]
    assert user not in ("root", "0")
    assert user == UID
    # USER comes before the command it should apply to.
    keywords = [i.keyword for i in dockerfile.image.instructions]
    assert keywords.index("USER") < keywords.index("CMD")


def test_the_command_serves_on_all_interfaces_with_flags_serve_has(dockerfile: Dockerfile) -> None:
    command = dockerfile.image.last("CMD").exec_form()
    assert command[:2] == ["tensorgate", "serve"]
    flags = dict(zip(command[2::2], command[3::2], strict=True))
    assert flags == {"--host": "0.0.0.0", "--port": PORT}
    assert dockerfile.image.last("EXPOSE").arguments.split() == [PORT, GRPC_PORT]
    assert not dockerfile.image.all("ENTRYPOINT")
    usage = subprocess.run(
        [Path(sys.executable).with_name("tensorgate"), "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for flag in flags:
        assert flag in usage


def test_the_health_check_asks_the_live_route_with_python(dockerfile: Dockerfile) -> None:
    healthcheck = dockerfile.image.last("HEALTHCHECK")
    command = healthcheck.exec_form()
    assert command[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{PORT}/v2/health/live" in command[2]
    assert "curl" not in healthcheck.arguments
    compile(command[2], "HEALTHCHECK", "exec")  # valid Python, run for real in the e2e test
    assert "--timeout=" in healthcheck.arguments


def test_every_tensorgate_variable_is_a_valid_setting(dockerfile: Dockerfile) -> None:
    env = dockerfile.image.env()
    assert env["TENSORGATE_MODEL_REPOSITORY"] == "/models"
    assert not unknown_names(env)
    settings = settings_from({k: v for k, v in env.items() if k.startswith("TENSORGATE_")})
    assert str(settings.model_repository) == "/models"


def test_the_build_context_holds_what_the_images_copy(dockerfile: Dockerfile) -> None:
    patterns = ignore_patterns((ROOT / ".dockerignore").read_text())
    sources = []
    for copy in dockerfile.image.all("COPY") + dockerfile.stages[0].all("COPY"):
        if copy.arguments.startswith("--from="):
            continue
        stage = dockerfile.image if copy in dockerfile.image.instructions else dockerfile.stages[0]
        *paths, _destination = dockerfile.expand(copy.arguments, stage).split()
        sources.extend(paths)
    assert {"pyproject.toml", "README.md", "src", "models"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f"{source} is left out by .dockerignore"


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    patterns = ignore_patterns((ROOT / ".dockerignore").read_text())
    for path in [
        ".git/config",
        ".venv/bin/python",
        ".tensorgate/dev-secret",
        "deploy/secrets/jwt-private-key.pem",
        "src/gateway/__pycache__/cli.cpython-311.pyc",
    ]:
        assert ignored(path, patterns), path
    assert not ignored("src/gateway/cli.py", patterns)


def test_the_gpu_image_swaps_in_onnxruntime_gpu_on_a_cuda_runtime_with_cudnn() -> None:
    gpu = read("Dockerfile.gpu")
    base = gpu.expand(gpu.image.base)
    assert base.startswith("nvidia/cuda:")
    assert "cudnn" in base
    assert "-runtime-" in base
    build = gpu.expand(" ".join(i.arguments for i in gpu.stages[0].all("RUN")), gpu.stages[0])
    assert "pip uninstall --yes onnxruntime " in build
    assert 'pip install "onnxruntime-gpu' in build


def test_the_cpu_image_is_python_3_11_slim() -> None:
    cpu = read("Dockerfile")
    assert all(cpu.expand(stage.base).startswith("python:3.11-slim") for stage in cpu.stages)


def test_a_dockerfile_without_user_or_healthcheck_fails_the_checks() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bare = parse("\n".join(line for line in text.splitlines() if not line.startswith("USER")))
    with pytest.raises(AssertionError, match="no USER"):
        bare.image.last("USER")
    shell = parse(text.replace('CMD ["tensorgate"', "CMD tensorgate").replace('", "', " "))
    with pytest.raises(ValueError, match="shell form"):
        shell.image.last("CMD").exec_form()
