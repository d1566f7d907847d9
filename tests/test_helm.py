"""The Helm chart (deploy/helm/fityard), rendered by Helm's own Go SDK
(helm-python-sdk: no helm binary is installable here) with the dev and the
prod values, with an external NATS and with the ingress on, and checked the
way a cluster would: every manifest against Kubernetes' schemas
(kubernetes-validate --strict), the KEDA ScaledObject against KEDA's CRD
schema (tools/k8s-schemas, from npm), checkov, and what an operator relies
on: only the gateway and the predictors exposed, probes that are gRPC,
requests and limits everywhere, non-root read-only containers, a 3-node
JetStream cluster that KEDA can read, a predictor pool scaled on CPU that
the gateway balances over, every setting the services read in the values,
no secret in them.

The NATS subchart is fetched by `helm dependency build` from its chart
repository, unreachable here: the renders use the vendored copy of the very
version Chart.yaml names (tests/data/charts, tests/support/helm.py)."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import helm_python as helm_sdk
import kubernetes_validate
import pytest
import yaml

from services.common import bus
from services.common.config import SCHEMA, Config
from tests.support import helm
from tests.support.settings import names_in, service_settings

CHART = helm.CHART
KEDA_VALIDATOR = helm.ROOT / "tools" / "k8s-schemas" / "validate_keda.mjs"
CHECKOV = helm.ROOT / ".venv-checkov" / "bin" / "checkov"  # make test installs it (Makefile)
KUBERNETES = "1.30.0"
FITYARD = ("gateway", "scheduler", "trainer", "predictor")
# What a predictor needs beside its model cache (FITYARD_PREDICTOR_CACHE_BYTES):
# the process and the requests in flight (values.yaml says so).
PREDICTOR_HEADROOM = 512 * 1024**2
KEYS_FILE = "tenant-a " + "ab" * 32 + "\n"
SECRETS = {
    "s3": {"accessKey": "test-access", "secretKey": "test-secret"},
    "apiKeys": {"file": KEYS_FILE},
}
EXTERNAL_NATS = {
    "nats": {
        "enabled": False,
        "url": "nats://nats.messaging:4222",
        "monitoringEndpoint": "nats-headless.messaging.svc.cluster.local:8222",
    }
}
# the ingress on, and only its controller's namespace let in
INGRESS_CONTROLLER = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
]
INGRESS = {
    "gateway": {"ingress": {"enabled": True}, "service": {"type": "ClusterIP"}},
    "networkPolicy": {"gatewayFrom": INGRESS_CONTROLLER},
}
# name: (values file, values on top of it)
RENDERS = {
    "dev": ("values-dev.yaml", SECRETS),
    "prod": ("values-prod.yaml", {}),
    "prod-external-nats": ("values-prod.yaml", EXTERNAL_NATS),
    "prod-ingress": ("values-prod.yaml", INGRESS),
}


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    return helm.chart_with_dependencies(tmp_path_factory.mktemp("chart"))


def values(name: str, extra: dict | None = None) -> dict:
    return helm.merged(helm.values_file(name), extra or {})


@pytest.fixture(scope="module")
def renders(chart) -> dict[str, list[dict]]:
    """Each render once for the module (tests read, never change, them)."""
    return {name: helm.render(chart, values(*args)) for name, args in RENDERS.items()}


@pytest.fixture(params=sorted(RENDERS))
def manifests(request, renders) -> list[dict]:
    return renders[request.param]


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


KEDA_TYPES = (
    KEDA_VALIDATOR.parent / "node_modules" / "@kubernetes-models" / "keda" / "keda.sh" / "v1alpha1"
)


def keda_fields(type_name: str) -> set[str]:
    """The fields of one of KEDA's types, as the same npm package declares
    them from KEDA's CRD (its TypeScript interface)."""
    text = (KEDA_TYPES / f"{type_name}.d.ts").read_text()
    interface = text.split("export interface", 1)[1].split("\n}", 1)[0]
    return set(re.findall(r'^\s+"(\w+)"\??:', interface, re.MULTILINE))


def unknown_keda_fields(scaled: dict) -> list[str]:
    """What Kubernetes' strict field validation would refuse and the
    schema check lets through: fields KEDA's ScaledObject does not have
    (the CRD's schema allows unknown ones; the API server does not)."""
    spec = scaled["spec"]
    unknown = [f"spec.{k}" for k in spec.keys() - keda_fields("ScaledObjectSpec")]
    unknown += [
        f"spec.scaleTargetRef.{k}"
        for k in spec["scaleTargetRef"].keys() - keda_fields("ScaleTarget")
    ]
    for i, trigger in enumerate(spec["triggers"]):
        unknown += [
            f"spec.triggers[{i}].{k}" for k in trigger.keys() - keda_fields("ScaleTriggers")
        ]
    return unknown


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def is_fityard(doc: dict) -> bool:
    return doc["metadata"]["labels"]["app.kubernetes.io/name"] == "fityard"


def selects(selector: dict, labels: dict) -> bool:
    return selector["matchLabels"].items() <= labels.items()


def test_every_manifest_is_valid_kubernetes(manifests):
    for doc in manifests:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against KEDA's schema below
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_scaled_object_is_valid_keda_and_scales_trainers_on_the_jobs_consumer(renders):
    docs = renders["prod"]
    (scaled,) = by_kind(docs, "ScaledObject").values()
    done = keda_check(scaled)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not unknown_keda_fields(scaled)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in by_kind(docs, "Deployment")
    assert spec["scaleTargetRef"]["name"].endswith("-trainer")
    prod = helm.values_file("values-prod.yaml")["trainer"]["autoscaling"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        prod["minReplicas"],
        prod["maxReplicas"],
    )
    # one trigger per lane's consumer (services/common/bus.py)
    assert sorted(t["metadata"]["consumer"] for t in spec["triggers"]) == sorted(
        bus.LANE_CONSUMERS.values()
    )
    assert bus.TRAINERS_CONSUMER == "trainers"
    # the monitoring port of the NATS pods, through the headless service
    # (so KEDA reaches the stream's leader) the subchart really creates
    headless = by_kind(docs, "Service")["fy-nats-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    assert {"name": "monitor", "port": 8222} in [
        {"name": p["name"], "port": p["port"]} for p in headless["spec"]["ports"]
    ]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "nats-jetstream"
        assert trigger["metadata"]["stream"] == bus.JOBS_STREAM == "FITYARD_JOBS"
        assert trigger["metadata"]["account"] == "$G"
        assert trigger["metadata"]["lagThreshold"] == str(prod["lagThreshold"])
        assert (
            trigger["metadata"]["natsServerMonitoringEndpoint"]
            == "fy-nats-headless.ml.svc.cluster.local:8222"
        )
    # the trainer Deployment leaves its replica count to KEDA
    assert "replicas" not in by_kind(docs, "Deployment")["fy-fityard-trainer"]["spec"]


def test_the_keda_check_catches_a_wrong_field(renders):
    """The validator is not a rubber stamp: KEDA wants strings in metadata."""
    (scaled,) = by_kind(renders["prod"], "ScaledObject").values()
    scaled = json.loads(json.dumps(scaled))  # a copy: the render is shared
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5
    done = keda_check(scaled)
    assert done.returncode == 1 and "lagThreshold must be string" in done.stdout
    # and a field KEDA does not have (a misspelling) is caught too
    scaled["spec"]["minReplicas"] = scaled["spec"].pop("minReplicaCount")
    assert unknown_keda_fields(scaled) == ["spec.minReplicas"]
    assert {"minReplicaCount", "maxReplicaCount", "triggers"} <= keda_fields("ScaledObjectSpec")


def test_nats_is_a_three_node_jetstream_cluster_on_file_storage_fenced_to_fityard(renders):
    docs = renders["prod"]
    nats = by_kind(docs, "StatefulSet")["fy-nats"]
    assert nats["spec"]["replicas"] == 3
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    prod = helm.values_file("values-prod.yaml")["nats"]["config"]["jetstream"]
    assert claim["spec"]["resources"]["requests"]["storage"] == prod["fileStore"]["pvc"]["size"]
    config = by_kind(docs, "ConfigMap")["fy-nats-config"]["data"]["nats.conf"]
    assert '"store_dir": "/data"' in config and '"http_port": 8222' in config
    assert config.count("fy-nats-headless:6222") == 3  # the cluster's routes
    # the services reach the subchart's client Service
    client = by_kind(docs, "Service")["fy-nats"]
    assert [p["port"] for p in client["spec"]["ports"]] == [4222]
    (fityard_config,) = [c for c in by_kind(docs, "ConfigMap").values() if is_fityard(c)]
    assert fityard_config["data"]["FITYARD_NATS_URL"] == "nats://fy-nats:4222"
    # fityard's streams and buckets are kept on every node of the cluster
    assert fityard_config["data"]["FITYARD_NATS_REPLICAS"] == "3"
    # the chart's policy for NATS selects the NATS pods and lets in only
    # fityard's pods (clients), the NATS pods (routes) and KEDA (monitoring)
    policy = by_kind(docs, "NetworkPolicy")["fy-fityard-nats"]["spec"]
    assert selects(policy["podSelector"], nats["spec"]["template"]["metadata"]["labels"])
    peers = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert peers[4222] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": "fy",
                    "app.kubernetes.io/name": "fityard",
                }
            }
        }
    ]
    assert selects(peers[6222][0]["podSelector"], nats["spec"]["template"]["metadata"]["labels"])
    assert "namespaceSelector" in peers[8222][0]
    # development: one node, JetStream on
    dev = by_kind(renders["dev"], "StatefulSet")["fy-nats"]
    assert dev["spec"]["replicas"] == 1
    (dev_config,) = [c for c in by_kind(renders["dev"], "ConfigMap").values() if is_fityard(c)]
    assert dev_config["data"]["FITYARD_NATS_REPLICAS"] == "1"
    assert (
        "jetstream" in by_kind(renders["dev"], "ConfigMap")["fy-nats-config"]["data"]["nats.conf"]
    )


def test_an_external_nats_replaces_the_subchart(renders):
    docs = renders["prod-external-nats"]
    assert not [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/name") == "nats"]
    assert "fy-fityard-nats" not in by_kind(docs, "NetworkPolicy")
    (config,) = by_kind(docs, "ConfigMap").values()
    assert config["data"]["FITYARD_NATS_URL"] == EXTERNAL_NATS["nats"]["url"]
    assert config["data"]["FITYARD_NATS_REPLICAS"] == "1"  # unless the user says how many
    (scaled,) = by_kind(docs, "ScaledObject").values()
    assert {t["metadata"]["natsServerMonitoringEndpoint"] for t in scaled["spec"]["triggers"]} == {
        EXTERNAL_NATS["nats"]["monitoringEndpoint"]
    }


def test_only_the_gateway_is_exposed_and_network_policies_fence_the_rest(manifests):
    services = by_kind(manifests, "Service")
    for name, service in services.items():
        if not name.endswith("-fityard-gateway"):
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
    # the ingress: PredictionService calls (gRPC's path is /<service>/<method>)
    # straight to the predictors, everything else to the gateway
    for ingress in by_kind(manifests, "Ingress").values():
        (rule,) = ingress["spec"]["rules"]
        paths = {p["path"]: (p["pathType"], p["backend"]["service"]) for p in rule["http"]["paths"]}
        assert paths == {
            "/fityard.v1.PredictionService": (
                "Prefix",
                {"name": "fy-fityard-predictor", "port": {"name": "grpc"}},
            ),
            "/": ("Prefix", {"name": "fy-fityard-gateway", "port": {"name": "grpc"}}),
        }
        assert "grpc" in [p["name"] for p in services["fy-fityard-predictor"]["spec"]["ports"]]
    policies = by_kind(manifests, "NetworkPolicy")
    scheduler = policies["fy-fityard-scheduler"]["spec"]["ingress"][0]
    assert scheduler["ports"] == [{"port": 50052, "protocol": "TCP"}]
    (only,) = scheduler["from"]
    assert only["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    # every fityard pod is selected by a policy (no component left open),
    # and the metrics port of each service only from the monitoring namespace
    selected = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for p in policies.values()
    }
    assert set(FITYARD) <= selected
    monitoring = helm.values_file("values.yaml")["networkPolicy"]["monitoringNamespaceSelector"]
    for component in FITYARD:
        rules = policies[f"fy-fityard-{component}"]["spec"]["ingress"]
        (metrics,) = [r for r in rules if r["ports"] == [{"port": 9464, "protocol": "TCP"}]]
        assert metrics["from"] == [{"namespaceSelector": monitoring}]
    if "fy-fityard-minio" in policies:
        (store,) = policies["fy-fityard-minio"]["spec"]["ingress"]
        assert store["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "fityard"


def test_the_ingress_is_off_by_default_and_serves_grpc_over_tls_when_on(renders):
    for name in ("dev", "prod", "prod-external-nats"):
        assert not by_kind(renders[name], "Ingress"), name
    (ingress,) = by_kind(renders["prod-ingress"], "Ingress").values()
    prod = helm.values_file("values-prod.yaml")["gateway"]["ingress"]
    assert ingress["spec"]["tls"] == [
        {"hosts": [prod["host"]], "secretName": prod["tls"]["secretName"]}
    ]
    assert ingress["spec"]["ingressClassName"] == prod["className"]
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    )


def test_the_predictor_pool_scales_on_cpu_behind_a_headless_service_the_gateway_uses(renders):
    """Predictors are stateless but for their model cache: a Deployment
    with a CPU HPA (no queue to measure: no KEDA), two at least. The
    gateway forwards PredictionService calls to every ready pod through a
    headless Service (a dns:/// target in the ConfigMap it reads); callers
    have the predictors' own Service."""
    docs = renders["prod"]
    predictor = by_kind(docs, "Deployment")["fy-fityard-predictor"]
    labels = predictor["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in predictor["spec"]  # the HPA's to set
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["fy-fityard-predictor"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fy-fityard-predictor",
    }
    prod = helm.values_file("values-prod.yaml")["predictor"]["autoscaling"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (prod["minReplicas"], prod["maxReplicas"])
    assert helm.values_file("values.yaml")["predictor"]["autoscaling"]["minReplicas"] >= 2
    assert hpa["minReplicas"] >= 2
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    scaled = by_kind(docs, "ScaledObject").values()
    assert all(s["spec"]["scaleTargetRef"]["name"] != "fy-fityard-predictor" for s in scaled)
    # the gateway's target: the headless Service, on the port the pods serve
    config = by_kind(docs, "ConfigMap")["fy-fityard"]["data"]
    target = config["FITYARD_PREDICTOR_ADDRESS"]
    assert target == "dns:///fy-fityard-predictor-headless.ml.svc.cluster.local:50053"
    services = by_kind(docs, "Service")
    headless, direct = services["fy-fityard-predictor-headless"], services["fy-fityard-predictor"]
    assert headless["spec"]["clusterIP"] == "None"  # DNS answers each pod, not one virtual IP
    host, port = target.removeprefix("dns:///").rsplit(":", 1)
    meta = headless["metadata"]
    assert host == f"{meta['name']}.{meta['namespace']}.svc.cluster.local"
    (container,) = predictor["spec"]["template"]["spec"]["containers"]
    listen = int(config["FITYARD_PREDICTOR_LISTEN"].rsplit(":", 1)[1])
    assert {"name": "grpc", "containerPort": listen} in container["ports"]
    assert [(p["port"], p["targetPort"]) for p in headless["spec"]["ports"]] == [
        (int(port), "grpc")
    ]
    for service in (headless, direct):
        assert service["spec"]["selector"].items() <= labels.items()
    assert direct["spec"]["type"] == "ClusterIP"  # unless predictor.service.type says
    gateway = by_kind(docs, "Deployment")["fy-fityard-gateway"]["spec"]["template"]["spec"]
    assert {"configMapRef": {"name": "fy-fityard"}} in gateway["containers"][0]["envFrom"]
    # development: one, no HPA
    dev = renders["dev"]
    assert by_kind(dev, "Deployment")["fy-fityard-predictor"]["spec"]["replicas"] == 1
    assert "fy-fityard-predictor" not in by_kind(dev, "HorizontalPodAutoscaler")


def test_the_predictors_service_may_be_a_load_balancer(chart):
    """For callers outside the cluster without the ingress, like the
    gateway's; the gateway's headless Service stays headless."""
    annotations = {"networking.gke.io/load-balancer-type": "Internal"}
    lb = {"predictor": {"service": {"type": "LoadBalancer", "annotations": annotations}}}
    services = by_kind(helm.render(chart, values("values-prod.yaml", lb)), "Service")
    direct = services["fy-fityard-predictor"]
    kubernetes_validate.validate(direct, KUBERNETES, strict=True)
    assert direct["spec"]["type"] == "LoadBalancer"
    assert direct["metadata"]["annotations"] == annotations
    assert services["fy-fityard-predictor-headless"]["spec"]["clusterIP"] == "None"
    exposed = {n for n, s in services.items() if s["spec"].get("type", "ClusterIP") != "ClusterIP"}
    assert exposed == {"fy-fityard-gateway", "fy-fityard-predictor"}


def test_each_predictor_has_the_memory_for_its_cache(manifests):
    config = by_kind(manifests, "ConfigMap")["fy-fityard"]["data"]
    cache = int(config["FITYARD_PREDICTOR_CACHE_BYTES"] or Config.predictor_cache_bytes)
    predictor = by_kind(manifests, "Deployment")["fy-fityard-predictor"]
    (container,) = predictor["spec"]["template"]["spec"]["containers"]
    for kind in ("requests", "limits"):
        memory = _bytes(container["resources"][kind]["memory"])
        assert memory >= cache + PREDICTOR_HEADROOM, (kind, memory, cache)


def _bytes(quantity: str) -> int:
    """Bytes of a Kubernetes quantity ("1536Mi", "4Gi", "2G", "1000")."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(k|[KMGT]i?)?", quantity).groups()
    if not unit:
        return int(float(number))
    base = 1024 if unit.endswith("i") else 1000
    return int(float(number) * base ** ("KMGT".index(unit[0].upper()) + 1))


def _egress_allowed(policies: dict, pod: dict, peer: dict, port: int) -> bool:
    """Whether the NetworkPolicies let pods labelled `pod` open `port` on
    pods labelled `peer` in the release's namespace (no policy selecting
    them for Egress: anything)."""
    fencing = [
        p["spec"]
        for p in policies.values()
        if "Egress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod)
    ]
    return not fencing or any(
        (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        and (
            not rule.get("to")
            or any(
                "podSelector" in to
                and "namespaceSelector" not in to
                and selects(to["podSelector"], peer)
                for to in rule["to"]
            )
        )
        for policy in fencing
        for rule in policy.get("egress", [])
    )


def test_the_predictors_admit_the_gateway_and_its_callers_and_reach_only_what_they_read(renders):
    """In: the gateway (forwarded calls), whoever may reach the gateway
    (callers, through the ingress controller when it is on), Prometheus.
    Out: DNS, NATS, the store and the trace collector, nothing else."""
    for name in ("prod", "prod-ingress"):
        docs = renders[name]
        pods = {
            c: by_kind(docs, "Deployment")[f"fy-fityard-{c}"]["spec"]["template"]["metadata"][
                "labels"
            ]
            for c in ("gateway", "predictor")
        }
        policies = by_kind(docs, "NetworkPolicy")
        policy = policies["fy-fityard-predictor"]["spec"]
        assert selects(policy["podSelector"], pods["predictor"])
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        grpc = [r for r in policy["ingress"] if r["ports"] == [{"port": 50053, "protocol": "TCP"}]]
        from_gateway, from_callers = grpc
        (gateway_pods,) = from_gateway["from"]
        assert selects(gateway_pods["podSelector"], pods["gateway"])
        assert not selects(gateway_pods["podSelector"], pods["predictor"])
        # callers as the gateway's: anyone by default, the controller's namespace when set
        (gateway_rule,) = [
            r
            for r in policies["fy-fityard-gateway"]["spec"]["ingress"]
            if r["ports"] == [{"port": 50051, "protocol": "TCP"}]
        ]
        assert from_callers.get("from") == gateway_rule.get("from")
        assert from_callers.get("from") == (INGRESS_CONTROLLER if name == "prod-ingress" else None)
        # the gateway may open connections to the predictors
        assert _egress_allowed(policies, pods["gateway"], pods["predictor"], 50053)

    # out: by the ports the ConfigMap's addresses name, to the pods when in the cluster
    dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    for name, nats_in_cluster, store_in_cluster, store_port, otel_port in [
        ("dev", True, True, 9000, None),
        ("prod", True, False, 443, 4317),
        ("prod-external-nats", False, False, 443, 4317),
    ]:
        docs = renders[name]
        egress = by_kind(docs, "NetworkPolicy")["fy-fityard-predictor"]["spec"]["egress"]
        assert egress[0] == dns
        rules = {r["ports"][0]["port"]: r.get("to") for r in egress[1:]}
        config = by_kind(docs, "ConfigMap")["fy-fityard"]["data"]
        assert config["FITYARD_NATS_URL"].endswith(":4222")
        assert config["FITYARD_S3_ENDPOINT"].endswith(f":{store_port}")
        expected = {4222, store_port} | ({otel_port} if otel_port else set())
        assert rules.keys() == expected, name
        if nats_in_cluster:
            nats = by_kind(docs, "StatefulSet")["fy-nats"]["spec"]["template"]["metadata"]
            (to,) = rules[4222]
            assert selects(to["podSelector"], nats["labels"])
        else:
            assert rules[4222] is None  # outside the cluster: by port
        if store_in_cluster:
            minio = by_kind(docs, "StatefulSet")["fy-fityard-minio"]["spec"]["template"]["metadata"]
            (to,) = rules[store_port]
            assert selects(to["podSelector"], minio["labels"])
        else:
            assert rules[store_port] is None
        if otel_port:
            assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(f":{otel_port}")
            assert rules[otel_port] is None


def test_containers_are_probed_over_grpc_limited_and_locked_down(manifests):
    for workload in workloads(manifests):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        if is_fityard(workload):
            assert pod["securityContext"]["runAsUser"] == 10001
            assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
        for container in pod["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert {"requests", "limits"} <= container["resources"].keys(), where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][kind].keys(), where
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            if is_fityard(workload):
                assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
    for component, port in (
        ("gateway", 50051),
        ("scheduler", 50052),
        ("trainer", 50053),
        ("predictor", 50053),
    ):
        deployment = by_kind(manifests, "Deployment")[f"fy-fityard-{component}"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [component]  # python -m services <component>
        assert container["readinessProbe"]["grpc"] == {"port": port}
        assert container["livenessProbe"]["grpc"] == {"port": port}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9464"


def test_minio_writes_only_to_its_volume_and_tmp(renders):
    """Its certs directory would be $HOME/.minio/certs, on the read-only root."""
    minio = by_kind(renders["dev"], "StatefulSet")["fy-fityard-minio"]
    (container,) = minio["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["server", "--certs-dir", "/tmp/minio-certs", "/data"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data", "/tmp"}
    assert "@sha256:" in container["image"]  # pinned: upstream publishes source only


def test_every_service_has_a_disruption_budget(manifests):
    budgets = by_kind(manifests, "PodDisruptionBudget").values()
    for workload in workloads(manifests):
        if workload["kind"] == "Job" or workload["metadata"]["name"].endswith("-minio"):
            continue  # a one-shot Job; a single MinIO has nothing to keep up during a drain
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selects(b["spec"]["selector"], labels) for b in budgets), workload["metadata"][
            "name"
        ]


def test_the_trainers_threads_follow_their_cpu_limit_and_each_has_its_own_id(manifests):
    trainer = by_kind(manifests, "Deployment")["fy-fityard-trainer"]
    (container,) = trainer["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["cpu"]  # the cgroup quota its threads follow
    env = {e["name"]: e for e in container["env"]}
    assert env["FITYARD_TRAINER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    config = by_kind(manifests, "ConfigMap")["fy-fityard"]
    assert config["data"]["FITYARD_CORE_LEASES_DIR"] == ""  # one trainer per pod
    assert config["data"]["FITYARD_TRAINER_THREADS"] == ""
    assert config["data"]["FITYARD_TRAINER_HEALTH_LISTEN"] == "0.0.0.0:50053"
    assert "FITYARD_TRAINER_ID" not in config["data"]


def test_every_setting_is_in_the_values_and_no_secret_in_the_config(renders):
    chart_values = helm.values_file("values.yaml")
    missing = sorted(service_settings() - chart_values["config"].keys())
    assert not missing, f"settings the services read but the chart's values lack: {missing}"
    for name in ("dev", "prod"):
        config = by_kind(renders[name], "ConfigMap")["fy-fityard"]
        assert "FITYARD_S3_SECRET_KEY" not in config["data"]
        assert "FITYARD_S3_ACCESS_KEY" not in config["data"]
        assert config["data"]["FITYARD_SCHEDULER_ADDRESS"] == "fy-fityard-scheduler:50052"
        assert config["data"]["FITYARD_METRICS_LISTEN"] == "0.0.0.0:9464"
    assert chart_values["s3"]["accessKey"] == chart_values["s3"]["secretKey"] == ""
    # production reads the credentials from a Secret it does not create
    assert not by_kind(renders["prod"], "Secret").get("fy-fityard-s3")
    assert not by_kind(renders["prod"], "Secret").get("fy-fityard-api-keys")


def test_every_fityard_name_in_the_chart_is_a_setting_and_no_secret_is_configured(renders):
    known = service_settings() | {bus.JOBS_STREAM}
    for path in sorted(CHART.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".tpl", ".txt", ".md"):
            unknown = sorted(names_in(path.read_text()) - known)
            assert not unknown, f"{path.relative_to(CHART)} names what no service reads: {unknown}"
    secrets = {declared.env for declared in SCHEMA.settings if declared.secret}
    for name in ("dev", "prod"):
        config = by_kind(renders[name], "ConfigMap")["fy-fityard"]
        assert not secrets & config["data"].keys(), name


def _secret_refs(docs, component: str) -> set[str]:
    spec = by_kind(docs, "Deployment")[f"fy-fityard-{component}"]["spec"]["template"]["spec"]
    return {e["secretRef"]["name"] for e in spec["containers"][0]["envFrom"] if "secretRef" in e}


def test_nats_wants_a_token_that_fityards_pods_have(renders):
    """The subchart's nats-server requires a token it reads from a Secret
    the chart makes (random, kept across upgrades); fityard's three
    services read the same Secret; an external NATS's token is a Secret the
    user names, or none."""
    for name in ("dev", "prod"):
        docs = renders[name]
        config = by_kind(docs, "ConfigMap")["fy-nats-config"]["data"]["nats.conf"]
        assert '"token": $FITYARD_NATS_TOKEN' in config
        (nats,) = by_kind(docs, "StatefulSet")["fy-nats"]["spec"]["template"]["spec"]["containers"][
            :1
        ]
        (env,) = [e for e in nats["env"] if e["name"] == "FITYARD_NATS_TOKEN"]
        secret = env["valueFrom"]["secretKeyRef"]
        made = by_kind(docs, "Secret")[secret["name"]]
        assert len(base64.b64decode(made["data"][secret["key"]])) == 40
        for component in FITYARD:
            assert secret["name"] in _secret_refs(docs, component), component
    external = renders["prod-external-nats"]
    assert "fityard-nats-token" not in by_kind(external, "Secret")
    assert not any("nats" in ref for ref in _secret_refs(external, "trainer"))
    assert "FITYARD_NATS_TOKEN" not in by_kind(renders["prod"], "ConfigMap")["fy-fityard"]["data"]


def test_the_gateway_and_the_scheduler_share_an_internal_token_no_one_else_has(renders):
    """The scheduler listens beyond loopback, so it needs the token (it
    would not start without): a Secret the chart makes with a random token,
    given to the gateway and the scheduler only, never in the ConfigMap."""
    for name in ("dev", "prod"):
        docs = renders[name]
        secret = by_kind(docs, "Secret")["fy-fityard-internal"]
        assert len(base64.b64decode(secret["data"]["FITYARD_INTERNAL_TOKEN"])) == 40
        assert "FITYARD_INTERNAL_TOKEN" not in by_kind(docs, "ConfigMap")["fy-fityard"]["data"]
        for component in FITYARD:
            spec = by_kind(docs, "Deployment")[f"fy-fityard-{component}"]["spec"]["template"]
            refs = {
                e["secretRef"]["name"]
                for e in spec["spec"]["containers"][0]["envFrom"]
                if "secretRef" in e
            }
            assert ("fy-fityard-internal" in refs) == (component in ("gateway", "scheduler")), (
                component
            )


def test_the_gateway_requires_api_keys_from_a_secret(renders):
    """The gateway listens beyond loopback, so it must have keys (it would
    not start without): the keys file is a Secret, mounted read-only where
    FITYARD_API_KEYS_FILE says, readable by the pod's group only. The
    predictors serve the same callers: the same Secret, mounted alike."""
    for name, secret in [("dev", "fy-fityard-api-keys"), ("prod", "fityard-api-keys")]:
        docs = renders[name]
        config = by_kind(docs, "ConfigMap")["fy-fityard"]["data"]
        for component in ("gateway", "predictor"):
            pod = by_kind(docs, "Deployment")[f"fy-fityard-{component}"]["spec"]["template"]
            pod = pod["spec"]
            (volume,) = [v for v in pod["volumes"] if v["name"] == "api-keys"]
            assert volume["secret"]["secretName"] == secret, component
            assert volume["secret"]["defaultMode"] == 0o440
            (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-keys"]
            assert mount["readOnly"] is True
            assert config["FITYARD_API_KEYS_FILE"] == f"{mount['mountPath']}/api-keys"
        assert config["FITYARD_GATEWAY_LISTEN"] == "0.0.0.0:50051"
    made = by_kind(renders["dev"], "Secret")["fy-fityard-api-keys"]
    assert made["stringData"]["api-keys"] == KEYS_FILE


def test_a_missing_secret_or_store_or_nats_is_refused_at_render_time(chart):
    with pytest.raises(Exception, match=r"s3.accessKey \(or s3.existingSecret\) is required"):
        helm.render(chart, values("values-dev.yaml"))
    with pytest.raises(Exception, match=r"apiKeys.file .* or apiKeys.existingSecret is required"):
        helm.render(chart, values("values-dev.yaml", {"s3": SECRETS["s3"]}))
    with pytest.raises(Exception, match="s3.endpoint is required"):
        helm.render(chart, values("values-prod.yaml", {"s3": {"endpoint": ""}}))
    with pytest.raises(Exception, match="nats.url is required"):
        helm.render(chart, values("values-prod.yaml", {"nats": {"enabled": False}}))
    with pytest.raises(Exception, match="gateway.ingress.host is required"):
        ingress = {"gateway": {"ingress": {"enabled": True, "host": ""}}}
        helm.render(chart, values("values-prod.yaml", ingress))


def test_helm_lint_strict_finds_nothing_but_the_missing_icon(chart):
    for name in ("dev", "prod"):
        report = helm_sdk.lint(
            str(chart),
            values(*RENDERS[name]),
            strict=True,
            namespace=helm.NAMESPACE,
            kube_version="v1.30.0",
        )
        assert not report["errors"], report
        assert [m["error"] for m in report["messages"]] == ["icon is recommended"], report


def test_checkov_finds_nothing_left_unexplained(renders, tmp_path):
    """checkov's Kubernetes checks on the renders (NATS's included): nothing
    fails; what the chart decides against (pull policy, secrets as env, a
    tag without a digest, probes on NATS's reloader sidecar) is skipped by
    annotation, each skip with its reason."""
    for name in ("dev", "prod", "prod-ingress"):
        docs = renders[name]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(docs))
        for doc in docs:
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert check.startswith("CKV") and len(reason) > 20, (doc["kind"], value)
    done = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--quiet", "-o", "json"]
        + ["--skip-download"],  # no Prisma Cloud: the checks it ships with
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
    assert sum(r["summary"]["passed"] for r in reports) > 800
    assert sum(r["summary"]["resource_count"] for r in reports) >= 50
