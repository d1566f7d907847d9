# syntax=docker/dockerfile:1
# One image for the four fityard services; the command picks one:
#   docker run fityard:dev gateway | scheduler | trainer | predictor
# Settings are FITYARD_* environment variables (.env.example); no secret is
# in the image. deploy/README.md says how compose and Helm run it.

# The base image, by version and digest (a tag can be re-pushed; a digest
# cannot): Python 3.11, as the tests run.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

# --- build: the dependencies, pinned with hashes, and fityard's wheel -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/fityard
# deploy/requirements-server.txt: every dependency of the `server` extra,
# exact versions and hashes (`make lock`); a changed or unexpected file fails the build.
COPY deploy/requirements-server.txt /tmp/requirements-server.txt
RUN /opt/fityard/bin/pip install --require-hashes --no-deps -r /tmp/requirements-server.txt
COPY pyproject.toml README.md /src/
COPY fityard /src/fityard
COPY services /src/services
COPY ml /src/ml
RUN /opt/fityard/bin/pip wheel --no-deps --wheel-dir /tmp/dist /src \
    && /opt/fityard/bin/pip install --no-deps /tmp/dist/fityard-*.whl

# --- run: the venv, a non-root user, nothing else -------------------------------------
FROM ${PYTHON_IMAGE}
# The version the image is built as (CI: the commit or the release tag).
ARG VERSION=dev
LABEL org.opencontainers.image.title="fityard" \
      org.opencontainers.image.description="Tabular model training as a service: gateway, scheduler and trainer" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --system --gid 10001 fityard \
    && useradd --system --uid 10001 --gid fityard --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fityard
COPY --from=build /opt/fityard /opt/fityard
ENV PATH=/opt/fityard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FITYARD_SCRATCH_DIR=/tmp/fityard-scratch
WORKDIR /tmp
USER 10001:10001
# gateway (the API), scheduler, predictor (and trainer health), metrics (every service)
EXPOSE 50051 50052 50053 9464
# The gateway's port; compose and Helm check each service on its own port
# (compose: `python -m services probe 127.0.0.1:<port>`; Kubernetes: gRPC probes).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "services", "probe", "127.0.0.1:50051"]
ENTRYPOINT ["python", "-m", "services"]
CMD ["gateway"]
