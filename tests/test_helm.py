"""The Helm chart (deploy/helm/fityard), rendered by Helm's own Go SDK
(helm-python-sdk: no helm binary is installable here) with the dev and the
prod values, and checked the way a cluster would: every manifest against
Kubernetes' schemas (kubernetes-validate --strict), the KEDA ScaledObject
against KEDA's CRD schema (tools/k8s-schemas, from npm), and what an
operator relies on: only the gateway exposed, probes that are gRPC,
requests and limits everywhere, non-root read-only containers, every
setting the services read in the values, no secret in them.

The NATS subchart is declared in Chart.yaml and fetched by `helm dependency
build`, which needs its chart repository: unreachable here, so the chart
renders without it (our own manifests, including the NetworkPolicy for the
NATS pods, render either way)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from services.common import bus
from tests.support.settings import service_settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "fityard"
KEDA_VALIDATOR = ROOT / "tools" / "k8s-schemas" / "validate_keda.mjs"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"  # make test installs it (Makefile)
KUBERNETES = "1.30.0"
FITYARD = ("gateway", "scheduler", "trainer")
SECRETS = {"s3": {"accessKey": "test-access", "secretKey": "test-secret"}}


def render(values_file: str, extra: dict | None = None) -> list[dict]:
    values = yaml.safe_load((CHART / values_file).read_text()) or {}
    for key, value in (extra or {}).items():
        values.setdefault(key, {}).update(value)
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="fy", namespace="ml")
    return [
        doc
        for name, text in sorted(rendered.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.fixture(scope="module", params=["values-dev.yaml", "values-prod.yaml"])
def manifests(request) -> list[dict]:
    return render(request.param, SECRETS if request.param == "values-dev.yaml" else None)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def keda_check(*objects: dict) -> subprocess.CompletedProcess:
    """KEDA objects through KEDA's CRD schemas (tools/k8s-schemas)."""
    return subprocess.run(
        ["node", str(KEDA_VALIDATOR)],
        input=json.dumps(list(objects)),
        capture_output=True,
        text=True,
        cwd=KEDA_VALIDATOR.parent,
        timeout=60,
    )


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def test_every_manifest_is_valid_kubernetes(manifests):
    for doc in manifests:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against KEDA's schema below
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_scaled_object_is_valid_keda_and_scales_trainers_on_the_jobs_consumer():
    docs = render("values-prod.yaml")
    (scaled,) = by_kind(docs, "ScaledObject").values()
    done = keda_check(scaled)
    assert done.returncode == 0, done.stdout + done.stderr
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in by_kind(docs, "Deployment")
    assert spec["scaleTargetRef"]["name"].endswith("-trainer")
    # one trigger per lane's consumer (services/common/bus.py)
    assert sorted(t["metadata"]["consumer"] for t in spec["triggers"]) == sorted(
        bus.LANE_CONSUMERS.values()
    )
    for trigger in spec["triggers"]:
        assert trigger["type"] == "nats-jetstream"
        assert trigger["metadata"]["stream"] == bus.JOBS_STREAM
        assert "-nats-headless." in trigger["metadata"]["natsServerMonitoringEndpoint"]
        assert trigger["metadata"]["natsServerMonitoringEndpoint"].endswith(":8222")
    # the trainer Deployment leaves its replica count to KEDA
    assert "replicas" not in by_kind(docs, "Deployment")["fy-fityard-trainer"]["spec"]


def test_the_keda_check_catches_a_wrong_field():
    """The validator is not a rubber stamp: KEDA wants strings in metadata."""
    (scaled,) = by_kind(render("values-prod.yaml"), "ScaledObject").values()
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5
    done = keda_check(scaled)
    assert done.returncode == 1 and "lagThreshold must be string" in done.stdout


def test_only_the_gateway_is_exposed_and_network_policies_fence_the_rest(manifests):
    services = by_kind(manifests, "Service")
    for name, service in services.items():
        if not name.endswith("-gateway"):
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
    assert "Ingress" not in {d["kind"] for d in manifests}
    policies = by_kind(manifests, "NetworkPolicy")
    scheduler = policies["fy-fityard-scheduler"]["spec"]["ingress"][0]
    assert scheduler["ports"] == [{"port": 50052, "protocol": "TCP"}]
    (only,) = scheduler["from"]
    assert only["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    nats = policies["fy-fityard-nats"]["spec"]["ingress"][0]
    assert nats["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "fityard"
    # every fityard pod is selected by a policy (no component left open)
    selected = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for p in policies.values()
    }
    assert set(FITYARD) <= selected


def test_containers_are_probed_over_grpc_limited_and_locked_down(manifests):
    for workload in workloads(manifests):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert {"requests", "limits"} <= container["resources"].keys(), where
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
    for component, port in (("gateway", 50051), ("scheduler", 50052), ("trainer", 50053)):
        deployment = by_kind(manifests, "Deployment")[f"fy-fityard-{component}"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [component]  # python -m services <component>
        assert container["readinessProbe"]["grpc"] == {"port": port}
        assert container["livenessProbe"]["grpc"] == {"port": port}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "9464"


def test_the_trainers_threads_follow_their_cpu_limit_and_each_has_its_own_id(manifests):
    trainer = by_kind(manifests, "Deployment")["fy-fityard-trainer"]
    (container,) = trainer["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["cpu"]  # the cgroup quota its threads follow
    env = {e["name"]: e for e in container["env"]}
    assert env["FITYARD_TRAINER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    (config,) = by_kind(manifests, "ConfigMap").values()
    assert config["data"]["FITYARD_CORE_LEASES_DIR"] == ""  # one trainer per pod
    assert config["data"]["FITYARD_TRAINER_THREADS"] == ""
    assert "FITYARD_TRAINER_ID" not in config["data"]


def test_every_setting_is_in_the_values_and_no_secret_in_the_config():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = sorted(service_settings() - values["config"].keys())
    assert not missing, f"settings the services read but the chart's values lack: {missing}"
    for values_file, extra in (("values-dev.yaml", SECRETS), ("values-prod.yaml", None)):
        docs = render(values_file, extra)
        (config,) = by_kind(docs, "ConfigMap").values()
        assert "FITYARD_S3_SECRET_KEY" not in config["data"]
        assert "FITYARD_S3_ACCESS_KEY" not in config["data"]
        assert config["data"]["FITYARD_SCHEDULER_ADDRESS"] == "fy-fityard-scheduler:50052"
        assert config["data"]["FITYARD_NATS_URL"] == "nats://fy-nats:4222"
    assert 'secretKey: ""' in (CHART / "values.yaml").read_text()  # no default secret


def test_a_missing_secret_or_store_is_refused_at_render_time():
    with pytest.raises(Exception, match=r"s3.accessKey \(or s3.existingSecret\) is required"):
        render("values-dev.yaml")
    with pytest.raises(Exception, match="s3.endpoint is required"):
        render("values-prod.yaml", {"s3": {"endpoint": ""}})


def test_checkov_finds_nothing_left_unexplained(tmp_path):
    """checkov's Kubernetes checks on both renders: nothing fails; what the
    chart decides against (pull policy, secrets as env, a tag without a
    digest) is skipped by annotation, each skip with its reason."""
    for values_file, extra in (("values-dev.yaml", SECRETS), ("values-prod.yaml", None)):
        docs = render(values_file, extra)
        (tmp_path / values_file).write_text(yaml.safe_dump_all(docs))
        for doc in docs:
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert check.startswith("CKV") and len(reason) > 20, (doc["kind"], value)
    done = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        (f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]
    ]
    assert not failed, failed
    assert sum(r["summary"]["passed"] for r in reports) > 500
    assert sum(r["summary"]["resource_count"] for r in reports) >= 30
