"""infra/k8s: the generated Deployments follow the manifests, and every file has a sound structure.

No cluster here: the YAML is parsed and checked for what `kubectl apply` and the suite rely on
(kinds, names, selectors matching pod labels, probes on /health/live and /health/ready at the
declared health port, Prometheus scrape annotations, StatefulSets with a headless Service and
storage, the MongoDB replica set, RabbitMQ's quorum queues).
"""
from pathlib import Path

import pytest
import yaml

from services.kernel import k8s
from services.kernel.manifest import manifests

K8S = Path(k8s.__file__).resolve().parents[2] / "infra" / "k8s"


def docs(name):
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def everything():
    kustomization = docs("kustomization.yaml")[0]
    return {name: docs(name) for name in kustomization["resources"]}


def by_kind(kind):
    return {d["metadata"]["name"]: d for ds in everything().values() for d in ds if d["kind"] == kind}


def test_generated_services_file_is_in_sync_with_the_manifests():
    assert not k8s.drifted(), "run: python -m services.kernel.k8s"


def test_every_resource_is_listed_and_well_formed():
    listed = set(docs("kustomization.yaml")[0]["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    for name, ds in everything().items():
        for d in ds:
            assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), (name, d)


def test_one_deployment_per_declared_service_with_probes_and_scrape_annotations():
    deployments = {**by_kind("Deployment"), **{n: d for n, d in by_kind("StatefulSet").items() if n not in ("rabbitmq", "mongodb")}}
    services = by_kind("Service")
    assert set(deployments) == {m.name for m in manifests()}
    for m in manifests():
        d = deployments[m.name]
        assert d["kind"] == ("StatefulSet" if m.partition_key else "Deployment")
        pod = d["spec"]["template"]
        assert d["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        [container] = pod["spec"]["containers"]
        assert container["args"] == ["--only", m.name]
        port = m.health_port
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": port}
        assert [p["containerPort"] for p in container["ports"]] == [port]
        notes = pod["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/port"] == str(port)
        assert {"configMapRef": {"name": "zhifa-env"}} in container["envFrom"]
        svc = services[m.name]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert svc["spec"]["ports"][0]["targetPort"] == port


@pytest.mark.parametrize("name", ["rabbitmq", "mongodb"])
def test_servers_are_statefulsets_with_a_headless_service_and_storage(name):
    sts = by_kind("StatefulSet")[name]
    headless = by_kind("Service")[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert headless["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["replicas"] == 3
    [claim] = sts["spec"]["volumeClaimTemplates"]
    [container] = sts["spec"]["template"]["spec"]["containers"]
    assert claim["metadata"]["name"] in {v["name"] for v in container["volumeMounts"]}


def test_mongodb_runs_a_replica_set_and_the_services_use_it():
    [container] = by_kind("StatefulSet")["mongodb"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["--replSet", "rs0"]
    uri = by_kind("ConfigMap")["zhifa-env"]["data"]["MONGO_URI"]
    assert "replicaSet=rs0" in uri and uri.count("mongodb-") == 3
    init = by_kind("Job")["mongodb-rs-init"]["spec"]["template"]["spec"]["containers"][0]
    assert "rs.initiate" in " ".join(init["command"])


def test_rabbitmq_declares_quorum_queues_by_default():
    import json

    data = by_kind("ConfigMap")["rabbitmq-config"]["data"]
    definitions = json.loads(data["definitions.json"])
    assert definitions["vhosts"][0]["metadata"]["default_queue_type"] == "quorum"
    assert "load_definitions = /etc/rabbitmq/definitions.json" in data["rabbitmq.conf"]


def test_a_new_declaration_gets_a_deployment():
    from services.kernel.manifest import ServiceManifest

    extra = ServiceManifest(name="extra", title="示例", service="x.service:X", metrics_port=9199)
    [deployment, service] = [d for d in yaml.safe_load_all(k8s.render((extra,))) if d]
    assert deployment["metadata"]["name"] == "extra"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == 9199
    assert service["spec"]["ports"][0]["port"] == 9199


def test_a_partitioned_service_is_a_statefulset_whose_pod_index_is_its_partition():
    """Pod i of penalty's StatefulSet owns partition i (kernel/partitions.py): PARTITION from the pod-index
    label, as many pods as PARTITIONS gives it."""
    from services.kernel import partitions

    sts = by_kind("StatefulSet")["penalty"]
    assert sts["spec"]["replicas"] == partitions.count("penalty") == 2
    assert sts["spec"]["serviceName"] in by_kind("Service")
    [container] = sts["spec"]["template"]["spec"]["containers"]
    [index] = [e for e in container["env"] if e["name"] == "PARTITION"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert "penalty" not in by_kind("Deployment")
