"""Kubernetes manifests of the service processes (infra/k8s/services.yaml), from the declarations.

One Deployment and one Service per declared service (services/*/manifest.py): the image built from
infra/docker/Dockerfile runs `python -m services.launcher --only <name>`; liveness on
/health/live and readiness on /health/ready at the process's health port (its HTTP port, or its
METRICS_PORT); Prometheus scrape annotations on the pod. The servers (RabbitMQ and MongoDB
StatefulSets, infra/k8s/rabbitmq.yaml and mongodb.yaml), the shared configuration and the
kustomization are hand-written beside it.

Every service can be scaled (`kubectl scale deployment/<name> --replicas=N`): the processes of one
service consume the same queues as competing consumers, and a fact is applied once whichever
process takes it (tests/integration/test_competing_consumers.py shows it for personnel). A
partitioned service (a `partition_key`, services/kernel/partitions.py) is a StatefulSet instead, of
PARTITIONS[service] pods: each pod's PARTITION is its pod index (the `apps.kubernetes.io/pod-index`
label, Kubernetes ≥ 1.28), so pod i owns partition i; scale it by changing PARTITIONS in zhifa-env
and the StatefulSet's replicas together.

    python -m services.kernel.k8s           # rewrite infra/k8s/services.yaml
    python -m services.kernel.k8s --check   # exit 1 when it drifted from the manifests
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

from services.kernel import partitions
from services.kernel.manifest import ServiceManifest, manifests

ROOT = Path(__file__).resolve().parent.parent.parent
K8S = ROOT / "infra" / "k8s"
SERVICES_FILE = K8S / "services.yaml"
IMAGE = "zhifa:local"
HEADER = """\
# GENERATED from the service manifests (services/*/manifest.py) by `python -m services.kernel.k8s`;
# do not edit by hand (tests/unit/test_k8s.py fails when this file drifts from the declarations).
# One Deployment (a StatefulSet when partitioned) + Service per declared service; the servers are in rabbitmq.yaml and
# mongodb.yaml, the shared environment in config.yaml (ConfigMap zhifa-env, Secret zhifa-secrets).
"""


def _probe(path: str, port: int, period: int, failures: int, initial: int) -> list[str]:
    return [f"              path: {path}", f"              port: {port}", f"            initialDelaySeconds: {initial}",
            f"            periodSeconds: {period}", "            timeoutSeconds: 5", f"            failureThreshold: {failures}"]


def deployment(m: ServiceManifest) -> str:
    """Deployment and Service of one declared service."""
    labels = f"app.kubernetes.io/name: zhifa-{m.name}\n"
    port = m.health_port
    parts = partitions.count_for(m)
    lines = [
        "apiVersion: apps/v1",
        "kind: StatefulSet" if m.partition_key else "kind: Deployment",
        "metadata:",
        f"  name: {m.name}",
        "  labels:",
        "    app.kubernetes.io/part-of: zhifa",
        f"    app.kubernetes.io/name: zhifa-{m.name}",
        "spec:",
    ]
    if m.partition_key:
        lines += [f"  replicas: {parts}   # = PARTITIONS for {m.name} in zhifa-env: pod i owns partition i; change both together",
                  f"  serviceName: {m.name}",
                  "  podManagementPolicy: Parallel"]
    else:
        lines += ["  replicas: 1   # scale freely: the processes of a service are competing consumers of its queues"]
    lines += [
        "  selector:",
        "    matchLabels:",
        f"      {labels.strip()}",
        "  template:",
        "    metadata:",
        "      labels:",
        "        app.kubernetes.io/part-of: zhifa",
        f"        app.kubernetes.io/name: zhifa-{m.name}",
    ]
    if port:
        lines += ["      annotations:", '        prometheus.io/scrape: "true"', f'        prometheus.io/port: "{port}"',
                  "        prometheus.io/path: /metrics"]
    lines += [
        "    spec:",
        "      terminationGracePeriodSeconds: 30   # nameko finishes running workers on SIGTERM",
        "      containers:",
        f"        - name: {m.name}",
        f"          image: {IMAGE}",
        "          imagePullPolicy: IfNotPresent",
        f'          args: ["--only", "{m.name}"]',
        "          envFrom:",
        "            - configMapRef:",
        "                name: zhifa-env",
        "            - secretRef:",
        "                name: zhifa-secrets",
    ]
    env = []
    if m.partition_key:
        env += ["            - name: PARTITION   # the pod's index: the partition it owns (kernel/partitions.py)",
                "              valueFrom:", "                fieldRef:",
                "                  fieldPath: metadata.labels['apps.kubernetes.io/pod-index']"]
    if port:
        env += ["            - name: HEALTH_PORT", f'              value: "{port}"']
    if env:
        lines += ["          env:", *env]
    if port:
        lines += [
                  "          ports:", f"            - name: {'http' if m.http_facing else 'metrics'}",
                  f"              containerPort: {port}",
                  "          livenessProbe:   # the process runs its containers; restart it when not",
                  "            httpGet:", *_probe("/health/live", port, 10, 3, 20),
                  "          readinessProbe:  # containers running, database and broker answering",
                  "            httpGet:", *_probe("/health/ready", port, 5, 3, 10)]
    lines += ["          resources:",
              "            requests: {cpu: 100m, memory: 128Mi}",
              "            limits: {memory: 256Mi}   # issue 14's target: peak RSS ≤ 200 MB per process"]
    if port:
        lines += [
            "---",
            "apiVersion: v1",
            "kind: Service",
            "metadata:",
            f"  name: {m.name}",
            "  labels:",
            "    app.kubernetes.io/part-of: zhifa",
            "spec:",
            "  selector:",
            f"    app.kubernetes.io/name: zhifa-{m.name}",
            "  ports:",
            f"    - name: {'http' if m.http_facing else 'metrics'}",
            f"      port: {port}",
            f"      targetPort: {port}",
        ]
    return "\n".join(lines)


def render(declared: Iterable[ServiceManifest] | None = None) -> str:
    declared = manifests() if declared is None else declared
    return HEADER + "".join(f"---\n# {m.name}: {m.title}\n{deployment(m)}\n" for m in declared)


def drifted() -> bool:
    return not SERVICES_FILE.exists() or SERVICES_FILE.read_text(encoding="utf-8") != render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.kernel.k8s", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if infra/k8s/services.yaml drifted")
    args = parser.parse_args(argv)
    if args.check:
        if drifted():
            sys.stderr.write("infra/k8s/services.yaml 与服务声明不一致，请运行：python -m services.kernel.k8s\n")
            return 1
        return 0
    SERVICES_FILE.parent.mkdir(parents=True, exist_ok=True)
    SERVICES_FILE.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
