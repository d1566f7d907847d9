"""docker-compose.yml checked without a container engine: it validates
against the compose specification, every file it names exists, its
addresses, ports and health checks agree with the services' settings and
with each other, it starts in order, trainers and predictors scale (the
gateway forwarding to every predictor, each published for direct calls),
predictors get what the gateway gets but its token to the scheduler, and
every setting the services read is in it and in .env.example.
(tests/test_compose_deployed.py runs the services as compose gives them.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common.config import Config
from tests.support import compose as c
from tests.support.settings import COMPOSE_ONLY, OTEL_SETTINGS, names_in, service_settings

FITYARD = ("scheduler", "gateway", "trainer", "predictor")
# What a predictor needs beside its model cache (FITYARD_PREDICTOR_CACHE_BYTES):
# the process and the requests in flight.
PREDICTOR_HEADROOM = 512 * 1024**2
SECRETS = {
    "FITYARD_S3_SECRET_KEY": "s3-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
    "FITYARD_INTERNAL_TOKEN": "internal-secret",
    "FITYARD_NATS_TOKEN": "nats-secret",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return c.load()


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """What `cp .env.example .env` and setting its secrets gives."""
    return {**c.dotenv(), **SECRETS}


def test_it_validates_against_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(c.COMPOSE_FILE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_file_it_names_exists(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = c.ROOT / build["context"]
            assert context.is_dir(), f"{name}: build context {context} is missing"
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):  # a bind mount of the repo's own file
                assert (c.ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"


def test_addresses_and_ports_agree_with_the_settings(compose, env):
    services = compose["services"]
    settings = c.service_environment(compose, "scheduler", env)
    # the gateway publishes the port it listens on
    gateway_port = c.host_port(settings["FITYARD_GATEWAY_LISTEN"])[1]
    (published,) = [c.interpolate(p, env) for p in services["gateway"]["ports"]]
    assert published.rsplit(":", 1)[1] == str(gateway_port)
    # health checks ask the port each service serves gRPC health on
    assert c.healthcheck_port(compose, "gateway") == gateway_port
    scheduler_port = c.host_port(settings["FITYARD_SCHEDULER_LISTEN"])[1]
    assert c.healthcheck_port(compose, "scheduler") == scheduler_port
    trainer_port = c.host_port(settings["FITYARD_TRAINER_HEALTH_LISTEN"])[1]
    assert c.healthcheck_port(compose, "trainer") == trainer_port
    predictor_port = c.host_port(settings["FITYARD_PREDICTOR_LISTEN"])[1]
    assert c.healthcheck_port(compose, "predictor") == predictor_port
    # the gateway forwards PredictionService calls to every predictor: a
    # dns:/// target resolves to each replica (compose's DNS), not one address
    target = c.service_environment(compose, "gateway", env)["FITYARD_PREDICTOR_ADDRESS"]
    assert target.startswith("dns:///"), target
    assert c.host_port(target.removeprefix("dns:///")) == ("predictor", predictor_port)
    # each predictor is published for direct calls, where the gateway is,
    # on a host port Docker picks (a fixed one would fit one replica only)
    (direct,) = c.interpolate(services["predictor"]["ports"], env)
    assert direct["target"] == predictor_port and "published" not in direct
    assert direct["host_ip"] == published.rsplit(":", 2)[0]
    # every host a service is sent to is a compose service, on its port
    assert c.host_port(settings["FITYARD_SCHEDULER_ADDRESS"]) == ("scheduler", scheduler_port)
    host, port = c.host_port(settings["FITYARD_NATS_URL"])
    assert host in services and "--jetstream" in services[host]["command"] and port == 4222
    host, port = c.host_port(settings["FITYARD_S3_ENDPOINT"])
    assert host in services and port == 9000 and services[host]["command"][0] == "server"
    assert settings["FITYARD_STORAGE"] == "s3"
    # traces: services -> collector (its OTLP gRPC receiver) -> jaeger
    collector = yaml.safe_load((c.ROOT / "deploy/otel-collector/config.yaml").read_text())
    host, port = c.host_port(settings["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert host in services
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(f":{port}")
    exporters = collector["service"]["pipelines"]["traces"]["exporters"]
    assert all(c.host_port(collector["exporters"][e]["endpoint"])[0] in services for e in exporters)
    # metrics: Prometheus scrapes each fityard service on its metrics port
    metrics_port = c.host_port(settings["FITYARD_METRICS_LISTEN"])[1]
    prometheus = yaml.safe_load((c.ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {
        name: sd["port"]
        for job in prometheus["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert scraped == dict.fromkeys(FITYARD, metrics_port)
    # Grafana reads Prometheus where compose runs it
    datasources = yaml.safe_load(
        (c.ROOT / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert c.host_port(datasources["datasources"][0]["url"]) == ("prometheus", 9090)


def test_it_starts_in_order(compose):
    """`docker compose up` waits for what each service needs to be healthy;
    a dependency waited on for health has a health check."""
    services = compose["services"]
    needs = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert needs["scheduler"]["nats"]["condition"] == "service_healthy"
    assert needs["scheduler"]["minio-init"]["condition"] == "service_completed_successfully"
    assert needs["minio-init"]["minio"]["condition"] == "service_healthy"
    assert needs["gateway"]["scheduler"]["condition"] == "service_healthy"
    assert needs["trainer"]["scheduler"]["condition"] == "service_healthy"
    # predictors wait for what they read, not for the scheduler
    assert needs["predictor"]["nats"]["condition"] == "service_healthy"
    assert needs["predictor"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "scheduler" not in needs["predictor"]
    for name, deps in needs.items():
        for dep, how in deps.items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
    for name in FITYARD:
        assert c.command(compose, name) == [name]  # python -m services <name>


def test_trainers_and_predictors_scale_and_the_images_are_pinned(compose, env):
    trainer = compose["services"]["trainer"]
    assert "container_name" not in trainer and "ports" not in trainer  # --scale trainer=N
    assert trainer["deploy"]["resources"]["limits"]["cpus"]  # its threads follow it
    # two predictors at least, any number (no fixed host port), each with
    # the memory for its model cache and the rest
    predictor = c.interpolate(compose["services"]["predictor"], env)
    assert "container_name" not in predictor
    assert all("published" not in port for port in predictor["ports"])
    assert int(predictor["deploy"]["replicas"]) >= 2
    settings = c.service_environment(compose, "predictor", env)
    cache = int(settings["FITYARD_PREDICTOR_CACHE_BYTES"] or Config.predictor_cache_bytes)
    memory = _bytes(predictor["deploy"]["resources"]["limits"]["memory"])
    assert memory >= cache + PREDICTOR_HEADROOM, (memory, cache)
    assert predictor["deploy"]["resources"]["limits"]["cpus"]
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if name in FITYARD:
            assert image.startswith("fityard:") and service["build"], name
        else:
            assert "@sha256:" in image or (":" in image and not image.endswith(":latest")), name
    assert "@sha256:" in compose["services"]["minio"]["image"]


def test_predictors_get_what_the_gateway_gets_but_the_schedulers_token(compose, env):
    """The same settings (NATS, the store, TLS, telemetry) and the same API
    keys secret: predictors serve the gateway's callers. The one service
    callers reach directly does not hold the token the scheduler trusts."""
    services = compose["services"]
    gateway = c.service_environment(compose, "gateway", env)
    predictor = c.service_environment(compose, "predictor", env)
    differ = {k for k in gateway.keys() | predictor.keys() if gateway.get(k) != predictor.get(k)}
    assert differ == {"OTEL_SERVICE_NAME", "FITYARD_INTERNAL_TOKEN"}, differ
    assert predictor["OTEL_SERVICE_NAME"] == "fityard-predictor"
    assert predictor["FITYARD_INTERNAL_TOKEN"] == "" and gateway["FITYARD_INTERNAL_TOKEN"]
    assert services["predictor"]["secrets"] == services["gateway"]["secrets"] == ["api-keys"]
    assert predictor["FITYARD_API_KEYS_FILE"] == "/run/secrets/api-keys"


def _bytes(size: str | int) -> int:
    """Bytes of a compose size ("1536m", "4g", "4gb": binary units, as Docker reads them)."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)b?", str(size).lower()).groups()
    return int(float(number) * 1024 ** "bkmg".index(unit or "b"))


def test_every_setting_is_in_compose_and_in_env_example(compose, env):
    shared = compose["x-fityard-env"]
    missing = sorted(service_settings() - shared.keys())
    assert not missing, f"settings the services read but compose does not pass: {missing}"
    undocumented = sorted(service_settings() - c.documented())
    assert not undocumented, f"settings missing from .env.example: {undocumented}"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in shared and set(shared) & set(OTEL_SETTINGS)
    for name in FITYARD:
        assert c.service_environment(compose, name, env).keys() >= service_settings()


def test_every_fityard_name_in_compose_and_env_example_is_a_setting_or_composes_own():
    """A renamed or misspelt setting in a deployment file names a variable
    nothing reads: it fails here, not silently in a customer's rollout."""
    known = service_settings() | set(COMPOSE_ONLY)
    for path in (c.COMPOSE_FILE, c.ENV_EXAMPLE):
        unknown = sorted(names_in(path.read_text()) - known)
        assert not unknown, f"{path.name} names what no service reads: {unknown}"
    # compose's own knobs are all interpolated somewhere, and documented
    text = c.COMPOSE_FILE.read_text()
    for name in COMPOSE_ONLY:
        assert "${" + name + ":-" in text and name in c.documented(), name


def test_no_secret_is_written_down(compose, env):
    """Secrets come from .env only: compose refuses to start without them,
    and .env.example leaves them for the user to set."""
    with pytest.raises(c.MissingVariable, match="FITYARD_S3_SECRET_KEY"):
        c.service_environment(compose, "gateway", {**env, "FITYARD_S3_SECRET_KEY": ""})
    assert c.dotenv()["FITYARD_S3_SECRET_KEY"] == ""
    for token in ("FITYARD_INTERNAL_TOKEN", "FITYARD_NATS_TOKEN"):
        assert c.dotenv()[token] == ""
        with pytest.raises(c.MissingVariable, match=token):
            c.service_environment(compose, "scheduler", {**env, token: ""})
    with pytest.raises(c.MissingVariable, match="FITYARD_NATS_TOKEN"):
        c.service_environment(compose, "nats", {**env, "FITYARD_NATS_TOKEN": ""})
    assert c.dotenv()["GRAFANA_ADMIN_PASSWORD"] == ""
    text = c.COMPOSE_FILE.read_text()
    assert "minioadmin" not in text and "SECRET_KEY: " + "${FITYARD_S3_SECRET_KEY:?" in text
