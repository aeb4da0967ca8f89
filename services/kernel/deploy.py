"""The generated parts of docker-compose.yml and infra/prometheus/prometheus.yml, from the manifests
(and infra/k8s/services.yaml, services/kernel/k8s.py).

One container per declared service process (`python -m services.launcher --only <name>`, health
checked on its health port; a partitioned service's partition i > 0 is `<name>-<i+1>`, with its
PARTITION) and one Prometheus target per service process. The generated text sits between
`# BEGIN generated` / `# END generated` markers; everything else in those files is hand-written.

    python -m services.kernel.deploy           # rewrite both files' generated parts
    python -m services.kernel.deploy --check   # exit 1 when either file drifted from the manifests
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

from services.kernel.manifest import ServiceManifest, manifests, service_processes

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "infra" / "prometheus" / "prometheus.yml"
BEGIN = "# BEGIN generated from the service manifests (python -m services.kernel.deploy)"
END = "# END generated"


def compose_services(declared: Iterable[ServiceManifest]) -> str:
    """Service entries of docker-compose.yml (indented under `services:`)."""
    out = []
    for m, name, partition, port in _processes(declared):
        lines = [f"  {container(name)}:", "    <<: *zhifa-process", f'    command: ["--only", "{name}"]',
                 "    environment:", "      <<: *zhifa-env"]
        if partition is not None:
            lines.append(f'      PARTITION: "{partition}"')
        if port:
            lines.append(f'      HEALTH_PORT: "{port}"')
        if m.http_facing and port:
            lines += ["    ports:", f'      - "127.0.0.1:{port}:{port}"']
        if port:
            lines.append("    healthcheck: *zhifa-health")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _processes(declared: Iterable[ServiceManifest]) -> list[tuple[ServiceManifest, str, int | None, int | None]]:
    """(declaration, process name, partition, health port) of every service process: one per service, one
    per partition of a partitioned one (kernel/manifest.py `service_processes`)."""
    return [(m, name, partition, port) for m in declared for name, partition, port in service_processes(m)]


def container(process: str) -> str:
    """A process's compose service (and host) name: `penalty#2` is `penalty-2` ('#' is not allowed there)."""
    return process.replace("#", "-")


def compose_prometheus_depends(declared: Iterable[ServiceManifest]) -> str:
    return "\n".join(["    depends_on:", *(f"      - {container(name)}" for _, name, _, _ in _processes(declared))])


def prometheus_targets(declared: Iterable[ServiceManifest]) -> str:
    """`static_configs` of the `zhifa` job: one target per service process that serves /metrics."""
    lines = ["    static_configs:"]
    for _, name, _, port in _processes(declared):
        if port:
            lines += [f'      - targets: ["{container(name)}:{port}"]', f"        labels: {{process: {name if name.isidentifier() else repr(name)}}}"]
    return "\n".join(lines)


def _replace_blocks(text: str, blocks: list[str], where: Path) -> str:
    """Replace the n-th marked block of `text` with blocks[n] (indentation of the marker kept)."""
    out, rest = [], text
    for block in blocks:
        start = rest.find(BEGIN)
        end = rest.find(END, start)
        if start < 0 or end < 0:
            raise SystemExit(f"{where}: missing '{BEGIN}' / '{END}' markers")
        line_start = rest.rfind("\n", 0, start) + 1
        indent = rest[line_start:start]
        out.append(rest[:start] + BEGIN + "\n" + block + "\n" + indent)
        rest = rest[end:]
    out.append(rest)
    return "".join(out)


def render_compose(text: str, declared: tuple[ServiceManifest, ...] | None = None) -> str:
    declared = manifests() if declared is None else declared
    return _replace_blocks(text, [compose_services(declared), compose_prometheus_depends(declared)], COMPOSE)


def render_prometheus(text: str, declared: tuple[ServiceManifest, ...] | None = None) -> str:
    declared = manifests() if declared is None else declared
    return _replace_blocks(text, [prometheus_targets(declared)], PROMETHEUS)


def drifted() -> list[Path]:
    """Files whose generated parts differ from what the manifests say now (infra/k8s/services.yaml too)."""
    from services.kernel import k8s

    return [path for path, render in ((COMPOSE, render_compose), (PROMETHEUS, render_prometheus))
            if render(path.read_text(encoding="utf-8")) != path.read_text(encoding="utf-8")] + \
        ([k8s.SERVICES_FILE] if k8s.drifted() else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.kernel.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file drifted from the manifests")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted()
        for path in stale:
            sys.stderr.write(f"{path.relative_to(ROOT)} 与服务声明不一致，请运行：python -m services.kernel.deploy\n")
        return 1 if stale else 0
    for path, render in ((COMPOSE, render_compose), (PROMETHEUS, render_prometheus)):
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    from services.kernel import k8s

    return k8s.main([])


if __name__ == "__main__":
    sys.exit(main())
