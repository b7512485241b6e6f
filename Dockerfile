# The Autograd Service as a container image:
#
#   docker build -t autograd-service .
#   docker run --rm -p 8000:8000 autograd-service     # Swagger UI: http://localhost:8000/docs
#
# Settings are AUTOGRAD_* environment variables (README, "Deploy"). One uvicorn worker per
# container: scale with replicas (docker-compose.yml), or set AUTOGRAD_WORKERS.
# tests/deploy/ lints this file and runs what it runs (the wheel, CMD and HEALTHCHECK).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: the wheel alone; the build tools stay in this stage ---------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- runtime: the package and its dependencies, Graphviz, a non-root user ------------------
FROM ${PYTHON_IMAGE}

# Graphviz's `dot` draws the DAG pictures (POST /v1/evaluate with Accept: image/svg+xml).
# Debian's security updates move its version; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends graphviz \
    && rm -rf /var/lib/apt/lists/*

# The package and its runtime dependencies only (no test extra, no compiler).
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/autograd-service \
    && chown app:app /var/lib/autograd-service

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTOGRAD_HOST=0.0.0.0 \
    AUTOGRAD_PORT=8000 \
    AUTOGRAD_WORKERS=1 \
    AUTOGRAD_DATA_DIR=/var/lib/autograd-service

USER 10001:10001
WORKDIR /var/lib/autograd-service
EXPOSE 8000

# GET /readyz on the container's own port with Python's urllib (slim images have no curl):
# 503 while the session store (Redis) does not answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["autograd-service", "healthcheck"]

CMD ["autograd-service", "serve"]
