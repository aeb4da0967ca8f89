"""Health of the whole suite: every declared service process's /health, asked in parallel.

Each process answers for itself (services/kernel/metrics.py `health()`); this asks all of them, so the
operator's view (the API's `GET /api/v1/suite-health`, the console's 运维 page) lists exactly the declared
service processes — a new service appears with no edit here. Where the processes are reached is
SUITE_HEALTH_LAYOUT (kernel/manifest.py `health_targets`: one machine, docker compose or Kubernetes).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from services.kernel.manifest import health_targets, manifests, service_of


def probe(url: str, timeout: float = 2.0) -> dict:
    """One process's answer: {"status": "ok" | "degraded" | "unreachable", "url", ["services"],
    ["dependencies"], ["plugins"]} — its containers, its dependencies (database, broker) and its isolated
    plugin failures as it reported them; "error" names why an unreachable one was not heard."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body, code = resp.read(), resp.status
    except urllib.error.HTTPError as exc:  # 503: the process answers but is not healthy
        body, code = exc.read(), exc.code
    except (OSError, ValueError) as exc:  # (urllib wraps a refused or unresolvable address in URLError)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, Exception) else exc
        return {"status": "unreachable", "url": url, "error": type(reason).__name__}
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    status = "ok" if code == 200 and doc.get("status", "ok") == "ok" else "degraded"
    return {"status": status, "url": url,
            **{key: doc[key] for key in ("services", "dependencies", "plugins") if isinstance(doc.get(key), dict)}}


def suite_health(host: str = "127.0.0.1", timeout: float = 2.0, layout: str = "local") -> tuple[int, dict]:
    """(200 | 503, {"status", "services": {name: probe}}) over every declared service process."""
    targets = health_targets(host, layout)
    if not targets:
        return 503, {"status": "degraded", "services": {}}
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        answers = dict(zip(targets, pool.map(lambda url: probe(url, timeout), targets.values())))
    ok = all(a["status"] == "ok" for a in answers.values())
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "services": answers}


def suite_report(layout: str = "local", timeout: float = 2.0) -> dict:
    """The operator's table: {"status", "layout", "processes": [{"process", "service", "title", "status",
    "url", ["services"], ["dependencies"], ["plugins"], ["error"]}]} in the declarations' order (a partition's process
    under its service's title)."""
    _, doc = suite_health(timeout=timeout, layout=layout)
    titles = {m.name: m.title for m in manifests()}
    rows = []
    for name, answer in doc["services"].items():
        service = service_of(name)
        rows.append({"process": name, "service": service, "title": titles.get(service, service), **answer})
    return {"status": doc["status"], "layout": layout, "processes": rows}
