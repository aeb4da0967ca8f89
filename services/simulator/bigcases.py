"""Many cases for the API's latency target (issue 14: p95 ≤ 150 ms for the console's list queries
with 1,000,000 cases): fill a penalty database, then time `GET /api/v1/cases` through the API.

    python -m services.simulator.bigcases --templates zhifa_benchXXXX_penalty --count 1000000

Cases are written directly in the penalty store's shape: real case documents (written by the
penalty service, e.g. a `make bench` run with --keep-data) are the templates; each copy gets a
new `_id`, case number and fact ids, and its department from the templates' departments, so
filters by department and stage select realistic shares. Writes go in `insert_many` batches of at
most 50 (FerretDB v1 once hung on a bulk write of 100). Filling is resumable: it continues from
the cases already in the database.

Then the penalty and api processes are started against that database prefix (nothing else), a
machine account (supervisor) is created, and each list query is called `--repeat` times; p50 /
p95 / max are printed with the conditions (cores, load before → after) and written to JSON
(default .run/bench/api-cases.json). The list answers `total` from `count_documents` of the
filter: what the target is about. Run it against a database server of its own (e.g. the `run`
profile's, not the one the tests share): on FerretDB v1 those counts and sorts scan every case
document, and a server busy with them slows everyone else's queries.
"""
from __future__ import annotations

import argparse
import copy
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import requests

from services.simulator.bench import (ROOT, Broker, free_port, git_commit, load_average, log, machine, percentiles,
                                      with_vhost)
from services.simulator.publish import DEFAULT_AMQP_URI
from services.simulator.report import write_json

BATCH_MAX = 50  # FerretDB v1 hung on a bulk write of 100


def templates(client, db_name: str, limit: int = 200) -> list[dict]:
    docs = list(client[db_name].cases.find({}).limit(limit))
    if not docs:
        raise SystemExit(f"bigcases: no case documents in {db_name} to copy")
    return docs


def copy_case(template: dict, n: int, tag: str, depts: list[str]) -> dict:
    doc = copy.deepcopy(template)
    doc["_id"] = f"{tag}-{n:07d}"
    dept = depts[n % len(depts)]
    doc["dept"] = dept
    snap = doc.get("snapshot") or {}
    snap["case_no"] = f"{dept}-{tag}-{n:07d}"
    if "dept" in snap:
        snap["dept"] = dept
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{n}/{i}")) for i, _ in enumerate(doc.get("fact_ids") or ())]
    doc["fact_ids"] = ids
    for fact, new_id in zip(doc.get("facts") or (), ids):
        fact["event_id"] = new_id
    doc["outbox"], doc["outbox_pending"] = [], False
    return doc


def fill(client, db_name: str, tmpl: list[dict], count: int, batch: int, tag: str) -> dict:
    """Insert copies until `db_name.cases` holds `count` cases; resumable."""
    batch = max(1, min(batch, BATCH_MAX))
    cases = client[db_name].cases
    have = cases.estimated_document_count()
    depts = sorted({t.get("dept") for t in tmpl if t.get("dept")}) or ["511322-scjg"]
    started, n = time.monotonic(), have
    log(f"fill: {db_name}.cases holds {have}; writing up to {count} in batches of {batch}")
    while n < count:
        docs = [copy_case(tmpl[(n + i) % len(tmpl)], n + i, tag, depts) for i in range(min(batch, count - n))]
        cases.insert_many(docs, ordered=False)
        n += len(docs)
        if n % 20000 < batch:
            rate = (n - have) / max(1e-9, time.monotonic() - started)
            log(f"fill: {n}/{count} ({rate:.0f} cases/s)")
    seconds = time.monotonic() - started
    return {"had": have, "count": n, "written": n - have, "seconds": round(seconds, 1),
            "cases_per_s": round((n - have) / seconds, 1) if seconds > 0 and n > have else None,
            "template_count": len(tmpl), "depts": depts,
            "avg_template_bytes": round(sum(len(str(t)) for t in tmpl) / len(tmpl))}


class Processes:
    """The penalty and api processes against one database prefix, stopped on exit."""

    def __init__(self, prefix: str, log_dir: Path):
        self.prefix, self.log_dir, self.procs = prefix, log_dir, {}
        self.api = f"127.0.0.1:{free_port()}"

    def __enter__(self) -> "Processes":
        from services.launcher import command, processes, wait_healthy

        self.log_dir.mkdir(parents=True, exist_ok=True)
        table = processes()
        base = {**os.environ, "DB_PREFIX": self.prefix, "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "ACCESS_LOG_LEVEL": "WARNING"}
        penalty_port = free_port()
        plan = {"penalty": ({"METRICS_PORT": str(penalty_port), "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"},
                            f"http://127.0.0.1:{penalty_port}/health"),
                "api": ({"WEB_SERVER_ADDRESS": self.api, "API_WEB_SERVER_ADDRESS": self.api, "METRICS_PORT": "0",
                         "API_COOKIE_SECURE": "false"}, f"http://{self.api}/health/live")}
        for name, (extra, _) in plan.items():
            out = open(self.log_dir / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen(command(table[name]), env={**base, **extra}, stdout=out,
                                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        for name, (_, url) in plan.items():
            if not wait_healthy(url, timeout=120, proc=self.procs[name]):
                self.__exit__()
                raise SystemExit(f"bigcases: {name} did not start; see {self.log_dir / (name + '.log')}")
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def machine_token(client, prefix: str) -> str:
    from services.api import accounts
    from services.kernel.clock import utcnow

    db = client[f"{prefix}api"]
    name = f"bench-{uuid.uuid4().hex[:6]}"
    return accounts.create_user(db, name, "supervisor", utcnow(), kind="machine")["token"]


def time_queries(base: str, token: str, queries: dict[str, dict], repeat: int, timeout: float) -> dict:
    out = {}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for name, params in queries.items():
        times, status, total = [], {}, None  # times of answers with 200 only; failures counted apart
        for _ in range(repeat):
            started = time.monotonic()
            try:
                resp = session.get(f"{base}/api/v1/cases", params=params, timeout=timeout)
                code = resp.status_code
                if code == 200:
                    total = resp.json().get("total")
            except requests.RequestException as exc:
                code = type(exc).__name__
            if code == 200:
                times.append(time.monotonic() - started)
            status[str(code)] = status.get(str(code), 0) + 1
            if code != 200 and not times:
                # the first call failed: repeating only piles more scans on the database server (a
                # timed-out RPC's query keeps running there), so this query is reported failed as is
                break
        out[name] = {"params": params, "status": status, "total": total, "calls": sum(status.values()),
                     "failed": sum(status.values()) - len(times),
                     **percentiles(times)}
        log(f"{name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms, max {out[name]['max_ms']} ms "
            f"(total {total}, {status})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator.bigcases", description=__doc__.splitlines()[0])
    parser.add_argument("--templates", required=True, help="penalty database holding real case documents")
    parser.add_argument("--prefix", default="zhifa_bigcases_", help="DB_PREFIX of the filled database")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH_MAX)
    parser.add_argument("--repeat", type=int, default=20, help="calls per query")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--target-p95-ms", type=float, default=150.0)
    parser.add_argument("--out", default=str(ROOT / ".run" / "bench" / "api-cases.json"))
    args = parser.parse_args(argv)
    # stopped from outside (a timeout, Ctrl-C): still stop the processes started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import pymongo

    mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args),
                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmpl = templates(client, args.templates)
    results["fill"] = fill(client, f"{args.prefix}penalty", tmpl, args.count, args.batch,
                           urllib.parse.quote(args.prefix.strip("_"), safe=""))
    dept, stage = results["fill"]["depts"][0], (tmpl[0].get("snapshot") or {}).get("stage")
    queries = {"list": {"limit": 50}, "list_dept": {"dept": dept, "limit": 50},
               "list_stage": {"stage": stage, "limit": 50} if stage else {"limit": 50},
               "list_overdue": {"overdue": "true", "limit": 50}, "list_deep_page": {"limit": 50, "offset": 100000}}
    load_before = load_average()
    amqp_uri, mgmt = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), os.environ.get("RABBIT_MGMT_URI")
    broker, vhost = (Broker(mgmt), f"zhifa-bigcases-{uuid.uuid4().hex[:6]}") if mgmt else (None, None)
    if broker:  # a vhost of its own: the processes started here consume nobody else's queues
        broker.create_vhost(vhost, urllib.parse.urlsplit(amqp_uri).username or "guest")
        os.environ["AMQP_URI"] = with_vhost(amqp_uri, vhost)
    try:
        with Processes(args.prefix, ROOT / ".run" / "bench" / "bigcases") as procs:
            token = machine_token(client, args.prefix)
            results["queries"] = time_queries(f"http://{procs.api}", token, queries, args.repeat, args.timeout)
    finally:
        if broker:
            os.environ["AMQP_URI"] = amqp_uri
            broker.delete_vhost(vhost)
    results["conditions"] = {"cores": os.cpu_count(), "load_before": load_before, "load_after": load_average(),
                             "git_commit": git_commit()}
    cases = results["fill"]["count"]
    print(f"\nAPI 案件列表延迟（{cases} 个案件；{results['conditions']['cores']} 核，负载 {load_before} → "
          f"{results['conditions']['load_after']}）")
    for name, q in results["queries"].items():
        met = q["p95_ms"] is not None and q["p95_ms"] <= args.target_p95_ms and not q["failed"]
        verdict = ("达标" if met else "未达标") if cases >= 1_000_000 else f"未在目标规模下测量（{cases} 个案件，目标 1000000）"
        print(f"  {name:<16} 成功 {q['calls'] - q['failed']}/{q['calls']}（状态 {q['status']}）；成功请求 "
              f"p50 {q['p50_ms']} / p95 {q['p95_ms']} / max {q['max_ms']} ms；p95 ≤ {args.target_p95_ms:g} ms：{verdict}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"结果已写入 {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
