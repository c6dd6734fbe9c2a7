# dyntoolset's container image: `dyntoolset run` as a non-root user, with the
# detector plugins of plugins/ named in PLUGINS.
#
#   docker build -t REGISTRY/dyntoolset:0.1.0 .
#   docker build --build-arg PLUGINS="dyntoolset-loki dyntoolset-tempo" -t REGISTRY/dyntoolset:0.1.0-loki-tempo .
#
# One image per plugin set (see examples/helm/dyntoolset/README.md): nothing
# is installed when a Pod starts, so the root filesystem stays read-only and
# a Pod never depends on a package index being reachable.
# tests/deploy/test_dockerfile.py checks this file and runs its install steps.

# Build stage: wheels of the core and of the chosen plugins, without their
# dependencies (those come from the index in the final stage).
FROM python:3.11-slim AS build
ARG PLUGINS="dyntoolset-loki dyntoolset-tempo dyntoolset-alertmanager dyntoolset-mimir dyntoolset-rabbitmq dyntoolset-kafka dyntoolset-opensearch dyntoolset-victorialogs"
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src/ src/
COPY plugins/ plugins/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . $(for p in $PLUGINS; do echo "plugins/$p"; done)

# Final stage: a virtualenv with the wheels and their dependencies; the wheels
# are bind-mounted from the build stage, so no copy of them stays in a layer.
FROM python:3.11-slim
ENV PATH=/opt/dyntoolset/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/dyntoolset \
    && /opt/dyntoolset/bin/pip install --no-cache-dir /wheels/*.whl \
    && /opt/dyntoolset/bin/pip uninstall --yes --quiet pip setuptools \
    && /opt/dyntoolset/bin/dyntoolset --version
# A numeric user (runAsNonRoot can check it) that owns nothing in the image.
USER 65532:65532
WORKDIR /tmp
# 8080: /health, /ready and the HTTP API; 9090: /metrics.
EXPOSE 8080 9090
ENTRYPOINT ["dyntoolset", "run"]
