# tensorgate on the CPU: ONNX Runtime's CPU build on python:3.11-slim, run as a non-root user.
#
#   docker build -t tensorgate:0.1.0 .
#   docker run --rm -p 8000:8000 -p 8001:8001 -v "$PWD/models:/models:ro" \
#       -e TENSORGATE_AUTH__SECRET="$(openssl rand -base64 48)" tensorgate:0.1.0
#
# Settings come from TENSORGATE_* variables (docs/configuration.md); the model repository is
# /models: the directory named by the MODELS build argument is baked in there, and a volume
# mounted on /models replaces it. docs/operations.md has the rest.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the package and its dependencies (all wheels) into a virtual environment that
# the runtime stage copies whole, at the same path, without pip's caches or the sources.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tensorgate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/tensorgate/bin/pip install . \
    && /opt/tensorgate/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
# A directory of the build context holding <name>/<version>/model.onnx (the demo models by
# default); an empty directory gives an image that only serves a mounted repository.
ARG MODELS=models
RUN groupadd --system --gid 10001 tensorgate \
    && useradd --system --uid 10001 --gid tensorgate --home-dir /home/tensorgate \
       --create-home --shell /usr/sbin/nologin tensorgate
COPY --from=build /opt/tensorgate /opt/tensorgate
COPY ${MODELS} /models
# Port and bind address are fixed by the command below (the container's port is 8000; map it
# with -p); everything else is a TENSORGATE_* variable the operator may override.
ENV PATH=/opt/tensorgate/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TENSORGATE_MODEL_REPOSITORY=/models \
    TENSORGATE_SHUTDOWN_GRACE_S=20
WORKDIR /home/tensorgate
USER 10001:10001
# 8000: HTTP; 8001: gRPC (grpc.port's default, on the same host; TENSORGATE_GRPC__PORT=0 turns it off).
EXPOSE 8000 8001
# Python is in the image already, so the health check needs no curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/live', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["tensorgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
