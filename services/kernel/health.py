"""Health of the whole suite: every declared service process's /health, asked in parallel.

Each process answers for itself (services/kernel/metrics.py `health()`); this asks all of them,
so an operator's view (the API service's health route, `make run`) lists exactly the declared
services — a new service appears with no edit here.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from services.kernel.manifest import health_targets


def probe(url: str, timeout: float = 2.0) -> dict:
    """One process's answer: {"status": "ok" | "degraded" | "unreachable", "url", ["services"]}."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body, code = resp.read(), resp.status
    except urllib.error.HTTPError as exc:  # 503: the process answers but is not healthy
        body, code = exc.read(), exc.code
    except (OSError, ValueError) as exc:
        return {"status": "unreachable", "url": url, "error": type(exc).__name__}
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    status = "ok" if code == 200 and doc.get("status", "ok") == "ok" else "degraded"
    return {"status": status, "url": url, **({"services": doc["services"]} if "services" in doc else {})}


def suite_health(host: str = "127.0.0.1", timeout: float = 2.0) -> tuple[int, dict]:
    """(200 | 503, {"status", "services": {name: probe}}) over every declared service process."""
    targets = health_targets(host)
    if not targets:
        return 503, {"status": "degraded", "services": {}}
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        answers = dict(zip(targets, pool.map(lambda url: probe(url, timeout), targets.values())))
    ok = all(a["status"] == "ok" for a in answers.values())
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "services": answers}
