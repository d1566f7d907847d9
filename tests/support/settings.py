"""The settings the services read (the config's schema), so that the
deployment files (.env.example, docker-compose.yml, the Helm chart) can be
checked against them: a setting added to the config and forgotten in a
deployment fails a test instead of a customer's rollout."""

from __future__ import annotations

import re

from services.common.config import SCHEMA

# OpenTelemetry's standard variables the services honour
# (services/common/telemetry.py); deployments set the ones they need.
OTEL_SETTINGS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_SDK_DISABLED",
)


def service_settings() -> set[str]:
    """Every FITYARD_* variable the services read: the config's schema."""
    return set(SCHEMA.by_env)


# docker-compose.yml's own knobs (image tag, published address, each
# container's limits, the keys file on the host): compose interpolates them,
# no service reads them.
COMPOSE_ONLY = (
    "FITYARD_VERSION",
    "FITYARD_PUBLISH_ADDRESS",
    "FITYARD_PORT",
    "FITYARD_TRAINER_CPUS",
    "FITYARD_TRAINER_MEMORY",
    "FITYARD_PREDICTOR_REPLICAS",
    "FITYARD_PREDICTOR_CPUS",
    "FITYARD_PREDICTOR_MEMORY",
    "FITYARD_API_KEYS_PATH",
)

# The tests' own knobs (no service reads them).
TEST_KNOBS = ("FITYARD_FUZZ_EXAMPLES",)

# A FITYARD_ word: a variable, or a prefix standing for several (FITYARD_S3_*).
_NAME = re.compile(r"\bFITYARD_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)")


def client_settings() -> set[str]:
    """The variables the SDK and the CLI read (fityard/ owns them: it
    imports no server code)."""
    from fityard import _auth, client, traces

    return {
        _auth.API_KEY_ENV,
        _auth.TLS_ENV,
        _auth.CA_FILE_ENV,
        _auth.CERT_FILE_ENV,
        _auth.KEY_FILE_ENV,
        client.ADDRESS_ENV,
        client.PREDICT_ADDRESS_ENV,
        traces.TRACE_URL_ENV,
    }


def other_names() -> set[str]:
    """FITYARD_ words that are not service settings, each defined once in
    the code: the client's variables, the bus's stream names, the
    supervisor's pid."""
    from services.common import bus, runtime

    return client_settings() | {bus.JOBS_STREAM, bus.EVENTS_STREAM, runtime.PARENT_PID_ENV}


def names_in(text: str) -> set[str]:
    """The FITYARD_ variables `text` names."""
    return set(_NAME.findall(text))
