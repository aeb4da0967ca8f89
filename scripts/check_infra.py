"""Static checks of the Docker/monitoring files (no Docker engine needed): `make check-infra`.

YAML/JSON syntax, plus the cross-references that break silently: compose services and mounts,
Prometheus rule files and targets, alert rule fields, Grafana datasource uid used by the dashboard.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from services.kernel.manifest import manifests  # noqa: E402  (the declared services)

DECLARED = manifests()
errors: list[str] = []


def check(cond: bool, msg: str) -> None:
    if not cond:
        errors.append(msg)


def load_yaml(rel: str):
    with open(ROOT / rel, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


compose = load_yaml("docker-compose.yml")
services = compose.get("services", {})
for name in ("rabbitmq", "mongo", *(m.name for m in DECLARED), "prometheus", "grafana"):
    check(name in services, f"docker-compose.yml: service {name!r} missing")
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        src = vol.split(":", 1)[0]
        if src.startswith("./"):
            check((ROOT / src).exists(), f"docker-compose.yml: {name} mounts missing {src}")
    build = svc.get("build")
    if build:
        check((ROOT / build["context"] / build["dockerfile"]).exists(), f"docker-compose.yml: {name} Dockerfile missing")
for name in (m.name for m in DECLARED):
    cmd = services.get(name, {}).get("command", [])
    check(cmd == ["--only", name], f"docker-compose.yml: {name} command should be ['--only', {name!r}], is {cmd}")

prom = load_yaml("infra/prometheus/prometheus.yml")
check(any(f.endswith("alerts.yml") for f in prom.get("rule_files", [])), "prometheus.yml: alerts.yml not in rule_files")
targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
for t in (f"{m.name}:{m.health_port}" for m in DECLARED if m.health_port):
    check(t in targets, f"prometheus.yml: target {t} missing")

alerts = load_yaml("infra/prometheus/alerts.yml")
names = set()
for group in alerts["groups"]:
    for rule in group["rules"]:
        n = rule.get("alert", "?")
        check(n not in names, f"alerts.yml: duplicate alert {n}")
        names.add(n)
        check(bool(rule.get("expr")), f"alerts.yml: {n} has no expr")
        check(rule.get("labels", {}).get("severity") in ("warning", "critical"), f"alerts.yml: {n} severity")
        check(bool(rule.get("annotations", {}).get("summary")), f"alerts.yml: {n} has no summary")
        expr = rule.get("expr", "")
        check(expr.count("(") == expr.count(")"), f"alerts.yml: {n} unbalanced parentheses")
all_exprs = " ".join(r["expr"] for g in alerts["groups"] for r in g["rules"])
for metric in ("zhifa_dead_letters_total", "zhifa_ingress_rejected_total", "zhifa_entrypoint_errors_total",
               "zhifa_entrypoint_latency_seconds_bucket", "zhifa_findings_open", "up =="):
    check(metric in all_exprs, f"alerts.yml: no rule uses {metric}")

ds = load_yaml("infra/grafana/provisioning/datasources/prometheus.yml")
uids = {d["uid"] for d in ds["datasources"]}
prov = load_yaml("infra/grafana/provisioning/dashboards/zhifa.yml")
check(bool(prov.get("providers")), "grafana dashboards provider missing")
dash_files = sorted((ROOT / "infra/grafana/dashboards").glob("*.json"))
check(bool(dash_files), "no Grafana dashboard JSON")
for f in dash_files:
    dash = json.loads(f.read_text(encoding="utf-8"))
    check(bool(dash.get("uid")), f"{f.name}: no uid")
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            continue
        uid = (p.get("datasource") or {}).get("uid")
        check(uid in uids, f"{f.name}: panel {p.get('title')!r} uses datasource uid {uid!r}, provisioned: {uids}")
        for t in p.get("targets", []):
            check(t.get("expr", "").count("(") == t.get("expr", "").count(")"),
                  f"{f.name}: panel {p.get('title')!r} unbalanced parentheses")

if errors:
    print("\n".join(f"check-infra: {e}" for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"check-infra: ok (compose services: {len(services)}, alert rules: {len(names)}, dashboards: {len(dash_files)})")
